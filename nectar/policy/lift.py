"""Import: lift an existing Refinery rules file into a policy that compiles back to the same decisions.

Exactness is checked, not hoped for: every lifted rule is printed, parsed back with the policy parser (with the
project's aliases), lowered, and compared with the original rule by its *meaning* (:func:`rule_meaning`: the
conditions after Refinery's own ``Init()`` conversions, the effective scope, and what the rule does). A rule that
has no exact policy form is refused with the reason; nothing is silently changed.

How Refinery constructs map to the policy language:

* conditions of a rule -> ``and`` of atoms; ``Scope: span`` with several conditions -> ``span(...)``;
* consecutive rules named ``<name>#1``, ``<name>#2``... with one action (what ``nectar compile`` writes for an
  ``or``) -> one policy rule with ``or``; other rules one policy rule each, priorities descending by 10 to 0;
* ``Field`` -> the name (in backticks when it is not a plain name or is an alias); ``Fields`` -> an alias of the
  project whose fields are exactly that list (else refused, with the ``[aliases]`` line to add);
  ``?.NUM_DESCENDANTS`` -> ``span_count()``; ``has-root-span`` -> ``has_root()`` / ``not has_root()``;
* typed comparisons (Datatype set) -> comparisons whose literal has that type; ``in``/``not-in`` (untyped
  means string) -> ``in``/``not in``; the string operators -> ``contains``, ``not contains``, ``starts_with``,
  ``matches``; ``exists``/``not-exists`` -> ``exists(f)``/``not exists(f)``;
* ``SampleRate: 1`` -> ``keep``; ``N > 1`` -> ``sample(1/N)``; ``Drop: true``, and a rule without a positive
  SampleRate (Refinery drops what it matches, SEMANTICS.md 2.8) -> ``drop``; ``Sampler`` -> ``dynamic(...)``,
  ``throughput(...)`` (``kind=`` from the sampler type: ``ir.SAMPLERS``) or ``deterministic(...)`` when it has
  only the settings those actions write;
* a condition without ``Operator`` never matches, so its rule never matches -> ``false`` (kept, with a note); an
  invalid ``Scope`` makes Refinery match every trace -> ``true`` (with a note); ``has-root-span`` in span scope
  never matches -> ``false``;
* a top-level sampler (``DeterministicSampler``, ``DynamicSampler``, ``EMADynamicSampler``, ``EMAThroughputSampler``,
  ``WindowedThroughputSampler``, ``TotalThroughputSampler``) -> one catch-all rule with that action (compiled back to
  the same top-level sampler, :func:`nectar.compile.rules_for`).

* comparisons Refinery runs untyped (no ``Datatype``; Datatype bool with ``>``...; a Value that does not convert to
  the Datatype, SEMANTICS.md 2.6, 2.8) -> ``untyped(field op value)`` with the Value's own YAML type;
* a downstream sampler's settings (``AdjustmentInterval``, ``Weight``, ``UseClusterSize``...) -> the action's
  optional settings (``adjustment_interval=30s``, ``weight=0.5``, ``use_cluster_size=true``...).

Refused, with the reason: ``Fields`` lists without a matching alias (the hint gives the ``[aliases]`` line),
strings against fields known to hold numbers, sampler settings the action cannot write, ``CheckNestedFields: true``,
comparisons without a Value or with a list Value, and fields rules cannot see (``trace.parent_id``...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nectar.config import Config
from nectar.errors import ErrorGroup, NectarError
from nectar.policy import ir
from nectar.policy.expr import parse_expr, standalone_origin
from nectar.policy.format import format_action, format_policy
from nectar.policy.load import parse_action, parse_policy
from nectar.policy.lower import lower_clause
from nectar.policy.normalize import Clause, normalize
from nectar.refinery import gostr
from nectar.refinery.loader import RulesPositions, load_rules_with_positions
from nectar.refinery.model import (
    COMPARISON_OPERATORS,
    NUM_DESCENDANTS,
    Condition,
    Datatype,
    Operator,
    Rule,
    RulesBasedSampler,
    RulesFile,
    Sampler,
    SamplerKind,
    nested_deterministic_valid,
)

_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_@\-]*(\.[A-Za-z0-9_@\-]+)*")
_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "true", "false", "contains", "starts_with", "ends_with", "matches", "exists", "span",
     "has_root", "span_count", "untyped"}
)  # fmt: skip
_CMP = {Operator.EQ: "==", Operator.NE: "!=", Operator.GT: ">", Operator.GE: ">=", Operator.LT: "<", Operator.LE: "<="}
# Refinery sampler type -> the policy action (and kind) that writes it: the one table, ir.SAMPLERS.
_SPEC_OF = {spec.refinery: spec for spec in ir.SAMPLERS.values()}
_FLOAT_SETTINGS = frozenset(
    key for table in ir.SAMPLER_SETTINGS.values() for key, kind in table.values() if kind in ("float", "unit")
)


class Refused(Exception):
    """A rule or condition with no exact policy form: the reason, and what to do about it."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The imported policy (IR and canonical text) and notes on what was lifted with a change of spelling."""

    policy: ir.Policy
    text: str
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------------- meaning


def _s(v: Any) -> str:
    return gostr.go_v(v)


def _convert(value: Any, datatype: Datatype | None) -> Any:
    """A condition Value as Refinery's ``Init()`` converts it for ``datatype`` (None: not convertible)."""
    if datatype is Datatype.INT:
        return gostr.to_int(value)
    if datatype is Datatype.FLOAT:
        return gostr.to_float(value)
    if datatype is Datatype.BOOL:
        return gostr.parse_bool(_s(value))
    return _s(value)


def _falls_back_untyped(c: Condition) -> bool:
    """Whether Refinery runs this comparison untyped: no Datatype; Datatype bool with an ordering operator; or a
    Value that does not convert to the Datatype (``Init()`` fails silently, SEMANTICS.md 2.8)."""
    if c.datatype is None:
        return True
    if c.datatype is Datatype.BOOL:
        return c.operator not in (Operator.EQ, Operator.NE)
    if c.datatype in (Datatype.INT, Datatype.FLOAT):
        return c.value is not None and not isinstance(c.value, tuple) and _convert(c.value, c.datatype) is None
    return False


def condition_meaning(c: Condition) -> tuple[Any, ...]:
    """What a condition tests, after Refinery's conversions; equal meanings decide every span the same."""
    op = c.operator
    fields = c.fields if not (c.fields == (NUM_DESCENDANTS,) and c.single_field) else ("#span_count",)
    if op is None:
        return ("never",)
    if op is Operator.HAS_ROOT_SPAN:
        return ("has_root", gostr.parse_bool(_s(c.value)) is True)
    if op in (Operator.EXISTS, Operator.NOT_EXISTS):
        return (op.value, fields)
    if op in (Operator.STARTS_WITH, Operator.CONTAINS, Operator.DOES_NOT_CONTAIN, Operator.MATCHES):
        return (op.value, fields, _s(c.value))
    if op in (Operator.IN, Operator.NOT_IN):
        dt = c.datatype or Datatype.STRING
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        return (op.value, fields, dt.value, tuple(_convert(v, dt) for v in values))
    typed = None if _falls_back_untyped(c) else c.datatype
    if typed is None and fields == ("#span_count",) and isinstance(c.value, int) and not isinstance(c.value, bool):
        typed = Datatype.INT  # an int64 count against a YAML int: the untyped comparison is the integer one
    return (op.value, fields, typed.value if typed else None, _convert(c.value, typed) if typed else c.value)


def rule_meaning(rule: Rule) -> tuple[Any, ...] | None:
    """What a rule matches and does; None for a rule that can never match."""
    scope = rule.effective_scope
    conds = () if scope == "invalid" else (rule.conditions or ())
    meanings = tuple(condition_meaning(c) for c in conds)
    if any(m == ("never",) for m in meanings):
        return None
    if scope == "span" and any(c.operator is Operator.HAS_ROOT_SPAN for c in conds):
        return None
    if scope == "span" and len(conds) <= 1:
        scope = "trace"  # one condition on one span is the same as that condition on any span
    return (scope if conds else "trace", meanings, _action_meaning(rule))


def sampler_meaning(s: Sampler) -> tuple[Any, ...]:
    """A sampler's type and settings; equal meanings sample the same (Refinery reads a float setting written as an
    int, ``Weight: 1``, as that float)."""
    params = {k: float(v) if k in _FLOAT_SETTINGS and isinstance(v, int) else v for k, v in s.params.items()}
    return ("sampler", s.kind, tuple(sorted((k, repr(v)) for k, v in params.items())))


def _action_meaning(rule: Rule) -> tuple[Any, ...]:
    s = rule.sampler
    if s is not None:
        return sampler_meaning(s)
    if rule.drops:
        return ("drop",)
    return ("rate", rule.sample_rate)


# ---------------------------------------------------------------------------------------------------- lifting


class _Lifter:
    def __init__(self, aliases: Mapping[str, tuple[str, ...]]) -> None:
        self.aliases = aliases
        self.by_fields = {tuple(v): k for k, v in sorted(aliases.items())}

    def field(self, c: Condition) -> str:
        names = c.fields
        if not names:
            raise Refused("the condition names no Field: Refinery compares a missing value")
        if names == (NUM_DESCENDANTS,):
            if c.single_field:
                return "span_count()"
            raise Refused(
                '`Fields: ["?.NUM_DESCENDANTS"]` is a plain field lookup (Refinery computes the span count only for '
                "`Field`), which the policy language does not write",
                'write `Field: "?.NUM_DESCENDANTS"` if the span count was meant',
            )
        if len(names) == 1:
            return self.single(names[0])
        alias = self.by_fields.get(names)
        if alias is not None:
            return alias
        if all(n.startswith("root.") and len(n) > 5 for n in names):
            alias = self.by_fields.get(tuple(n[5:] for n in names))
            if alias is not None:
                return "root." + alias
        suggestion = re.sub(r"[^A-Za-z0-9_]", "_", names[0].rsplit(".", 1)[-1]) + "_any"
        listed = ", ".join(f'"{n}"' for n in names)
        raise Refused(
            f"`Fields: [{listed}]` (the first of these fields present on a span) needs an alias in the policy "
            "language, and nectar.toml has none with exactly these fields in this order",
            f"add it under [aliases] in nectar.toml, e.g. `{suggestion} = [{listed}]`, and import again",
        )

    def single(self, name: str) -> str:
        base = name[5:] if name.startswith("root.") and len(name) > 5 else name
        not_alias = base not in self.aliases or tuple(self.aliases[base]) == (base,)
        plain = _NAME.fullmatch(name) and not_alias and name not in _KEYWORDS and base not in _KEYWORDS
        if plain:
            return name
        return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"

    def literal(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            text = repr(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise Refused(f"the value {gostr.go_v(value)} has no literal in the policy language")
            return text if ("." in text or "e" in text) else text + ".0"
        out = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return '"' + out.replace("\r", "\\r") + '"'

    def typed(self, c: Condition, value: Any) -> str:
        dt = c.datatype
        converted = _convert(value, dt)
        if converted is None:
            raise Refused(
                f"the Value {gostr.go_v(value)} does not convert to Datatype {dt.value if dt else '?'}: Refinery "
                "then silently falls back to an untyped comparison",
                "fix the Value or the Datatype in the rules file, and import again",
            )
        if dt is Datatype.FLOAT and isinstance(converted, float):
            return self.literal(float(converted))
        return self.literal(converted)

    def atom(self, c: Condition) -> str:
        op = c.operator
        if op is Operator.HAS_ROOT_SPAN:
            return "has_root()" if gostr.parse_bool(_s(c.value)) is True else "not has_root()"
        f = self.field(c)
        if op in (Operator.EXISTS, Operator.NOT_EXISTS):
            return ("not " if op is Operator.NOT_EXISTS else "") + f"exists({f})"
        if c.value is None:
            raise Refused(f"`{op.value if op else ''}` without a Value compares against nil, which has no policy form")
        if op in (Operator.STARTS_WITH, Operator.CONTAINS, Operator.DOES_NOT_CONTAIN, Operator.MATCHES):
            if isinstance(c.value, tuple):
                raise Refused(
                    f"`{op.value}` with a list Value compares its %v text (`[a b]`), which has no policy form"
                )
            word = {
                Operator.STARTS_WITH: "starts_with",
                Operator.CONTAINS: "contains",
                Operator.DOES_NOT_CONTAIN: "not contains",
                Operator.MATCHES: "matches",
            }[op]
            return f"{f} {word} {self.literal(_s(c.value))}"
        if op in (Operator.IN, Operator.NOT_IN):
            if c.datatype is Datatype.BOOL:
                raise Refused("`in` with Datatype bool never matches in Refinery (its Init fails)")
            if isinstance(c.value, bool):
                raise Refused("`in` with a bool Value never matches in Refinery (its Init fails)")
            values = c.value if isinstance(c.value, tuple) else (c.value,)
            dt = c.datatype or Datatype.STRING
            lits = [self.literal(_s(v)) if dt is Datatype.STRING else self.typed(c, v) for v in values]
            return f"{f} {'not in' if op is Operator.NOT_IN else 'in'} ({', '.join(lits)})"
        assert op in COMPARISON_OPERATORS
        if _falls_back_untyped(c):
            # Refinery's untyped comparison: type-strict on native values (SEMANTICS.md 2.6), also what a Datatype
            # bool ordering or a Value that does not convert to the Datatype silently becomes (2.8). The span count
            # is an int64, so with a whole-number Value it is the integer comparison.
            if isinstance(c.value, tuple):
                raise Refused(f"`{op.value}` with a list Value never compares in Refinery; it has no policy form")
            if f == "span_count()":
                if isinstance(c.value, int) and not isinstance(c.value, bool):
                    return f"{f} {_CMP[op]} {c.value}"
                raise Refused("an untyped span-count comparison with a non-integer Value has no policy form")
            return f"untyped({f} {_CMP[op]} {self.literal(c.value)})"
        return f"{f} {_CMP[op]} {self.typed(c, c.value)}"

    def match(self, rule: Rule, notes: list[str], label: str) -> str:
        scope = rule.effective_scope
        if scope == "invalid":
            notes.append(f"{label}: Scope {rule.scope!r} is invalid, so Refinery matches every trace: lifted as `true`")
            return "true"
        conds = rule.conditions or ()
        if not conds:
            return "true"
        if any(c.operator is None for c in conds):
            notes.append(f"{label}: a condition has no valid Operator, so the rule never matches: lifted as `false`")
            return "false"
        if scope == "span" and any(c.operator is Operator.HAS_ROOT_SPAN for c in conds):
            notes.append(
                f"{label}: has-root-span in a span-scope rule never matches (refinery#1757): lifted as `false`"
            )
            return "false"
        atoms = [self.atom(c) for c in conds]
        if scope == "span" and len(atoms) > 1:
            return "span(" + " and ".join(atoms) + ")"
        return " and ".join(atoms)

    def action(self, rule: Rule, notes: list[str], label: str) -> str:
        s = rule.sampler
        if s is not None:
            if len(rule.samplers) > 1:
                notes.append(f"{label}: several downstream samplers; Refinery runs only {s.kind}, which is lifted")
            return self.sampler_action(s)
        if rule.drops:
            if not rule.drop:
                notes.append(f"{label}: no positive SampleRate, so Refinery drops what it matches: lifted as `drop`")
            return "drop"
        return "keep" if rule.sample_rate == 1 else f"sample(1/{rule.sample_rate})"

    def sampler_action(self, s: Sampler) -> str:
        """The action that writes sampler ``s``: ``dynamic(...)``/``throughput(...)`` of the kind ir.SAMPLERS
        gives for its type, or ``deterministic(...)``; refused when it sets what the action cannot write."""
        spec = _SPEC_OF.get(s.kind)
        if spec is None and s.kind != SamplerKind.DETERMINISTIC:
            kinds = ", ".join(f"{x.refinery} = {x.action}(kind={x.kind})" for x in ir.SAMPLERS.values())
            raise Refused(
                f"the {s.kind} has no policy action (the actions are {kinds}, DeterministicSampler = deterministic)"
            )  # pragma: no cover - every sampler type Refinery 3.2.2 validates has one
        allowed = (spec.goal_key, "FieldList") if spec is not None else ("SampleRate",)
        table = {key: (arg, kind) for arg, (key, kind) in spec.settings.items()} if spec is not None else {}
        extra = sorted(k for k in s.params if k not in allowed and k not in table)
        if extra:
            raise Refused(
                f"the {s.kind} sets {', '.join(extra)}, which the policy action cannot write (it writes "
                f"{', '.join([*allowed, *table])}); importing without them would change how Refinery samples",
                "remove those settings from the rules file if Refinery's defaults are acceptable, and import again",
            )
        if spec is None:
            return f"deterministic(rate={s.params.get('SampleRate')})"
        args = [f"{spec.goal_arg}={s.params.get(spec.goal_key)}"]
        args.append(
            "keys=(" + ", ".join(k if _NAME.fullmatch(str(k)) else self.literal(str(k)) for k in s.field_list) + ")"
        )
        args.append(f"kind={spec.kind}")  # the formatter leaves the default kind out
        args += [
            f"{arg}={self.setting(key, kind, s.params[key])}" for key, (arg, kind) in table.items() if key in s.params
        ]
        return f"{spec.action}({', '.join(args)})"

    @staticmethod
    def setting(key: str, kind: str, value: Any) -> str:
        """A sampler setting as an action argument (the validator has already checked its YAML type)."""
        if kind == "bool" and isinstance(value, bool):
            return "true" if value else "false"
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if kind in ("float", "unit") and isinstance(value, (int, float)) and not isinstance(value, bool):
            return repr(float(value))
        if kind == "duration" and isinstance(value, str):
            return value
        raise Refused(f"the setting {key}: {gostr.go_v(value)} has no policy form")


# ---------------------------------------------------------------------------------------------------- entry point


@dataclass(slots=True)
class _Group:
    """Consecutive Refinery rules that become one policy rule."""

    name: str
    indexes: list[int]
    matches: list[str]
    action: str


def _group_name(name: str) -> tuple[str, int] | None:
    m = re.fullmatch(r"(.+)#(\d+)", name)
    return (m.group(1), int(m.group(2))) if m else None


def _unique(name: str, used: set[str], index: int) -> str:
    base = name.strip() or f"rule-{index + 1}"
    out, n = base, 2
    while out in used:
        out, n = f"{base}-{n}", n + 1
    used.add(out)
    return out


def lift_sampler(
    sampler: RulesBasedSampler,
    aliases: Mapping[str, tuple[str, ...]],
    positions: RulesPositions | None = None,
    env: str = "__default__",
    nested_deterministic: bool = False,
) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """The policy rules (name, description, match, action) for a RulesBasedSampler, in order, and notes.

    ``nested_deterministic``: the Refinery version accepts a rule's DeterministicSampler (after 3.2.2), so it lifts
    to ``deterministic(rate=N)`` (which compiles back for that version). Raises an :class:`ErrorGroup` of every rule
    that cannot be lifted exactly, each positioned in the rules file.
    """
    if sampler.check_nested_fields:
        span = positions.span(env) if positions else None
        raise NectarError(
            "CheckNestedFields: true looks fields up inside nested JSON, which compiled policies never do",
            span,
            "remove it from the rules file if no rule relies on nested lookups, and import again",
        )
    lifter = _Lifter(aliases)
    notes: list[str] = []
    errors: list[NectarError] = []
    lifted: list[tuple[int, str, str] | None] = []
    for i, rule in enumerate(sampler.rules):
        label = f"rule {i} {rule.name!r}"
        try:
            m = lifter.match(rule, notes, label)
            a = lifter.action(rule, notes, label)
            check_rule(rule, m, a, aliases, nested_deterministic)
        except Refused as exc:
            span = positions.span(env, i) if positions else None
            errors.append(NectarError(f"{label} cannot be imported exactly: {exc.reason}", span, exc.hint))
            lifted.append(None)
            continue
        lifted.append((i, m, a))
    if errors:
        raise errors[0] if len(errors) == 1 else ErrorGroup(errors)

    groups: list[_Group] = []
    for item in lifted:
        assert item is not None
        i, m, a = item
        rule = sampler.rules[i]
        parsed = _group_name(rule.name)
        last = groups[-1] if groups else None
        if (
            parsed is not None
            and last is not None
            and parsed[0] == last.name
            and parsed[1] == len(last.indexes) + 1
            and a == last.action
            and m != "false"
        ):
            last.indexes.append(i)
            last.matches.append(m)
            continue
        name = parsed[0] if parsed is not None and parsed[1] == 1 else rule.name
        groups.append(_Group(name, [i], [m], a))
    used: set[str] = set()
    out: list[tuple[str, str, str, str]] = []
    for g in groups:
        name = _unique(g.name, used, g.indexes[0])
        if len(g.matches) == 1:
            match = g.matches[0]
        else:
            match = " or ".join(f"({x})" if " and " in x and not x.startswith("span(") else x for x in g.matches)
        src = ", ".join(str(i) for i in g.indexes)
        out.append((name, f"imported from Refinery rule{'s' if len(g.indexes) > 1 else ''} {src}", match, g.action))
    return out, notes


def check_rule(
    rule: Rule, match: str, action: str, aliases: Mapping[str, tuple[str, ...]], nested_deterministic: bool = False
) -> None:
    """Parse the lifted rule back, lower it, and require the same meaning as the original (else :class:`Refused`)."""
    try:
        expr = parse_expr(match, standalone_origin(match, "<imported match>"), aliases).expr
        clauses = normalize(expr)
        act = parse_action(action)
    except NectarError as exc:
        raise Refused(f"its policy form `{match}` -> `{action}` is not valid: {exc.message}", exc.hint) from None
    want = rule_meaning(rule)
    if want is None:
        if clauses:
            raise Refused(f"internal: a never-matching rule lifted to `{match}`")  # pragma: no cover
        return
    if isinstance(act, ir.DeterministicAction) and not nested_deterministic:
        raise Refused(
            "a downstream DeterministicSampler is rejected by Refinery 3.2.2's validator (refinery#1857) and "
            "has no compilable policy form",
            "use SampleRate (random) or a top-level DeterministicSampler; or set refinery.version in nectar.toml "
            "if your Refinery is newer than 3.2.2",
        )
    lowered = [lower_clause("x", c, act) for c in clauses]
    got = [rule_meaning(r) for r in lowered]
    if got != [want]:
        raise Refused(
            f"its policy form `{match}` -> `{format_action(act)}` does not lower to the same Refinery rule"
        )  # pragma: no cover - a bug in lifting, caught here rather than shipped


def lift_top_level(sampler: Sampler, aliases: Mapping[str, tuple[str, ...]]) -> str:
    """The action of the catch-all rule that stands for a top-level ``sampler``, checked like a rule: parsed back,
    lowered, and required to give the same sampler (else :class:`Refused`)."""
    action = _Lifter(aliases).sampler_action(sampler)
    try:
        act = parse_action(action)
    except NectarError as exc:
        raise Refused(f"its policy form `{action}` is not valid: {exc.message}", exc.hint) from None
    lowered = lower_clause("x", Clause("trace", ()), act).sampler
    if lowered is None or sampler_meaning(lowered) != sampler_meaning(sampler):
        raise Refused(f"its policy form `{action}` does not lower to the same sampler")  # pragma: no cover
    return action


def _policy_text(name: str, rows: Sequence[tuple[str, str, str, str]]) -> str:
    from nectar.policy.toon import encode_string

    n = len(rows)
    lines = ["nectar_policy{version,name,rules}:", "  1", "  " + encode_string(name, ","),
             f"  rules[{n}]{{name,description,match,action,priority}}:"]  # fmt: skip
    for k, (rname, desc, match, action) in enumerate(rows):
        prio = (n - 1 - k) * 10
        m = match if match in ("true", "false") else encode_string(match, ",")
        lines.append("    " + ",".join([encode_string(rname, ","), encode_string(desc, ","), m,
                                        encode_string(action, ","), str(prio)]))  # fmt: skip
    return "\n".join(lines) + "\n"


def import_rules(path: Path, env: str, config: Config, name: str | None = None) -> ImportResult:
    """Lift environment ``env`` of the rules file at ``path`` into a policy (canonical text and IR).

    Raises :class:`NectarError` (exit 2) for a file Refinery would reject, an unknown environment, or anything
    without an exact policy form (every such rule reported, with its position and the reason).
    """
    nested = nested_deterministic_valid(config.refinery_version)
    rules_file, positions = load_rules_with_positions(path, accept_downstream_deterministic=nested)
    if env not in rules_file.samplers:
        known = ", ".join(sorted(rules_file.samplers))
        raise NectarError(f"no environment {env!r} in {path}", hint=f"the file has: {known}")
    policy_name = name or f"{path.stem}-{env.strip('_') or 'default'}"
    return lift_rules_file(rules_file, env, config, policy_name, positions)


def lift_rules_file(
    rules_file: RulesFile,
    env: str,
    config: Config,
    name: str,
    positions: RulesPositions | None = None,
) -> ImportResult:
    """Lift one environment of a loaded rules file (see :func:`import_rules`)."""
    cfg = rules_file.samplers[env]
    choice = cfg.choice
    notes: list[str] = []
    kinds = [SamplerKind.RULES_BASED] * (cfg.rules_based is not None) + [s.kind for s in cfg.others]
    if len(kinds) > 1:
        notes.append(f"environment {env!r} names several samplers ({', '.join(kinds)}); Refinery runs the first in "
                     "its order, which is imported")  # fmt: skip
    span = positions.span(env) if positions else None
    if isinstance(choice, RulesBasedSampler):
        nested = nested_deterministic_valid(config.refinery_version)
        rows, more = lift_sampler(choice, config.aliases, positions, env, nested)
        notes += more
        if not rows:
            notes.append("the RulesBasedSampler has no rules, so Refinery keeps every trace: lifted as `true` -> keep")
            rows = [("rest", "no rule matched: Refinery keeps the trace", "true", "keep")]
    elif isinstance(choice, Sampler):
        # A top-level sampler is a policy whose only rule is a catch-all with that action, which `nectar compile`
        # writes back as the same top-level sampler (nectar.compile.rules_for).
        try:
            action = lift_top_level(choice, config.aliases)
        except Refused as exc:
            raise NectarError(
                f"environment {env!r}: the top-level {choice.kind} cannot be imported exactly: {exc.reason}",
                span,
                exc.hint,
            ) from None
        name_of = _SPEC_OF[choice.kind].action if choice.kind in _SPEC_OF else "deterministic"
        rows = [(name_of, f"imported from a top-level {choice.kind}", "true", action)]
    else:
        raise NectarError(f"environment {env!r} names no sampler Refinery knows", span)
    text = _policy_text(name, rows)
    policy = parse_policy(text, "<imported policy>", config.aliases)
    canonical = format_policy(policy)
    final = parse_policy(canonical, "<imported policy>", config.aliases)
    return ImportResult(final, canonical, tuple(notes))


__all__ = [
    "ImportResult",
    "Refused",
    "condition_meaning",
    "import_rules",
    "lift_rules_file",
    "lift_sampler",
    "rule_meaning",
]
