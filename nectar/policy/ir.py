"""The policy IR: typed, frozen, and carrying source spans. Built and validated once (nectar/policy/expr.py and
nectar/policy/load.py); the formatter, the lowering to Refinery rules and every later stage read only this.

A match expression is a tree of :data:`Expr` nodes. Atoms (:class:`Compare`, :class:`InList`, :class:`StringOp`,
:class:`Exists`, :class:`HasRoot`) each become one Refinery condition. :class:`And`, :class:`Or`, :class:`Not`,
:class:`Const` and :class:`SpanGroup` structure them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from enum import StrEnum

from nectar.errors import Span
from nectar.refinery.model import SamplerKind


class LitKind(StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    DURATION = "duration"  # a number with a unit; ``value`` is in milliseconds (float)


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal value. ``text`` is how it was written (kept for durations and for the formatter)."""

    kind: LitKind
    value: str | int | float | bool
    text: str
    span: Span | None = dc_field(default=None, compare=False)


class FieldKind(StrEnum):
    ATTR = "attr"  # a span field, possibly through an alias, possibly on the root span only
    SPAN_COUNT = "span_count"  # the trace's span count (Refinery ?.NUM_DESCENDANTS)


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field as written and as resolved.

    ``written`` is the name in the source (``http.status``, ``root.http.route``); ``fields`` the real span fields
    after alias expansion, without the ``root.`` prefix (``http.response.status_code``, ``http.status_code``);
    ``root`` whether only the root span is read; ``quoted`` whether it was written in backticks.
    """

    kind: FieldKind
    written: str
    fields: tuple[str, ...] = ()
    root: bool = False
    quoted: bool = False
    span: Span | None = dc_field(default=None, compare=False)

    @property
    def refinery_fields(self) -> tuple[str, ...]:
        """Names as a Refinery condition's ``Field``/``Fields`` (with ``root.`` where it applies)."""
        if self.kind is FieldKind.SPAN_COUNT:
            return ("?.NUM_DESCENDANTS",)
        return tuple("root." + f for f in self.fields) if self.root else self.fields

    @property
    def is_alias(self) -> bool:
        base = self.written[5:] if self.root and not self.quoted else self.written
        return self.kind is FieldKind.ATTR and self.fields != (base,)


class CmpOp(StrEnum):
    EQ = "=="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="

    def negated(self) -> CmpOp:
        return _NEGATED[self]


_NEGATED = {
    CmpOp.EQ: CmpOp.NE,
    CmpOp.NE: CmpOp.EQ,
    CmpOp.GT: CmpOp.LE,
    CmpOp.LE: CmpOp.GT,
    CmpOp.LT: CmpOp.GE,
    CmpOp.GE: CmpOp.LT,
}


class StrOpKind(StrEnum):
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    MATCHES = "matches"


@dataclass(frozen=True, slots=True)
class Compare:
    """``field op value``. ``untyped`` (written ``untyped(field op value)``) compiles without a Datatype:
    Refinery's type-strict comparison of native values (SEMANTICS.md 2.6), kept so imported rules stay exact."""

    field: FieldRef
    op: CmpOp
    value: Literal
    span: Span | None = dc_field(default=None, compare=False)
    untyped: bool = False


@dataclass(frozen=True, slots=True)
class InList:
    """``field in (...)`` or, with ``negated``, ``field not in (...)``. All values have one kind."""

    field: FieldRef
    values: tuple[Literal, ...]
    negated: bool = False
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StringOp:
    """``contains``, ``starts_with``, ``ends_with``, ``matches``; ``negated`` only for ``not contains``."""

    field: FieldRef
    kind: StrOpKind
    pattern: Literal
    negated: bool = False
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Exists:
    field: FieldRef
    negated: bool = False
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class HasRoot:
    """``has_root()`` (the trace's root span has arrived) or, negated, ``not has_root()``."""

    negated: bool = False
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Const:
    value: bool
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SpanGroup:
    """``span(...)``: every atom inside must hold on one and the same span (Refinery ``Scope: span``)."""

    item: Expr
    span: Span | None = dc_field(default=None, compare=False)


Atom = Compare | InList | StringOp | Exists | HasRoot
Expr = Compare | InList | StringOp | Exists | HasRoot | Const | And | Or | Not | SpanGroup
ATOM_TYPES = (Compare, InList, StringOp, Exists, HasRoot)

# How deeply a match expression may nest (every `(`, `span(` and `not` opens a level) and a policy file's TOON
# structure may indent. Every stage after the parser (formatter, normalizer, lowering, prover, explain) walks the IR
# recursively; under Python's default recursion limit (1000 frames) the weakest, the formatter, fails at about 75
# levels of the densest nesting, `span(a or b and span(...))` (three IR levels per opening). 32 leaves room for the
# caller's own frames. Deeper input is refused where it is parsed (nectar/policy/expr.py, nectar/policy/toon.py)
# with a positioned error, never a RecursionError.
MAX_NESTING = 32


# ---------------------------------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class KeepAction:
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class DropAction:
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SampleAction:
    """``sample(P)``: keep 1 in ``rate`` = round(1/P) traces at random (Refinery ``SampleRate``)."""

    rate: int
    written: str  # the probability as written (``0.01``, ``1/100``)
    span: Span | None = dc_field(default=None, compare=False)


SettingValue = str | int | float | bool


class SamplerVariant(StrEnum):
    """Which Refinery sampler a ``dynamic(...)`` or ``throughput(...)`` action is (its ``kind=`` argument)."""

    EMA = "ema"  # the default, never written by the formatter
    CLASSIC = "classic"
    WINDOWED = "windowed"
    TOTAL = "total"


@dataclass(frozen=True, slots=True)
class SamplerSpec:
    """One Refinery stateful sampler as a policy action: ``action(goal_arg=N, keys=(...), kind=K, <settings>)``.

    ``refinery`` is the sampler type Refinery knows, ``goal_key`` the Refinery key of the goal argument, and
    ``settings`` the optional settings: argument name -> (Refinery key, value kind), in rulesMeta.yaml's order.
    Value kinds: ``duration`` (a Go duration, written 30s or 1m30s), ``int`` (whole number >= 0), ``float``,
    ``unit`` (a float from 0 to 1), ``bool`` (true/false). Refinery's defaults apply to the settings not written
    (SEMANTICS.md 1.3).
    """

    action: str
    kind: SamplerVariant
    refinery: str
    goal_arg: str
    goal_key: str
    settings: Mapping[str, tuple[str, str]]

    @property
    def label(self) -> str:
        """``dynamic(kind=classic)``, ``throughput(kind=ema)``: the action and kind, for messages."""
        return f"{self.action}(kind={self.kind})"


_EMA_SETTINGS = {
    "adjustment_interval": ("AdjustmentInterval", "duration"),
    "weight": ("Weight", "unit"),
    "age_out_value": ("AgeOutValue", "unit"),
    "burst_multiple": ("BurstMultiple", "float"),
    "burst_detection_delay": ("BurstDetectionDelay", "int"),
    "max_keys": ("MaxKeys", "int"),
    "use_trace_length": ("UseTraceLength", "bool"),
}
_KEYS_SETTINGS = {"max_keys": ("MaxKeys", "int"), "use_trace_length": ("UseTraceLength", "bool")}
_CLUSTER = {"use_cluster_size": ("UseClusterSize", "bool")}
_CLEAR = {"clear_frequency": ("ClearFrequency", "duration")}

# The one table of stateful sampler actions: (action, kind) -> the Refinery sampler it is. The parser, the
# formatter, the lowering and import all read it. The first kind of each action is its default.
SAMPLERS: dict[tuple[str, SamplerVariant], SamplerSpec] = {
    (spec.action, spec.kind): spec
    for spec in (
        SamplerSpec("dynamic", SamplerVariant.EMA, SamplerKind.EMA_DYNAMIC, "rate", "GoalSampleRate", _EMA_SETTINGS),
        SamplerSpec(
            "dynamic", SamplerVariant.CLASSIC, SamplerKind.DYNAMIC, "rate", "SampleRate", {**_CLEAR, **_KEYS_SETTINGS}
        ),
        SamplerSpec(
            "throughput",
            SamplerVariant.EMA,
            SamplerKind.EMA_THROUGHPUT,
            "per_second",
            "GoalThroughputPerSec",
            {**_CLUSTER, "initial_sample_rate": ("InitialSampleRate", "int"), **_EMA_SETTINGS},
        ),
        SamplerSpec(
            "throughput",
            SamplerVariant.WINDOWED,
            SamplerKind.WINDOWED_THROUGHPUT,
            "per_second",
            "GoalThroughputPerSec",
            {
                **_CLUSTER,
                "update_frequency": ("UpdateFrequency", "duration"),
                "lookback_frequency": ("LookbackFrequency", "duration"),
                **_KEYS_SETTINGS,
            },
        ),
        SamplerSpec(
            "throughput",
            SamplerVariant.TOTAL,
            SamplerKind.TOTAL_THROUGHPUT,
            "per_second",
            "GoalThroughputPerSec",
            {**_CLUSTER, **_CLEAR, **_KEYS_SETTINGS},
        ),
    )
}
# Optional settings per (action, kind), from :data:`SAMPLERS`.
SAMPLER_SETTINGS: dict[tuple[str, SamplerVariant], Mapping[str, tuple[str, str]]] = {
    k: spec.settings for k, spec in SAMPLERS.items()
}


def sampler_kinds(action: str) -> tuple[SamplerVariant, ...]:
    """The kinds an action takes (``dynamic``: ema, classic), the default first."""
    return tuple(kind for a, kind in SAMPLERS if a == action)


@dataclass(frozen=True, slots=True)
class DynamicAction:
    """``dynamic(rate=N, keys=(...), kind=K)``: Refinery's EMADynamicSampler (``kind=ema``, the default;
    GoalSampleRate, FieldList) or DynamicSampler (``kind=classic``; SampleRate, FieldList).

    ``settings`` holds the optional settings written (``SAMPLER_SETTINGS["dynamic", kind]``) as (Refinery key,
    value) in that table's order.
    """

    goal_rate: int
    keys: tuple[str, ...]
    span: Span | None = dc_field(default=None, compare=False)
    settings: tuple[tuple[str, SettingValue], ...] = ()
    kind: SamplerVariant = SamplerVariant.EMA

    @property
    def goal(self) -> int:
        return self.goal_rate

    @property
    def spec(self) -> SamplerSpec:
        return SAMPLERS["dynamic", self.kind]


@dataclass(frozen=True, slots=True)
class ThroughputAction:
    """``throughput(per_second=N, keys=(...), kind=K)``: Refinery's EMAThroughputSampler (``kind=ema``, the
    default), WindowedThroughputSampler (``kind=windowed``) or TotalThroughputSampler (``kind=total``); all
    GoalThroughputPerSec and FieldList.

    ``settings`` as for :class:`DynamicAction` (``SAMPLER_SETTINGS["throughput", kind]``).
    """

    per_second: int
    keys: tuple[str, ...]
    span: Span | None = dc_field(default=None, compare=False)
    settings: tuple[tuple[str, SettingValue], ...] = ()
    kind: SamplerVariant = SamplerVariant.EMA

    @property
    def goal(self) -> int:
        return self.per_second

    @property
    def spec(self) -> SamplerSpec:
        return SAMPLERS["throughput", self.kind]


StatefulAction = DynamicAction | ThroughputAction


@dataclass(frozen=True, slots=True)
class DeterministicAction:
    """``deterministic(rate=N)``: Refinery's DeterministicSampler (keep by a hash of the trace id)."""

    rate: int
    span: Span | None = dc_field(default=None, compare=False)


Action = KeepAction | DropAction | SampleAction | DynamicAction | ThroughputAction | DeterministicAction


# ---------------------------------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class PolicyRule:
    name: str
    match: Expr
    match_text: str = dc_field(compare=False)
    action: Action
    action_text: str = dc_field(compare=False)
    priority: int = 0
    description: str = ""
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class MustKeep:
    """A class of traces the prover must see kept with probability 1."""

    name: str
    match: Expr
    match_text: str = dc_field(compare=False)
    span: Span | None = dc_field(default=None, compare=False)


# The prover's checks a waiver may name: the ones whose violations are traces, each decided by a rule (``fallback``
# is about the rules' shape, ``budget`` about the total volume). ``must_keep:<class>`` narrows to one class.
WAIVABLE_CHECKS = ("errors", "must_keep")


@dataclass(frozen=True, slots=True)
class Accept:
    """A waiver: a reviewed exception (``accept[N]{check,rule,reason}``). Violations of the prover check ``check``
    (``errors``, ``must_keep`` or ``must_keep:<class>``) that policy rule ``rule`` decides are reported as waived,
    with ``reason``, instead of failing the check; violations decided by any other rule still fail it."""

    check: str
    rule: str
    reason: str
    span: Span | None = dc_field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A warning found while building the IR (errors are raised instead)."""

    message: str
    span: Span | None = None
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """A whole policy. ``rules`` are in file order; :meth:`ordered_rules` gives evaluation order."""

    version: int
    name: str
    rules: tuple[PolicyRule, ...]
    budget_per_second: float | None = None
    description: str = ""
    must_keep: tuple[MustKeep, ...] = ()
    accept: tuple[Accept, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = dc_field(default=(), compare=False)
    path: str | None = dc_field(default=None, compare=False)

    def ordered_rules(self) -> tuple[PolicyRule, ...]:
        """Evaluation order: higher priority first; equal priorities keep file order."""
        return tuple(sorted(self.rules, key=lambda r: -r.priority))
