"""What happens to the traces that matter: error traces and each must-keep class, by deciding rule and outcome.

The prover says whether every such trace is kept; a reviewer also wants to see *which* rule keeps them (an error
kept only because it happens to be slow is one latency change away from being dropped). A class is a match
expression lowered like a policy rule (:func:`nectar.policy.lower.lower_predicate`, Refinery's semantics), decided
by the same engine in one extra pass over the corpus for all classes together.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from nectar.config import Config
from nectar.engine.api import evaluate
from nectar.errors import NectarError
from nectar.policy import ir
from nectar.policy.expr import parse_expr, standalone_origin
from nectar.policy.lower import lower_predicate
from nectar.prove.core import ProofReport, read_must_keep_ids
from nectar.refinery.model import Rule, RulesBasedSampler

NO_RULE = "(no rule)"


@dataclass(frozen=True, slots=True)
class Fate:
    """A class of traces and what the policy does with them: per policy rule and outcome, the trace count."""

    label: str  # "error traces", "class 'checkouts'" (a must-keep class), "ids in must-keep.txt"
    definition: str  # the match expression ("" for the ids file)
    traces: int
    rows: tuple[tuple[str, str, int, int], ...]  # (policy rule or NO_RULE, keep, rate, traces), in rule order


def _classes(report: ProofReport, config: Config) -> list[tuple[str, str, ir.Expr]]:
    text = report.error_definition
    try:
        err = parse_expr(text, standalone_origin(text, "nectar.toml prove.error_definition"), config.aliases).expr
    except NectarError as exc:  # pragma: no cover - the prover parsed it already
        raise NectarError(f"prove.error_definition: {exc.message}", exc.span, exc.hint) from None
    out = [("error traces", text, err)]
    out += [(f"class {m.name!r}", m.match_text, m.match) for m in report.policy.must_keep]
    return out


def trace_fates(report: ProofReport, config: Config) -> tuple[Fate, ...]:
    """Error traces, each must-keep class and the ids in ``must-keep.txt``: how the policy decides them."""
    dec = report.decisions
    classes = _classes(report, config)
    rules: list[Rule] = []
    groups: list[list[int]] = []
    for k, (_, _, e) in enumerate(classes):
        sub = lower_predicate(e, f"c{k}").rules[:-1]  # without the final catch-all drop
        groups.append(list(range(len(rules), len(rules) + len(sub))))
        rules.extend(sub)
    rules.append(Rule(name="none", drop=True))
    result = evaluate(RulesBasedSampler(tuple(rules)), report.corpus, engine=report.engine, with_matches=True)
    matches = result.matches
    assert matches is not None
    if result.decisions.get_column("trace_id").to_list() != dec.get_column("trace_id").to_list():
        raise AssertionError("engine returned traces in different orders")  # pragma: no cover
    origin = {i: o.policy_rule for i, o in enumerate(report.lowered.origins)}
    order = {name: pos for pos, name in enumerate(dict.fromkeys(origin.values()))}
    fates = []
    for (label, text, _), g in zip(classes, groups, strict=True):
        hit = matches.select(pl.any_horizontal([f"m{i}" for i in g]) if g else pl.lit(False)).to_series()
        fates.append(_fate(label, text, dec.filter(hit), origin, order))
    ids = read_must_keep_ids(report.corpus)
    if ids is not None:
        listed = dec.filter(pl.col("trace_id").is_in(ids))
        fates.append(_fate("ids in must-keep.txt", "", listed, origin, order))
    return tuple(fates)


def _fate(label: str, text: str, sub: pl.DataFrame, origin: dict[int, str], order: dict[str, int]) -> Fate:
    counts = sub.group_by("rule_index", "keep", "rate").agg(pl.len().alias("n")).to_dicts()
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
        else:
            parts.append(f"{name} samples {n:,} (1 in {rate:,})")
    return ", ".join(parts)


__all__ = ["NO_RULE", "Fate", "fate_phrase", "trace_fates"]
