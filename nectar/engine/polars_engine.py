"""The Polars evaluator: lazy, vectorized, streaming over the corpus's Parquet files.

It renders the shared plan (:mod:`nectar.engine.plan`, whose docstring gives the recipe) with
:class:`PolarsRenderer` (``pl.Expr`` per node) and runs it as one lazy query: spans with ``__is_root``; the last
root per trace by ``arrival``, from the root rows only; ``group_by(trace_id)`` with ``any()`` per condition (trace
scope) or per rule (span scope); the first matching rule. Distinct values (Go ``%v`` of floats and maps,
``strconv.ParseFloat``, Go regexps, nested lookups) are read with one streaming ``unique()`` per column first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from nectar.corpus.layout import ARRIVAL, PARENT_ID, TRACE_ID, Corpus, ValueType
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
from nectar.refinery.gostr import INT64_MIN

_PL_TYPE: dict[ValueType, Any] = {
    ValueType.STR: pl.String,
    ValueType.INT: pl.Int64,
    ValueType.FLOAT: pl.Float64,
    ValueType.BOOL: pl.Boolean,
    ValueType.JSON: pl.String,
}


def _is_in(expr: pl.Expr, values: Iterable[Any], dtype: Any) -> pl.Expr:
    return expr.is_in(pl.Series(list(values), dtype=dtype).implode())


class PolarsRenderer(Renderer[pl.Expr]):
    """The plan's nodes as ``pl.Expr``. Distinct nodes read their matching sets from the trace plan."""

    def __init__(self, plan: TracePlan) -> None:
        self.plan = plan

    def view(self, view: View, col: str, kind: ValueType) -> pl.Expr:
        c = pl.col(col)
        if view is View.RAW:
            return c
        if view is View.STR:
            if kind is ValueType.INT:
                return c.cast(pl.String)
            if kind is ValueType.BOOL:
                return pl.when(c).then(pl.lit("true")).otherwise(pl.lit("false"))
            return c
        if view is View.ATOI:  # strconv.Atoi: optional sign, ASCII digits, int64 range (cast overflow -> null)
            ok = c.str.contains(r"^[+-]?[0-9]+$")
            return pl.when(ok).then(c.str.strip_prefix("+").cast(pl.Int64, strict=False))
        if view is View.TRUNC:  # Go int(float64) on amd64: NaN/Inf/out of range -> MinInt64
            bad = c.is_nan() | (c >= 2.0**63) | (c < -(2.0**63))
            return pl.when(bad).then(pl.lit(INT64_MIN, pl.Int64)).otherwise(c.cast(pl.Int64, strict=False))
        if view is View.TOFLOAT:
            return c.cast(pl.Float64)
        if view is View.PARSEBOOL:  # TryConvertToBool(%v): only ParseBool's true set is true
            if kind is ValueType.STR:
                return _is_in(c, TRUE_STRINGS, pl.String)
            if kind is ValueType.INT:
                return c == 1
            if kind is ValueType.FLOAT:
                return c == 1.0  # %v of 1.0 is "1"
            return c
        raise AssertionError(view)

    def node_const(self, node: Const, col: str, kind: ValueType) -> pl.Expr:
        return pl.lit(node.value)

    def node_cmp(self, node: Cmp, col: str, kind: ValueType) -> pl.Expr:
        out = view_out(node.view, kind)
        x = self.view(node.view, col, kind)
        lit = pl.lit(node.lit, _PL_TYPE[out])
        ops = {"eq": x == lit, "ne": x != lit, "lt": x < lit, "le": x <= lit, "gt": x > lit, "ge": x >= lit}
        if out is not ValueType.FLOAT:
            return ops[node.op].fill_null(False)
        # Polars orders NaN above everything and equal to itself; Go does neither.
        nan = x.is_nan()
        if node.untyped:  # compare(): less if <, more if >, else equal -- NaN is "equal"
            lt, gt = (x < lit) & ~nan, (x > lit) & ~nan
            res = {"eq": ~lt & ~gt, "ne": lt | gt, "lt": lt, "gt": gt, "le": ~gt, "ge": ~lt}[node.op]
        else:
            res = (ops[node.op] | nan) if node.op == "ne" else (ops[node.op] & ~nan)
        return res.fill_null(False)

    def node_in_set(self, node: InSet, col: str, kind: ValueType) -> pl.Expr:
        out = view_out(node.view, kind)
        return _is_in(self.view(node.view, col, kind), node.values, _PL_TYPE[out]).fill_null(False)

    def node_str_test(self, node: StrTest, col: str, kind: ValueType) -> pl.Expr:
        x = self.view(View.STR, col, kind)
        res = x.str.starts_with(node.lit) if node.op == "starts" else x.str.contains(node.lit, literal=True)
        return res.fill_null(False)

    def node_not(self, node: Not, col: str, kind: ValueType) -> pl.Expr:
        return ~self.node(node.inner, col, kind)

    def node_distinct(self, node: Distinct, col: str, kind: ValueType) -> pl.Expr:
        c = pl.col(col)
        hit = _is_in(c, self.plan.sets[(node.key, base_column(col))], _PL_TYPE[kind]).fill_null(False)
        if kind is ValueType.FLOAT:  # unique() merges -0.0 and 0.0, whose %v differ ("-0" / "0")
            neg, pos = (pl.lit(b) for b in self.plan.zeros[node.key])
            return pl.when(c == 0.0).then(pl.when((1.0 / c) < 0).then(neg).otherwise(pos)).otherwise(hit)
        return hit

    def ref(self, ref: Ref) -> pl.Expr:
        if isinstance(ref, Col):
            return pl.col(ref.name)
        return pl.when(pl.col(HAS_ROOT)).then(pl.col(ROOT_PREFIX_COL + ref.name)).otherwise(pl.col(ref.name))

    def row_lit(self, row: RLit) -> pl.Expr:
        return pl.lit(row.value, pl.Boolean)

    def row_present(self, row: RPresent) -> pl.Expr:
        return self.ref(row.ref).is_not_null()

    def row_flag(self, row: RFlag) -> pl.Expr:
        return self.ref(row.ref).fill_null(False)

    def row_in(self, row: RIn) -> pl.Expr:
        return _is_in(self.ref(row.ref), row.values, _PL_TYPE[row.kind]).fill_null(False)

    def row_finite(self, row: RFinite) -> pl.Expr:
        return pl.col(row.col).is_null() | pl.col(row.col).is_finite()

    def row_case(self, row: RCase) -> pl.Expr:
        chain: Any = None
        for cond, value in row.whens:
            c, v = self.row(cond), self.row(value)
            chain = pl.when(c).then(v) if chain is None else chain.when(c).then(v)
        other = self.row(row.otherwise)
        return other if chain is None else chain.otherwise(other)

    def row_and(self, row: RAnd) -> pl.Expr:
        return _fold([self.row(r) for r in row.items], "&")

    def row_or(self, row: ROr) -> pl.Expr:
        return _fold([self.row(r) for r in row.items], "|")

    def row_not(self, row: RNot) -> pl.Expr:
        return ~self.row(row.item)


def _fold(items: list[pl.Expr], op: str) -> pl.Expr:
    out = items[0]
    for e in items[1:]:
        out = (out & e) if op == "&" else (out | e)
    return out


def _distinct_values(lf: pl.LazyFrame, cols: list[str], present: set[str]) -> dict[str, list[Any]]:
    """The distinct non-null values of each column (``__nd``: the distinct span counts), one streaming pass each."""
    frames = [lf.select(pl.col(c).unique().drop_nulls()) for c in cols if c in present]
    if NUM_DESC in cols:
        counts = lf.group_by(TRACE_ID).agg(pl.len().cast(pl.Int64).alias(NUM_DESC)).select(pl.col(NUM_DESC).unique())
        frames.append(counts)
    got = pl.collect_all(frames, engine="streaming") if frames else []
    return {df.columns[0]: df.to_series().to_list() for df in got}


def evaluate(
    sampler: Any,
    corpus: Corpus,
    with_matches: bool = False,
    decide: int | None = None,
) -> EvalResult:
    """Decide every trace of ``corpus`` with ``sampler`` (the Polars engine). With ``decide``, only the first
    ``decide`` rules decide; later ones are probes that only add match columns (``api.evaluate_with_probes``)."""
    splan = plan_sampler(sampler)
    lf: pl.LazyFrame = corpus.scan()
    if splan.top is not None or not splan.rules:
        per = lf.group_by(TRACE_ID).agg(pl.len().cast(pl.Int64).alias("spans"))
        df = per.with_columns(pl.lit(None, pl.Int32).alias("rule_index")).collect(engine="streaming")
        return result_of(finish_decisions(df, splan), df, splan, with_matches)
    fields = engine_fields(corpus.field_columns)
    cols = PlanColumns(splan, fields)
    values = _distinct_values(lf, cols.distinct_columns(), set(lf.collect_schema().names()))

    def run(sub: SamplerPlan, sub_decide: int) -> pl.DataFrame:  # one query per chunk of rules
        plan = build_trace_plan(sub, cols if sub is splan else PlanColumns(sub, fields), values, sub_decide)
        return sorted_by_trace(_query(lf, plan).collect(engine="streaming"))  # sorted in the query: ~2x cheaper

    df = chunks.evaluate(splan, decide, run)
    return result_of(finish_decisions(df, splan), df, splan, with_matches)


def _query(lf: pl.LazyFrame, plan: TracePlan) -> pl.LazyFrame:
    r = PolarsRenderer(plan)
    sig = [plan.signal_column] if plan.signal_column and plan.signal_column not in plan.span_columns else []
    spans = lf.select([TRACE_ID, ARRIVAL, PARENT_ID, *sig, *plan.span_columns])
    spans = spans.with_columns(r.row(plan.is_root).alias(IS_ROOT), r.row(plan.meta_root).alias(META_ROOT_COL))
    if plan.marshal_ok is not None:
        spans = spans.with_columns(r.row(plan.marshal_ok).alias(MARSHAL_OK))
    # The last root by arrival, per trace, from the root rows only (much cheaper than filtering inside the
    # per-trace aggregation).
    root_aggs = [pl.col(c).sort_by(ARRIVAL).last().alias(ROOT_PREFIX_COL + c) for c in plan.root_columns]
    roots = spans.filter(pl.col(IS_ROOT)).group_by(TRACE_ID).agg([pl.lit(True).alias(HAS_ROOT), *root_aggs])
    if plan.join_root:
        spans = spans.join(roots, on=TRACE_ID, how="left").with_columns(pl.col(HAS_ROOT).fill_null(False))
    if plan.join_nd:
        counts = lf.select(TRACE_ID).group_by(TRACE_ID).agg(pl.len().cast(pl.Int64).alias(NUM_DESC))
        spans = spans.join(counts, on=TRACE_ID, how="left")
    aggs: list[pl.Expr] = [pl.len().cast(pl.Int64).alias("spans")]
    if plan.join_root:
        aggs += [pl.col(c).first() for c in (HAS_ROOT, *[ROOT_PREFIX_COL + c for c in plan.root_columns])]
    aggs += [r.row(row).any().alias(name) for name, row in plan.span_aggs]
    per = spans.group_by(TRACE_ID).agg(aggs)
    if plan.needs_root and not plan.join_root:
        per = per.join(roots, on=TRACE_ID, how="left").with_columns(pl.col(HAS_ROOT).fill_null(False))
    if plan.needs_descendants:
        per = per.with_columns(pl.col("spans").alias(NUM_DESC))
    per = per.with_columns([r.row(m).fill_null(False).alias(f"m{i}") for i, m in enumerate(plan.matched)])
    first = pl.coalesce(
        [pl.when(pl.col(f"m{i}")).then(pl.lit(i, pl.Int32)) for i in range(plan.decide)] + [pl.lit(None, pl.Int32)]
    )
    mcols = [f"m{i}" for i in range(len(plan.matched))]
    return per.select([TRACE_ID, "spans", first.alias("rule_index"), *mcols]).sort(TRACE_ID)


__all__ = ["PolarsRenderer", "evaluate"]
