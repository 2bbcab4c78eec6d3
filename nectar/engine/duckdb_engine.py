"""The DuckDB evaluator: one SQL query over the corpus's Parquet files, built from the shared lowering.

The query has the same shape as the Polars pipeline (see :mod:`nectar.engine.polars_engine`): spans with
``__is_root``; the last root per trace (``QUALIFY row_number()`` by ``arrival``) and the span count joined back;
``bool_or`` per condition (trace scope) or per rule (span scope) grouped by trace; a ``CASE`` picking the first
matching rule. DeterministicSampler hashes use DuckDB's ``sha1()``.

SQL is built as :class:`Sql` pieces (text plus bound parameters) and rendered once: identifiers go through
``quote_ident``, every value from the rules is a ``?`` parameter, and the matching sets of :class:`Distinct` nodes
(Go ``%v`` of floats, ParseFloat, Go regexps, evaluated in Python on distinct values) are registered Arrow tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from nectar.corpus.layout import ARRIVAL, ARROW_TYPE, PARENT_ID, TRACE_ID, Corpus, ValueType, quote_ident
from nectar.engine.decision import EvalResult
from nectar.engine.lowering import (
    TRUE_STRINGS,
    Cmp,
    CondPlan,
    Const,
    Distinct,
    InSet,
    Node,
    Not,
    SamplerPlan,
    StrTest,
    View,
    needs_descendants,
    needs_root,
    plan_sampler,
    visible_fields,
)
from nectar.engine.polars_engine import (
    HAS_ROOT,
    IS_ROOT,
    MARSHAL_OK,
    META_ROOT_COL,
    NUM_DESC,
    ROOT_PREFIX_COL,
    PlanColumns,
    base_column,
    finish_decisions,
    sorted_by_trace,
    trace_level,
)
from nectar.refinery import gostr
from nectar.refinery.model import META_ROOT, SIGNAL_TYPE, RulesBasedSampler, Sampler, SamplerConfig

_SQL_TYPE = {
    ValueType.STR: "VARCHAR",
    ValueType.INT: "BIGINT",
    ValueType.FLOAT: "DOUBLE",
    ValueType.BOOL: "BOOLEAN",
    ValueType.JSON: "VARCHAR",
}
_VIEW_OUT = {View.STR: ValueType.STR, View.ATOI: ValueType.INT, View.TRUNC: ValueType.INT}
_VIEW_OUT |= {View.TOFLOAT: ValueType.FLOAT, View.PARSEBOOL: ValueType.BOOL}
# Distinct sets this small (and not of floats, whose NaN/-0.0 equality differs between lists and joins) are bound
# as a list parameter: checking a short list per span is cheaper than DuckDB's mark join of every span.
INLINE_SET_MAX = 256
INLINE_KINDS = (ValueType.STR, ValueType.INT, ValueType.BOOL, ValueType.JSON)
_CMP = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


@dataclass(frozen=True, slots=True)
class Sql:
    """A piece of SQL: text written by this module (keywords, quoted identifiers) and its bound parameters."""

    text: str
    params: tuple[Any, ...] = ()


def cat(*parts: Sql | str) -> Sql:
    """Concatenate pieces; ``str`` parts are SQL text written here, never user input."""
    text: list[str] = []
    params: list[Any] = []
    for p in parts:
        if isinstance(p, str):
            text.append(p)
        else:
            text.append(p.text)
            params.extend(p.params)
    return Sql("".join(text), tuple(params))


def join(sep: str, parts: Iterable[Sql | str]) -> Sql:
    items = list(parts)
    out: list[Sql | str] = []
    for i, p in enumerate(items):
        if i:
            out.append(sep)
        out.append(p)
    return cat(*out)


def ident(name: str) -> Sql:
    return Sql(quote_ident(name))


def param(value: Any, sql_type: str) -> Sql:
    return Sql(f"CAST(? AS {sql_type})", (value,))


def lit_bool(b: bool) -> Sql:
    return Sql("true" if b else "false")


class DuckRenderer:
    """Compiles lowered nodes to SQL over one typed column (method ``node_<Node>`` per node type).
    ``sets`` maps each Distinct node and base column to the name of a registered table of matching values."""

    def __init__(
        self,
        sets: Mapping[tuple[str, str], str],
        fn_values: Mapping[str, tuple[bool, bool]],
        inline: Mapping[tuple[str, str], list[Any]] | None = None,
    ) -> None:
        self.sets = sets
        self.fn_values = fn_values  # Distinct key -> (fn(-0.0), fn(0.0)) for float columns
        self.inline = inline or {}  # small non-float matching sets: a bound list parameter instead of a table

    def render(self, node: Node, col: str, kind: ValueType) -> Sql:
        out: Sql = getattr(self, "node_" + type(node).__name__)(node, col, kind)
        return out

    def view(self, view: View, col: str, kind: ValueType) -> Sql:
        c = ident(col)
        if view is View.RAW:
            return c
        if view is View.STR:
            if kind is ValueType.INT:
                return cat("CAST(", c, " AS VARCHAR)")
            if kind is ValueType.BOOL:
                return cat("(CASE WHEN ", c, " THEN 'true' ELSE 'false' END)")
            return c
        if view is View.ATOI:  # strconv.Atoi: optional sign, ASCII digits, int64 range (TRY_CAST -> NULL)
            return cat(
                "(CASE WHEN regexp_full_match(", c, ", '[+-]?[0-9]+') THEN TRY_CAST(ltrim(", c, ", '+') AS BIGINT) END)"
            )
        if view is View.TRUNC:  # Go int(float64) on amd64: NaN/Inf/out of range -> MinInt64; CAST rounds, so trunc()
            bad = cat("isnan(", c, ") OR ", c, " >= 9223372036854775808.0 OR ", c, " < -9223372036854775808.0")
            return cat(
                "(CASE WHEN ",
                bad,
                " THEN CAST(-9223372036854775808 AS BIGINT) ELSE CAST(trunc(",
                c,
                ") AS BIGINT) END)",
            )
        if view is View.TOFLOAT:
            return cat("CAST(", c, " AS DOUBLE)")
        if view is View.PARSEBOOL:
            if kind is ValueType.STR:
                return cat("list_contains(", param(list(TRUE_STRINGS), "VARCHAR[]"), ", ", c, ")")
            if kind is ValueType.INT:
                return cat("(", c, " = 1)")
            if kind is ValueType.FLOAT:
                return cat("(", c, " = 1.0)")  # %v of 1.0 is "1"
            return c
        raise AssertionError(view)

    def node_Const(self, node: Const, col: str, kind: ValueType) -> Sql:
        return lit_bool(node.value)

    def node_Cmp(self, node: Cmp, col: str, kind: ValueType) -> Sql:
        out = _VIEW_OUT.get(node.view, kind)
        x = self.view(node.view, col, kind)
        lit = param(node.lit, _SQL_TYPE[out])
        if out is not ValueType.FLOAT:
            return cat("coalesce(", x, f" {_CMP[node.op]} ", lit, ", false)")
        # DuckDB orders NaN above everything and equal to itself; Go does neither.
        nan = cat("isnan(", x, ")")
        if node.untyped:
            lt = cat("(", x, " < ", lit, " AND NOT ", nan, ")")
            gt = cat("(", x, " > ", lit, " AND NOT ", nan, ")")
            res = {
                "eq": cat("NOT ", lt, " AND NOT ", gt),
                "ne": cat(lt, " OR ", gt),
                "lt": lt,
                "gt": gt,
                "le": cat("NOT ", gt),
                "ge": cat("NOT ", lt),
            }[node.op]
        elif node.op == "ne":
            res = cat(x, " <> ", lit, " OR ", nan)
        else:
            res = cat(x, f" {_CMP[node.op]} ", lit, " AND NOT ", nan)
        return cat("coalesce((", res, "), false)")

    def node_InSet(self, node: InSet, col: str, kind: ValueType) -> Sql:
        out = _VIEW_OUT.get(node.view, kind)
        values = param(list(node.values), _SQL_TYPE[out] + "[]")
        return cat("coalesce(list_contains(", values, ", ", self.view(node.view, col, kind), "), false)")

    def node_StrTest(self, node: StrTest, col: str, kind: ValueType) -> Sql:
        x = self.view(View.STR, col, kind)
        fn = "starts_with" if node.op == "starts" else "contains"
        return cat(f"coalesce({fn}(", x, ", ", param(node.lit, "VARCHAR"), "), false)")

    def node_Not(self, node: Not, col: str, kind: ValueType) -> Sql:
        return cat("(NOT ", self.render(node.inner, col, kind), ")")

    def node_Distinct(self, node: Distinct, col: str, kind: ValueType) -> Sql:
        c = ident(col)
        small = self.inline.get((node.key, base_column(col)))
        if small is not None:  # a list lookup per row; IN (SELECT ...) is a mark join over every span
            return cat("coalesce(list_contains(", param(small, _SQL_TYPE[kind] + "[]"), ", ", c, "), false)")
        table = self.sets[(node.key, base_column(col))]
        hit = cat("coalesce(", c, " IN (SELECT v FROM ", ident(table), "), false)")
        if kind is ValueType.FLOAT:  # DISTINCT merges -0.0 and 0.0, whose %v differ ("-0" / "0")
            neg, pos = self.fn_values[node.key]
            return cat("(CASE WHEN ", c, " = 0 THEN (CASE WHEN signbit(", c, ") THEN ", lit_bool(neg), " ELSE ",
                       lit_bool(pos), " END) ELSE ", hit, " END)")  # fmt: skip
        return hit


def _cond_sql(
    comp: PlanColumns, cp: CondPlan, r: DuckRenderer, nested: Mapping[tuple[str, str], tuple[str, str]]
) -> Sql:
    if cp.const is not None:
        return lit_bool(cp.const)
    if cp.num_descendants:
        return r.render(cp.preds[ValueType.INT], NUM_DESC, ValueType.INT)
    whens: list[Sql] = []
    for src in cp.sources:
        cols = comp.fields.get(src.field, {})
        if not cols:
            continue
        pre = ROOT_PREFIX_COL if src.root else ""
        exists: list[Sql] = []
        inner: list[Sql] = []
        for t, col in cols.items():
            name = pre + col
            if t is ValueType.NULL:
                present, pred = cat("coalesce(", ident(name), ", false)"), lit_bool(cp.null_value)
            else:
                present, pred = cat(ident(name), " IS NOT NULL"), r.render(cp.preds[t], name, t)
            exists.append(present)
            inner.append(cat(" WHEN ", present, " THEN ", pred))
        whens.append(cat(" WHEN ", join(" OR ", exists), " THEN (CASE", *inner, " ELSE false END)"))
    for found, match in _nested_sql(comp, cp, nested):
        whens.append(cat(" WHEN ", found, " THEN ", match))
    if not whens:
        return lit_bool(cp.missing_value)
    return cat("(CASE", *whens, " ELSE ", lit_bool(cp.missing_value), " END)")


def _nested_sql(
    comp: PlanColumns, cp: CondPlan, nested: Mapping[tuple[str, str], tuple[str, str]]
) -> list[tuple[Sql, Sql]]:
    """(path found, condition matches) per nested name; see ``PlanColumns._nested_exprs`` (the Polars twin)."""

    def sel(col: str) -> Sql:
        if cp.nested_on_root:
            return cat("(CASE WHEN ", ident(HAS_ROOT), " THEN ", ident(ROOT_PREFIX_COL + col), " ELSE ", ident(col),
                       " END)")  # fmt: skip
        return ident(col)

    def member(x: Sql, table: str) -> Sql:
        return cat("coalesce(", x, " IN (SELECT v FROM ", ident(table), "), false)")

    out = []
    for np in cp.nested:
        f_whens: list[Sql] = []
        m_whens: list[Sql] = []
        for fname in np.candidates(comp.fields):  # the first candidate present on the span is the one read
            exists: list[Sql] = []
            f_in: list[Sql] = []
            m_in: list[Sql] = []
            for t, col in comp.fields.get(fname, {}).items():
                if t is ValueType.NULL:
                    present = cat("coalesce(", sel(col), ", false)")
                    f_b, m_b = np.found(fname, None)
                    f_e, m_e = lit_bool(f_b), lit_bool(m_b)
                else:
                    present = cat(sel(col), " IS NOT NULL")
                    t_found, t_match = nested[(cp.key + "/" + np.name, col)]
                    f_e, m_e = member(sel(col), t_found), member(sel(col), t_match)
                exists.append(present)
                f_in.append(cat(" WHEN ", present, " THEN ", f_e))
                m_in.append(cat(" WHEN ", present, " THEN ", m_e))
            if not exists:
                continue
            e = join(" OR ", exists)
            f_whens.append(cat(" WHEN ", e, " THEN (CASE", *f_in, " ELSE false END)"))
            m_whens.append(cat(" WHEN ", e, " THEN (CASE", *m_in, " ELSE false END)"))
        if f_whens:
            found = cat("(", sel(MARSHAL_OK), " AND (CASE", *f_whens, " ELSE false END))")
            out.append((found, cat("(CASE", *m_whens, " ELSE false END)")))
    return out


def _marshal_ok_sql(comp: PlanColumns, bad: Mapping[str, str]) -> Sql:
    """json.Marshal of the span succeeds: no NaN/Inf float anywhere (Refinery then skips nested lookups)."""
    parts = [cat("(", ident(c), " IS NULL OR isfinite(", ident(c), "))") for c in comp.marshal_float]
    parts += [
        cat("NOT coalesce(", ident(c), " IN (SELECT v FROM ", ident(bad[c]), "), false)") for c in comp.marshal_json
    ]
    return cat("(", join(" AND ", parts), ")") if parts else Sql("true")


def _det_hash(plan: SamplerPlan) -> Sql | None:
    outs = [r.outcome for r in plan.rules] + ([plan.top] if plan.top else [])
    if not any(o.keep == "deterministic" for o in outs):
        return None
    # BigEndianUint32(sha1(traceID + salt)[:4]): the first 8 hex digits of sha1().
    h = cat("sha1(", ident(TRACE_ID), " || ", param(gostr.DETERMINISTIC_SALT, "VARCHAR"), ")")
    return cat("CAST('0x' || substr(", h, ", 1, 8) AS UBIGINT) AS det_hash")


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with bounded memory (``NECTAR_DUCKDB_MEMORY``, default 3GB)."""
    con = duckdb.connect(":memory:")
    con.execute("SET memory_limit = ?", [os.environ.get("NECTAR_DUCKDB_MEMORY", "3GB")])
    con.execute("SET preserve_insertion_order = false")
    return con


def evaluate(
    sampler: SamplerConfig | RulesBasedSampler | Sampler,
    corpus: Corpus,
    with_matches: bool = False,
    decide: int | None = None,
) -> EvalResult:
    """Decide every trace of ``corpus`` with ``sampler`` (the DuckDB engine). With ``decide``, only the first
    ``decide`` rules decide; later ones are probes that only add match columns (``api.evaluate_with_probes``)."""
    plan = plan_sampler(sampler)
    src_text, src_params = corpus.duckdb_spans_sql()
    src = Sql(src_text, tuple(src_params))
    con = connect()
    try:
        return _evaluate(con, plan, corpus, src, with_matches, len(plan.rules) if decide is None else decide)
    finally:
        con.close()


def _evaluate(
    con: duckdb.DuckDBPyConnection, plan: SamplerPlan, corpus: Corpus, src: Sql, with_matches: bool, decide: int
) -> EvalResult:
    det = _det_hash(plan)
    tid = ident(TRACE_ID)
    if plan.top is not None or not plan.rules:
        cols: list[Sql | str] = [tid, ", CAST(count(*) AS BIGINT) AS spans, CAST(NULL AS INTEGER) AS rule_index"]
        if det is not None:
            cols += [", ", det]
        q = cat("SELECT ", *cols, " FROM (", src, ") GROUP BY ", tid, " ORDER BY ", tid)
        df = _frame(con.sql(q.text, params=list(q.params)).to_arrow_table())
        return EvalResult(finish_decisions(df, plan), _matches(df, plan) if with_matches else None)

    fields = visible_fields(corpus.field_columns)
    sig = fields.get(SIGNAL_TYPE, {}).get(ValueType.STR)
    fields[META_ROOT] = {ValueType.BOOL: META_ROOT_COL}
    comp = PlanColumns(plan, fields)
    comp.collect_needs()
    schema = corpus.canonical_schema()
    # Distinct values of the columns that need Python evaluation, then the matching sets as Arrow tables.
    dist_cols = comp.distinct_columns()
    values: dict[str, list[Any]] = {}
    for c in dist_cols:
        if c in schema:
            q = cat("SELECT DISTINCT ", ident(c), " FROM (", src, ") WHERE ", ident(c), " IS NOT NULL")
            values[c] = [row[0] for row in con.execute(q.text, list(q.params)).fetchall()]
        elif c == NUM_DESC:
            q = cat("SELECT DISTINCT count(*) FROM (", src, ") GROUP BY ", ident(TRACE_ID))
            values[c] = [row[0] for row in con.execute(q.text, list(q.params)).fetchall()]
    sets: dict[tuple[str, str], str] = {}
    fn_values: dict[str, tuple[bool, bool]] = {}

    def register(vals: list[Any], arrow_type: pa.DataType) -> str:
        name = f"__nectar_set_{len(registered)}"
        registered.append(name)
        con.register(name, pa.table({"v": pa.array(vals, arrow_type)}))
        return name

    registered: list[str] = []
    inline: dict[tuple[str, str], list[Any]] = {}
    nested_sets: dict[tuple[str, str], tuple[str, str]] = {}
    for (key, col), (node, kind) in comp.distinct.items():
        assert isinstance(node, Distinct)
        arrow = ARROW_TYPE[kind]
        domain = [True, False] if kind is ValueType.BOOL else values.get(col, [])  # incl. computed meta.refinery.root
        matching = [v for v in domain if node.fn(v)]
        if kind in INLINE_KINDS and len(matching) <= INLINE_SET_MAX:
            inline[(key, col)] = matching
        sets[(key, col)] = register(matching, arrow)
        fn_values[node.key] = (node.fn(-0.0), node.fn(0.0)) if kind is ValueType.FLOAT else (False, False)
    for (key, col), (found_vals, match_vals) in comp.nested_sets(values).items():
        arrow = ARROW_TYPE[comp.nested_cols[(key, col)][2]]
        nested_sets[(key, col)] = (register(found_vals, arrow), register(match_vals, arrow))
    bad = {c: register(v, pa.string()) for c, v in comp.bad_json(values).items()}

    is_log = cat("coalesce(", ident(sig), " = 'log', false)") if sig else Sql("false")
    is_root = cat("((", ident(PARENT_ID), " IS NULL OR ", ident(PARENT_ID), " = '') AND NOT ", is_log, ")")
    wanted = sorted((comp.base_cols | comp.root_cols) - {META_ROOT_COL, MARSHAL_OK})
    base_cols: list[Sql | str] = [tid, ", ", ident(ARRIVAL)]
    for c in wanted:
        base_cols += [", ", ident(c)]
    base_cols += [", ", is_root, " AS ", ident(IS_ROOT)]
    base_cols += [", (CASE WHEN ", is_log, " THEN NULL ELSE ", is_root, " END) AS ", ident(META_ROOT_COL)]
    if comp.need_marshal:
        base_cols += [", ", _marshal_ok_sql(comp, bad), " AS ", ident(MARSHAL_OK)]
    ctes: list[Sql] = [cat("base AS (SELECT ", *base_cols, " FROM (", src, "))")]
    extra = [META_ROOT_COL, *([MARSHAL_OK] if comp.need_marshal else [])]
    span_cols: list[Sql] = [cat("base.", tid), *[cat("base.", ident(c)) for c in [*wanted, *extra]]]
    joins: list[Sql | str] = []
    # As in the Polars engine: trace-scope conditions on root./NUM_DESCENDANTS only are evaluated per trace
    # after the GROUP BY; the root row and the span count are joined per span only when a span-level condition
    # reads them.
    span_level = [cp for r in plan.rules if r.scope == "span" for cp in r.conds]
    span_level += [cp for r in plan.rules if r.scope == "trace" for cp in r.conds if not trace_level(cp)]
    join_root = any(any(s.root for s in cp.sources) or cp.nested_on_root for cp in span_level)
    join_nd = any(cp.num_descendants for cp in span_level)
    root_names = [ident(ROOT_PREFIX_COL + c) for c in sorted(comp.root_cols)]
    if needs_root(plan):
        rcols = [cat(", ", ident(c), " AS ", ident(ROOT_PREFIX_COL + c)) for c in sorted(comp.root_cols)]
        ctes.append(cat("roots AS (SELECT ", tid, ", true AS ", ident(HAS_ROOT), *rcols, " FROM base WHERE ",
                        ident(IS_ROOT), " QUALIFY row_number() OVER (PARTITION BY ", tid, " ORDER BY ",
                        ident(ARRIVAL), " DESC) = 1)"))  # fmt: skip
    if join_root:
        joins.append(cat(" LEFT JOIN roots ON roots.", tid, " = base.", tid))
        span_cols.append(cat("coalesce(roots.", ident(HAS_ROOT), ", false) AS ", ident(HAS_ROOT)))
        span_cols += [cat("roots.", n) for n in root_names]
    if join_nd:
        nd = cat("nd AS (SELECT ", tid, ", CAST(count(*) AS BIGINT) AS ", ident(NUM_DESC), " FROM base GROUP BY ", tid)
        ctes.append(cat(nd, ")"))
        joins.append(cat(" LEFT JOIN nd ON nd.", tid, " = base.", tid))
        span_cols.append(cat("nd.", ident(NUM_DESC)))
    ctes.append(cat("spans AS (SELECT ", join(", ", span_cols), " FROM base", *joins, ")"))

    renderer = DuckRenderer(sets, fn_values, inline)
    aggs: list[Sql] = [cat(tid), Sql("CAST(count(*) AS BIGINT) AS spans")]
    if join_root:
        aggs.append(cat("bool_or(", ident(HAS_ROOT), ") AS ", ident(HAS_ROOT)))
        aggs += [cat("any_value(", n, ") AS ", n) for n in root_names]
    matched: list[Sql] = []
    for rule in plan.rules:
        if rule.scope == "invalid" or not rule.conds:
            matched.append(Sql("true"))
            continue
        if rule.scope == "span":
            span_all = join(" AND ", [cat("(", _cond_sql(comp, cp, renderer, nested_sets), ")") for cp in rule.conds])
            aggs.append(cat("bool_or(", span_all, ") AS ", ident(f"s{rule.index}")))
            matched.append(ident(f"s{rule.index}"))
            continue
        parts: list[Sql] = []
        for cp in rule.conds:
            if cp.has_root is not None:
                parts.append(cat("(", ident(HAS_ROOT), " = ", lit_bool(cp.has_root), ")"))
            elif trace_level(cp):
                parts.append(cat("(", _cond_sql(comp, cp, renderer, nested_sets), ")"))  # on the per-trace row
            else:
                aggs.append(cat("bool_or(", _cond_sql(comp, cp, renderer, nested_sets), ") AS ", ident(cp.key)))
                parts.append(ident(cp.key))
        matched.append(join(" AND ", parts))
    ctes.append(cat("per0 AS (SELECT ", join(", ", aggs), " FROM spans GROUP BY ", tid, ")"))
    per_cols: list[Sql] = [Sql("per0.*")]
    per_join: list[Sql | str] = []
    if needs_root(plan) and not join_root:
        per_cols.append(cat("coalesce(roots.", ident(HAS_ROOT), ", false) AS ", ident(HAS_ROOT)))
        per_cols += [cat("roots.", n) for n in root_names]
        per_join.append(cat(" LEFT JOIN roots ON roots.", tid, " = per0.", tid))
    if needs_descendants(plan):
        per_cols.append(cat("per0.spans AS ", ident(NUM_DESC)))
    ctes.append(cat("per AS (SELECT ", join(", ", per_cols), " FROM per0", *per_join, ")"))
    mcols = [cat("coalesce(", m, ", false) AS ", ident(f"m{i}")) for i, m in enumerate(matched)]
    whens = [cat(" WHEN ", ident(f"m{i}"), f" THEN {i}") for i in range(decide)]
    first = cat("CASE", *whens, " END") if whens else Sql("NULL")
    final: list[Sql | str] = [tid, ", spans, CAST(", first, " AS INTEGER) AS rule_index"]
    final += [cat(", ", ident(f"m{i}")) for i in range(len(matched))]
    if det is not None:
        final += [", ", det]
    q = cat("WITH ", join(", ", ctes), ", matched AS (SELECT ", tid, ", spans, ", join(", ", mcols),
            " FROM per) SELECT ", *final, " FROM matched ORDER BY ", tid)  # fmt: skip
    df = _frame(con.sql(q.text, params=list(q.params)).to_arrow_table())
    return EvalResult(finish_decisions(df, plan), _matches(df, plan) if with_matches else None)


def _matches(df: pl.DataFrame, plan: SamplerPlan) -> pl.DataFrame:
    cols = [f"m{i}" for i in range(len(plan.rules))]
    return sorted_by_trace(df).select([TRACE_ID, *[pl.col(c).cast(pl.Boolean) for c in cols]])


__all__ = ["DuckRenderer", "Sql", "cat", "connect", "evaluate"]


def _frame(table: pa.Table) -> pl.DataFrame:
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return sorted_by_trace(df)  # the queries ORDER BY trace_id: flagged after one linear check, not sorted again
