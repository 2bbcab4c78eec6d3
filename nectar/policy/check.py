"""``nectar check``: everything that can be known about a policy without a corpus.

Parses and validates the policy, normalizes every rule to Refinery's shape (refusing what has no exact form), and
collects warnings: shared priorities, inexact sample rates, alias typos, rules after a catch-all, a missing catch-all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nectar.config import Config
from nectar.errors import ErrorGroup, NectarError
from nectar.policy import ir
from nectar.policy.expr import parse_expr, standalone_origin
from nectar.policy.load import load_policy
from nectar.policy.normalize import Clause, normalize


@dataclass(frozen=True, slots=True)
class RuleShape:
    """A policy rule and the Refinery rules (clauses) it becomes."""

    rule: ir.PolicyRule
    clauses: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class CheckResult:
    policy: ir.Policy
    shapes: tuple[RuleShape, ...]
    warnings: tuple[ir.Diagnostic, ...] = field(default=())

    @property
    def refinery_rule_count(self) -> int:
        return sum(len(s.clauses) for s in self.shapes)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.name,
            "file": self.policy.path,
            "ok": True,
            "rules": len(self.policy.rules),
            "refinery_rules": self.refinery_rule_count,
            "warnings": [_diag_json(w) for w in self.warnings],
        }


def _diag_json(d: ir.Diagnostic) -> dict[str, Any]:
    out: dict[str, Any] = {"message": d.message}
    if d.span is not None:
        out.update(file=d.span.file, line=d.span.line, column=d.span.column)
    if d.hint:
        out["hint"] = d.hint
    return out


def check_policy(path: Path, config: Config) -> CheckResult:
    """Load, validate and normalize ``path``; raises :class:`NectarError` (all rule errors at once)."""
    policy = load_policy(path, config.aliases)
    warnings = list(policy.diagnostics)
    shapes: list[RuleShape] = []
    errors: list[NectarError] = []
    catch_all: ir.PolicyRule | None = None
    for rule in policy.ordered_rules():
        try:
            clauses = tuple(normalize(rule.match))
        except NectarError as exc:
            errors.append(exc)
            continue
        if catch_all is not None:
            warnings.append(
                ir.Diagnostic(
                    f"rule {rule.name!r} can never decide a trace: {catch_all.name!r} before it matches every trace",
                    rule.span,
                    "give it a higher priority than the catch-all, or remove it",
                )
            )
        if not clauses:
            warnings.append(
                ir.Diagnostic(
                    f"rule {rule.name!r} never matches (its match is always false)",
                    rule.span,
                    "it is left out of the compiled rules",
                )
            )
        elif any(not c.atoms for c in clauses) and catch_all is None:
            catch_all = rule
        shapes.append(RuleShape(rule, clauses))
    for mk in policy.must_keep:
        try:
            normalize(mk.match)
        except NectarError as exc:
            errors.append(exc)
    if errors:
        raise errors[0] if len(errors) == 1 else ErrorGroup(errors)
    if catch_all is None:
        warnings.append(
            ir.Diagnostic(
                "the policy has no catch-all rule: traces no rule matches are kept at rate 1 by Refinery",
                None,
                "end with a rule whose match is `true`, e.g. `rest,Everything else,true,sample(0.1),0`",
            )
        )
    return CheckResult(policy, tuple(shapes), tuple(warnings))


def check_expression(text: str, config: Config) -> list[Clause]:
    """Validate a bare match expression (``nectar check -e``) and return its Refinery shape."""
    parsed = parse_expr(text, standalone_origin(text, "<expr>"), config.aliases)
    return normalize(parsed.expr)
