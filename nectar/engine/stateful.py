"""Stateful samplers over a corpus: the rate Refinery's dynsampler gives each trace it decides.

The engines decide which rule (or top-level sampler) decides each trace; for a stateful sampler they cannot know the
rate, which depends on the traffic before it. This module replays that traffic, engine-neutral:

1. **instances**: which dynsampler each stateful rule uses. Refinery shares one dynsampler between samplers of one
   environment with the same type, goal and sorted field list (``makeDynsamplerKey``, refinery#1859); the first
   rule to create it sets its other settings (``RulesBasedSampler.Start`` creates them in rule order).
2. **stream**: every trace the instance decides, with its decision time (its latest span start: Refinery decides
   a trace once its last spans have arrived) and its trace key (``sample/trace_key.go``), in decision order (time,
   then the arrival of its last span, then trace id). The clock starts at the corpus's first span (t0 = 0).
3. **simulate** (:mod:`nectar.refinery.dynsampler`): the rate per trace; the decisions get Refinery's rate
   (clamped to >= 1), keep stays ``sampled`` (the random draw is a probability, 1/rate).
4. **summary** per instance for the reports (:class:`SamplerRun`): traces, keys, bursts, the starting rate and how
   many traces got it before the first update, and the rate over time of the busiest keys.

Trace keys are built in Polars here (:func:`build_keys`); the reference engine builds them trace by trace
(``reference.trace_key``), a transcription of Refinery's Go, and the tests hold the two to each other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from nectar.corpus.layout import ARRIVAL, PARENT_ID, TIMESTAMP, TRACE_ID, Corpus, ValueType
from nectar.engine.decision import EvalResult
from nectar.refinery import dynsampler, gostr
from nectar.refinery.model import (
    META_ROOT,
    ROOT_PREFIX,
    SIGNAL_TYPE,
    RulesBasedSampler,
    Sampler,
    SamplerConfig,
    SamplerKind,
)

MAX_KEY_VALUES = 100  # trace_key.go maxKeyLength: the value that reaches it is counted, not stored
KEY_SEPARATOR = "\u2022"  # the bullet after each value of a field
TOP_KEYS = 5  # keys per sampler with a rate-over-time series in the reports
MAX_POINTS = 120  # points per series (buckets of whole update intervals)

# (corpus, trace ids, FieldList, UseTraceLength) -> trace_id, key
KeyBuilder = Callable[[Corpus, pl.Series, Sequence[str], bool], pl.DataFrame]


@dataclass(frozen=True, slots=True)
class Member:
    """A rule (``rule_index`` None: the top-level sampler) whose sampler feeds an instance."""

    rule_index: int | None
    rule: str | None
    sampler: Sampler


@dataclass(frozen=True, slots=True)
class Instance:
    """One dynsampler as Refinery builds it: its settings (from the first member) and who feeds it."""

    settings: dynsampler.DynSettings
    members: tuple[Member, ...]


def instances(sampler: SamplerConfig | RulesBasedSampler | Sampler, cluster_size: int = 1) -> list[Instance]:
    """The dynsamplers of one environment's sampler, in creation order."""
    choice = sampler.choice if isinstance(sampler, SamplerConfig) else sampler
    if isinstance(choice, Sampler):
        if not choice.stateful:
            return []
        return [Instance(dynsampler.settings_for(choice, cluster_size), (Member(None, None, choice),))]
    if not isinstance(choice, RulesBasedSampler):
        return []
    groups: dict[tuple[str, int, tuple[str, ...]], list[Member]] = {}
    for i, rule in enumerate(choice.rules):
        s = rule.sampler
        if s is None or not s.stateful:
            continue
        key = (s.kind, dynsampler.shared_goal(s), tuple(sorted(s.field_list)))
        groups.setdefault(key, []).append(Member(i, rule.name, s))
    out = []
    for members in groups.values():
        # UseClusterSize: Refinery records the goal for division when any sampler sharing the instance asks
        use = any(m.sampler.params.get("UseClusterSize") is True for m in members)
        settings = dynsampler.settings_for(members[0].sampler, cluster_size, use_cluster_size=use)
        out.append(Instance(settings, tuple(members)))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Trace keys, vectorized


def _is_root(corpus: Corpus) -> tuple[pl.Expr, pl.Expr]:
    """(is a root span, is a log event), as the engines define them (``plan.root_rows``)."""
    signal = corpus.field_columns.get(SIGNAL_TYPE, {}).get(ValueType.STR)
    is_log = (pl.col(signal) == "log").fill_null(False) if signal else pl.lit(False)
    parent = pl.col(PARENT_ID)
    no_parent = parent.is_null() | (parent == "")
    return no_parent & ~is_log, is_log


def _typed_columns(corpus: Corpus, name: str) -> list[tuple[pl.Expr, ValueType]]:
    """A field's value columns, one per type (``meta.refinery.root`` from the root test), with their types."""
    if name == META_ROOT:
        is_root, is_log = _is_root(corpus)
        return [(pl.when(is_log).then(None).otherwise(is_root), ValueType.BOOL)]
    return [(pl.col(col), vt) for vt, col in corpus.field_columns.get(name, {}).items()]


def _text(raw: pl.Expr, vt: ValueType, for_root: bool) -> pl.Expr:
    """A typed value as the key writes it: span fields ``AddAsString`` (floats without exponent), root fields
    ``%v``; null stays null. Run on aggregated values (one per trace and value), never per span."""
    if vt is ValueType.STR:
        return raw
    if vt is ValueType.INT:
        return raw.cast(pl.String)
    if vt is ValueType.BOOL:
        return pl.when(raw.is_null()).then(None).when(raw).then(pl.lit("true")).otherwise(pl.lit("false"))
    if vt is ValueType.NULL:
        return pl.when(raw.fill_null(False)).then(pl.lit("<nil>"))
    if vt is ValueType.FLOAT:
        fmt = gostr.go_v_float if for_root else gostr.format_float_f
        return raw.map_elements(fmt, return_dtype=pl.String, skip_nulls=True)
    # JSON: a nested object or array, %v of the decoded value
    return raw.map_elements(lambda s: gostr.go_v(json.loads(s)), return_dtype=pl.String, skip_nulls=True)


def build_keys(corpus: Corpus, ids: pl.Series, fields: Sequence[str], use_trace_length: bool) -> pl.DataFrame:
    """Refinery's trace key (``traceKey.build``) of each trace in ``ids``: for each non-root field in sorted order,
    its distinct values over all spans, sorted, each followed by a bullet, then a comma (an empty string is never
    written; at most 99 values are stored over all fields, first by field then by arrival); then ``%v,`` of each
    ``root.`` field present on the root span (the last root to arrive); then the span count with
    ``UseTraceLength``.

    Aggregates before formatting: per field and type, the distinct (trace, value) pairs with their first arrival
    (one group-by in the engine), formatted once each; the 99-value cap ranks only the traces that exceed it."""
    ordered = sorted(fields)
    span_fields = [f for f in ordered if not f.startswith(ROOT_PREFIX)]
    root_fields = [f[len(ROOT_PREFIX) :] for f in ordered if f.startswith(ROOT_PREFIX)]
    wanted = pl.DataFrame({TRACE_ID: ids.cast(pl.String)}).unique(maintain_order=True).with_row_index("tix")
    # one read of the columns the key needs, traces as small integers: every group-by below runs in memory
    names = [f for f in span_fields + root_fields if f in corpus.field_columns]
    needed = {c for f in names for c in corpus.field_columns[f].values()}
    signal = corpus.field_columns.get(SIGNAL_TYPE, {}).get(ValueType.STR)
    needed |= {PARENT_ID, ARRIVAL} | ({signal} if signal else set())
    lf = (
        corpus.scan()
        .select(TRACE_ID, *sorted(needed - {TRACE_ID}))
        .join(wanted.lazy(), on=TRACE_ID, how="inner")
        .drop(TRACE_ID)
        .rename({"tix": TRACE_ID})
        .collect()
        .lazy()
    )
    result = wanted.lazy().select(pl.col("tix").alias(TRACE_ID))

    pieces = []
    for i, name in enumerate(span_fields):
        for raw, vt in _typed_columns(corpus, name):
            # -0.0 groups with 0.0 in the engine, but Go writes "-0": keep the sign of a zero as a key of its own
            neg0 = ((raw == 0.0) & ((1.0 / raw) < 0.0)) if vt is ValueType.FLOAT else pl.lit(False)
            text = _text(pl.col("raw"), vt, False)
            pieces.append(
                lf.filter(raw.is_not_null() if vt is not ValueType.NULL else raw.fill_null(False))
                .group_by(pl.col(TRACE_ID), raw.alias("raw"), neg0.alias("neg0"))
                .agg(pl.col(ARRIVAL).min().alias("first"))
                .select(
                    pl.col(TRACE_ID),
                    pl.lit(i, dtype=pl.Int32).alias("f"),
                    pl.when(pl.col("neg0")).then(pl.lit("-0")).otherwise(text).alias("v"),
                    pl.col("first"),
                )
            )
    if pieces:
        # values of two types can print alike (1 and "1"): one value, first seen where either was
        uniq = pl.concat(pieces).group_by(TRACE_ID, "f", "v").agg(pl.col("first").min())
        uniq = uniq.with_columns(pl.len().over(TRACE_ID).alias("n"))
        capped = (
            uniq.filter(pl.col("n") >= MAX_KEY_VALUES)
            .sort(TRACE_ID, "f", "first")
            .with_columns(pl.int_range(pl.len()).over(TRACE_ID).alias("rank"))
            .filter(pl.col("rank") < MAX_KEY_VALUES - 1)
            .drop("rank")
        )
        stored = pl.concat([uniq.filter(pl.col("n") < MAX_KEY_VALUES), capped]).collect()
        # Values as integers numbered in (field, value) order, so a trace's sorted ids are its key's span part in
        # order; the text is then written once per distinct id list (a handful), not once per trace.
        values = stored.select("f", "v").unique().sort("f", "v").with_row_index("vid")
        lists = (
            stored.lazy()
            .join(values.lazy(), on=["f", "v"])
            .group_by(TRACE_ID)
            .agg(pl.col("vid").sort().alias("vids"))
            .collect()
        )
        sigs = lists.select("vids").unique().with_row_index("sid")
        f_of = values.get_column("f").to_list()
        v_of = values.get_column("v").to_list()
        texts = []
        for vids in sigs.get_column("vids").to_list():
            out: list[str] = []
            for k, vid in enumerate(vids):
                if v_of[vid] != "":  # Refinery never writes an empty string (its prevStr starts empty)
                    out.append(v_of[vid] + KEY_SEPARATOR)
                if k == len(vids) - 1 or f_of[vids[k + 1]] != f_of[vid]:
                    out.append(",")
            texts.append("".join(out))
        sig_text = sigs.with_columns(pl.Series("sk", texts, dtype=pl.String)).drop("vids").lazy()
        spans_part = lists.lazy().join(sigs.lazy(), on="vids").join(sig_text, on="sid").select(TRACE_ID, "sk")
        result = result.join(spans_part, on=TRACE_ID, how="left")
    else:
        result = result.with_columns(pl.lit(None, dtype=pl.String).alias("sk"))

    cols = [(j, raw, vt) for j, name in enumerate(root_fields) for raw, vt in _typed_columns(corpus, name)]
    if cols:
        is_root, _ = _is_root(corpus)
        last = pl.col(ARRIVAL).arg_max()
        roots = (
            lf.filter(is_root)
            .group_by(TRACE_ID)
            .agg([raw.get(last).alias(f"r{k}") for k, (_, raw, _) in enumerate(cols)])
        )
        by_field: dict[int, list[pl.Expr]] = {}
        for k, (j, _, vt) in enumerate(cols):
            by_field.setdefault(j, []).append(_text(pl.col(f"r{k}"), vt, True))
        root_texts = [pl.coalesce(e) if len(e) > 1 else e[0] for _, e in sorted(by_field.items())]
        rk = pl.concat_str([t + "," for t in root_texts], ignore_nulls=True)
        roots = roots.select(pl.col(TRACE_ID), rk.alias("rk"))
        result = result.join(roots, on=TRACE_ID, how="left")
    else:
        result = result.with_columns(pl.lit(None, dtype=pl.String).alias("rk"))

    parts = [pl.col("sk").fill_null(""), pl.col("rk").fill_null("")]
    if use_trace_length:
        counts = lf.group_by(TRACE_ID).agg(pl.len().cast(pl.String).alias("n"))
        result = result.join(counts, on=TRACE_ID, how="left")
        parts.append(pl.col("n").fill_null("0"))
    keys = result.select(pl.col(TRACE_ID).alias("tix"), pl.concat_str(parts).alias("key"))
    return wanted.lazy().join(keys, on="tix", how="left").select(TRACE_ID, "key").collect()


def decision_times(corpus: Corpus) -> pl.DataFrame:
    """Per trace: its decision time (ns since the corpus's first span start) and the arrival of its last span."""
    lf = corpus.scan()
    ts = pl.col(TIMESTAMP).dt.epoch("us")
    t0 = lf.select(ts.min()).collect().item()
    t0 = int(t0) if t0 is not None else 0
    return (
        lf.group_by(TRACE_ID)
        .agg(((ts.max() - t0) * 1000).alias("t_ns"), pl.col(ARRIVAL).max().alias("last_arrival"))
        .collect()
    )


# ---------------------------------------------------------------------------------------------------------------
# The replay and its summary


@dataclass(frozen=True, slots=True)
class KeySeries:
    """One key's traffic and rate over time: ``points`` are (seconds since the corpus start, mean rate of its
    traces in that bucket)."""

    key: str
    traces: int
    spans: int
    points: tuple[tuple[float, float], ...]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "traces": self.traces, "spans": self.spans, "rate_over_time": list(self.points)}


@dataclass(frozen=True, slots=True)
class SamplerRun:
    """What one simulated dynsampler did over the corpus (plain data for the reports)."""

    kind: str
    rules: tuple[str, ...]
    settings: dict[str, Any]
    traces: int
    spans: int
    keys: int
    expected_kept_spans: float
    mean_rate: float  # spans-weighted: spans / expected kept spans
    starting_rate: int
    first_update_s: float | None
    traces_at_starting_rate: int
    updates: int
    bursts: int
    bucket_s: float
    top_keys: tuple[KeySeries, ...] = field(default_factory=tuple)

    @property
    def note(self) -> str:
        """The report's sentence about the history the sampler started without."""
        who = ", ".join(self.rules) if self.rules else "the top-level sampler"
        if self.first_update_s is None:
            return (
                f"{self.kind} ({who}) never updated within the corpus window: all {_traces(self.traces)} got its "
                f"starting rate {self.starting_rate}"
            )
        return (
            f"{self.kind} ({who}) had no history before its first update at {self.first_update_s:,.6g} s: "
            f"{_traces(self.traces_at_starting_rate)} got its starting rate {self.starting_rate}, as Refinery "
            "does after a restart"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rules": list(self.rules),
            "settings": self.settings,
            "traces": self.traces,
            "spans": self.spans,
            "keys": self.keys,
            "expected_kept_spans": self.expected_kept_spans,
            "mean_rate": self.mean_rate,
            "starting_rate": self.starting_rate,
            "first_update_s": self.first_update_s,
            "traces_at_starting_rate": self.traces_at_starting_rate,
            "updates": self.updates,
            "bursts": self.bursts,
            "bucket_s": self.bucket_s,
            "note": self.note,
            "top_keys": [k.to_json() for k in self.top_keys],
        }


def _traces(n: int) -> str:
    return f"{n:,} trace" + ("" if n == 1 else "s")


def _sig(x: float) -> float:
    return float(f"{x:.9g}")


def starting_rate(settings: dynsampler.DynSettings) -> int:
    """What the library returns before its first update (Refinery's clamp applied)."""
    kind = settings.kind
    if kind in (SamplerKind.EMA_DYNAMIC, SamplerKind.EMA_THROUGHPUT):
        return max(settings.initial_rate, 1)
    if kind == SamplerKind.DYNAMIC:
        return max(settings.goal_rate, 1)
    return 1  # throughput samplers: no rate yet (TotalThroughput 1, Windowed 0 -> 1)


def replay(
    result: EvalResult,
    sampler: SamplerConfig | RulesBasedSampler | Sampler,
    corpus: Corpus,
    cluster_size: int = 1,
    key_builder: KeyBuilder = build_keys,
) -> EvalResult:
    """``result`` with every stateful sampler's traces at their simulated rate, and a :class:`SamplerRun` each."""
    insts = instances(sampler, cluster_size)
    dec = result.decisions
    if not insts or dec.height == 0:
        return result
    times = decision_times(corpus)
    rates: list[pl.DataFrame] = []
    runs: list[SamplerRun] = []
    for inst in insts:
        frames = []
        for m in inst.members:
            mine = dec.filter(
                pl.col("rule_index").is_null() if m.rule_index is None else pl.col("rule_index") == m.rule_index
            ).select(TRACE_ID, "spans")
            if mine.height == 0:
                continue
            keys = key_builder(corpus, mine.get_column(TRACE_ID), m.sampler.field_list,
                               m.sampler.params.get("UseTraceLength") is True)  # fmt: skip
            frames.append(mine.join(keys, on=TRACE_ID, how="left"))
        if not frames:
            continue
        stream = (
            pl.concat(frames)
            .join(times, on=TRACE_ID, how="left")
            # a trace without timestamps decides at the start (t0) in arrival order
            .with_columns(pl.col("key").fill_null(""), pl.col("t_ns").fill_null(0), pl.col("last_arrival").fill_null(0))
            .sort("t_ns", "last_arrival", TRACE_ID)
        )
        names = stream.select(pl.col("key").unique().sort()).with_row_index("kid")
        stream = stream.join(names, on="key", how="left", maintain_order="left")
        sim = dynsampler.simulate(
            inst.settings,
            stream.get_column("t_ns").to_numpy(),
            stream.get_column("kid").cast(pl.Int64).to_numpy(),
            stream.get_column("spans").to_numpy(),
        )
        stream = stream.with_columns(pl.Series("new_rate", dynsampler.refinery_rate(sim.rates), dtype=pl.UInt64))
        rates.append(stream.select(TRACE_ID, "new_rate"))
        runs.append(_summary(inst, stream, sim))
    if not rates:
        return result
    new = pl.concat(rates)
    dec = (
        dec.join(new, on=TRACE_ID, how="left", maintain_order="left")
        .with_columns(pl.coalesce("new_rate", "rate").cast(pl.UInt64).alias("rate"))
        .drop("new_rate")
    )
    return replace(result, decisions=dec, samplers=(*result.samplers, *runs))


def _summary(inst: Instance, stream: pl.DataFrame, sim: dynsampler.Simulation) -> SamplerRun:
    s = inst.settings
    spans = stream.get_column("spans").cast(pl.Float64)
    rate = stream.get_column("new_rate").cast(pl.Float64)
    kept = float((spans / rate).sum() or 0.0)
    total_spans = int(spans.sum() or 0)
    first = sim.first_update_ns
    at_start = int(stream.height if first is None else (stream.get_column("t_ns") < first).sum())
    t_end = int(stream.get_column("t_ns").cast(pl.Int64).max() or 0)  # type: ignore[arg-type]
    nb = max(1, t_end // s.interval_ns + 1)
    width = s.interval_ns * max(1, math.ceil(nb / MAX_POINTS))
    busiest = (
        stream.group_by("key")
        .agg(pl.len().alias("traces"), pl.col("spans").sum().alias("spans"))
        .sort(["spans", "key"], descending=[True, False])
        .head(TOP_KEYS)
    )
    series = []
    for row in busiest.iter_rows(named=True):
        pts = (
            stream.filter(pl.col("key") == row["key"])
            .group_by((pl.col("t_ns") // width).alias("b"))
            .agg(pl.col("new_rate").cast(pl.Float64).mean().alias("r"))
            .sort("b")
        )
        points = tuple(
            (_sig(b * width / dynsampler.NS), _sig(r))
            for b, r in zip(pts.get_column("b"), pts.get_column("r"), strict=True)
        )
        series.append(KeySeries(row["key"], int(row["traces"]), int(row["spans"]), points))
    return SamplerRun(
        kind=s.kind,
        rules=tuple(m.rule for m in inst.members if m.rule is not None),
        settings=s.describe(),
        traces=stream.height,
        spans=total_spans,
        keys=int(stream.get_column("key").n_unique()),
        expected_kept_spans=_sig(kept),
        mean_rate=_sig(total_spans / kept) if kept else 0.0,
        starting_rate=starting_rate(s),
        first_update_s=None if first is None else _sig(first / dynsampler.NS),
        traces_at_starting_rate=at_start,
        updates=len(sim.updates),
        bursts=len(sim.bursts),
        bucket_s=_sig(width / dynsampler.NS),
        top_keys=tuple(series),
    )


__all__ = [
    "Instance",
    "KeySeries",
    "Member",
    "SamplerRun",
    "build_keys",
    "decision_times",
    "instances",
    "replay",
    "starting_rate",
]
