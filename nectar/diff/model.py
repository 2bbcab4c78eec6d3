"""The diff report as data: built once (:mod:`nectar.diff.corpus`, :func:`nectar.prove.symbolic.diff_symbolic`),
rendered by each form (text, Markdown, JSON ``nectar-diff/1``, and inside ``nectar explain --against``).

A trace's **decision** is what reaches the data: kept or not, at which rate (Refinery writes it as the event's
sample rate), by which downstream sampler. Two decisions are the same when both drop the trace (a dropped trace's
rate is never seen), or when keep, rate and sampler are equal. A trace whose decision is the same but whose reason
(``meta.refinery.reason``, written into every kept event) changes is a **reason-only** change, listed apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nectar.errors import NectarError

if TYPE_CHECKING:  # z3 loads only when the symbolic pass runs
    from nectar.prove.symbolic import SymbolicDiff

SCHEMA = "nectar-diff/1"
FAIL_KINDS = ("errors", "must-keep", "budget", "any")


@dataclass(frozen=True, slots=True)
class Decided:
    """How one side decided a group of traces: the rule (None: no rule matched, or the top-level sampler), keep
    (``true``, ``false``, ``sampled``), the rate (None for a stateful sampler: per trace) and the sampler kind."""

    rule: str | None
    keep: str
    rate: int | None
    sampler: str | None = None

    def who(self) -> str:
        """The deciding rule, or what decides without one."""
        if self.rule is not None:
            return self.rule
        return f"top-level {self.sampler}" if self.sampler else "(no rule)"

    def outcome(self) -> str:
        """``keep``, ``drop``, ``1 in 100``, ``EMADynamicSampler``, ``hash: keep (rate 10)``."""
        hashed = self.sampler == "DeterministicSampler" and self.rate != 1  # rate 1: it keeps everything
        if self.keep == "false":
            return "hash: drop" if hashed else "drop"
        if hashed:
            return f"hash: keep (rate {self.rate})"
        if self.sampler is not None and self.rate is None:
            return self.sampler
        if self.keep == "true":
            return "keep" if self.rate == 1 else f"keep (rate {self.rate})"
        return f"1 in {self.rate}"

    def json_keep(self) -> bool | str:
        """As ``nectar replay --per-trace`` writes it: true, false or "sampled"."""
        return {"true": True, "false": False}.get(self.keep, "sampled")

    def to_json(self, prefix: str) -> dict[str, Any]:
        return {f"{prefix}_rule": self.rule, f"{prefix}_keep": self.json_keep(), f"{prefix}_rate": self.rate}


@dataclass(frozen=True, slots=True)
class Transition:
    """Traces whose decision changes from ``old`` to ``new`` (one row of the transition table)."""

    old: Decided
    new: Decided
    traces: int
    spans: int
    examples: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**self.old.to_json("old"), **self.new.to_json("new"), "traces": self.traces, "spans": self.spans}


@dataclass(frozen=True, slots=True)
class ReasonChange:
    """Traces decided the same way whose reason string changes (a renamed or reordered rule)."""

    old_rule: str | None
    new_rule: str | None
    old_reason: str
    new_reason: str
    traces: int
    spans: int
    dropped: int  # of them, traces both sides drop: their reason never reaches the data
    examples: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "old_rule": self.old_rule,
            "new_rule": self.new_rule,
            "old_reason": self.old_reason,
            "new_reason": self.new_reason,
            "traces": self.traces,
            "spans": self.spans,
            "dropped": self.dropped,
            "examples": list(self.examples),
        }


@dataclass(frozen=True, slots=True)
class TraceChange:
    """One trace, decided by each side (a counterexample)."""

    trace_id: str
    spans: int
    old: Decided
    new: Decided

    def to_json(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "spans": self.spans, **self.old.to_json("old"), **self.new.to_json("new")}


@dataclass(frozen=True, slots=True)
class AtRisk:
    """A class of traces that must be kept (``errors``, ``must_keep:<class>``, ``must-keep.txt``) and the corpus
    traces of it whose keep probability the change lowers."""

    name: str
    definition: str
    declared: int  # traces of the class in the corpus
    traces: int  # of them, newly at risk
    spans: int
    examples: tuple[TraceChange, ...] = ()

    @property
    def is_errors(self) -> bool:
        return self.name == "errors"

    def to_json(self) -> dict[str, Any]:
        return {
            "class": self.name,
            "definition": self.definition,
            "declared": self.declared,
            "traces": self.traces,
            "spans": self.spans,
            "examples": [e.to_json() for e in self.examples],
        }


@dataclass(frozen=True, slots=True)
class BudgetSide:
    """One side's expected kept volume (see :mod:`nectar.prove.checks` for the arithmetic)."""

    expected_per_second: float | None
    upper95_per_second: float | None
    expected_kept_spans: float
    kept_share: float  # of the corpus's spans

    def to_json(self) -> dict[str, Any]:
        return {
            "expected_per_second": self.expected_per_second,
            "upper95_per_second": self.upper95_per_second,
            "expected_kept_spans": self.expected_kept_spans,
            "kept_share": self.kept_share,
        }


@dataclass(frozen=True, slots=True)
class RuleVolume:
    """Expected kept volume of one rule (a policy rule for a policy side) on each side; None: not on that side."""

    label: str
    old_kept_spans: float | None
    new_kept_spans: float | None
    old_per_second: float | None
    new_per_second: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.label,
            "old_expected_kept_spans": self.old_kept_spans,
            "new_expected_kept_spans": self.new_kept_spans,
            "old_per_second": self.old_per_second,
            "new_per_second": self.new_per_second,
        }


@dataclass(frozen=True, slots=True)
class CorpusDiff:
    """What changes on the corpus: every trace decided by both sides, compared."""

    corpus_path: str
    engine: str
    traces: int
    spans: int
    window_seconds: float
    sample_rate: float
    transitions: tuple[Transition, ...]
    reason_only: tuple[ReasonChange, ...]
    old_budget: BudgetSide
    new_budget: BudgetSide
    budget_per_second: float | None  # NEW policy's budget_per_second, else OLD's
    at_risk: tuple[AtRisk, ...]
    per_rule: tuple[RuleVolume, ...]
    passes: str  # how the engine was run, in words (the README explains why)

    @property
    def changed_traces(self) -> int:
        return sum(t.traces for t in self.transitions)

    @property
    def changed_spans(self) -> int:
        return sum(t.spans for t in self.transitions)

    @property
    def reason_only_traces(self) -> int:
        return sum(r.traces for r in self.reason_only)

    @property
    def delta_per_second(self) -> float | None:
        old, new = self.old_budget.expected_per_second, self.new_budget.expected_per_second
        return None if old is None or new is None else float(f"{new - old:.9g}")

    def budget_json(self) -> dict[str, Any]:
        return {
            "old": self.old_budget.to_json(),
            "new": self.new_budget.to_json(),
            "delta_per_second": self.delta_per_second,
            "budget_per_second": self.budget_per_second,
            "per_rule": [r.to_json() for r in self.per_rule],
        }


@dataclass(frozen=True, slots=True)
class DiffReport:
    """The whole diff: the sides, what changes on the corpus (None without a corpus) and for every possible trace
    (None when the symbolic pass is off)."""

    old_label: str
    new_label: str
    env: str | None
    corpus: CorpusDiff | None
    symbolic: SymbolicDiff | None
    error_definition: str
    must_keep: tuple[tuple[str, str], ...] = ()  # (class, definition) checked, from NEW's policy else OLD's
    must_keep_from: str | None = None  # the side's label the must-keep classes come from

    def at_risk(self, kind: str) -> list[str]:
        """Why ``--fail-on errors`` / ``must-keep`` fails, one line per finding (empty: it does not)."""
        out = []
        if self.corpus is not None:
            for a in self.corpus.at_risk:
                if a.traces and a.is_errors == (kind == "errors"):
                    out.append(f"{a.traces:,} {a.name} trace(s) of the corpus lose keep probability")
        if self.symbolic is not None:
            prefix = "errors" if kind == "errors" else "must_keep"
            for w in self.symbolic.at_risk(prefix):
                out.append(f"witness: {w.description()}")
        return out

    def budget_failure(self) -> str | None:
        """``--fail-on budget``: the expected kept events/s go up and end over the budget (any increase when no
        policy sets a budget)."""
        c = self.corpus
        if c is None:
            return None
        old, new = c.old_budget.expected_per_second, c.new_budget.expected_per_second
        if old is None or new is None or new <= old:
            return None
        if c.budget_per_second is None:
            return f"expected kept events/s rise from {old:,.6g} to {new:,.6g} (no budget_per_second set)"
        if new > c.budget_per_second:
            return f"expected kept events/s rise from {old:,.6g} to {new:,.6g}, over the budget of " \
                   f"{c.budget_per_second:,.6g}/s"  # fmt: skip
        return None

    def any_change(self) -> str | None:
        """``--fail-on any``: a changed decision or reason on the corpus, or a symbolic witness."""
        parts = []
        if self.corpus is not None and self.corpus.changed_traces:
            parts.append(f"{self.corpus.changed_traces:,} corpus trace(s) change decision")
        if self.corpus is not None and self.corpus.reason_only_traces:
            parts.append(f"{self.corpus.reason_only_traces:,} change only their reason")
        if self.symbolic is not None and self.symbolic.status == "different":
            parts.append(f"{len(self.symbolic.witnesses)} symbolic witness(es)")
        return "; ".join(parts) or None

    def failures(self, kinds: tuple[str, ...]) -> list[str]:
        """Each selected ``--fail-on`` kind that occurs, with why (empty: exit 0)."""
        out = []
        for kind in kinds:
            if kind in ("errors", "must-keep"):
                why = self.at_risk(kind)
                if why:
                    out.append(f"{kind}: " + "; ".join(why))
            elif kind == "budget":
                b = self.budget_failure()
                if b:
                    out.append(f"budget: {b}")
            elif kind == "any":
                a = self.any_change()
                if a:
                    out.append(f"any: {a}")
        return out

    def to_json(self) -> dict[str, Any]:
        """``nectar-diff/1``: the keys of issue 16, and ``schema``."""
        c = self.corpus
        sym: dict[str, Any] = (
            self.symbolic.to_json()
            if self.symbolic is not None
            else {"status": "skipped", "reason": "--symbolic off", "complete": False, "bound": 0, "witnesses": []}
        )
        return {
            "schema": SCHEMA,
            "changed_traces": c.changed_traces if c else None,
            "transitions": [t.to_json() for t in c.transitions] if c else None,
            "reason_only_traces": [r.to_json() for r in c.reason_only] if c else None,
            "budget": c.budget_json() if c else None,
            "errors_newly_at_risk": [a.to_json() for a in c.at_risk] if c else None,
            "symbolic": sym,
        }


def parse_fail_on(text: str | None) -> tuple[str, ...]:
    """``errors,must-keep`` -> ("errors", "must-keep"); an unknown kind is an error (exit 2)."""
    if not text:
        return ()
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    bad = [k for k in kinds if k not in FAIL_KINDS]
    if bad:
        raise NectarError(
            f"--fail-on: unknown kind {bad[0]!r}", hint=f"choose from {', '.join(FAIL_KINDS)} (comma-separated)"
        )
    return kinds


__all__ = [
    "FAIL_KINDS",
    "SCHEMA",
    "AtRisk",
    "BudgetSide",
    "CorpusDiff",
    "Decided",
    "DiffReport",
    "ReasonChange",
    "RuleVolume",
    "TraceChange",
    "Transition",
    "parse_fail_on",
]
