"""A typed model of a Refinery RulesVersion 2 rules file (SEMANTICS.md section 1).

This is the IR every back end meets at: the loader builds it from an existing ``rules.yaml``; the lowering builds
it from a policy; the compiler serializes it; the evaluators (reference, Polars, DuckDB) decide traces with it.

It represents what Refinery *runs*, including what Refinery accepts but gets wrong at runtime (a missing
Operator, an invalid scope, a rule without SampleRate), so that the evaluators can reproduce those behaviours
and the lints can point at them. Values keep their YAML-decoded Go types: Python ``int`` is a YAML int,
``float`` a YAML float, ``bool`` a YAML bool, ``str`` a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Scalar = str | int | float | bool


class Operator(StrEnum):
    """The 15 operators Refinery knows (``config/sampler_config.go``). There is no ``ends-with``."""

    EQ = "="
    NE = "!="
    GT = ">"
    LT = "<"
    GE = ">="
    LE = "<="
    STARTS_WITH = "starts-with"
    CONTAINS = "contains"
    DOES_NOT_CONTAIN = "does-not-contain"
    EXISTS = "exists"
    NOT_EXISTS = "not-exists"
    HAS_ROOT_SPAN = "has-root-span"
    MATCHES = "matches"
    IN = "in"
    NOT_IN = "not-in"


COMPARISON_OPERATORS = frozenset({Operator.EQ, Operator.NE, Operator.GT, Operator.LT, Operator.GE, Operator.LE})
STRING_OPERATORS = frozenset({Operator.STARTS_WITH, Operator.CONTAINS, Operator.DOES_NOT_CONTAIN, Operator.MATCHES})
NEGATIVE_OPERATORS = frozenset({Operator.NE, Operator.DOES_NOT_CONTAIN, Operator.NOT_EXISTS, Operator.NOT_IN})


class Datatype(StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"


class Scope(StrEnum):
    TRACE = "trace"
    SPAN = "span"


NUM_DESCENDANTS = "?.NUM_DESCENDANTS"
ROOT_PREFIX = "root."
# Refinery's default IDFieldNames (config.go): id keys it consumes, invisible to rules (SEMANTICS.md 2.1).
TRACE_ID_KEYS = ("trace.trace_id", "traceId")
PARENT_ID_KEYS = ("trace.parent_id", "parentId")
# types/payload.go metadata: a bool set on every non-log span (true on roots); log events are never roots.
META_ROOT = "meta.refinery.root"
SIGNAL_TYPE = "meta.signal_type"
UINT64_MASK = 2**64 - 1  # Go's uint(SampleRate): a negative rate wraps

# Refinery versions: Nectar reproduces 3.2.2 (SEMANTICS.md). What changed after it, where it changes validation or
# decisions, is keyed on the version a project runs (nectar.toml refinery.version).
REFINERY_VERSION = "3.2.2"
_NESTED_DETERMINISTIC_AFTER = (3, 2, 2)  # refinery#1856: a rule's Sampler may be a DeterministicSampler


def version_tuple(version: str) -> tuple[int, ...]:
    """``"3.2.2"`` -> ``(3, 2, 2)`` (the config validates the form)."""
    return tuple(int(p) for p in version.split("."))


def nested_deterministic_valid(version: str) -> bool:
    """Whether Refinery ``version`` validates a rule whose ``Sampler`` is a ``DeterministicSampler`` (refinery#1856,
    released after 3.2.2; 3.2.2 runs such a rule only with ``--no-validate``)."""
    return version_tuple(version) > _NESTED_DETERMINISTIC_AFTER


@dataclass(frozen=True, slots=True)
class Condition:
    """One rule condition.

    ``fields`` holds ``Field`` or ``Fields`` (Refinery's ``Init()`` moves ``Field`` into ``Fields``);
    ``single_field`` remembers which was written, because ``?.NUM_DESCENDANTS`` is computed only for ``Field``.
    ``operator`` is None when the file has no Operator (the condition then never matches), and
    ``operator_text`` keeps any other unknown text for messages. ``value`` is None when there is no ``Value``
    key (a comparison then compares against nil); a list Value is a tuple.
    """

    fields: tuple[str, ...]
    operator: Operator | None
    value: Scalar | tuple[Scalar, ...] | None = None
    datatype: Datatype | None = None
    single_field: bool = True
    operator_text: str | None = None

    @property
    def field(self) -> str | None:
        return self.fields[0] if self.fields else None


@dataclass(frozen=True, slots=True)
class SamplerKind:
    """Names of Refinery's sampler types, in the order ``V2SamplerChoice.Sampler()`` picks the first present."""

    DETERMINISTIC = "DeterministicSampler"
    RULES_BASED = "RulesBasedSampler"
    DYNAMIC = "DynamicSampler"
    EMA_DYNAMIC = "EMADynamicSampler"
    EMA_THROUGHPUT = "EMAThroughputSampler"
    WINDOWED_THROUGHPUT = "WindowedThroughputSampler"
    TOTAL_THROUGHPUT = "TotalThroughputSampler"

    TOP_LEVEL_ORDER = (
        DETERMINISTIC,
        RULES_BASED,
        DYNAMIC,
        EMA_DYNAMIC,
        EMA_THROUGHPUT,
        WINDOWED_THROUGHPUT,
        TOTAL_THROUGHPUT,
    )
    # SamplerFactory.GetDownstreamSampler's order for a rule's Sampler with several keys.
    DOWNSTREAM_ORDER = (DYNAMIC, EMA_DYNAMIC, TOTAL_THROUGHPUT, EMA_THROUGHPUT, WINDOWED_THROUGHPUT, DETERMINISTIC)
    STATEFUL = (DYNAMIC, EMA_DYNAMIC, EMA_THROUGHPUT, WINDOWED_THROUGHPUT, TOTAL_THROUGHPUT)


@dataclass(frozen=True, slots=True)
class Sampler:
    """A non-rules sampler (top level or a rule's downstream ``Sampler``): its kind and its settings as written.

    ``params`` keeps the YAML keys and decoded values (``SampleRate``, ``GoalSampleRate``,
    ``GoalThroughputPerSec``, ``FieldList``, ``UseTraceLength``, durations as strings...).
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stateful(self) -> bool:
        return self.kind in SamplerKind.STATEFUL

    @property
    def field_list(self) -> tuple[str, ...]:
        return tuple(self.params.get("FieldList") or ())

    @property
    def nominal_rate(self) -> int | None:
        """The rate the sampler aims at: SampleRate (deterministic, dynamic) or GoalSampleRate (EMA dynamic)."""
        for key in ("SampleRate", "GoalSampleRate"):
            v = self.params.get(key)
            if isinstance(v, int) and not isinstance(v, bool):
                return v
        return None

    @property
    def goal_throughput(self) -> int | None:
        v = self.params.get("GoalThroughputPerSec")
        return v if isinstance(v, int) and not isinstance(v, bool) else None


@dataclass(frozen=True, slots=True)
class Rule:
    """One RulesBasedSampler rule.

    ``scope`` is the raw text (None when absent = trace scope; any other text than trace/span makes Refinery treat
    the rule as matched, reason ``rules/invalid scope/<Name>``). ``conditions`` is None when the key is absent
    (always matches, like an empty list). ``sample_rate`` is 0 when absent (the rule then drops what it matches,
    unless it has a ``sampler``). ``samplers`` holds the downstream sampler(s) in file order; Refinery uses the
    first in ``SamplerKind.DOWNSTREAM_ORDER``.
    """

    name: str
    conditions: tuple[Condition, ...] | None = None
    scope: str | None = None
    sample_rate: int = 0
    drop: bool = False
    samplers: tuple[Sampler, ...] = ()

    @property
    def sampler(self) -> Sampler | None:
        """The downstream sampler Refinery runs (None: SampleRate/Drop decide)."""
        for kind in SamplerKind.DOWNSTREAM_ORDER:
            for s in self.samplers:
                if s.kind == kind:
                    return s
        return None

    @property
    def effective_scope(self) -> str:
        """``trace``, ``span`` or ``invalid`` (Refinery: an unknown scope matches every trace)."""
        if self.scope in (None, "", Scope.TRACE.value):
            return "trace"
        if self.scope == Scope.SPAN.value:
            return "span"
        return "invalid"

    @property
    def drops(self) -> bool:
        """Without a downstream sampler, Refinery drops what the rule matches when ``Drop: true`` or the
        ``SampleRate`` is not positive (an absent SampleRate is 0: a rule with no SampleRate drops)."""
        return self.drop or self.sample_rate <= 0

    @property
    def reported_rate(self) -> int:
        """The rate Refinery reports for the rule: Go's ``uint(SampleRate)`` (a negative rate wraps)."""
        return self.sample_rate & UINT64_MASK

    @property
    def plain_keep(self) -> str:
        """What the rule does without a downstream sampler: ``false`` (drops), ``true`` (SampleRate 1) or
        ``sampled`` (keeps 1 in SampleRate at random)."""
        if self.drops:
            return "false"
        return "true" if self.sample_rate == 1 else "sampled"

    @property
    def is_catch_all(self) -> bool:
        """True when the rule matches every trace: no conditions (or an invalid scope)."""
        return not self.conditions or self.effective_scope == "invalid"

    @property
    def match_key(self) -> tuple[Any, ...]:
        """What decides whether the rule matches a trace (within one sampler): its scope and conditions. Rules with
        equal keys match the same traces (``nectar diff`` evaluates them once)."""
        return (self.effective_scope, self.conditions or ())


@dataclass(frozen=True, slots=True)
class RulesBasedSampler:
    rules: tuple[Rule, ...] = ()
    check_nested_fields: bool = False


@dataclass(frozen=True, slots=True)
class SamplerConfig:
    """One entry of ``Samplers`` (an environment or dataset). It may name several sampler types; Refinery runs the
    first in ``SamplerKind.TOP_LEVEL_ORDER`` (:attr:`choice`)."""

    rules_based: RulesBasedSampler | None = None
    others: tuple[Sampler, ...] = ()

    @property
    def choice(self) -> RulesBasedSampler | Sampler | None:
        for kind in SamplerKind.TOP_LEVEL_ORDER:
            if kind == SamplerKind.RULES_BASED:
                if self.rules_based is not None:
                    return self.rules_based
                continue
            for s in self.others:
                if s.kind == kind:
                    return s
        return None


@dataclass(frozen=True, slots=True)
class RulesFile:
    """A whole rules file: ``RulesVersion: 2`` and ``Samplers`` by environment (``__default__`` required)."""

    samplers: Mapping[str, SamplerConfig]
    rules_version: int = 2

    def sampler_for(self, env: str | None) -> SamplerConfig:
        """Refinery's lookup: the exact (case-sensitive) name if present, else ``__default__``."""
        if env is not None and env in self.samplers:
            return self.samplers[env]
        return self.samplers["__default__"]
