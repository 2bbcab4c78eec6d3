"""The DuckDB evaluator: one SQL query over the corpus's Parquet files, rendered from the shared plan.

It renders :mod:`nectar.engine.plan` (whose docstring gives the recipe) with :class:`DuckRenderer` and runs it as
one statement of CTEs: ``base`` (spans with ``__is_root``), ``roots`` (the last root per trace, ``QUALIFY
row_number()`` by ``arrival`` descending), ``spans`` (joined with the root and span count where span-level
conditions read them), ``per0``/``per`` (``bool_or`` per condition or per span-scope rule, grouped by trace), and
a ``CASE`` picking the first matching rule. DeterministicSampler hashes use DuckDB's ``sha1()``.

SQL is built as :class:`~nectar.corpus.duckdb_source.Sql` pieces and rendered once: identifiers are quoted, every
value from the rules is a ``?`` parameter, and the value lists of Distinct nodes and nested lookups are bound
lists (small) or registered Arrow tables.
"""

from __future__ import annotations

import os
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from nectar.corpus.duckdb_source import Sql, cat, ident, join, param, spans_source
from nectar.corpus.layout import ARRIVAL, ARROW_TYPE, TRACE_ID, Corpus, ValueType
from nectar.engine import chunks
from nectar.engine.decision import EvalResult, finish_decisions, result_of, sorted_by_trace
from nectar.engine.lowering import (
    TRUE_STRINGS,
    Cmp,
    Const,
    Distinct,
    InSet,
    Not,
    SamplerPlan,
    StrTest,
    View,
    plan_sampler,
)
from nectar.engine.plan import (
    HAS_ROOT,
    IS_ROOT,
    MARSHAL_OK,
    META_ROOT_COL,
    NUM_DESC,
    ROOT_PREFIX_COL,
    Col,
    PlanColumns,
    RAnd,
    RCase,
    Ref,
    Renderer,
    RFinite,
    RFlag,
    RIn,
    RLit,
    RNot,
    ROr,
    RPresent,
    TracePlan,
    base_column,
    build_trace_plan,
    engine_fields,
    view_out,
)
from nectar.refinery import gostr

_SQL_TYPE = {
    ValueType.STR: "VARCHAR",
    ValueType.INT: "BIGINT",
    ValueType.FLOAT: "DOUBLE",
    ValueType.BOOL: "BOOLEAN",
    ValueType.JSON: "VARCHAR",
}
# Value lists this small (and not of floats, whose NaN/-0.0 equality differs between lists and joins) are bound
# as a list parameter: checking a short list per span is cheaper than DuckDB's mark join of every span.
INLINE_SET_MAX = 256
INLINE_KINDS = (ValueType.STR, ValueType.INT, ValueType.BOOL, ValueType.JSON)
_CMP = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def lit_bool(b: bool | None) -> Sql:
    return Sql("NULL" if b is None else "true" if b else "false")


class DuckRenderer(Renderer[Sql]):
    """The plan's nodes as SQL. Value lists too long to bind are registered on ``con`` as Arrow tables, once per
    list key."""

    def __init__(self, plan: TracePlan, con: duckdb.DuckDBPyConnection) -> None:
        self.plan = plan
        self.con = con
        self.tables: dict[str, str] = {}

    def member(self, x: Sql, key: str, values: list[Any], kind: ValueType) -> Sql:
        """``x`` is one of ``values`` (false for NULL): a bound list when short, else ``IN`` a registered table."""
        if kind in INLINE_KINDS and len(values) <= INLINE_SET_MAX:
            return cat("coalesce(list_contains(", param(values, _SQL_TYPE[kind] + "[]"), ", ", x, "), false)")
        table = self.tables.get(key)
        if table is None:
            table = self.tables[key] = f"__nectar_set_{len(self.tables)}"
            self.con.register(table, pa.table({"v": pa.array(values, ARROW_TYPE[kind])}))
        return cat("coalesce(", x, " IN (SELECT v FROM ", ident(table), "), false)")

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
            bound = param(float(2**63), "DOUBLE")
            bad = cat("isnan(", c, ") OR ", c, " >= ", bound, " OR ", c, " < -", bound)
            low = param(gostr.INT64_MIN, "BIGINT")
            return cat("(CASE WHEN ", bad, " THEN ", low, " ELSE CAST(trunc(", c, ") AS BIGINT) END)")
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

    def node_const(self, node: Const, col: str, kind: ValueType) -> Sql:
        return lit_bool(node.value)

    def node_cmp(self, node: Cmp, col: str, kind: ValueType) -> Sql:
        out = view_out(node.view, kind)
        x = self.view(node.view, col, kind)
        lit = param(node.lit, _SQL_TYPE[out])
        if out is not ValueType.FLOAT:
            return cat("coalesce(", x, f" {_CMP[node.op]} ", lit, ", false)")
        # DuckDB orders NaN above everything and equal to itself; Go does neither.
        nan = cat("isnan(", x, ")")
        if node.untyped:  # compare(): less if <, more if >, else equal -- NaN is "equal"
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

    def node_in_set(self, node: InSet, col: str, kind: ValueType) -> Sql:
        out = view_out(node.view, kind)
        values = param(list(node.values), _SQL_TYPE[out] + "[]")
        return cat("coalesce(list_contains(", values, ", ", self.view(node.view, col, kind), "), false)")

    def node_str_test(self, node: StrTest, col: str, kind: ValueType) -> Sql:
        x = self.view(View.STR, col, kind)
        fn = "starts_with" if node.op == "starts" else "contains"
        return cat(f"coalesce({fn}(", x, ", ", param(node.lit, "VARCHAR"), "), false)")

    def node_not(self, node: Not, col: str, kind: ValueType) -> Sql:
        return cat("(NOT ", self.node(node.inner, col, kind), ")")

    def node_distinct(self, node: Distinct, col: str, kind: ValueType) -> Sql:
        c = ident(col)
        base = base_column(col)
        hit = self.member(c, f"{node.key}/{base}", self.plan.sets[(node.key, base)], kind)
        if kind is ValueType.FLOAT:  # DISTINCT merges -0.0 and 0.0, whose %v differ ("-0" / "0")
            neg, pos = self.plan.zeros[node.key]
            return cat("(CASE WHEN ", c, " = 0 THEN (CASE WHEN signbit(", c, ") THEN ", lit_bool(neg), " ELSE ",
                       lit_bool(pos), " END) ELSE ", hit, " END)")  # fmt: skip
        return hit

    def ref(self, ref: Ref) -> Sql:
        if isinstance(ref, Col):
            return ident(ref.name)
        root = ident(ROOT_PREFIX_COL + ref.name)
        return cat("(CASE WHEN ", ident(HAS_ROOT), " THEN ", root, " ELSE ", ident(ref.name), " END)")

    def row_lit(self, row: RLit) -> Sql:
        return lit_bool(row.value)

    def row_present(self, row: RPresent) -> Sql:
        return cat("(", self.ref(row.ref), " IS NOT NULL)")

    def row_flag(self, row: RFlag) -> Sql:
        return cat("coalesce(", self.ref(row.ref), ", false)")

    def row_in(self, row: RIn) -> Sql:
        return self.member(self.ref(row.ref), row.key, list(row.values), row.kind)

    def row_finite(self, row: RFinite) -> Sql:
        c = ident(row.col)
        return cat("(", c, " IS NULL OR isfinite(", c, "))")

    def row_case(self, row: RCase) -> Sql:
        if not row.whens:
            return self.row(row.otherwise)
        whens = [cat(" WHEN ", self.row(c), " THEN ", self.row(v)) for c, v in row.whens]
        return cat("(CASE", *whens, " ELSE ", self.row(row.otherwise), " END)")

    def row_and(self, row: RAnd) -> Sql:
        return cat("(", join(" AND ", [self.row(r) for r in row.items]), ")")

    def row_or(self, row: ROr) -> Sql:
        return cat("(", join(" OR ", [self.row(r) for r in row.items]), ")")

    def row_not(self, row: RNot) -> Sql:
        return cat("(NOT ", self.row(row.item), ")")


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with bounded memory (``NECTAR_DUCKDB_MEMORY``, default 3GB)."""
    con = duckdb.connect(":memory:")
    con.execute("SET memory_limit = ?", [os.environ.get("NECTAR_DUCKDB_MEMORY", "3GB")])
    con.execute("SET preserve_insertion_order = false")
    return con


def evaluate(sampler: Any, corpus: Corpus, with_matches: bool = False, decide: int | None = None) -> EvalResult:
    """Decide every trace of ``corpus`` with ``sampler`` (the DuckDB engine). With ``decide``, only the first
    ``decide`` rules decide; later ones are probes that only add match columns (``api.evaluate_with_probes``)."""
    splan = plan_sampler(sampler)
    src = spans_source(corpus)
    con = connect()
    try:
        if splan.top is not None or not splan.rules:
            df = _run(con, _top_query(splan, src))
        else:
            fields = engine_fields(corpus.field_columns)
            cols = PlanColumns(splan, fields)
            values = _distinct_values(con, src, cols.distinct_columns(), set(corpus.canonical_schema()))

            def run(sub: SamplerPlan, sub_decide: int) -> pl.DataFrame:  # one query per chunk of rules
                plan = build_trace_plan(sub, cols if sub is splan else PlanColumns(sub, fields), values, sub_decide)
                return _run(con, _rules_query(plan, DuckRenderer(plan, con), src))

            df = chunks.evaluate(splan, decide, run)
    finally:
        con.close()
    return result_of(finish_decisions(df, splan), df, splan, with_matches)


def _run(con: duckdb.DuckDBPyConnection, q: Sql) -> pl.DataFrame:
    df = pl.from_arrow(con.sql(q.text, params=list(q.params)).to_arrow_table())
    assert isinstance(df, pl.DataFrame)
    return sorted_by_trace(df)  # the queries ORDER BY trace_id: flagged after one linear check, not sorted again


def _distinct_values(con: duckdb.DuckDBPyConnection, src: Sql, cols: list[str], present: set[str]) -> dict[str, Any]:
    """The distinct non-null values of each column (``__nd``: the distinct span counts)."""
    values: dict[str, list[Any]] = {}
    for c in cols:
        if c in present:
            q = cat("SELECT DISTINCT ", ident(c), " FROM (", src, ") WHERE ", ident(c), " IS NOT NULL")
        elif c == NUM_DESC:
            q = cat("SELECT DISTINCT count(*) FROM (", src, ") GROUP BY ", ident(TRACE_ID))
        else:
            continue
        values[c] = [row[0] for row in con.execute(q.text, list(q.params)).fetchall()]
    return values


def _det_hash(plan: SamplerPlan) -> list[Sql | str]:
    """``, <hash> AS det_hash`` when a DeterministicSampler decides some trace: BigEndianUint32(sha1(traceID +
    salt)[:4]), the first 8 hex digits of ``sha1()``."""
    outs = [r.outcome for r in plan.rules] + ([plan.top] if plan.top else [])
    if not any(o.keep == "deterministic" for o in outs):
        return []
    h = cat("sha1(", ident(TRACE_ID), " || ", param(gostr.DETERMINISTIC_SALT, "VARCHAR"), ")")
    return [", ", cat("CAST('0x' || substr(", h, ", 1, 8) AS UBIGINT) AS det_hash")]


def _top_query(plan: SamplerPlan, src: Sql) -> Sql:
    """A sampler that is not rules-based (or has no rules): only the span count per trace."""
    tid = ident(TRACE_ID)
    return cat("SELECT ", tid, ", CAST(count(*) AS BIGINT) AS spans, CAST(NULL AS INTEGER) AS rule_index",
               *_det_hash(plan), " FROM (", src, ") GROUP BY ", tid, " ORDER BY ", tid)  # fmt: skip


def _rules_query(plan: TracePlan, r: DuckRenderer, src: Sql) -> Sql:
    tid = ident(TRACE_ID)
    ctes = [cat("base AS (", _base(plan, r, src), ")")]
    roots = [ident(ROOT_PREFIX_COL + c) for c in plan.root_columns]
    if plan.needs_root:
        rcols = [cat(", ", ident(c), " AS ", n) for c, n in zip(plan.root_columns, roots, strict=True)]
        ctes.append(cat("roots AS (SELECT ", tid, ", true AS ", ident(HAS_ROOT), *rcols, " FROM base WHERE ",
                        ident(IS_ROOT), " QUALIFY row_number() OVER (PARTITION BY ", tid, " ORDER BY ",
                        ident(ARRIVAL), " DESC) = 1)"))  # fmt: skip
    ctes.append(cat("spans AS (", _spans(plan, roots), ")"))
    aggs: list[Sql] = [tid, Sql("CAST(count(*) AS BIGINT) AS spans")]
    if plan.join_root:
        aggs.append(cat("bool_or(", ident(HAS_ROOT), ") AS ", ident(HAS_ROOT)))
        aggs += [cat("any_value(", n, ") AS ", n) for n in roots]
    aggs += [cat("bool_or(", r.row(row), ") AS ", ident(name)) for name, row in plan.span_aggs]
    ctes.append(cat("per0 AS (SELECT ", join(", ", aggs), " FROM spans GROUP BY ", tid, ")"))
    per_cols: list[Sql] = [Sql("per0.*")]
    per_join: list[Sql | str] = []
    if plan.needs_root and not plan.join_root:
        per_cols.append(cat("coalesce(roots.", ident(HAS_ROOT), ", false) AS ", ident(HAS_ROOT)))
        per_cols += [cat("roots.", n) for n in roots]
        per_join.append(cat(" LEFT JOIN roots ON roots.", tid, " = per0.", tid))
    if plan.needs_descendants:
        per_cols.append(cat("per0.spans AS ", ident(NUM_DESC)))
    ctes.append(cat("per AS (SELECT ", join(", ", per_cols), " FROM per0", *per_join, ")"))
    mcols = [cat("coalesce(", r.row(m), ", false) AS ", ident(f"m{i}")) for i, m in enumerate(plan.matched)]
    ctes.append(cat("matched AS (SELECT ", tid, ", spans, ", join(", ", mcols), " FROM per)"))
    whens = [cat(" WHEN ", ident(f"m{i}"), f" THEN {i}") for i in range(plan.decide)]
    first = cat("CASE", *whens, " END") if whens else Sql("NULL")
    final: list[Sql | str] = [tid, ", spans, CAST(", first, " AS INTEGER) AS rule_index"]
    final += [cat(", ", ident(f"m{i}")) for i in range(len(plan.matched))]
    return cat("WITH ", join(", ", ctes), " SELECT ", *final, *_det_hash(plan.sampler),
               " FROM matched ORDER BY ", tid)  # fmt: skip


def _base(plan: TracePlan, r: DuckRenderer, src: Sql) -> Sql:
    """Spans with the columns the rules read, ``__is_root``, ``__meta_root`` and ``__marshal_ok``."""
    cols: list[Sql | str] = [ident(TRACE_ID), ", ", ident(ARRIVAL)]
    for c in plan.span_columns:
        cols += [", ", ident(c)]
    cols += [", ", r.row(plan.is_root), " AS ", ident(IS_ROOT)]
    cols += [", ", r.row(plan.meta_root), " AS ", ident(META_ROOT_COL)]
    if plan.marshal_ok is not None:
        cols += [", ", r.row(plan.marshal_ok), " AS ", ident(MARSHAL_OK)]
    return cat("SELECT ", *cols, " FROM (", src, ")")


def _spans(plan: TracePlan, roots: list[Sql]) -> Sql:
    """The spans, with the root's columns and the span count joined where span-level conditions read them."""
    tid = ident(TRACE_ID)
    extra = [META_ROOT_COL, *([MARSHAL_OK] if plan.marshal_ok is not None else [])]
    cols: list[Sql] = [cat("base.", tid), *[cat("base.", ident(c)) for c in [*plan.span_columns, *extra]]]
    joins: list[Sql | str] = []
    if plan.join_root:
        joins.append(cat(" LEFT JOIN roots ON roots.", tid, " = base.", tid))
        cols.append(cat("coalesce(roots.", ident(HAS_ROOT), ", false) AS ", ident(HAS_ROOT)))
        cols += [cat("roots.", n) for n in roots]
    if plan.join_nd:
        nd = cat("(SELECT ", tid, ", CAST(count(*) AS BIGINT) AS ", ident(NUM_DESC), " FROM base GROUP BY ", tid, ")")
        joins.append(cat(" LEFT JOIN ", nd, " AS nd ON nd.", tid, " = base.", tid))
        cols.append(cat("nd.", ident(NUM_DESC)))
    return cat("SELECT ", join(", ", cols), " FROM base", *joins)


__all__ = ["DuckRenderer", "connect", "evaluate"]
