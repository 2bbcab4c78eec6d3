"""What an evaluator says about each trace: the shared result type of the three engines.

Every engine (reference, Polars, DuckDB) returns the same table, one row per trace, sorted by ``trace_id``:

==============  =========  ================================================================================
column          dtype      meaning
==============  =========  ================================================================================
trace_id        String     the trace
spans           Int64      spans in the trace (what a kept trace costs in events)
rule_index      Int32      index of the deciding rule in the sampler's ``Rules`` (null: no rule matched,
                           or the sampler is not rules-based)
rule            String     that rule's ``Name`` (null when no rule decided)
keep            String     ``"true"`` always kept, ``"false"`` always dropped, ``"sampled"`` kept 1 in ``rate``
                           at random (``SampleRate`` N>1) or by a stateful downstream sampler
rate            UInt64     the sample rate Refinery reports (for stateful samplers: their nominal rate)
reason          String     Refinery's ``meta.refinery.reason`` (``rules/trace/<Name>``, ``no rule matched``...)
sampler         String     the downstream/top-level sampler kind that decided, when not plain SampleRate/Drop
==============  =========  ================================================================================

With ``with_matches=True`` an engine also returns, per trace, which rules' conditions matched (whether or not an
earlier rule decided): columns ``m0``, ``m1``, ... (Boolean), used for "matched vs decided" and shadowing lints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import polars as pl


class Keep(StrEnum):
    TRUE = "true"
    FALSE = "false"
    SAMPLED = "sampled"


DECISION_SCHEMA: dict[str, Any] = {
    "trace_id": pl.String,
    "spans": pl.Int64,
    "rule_index": pl.Int32,
    "rule": pl.String,
    "keep": pl.String,
    "rate": pl.UInt64,
    "reason": pl.String,
    "sampler": pl.String,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """One trace's decision (the reference evaluator's native form; a row of the decisions table)."""

    trace_id: str
    spans: int
    rule_index: int | None
    rule: str | None
    keep: Keep
    rate: int
    reason: str
    sampler: str | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "spans": self.spans,
            "rule_index": self.rule_index,
            "rule": self.rule,
            "keep": self.keep.value,
            "rate": self.rate,
            "reason": self.reason,
            "sampler": self.sampler,
        }


@dataclass(frozen=True, slots=True)
class EvalResult:
    """An engine's answer: decisions (one row per trace, sorted by trace_id) and optionally per-rule matches."""

    decisions: pl.DataFrame
    matches: pl.DataFrame | None = None  # trace_id, m0..m{n-1}; same row order as decisions


def keep_probability() -> pl.Expr:
    """Per decisions row, the probability Refinery keeps the trace: 1 (``true``), 0 (``false``) or 1/rate
    (``sampled``: a random SampleRate, or a stateful sampler at the nominal rate the engines report)."""
    rate = pl.col("rate").cast(pl.Float64)
    sampled = pl.when(rate > 0).then(1.0 / rate).otherwise(0.0)
    return pl.when(pl.col("keep") == "true").then(1.0).when(pl.col("keep") == "false").then(0.0).otherwise(sampled)


def decisions_frame(rows: list[Decision]) -> pl.DataFrame:
    """The decisions table from a list of :class:`Decision` (sorted by trace id)."""
    df = pl.DataFrame([d.as_row() for d in rows], schema=DECISION_SCHEMA, orient="row")
    return df.sort("trace_id")
