"""What a corpus holds: overall statistics and the field catalog that ``nectar propose`` grounds on.

Both are computed with Polars lazy queries over :meth:`Corpus.scan` (one pass for the catalog, two small ones
for the statistics), so they stay fast on millions of spans. Both are typed, frozen dataclasses with a
``to_json()`` giving plain data in a deterministic order: fields sorted by name, types in
:data:`~nectar.corpus.layout.TYPE_ORDER`, top values by count (descending) then value.

Quantiles use the "nearest" method, so every reported quantile is a value some span really has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from nectar.corpus.layout import PARENT_ID, TRACE_ID, Corpus, ValueType

QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
TOP_VALUES = 10
LOW_CARDINALITY = 50  # ints with at most this many distinct values also get top values


@dataclass(frozen=True, slots=True)
class Distribution:
    """min / p50 / p90 / p99 / max of a set of numbers (nearest-rank quantiles)."""

    min: float | int
    p50: float | int
    p90: float | int
    p99: float | int
    max: float | int

    def to_json(self) -> dict[str, float | int]:
        return {"min": self.min, "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max}


@dataclass(frozen=True, slots=True)
class ServiceCount:
    name: str | None  # None: spans without a string service.name
    spans: int


@dataclass(frozen=True, slots=True)
class CorpusStats:
    """Size, time window, trace shape and services of a corpus."""

    spans: int
    traces: int
    time_start: str | None
    time_end: str | None
    window_seconds: float
    sample_rate: float
    files: int
    roots: int  # root spans (parent id null or empty, as Refinery decides: SEMANTICS.md 2.1)
    traces_with_root: int
    spans_per_trace: Distribution | None
    services: tuple[ServiceCount, ...]  # by span count, descending, then name

    def to_json(self) -> dict[str, Any]:
        return {
            "spans": self.spans,
            "traces": self.traces,
            "time_window": {"start": self.time_start, "end": self.time_end, "seconds": self.window_seconds},
            "sample_rate": self.sample_rate,
            "files": self.files,
            "roots": self.roots,
            "traces_with_root": self.traces_with_root,
            "traces_without_root": self.traces - self.traces_with_root,
            "spans_per_trace": self.spans_per_trace.to_json() if self.spans_per_trace else None,
            "services": [{"name": s.name, "spans": s.spans} for s in self.services],
        }


def _is_root() -> pl.Expr:
    # Refinery: a span is a root unless its parent id holds a non-empty string (SEMANTICS.md 2.1).
    return pl.col(PARENT_ID).is_null() | (pl.col(PARENT_ID) == "")


def _distribution(expr: pl.Expr, prefix: str, integer: bool = False) -> list[pl.Expr]:
    """min, quantiles, max; "nearest" quantiles of integers are integers, so they are reported as such."""
    out = [expr.min().alias(f"{prefix}min")]
    for name, q in QUANTILES:
        e = expr.quantile(q, interpolation="nearest")
        out.append((e.cast(pl.Int64) if integer else e).alias(f"{prefix}{name}"))
    out.append(expr.max().alias(f"{prefix}max"))
    return out


def _read_distribution(row: dict[str, Any], prefix: str) -> Distribution | None:
    vals = [row[f"{prefix}{k}"] for k in ("min", "p50", "p90", "p99", "max")]
    if vals[0] is None:
        return None
    return Distribution(*vals)


def corpus_stats(corpus: Corpus) -> CorpusStats:
    """Statistics of ``corpus``: spans, traces, window, roots, spans per trace, services."""
    lf = corpus.scan()
    m = corpus.manifest
    service = corpus.field_columns.get("service.name", {}).get(ValueType.STR)
    per_trace = lf.group_by(TRACE_ID).agg(pl.len().alias("n"), _is_root().any().alias("has_root"))
    shape = per_trace.select(
        pl.len().alias("traces"),
        pl.col("has_root").sum().alias("with_root"),
        *_distribution(pl.col("n"), "spt_", integer=True),
    )
    totals = lf.select(pl.len().alias("spans"), _is_root().sum().alias("roots"))
    svc_col = pl.col(service) if service else pl.lit(None, dtype=pl.String)
    services = lf.group_by(svc_col.alias("service")).agg(pl.len().alias("spans"))
    shape_df, totals_df, services_df = pl.collect_all([shape, totals, services])
    row = shape_df.row(0, named=True)
    tot = totals_df.row(0, named=True)
    svc_rows = sorted((r for r in services_df.iter_rows() if r[1]), key=lambda r: (-r[1], r[0] is None, r[0] or ""))
    return CorpusStats(
        spans=int(tot["spans"]),
        traces=int(row["traces"]),
        time_start=m.time_start,
        time_end=m.time_end,
        window_seconds=m.window_seconds,
        sample_rate=m.sample_rate,
        files=len(m.files),
        roots=int(tot["roots"] or 0),
        traces_with_root=int(row["with_root"] or 0),
        spans_per_trace=_read_distribution(row, "spt_"),
        services=tuple(ServiceCount(name, int(n)) for name, n in svc_rows),
    )


# --- the field catalog -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopValue:
    value: str | int | float | bool
    count: int


@dataclass(frozen=True, slots=True)
class TypeSummary:
    """One value type of a field: how many spans have it, distinct values, top values or quantiles.

    For :attr:`ValueType.NULL` (key present with null) only ``count`` is meaningful.
    """

    type: ValueType
    count: int
    distinct: int
    top_values: tuple[TopValue, ...] = ()
    quantiles: Distribution | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type.value, "count": self.count, "distinct": self.distinct}
        if self.top_values:
            d["top_values"] = [{"value": t.value, "count": t.count} for t in self.top_values]
        if self.quantiles is not None:
            d["quantiles"] = self.quantiles.to_json()
        return d


@dataclass(frozen=True, slots=True)
class FieldSummary:
    """A field as rules see it: its types, how many spans have it (with any type), distinct values."""

    name: str
    present: int  # spans that have the key (any type, null included)
    presence: float  # present / spans
    distinct: int  # distinct non-null values over all types (values of different types are different)
    types: tuple[TypeSummary, ...]

    def type_of(self, vtype: ValueType) -> TypeSummary | None:
        return next((t for t in self.types if t.type is vtype), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "present": self.present,
            "presence": self.presence,
            "distinct": self.distinct,
            "types": [t.to_json() for t in self.types],
        }


@dataclass(frozen=True, slots=True)
class FieldCatalog:
    """Every field of a corpus, sorted by name."""

    spans: int
    fields: tuple[FieldSummary, ...]

    def get(self, name: str) -> FieldSummary | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def to_json(self) -> dict[str, Any]:
        return {"spans": self.spans, "fields": [f.to_json() for f in self.fields]}


_NUMERIC = (ValueType.INT, ValueType.FLOAT)


def _type_exprs(col: str, t: ValueType, p: str, top: int) -> list[pl.Expr]:
    """Aggregations of one canonical column (aliases prefixed with ``p``)."""
    c = pl.col(col)
    if t is ValueType.NULL:
        return [c.fill_null(False).sum().alias(p + "count")]
    exprs = [c.count().alias(p + "count")]
    if t in _NUMERIC:
        exprs += _distribution(c, p, integer=t is ValueType.INT)
    if t is ValueType.FLOAT:
        exprs.append(c.drop_nulls().n_unique().alias(p + "distinct"))
    else:
        # One hash pass gives both the distinct count and the top values.
        vc = c.drop_nulls().value_counts(name="__n").implode()
        e = pl.element()
        ordered = e.sort_by([e.struct.field("__n"), e.struct.field(col)], descending=[True, False])
        exprs += [vc.list.len().alias(p + "distinct"), vc.list.eval(ordered.head(top)).alias(p + "top")]
    return exprs


def field_catalog(corpus: Corpus, top: int = TOP_VALUES, low_cardinality: int = LOW_CARDINALITY) -> FieldCatalog:
    """The field catalog of ``corpus``, computed with Polars over its canonical frame.

    Top values for strings, bools, JSON and ints with at most ``low_cardinality`` distinct values; quantiles
    (min/p50/p90/p99/max) for ints and floats. One query per field, each reading only that field's columns,
    so memory stays bounded by one column rather than the whole corpus (a single query over every column
    holds them all at once: 5 GB on 10 million spans).
    """
    lf = corpus.scan()
    spans = int(lf.select(pl.len()).collect().item())
    fields = []
    for fname, by_type in corpus.field_columns.items():
        present = [pl.col(c) if t is ValueType.NULL else pl.col(c).is_not_null() for t, c in by_type.items()]
        exprs = [pl.any_horizontal(present).fill_null(False).sum().alias("present")]
        for t, col in by_type.items():
            exprs += _type_exprs(col, t, f"{t.value}_", top)
        row = lf.select(exprs).collect().row(0, named=True)
        types = []
        for t, col in by_type.items():
            p = f"{t.value}_"
            count = int(row[p + "count"] or 0)
            if t is ValueType.NULL:
                types.append(TypeSummary(t, count, 0))
                continue
            distinct = int(row[p + "distinct"] or 0)
            tops: tuple[TopValue, ...] = ()
            if t is not ValueType.FLOAT and (t is not ValueType.INT or distinct <= low_cardinality):
                tops = tuple(TopValue(d[col], int(d["__n"])) for d in row[p + "top"] or [])
            quant = _read_distribution(row, p) if t in _NUMERIC else None
            types.append(TypeSummary(t, count, distinct, tops, quant))
        present_n = int(row["present"] or 0)
        fields.append(
            FieldSummary(
                name=fname,
                present=present_n,
                presence=present_n / spans if spans else 0.0,
                distinct=sum(t.distinct for t in types),
                types=tuple(types),
            )
        )
    return FieldCatalog(spans=spans, fields=tuple(sorted(fields, key=lambda f: f.name)))


# --- text rendering ----------------------------------------------------------------------------------------------


def _num(v: float | int | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:.1f}"
    return f"{int(v):,}"


def render_stats(s: CorpusStats) -> str:
    """Plain-text rendering of :class:`CorpusStats`."""
    lines = [
        f"spans            {s.spans:,}",
        f"traces           {s.traces:,}  ({s.traces_with_root:,} with a root, "
        f"{s.traces - s.traces_with_root:,} without)",
        f"root spans       {s.roots:,}",
        f"time window      {s.time_start or '-'} .. {s.time_end or '-'}  ({s.window_seconds:,.0f} s)",
        f"sample rate      {_num(s.sample_rate)}",
        f"part files       {s.files}",
    ]
    if s.spans_per_trace is not None:
        d = s.spans_per_trace
        lines.append(
            f"spans per trace  min {_num(d.min)}  p50 {_num(d.p50)}  p90 {_num(d.p90)}  "
            f"p99 {_num(d.p99)}  max {_num(d.max)}"
        )
    lines.append(f"services         {len(s.services)}")
    width = max((len(x.name or "(none)") for x in s.services), default=0)
    for svc in s.services:
        share = svc.spans / s.spans if s.spans else 0.0
        lines.append(f"  {(svc.name or '(none)'):<{width}}  {svc.spans:>12,}  {share:6.1%}")
    return "\n".join(lines)


def _show(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v) if len(v) <= 48 else repr(v[:45] + "...")
    return _num(v) if isinstance(v, (int, float)) else str(v)


def render_catalog(c: FieldCatalog, top: int = 5) -> str:
    """Plain-text rendering of :class:`FieldCatalog` (the first ``top`` top values of each type)."""
    lines = [f"{len(c.fields)} fields over {c.spans:,} spans"]
    for f in c.fields:
        types = ", ".join(f"{t.type.value} {t.count:,}" for t in f.types)
        lines.append(f"{f.name}  [{types}]  present {f.presence:.1%}  distinct {f.distinct:,}")
        for t in f.types:
            tag = f"{t.type.value}: " if len(f.types) > 1 else ""
            if t.quantiles is not None:
                q = t.quantiles
                lines.append(
                    f"    {tag}min {_num(q.min)}  p50 {_num(q.p50)}  p90 {_num(q.p90)}  "
                    f"p99 {_num(q.p99)}  max {_num(q.max)}"
                )
            if t.top_values:
                shown = ", ".join(f"{_show(v.value)} {v.count:,}" for v in t.top_values[:top])
                more = " ..." if t.distinct > min(top, len(t.top_values)) else ""
                lines.append(f"    {tag}{shown}{more}")
    return "\n".join(lines)


__all__ = [
    "CorpusStats",
    "Distribution",
    "FieldCatalog",
    "FieldSummary",
    "ServiceCount",
    "TopValue",
    "TypeSummary",
    "corpus_stats",
    "field_catalog",
    "render_catalog",
    "render_stats",
]
