"""What both proposers share: the proposal type, building a policy from rule specs, plain-English explanations.

A proposer (offline or Claude) produces :class:`RuleSpec` rows (name, description, match text, action text);
:func:`build_policy` turns them into a validated :class:`~nectar.policy.ir.Policy` through the real policy
parser, so a proposed policy is exactly what ``nectar check`` would read from the written file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nectar.policy import ir
from nectar.policy.format import format_action, format_expr, format_policy
from nectar.policy.load import parse_policy
from nectar.policy.toon import encode_string

PRIORITY_STEP = 10


@dataclass(frozen=True, slots=True)
class Note:
    """One grounding decision: the words of the intent, the expression they became, and why."""

    phrase: str
    meaning: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"phrase": self.phrase, "meaning": self.meaning, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule before validation: match and action as text, in priority order (first = highest)."""

    name: str
    match: str
    action: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class MustKeepSpec:
    name: str
    match: str


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposed, validated policy and how it came about."""

    policy: ir.Policy
    text: str  # the canonical TOON text that will be written
    provider: str  # "offline" or "claude"
    notes: tuple[Note, ...] = ()
    assumptions: tuple[str, ...] = ()
    model: str | None = None
    prompt_sha256: str | None = None
    rounds: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "prompt_sha256": self.prompt_sha256,
            "rounds": self.rounds,
            "policy": self.text,
            "rules": [
                {
                    "name": r.name,
                    "match": format_expr(r.match),
                    "action": format_action(r.action),
                    "priority": r.priority,
                    "explanation": explain_rule(r),
                }
                for r in self.policy.ordered_rules()
            ],
            "mappings": [n.to_json() for n in self.notes],
            "assumptions": list(self.assumptions),
        }


def slug(text: str, limit: int = 40) -> str:
    """A rule name from words: lowercase, ``-`` between words, at most ``limit`` characters."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s[:limit].rstrip("-") or "rule") if s else "rule"


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` with ``-2``, ``-3``... appended to repeats (deterministic)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            cand = f"{n}-{seen[n]}"
            while cand in seen:
                seen[n] += 1
                cand = f"{n}-{seen[n]}"
            seen[cand] = 1
            out.append(cand)
        else:
            seen[n] = 1
            out.append(n)
    return out


def policy_text(
    name: str,
    rules: Sequence[RuleSpec],
    description: str = "",
    budget_per_second: float | None = None,
    must_keep: Sequence[MustKeepSpec] = (),
    priorities: Sequence[int] | None = None,
) -> str:
    """TOON text of a policy from specs. Priorities: given, else ``10 * (n - i)`` with a final catch-all at 0."""
    if priorities is None:
        n = len(rules)
        priorities = [PRIORITY_STEP * (n - i) for i in range(n)]
        if rules and rules[-1].match.strip() == "true":
            priorities[-1] = 0
    keys = ["version", "name"] + (["description"] if description else [])
    values = ["1", encode_string(name, ",")] + ([encode_string(description, ",")] if description else [])
    if budget_per_second is not None:
        keys.append("budget_per_second")
        values.append(
            repr(budget_per_second) if not float(budget_per_second).is_integer() else str(int(budget_per_second))
        )
    keys.append("rules")
    lines = ["nectar_policy{" + ",".join(keys + (["must_keep"] if must_keep else [])) + "}:"]
    lines += ["  " + v for v in values]
    lines.append(f"  rules[{len(rules)}]{{name,description,match,action,priority}}:")
    for r, p in zip(rules, priorities, strict=True):
        match = r.match.strip()
        cells = [r.name, r.description, match, r.action.strip()]
        enc = [encode_string(c, ",") if c not in ("true", "false") or i != 2 else c for i, c in enumerate(cells)]
        lines.append("    " + ",".join([*enc, str(p)]))
    if must_keep:
        lines.append(f"  must_keep[{len(must_keep)}]{{name,match}}:")
        for m in must_keep:
            mt = m.match.strip()
            lines.append(
                "    "
                + ",".join([encode_string(m.name, ","), mt if mt in ("true", "false") else encode_string(mt, ",")])
            )
    return "\n".join(lines) + "\n"


def build_policy(text: str, aliases: Mapping[str, tuple[str, ...]], file: str = "<proposal>") -> tuple[ir.Policy, str]:
    """Parse proposal text with the real policy parser; return the policy and its canonical text."""
    policy = parse_policy(text, file, aliases)
    canonical = format_policy(policy)
    return parse_policy(canonical, file, aliases), canonical


# --- plain-English explanations ------------------------------------------------------------------------------


def _atom_en(a: ir.Expr) -> str:
    match a:
        case ir.Compare():
            f = "the span count" if a.field.kind is ir.FieldKind.SPAN_COUNT else a.field.written
            return f"{f} {a.op.value} {a.value.text if a.value.kind is not ir.LitKind.STRING else repr(a.value.value)}"
        case ir.InList():
            vals = ", ".join(v.text if v.kind is not ir.LitKind.STRING else repr(v.value) for v in a.values)
            return f"{a.field.written} {'not ' if a.negated else ''}in ({vals})"
        case ir.StringOp():
            verb = {
                "contains": "contains",
                "starts_with": "starts with",
                "ends_with": "ends with",
                "matches": "matches",
            }
            return f"{a.field.written} {'does not ' if a.negated else ''}{verb[a.kind.value]} {a.pattern.value!r}"
        case ir.Exists():
            return f"{a.field.written} is {'missing' if a.negated else 'present'}"
        case ir.HasRoot():
            return "the root span has " + ("not arrived" if a.negated else "arrived")
    return format_expr(a)


def explain_expr(e: ir.Expr) -> str:
    """An English reading of a match expression with Refinery's any-span semantics spelled out."""
    match e:
        case ir.Const():
            return "every trace" if e.value else "no trace"
        case ir.SpanGroup():
            return "one span where " + _joined(e.item, "and")
        case ir.And():
            return " and ".join(_part(i) for i in e.items)
        case ir.Or():
            return " or ".join(_part(i) for i in e.items)
        case ir.Not():
            return "not (" + explain_expr(e.item) + ")"
    if isinstance(e, ir.Compare) and e.field.kind is ir.FieldKind.SPAN_COUNT:
        return _atom_en(e)
    if isinstance(e, ir.HasRoot) or (isinstance(e, ir.ATOM_TYPES) and e.field.root):
        return _atom_en(e)
    return "any span with " + _atom_en(e)


def _part(e: ir.Expr) -> str:
    text = explain_expr(e)
    return f"({text})" if isinstance(e, (ir.And, ir.Or)) else text


def _joined(e: ir.Expr, word: str) -> str:
    if isinstance(e, ir.And):
        return f" {word} ".join(_joined(i, word) for i in e.items)
    if isinstance(e, ir.Or):
        return "(" + " or ".join(_joined(i, word) for i in e.items) + ")"
    return _atom_en(e)


def explain_action(a: ir.Action) -> str:
    match a:
        case ir.KeepAction():
            return "Keeps"
        case ir.DropAction():
            return "Drops"
        case ir.SampleAction():
            return f"Keeps 1 in {a.rate} of"
        case ir.DynamicAction():
            kind = "dynamic" if a.kind == ir.SamplerVariant.EMA else f"{a.kind} dynamic"
            return f"Samples ({kind}, goal 1 in {a.goal_rate} per {', '.join(a.keys)})"
        case ir.ThroughputAction():
            kind = "" if a.kind == ir.SamplerVariant.EMA else f"{a.kind} throughput, "
            return f"Samples ({kind}about {a.per_second}/s per {', '.join(a.keys)})"
        case ir.DeterministicAction():
            return f"Keeps 1 in {a.rate} (by trace id) of"
    return format_action(a)  # pragma: no cover


def explain_rule(rule: ir.PolicyRule) -> str:
    """One sentence: what the rule does to which traces."""
    if isinstance(rule.match, ir.Const) and rule.match.value:
        return f"{explain_action(rule.action)} every trace no earlier rule decided."
    return f"{explain_action(rule.action)} traces with {explain_expr(rule.match)} (unless an earlier rule decided)."


__all__ = [
    "MustKeepSpec",
    "Note",
    "Proposal",
    "RuleSpec",
    "build_policy",
    "explain_rule",
    "policy_text",
    "slug",
    "unique_names",
]
