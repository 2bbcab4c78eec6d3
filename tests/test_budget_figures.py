"""The prover's budget arithmetic, ``nectar.prove.checks.budget_figures``, against numbers worked out by hand.

Formula (module docstring of nectar/prove/checks.py): a trace of ``n`` spans kept with probability ``p`` costs
``n p`` events in expectation, variance ``n^2 p (1-p)``. ``E = sum(n p)``, ``V = sum(n^2 p (1-p))``; with the corpus
holding 1 trace in ``s`` of real traffic over ``w`` seconds:

    expected = s E / w        upper = (s E + z sqrt(s V)) / w        z = 1.6448536269514722 (one-sided 95%)

A throughput rule ``i`` with cap ``G`` replaces its rows' ``s * sum(n p) / w`` by ``min(s * sum(n) / w, G)`` in both
figures. ``expected_kept_spans`` is ``E`` (the corpus, unscaled, uncapped).
"""

from __future__ import annotations

import math

import polars as pl
import pytest

from nectar.prove.checks import budget_figures

Z = 1.6448536269514722
REL = 1e-12


def _decisions(spans: list[int], rule_index: list[int | None]) -> pl.DataFrame:
    """The columns budget_figures reads from the engine's decisions table (plus trace_id, as the engines give)."""
    return pl.DataFrame(
        {"trace_id": [f"t{i}" for i in range(len(spans))], "spans": spans, "rule_index": rule_index},
        schema={"trace_id": pl.String, "spans": pl.Int64, "rule_index": pl.Int32},
    )


def _p(values: list[float]) -> pl.Series:
    return pl.Series("p", values, dtype=pl.Float64)


def test_mixed_probabilities_with_corpus_sample_rate_10() -> None:
    # n = 4, 2, 8, 1 with p = 1 (keep), 0 (drop), 0.25 (SampleRate 4), 0.25
    # E = 4*1 + 2*0 + 8*0.25 + 1*0.25 = 4 + 0 + 2 + 0.25 = 6.25
    # V = 16*1*0 + 4*0*1 + 64*0.25*0.75 + 1*0.25*0.75 = 0 + 0 + 12 + 0.1875 = 12.1875
    # s = 10, w = 100:
    #   expected = 10 * 6.25 / 100 = 0.625
    #   upper    = (10 * 6.25 + z * sqrt(10 * 12.1875)) / 100 = (62.5 + z * sqrt(121.875)) / 100 = 0.80658692...
    dec = _decisions([4, 2, 8, 1], [0, 1, 2, 2])
    got = budget_figures(dec, _p([1.0, 0.0, 0.25, 0.25]), window=100.0, sample_rate=10.0)
    assert got.expected_kept_spans == pytest.approx(6.25, rel=REL)
    assert got.expected_per_second == pytest.approx(0.625, rel=REL)
    assert got.upper95_per_second == pytest.approx((62.5 + Z * math.sqrt(121.875)) / 100, rel=REL)
    assert got.upper95_per_second == pytest.approx(0.8065869236668429, rel=1e-9)
    # s belongs inside the square root (s times as many independent traces): not sqrt(V), not s * sqrt(V).
    assert got.upper95_per_second != pytest.approx((62.5 + Z * math.sqrt(12.1875)) / 100, rel=1e-6)  # 0.6824
    assert got.upper95_per_second != pytest.approx((62.5 + Z * 10 * math.sqrt(12.1875)) / 100, rel=1e-6)  # 1.1992
    # The variance is n^2 p (1-p), not n p (1-p): V' = 8*0.1875 + 1*0.1875 = 1.6875 would give 0.6926.
    assert got.upper95_per_second != pytest.approx((62.5 + Z * math.sqrt(16.875)) / 100, rel=1e-6)
    assert (got.window_seconds, got.sample_rate) == (100.0, 10.0)


def test_certain_outcomes_have_no_variance() -> None:
    # p in {0, 1} only: V = 0, so upper = expected.
    # E = 3*1 + 5*0 + 2*1 = 5; s = 1, w = 4: expected = upper = 5 / 4 = 1.25
    got = budget_figures(_decisions([3, 5, 2], [0, 1, None]), _p([1.0, 0.0, 1.0]), window=4.0, sample_rate=1.0)
    assert got.expected_kept_spans == pytest.approx(5.0, rel=REL)
    assert got.expected_per_second == pytest.approx(1.25, rel=REL)
    assert got.upper95_per_second == pytest.approx(1.25, rel=REL)


def test_single_sampled_trace() -> None:
    # One trace of n = 10 spans at SampleRate 5 (p = 0.2); s = 3, w = 6.
    # E = 10 * 0.2 = 2; V = 100 * 0.2 * 0.8 = 16; s E = 6; s V = 48
    # expected = 6 / 6 = 1.0; upper = (6 + z * sqrt(48)) / 6 = 1 + z * 6.92820323... / 6 = 2.89931337...
    got = budget_figures(_decisions([10], [0]), _p([0.2]), window=6.0, sample_rate=3.0)
    assert got.expected_per_second == pytest.approx(1.0, rel=REL)
    assert got.upper95_per_second == pytest.approx((6 + Z * math.sqrt(48)) / 6, rel=REL)
    assert got.upper95_per_second == pytest.approx(2.8993133685959296, rel=1e-9)


# Rows (spans, rule_index, p): (3, 0, 1), (5, 1, 1), (5, 1, 1), (4, None, 0.5); s = 2, w = 10.
#   E = 3 + 5 + 5 + 4*0.5 = 15;  V = 16 * 0.5 * 0.5 = 4 (only the p = 0.5 row)
ROW_SPANS = [3, 5, 5, 4]
ROW_RULES: list[int | None] = [0, 1, 1, None]
ROW_P = [1.0, 1.0, 1.0, 0.5]


def test_stateful_rows_count_like_any_other() -> None:
    # A stateful sampler's traces come with their replayed p = 1/rate: no cap, no special case.
    got = budget_figures(_decisions(ROW_SPANS, ROW_RULES), _p(ROW_P), 10.0, 2.0)
    assert got.expected_per_second == pytest.approx(3.0, rel=REL)
    assert got.upper95_per_second == pytest.approx((30 + Z * math.sqrt(8)) / 10, rel=REL)


def test_zero_length_window() -> None:
    # A corpus whose spans all start at one instant has w = 0: no rate, but the corpus expectation is still given.
    # E = 15 as above.
    got = budget_figures(_decisions(ROW_SPANS, ROW_RULES), _p(ROW_P), 0.0, 2.0)
    assert got.expected_per_second is None
    assert got.upper95_per_second is None
    assert got.expected_kept_spans == pytest.approx(15.0, rel=REL)
    assert (got.window_seconds, got.sample_rate) == (0.0, 2.0)


def test_empty_decisions() -> None:
    got = budget_figures(_decisions([], []), _p([]), 60.0, 10.0)
    assert (got.expected_kept_spans, got.expected_per_second, got.upper95_per_second) == (0.0, 0.0, 0.0)
