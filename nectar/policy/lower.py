"""Lowering: the policy IR to the Refinery rules IR (:mod:`nectar.refinery.model`), exactly or not at all.

What the prover evaluates and what the compiler writes is this one lowered rules file: no second, looser model of a
policy exists. Choices (README "Match expressions"):

* rules in priority order (higher first, file order for ties); a policy rule whose match normalizes to several
  clauses (``or``) becomes consecutive Refinery rules named ``<name>#1``, ``<name>#2`` ... with the same action;
  a rule that can never match (``false``) is left out;
* aliases become ``Fields`` (first present wins), a single field ``Field``; ``span_count()`` is
  ``?.NUM_DESCENDANTS`` (only valid as ``Field``); durations are milliseconds;
* every comparison and list gets an explicit ``Datatype`` from its literal: whole number ``int``, decimal or
  duration ``float``, quoted ``string``, ``true``/``false`` ``bool``;
* ``ends_with "x"`` is ``matches "<QuoteMeta(x)>$"`` (Refinery has no ends-with; RE2's ``$`` is end of text);
* ``keep`` is ``SampleRate: 1``, ``drop`` is ``Drop: true``, ``sample(P)`` is ``SampleRate: round(1/P)``, and the
  sampler actions are downstream ``Sampler`` blocks (the sampler type per action and kind: ``ir.SAMPLERS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nectar.policy import ir
from nectar.policy.normalize import Clause, normalize
from nectar.policy.regex import quote_meta
from nectar.refinery.model import (
    Condition,
    Datatype,
    Operator,
    Rule,
    RulesBasedSampler,
    RulesFile,
    Sampler,
    SamplerConfig,
    SamplerKind,
    Scalar,
)

_CMP = {
    ir.CmpOp.EQ: Operator.EQ, ir.CmpOp.NE: Operator.NE, ir.CmpOp.GT: Operator.GT,
    ir.CmpOp.GE: Operator.GE, ir.CmpOp.LT: Operator.LT, ir.CmpOp.LE: Operator.LE,
}  # fmt: skip
_DATATYPE = {
    ir.LitKind.INT: Datatype.INT, ir.LitKind.FLOAT: Datatype.FLOAT, ir.LitKind.DURATION: Datatype.FLOAT,
    ir.LitKind.STRING: Datatype.STRING, ir.LitKind.BOOL: Datatype.BOOL,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RuleOrigin:
    """Where a lowered Refinery rule comes from: the policy rule, and which of its clauses (1-based, of ``count``)."""

    policy_rule: str
    clause: int
    count: int


@dataclass(frozen=True, slots=True)
class LoweredPolicy:
    """The Refinery rules of a policy, and for each rule (same index) where it came from."""

    sampler: RulesBasedSampler
    origins: tuple[RuleOrigin, ...]

    def rules_file(self, environments: Sequence[str] = ("__default__",)) -> RulesFile:
        """The whole rules file: this sampler under each environment (``__default__`` is always present)."""
        envs = list(dict.fromkeys(["__default__", *environments]))
        return RulesFile({env: SamplerConfig(rules_based=self.sampler) for env in envs})


def _value(lit: ir.Literal) -> Scalar:
    if lit.kind is ir.LitKind.DURATION:
        return float(lit.value)
    return lit.value


def _fields(f: ir.FieldRef) -> tuple[tuple[str, ...], bool]:
    names = f.refinery_fields
    return names, len(names) == 1


def lower_atom(atom: ir.Atom) -> Condition:
    """One match-expression atom as one Refinery condition."""
    match atom:
        case ir.Compare():
            names, single = _fields(atom.field)
            datatype: Datatype | None = Datatype.INT
            if atom.field.kind is not ir.FieldKind.SPAN_COUNT:
                datatype = _DATATYPE[atom.value.kind]
            if atom.untyped:
                datatype = None  # Refinery's native comparison: the YAML type of the value decides (int/float/...)
            return Condition(names, _CMP[atom.op], _value(atom.value), datatype, single)
        case ir.InList():
            names, single = _fields(atom.field)
            kinds = {v.kind for v in atom.values}
            kind = ir.LitKind.FLOAT if ir.LitKind.DURATION in kinds else next(iter(kinds))
            values = tuple(float(v.value) if kind is ir.LitKind.FLOAT else v.value for v in atom.values)
            op = Operator.NOT_IN if atom.negated else Operator.IN
            return Condition(names, op, values, _DATATYPE[kind], single)
        case ir.StringOp():
            names, single = _fields(atom.field)
            text = str(atom.pattern.value)
            if atom.kind is ir.StrOpKind.CONTAINS:
                op = Operator.DOES_NOT_CONTAIN if atom.negated else Operator.CONTAINS
                return Condition(names, op, text, None, single)
            if atom.kind is ir.StrOpKind.STARTS_WITH:
                return Condition(names, Operator.STARTS_WITH, text, None, single)
            if atom.kind is ir.StrOpKind.ENDS_WITH:
                return Condition(names, Operator.MATCHES, quote_meta(text) + "$", None, single)
            return Condition(names, Operator.MATCHES, text, None, single)
        case ir.Exists():
            names, single = _fields(atom.field)
            return Condition(names, Operator.NOT_EXISTS if atom.negated else Operator.EXISTS, None, None, single)
        case ir.HasRoot():
            return Condition((), Operator.HAS_ROOT_SPAN, not atom.negated, None, True)
    raise AssertionError(atom)  # pragma: no cover


def lower_action(action: ir.Action) -> dict[str, object]:
    """The rule fields an action sets: ``sample_rate``, ``drop``, ``samplers``."""
    match action:
        case ir.KeepAction():
            return {"sample_rate": 1}
        case ir.DropAction():
            return {"drop": True}
        case ir.SampleAction():
            return {"sample_rate": action.rate}
        case ir.DynamicAction() | ir.ThroughputAction():
            spec = action.spec  # ir.SAMPLERS: which Refinery sampler, and the key of its goal
            params = {spec.goal_key: action.goal, "FieldList": list(action.keys), **dict(action.settings)}
            return {"samplers": (Sampler(spec.refinery, params),)}
        case ir.DeterministicAction():
            return {"samplers": (Sampler(SamplerKind.DETERMINISTIC, {"SampleRate": action.rate}),)}
    raise AssertionError(action)  # pragma: no cover


def lower_clause(name: str, clause: Clause, action: ir.Action) -> Rule:
    conditions = tuple(lower_atom(a) for a in clause.atoms) or None
    scope = "span" if clause.scope == "span" else None
    return Rule(name=name, conditions=conditions, scope=scope, **lower_action(action))  # type: ignore[arg-type]


def lower_policy(policy: ir.Policy) -> LoweredPolicy:
    """The policy's Refinery rules, in evaluation order, with their origins."""
    rules: list[Rule] = []
    origins: list[RuleOrigin] = []
    for prule in policy.ordered_rules():
        clauses = normalize(prule.match)
        for i, clause in enumerate(clauses, 1):
            name = prule.name if len(clauses) == 1 else f"{prule.name}#{i}"
            rules.append(lower_clause(name, clause, prule.action))
            origins.append(RuleOrigin(prule.name, i, len(clauses)))
    return LoweredPolicy(RulesBasedSampler(tuple(rules)), tuple(origins))


def lower_predicate(expr: ir.Expr, name: str = "match") -> RulesBasedSampler:
    """A predicate as rules: its clauses keep (SampleRate 1), anything else is dropped by a final catch-all.

    Evaluating this sampler with any engine gives, per trace, keep == "true" exactly when ``expr`` matches, with
    Refinery's semantics. The prover uses it for the error definition and must-keep classes.
    """
    clauses = normalize(expr)
    rules = [lower_clause(f"{name}#{i}", c, ir.KeepAction()) for i, c in enumerate(clauses, 1)]
    rules.append(Rule(name=f"{name}:no", drop=True))
    return RulesBasedSampler(tuple(rules))


def rule_names(rules: Iterable[Rule]) -> list[str]:
    return [r.name for r in rules]
