"""Lints: what Refinery v3.2.2 accepts but gets wrong at runtime (SEMANTICS.md 2.8 and 3.3).

``lint_rules(rules_file, positions=None) -> list[Lint]``. Codes are stable; severities: ``error`` (the rule or
condition can never do what it says, or Refinery crashes), ``warning`` (legal but almost always a mistake),
``info`` (worth knowing).

====  ========  ==============================================================================================
code  severity  finding
====  ========  ==============================================================================================
R001  error     condition without ``Operator``: never matches (``Init`` fails: "unknown operator ''")
R002  warning   operator needs a ``Value`` but has none (compares against nil / ``"<nil>"``; in/not-in never match)
R003  error     ``matches`` with a pattern RE2 rejects: never matches
R004  warning   ``Value`` does not convert to ``Datatype`` (int/float: silently untyped; bool: reads as false)
R005  error     ``in``/``not-in`` with ``Datatype: bool`` or a bool scalar Value: never matches
R006  error     ``has-root-span`` in a ``Scope: span`` rule: the rule never matches (issue #1757)
R007  warning   rule without ``SampleRate``, ``Drop`` or ``Sampler``: drops every trace it matches (rate 0)
R008  warning   negative ``SampleRate``: drops, and the reported rate wraps to a huge number
R009  error     ``DeterministicSampler`` with ``SampleRate: 0``: Refinery divides by zero and panics
R010  warning   several sampler types in one entry (or one rule ``Sampler``): only the first in Refinery's order runs
R011  warning   ``Value: yes/no/on/off/y/n`` is a string in YAML 1.2 (yaml.v3), not a bool
R012  error     condition on ``trace.parent_id``/``parentId``/``trace.trace_id``/``traceId``: invisible to rules
R013  warning   condition on a field Refinery adds after the decision (``meta.span_count``...): never present
R014  warning   ``root.X`` with a negative operator and no ``has-root-span: true`` guard: true for root-less traces
R015  warning   rule after a catch-all rule (no conditions / invalid scope): unreachable
R016  error     invalid ``Scope``: Refinery treats the rule as matching every trace (``rules/invalid scope/``)
R017  error     ``?.NUM_DESCENDANTS`` inside ``Fields`` (only computed for ``Field``), or an unknown ``?.`` field
R018  warning   negative operator in trace scope: true if ANY span satisfies it (use ``Scope: span``)
R019  warning   downstream ``DeterministicSampler``: runs, but the v3.2.2 validator rejects it (fixed by PR #1856)
R020  error     sampler entry naming no sampler type: Refinery exits when it first needs it
R021  info      ``Datatype`` on an operator that ignores it (exists, starts-with, contains, matches...)
R022  info      comparison without ``Datatype``: type-strict (``"500"`` never equals ``500``)
====  ========  ==============================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nectar.errors import Span
from nectar.refinery import gostr
from nectar.refinery.loader import RulesPositions
from nectar.refinery.model import (
    COMPARISON_OPERATORS,
    NEGATIVE_OPERATORS,
    NUM_DESCENDANTS,
    ROOT_PREFIX,
    STRING_OPERATORS,
    Condition,
    Datatype,
    Operator,
    Rule,
    RulesBasedSampler,
    RulesFile,
    Sampler,
    SamplerConfig,
    SamplerKind,
)

ERROR, WARNING, INFO = "error", "warning", "info"
HIDDEN_ID_FIELDS = frozenset({"trace.parent_id", "parentId", "trace.trace_id", "traceId"})
# Added to the root span by collect.go send/sendTraces, after the decision (issues #646, #850).
AFTER_DECISION_FIELDS = frozenset(
    {
        "meta.span_count",
        "meta.span_event_count",
        "meta.span_link_count",
        "meta.event_count",
        "meta.refinery.reason",
        "meta.refinery.send_reason",
        "meta.refinery.sample_key",
        "meta.refinery.final_sample_rate",
        "meta.refinery.original_sample_rate",
        "meta.refinery.dryrun.kept",
        "meta.dryrun.sample_rate",
    }
)
YAML11_BOOLS = frozenset(
    ["yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N"]
)
NEEDS_VALUE = COMPARISON_OPERATORS | STRING_OPERATORS | {Operator.IN, Operator.NOT_IN}
IGNORES_DATATYPE = STRING_OPERATORS | {Operator.EXISTS, Operator.NOT_EXISTS, Operator.HAS_ROOT_SPAN}


@dataclass(frozen=True, slots=True)
class Lint:
    """One finding. ``rule_index``/``condition_index`` are None when the lint is about a sampler or a rule."""

    code: str
    severity: str
    sampler: str
    rule_index: int | None
    rule_name: str | None
    condition_index: int | None
    message: str
    hint: str | None = None
    span: Span | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity,
            "sampler": self.sampler,
            "rule_index": self.rule_index,
            "rule": self.rule_name,
            "condition_index": self.condition_index,
            "message": self.message,
            "hint": self.hint,
        }
        if self.span is not None:
            d.update(file=self.span.file, line=self.span.line, column=self.span.column)
        return d


class _Linter:
    def __init__(self, positions: RulesPositions | None) -> None:
        self.positions = positions
        self.out: list[Lint] = []

    def add(
        self,
        code: str,
        severity: str,
        env: str,
        message: str,
        hint: str | None = None,
        rule: tuple[int, Rule] | None = None,
        cond: int | None = None,
        key: str | None = None,
    ) -> None:
        where: list[Any] = [env]
        if rule is not None:
            where.append(rule[0])
            if cond is not None:
                where.append(cond)
            if key is not None:
                where.append(key)
        span = self.positions.span(*where) if self.positions is not None else None
        self.out.append(
            Lint(
                code,
                severity,
                env,
                rule[0] if rule else None,
                rule[1].name if rule else None,
                cond,
                message,
                hint,
                span,
            )
        )

    # ---- samplers

    def sampler_config(self, env: str, sc: SamplerConfig) -> None:
        kinds = ([SamplerKind.RULES_BASED] if sc.rules_based is not None else []) + [s.kind for s in sc.others]
        if not kinds:
            self.add(
                "R020",
                ERROR,
                env,
                f"sampler {env!r} names no sampler type; Refinery exits on its first trace",
                "add e.g. `DeterministicSampler: {SampleRate: 1}` or `RulesBasedSampler: {Rules: [...]}`",
            )
        elif len(kinds) > 1:
            chosen = sc.choice
            name = SamplerKind.RULES_BASED if isinstance(chosen, RulesBasedSampler) else getattr(chosen, "kind", "?")
            self.add(
                "R010",
                WARNING,
                env,
                f"sampler {env!r} names {len(kinds)} sampler types; only {name} runs",
                "keep one sampler type per entry",
            )
        for s in sc.others:
            self.deterministic_rate(env, s, None)
        if sc.rules_based is not None:
            self.rules(env, sc.rules_based)

    def deterministic_rate(self, env: str, s: Sampler, rule: tuple[int, Rule] | None) -> None:
        if s.kind == SamplerKind.DETERMINISTIC and s.params.get("SampleRate") == 0:
            self.add(
                "R009",
                ERROR,
                env,
                "DeterministicSampler with SampleRate 0: Refinery divides by zero and panics",
                "use SampleRate: 1 to keep everything",
                rule=rule,
                key="Sampler" if rule else None,
            )

    # ---- rules

    def rules(self, env: str, rbs: RulesBasedSampler) -> None:
        catch_all: int | None = None
        for i, rule in enumerate(rbs.rules):
            r = (i, rule)
            if catch_all is not None:
                self.add(
                    "R015",
                    WARNING,
                    env,
                    f"rule {rule.name!r} is unreachable: rule {catch_all} matches every trace",
                    "move catch-all rules last",
                    rule=r,
                )
            elif rule.is_catch_all:
                catch_all = i
            self.rule(env, r)

    def rule(self, env: str, r: tuple[int, Rule]) -> None:
        rule = r[1]
        if rule.effective_scope == "invalid":
            self.add(
                "R016",
                ERROR,
                env,
                f"invalid Scope {rule.scope!r}: Refinery treats the rule as matching every trace",
                "use Scope: trace or Scope: span",
                rule=r,
                key="Scope",
            )
        if rule.samplers:
            if len(rule.samplers) > 1:
                chosen = rule.sampler.kind if rule.sampler else "none"
                self.add(
                    "R010",
                    WARNING,
                    env,
                    f"rule Sampler names {len(rule.samplers)} samplers; only {chosen} runs",
                    "keep one downstream sampler",
                    rule=r,
                    key="Sampler",
                )
            for s in rule.samplers:
                if s.kind == SamplerKind.DETERMINISTIC:
                    self.add(
                        "R019",
                        WARNING,
                        env,
                        "downstream DeterministicSampler: Refinery v3.2.2's validator rejects "
                        "it (issue #1857); later versions accept it",
                        "needs Refinery > 3.2.2",
                        rule=r,
                        key="Sampler",
                    )
                self.deterministic_rate(env, s, r)
        elif rule.drop:
            pass
        elif rule.sample_rate == 0:
            self.add(
                "R007",
                WARNING,
                env,
                f"rule {rule.name!r} has no SampleRate, Drop or Sampler: it drops every trace it matches (rate 0)",
                "add SampleRate: 1 to keep, or Drop: true to make the drop explicit",
                rule=r,
            )
        elif rule.sample_rate < 0:
            self.add(
                "R008",
                WARNING,
                env,
                f"negative SampleRate {rule.sample_rate}: drops, and the reported rate wraps "
                f"to {rule.sample_rate & (2**64 - 1)}",
                "use Drop: true",
                rule=r,
                key="SampleRate",
            )
        conds = rule.conditions or ()
        guarded = any(c.operator is Operator.HAS_ROOT_SPAN and gostr.to_bool(c.value) for c in conds)
        for j, c in enumerate(conds):
            self.condition(env, r, j, c, guarded)

    # ---- conditions

    def condition(self, env: str, r: tuple[int, Rule], j: int, c: Condition, root_guarded: bool) -> None:
        def add(code: str, sev: str, msg: str, hint: str | None = None, key: str | None = None) -> None:
            self.add(code, sev, env, msg, hint, rule=r, cond=j, key=key)

        op, dt, value, scope = c.operator, c.datatype, c.value, r[1].effective_scope
        if op is None:
            add("R001", ERROR, "condition has no Operator: it never matches", "add an Operator")
            return
        if op in NEEDS_VALUE and value is None:
            add(
                "R002",
                WARNING,
                f"operator {op.value!r} without a Value compares against nil (a missing field "
                'reads as "<nil>"; in/not-in never match)',
                "add a Value",
                key="Operator",
            )
        if op is Operator.MATCHES and value is not None and not _regex_ok(gostr.go_v(value)):
            add(
                "R003",
                ERROR,
                f"invalid RE2 pattern {gostr.go_v(value)!r}: the condition never matches",
                "Refinery compiles with Go's regexp (RE2 syntax: no look-around or backreferences)",
                key="Value",
            )
        if op in (Operator.IN, Operator.NOT_IN) and (dt is Datatype.BOOL or isinstance(value, bool)):
            add(
                "R005",
                ERROR,
                f"{op.value!r} with a bool Value or Datatype: bool never matches",
                "use = / != with Datatype: bool",
                key="Operator",
            )
        self.datatype(add, op, dt, value)
        if (isinstance(value, str) and value in YAML11_BOOLS) or (
            isinstance(value, tuple) and any(isinstance(v, str) and v in YAML11_BOOLS for v in value)
        ):
            add(
                "R011",
                WARNING,
                f"Value {gostr.go_v(value)!r} is a string for Refinery (YAML 1.2), not a bool"
                + ("; with Datatype: bool it reads as false" if dt is Datatype.BOOL else ""),
                "write true or false",
                key="Value",
            )
        if op is Operator.HAS_ROOT_SPAN:
            if scope == "span":
                add(
                    "R006",
                    ERROR,
                    "has-root-span in a Scope: span rule: the rule never matches (issue #1757)",
                    "move the has-root-span condition to a trace-scope rule",
                    key="Operator",
                )
            return
        self.fields(add, c, op, dt, scope, root_guarded)

    @staticmethod
    def datatype(add: Any, op: Operator, dt: Datatype | None, value: Any) -> None:
        if dt is None:
            if op in COMPARISON_OPERATORS and value is not None:
                add(
                    "R022",
                    INFO,
                    "comparison without Datatype is type-strict: a string field never equals a number",
                    "set Datatype (int, float, string or bool)",
                    key="Operator",
                )
            return
        if op in IGNORES_DATATYPE:
            add("R021", INFO, f"Datatype is ignored by {op.value!r}", key="Datatype")
            return
        items = list(value) if isinstance(value, tuple) else [] if value is None else [value]
        if dt is Datatype.INT:
            bad = [v for v in items if gostr.to_int(v) is None]
        elif dt is Datatype.FLOAT:
            bad = [v for v in items if gostr.to_float(v) is None]
        elif dt is Datatype.BOOL and op in (Operator.EQ, Operator.NE):
            bad = [v for v in items if gostr.parse_bool(gostr.go_v(v)) is None]
        else:
            bad = []
        if bad:
            effect = "reads as false" if dt is Datatype.BOOL else "the comparison silently becomes untyped"
            if op in (Operator.IN, Operator.NOT_IN):
                effect = "those values are skipped"
            add(
                "R004",
                WARNING,
                f"Value {gostr.go_v(bad[0])!r} does not convert to Datatype {dt.value}: {effect}",
                "fix the Value or the Datatype",
                key="Value",
            )

    @staticmethod
    def fields(add: Any, c: Condition, op: Operator, dt: Datatype | None, scope: str, root_guarded: bool) -> None:
        for n, name in enumerate(c.fields):
            bare = name[len(ROOT_PREFIX) :] if name.startswith(ROOT_PREFIX) else name
            key = "Field" if c.single_field else "Fields"
            if bare in HIDDEN_ID_FIELDS:
                add(
                    "R012",
                    ERROR,
                    f"field {name!r} is consumed by Refinery (>= 3.0) and invisible to rules",
                    "use has-root-span to tell roots apart",
                    key=key,
                )
            if bare in AFTER_DECISION_FIELDS:
                add(
                    "R013",
                    WARNING,
                    f"field {name!r} is added after the sampling decision: conditions never see it",
                    "use Field: ?.NUM_DESCENDANTS to count spans",
                    key=key,
                )
            if name.startswith("?."):
                if not c.single_field and name == NUM_DESCENDANTS:
                    add(
                        "R017",
                        ERROR,
                        "?.NUM_DESCENDANTS is only computed for Field, not inside Fields",
                        "use Field: ?.NUM_DESCENDANTS",
                        key=key,
                    )
                elif name != NUM_DESCENDANTS and (c.single_field or n == 0):
                    add(
                        "R017",
                        ERROR,
                        f"unknown computed field {name!r}: looked up as a literal key",
                        "the only computed field is ?.NUM_DESCENDANTS",
                        key=key,
                    )
        negative = op in NEGATIVE_OPERATORS or (
            op in COMPARISON_OPERATORS and dt is Datatype.STRING and op is Operator.NE
        )
        reads_root = any(f.startswith(ROOT_PREFIX) for f in c.fields)
        all_root = bool(c.fields) and all(f.startswith(ROOT_PREFIX) for f in c.fields)
        missing_true = op in (Operator.NOT_EXISTS, Operator.DOES_NOT_CONTAIN, Operator.NOT_IN) or (
            op is Operator.NE and dt is Datatype.STRING
        )
        if reads_root and missing_true and not root_guarded and scope != "invalid":
            add(
                "R014",
                WARNING,
                f"{op.value!r} on a root. field is true for traces without a root span",
                "add a `has-root-span: true` condition",
                key="Operator",
            )
        if negative and scope == "trace" and not all_root:
            add(
                "R018",
                WARNING,
                f"{op.value!r} in trace scope is true if ANY span satisfies it",
                "use Scope: span, or a positive condition",
                key="Operator",
            )


def _regex_ok(pattern: str) -> bool:
    import re2

    options = re2.Options()
    options.log_errors = False
    try:
        re2.compile(pattern, options)
    except Exception:
        return False
    return True


def lint_rules(rules_file: RulesFile, positions: RulesPositions | None = None) -> list[Lint]:
    """Every lint for a loaded rules file, in file order (samplers, rules, conditions)."""
    linter = _Linter(positions)
    for env, sc in rules_file.samplers.items():
        linter.sampler_config(env, sc)
    return linter.out
