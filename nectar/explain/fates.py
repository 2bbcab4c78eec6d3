"""What happens to the traces that matter: error traces and each must-keep class, by deciding rule and outcome.

The prover says whether every such trace is kept; a reviewer also wants to see *which* rule keeps them (an error
kept only because it happens to be slow is one latency change away from being dropped). Which traces belong to
each class comes from the prover's own pass (:attr:`nectar.prove.core.ProofReport.predicate_hits`): the classes are
the prover's error definition and must-keep classes, so nothing is evaluated twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from nectar.prove.core import ProofReport, read_must_keep_ids
from nectar.refinery.model import SamplerKind

NO_RULE = "(no rule)"


@dataclass(frozen=True, slots=True)
class Fate:
    """A class of traces and what the policy does with them: per policy rule and outcome, the trace count."""

    label: str  # "error traces", "class 'checkouts'" (a must-keep class), "ids in must-keep.txt"
    definition: str  # the match expression ("" for the ids file)
    traces: int
    # (policy rule or NO_RULE, keep, rate, traces), in rule order; rate 0: a stateful sampler's (it varies)
    rows: tuple[tuple[str, str, int, int], ...]


def trace_fates(report: ProofReport) -> tuple[Fate, ...]:
    """Error traces, each must-keep class and the ids in ``must-keep.txt``: how the policy decides them."""
    dec = report.decisions
    classes = [("error traces", report.error_definition)]
    classes += [(f"class {m.name!r}", m.match_text) for m in report.policy.must_keep]
    origin = {i: o.policy_rule for i, o in enumerate(report.lowered.origins)}
    order = {name: pos for pos, name in enumerate(dict.fromkeys(origin.values()))}
    fates = []
    for (label, text), hit in zip(classes, report.predicate_hits, strict=True):
        fates.append(_fate(label, text, dec.filter(hit), origin, order))
    ids = read_must_keep_ids(report.corpus)
    if ids is not None:
        listed = dec.filter(pl.col("trace_id").is_in(ids))
        fates.append(_fate("ids in must-keep.txt", "", listed, origin, order))
    return tuple(fates)


def _fate(label: str, text: str, sub: pl.DataFrame, origin: dict[int, str], order: dict[str, int]) -> Fate:
    stateful = pl.col("sampler").is_in(list(SamplerKind.STATEFUL)).fill_null(False)
    rate = pl.when(stateful).then(pl.lit(0, dtype=pl.UInt64)).otherwise(pl.col("rate")).alias("rate")
    counts = sub.group_by("rule_index", "keep", rate).agg(pl.len().alias("n")).to_dicts()
    merged: dict[tuple[str, str, int], int] = {}
    for c in counts:
        name = NO_RULE if c["rule_index"] is None else origin[c["rule_index"]]
        key = (name, c["keep"], int(c["rate"]))
        merged[key] = merged.get(key, 0) + int(c["n"])
    rows = sorted(merged.items(), key=lambda kv: (order.get(kv[0][0], len(order)), kv[0][1], kv[0][2]))
    return Fate(label, text, sub.height, tuple((n, k, r, t) for (n, k, r), t in rows))


def fate_phrase(f: Fate) -> str:
    """``keep-errors keeps 30, sample-rest samples 2 (1 in 100)``."""
    parts = []
    for name, keep, rate, n in f.rows:
        if keep == "true":
            parts.append(f"{name} keeps {n:,}")
        elif keep == "false":
            parts.append(f"{name} drops {n:,}")
        elif rate == 0:
            parts.append(f"{name} samples {n:,} (a stateful sampler: its rate depends on traffic)")
        else:
            parts.append(f"{name} samples {n:,} (1 in {rate:,})")
    return ", ".join(parts)


__all__ = ["NO_RULE", "Fate", "fate_phrase", "trace_fates"]
