"""Lowering of Refinery rules to a small predicate IR shared by the vectorized engines (Polars, DuckDB).

A condition sees at most one value per span, and a value lives in exactly one typed column of the corpus
(``Corpus.field_columns``). So a condition lowers to a :class:`CondPlan`: *where* the value comes from
(:class:`Source` list, first present wins; ``?.NUM_DESCENDANTS``; nested lookups) and, for each value type the
value can have, a :class:`Node` predicate over that typed column. Nodes are engine independent; each engine has
one renderer class with a ``node_<Node>`` method per node type.

Exactness rules (SEMANTICS.md section 2):

* the predicate for a present-null value and for a missing value is a constant, folded here with
  :func:`scalar_matcher`, the Python twin of Refinery's ``Matches``/``conditionMatchesValue``;
* what a column engine cannot do exactly (Go ``%v`` of floats and maps, ``strconv.ParseFloat``, Go regexps) is a
  :class:`Distinct` node: the engine evaluates :func:`scalar_matcher` on the column's *distinct* values in Python
  and renders "value in matching set". Regexes use google-re2 (RE2: the syntax Go's ``regexp`` implements, and
  unanchored search like ``MatchString``);
* everything else (int/bool/string columns, Atoi, truncation, ParseBool) is rendered natively.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

from nectar.corpus.layout import ValueType
from nectar.refinery import gostr
from nectar.refinery.model import (
    META_ROOT,
    NUM_DESCENDANTS,
    ROOT_PREFIX,
    Condition,
    Datatype,
    Operator,
    Rule,
    RulesBasedSampler,
    Sampler,
    SamplerConfig,
    SamplerKind,
)

TRUE_STRINGS = ("1", "t", "T", "TRUE", "true", "True")  # strconv.ParseBool's true set

# Value kinds a typed column can hold (NULL = present-with-null and MISSING are constants).
COLUMN_KINDS = (ValueType.STR, ValueType.INT, ValueType.FLOAT, ValueType.BOOL, ValueType.JSON)


class View(StrEnum):
    """How a typed column is seen before a test (the result is null where Go's conversion fails)."""

    RAW = "raw"  # the column as stored
    STR = "str"  # Go %v of a str/int/bool column
    ATOI = "atoi"  # strconv.Atoi of a str column
    TRUNC = "trunc"  # Go int(float64): truncation, NaN/out of range -> MinInt64
    TOFLOAT = "tofloat"  # float64(int64)
    PARSEBOOL = "parsebool"  # TryConvertToBool: ParseBool(%v), unparseable -> false


@dataclass(frozen=True, slots=True)
class Const:
    value: bool


@dataclass(frozen=True, slots=True)
class Cmp:
    """``view(col) <op> lit``; op in eq ne lt le gt ge. ``untyped``: Go ``compare`` (NaN compares equal to
    anything) instead of IEEE (Datatype comparisons: NaN is unequal to everything)."""

    view: View
    op: str
    lit: Any
    untyped: bool = False


@dataclass(frozen=True, slots=True)
class InSet:
    view: View
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class StrTest:
    """``strings.HasPrefix`` (op ``starts``) or ``strings.Contains`` (op ``contains``) on Go %v of the column."""

    op: str
    lit: str


@dataclass(frozen=True, slots=True)
class Not:
    inner: Node


@dataclass(frozen=True, slots=True)
class Distinct:
    """Evaluate ``matcher(value)`` in Python on the distinct values of the raw column; render as set membership.

    ``key`` identifies the predicate (the condition) so equal nodes share one computed set.
    """

    key: str
    fn: Callable[[Any], bool] = field(compare=False, hash=False)
    matcher: Matcher | None = field(default=None, compare=False, hash=False)  # what fn applies (symbolic prover)


Node = Const | Cmp | InSet | StrTest | Not | Distinct


@dataclass(frozen=True, slots=True)
class Source:
    """One name of ``Fields``: a corpus field, read on the visited span or (``root``) on the trace's root."""

    field: str
    root: bool


@dataclass(frozen=True, slots=True)
class NestedPath:
    """``CheckNestedFields``: one name of ``Fields`` looked up as a gjson path in the marshalled span
    (SEMANTICS.md 2.4). ``top`` is its first component: a field name, or a ``*``/``?`` pattern (``wild``) that
    picks the first matching field in sorted key order. ``found(field, value)`` gives (path exists, condition
    matches the string gjson returns) for a span whose field ``field`` holds ``value``."""

    name: str
    top: str
    wild: bool
    found: Callable[[str, Any], tuple[bool, bool]] = field(compare=False, hash=False)

    def candidates(self, fields: Iterable[str]) -> list[str]:
        """The fields the first component can name, in the order gjson tries them (sorted keys)."""
        names = sorted(f for f in fields if f != META_ROOT)  # json.Marshal sees no virtual fields
        if not self.wild:
            return [self.top] if self.top in names else []
        return [f for f in names if gostr._gjson_wild(self.top, f)]


@dataclass(frozen=True, slots=True)
class CondPlan:
    """One lowered condition. ``has_root`` is set for a trace-scope ``has-root-span`` (the wanted answer);
    ``const`` for a condition whose outcome does not depend on data; otherwise ``preds`` per value type."""

    key: str
    has_root: bool | None = None
    const: bool | None = None
    num_descendants: bool = False
    sources: tuple[Source, ...] = ()
    preds: Mapping[ValueType, Node] = field(default_factory=dict)
    null_value: bool = False  # the outcome for a present-null value
    missing_value: bool = False  # the outcome when no name is present (and no nested path hits)
    nested: tuple[NestedPath, ...] = ()
    nested_on_root: bool = False  # the nested lookup reads the root span (last name was root.-prefixed)


# ---------------------------------------------------------------------------------------------------------------
# The scalar matcher: Refinery's Matches / conditionMatchesValue on one Python value


class Mode(StrEnum):
    NEVER = "never"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    UNTYPED = "untyped"
    TYPED_STR = "typed_str"
    TYPED_INT = "typed_int"
    TYPED_FLOAT = "typed_float"
    TYPED_BOOL = "typed_bool"
    STRING_OP = "string_op"
    STRSET = "strset"
    INTSET = "intset"
    FLOATSET = "floatset"
    REGEX = "regex"


_OPS = {
    Operator.EQ: "eq",
    Operator.NE: "ne",
    Operator.LT: "lt",
    Operator.LE: "le",
    Operator.GT: "gt",
    Operator.GE: "ge",
}


def _op_holds(op: str, c: int) -> bool:
    return {"eq": c == 0, "ne": c != 0, "lt": c < 0, "le": c <= 0, "gt": c > 0, "ge": c >= 0}[op]


def _ieee(op: str, a: float | int, b: float | int) -> bool:
    return {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


def _str_bytes_cmp(a: str, b: str) -> int:
    ab, bb = a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    return (ab > bb) - (ab < bb)


def go_v_fast(value: Any) -> str:
    """``gostr.go_v`` with a fast path for the common float: for 1e-4 <= |f| < 1e6 Go's ``%v`` is positional with
    the shortest round-trip digits, which is Python's ``repr`` without a trailing ``.0`` (Distinct nodes call this
    once per distinct value, millions of times on a float field)."""
    if value.__class__ is float and 1e-4 <= abs(value) < 1e6:
        r = repr(value)
        return r[:-2] if r.endswith(".0") else r
    return gostr.go_v(value)


@lru_cache(maxsize=256)
def compile_regex(pattern: str) -> Any | None:
    """The RE2 program for a ``matches`` pattern, or None when Go's ``regexp.Compile`` would fail."""
    import re2

    opts = re2.Options()
    opts.log_errors = False
    try:
        return re2.compile(pattern, opts)
    except Exception:  # re2.error: an invalid pattern never matches (SEMANTICS.md 2.8)
        return None


@dataclass(frozen=True, slots=True)
class Matcher:
    """The condition as Refinery's ``Init()`` leaves it: a mode plus the converted Value."""

    mode: Mode
    op: str = ""
    arg: Any = None

    def __call__(self, value: Any, exists: bool) -> bool:
        m = self.mode
        if m is Mode.NEVER:
            return False
        if m is Mode.EXISTS:
            return exists
        if m is Mode.NOT_EXISTS:
            return not exists
        if m is Mode.UNTYPED:  # conditionMatchesValue: only exists=true compares
            if not exists:
                return False
            c = gostr.compare(value, self.arg)
            return c is not None and _op_holds(self.op, c)
        if m is Mode.TYPED_STR:
            return _op_holds(self.op, _str_bytes_cmp(go_v_fast(value), self.arg))
        if m is Mode.TYPED_INT:
            n = gostr.to_int(value)
            return exists and n is not None and _ieee(self.op, n, self.arg)
        if m is Mode.TYPED_FLOAT:
            f = gostr.to_float(value)
            return exists and f is not None and _ieee(self.op, f, self.arg)
        if m is Mode.TYPED_BOOL:
            return exists and _ieee(self.op, gostr.to_bool(value), self.arg)
        if m is Mode.STRING_OP:
            s = go_v_fast(value)
            if self.op == "starts":
                return s.startswith(self.arg)
            hit = self.arg in s
            return hit if self.op == "contains" else not hit
        if m is Mode.STRSET:
            return (go_v_fast(value) in self.arg) != (self.op == "not-in")
        if m is Mode.INTSET:
            n = gostr.to_int(value)
            return (n is not None and n in self.arg) != (self.op == "not-in")
        if m is Mode.FLOATSET:
            f = gostr.to_float(value)
            return (f is not None and f in self.arg) != (self.op == "not-in")
        if m is Mode.REGEX:
            return self.arg.search(go_v_fast(value)) is not None
        raise AssertionError(m)


def _in_values(value: Any) -> list[Any] | None:
    """``setInBasedOperators``: a list, or one string/int/float scalar; anything else is an Init error."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) and not gostr.INT64_MIN <= value <= gostr.INT64_MAX:
        return None  # a YAML uint64 scalar has no case
    if isinstance(value, (str, int, float)):
        return [value]
    return None


def scalar_matcher(cond: Condition) -> Matcher:
    """What Refinery's ``setMatchesFunction`` makes of a condition (``config/sampler_config.go``).

    When ``Init()`` fails, ``Matches`` stays nil and ``conditionMatchesValue`` decides: untyped comparisons,
    exists and not-exists only (SEMANTICS.md 2.8).
    """
    op, v, dt = cond.operator, cond.value, cond.datatype
    if op is None:
        return Matcher(Mode.NEVER)
    if op is Operator.EXISTS:
        return Matcher(Mode.EXISTS)
    if op is Operator.NOT_EXISTS:
        return Matcher(Mode.NOT_EXISTS)
    if op is Operator.HAS_ROOT_SPAN:  # outside trace scope: conditionMatchesValue knows no has-root-span
        return Matcher(Mode.NEVER)
    if op in _OPS:
        cop = _OPS[op]
        if dt is Datatype.STRING:
            return Matcher(Mode.TYPED_STR, cop, gostr.go_v(v))
        if dt is Datatype.INT and (iv := gostr.to_int(v)) is not None:
            return Matcher(Mode.TYPED_INT, cop, iv)
        if dt is Datatype.FLOAT and (fv := gostr.to_float(v)) is not None:
            return Matcher(Mode.TYPED_FLOAT, cop, fv)
        if dt is Datatype.BOOL and cop in ("eq", "ne"):
            return Matcher(Mode.TYPED_BOOL, cop, gostr.to_bool(v))
        # No Datatype, an unconvertible Value, or bool with an ordering: the untyped compare() fallback.
        return Matcher(Mode.UNTYPED, cop, list(v) if isinstance(v, tuple) else v)
    if op in (Operator.STARTS_WITH, Operator.CONTAINS, Operator.DOES_NOT_CONTAIN):
        kind = {Operator.STARTS_WITH: "starts", Operator.CONTAINS: "contains"}.get(op, "not_contains")
        return Matcher(Mode.STRING_OP, kind, gostr.go_v(v))
    if op in (Operator.IN, Operator.NOT_IN):
        vals = _in_values(v)
        if vals is None or dt is Datatype.BOOL:
            return Matcher(Mode.NEVER)
        if dt is Datatype.INT:
            ints = frozenset(n for x in vals if (n := gostr.to_int(x)) is not None)
            return Matcher(Mode.INTSET, op.value, ints)
        if dt is Datatype.FLOAT:
            # Go map lookup: NaN is never found; +0 and -0 are the same key (Python agrees on both).
            floats = frozenset(f for x in vals if (f := gostr.to_float(x)) is not None and not math.isnan(f))
            return Matcher(Mode.FLOATSET, op.value, floats)
        return Matcher(Mode.STRSET, op.value, frozenset(gostr.go_v(x) for x in vals))
    if op is Operator.MATCHES:
        rx = compile_regex(gostr.go_v(v))
        return Matcher(Mode.NEVER) if rx is None else Matcher(Mode.REGEX, "", rx)
    return Matcher(Mode.NEVER)


# ---------------------------------------------------------------------------------------------------------------
# Lowering a matcher to per-type nodes


def _distinct(key: str, m: Matcher, kind: ValueType) -> Distinct:
    if kind is ValueType.JSON:
        return Distinct(f"{key}/json", lambda text: m(json.loads(text), True), m)
    return Distinct(f"{key}/{kind.value}", lambda v: m(v, True), m)


def _bool_cmp(op: str, b: bool) -> Node:
    """``compare`` of a bool column against bool ``b`` (false < true), as eq/not-eq nodes."""
    x_eq_b = Cmp(View.RAW, "eq", b)
    table: dict[str, Node] = {
        "eq": x_eq_b,
        "ne": Not(x_eq_b),
        "lt": Cmp(View.RAW, "eq", False) if b else Const(False),
        "gt": Cmp(View.RAW, "eq", True) if not b else Const(False),
        "le": Cmp(View.RAW, "eq", False) if not b else Const(True),
        "ge": Cmp(View.RAW, "eq", True) if b else Const(True),
    }
    return table[op]


def _num_cmp(view: View, op: str, lit: float | int, untyped: bool) -> Node:
    if isinstance(lit, float) and math.isnan(lit):  # fold: Go compare says equal, IEEE says only != holds
        return Const(op in ("eq", "le", "ge")) if untyped else Const(op == "ne")
    return Cmp(view, op, lit, untyped)


def _lower_untyped(m: Matcher, kind: ValueType, key: str) -> Node:
    b = m.arg
    if b is None:  # compare(non-nil, nil) = more
        return Const(m.op in ("ne", "gt", "ge"))
    b_int = isinstance(b, int) and not isinstance(b, bool) and gostr.INT64_MIN <= b <= gostr.INT64_MAX
    b_float = isinstance(b, float)
    if kind is ValueType.STR:
        return Cmp(View.RAW, m.op, b) if isinstance(b, str) else Const(False)
    if kind is ValueType.INT:
        if b_int:
            return Cmp(View.RAW, m.op, b)
        return _num_cmp(View.TOFLOAT, m.op, b, True) if b_float else Const(False)
    if kind is ValueType.FLOAT:
        return _num_cmp(View.RAW, m.op, float(b), True) if (b_int or b_float) else Const(False)
    if kind is ValueType.BOOL:
        return _bool_cmp(m.op, b) if isinstance(b, bool) else Const(False)
    return Const(False)  # maps and slices are incomparable


def lower_matcher(m: Matcher, kind: ValueType, key: str) -> Node:
    """The node that decides ``m(value, exists=True)`` for a value held in a column of type ``kind``."""
    mode = m.mode
    native_str = kind in (ValueType.STR, ValueType.INT, ValueType.BOOL)  # %v is cheap and exact natively
    if mode is Mode.NEVER:
        return Const(False)
    if mode in (Mode.EXISTS, Mode.NOT_EXISTS):
        return Const(mode is Mode.EXISTS)
    if mode is Mode.UNTYPED:
        return _lower_untyped(m, kind, key)
    if mode is Mode.TYPED_STR:
        return Cmp(View.STR, m.op, m.arg) if native_str else _distinct(key, m, kind)
    if mode is Mode.TYPED_INT:
        view = {ValueType.STR: View.ATOI, ValueType.INT: View.RAW, ValueType.FLOAT: View.TRUNC}.get(kind)
        return Cmp(view, m.op, m.arg) if view else Const(False)
    if mode is Mode.TYPED_FLOAT:
        if kind is ValueType.STR:
            return _distinct(key, m, kind)  # strconv.ParseFloat: exact in Python, per distinct value
        view = {ValueType.INT: View.TOFLOAT, ValueType.FLOAT: View.RAW}.get(kind)
        return _num_cmp(view, m.op, m.arg, False) if view else Const(False)
    if mode is Mode.TYPED_BOOL:
        if kind is ValueType.JSON:
            return Const((m.op == "eq") == (m.arg is False))  # %v of a map never parses: false
        return Cmp(View.PARSEBOOL, m.op, m.arg)
    if mode is Mode.STRING_OP:
        if not native_str:
            return _distinct(key, m, kind)
        node: Node = StrTest("starts" if m.op == "starts" else "contains", m.arg)
        return Not(node) if m.op == "not_contains" else node
    if mode in (Mode.STRSET, Mode.INTSET, Mode.FLOATSET):
        negate = m.op == "not-in"
        inner: Node
        if mode is Mode.STRSET:
            inner = InSet(View.STR, tuple(sorted(m.arg))) if native_str else _distinct(key, m, kind)
            if not native_str:
                return inner  # the distinct matcher already applies not-in
        elif mode is Mode.INTSET:
            view = {ValueType.STR: View.ATOI, ValueType.INT: View.RAW, ValueType.FLOAT: View.TRUNC}.get(kind)
            inner = InSet(view, tuple(sorted(m.arg))) if view else Const(False)
        else:
            if kind is ValueType.STR:
                return _distinct(key, m, kind)
            view = {ValueType.INT: View.TOFLOAT, ValueType.FLOAT: View.RAW}.get(kind)
            inner = InSet(view, tuple(sorted(m.arg))) if view else Const(False)
        return Not(inner) if negate else inner
    if mode is Mode.REGEX:
        return _distinct(key, m, kind)
    raise AssertionError(mode)


# ---------------------------------------------------------------------------------------------------------------
# CheckNestedFields


def marshal_ok(value: Any) -> bool:
    """Whether Go's ``json.Marshal`` accepts a value (NaN and infinite floats make it fail for the whole span)."""
    try:
        gostr.go_json(value)
    except gostr.NotMarshalable:
        return False
    return True


def _nested_path(name: str, m: Matcher) -> NestedPath:
    top = gostr._gjson_components(name)[0]

    def found(fname: str, value: Any) -> tuple[bool, bool]:
        try:
            s = gostr.gjson_get({fname: value}, name)
        except gostr.NotMarshalable:
            return False, False
        return (False, False) if s is None else (True, m(s, True))

    return NestedPath(name, top, "*" in top or "?" in top, found)


# ---------------------------------------------------------------------------------------------------------------
# Conditions and rules


def visible_fields(field_columns: Mapping[str, Mapping[ValueType, str]]) -> dict[str, dict[ValueType, str]]:
    """The fields conditions can see, by type: the corpus's, minus the ids Refinery consumes, with
    ``meta.refinery.root`` computed by the engine (Refinery sets it on every non-log span)."""
    # Ingest consumes string trace/parent ids into core columns; an id key left as a field held a non-string,
    # which Refinery does not consume either, so every corpus field is visible.
    out = {f: dict(cols) for f, cols in field_columns.items()}
    out.pop(META_ROOT, None)
    return out


def lower_condition(cond: Condition, scope: str, check_nested: bool, key: str) -> CondPlan:
    """Lower one condition of a rule with effective scope ``scope`` (``trace`` or ``span``)."""
    if cond.operator is Operator.HAS_ROOT_SPAN:
        if scope == "trace":
            return CondPlan(key, has_root=gostr.to_bool(cond.value))
        return CondPlan(key, const=False)  # span scope: no special case, never matches (issue #1757)
    m = scalar_matcher(cond)
    if m.mode is Mode.NEVER:
        return CondPlan(key, const=False)
    preds = {k: lower_matcher(m, k, key) for k in COLUMN_KINDS}
    if cond.single_field and cond.fields == (NUM_DESCENDANTS,):
        return CondPlan(key, num_descendants=True, preds=preds)
    sources = tuple(
        Source(f[len(ROOT_PREFIX) :], True) if f.startswith(ROOT_PREFIX) else Source(f, False) for f in cond.fields
    )
    nested = tuple(_nested_path(name, m) for name in cond.fields) if check_nested else ()
    on_root = bool(cond.fields) and cond.fields[-1].startswith(ROOT_PREFIX)
    return CondPlan(
        key,
        sources=sources,
        preds=preds,
        null_value=m(None, True),
        missing_value=m(None, False),
        nested=nested,
        nested_on_root=on_root,
    )


@dataclass(frozen=True, slots=True)
class RulePlan:
    """One rule: its effective scope, lowered conditions (empty: always matches) and decision when it matches."""

    index: int
    name: str
    scope: str  # trace | span | invalid
    conds: tuple[CondPlan, ...]
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a deciding rule (or sampler) reports. ``keep`` is ``true``/``false``/``sampled``/``deterministic``
    (the last: decided per trace by the DeterministicSampler hash; ``reason`` then gets ``always``/``chance``)."""

    keep: str
    rate: int
    reason: str
    sampler: str | None = None


_DOWNSTREAM_REASON = {
    SamplerKind.DYNAMIC: "dynamic",
    SamplerKind.EMA_DYNAMIC: "emadynamic",
    SamplerKind.EMA_THROUGHPUT: "emathroughput",
    SamplerKind.WINDOWED_THROUGHPUT: "windowedthroughput",
    SamplerKind.TOTAL_THROUGHPUT: "totalthroughput",
}


def sampler_outcome(s: Sampler, prefix: str) -> Outcome:
    """A non-rules sampler's outcome; ``prefix`` goes before its reason (``rules/trace/<Name>:`` downstream)."""
    if s.kind == SamplerKind.DETERMINISTIC:
        rate = s.params.get("SampleRate")
        rate = rate if isinstance(rate, int) and not isinstance(rate, bool) else 1
        if rate <= 1:
            return Outcome("true", 1, prefix + "deterministic/always", s.kind)
        return Outcome("deterministic", rate, prefix + "deterministic/chance", s.kind)
    rate = s.nominal_rate
    return Outcome("sampled", rate if rate is not None else 1, prefix + _DOWNSTREAM_REASON.get(s.kind, s.kind), s.kind)


def rule_outcome(rule: Rule) -> Outcome:
    """``RulesBasedSampler.GetSampleRate`` once a rule matched (SEMANTICS.md 2.2)."""
    scope = rule.effective_scope
    prefix = {"trace": "rules/trace/", "span": "rules/span/"}.get(scope, "rules/invalid scope/")
    ds = rule.sampler
    if ds is not None:
        return sampler_outcome(ds, prefix + rule.name + ":")
    return Outcome(rule.plain_keep, rule.reported_rate, prefix + rule.name)


NO_MATCH = Outcome("true", 1, "no rule matched")


@dataclass(frozen=True, slots=True)
class SamplerPlan:
    """A whole sampler: rules (possibly none) or a single top-level sampler outcome."""

    rules: tuple[RulePlan, ...] = ()
    top: Outcome | None = None  # set when the sampler is not rules-based


def plan_sampler(sampler: SamplerConfig | RulesBasedSampler | Sampler) -> SamplerPlan:
    """Lower a sampler (an environment's entry, a RulesBasedSampler or a plain sampler)."""
    choice: RulesBasedSampler | Sampler | None
    choice = sampler.choice if isinstance(sampler, SamplerConfig) else sampler
    if choice is None:
        return SamplerPlan(top=NO_MATCH)
    if isinstance(choice, Sampler):
        return SamplerPlan(top=sampler_outcome(choice, ""))
    rules = []
    for i, rule in enumerate(choice.rules):
        scope = rule.effective_scope
        conds: tuple[CondPlan, ...] = ()
        if scope != "invalid" and rule.conditions:
            conds = tuple(
                lower_condition(c, scope, choice.check_nested_fields, f"r{i}c{j}")
                for j, c in enumerate(rule.conditions)
            )
        rules.append(RulePlan(i, rule.name, scope, conds, rule_outcome(rule)))
    return SamplerPlan(rules=tuple(rules))


def needs_root(plan: SamplerPlan) -> bool:
    return any(
        c.has_root is not None or any(s.root for s in c.sources) or c.nested_on_root
        for r in plan.rules
        for c in r.conds
    )


def needs_descendants(plan: SamplerPlan) -> bool:
    return any(c.num_descendants for r in plan.rules for c in r.conds)
