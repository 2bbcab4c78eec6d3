"""The prover's checks, over per-trace decisions of the lowered policy (what ships is what is proven).

* **fallback**: the policy has a catch-all that decides every trace no earlier rule decides, and it comes last;
* **errors**: every error trace (``prove.error_definition``, default
  :data:`~nectar.config.DEFAULT_ERROR_DEFINITION`) is kept with probability 1;
* **must-keep**: every trace of every ``must_keep`` class, and every trace id listed in ``must-keep.txt`` in the
  corpus folder, is kept with probability 1 (coverage = kept / declared);
* **budget**: expected kept events per second <= ``budget_per_second``, with a 95% upper bound.

A check's corpus verdict (``CheckResult.status``) is one of :data:`CORPUS_STATUSES`: ``pass``; ``fail``;
``vacuous`` when it had nothing to check (no traces, no error trace, a must-keep class no trace matches: never a
pass, and a failure with ``--strict``); ``waived`` when every violation was decided by a rule the policy's
``accept`` table waives for that check; ``skip`` when the policy asks for nothing (no budget, no must-keep).
Its verdict over all possible traces is a :class:`SymbolicResult`.

Budget arithmetic (documented in the README). A trace of ``n`` spans kept with probability ``p`` costs ``n*p``
events in expectation, with variance ``n^2 p (1-p)`` (a random ``SampleRate`` N keeps it with p = 1/N, independently
per trace). Over the corpus: ``E = sum(n p)``, ``V = sum(n^2 p (1-p))``. The corpus holds one trace in ``s`` of real
traffic (``s`` = sample rate of the corpus) over a window of ``w`` seconds, so real traffic has ``s`` times as many
independent traces: expected events/s ``= s E / w``, and the one-sided 95% upper bound is
``(s E + 1.645 sqrt(s V)) / w``. A trace a stateful sampler (``dynamic``, ``throughput``) decides is kept with
p = 1/rate at the rate Refinery's sampler would give it, replayed over the corpus in decision order
(:mod:`nectar.engine.stateful`); its random draw counts in the variance like any other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


CORPUS_STATUSES = ("pass", "fail", "vacuous", "waived", "skip")
SYMBOLIC_STATUSES = ("proved", "refuted", "unknown", "skipped")


@dataclass(frozen=True, slots=True)
class SymbolicResult:
    """A verdict over every possible trace: ``proved``; ``refuted`` with a ``witness`` (the spans of a trace that
    violates it, flat JSON objects in the ingest format; for a rule's reachability, a trace it decides); ``unknown``
    or ``skipped``, each with its ``reason``."""

    status: str
    reason: str = ""
    witness: tuple[dict[str, Any], ...] = ()
    rule: str | None = None  # the (Refinery) rule that decides the witness

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "reason": self.reason, "witness": list(self.witness)}
        if self.rule is not None:
            out["rule"] = self.rule
        return out


NOT_SYMBOLIC = SymbolicResult("skipped", "the symbolic checker did not run: this verdict is the corpus's only")
BUDGET_NOT_SYMBOLIC = SymbolicResult("skipped", "the budget is an estimate from the corpus: there is no symbolic claim")


@dataclass(frozen=True, slots=True)
class WaiverUse:
    """A waiver of the policy (``accept`` row) and how many violating traces of its check it waived here."""

    check: str
    rule: str
    reason: str
    traces: int

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "rule": self.rule, "reason": self.reason, "traces": self.traces}

    def describe(self) -> str:
        """``2 traces decided by health-checks (probes are never worth keeping)``."""
        n = f"{self.traces:,} trace" + ("" if self.traces == 1 else "s")
        return f"{n} decided by {self.rule} ({self.reason})"


@dataclass(frozen=True, slots=True)
class ProofWarning:
    """Something the reader should know that fails nothing (a failure with ``--strict``): an unused waiver."""

    code: str
    message: str
    check: str | None = None
    rule: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "check": self.check, "rule": self.rule, "message": self.message}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's verdict. ``status`` is the corpus verdict (one of :data:`CORPUS_STATUSES`, with the reason in
    ``summary``); ``brief`` says its figures in a few words (``32/32 kept``) for the one-line report; ``note`` is
    a caveat worth showing even on a pass; ``waived`` the waivers that turned violations into ``waived``;
    ``symbolic`` the verdict over all possible traces (skipped until the symbolic checker attaches one)."""

    name: str
    status: str
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    counterexamples: tuple[Counterexample, ...] = ()
    brief: str = ""
    note: str = ""
    waived: tuple[WaiverUse, ...] = ()
    symbolic: SymbolicResult = NOT_SYMBOLIC

    @property
    def passed(self) -> bool:
        """Not a failure: ``vacuous``, ``waived`` and ``skip`` do not fail a run (``vacuous`` does with --strict);
        a symbolic refutation (a trace the policy mishandles, shown as a witness) does."""
        return self.status != "fail" and self.symbolic.status != "refuted"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "passed": self.passed,
            "summary": self.summary,
            "corpus": {
                "status": self.status,
                "figures": self.figures,
                "counterexamples": [c.to_json() for c in self.counterexamples],
                "waived": [w.to_json() for w in self.waived],
            },
            "symbolic": self.symbolic.to_json(),
        }


def verdict(checks: Sequence[CheckResult]) -> str:
    """The run in words: ``all checks passed`` only when every check passed or was not asked for."""
    failed = [c.name + ("" if c.status == "fail" else " (refuted for all traces)") for c in checks if not c.passed]
    if failed:
        return f"the policy FAILS its checks: {', '.join(failed)}"
    vacuous = [c.name for c in checks if c.status == "vacuous"]
    waived = [c.name for c in checks if c.status == "waived"]
    unknown = [c.name for c in checks if c.symbolic.status == "unknown"]
    if not vacuous and not waived and not unknown:
        return "all checks passed"
    parts = []
    if unknown:
        parts.append(f"{len(unknown)} unknown for all traces (see the reasons): {', '.join(unknown)}")
    if vacuous:
        parts.append(f"{len(vacuous)} vacuous (nothing to check): {', '.join(vacuous)}")
    if waived:
        parts.append(f"{len(waived)} waived (violations accepted in the policy): {', '.join(waived)}")
    return "no check failed; " + "; ".join(parts)


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
    return BudgetFigures(expected, upper, e_corpus, window, sample_rate)
