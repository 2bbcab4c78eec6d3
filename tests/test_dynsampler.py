"""The stateful-sampler simulation against the library itself: per-event rates measured by driving
honeycombio/dynsampler-go (the commit Refinery 3.2.2 runs) with a simulated clock (tests/data/samplers/README.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nectar.refinery import dynsampler, gostr
from nectar.refinery.model import Sampler

VECTORS = sorted((Path(__file__).parent / "data" / "samplers").glob("*.json"))


def _stream(data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    times = np.round(np.asarray(data["times"], dtype=np.float64) * 1e9).astype(np.int64)
    names = sorted(set(data["keys"]))
    ids = {k: i for i, k in enumerate(names)}
    keys = np.asarray([ids[k] for k in data["keys"]], dtype=np.int64)
    return times, keys, np.asarray(data["counts"], dtype=np.int64)


def test_vectors_exist() -> None:
    assert len(VECTORS) >= 25
    kinds = {json.loads(p.read_text(encoding="utf-8"))["sampler"] for p in VECTORS}
    assert kinds == {
        "DynamicSampler",
        "EMADynamicSampler",
        "EMAThroughputSampler",
        "WindowedThroughputSampler",
        "TotalThroughputSampler",
    }


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_rates_match_the_library(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    settings = dynsampler.settings_for(Sampler(data["sampler"], data["refinery_config"]))
    sim = dynsampler.simulate(settings, *_stream(data))
    want = np.asarray(data["rates"], dtype=np.int64)
    bad = np.flatnonzero(sim.rates != want)
    assert bad.size == 0, f"{bad.size} events differ; first #{bad[0]}: {sim.rates[bad[0]]} != {want[bad[0]]}"
    if "burst_update_after_event" in data:
        assert sim.bursts == data["burst_update_after_event"]
    assert len(set(want.tolist())) > 3  # the vector is not trivial


def test_refinery_clamps_zero_to_one() -> None:
    # Windowed returns 0 for a key it has no rate for; Refinery's wrapper keeps such a trace with rate 1.
    assert dynsampler.refinery_rate(np.array([0, -3, 1, 7])).tolist() == [1, 1, 1, 7]


def test_settings_defaults_and_cluster_size() -> None:
    ema = dynsampler.settings_for(
        Sampler("EMAThroughputSampler", {"GoalThroughputPerSec": 200, "UseClusterSize": True}), 3
    )
    assert ema.goal_throughput == 66.0  # integer division by the peers
    assert ema.max_keys == 500 and ema.interval_ns == 15 * dynsampler.NS and ema.initial_rate == 10
    one = dynsampler.settings_for(
        Sampler("TotalThroughputSampler", {"GoalThroughputPerSec": 2, "UseClusterSize": True}), 5
    )
    assert one.goal_throughput == 1.0  # never below 1
    plain = dynsampler.settings_for(Sampler("WindowedThroughputSampler", {"GoalThroughputPerSec": 50}), 4)
    assert plain.goal_throughput == 50.0  # without UseClusterSize the goal is never divided
    win = dynsampler.settings_for(
        Sampler(
            "WindowedThroughputSampler", {"GoalThroughputPerSec": 5, "UpdateFrequency": "2s", "LookbackFrequency": "7s"}
        )
    )
    assert win.lookback_ns == 6 * dynsampler.NS  # floored to a whole number of updates
    dyn = dynsampler.settings_for(Sampler("DynamicSampler", {"SampleRate": 20}))
    assert dyn.interval_ns == 30 * dynsampler.NS and dyn.goal_rate == 20
    emad = dynsampler.settings_for(Sampler("EMADynamicSampler", {"GoalSampleRate": 5, "Weight": 0.2}))
    assert emad.age_out == 0.2 and emad.burst_multiple == 2.0 and emad.burst_delay == 3


def test_go_max_nan_wins() -> None:
    assert math.isnan(dynsampler.go_max(1.0, math.nan))
    # every count 1: logSum 0, goal ratio +Inf, log10(1) * Inf is NaN: every key gets rate 1 (the NaN guard)
    rates = dynsampler.calculate_sample_rates(math.inf, [0, 1, 2], [1.0, 1.0, 1.0])
    assert rates == {0: 1, 1: 1, 2: 1}


def test_carry_over_walks_keys_in_sorted_order() -> None:
    # a small key under its share passes the unused budget on to the next key in sorted order
    rates = dynsampler.calculate_sample_rates(10.0, [0, 1], [2.0, 1000.0])
    assert rates[0] == 1
    assert rates[1] == math.ceil(
        1000.0 / (max(1.0, math.log10(1000.0) * 10.0) + (max(1.0, math.log10(2.0) * 10.0) - 2.0))
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [(200.0, "200"), (1.5, "1.5"), (1e6, "1000000"), (1e-7, "0.0000001"), (-0.0, "-0"), (math.inf, "+Inf"),
     (math.nan, "NaN"), (1e21, "1000000000000000000000"), (True, "true"), (None, "<nil>"), (7, "7"), ("", "")],
)  # fmt: skip
def test_key_string(value: object, text: str) -> None:
    assert gostr.key_string(value) == text
