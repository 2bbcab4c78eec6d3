"""Lints that need the corpus (warnings; errors with ``--strict``), plus Refinery's runtime traps.

Codes:

====  ==========================================================================================================
N001  a rule matches no trace in the corpus
N002  a rule is fully shadowed on the corpus: it matches traces, but earlier rules decide all of them
N003  a condition names a field the corpus never has
N004  a text operator that is true for a span WITHOUT the field (Refinery reads a missing field as ``<nil>``)
N005  the comparison's type never matches the field's type in the corpus
R0xx  Refinery's own traps in the lowered rules (``nectar.refinery.lints``), e.g. R018: a negative operator in
      trace scope is true if ANY span satisfies it
====  ==========================================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nectar.corpus.layout import Corpus, ValueType
from nectar.policy import ir
from nectar.policy.lower import LoweredPolicy
from nectar.refinery.lints import lint_rules
from nectar.refinery.model import Datatype, Operator

# Refinery lints worth showing on a policy's lowered rules (the others cannot arise from the policy language).
_REFINERY_CODES = {"R014", "R018"}
_VIRTUAL = {"?.NUM_DESCENDANTS", "meta.refinery.root"}


@dataclass(frozen=True, slots=True)
class CorpusLint:
    code: str
    severity: str  # "warning" or "info"
    rule: str | None  # the policy rule
    message: str
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "rule": self.rule,
            "message": self.message,
            "hint": self.hint,
        }


def corpus_lints(policy: ir.Policy, lowered: LoweredPolicy, corpus: Corpus, replay: dict[str, Any]) -> list[CorpusLint]:
    out: list[CorpusLint] = []
    origin = [o.policy_rule for o in lowered.origins]
    # Judge matching and shadowing per policy rule: the clauses of one rule written with `or` may well shadow
    # each other, which is no news to its author.
    matched: dict[str, int] = {}
    decided: dict[str, int] = {}
    for i, r in enumerate(replay["rules"]):
        matched[origin[i]] = matched.get(origin[i], 0) + r["matched"]["traces"]
        decided[origin[i]] = decided.get(origin[i], 0) + r["decided"]["traces"]
    for name in dict.fromkeys(origin):
        if matched[name] == 0:
            out.append(
                CorpusLint(
                    "N001",
                    "warning",
                    name,
                    f"rule {name!r} matches no trace in the corpus",
                    "check the field names and values against `nectar corpus fields`",
                )
            )
        elif decided[name] == 0:
            out.append(
                CorpusLint(
                    "N002",
                    "warning",
                    name,
                    f"rule {name!r} matches {matched[name]} traces but never decides one: "
                    "earlier rules decide all of them",
                    "raise its priority, or remove it",
                )
            )
    spans = max(1, corpus.manifest.spans)
    fields = corpus.manifest.fields
    seen: set[tuple[str, str]] = set()
    for i, rule in enumerate(lowered.sampler.rules):
        for c in rule.conditions or ():
            names = [f.removeprefix("root.") for f in c.fields if f not in _VIRTUAL]
            if not names:
                continue
            present = [n for n in names if n in fields]
            key = (origin[i], ",".join(names) + str(c.operator))
            if key in seen:
                continue
            seen.add(key)
            label = " or ".join(names)
            if not present:
                out.append(
                    CorpusLint(
                        "N003",
                        "warning",
                        origin[i],
                        f"the corpus never has the field {label!r}",
                        "`nectar corpus fields` lists the fields the corpus has",
                    )
                )
                continue
            count = sum(sum(fields[n].values()) for n in present)
            if c.operator in (Operator.DOES_NOT_CONTAIN, Operator.NOT_IN, Operator.NE) and (
                c.datatype in (None, Datatype.STRING) and count < spans
            ):
                out.append(CorpusLint(
                    "N004", "info", origin[i],
                    f"{label!r} is missing on {spans - min(count, spans)} of {spans} spans, and Refinery reads a "
                    f"missing field as \"<nil>\": `{c.operator.value}` is true for those spans",
                    "add exists(...) in a span(...) group if missing fields should not match",
                ))  # fmt: skip
            types = {ValueType(t) for n in present for t in fields[n]}
            mismatch = _type_mismatch(c.datatype, types)
            if mismatch:
                out.append(CorpusLint("N005", "warning", origin[i], f"{label!r}: {mismatch}"))
    for lint in lint_rules(lowered.rules_file()):
        if lint.code in _REFINERY_CODES and lint.sampler == "__default__":
            idx = lint.rule_index
            out.append(CorpusLint(lint.code, "info", origin[idx] if idx is not None else None, lint.message, lint.hint))
    return out


def _type_mismatch(datatype: Datatype | None, types: set[ValueType]) -> str | None:
    values = types - {ValueType.NULL}
    if not values or datatype is None:
        return None
    numeric = {ValueType.INT, ValueType.FLOAT}
    if datatype in (Datatype.INT, Datatype.FLOAT) and not values & numeric:
        return (
            f"compared as a number, but the corpus has it only as {'/'.join(sorted(values))}: Refinery converts "
            "text with strconv, and text that is not a number never matches"
        )
    if datatype is Datatype.STRING and values <= numeric:
        return "compared as text, but the corpus has it only as a number: write the value without quotes"
    if datatype is Datatype.BOOL and ValueType.BOOL not in values:
        return f"compared as true/false, but the corpus has it only as {'/'.join(sorted(values))}"
    return None
