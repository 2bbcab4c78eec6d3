"""Refinery's stateful samplers, simulated: the rates dynsampler-go gives a stream of decisions.

Refinery 3.2.2 hands every trace a stateful sampler decides to honeycombio/dynsampler-go (``GetSampleRateMulti(key,
span_count)``) and keeps it with probability 1/rate. The rate depends on the traffic the sampler has seen, so the
only honest forecast is to replay that traffic: this module is the library's rate arithmetic and update schedule,
written from its source (``../shared/refinery/SAMPLERS.md`` summarises it) and checked against the library itself
(``tests/data/samplers``: per-event rates measured by driving the Go code with a simulated clock).

The input is one stream per dynsampler instance, in decision order: times (ns from the stream start, t0 = 0),
integer key ids (ids numbered in byte-wise key order, which is Go's ``sort.Strings`` order: the carry-over of
unused budget walks keys in that order) and span counts. The output is the raw library return value per event
(Refinery clamps a rate below 1 to 1, :func:`refinery_rate`) and what the schedule did (updates, bursts).

The work is per update interval, not per event: each interval's counting (first-come-first-served ``MaxKeys``,
burst sums) is a few NumPy operations over the interval's slice; the rate arithmetic runs once per update over
the keys. Intervals without events are skipped in one step (an update with no counts changes nothing in the EMA
samplers; in the others only the last one before the next event matters).

Schedule (the library's ticker goroutine, made deterministic as SAMPLERS.md describes): a tick at ``k * I`` fires
before any event at a time ``>= k * I``. EMA samplers: each tick runs the update, then ``intervalCount += 1``; a
burst (``currentBurstSum >= burstThreshold`` once ``intervalCount >= BurstDetectionDelay``) runs the update right
after the event that crossed it (that event still gets the old rate) and restarts the ticker from there, without
counting an interval. Go reacts to a burst asynchronously; this is the "immediate" model, the only deterministic
one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nectar.errors import NectarError
from nectar.refinery import gostr
from nectar.refinery.model import Sampler, SamplerKind

NS = 1_000_000_000
REFINERY_MAX_KEYS = 500  # sample/*.go createDynFor*: MaxKeys 0 -> 500 (omitting it does not mean unbounded)
DEFAULT_CLEAR_NS = 30 * NS  # Dynamic and TotalThroughput: ClearFrequency 0 -> 30s (wrapper and library)
DEFAULT_ADJUST_NS = 15 * NS  # EMA samplers: AdjustmentInterval 0 -> 15s
DEFAULT_UPDATE_NS = NS  # Windowed: UpdateFrequency 0 -> 1s; LookbackFrequency 0 -> 30 x UpdateFrequency

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DynSettings:
    """The effective settings of one dynsampler instance, after Refinery's wrapper and the library's ``Start()``
    defaults (SAMPLERS.md, "Refinery 3.2.2 wrapper details").

    ``goal_rate``: GoalSampleRate (EMA dynamic) or SampleRate (classic dynamic). ``goal_throughput``: events/s
    (after ``UseClusterSize`` divided it by the cluster). ``initial_rate``: what EMA samplers return before their
    first update (GoalSampleRate, or InitialSampleRate for EMAThroughput). ``interval_ns``: AdjustmentInterval,
    ClearFrequency or UpdateFrequency; ``lookback_ns``: Windowed's LookbackFrequency (a whole multiple of the
    interval).
    """

    kind: str
    interval_ns: int
    max_keys: int = REFINERY_MAX_KEYS
    goal_rate: int = 10
    goal_throughput: float = 100.0
    initial_rate: int = 10
    lookback_ns: int = 0
    weight: float = 0.5
    age_out: float = 0.5
    burst_multiple: float = 2.0
    burst_delay: int = 3

    @property
    def interval_seconds(self) -> float:
        return go_seconds(self.interval_ns)

    def describe(self) -> dict[str, Any]:
        """The settings that matter for this kind, for reports (plain data)."""
        out: dict[str, Any] = {"kind": self.kind, "max_keys": self.max_keys}
        if self.kind == SamplerKind.DYNAMIC:
            out |= {"sample_rate": self.goal_rate, "clear_frequency_s": self.interval_seconds}
        elif self.kind == SamplerKind.EMA_DYNAMIC:
            out |= {"goal_sample_rate": self.goal_rate, "adjustment_interval_s": self.interval_seconds}
        elif self.kind == SamplerKind.EMA_THROUGHPUT:
            out |= {
                "goal_throughput_per_sec": self.goal_throughput,
                "initial_sample_rate": self.initial_rate,
                "adjustment_interval_s": self.interval_seconds,
            }
        elif self.kind == SamplerKind.WINDOWED_THROUGHPUT:
            out |= {
                "goal_throughput_per_sec": self.goal_throughput,
                "update_frequency_s": self.interval_seconds,
                "lookback_frequency_s": self.lookback_ns / NS,
            }
        else:
            out |= {"goal_throughput_per_sec": self.goal_throughput, "clear_frequency_s": self.interval_seconds}
        if self.kind in (SamplerKind.EMA_DYNAMIC, SamplerKind.EMA_THROUGHPUT):
            out |= {
                "weight": self.weight,
                "age_out_value": self.age_out,
                "burst_multiple": self.burst_multiple,
                "burst_detection_delay": self.burst_delay,
            }
        return out


def go_seconds(ns: int) -> float:
    """Go's ``time.Duration.Seconds()``: whole seconds plus the remainder, as Go computes it."""
    sec, rem = divmod(abs(ns), NS)
    value = float(sec) + float(rem) / 1e9
    return -value if ns < 0 else value


def _int(params: Mapping[str, Any], key: str) -> int:
    v = params.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _float(params: Mapping[str, Any], key: str) -> float:
    v = params.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def _duration(params: Mapping[str, Any], key: str) -> int:
    v = params.get(key)
    ns = gostr.parse_duration(v) if isinstance(v, str) else None
    return ns or 0


def _go_div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def shared_goal(sampler: Sampler) -> int:
    """The number in Refinery's shared-dynsampler key (``makeDynsamplerKey``): SampleRate, GoalSampleRate or
    GoalThroughputPerSec as the config holds it."""
    key = {SamplerKind.DYNAMIC: "SampleRate", SamplerKind.EMA_DYNAMIC: "GoalSampleRate"}.get(
        sampler.kind, "GoalThroughputPerSec"
    )
    return _int(sampler.params, key)


def settings_for(sampler: Sampler, cluster_size: int = 1, use_cluster_size: bool | None = None) -> DynSettings:
    """Effective settings of the dynsampler Refinery builds for ``sampler``.

    ``cluster_size``: the number of Refinery peers. For throughput samplers with ``UseClusterSize`` (or
    ``use_cluster_size``, when instances sharing one dynsampler disagree: any one of them asking for it applies it),
    Refinery sets the goal to ``max(GoalThroughputPerSec / peers, 1)`` (integer division), after the library's
    defaults, so even an absent goal becomes 1 then. Raises :class:`NectarError` for a kind that is not stateful
    or an interval Go's ticker refuses (``time.NewTicker`` panics on a non-positive duration).
    """
    p = sampler.params
    kind = sampler.kind
    max_keys = _int(p, "MaxKeys") or REFINERY_MAX_KEYS
    if use_cluster_size is None:
        use_cluster_size = p.get("UseClusterSize") is True
    tps = _int(p, "GoalThroughputPerSec")

    def goal_tps() -> float:
        base = tps or 100
        if use_cluster_size and kind in (
            SamplerKind.EMA_THROUGHPUT,
            SamplerKind.WINDOWED_THROUGHPUT,
            SamplerKind.TOTAL_THROUGHPUT,
        ):
            return float(max(_go_div(tps, max(cluster_size, 1)), 1))
        return float(base)

    if kind == SamplerKind.DYNAMIC:
        s = DynSettings(
            kind, _duration(p, "ClearFrequency") or DEFAULT_CLEAR_NS, max_keys, goal_rate=_int(p, "SampleRate") or 10
        )
    elif kind in (SamplerKind.EMA_DYNAMIC, SamplerKind.EMA_THROUGHPUT):
        weight = _float(p, "Weight") or 0.5
        goal = _int(p, "GoalSampleRate") or 10
        initial = goal if kind == SamplerKind.EMA_DYNAMIC else (_int(p, "InitialSampleRate") or 10)
        s = DynSettings(
            kind,
            _duration(p, "AdjustmentInterval") or DEFAULT_ADJUST_NS,
            max_keys,
            goal_rate=goal,
            goal_throughput=goal_tps(),
            initial_rate=initial,
            weight=weight,
            age_out=_float(p, "AgeOutValue") or weight,
            burst_multiple=_float(p, "BurstMultiple") or 2.0,
            burst_delay=_int(p, "BurstDetectionDelay") or 3,
        )
        if kind == SamplerKind.EMA_THROUGHPUT and s.interval_ns < 1_000_000:
            raise NectarError(
                f"EMAThroughputSampler AdjustmentInterval {p.get('AdjustmentInterval')!r} is under 1ms: the library "
                "refuses to start it (Refinery then runs no sampler)"
            )
    elif kind == SamplerKind.WINDOWED_THROUGHPUT:
        upd = _duration(p, "UpdateFrequency") or DEFAULT_UPDATE_NS
        look = _duration(p, "LookbackFrequency") or 30 * upd
        look = upd * _go_div(look, upd) if upd else look
        s = DynSettings(kind, upd, max_keys, goal_throughput=goal_tps(), lookback_ns=look)
    elif kind == SamplerKind.TOTAL_THROUGHPUT:
        s = DynSettings(kind, _duration(p, "ClearFrequency") or DEFAULT_CLEAR_NS, max_keys, goal_throughput=goal_tps())
    else:
        raise NectarError(f"{kind} is not a stateful sampler")
    if s.interval_ns <= 0:
        raise NectarError(f"{kind}: a negative interval makes Refinery's ticker panic (time.NewTicker)")
    return s


# ---------------------------------------------------------------------------------------------------------------
# The library's arithmetic (keyCalculation.go and each sampler's updateMaps)


def go_max(a: float, b: float) -> float:
    """Go's ``math.Max``: NaN wins (Python's ``max(1, nan)`` is 1, Go's is NaN)."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a > b else b


def _go_int(x: float) -> int:
    """Go's ``int(float64)`` on amd64 for what the rate code can produce (out of range: the int64 minimum)."""
    if math.isnan(x) or math.isinf(x) or not -(2.0**63) <= x < 2.0**63:
        return gostr.INT64_MIN
    return int(x)


def calculate_sample_rates(goal_ratio: float, ids: Sequence[int], counts: Sequence[float]) -> dict[int, int]:
    """``calculateSampleRates``: per key (ids in sorted key order), a rate that brings the key to its log10 share
    of the goal; a key under its share gets 1 and passes the unused budget on to the keys after it. NaN and
    infinities follow Go (``max(1, NaN)`` is NaN; a NaN rate becomes 1)."""
    rates: dict[int, int] = {}
    remaining = len(ids)
    extra = 0.0
    for key, raw in zip(ids, counts, strict=True):
        count = go_max(1.0, raw)
        goal = go_max(1.0, _mul(_log10(count), goal_ratio))
        share = extra / remaining
        goal += share
        extra -= share
        remaining -= 1
        if count <= goal:
            rates[key] = 1
            extra += goal - count
            continue
        q = _div(count, goal)
        rate = 1 if math.isnan(q) else _go_int(float(math.ceil(q)) if not math.isinf(q) else q)
        rates[key] = rate
        extra += goal - _div(count, float(rate))
    return rates


def _mul(a: float, b: float) -> float:
    """IEEE multiplication (Python's ``0 * inf`` is already NaN; kept as a name for the Go expression)."""
    return a * b


def _log10(x: float) -> float:
    if x > 0:
        return math.log10(x)
    return -math.inf if x == 0 else math.nan


# ---------------------------------------------------------------------------------------------------------------
# The simulation


@dataclass(slots=True)
class Simulation:
    """What replaying one stream through one dynsampler gave.

    ``rates``: the library's return value per event (before Refinery's clamp to >= 1). ``updates``: the times (ns)
    of the updates that changed the rate table; ``bursts``: the event indexes after which a burst update ran;
    ``first_update_ns``: when the first update with data ran (None: never; until then the sampler returned its
    starting rate).
    """

    rates: IntArray
    updates: list[int] = field(default_factory=list)
    bursts: list[int] = field(default_factory=list)
    first_update_ns: int | None = None


def refinery_rate(raw: IntArray) -> IntArray:
    """Refinery's wrappers: ``rate < 1 -> 1`` (``uint(...)`` of the library's int)."""
    return np.maximum(raw, 1)


def _counted(keys: IntArray, max_keys: int, already: set[int] | None = None) -> npt.NDArray[np.bool_]:
    """Which events of one interval the MaxKeys limit counts: keys in first-arrival order, the first ``max_keys``
    distinct keys counted (first come, first served; a key already counted stays counted)."""
    if max_keys <= 0 or keys.size == 0:
        return np.ones(keys.size, dtype=bool)
    uniq, first = np.unique(keys, return_index=True)
    if uniq.size <= max_keys:
        return np.ones(keys.size, dtype=bool)
    order = np.argsort(first, kind="stable")
    allowed = uniq[order[:max_keys]]
    return np.isin(keys, allowed)


def _bincount(keys: IntArray, weights: IntArray, mask: npt.NDArray[np.bool_]) -> dict[int, float]:
    k = keys[mask]
    if k.size == 0:
        return {}
    uniq, inv = np.unique(k, return_inverse=True)
    sums = np.bincount(inv, weights=weights[mask].astype(np.float64))
    return {int(u): float(s) for u, s in zip(uniq, sums, strict=True)}


def simulate(settings: DynSettings, times_ns: IntArray, keys: IntArray, counts: IntArray) -> Simulation:
    """Replay one stream (times non-decreasing, ns from the stream start; key ids in sorted key order; span
    counts) through the dynsampler ``settings`` describes."""
    times_ns = np.asarray(times_ns, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if times_ns.size and np.any(np.diff(times_ns) < 0):
        raise ValueError("event times must be non-decreasing")
    kind = settings.kind
    if kind in (SamplerKind.EMA_DYNAMIC, SamplerKind.EMA_THROUGHPUT):
        return _simulate_ema(settings, times_ns, keys, counts)
    if kind == SamplerKind.WINDOWED_THROUGHPUT:
        return _simulate_windowed(settings, times_ns, keys, counts)
    if kind in (SamplerKind.DYNAMIC, SamplerKind.TOTAL_THROUGHPUT):
        return _simulate_cleared(settings, times_ns, keys, counts)
    raise NectarError(f"{kind} is not a stateful sampler")


def _rate_lookup(table: dict[int, int], keys: IntArray, missing: int) -> IntArray:
    if not table:
        return np.full(keys.size, missing, dtype=np.int64)
    ids = np.fromiter(table.keys(), dtype=np.int64, count=len(table))
    vals = np.fromiter(table.values(), dtype=np.int64, count=len(table))
    order = np.argsort(ids)
    ids, vals = ids[order], vals[order]
    pos = np.searchsorted(ids, keys)
    pos_c = np.minimum(pos, ids.size - 1)
    hit = ids[pos_c] == keys
    return np.where(hit, vals[pos_c], missing).astype(np.int64)


def _simulate_ema(s: DynSettings, t: IntArray, k: IntArray, c: IntArray) -> Simulation:
    n = t.size
    out = Simulation(np.empty(n, dtype=np.int64))
    interval = s.interval_ns
    moving: dict[int, float] = {}
    saved: dict[int, int] = {}
    have_data = False
    threshold = 0.0
    interval_count = 0
    next_tick = interval
    pos = 0
    throughput = s.kind == SamplerKind.EMA_THROUGHPUT
    while pos < n:
        if t[pos] >= next_tick:  # ticks with nothing counted since the last update: only intervalCount moves
            skip = (int(t[pos]) - next_tick) // interval + 1
            interval_count += skip
            next_tick += skip * interval
        end = int(np.searchsorted(t, next_tick, side="left"))
        seg_k, seg_c = k[pos:end], c[pos:end]
        counted = _counted(seg_k, s.max_keys)
        burst_at: int | None = None
        if threshold > 0 and interval_count >= s.burst_delay:
            sums = np.cumsum(np.where(counted, seg_c, 0).astype(np.float64))
            j = int(np.searchsorted(sums, threshold, side="left"))
            if j < sums.size:
                burst_at = pos + j
        stop = burst_at + 1 if burst_at is not None else end
        seg = slice(pos, stop)
        out.rates[seg] = _rate_lookup(saved, k[seg], 1) if have_data else s.initial_rate
        new_counts = _bincount(k[seg], c[seg], counted[: stop - pos])
        if burst_at is None and end >= n:
            break  # the stream ends before the next tick
        if new_counts:
            _update_ema(s, moving, new_counts)
            sum_events = 0.0
            log_sum = 0.0
            ids = sorted(moving)
            for key in ids:
                sum_events += go_max(1.0, moving[key])
            for key in ids:
                log_sum += _log10(go_max(1.0, moving[key]))
            threshold = sum_events * s.burst_multiple
            goal_count = s.goal_throughput * s.interval_seconds if throughput else sum_events / s.goal_rate
            ratio = _div(goal_count, log_sum)
            saved = calculate_sample_rates(ratio, ids, [moving[i] for i in ids])
            upd_time = int(t[burst_at]) if burst_at is not None else next_tick
            if not have_data:
                out.first_update_ns = upd_time
            have_data = True
            out.updates.append(upd_time)
        if burst_at is not None:
            out.bursts.append(burst_at)
            next_tick = int(t[burst_at]) + interval
            pos = burst_at + 1
        else:
            interval_count += 1
            next_tick += interval
            pos = end
    return out


def _div(a: float, b: float) -> float:
    """Go's float64 division (``x / 0`` is ±Inf or NaN, never an exception)."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * (1 if math.copysign(1, b) > 0 else -1)
    return a / b


def _update_ema(s: DynSettings, moving: dict[int, float], counts: Mapping[int, float]) -> None:
    """``updateEMA``: decay every known key (by 0 when unseen), age out those under AgeOutValue, add new keys."""
    w = s.weight
    for key in list(moving):
        new = counts.get(key, 0.0) * w + (1.0 - w) * moving[key]
        if new < s.age_out:
            del moving[key]
        else:
            moving[key] = new
    for key, v in counts.items():
        if key in moving:
            continue
        new = v * w + (1.0 - w) * 0.0
        if new >= s.age_out:
            moving[key] = new


def _simulate_cleared(s: DynSettings, t: IntArray, k: IntArray, c: IntArray) -> Simulation:
    """DynamicSampler (AvgSampleRate) and TotalThroughputSampler: counts per ClearFrequency, rates from the last
    interval only. The tick at ``q * I`` consumes the counts of period ``q - 1``; a tick that finds none clears the
    rate table (every key then gets 1)."""
    n = t.size
    out = Simulation(np.empty(n, dtype=np.int64))
    interval = s.interval_ns
    dynamic = s.kind == SamplerKind.DYNAMIC
    saved: dict[int, int] = {}
    have_data = False
    period_of = t // interval
    starts = np.flatnonzero(np.r_[True, period_of[1:] != period_of[:-1]]) if n else np.empty(0, np.int64)
    bounds = [*starts.tolist(), n]
    prev: tuple[int, dict[int, float]] | None = None  # the last period with events and its counts
    for i in range(len(starts)):
        a, b = bounds[i], bounds[i + 1]
        period = int(period_of[a])
        if prev is not None:
            tick = (prev[0] + 1) * interval
            saved, have_data = _cleared_rates(s, prev[1], have_data)
            out.updates.append(tick)
            if out.first_update_ns is None:
                out.first_update_ns = tick
            if period > prev[0] + 1:  # later ticks found nothing counted
                saved = {}
                out.updates.append(period * interval)
        seg_k, seg_c = k[a:b], c[a:b]
        if dynamic and not have_data:
            out.rates[a:b] = s.goal_rate
        else:
            out.rates[a:b] = _rate_lookup(saved, seg_k, 1)
        prev = (period, _bincount(seg_k, seg_c, _counted(seg_k, s.max_keys)))
    return out


def _cleared_rates(s: DynSettings, counts: Mapping[int, float], have_data: bool) -> tuple[dict[int, int], bool]:
    if not counts:
        return {}, have_data
    ids = sorted(counts)
    if s.kind == SamplerKind.DYNAMIC:
        total = 0.0
        for i in ids:
            total += counts[i]
        log_sum = 0.0
        for i in ids:
            log_sum += _log10(counts[i])
        ratio = _div(total / s.goal_rate, log_sum)
        return calculate_sample_rates(ratio, ids, [counts[i] for i in ids]), True
    per_key = float(int(s.goal_throughput)) * s.interval_seconds / len(ids)
    return {i: _go_int(go_max(1.0, counts[i] / per_key)) for i in ids}, have_data


def _simulate_windowed(s: DynSettings, t: IntArray, k: IntArray, c: IntArray) -> Simulation:
    """WindowedThroughputSampler: per-index blocks of counts, rates from the last L complete indexes; with MaxKeys,
    the BoundedBlockList that rejects every increment (rate 0) once MaxKeys keys hold a live index."""
    n = t.size
    out = Simulation(np.empty(n, dtype=np.int64))
    upd = s.interval_ns
    look = s.lookback_ns // upd  # L, the number of indexes in the window
    index_of = t // upd
    starts = np.flatnonzero(np.r_[True, index_of[1:] != index_of[:-1]]) if n else np.empty(0, np.int64)
    bounds = [*starts.tolist(), n]
    blocks: list[tuple[int, dict[int, float]]] = []  # (index, counts), oldest first
    live: dict[int, int] = {}  # bounded list: key -> its newest index
    saved: dict[int, int] = {}
    bounded = s.max_keys > 0
    for i in range(len(starts)):
        a, b = int(bounds[i]), int(bounds[i + 1])
        cur = int(index_of[a])
        if cur >= 1:  # the tick at cur * U (the first tick is at U)
            start_idx, finish_idx = cur - 1, cur - 1 - look
            blocks = [(ix, cnt) for ix, cnt in blocks if ix > finish_idx]
            agg: dict[int, float] = {}
            for ix, cnt in blocks:
                if ix <= start_idx:
                    for key, v in cnt.items():
                        agg[key] = agg.get(key, 0.0) + v
            if bounded:
                live = {key: ix for key, ix in live.items() if ix > finish_idx}
            if agg:
                per_key = s.goal_throughput * go_seconds(s.lookback_ns) / len(agg)
                saved = {key: _go_int(go_max(1.0, agg[key] / per_key)) for key in agg}
                if out.first_update_ns is None:
                    out.first_update_ns = cur * upd
            else:
                saved = {}
            out.updates.append(cur * upd)
        seg_k, seg_c = k[a:b], c[a:b]
        if bounded:
            uniq, first = np.unique(seg_k, return_index=True)
            is_new_first = np.zeros(seg_k.size, dtype=bool)
            fresh = np.fromiter((int(u) not in live for u in uniq), dtype=bool, count=uniq.size)
            is_new_first[first[fresh]] = True
            size_before = len(live) + np.cumsum(is_new_first) - is_new_first
            accepted = size_before < s.max_keys
            for key in np.unique(seg_k[accepted]):
                live[int(key)] = cur
        else:
            accepted = np.ones(seg_k.size, dtype=bool)
        rates = _rate_lookup(saved, seg_k, 0)
        out.rates[a:b] = np.where(accepted, rates, 0)
        blocks.append((cur, _bincount(seg_k, seg_c, accepted)))
    return out


__all__ = [
    "DynSettings",
    "Simulation",
    "calculate_sample_rates",
    "go_max",
    "refinery_rate",
    "settings_for",
    "shared_goal",
    "simulate",
]
