"""The prover's checks, over per-trace decisions of the lowered policy (what ships is what is proven).

* **fallback**: the policy has a catch-all that decides every trace no earlier rule decides, and it comes last;
* **errors**: every error trace (``prove.error_definition``, default
  :data:`~nectar.config.DEFAULT_ERROR_DEFINITION`) is kept with probability 1;
* **must-keep**: every trace of every ``must_keep`` class, and every trace id listed in ``must-keep.txt`` in the
  corpus folder, is kept with probability 1 (coverage = kept / declared);
* **budget**: expected kept events per second <= ``budget_per_second``, with a 95% upper bound.

Budget arithmetic (documented in the README). A trace of ``n`` spans kept with probability ``p`` costs ``n*p``
events in expectation, with variance ``n^2 p (1-p)`` (a random ``SampleRate`` N keeps it with p = 1/N, independently
per trace). Over the corpus: ``E = sum(n p)``, ``V = sum(n^2 p (1-p))``. The corpus holds one trace in ``s`` of real
traffic (``s`` = sample rate of the corpus) over a window of ``w`` seconds, so real traffic has ``s`` times as many
independent traces: expected events/s ``= s E / w``, and the one-sided 95% upper bound is
``(s E + 1.645 sqrt(s V)) / w``. Stateful samplers use approximations: ``dynamic(rate=N)`` keeps about 1 in N
(p = 1/N, its goal); ``throughput(per_second=G)`` keeps at most G events/s of the traffic it decides (its decided
events/s, capped at G, with no variance counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

Z95 = 1.6448536269514722  # one-sided 95% normal quantile


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A trace that breaks a check: which rule decided it, how, and the values that matter."""

    trace_id: str
    rule: str | None
    policy_rule: str | None
    keep: str
    rate: int
    reason: str
    spans: int
    values: tuple[dict[str, Any], ...] = ()  # relevant fields of the trace's spans (span_id + field: value)
    sql: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "rule": self.rule,
            "policy_rule": self.policy_rule,
            "keep": self.keep,
            "rate": self.rate,
            "reason": self.reason,
            "spans": self.spans,
            "values": list(self.values),
            "sql": self.sql,
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's verdict: ``status`` is ``pass``, ``fail`` or ``skip`` (with the reason in ``summary``)."""

    name: str
    status: str
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    counterexamples: tuple[Counterexample, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "figures": self.figures,
            "counterexamples": [c.to_json() for c in self.counterexamples],
        }


@dataclass(frozen=True, slots=True)
class BudgetFigures:
    expected_per_second: float | None
    upper95_per_second: float | None
    expected_kept_spans: float
    window_seconds: float
    sample_rate: float


def budget_figures(
    decisions: pl.DataFrame,
    p: pl.Series,
    window: float,
    sample_rate: float,
    throughput_caps: dict[int, float] | None = None,
) -> BudgetFigures:
    """Expected kept events/s and its one-sided 95% upper bound (see the module docstring)."""
    n = decisions.get_column("spans").cast(pl.Float64)
    kept = n * p
    var = n * n * p * (1.0 - p)
    e_corpus = float(kept.sum() or 0.0)
    v_corpus = float(var.sum() or 0.0)
    if window <= 0:
        return BudgetFigures(None, None, e_corpus, window, sample_rate)
    expected = sample_rate * e_corpus / window
    upper = (sample_rate * e_corpus + Z95 * math.sqrt(sample_rate * v_corpus)) / window
    if throughput_caps:
        idx = decisions.get_column("rule_index")
        for i, cap in sorted(throughput_caps.items()):
            mask = idx == i
            decided_eps = sample_rate * float(n.filter(mask).sum() or 0.0) / window
            capped = min(decided_eps, cap)
            expected += capped - sample_rate * float(kept.filter(mask).sum() or 0.0) / window
            upper += capped - sample_rate * float(kept.filter(mask).sum() or 0.0) / window
    return BudgetFigures(expected, upper, e_corpus, window, sample_rate)
