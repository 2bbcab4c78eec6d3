"""The symbolic prover: the compiled Refinery rules as z3 formulas over every possible trace.

Pipeline::

    compiled rules (RulesBasedSampler) + probes (error definition, must-keep classes)
      -> engine/lowering.py + engine/plan.py     the very plan the engines render
      -> Z3Renderer                              the plan's nodes and rows as formulas over symbolic spans
      -> one query per property                  "is there a trace that violates it?"
      -> proved | refuted (witness, confirmed by the reference engine) | unknown (reason)

**The trace model.** A trace is ``K`` symbolic spans in arrival order (a prefix of them present) plus a span count
``n >= present spans``. Every field a rule reads has, on every span, a tag (absent, null, string, int, float,
bool, JSON) and a value of each kind: strings are z3 strings (compared by code point, which is UTF-8 byte order),
ints are integers within int64, floats are IEEE doubles (NaN, infinities and -0 included), bools are bools. The
parent id is a string or absent; ``meta.signal_type = "log"`` makes a log event (never a root). The root is the
last present span that is a root; ``meta.refinery.root``, ``has_root()`` and ``span_count()`` follow from that.

**The bound.** ``K`` = 1 + the number of per-span rows the plan aggregates with ANY (one per trace-scope condition
that does not read only the root, one per span-scope rule). If some trace T violates a property, keep from T its
root (the last root) and, for every aggregated row that is true on T, one span where it is true: every per-span
row depends only on its span, the root and the span count, so on that sub-trace (with T's span count, realised
by copies of its first span placed before it) every row has the value it has on T, hence every rule matches as on
T and the same rule decides. So a violation exists iff one exists with at most ``K`` spans.

**Exactness.** Each node type is encoded with Refinery's coercions as the engines implement them (SEMANTICS.md
section 2): ``Datatype`` conversions (Atoi, truncation of floats with NaN/out of range -> MinInt64, float64 of an
int by exact thresholds), Go ``compare`` (NaN compares equal untyped, unequal typed), ``%v`` of ints and bools,
ParseBool, ``starts-with``/``contains``, and RE2 regexes in the subset z3 expresses exactly
(:mod:`nectar.prove.regex_z3`). What z3 cannot express exactly (``%v`` of floats and JSON maps, ParseFloat of
strings, other regexes) is a free boolean per span: if the property holds even then, it is proved; otherwise the
checker looks for a witness among candidate values (the policy's literals and classic corner values) whose truth
value it computes with the engines' own matcher, and says "unknown" with the reason when there is none.
``CheckNestedFields`` lookups are not modelled: every property is then unknown.

A witness is never trusted on the solver's word: the reference engine decides it (the same code as
``engine=reference``), and a disagreement is reported as unknown with the reason, never as refuted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from nectar.corpus.layout import PARENT_ID, ValueType
from nectar.engine.decision import keep_probabilities
from nectar.engine.lowering import (
    NO_MATCH,
    TRUE_STRINGS,
    Cmp,
    Const,
    Distinct,
    InSet,
    Mode,
    Not,
    Outcome,
    SamplerPlan,
    StrTest,
    View,
    plan_sampler,
    sampler_outcome,
)
from nectar.engine.plan import (
    HAS_ROOT,
    META_ROOT_COL,
    NUM_DESC,
    ROOT_PREFIX_COL,
    Col,
    PlanColumns,
    RAnd,
    RCase,
    Ref,
    Renderer,
    RFinite,
    RFlag,
    RIn,
    RLit,
    RNot,
    ROr,
    Row,
    RPresent,
    TracePlan,
    base_column,
    build_trace_plan,
    engine_fields,
    view_out,
)
from nectar.engine.reference import decide_trace, rule_matches
from nectar.prove import intlang, regex_z3
from nectar.prove.checks import BUDGET_NOT_SYMBOLIC, SymbolicResult
from nectar.refinery import gostr
from nectar.refinery.model import (
    META_ROOT,
    ROOT_PREFIX,
    SIGNAL_TYPE,
    Datatype,
    Rule,
    RulesBasedSampler,
    Sampler,
    SamplerConfig,
)

DEFAULT_TIMEOUT_MS = 20_000  # the whole symbolic pass (every query shares it)
KINDS = (ValueType.STR, ValueType.INT, ValueType.FLOAT, ValueType.BOOL, ValueType.JSON)
_TAGS = {ValueType.NULL: 1, ValueType.STR: 2, ValueType.INT: 3, ValueType.FLOAT: 4, ValueType.BOOL: 5}
_TAGS[ValueType.JSON] = 6
ABSENT = 0
INT64_MIN, INT64_MAX = gostr.INT64_MIN, gostr.INT64_MAX
PARENT_FIELD = "\x00parent"  # the parent id in the symbolic field universe (a string or absent)

# Regular languages are built per call: z3 hash-conses equal terms, so this costs little, and no z3 term is
# created at import time (the CLI imports this module only when the symbolic pass runs).


def _printable() -> z3.ReRef:
    return z3.Star(z3.Range(" ", "~"))


def _digits() -> z3.ReRef:
    return z3.Plus(z3.Range("0", "9"))


def _float_text() -> z3.ReRef:
    """Every spelling Go's %v can give a float64 (a superset): NaN, +Inf, -Inf, -1.5, 1e+06, 1.2345e-05."""
    return z3.Union(
        z3.Re("NaN"),
        z3.Re("+Inf"),
        z3.Re("-Inf"),
        z3.Concat(
            z3.Option(z3.Re("-")),
            _digits(),
            z3.Option(z3.Concat(z3.Re("."), _digits())),
            z3.Option(z3.Concat(z3.Re("e"), z3.Union(z3.Re("+"), z3.Re("-")), _digits())),
        ),
    )


def _json_text() -> z3.ReRef:
    """Go's %v of a decoded JSON map or list: "map[k:v ...]" or "[a b ...]" (a superset)."""
    anything = z3.Star(z3.AllChar(z3.ReSort(z3.StringSort())))
    return z3.Concat(z3.Option(z3.Re("map")), z3.Re("["), anything, z3.Re("]"))


def _int_text() -> z3.ReRef:
    """Go's %v of an int, up to 19 digits: a superset of int64 (sound for proofs; a witness outside int64 is caught
    when the reference engine confirms it), much cheaper for the solver than the exact range."""
    nonzero = z3.Concat(z3.Option(z3.Re("-")), z3.Range("1", "9"), z3.Loop(z3.Range("0", "9"), 0, 18))
    return z3.Union(z3.Re("0"), nonzero)


_TEXT_MODES = (Mode.TYPED_STR, Mode.STRING_OP, Mode.STRSET, Mode.REGEX)


# ---------------------------------------------------------------------------------------------------------------
# Results


Verdict = SymbolicResult  # a property's verdict (nectar.prove.checks)


# ---------------------------------------------------------------------------------------------------------------
# Symbolic spans


def _col_name(fname: str, kind: ValueType) -> str:
    return f"{fname}\x00{kind.value}"


@dataclass(slots=True)
class _FieldVars:
    tag: z3.ArithRef
    s: z3.SeqRef
    d: z3.SeqRef  # an int, as Go's %v spells it (nectar.prove.intlang)
    f: z3.FPRef
    b: z3.BoolRef
    j: z3.ArithRef  # index into the JSON candidate pool
    v: z3.SeqRef  # Go's %v of a float or JSON value (tied to the value only through candidate values)


@dataclass(slots=True)
class _Span:
    index: int
    on: z3.BoolRef
    fields: dict[str, _FieldVars]
    atoms: dict[tuple[str, str], z3.BoolRef] = field(default_factory=dict)
    is_root: z3.BoolRef | None = None
    is_log: z3.BoolRef | None = None


@dataclass(frozen=True, slots=True)
class _ColVal:
    """A typed column as a formula: whether it holds a value, the value, and its span's Distinct atoms."""

    present: z3.BoolRef
    value: Any
    kind: ValueType
    atom: Callable[[str], z3.BoolRef]


def _fp(x: float) -> z3.FPRef:
    return z3.FPVal(x, z3.Float64())


def _toflt_threshold(lit: float, strict: bool) -> int:
    """The least int64 ``x`` (or INT64_MAX + 1) with ``float64(x) >= lit`` (``> lit`` when strict): Go converts
    int64 to float64 rounding to nearest even, a monotone map, so comparisons become integer thresholds."""
    lo, hi = INT64_MIN, INT64_MAX + 1
    while lo < hi:
        mid = (lo + hi) // 2
        v = float(mid)
        if (v > lit) if strict else (v >= lit):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _up(r: Fraction, strict: bool) -> float:
    """The least double ``>= r`` (``> r`` when strict); infinity past the largest finite double."""
    try:
        x = float(r)
    except OverflowError:
        return math.inf if r > 0 else -math.inf
    if Fraction(x) < r or (strict and Fraction(x) == r):
        x = math.nextafter(x, math.inf)
    return x


def _trunc_ge(f: z3.FPRef, n: int) -> z3.BoolRef:
    """For a double in int64 range: Go's int(f) (truncation toward zero) is >= n."""
    if n <= INT64_MIN:
        return z3.BoolVal(True)
    if n > INT64_MAX:
        return z3.BoolVal(False)
    if n >= 1:  # trunc(f) >= n >= 1  <=>  f >= n
        return z3.fpGEQ(f, _fp(_up(Fraction(n), False)))
    return z3.fpGEQ(f, _fp(_up(Fraction(n - 1), True)))  # n <= 0: trunc(f) >= n  <=>  f > n - 1


def _trunc_in(f: z3.FPRef, lo: int, hi: int) -> z3.BoolRef:
    """Go's int(f) lies in [lo, hi]; NaN, infinities and values out of int64 range give MinInt64 (amd64)."""
    bad = z3.Or(z3.fpIsNaN(f), z3.fpIsInf(f), z3.fpGEQ(f, _fp(2.0**63)), z3.fpLT(f, _fp(-(2.0**63))))
    inside = z3.And(_trunc_ge(f, lo), z3.Not(_trunc_ge(f, hi + 1)))
    return z3.If(bad, z3.BoolVal(lo <= INT64_MIN <= hi), inside)


def _text_test(m: Any, text: z3.SeqRef, rx: z3.ReRef | None) -> z3.BoolRef | None:
    """A %v-based matcher (typed string compare, starts-with/contains, string sets, regex) on a z3 string."""
    if m.mode is Mode.TYPED_STR:
        return _ordered(m.op, text, z3.StringVal(m.arg))
    if m.mode is Mode.STRING_OP:
        lit = z3.StringVal(m.arg)
        if m.op == "starts":
            return z3.PrefixOf(lit, text)
        hit = z3.Contains(text, lit)
        return hit if m.op == "contains" else z3.Not(hit)
    if m.mode is Mode.STRSET:
        inside = z3.Or([text == z3.StringVal(v) for v in sorted(m.arg)] or [z3.BoolVal(False)])
        return z3.Not(inside) if m.op == "not-in" else inside
    if m.mode is Mode.REGEX:
        if rx is None:
            try:
                rx = regex_z3.translate(m.arg.pattern)
            except regex_z3.Unsupported:
                return None
        return z3.InRe(text, rx)
    return None


def _int_to_str(i: z3.ArithRef) -> z3.SeqRef:
    return z3.If(i >= 0, z3.IntToStr(i), z3.Concat(z3.StringVal("-"), z3.IntToStr(-i)))


def _ordered(op: str, a: Any, b: Any) -> z3.BoolRef:
    return {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


def _bool_ordered(op: str, a: z3.BoolRef, b: bool) -> z3.BoolRef:
    ai, bi = z3.If(a, 1, 0), 1 if b else 0
    return _ordered(op, ai, bi)


class Z3Renderer(Renderer[z3.BoolRef]):
    """The plan's nodes and rows over a row of symbolic columns (one span, or the trace after grouping)."""

    def __init__(self, columns: Callable[[str], _ColVal | z3.BoolRef], regexes: dict[str, z3.ReRef]) -> None:
        self.columns = columns
        self.regexes = regexes  # Distinct key -> translated regex (matches on %v)

    def col(self, name: str) -> _ColVal:
        got = self.columns(name)
        assert isinstance(got, _ColVal), name
        return got

    # -- views: (ok, value) -----------------------------------------------------------------------------------

    def str_of(self, c: _ColVal) -> z3.SeqRef:
        """Go's ``%v`` of a str/int/bool column (the view string tests read)."""
        if c.kind is ValueType.INT:
            return c.value if not isinstance(c.value, z3.ArithRef) else _int_to_str(c.value)
        if c.kind is ValueType.BOOL:
            return z3.If(c.value, z3.StringVal("true"), z3.StringVal("false"))
        return c.value

    def int_in(self, view: View, c: _ColVal, ranges: intlang.Ranges) -> z3.BoolRef:
        """The int the view yields (a successful conversion) lies in ``ranges``."""
        x = c.value
        if view is View.RAW and isinstance(x, z3.ArithRef):  # the span count
            return z3.Or([z3.And(x >= lo, x <= hi) for lo, hi in ranges] or [z3.BoolVal(False)])
        if view is View.RAW:
            return z3.InRe(x, intlang.canonical(ranges))
        if view is View.ATOI:
            return z3.InRe(x, intlang.atoi(ranges))
        if view is View.TRUNC:
            return z3.Or([_trunc_in(x, lo, hi) for lo, hi in ranges] or [z3.BoolVal(False)])
        raise AssertionError(view)

    def parse_bool(self, c: _ColVal) -> z3.BoolRef:
        """TryConvertToBool(%v): true only for ParseBool's true spellings."""
        x = c.value
        if c.kind is ValueType.STR:
            return z3.Or([x == z3.StringVal(t) for t in TRUE_STRINGS])
        if c.kind is ValueType.INT:
            return x == 1 if isinstance(x, z3.ArithRef) else x == z3.StringVal("1")
        if c.kind is ValueType.FLOAT:
            return z3.fpEQ(x, _fp(1.0))
        return x

    def _lit(self, kind: ValueType, lit: Any) -> Any:
        if kind is ValueType.STR:
            return z3.StringVal(lit)
        if kind is ValueType.FLOAT:
            return _fp(float(lit))
        return z3.BoolVal(bool(lit))

    def _eq(self, view: View, c: _ColVal, lit: Any) -> z3.BoolRef:
        return self._cmp(view, c, "eq", lit, untyped=False)

    def _cmp(self, view: View, c: _ColVal, op: str, lit: Any, untyped: bool) -> z3.BoolRef:
        if view is View.TOFLOAT:  # float64(int64) is monotone: thresholds on the int
            ge, gt = _toflt_threshold(float(lit), False), _toflt_threshold(float(lit), True)
            ranges = {
                "lt": [(INT64_MIN, ge - 1)],
                "ge": [(ge, INT64_MAX)],
                "gt": [(gt, INT64_MAX)],
                "le": [(INT64_MIN, gt - 1)],
                "eq": [(ge, gt - 1)],
                "ne": [(INT64_MIN, ge - 1), (gt, INT64_MAX)],
            }[op]
            return self.int_in(View.RAW, c, [(lo, hi) for lo, hi in ranges if lo <= hi])
        out = view_out(view, c.kind)
        if out is ValueType.INT:
            return self.int_in(view, c, intlang.op_ranges(op, int(lit)))
        if view is View.PARSEBOOL:
            return _bool_ordered(op, self.parse_bool(c), bool(lit))
        x = self.str_of(c) if view is View.STR else c.value
        y = self._lit(out, lit)
        if out is ValueType.FLOAT:
            nan = z3.fpIsNaN(x)
            lt, gt = z3.fpLT(x, y), z3.fpGT(x, y)
            if untyped:  # Go compare(): NaN is neither less nor more, so "equal"
                res = {"eq": z3.And(z3.Not(lt), z3.Not(gt)), "ne": z3.Or(lt, gt), "lt": lt, "gt": gt}
                res |= {"le": z3.Not(gt), "ge": z3.Not(lt)}
                return res[op]
            ieee = {"eq": z3.fpEQ(x, y), "ne": z3.Not(z3.fpEQ(x, y)), "lt": lt, "gt": gt}
            ieee |= {"le": z3.fpLEQ(x, y), "ge": z3.fpGEQ(x, y)}
            return z3.Or(ieee["ne"], nan) if op == "ne" else ieee[op]
        if out is ValueType.BOOL:
            return _bool_ordered(op, x, bool(lit))
        return _ordered(op, x, y)

    # -- nodes ------------------------------------------------------------------------------------------------

    def node_const(self, node: Const, col: str, kind: ValueType) -> z3.BoolRef:
        return z3.BoolVal(node.value)

    def node_cmp(self, node: Cmp, col: str, kind: ValueType) -> z3.BoolRef:
        c = self.col(col)
        return z3.And(c.present, self._cmp(node.view, c, node.op, node.lit, node.untyped))

    def node_in_set(self, node: InSet, col: str, kind: ValueType) -> z3.BoolRef:
        c = self.col(col)
        if view_out(node.view, kind) is ValueType.INT:
            return z3.And(c.present, self.int_in(node.view, c, [(int(v), int(v)) for v in node.values]))
        return z3.And(c.present, z3.Or([self._eq(node.view, c, v) for v in node.values] or [z3.BoolVal(False)]))

    def node_str_test(self, node: StrTest, col: str, kind: ValueType) -> z3.BoolRef:
        c = self.col(col)
        s = self.str_of(c)
        lit = z3.StringVal(node.lit)
        test = z3.PrefixOf(lit, s) if node.op == "starts" else z3.Contains(s, lit)
        return z3.And(c.present, test)

    def node_not(self, node: Not, col: str, kind: ValueType) -> z3.BoolRef:
        return z3.Not(self.node(node.inner, col, kind))

    def node_distinct(self, node: Distinct, col: str, kind: ValueType) -> z3.BoolRef:
        c = self.col(col)
        rx = self.regexes.get(node.key)
        if rx is not None:
            return z3.And(c.present, z3.InRe(self.str_of(c), rx))
        return z3.And(c.present, c.atom(node.key))

    # -- rows -------------------------------------------------------------------------------------------------

    def _ref(self, ref: Ref) -> _ColVal | z3.BoolRef:
        if isinstance(ref, Col):
            return self.columns(ref.name)
        raise _Unmodelled("gjson lookups on root. with CheckNestedFields")

    def row_lit(self, row: RLit) -> z3.BoolRef:
        return z3.BoolVal(bool(row.value))

    def row_present(self, row: RPresent) -> z3.BoolRef:
        got = self._ref(row.ref)
        return got.present if isinstance(got, _ColVal) else z3.BoolVal(True)

    def row_flag(self, row: RFlag) -> z3.BoolRef:
        got = self._ref(row.ref)
        if isinstance(got, _ColVal):
            return z3.And(got.present, got.value) if got.kind is ValueType.BOOL else got.present
        return got

    def row_in(self, row: RIn) -> z3.BoolRef:
        raise _Unmodelled("CheckNestedFields lookups")

    def row_finite(self, row: RFinite) -> z3.BoolRef:
        raise _Unmodelled("CheckNestedFields lookups")

    def row_case(self, row: RCase) -> z3.BoolRef:
        out = self.row(row.otherwise)
        for cond, value in reversed(row.whens):
            out = z3.If(self.row(cond), self.row(value), out)
        return out

    def row_and(self, row: RAnd) -> z3.BoolRef:
        return z3.And([self.row(r) for r in row.items])

    def row_or(self, row: ROr) -> z3.BoolRef:
        return z3.Or([self.row(r) for r in row.items])

    def row_not(self, row: RNot) -> z3.BoolRef:
        return z3.Not(self.row(row.item))


class _Unmodelled(Exception):
    """A part of the plan the symbolic model does not cover; the message says which."""


# ---------------------------------------------------------------------------------------------------------------
# Candidate values for what z3 cannot model (Distinct atoms)

_FLOAT_CORNERS = (0.0, -0.0, 0.5, 1.0, -1.0, 1.5, 100.0, 1e6, 1e21, 1e-5, 123.456, math.inf, -math.inf, math.nan)
_JSON_POOL = ("{}", "[]", '{"a":1}', "[1]", '{"a":"b"}', '{"a":null}', "[true]", '{"a":[1,2]}')


def _literals(rules: Sequence[Rule]) -> list[Any]:
    out: list[Any] = []
    for rule in rules:
        for cond in rule.conditions or ():
            v = cond.value
            out.extend(v if isinstance(v, tuple) else (v,))
    return [v for v in out if v is not None]


def _pool(kind: ValueType, literals: list[Any]) -> list[Any]:
    """Candidate values of one kind for a column whose predicate z3 cannot model: corner values and values built
    from the policy's literals (deterministic order, no duplicates)."""
    out: list[Any] = []
    if kind is ValueType.FLOAT:
        cands: list[Any] = list(_FLOAT_CORNERS)
        for v in literals:
            f = gostr.to_float(v)
            if f is not None and math.isfinite(f):
                cands += [f, -f, f + 0.5, math.nextafter(f, math.inf), math.nextafter(f, -math.inf), f * 10]
        out = cands
    elif kind is ValueType.STR:
        cands = ["", "0", "1", "-1", "1.5", "1e3", "NaN", "inf", "-inf", "0x10", "true", "abc"]
        for v in literals:
            s = gostr.go_v(v)
            cands += [s, s + "0", s + "x", "x" + s, " " + s]
        out = cands
    elif kind is ValueType.JSON:
        out = list(_JSON_POOL) + [gostr.go_v(v) for v in literals if isinstance(v, str) and v[:1] in "{["]
    seen: set[str] = set()
    uniq = []
    for v in out:
        key = repr(v) if not (isinstance(v, float) and math.isnan(v)) else "nan"
        if key not in seen:
            seen.add(key)
            uniq.append(v)
    return uniq


# ---------------------------------------------------------------------------------------------------------------
# The model of one sampler


_DATATYPE_KIND = {
    Datatype.STRING: ValueType.STR,
    Datatype.INT: ValueType.INT,
    Datatype.FLOAT: ValueType.FLOAT,
    Datatype.BOOL: ValueType.BOOL,
}


def _natural_kinds(rules: Sequence[Rule]) -> dict[str, set[ValueType]]:
    """Per field, the value types the policy compares it with (its Datatype, else its Value's type): a witness
    reads best in those (``error = true`` rather than ``error = "t"``)."""
    out: dict[str, set[ValueType]] = {}
    for rule in rules:
        for cond in rule.conditions or ():
            v = cond.value
            if cond.datatype is not None:
                kind = _DATATYPE_KIND[cond.datatype]
            elif isinstance(v, bool):
                kind = ValueType.BOOL
            elif isinstance(v, int):
                kind = ValueType.INT
            elif isinstance(v, float):
                kind = ValueType.FLOAT
            elif isinstance(v, str):
                kind = ValueType.STR
            else:
                continue
            for name in cond.fields:
                out.setdefault(name.removeprefix(ROOT_PREFIX), set()).add(kind)
    return out


def _fields_read(plan: SamplerPlan) -> list[str]:
    names = {SIGNAL_TYPE}
    for rule in plan.rules:
        for cp in rule.conds:
            names.update(s.field for s in cp.sources)
    names.discard(META_ROOT)
    return sorted(names)


def _regexes(cols: PlanColumns) -> tuple[dict[str, z3.ReRef], list[str]]:
    """Translated regexes per Distinct key (on columns whose %v z3 expresses), and why others are not."""
    out: dict[str, z3.ReRef] = {}
    why: list[str] = []
    for (key, _col), (node, kind) in sorted(cols.distinct.items()):
        m = node.matcher
        if m is None:
            continue
        if m.mode is Mode.REGEX and kind in (ValueType.STR, ValueType.INT, ValueType.BOOL):
            try:
                out[key] = regex_z3.translate(m.arg.pattern)
            except regex_z3.Unsupported as exc:
                why.append(f"regex {m.arg.pattern!r}: {exc}")
    return out, why


def _unmodelled_reason(cols: PlanColumns, regexes: Mapping[str, z3.ReRef]) -> list[str]:
    """What the Distinct atoms stand for, in words (for "unknown")."""
    out = []
    for (key, _col), (node, kind) in sorted(cols.distinct.items()):
        if key in regexes:
            continue
        m = node.matcher
        what = {
            Mode.REGEX: "a regex",
            Mode.TYPED_FLOAT: "ParseFloat of a string",
            Mode.FLOATSET: "ParseFloat of a string",
        }.get(m.mode if m else Mode.NEVER, "Go's %v text")
        out.append(f"{what} on a {kind.value} value ({key.split('/')[0]})")
    return sorted(set(out))


class TraceModel:
    """``K`` symbolic spans, the plan rendered over them, and the rules' matched/decided formulas."""

    def __init__(self, plan: SamplerPlan, decide: int, literals: list[Any], k: int | None = None) -> None:
        self.plan = plan
        self.fields = _fields_read(plan)
        fake = {f: {k: _col_name(f, k) for k in (ValueType.NULL, *KINDS)} for f in self.fields}
        fake[PARENT_FIELD] = {ValueType.STR: PARENT_ID}
        self.cols = PlanColumns(plan, engine_fields(fake))
        if self.cols.nested_cols or self.cols.need_marshal:
            raise _Unmodelled("CheckNestedFields (gjson path lookups) is not modelled symbolically")
        self.trace: TracePlan = build_trace_plan(plan, self.cols, {}, decide)
        self.regexes, self.regex_why = _regexes(self.cols)
        self.unmodelled = _unmodelled_reason(self.cols, self.regexes) + self.regex_why
        # One witness span per distinct aggregated row (the probes often repeat a rule's condition), plus the root.
        self.bound = len({row for _, row in self.trace.span_aggs}) + 1
        self.k = self.bound if k is None else k
        self.literals = literals
        self.json_pool = _pool(ValueType.JSON, literals)
        self.n = z3.Int("n_spans")
        self.spans = [self._span(i) for i in range(self.k)]
        self.constraints: list[z3.BoolRef] = [
            *(s.on for s in self.spans),
            self.n >= self.k,
        ]
        self.constraints.append(self.n <= 2**31)
        for s in self.spans:
            self._span_constraints(s)
        self._roots()
        aggs: dict[str, z3.BoolRef] = {}
        by_row: dict[Row, z3.BoolRef] = {}
        for name, row in self.trace.span_aggs:
            if row not in by_row:
                by_row[row] = z3.Or([z3.And(s.on, self._render_span(s, row)) for s in self.spans])
            aggs[name] = by_row[row]
        self.aggs = aggs
        trace_r = Z3Renderer(self._trace_column, self.regexes)
        self.matched = [trace_r.row(r) for r in self.trace.matched]
        self.decide = decide

    # -- variables --------------------------------------------------------------------------------------------

    def _span(self, i: int) -> _Span:
        fields = {}
        for k, f in enumerate([*self.fields, PARENT_FIELD]):
            p = f"s{i}f{k}"
            fields[f] = _FieldVars(
                z3.Int(p + "tag"), z3.String(p + "s"), z3.String(p + "d"), z3.FP(p + "f", z3.Float64()),
                z3.Bool(p + "b"), z3.Int(p + "j"), z3.String(p + "v"),
            )  # fmt: skip
        return _Span(i, z3.Bool(f"s{i}on"), fields)

    def _span_constraints(self, s: _Span) -> None:
        for f, v in s.fields.items():
            allowed = [ABSENT, _TAGS[ValueType.STR]] if f == PARENT_FIELD else [ABSENT, *_TAGS.values()]
            self.constraints.append(z3.Or([v.tag == t for t in allowed]))
            self.constraints.append(z3.InRe(v.d, _int_text()))
            self.constraints.append(z3.Implies(v.tag == _TAGS[ValueType.FLOAT], z3.InRe(v.v, _float_text())))
            self.constraints.append(z3.Implies(v.tag == _TAGS[ValueType.JSON], z3.InRe(v.v, _json_text())))
            self.constraints.append(z3.And(v.j >= 0, v.j < len(self.json_pool)))
        r = Z3Renderer(lambda name: self._span_column(s, name), self.regexes)
        s.is_root = z3.And(s.on, r.row(self.trace.is_root))
        sig = self.trace.signal_column
        if sig is None:
            s.is_log = z3.BoolVal(False)
        else:
            c = self._field_col(s, sig)
            s.is_log = z3.And(c.present, c.value == z3.StringVal("log"))

    def atom(self, s: _Span, key: str, col: str) -> z3.BoolRef:
        k = (key, col)
        if k not in s.atoms:
            a = s.atoms[k] = z3.Bool(f"s{s.index}a{len(s.atoms)}")
            if col.endswith(("\x00" + ValueType.FLOAT.value, "\x00" + ValueType.JSON.value)):  # %v: on the text
                m = self._distinct_node(key, col).matcher
                if m is not None and m.mode in _TEXT_MODES:
                    text = s.fields[col.rsplit("\x00", 1)[0]].v
                    pred = _text_test(m, text, self.regexes.get(key))
                    if pred is not None:
                        self.constraints.append(a == pred)
        return s.atoms[k]

    # -- columns ----------------------------------------------------------------------------------------------

    def _field_col(self, s: _Span, col: str) -> _ColVal:
        if col == PARENT_ID:
            v = s.fields[PARENT_FIELD]
            return _ColVal(v.tag == _TAGS[ValueType.STR], v.s, ValueType.STR, lambda key: self.atom(s, key, col))
        fname, kind_s = col.rsplit("\x00", 1)
        kind = ValueType(kind_s)
        v = s.fields[fname]
        value = {ValueType.STR: v.s, ValueType.INT: v.d, ValueType.FLOAT: v.f, ValueType.BOOL: v.b}.get(kind, v.j)
        if kind is ValueType.NULL:
            value = z3.BoolVal(True)
        return _ColVal(v.tag == _TAGS[kind], value, kind, lambda key: self.atom(s, key, col))

    def _span_column(self, s: _Span, name: str) -> _ColVal | z3.BoolRef:
        if name.startswith(ROOT_PREFIX_COL):
            return self._root_column(base_column(name))
        if name == META_ROOT_COL:
            assert s.is_root is not None and s.is_log is not None
            return _ColVal(z3.Not(s.is_log), s.is_root, ValueType.BOOL, lambda key: self._meta_atom(key, s.is_root))
        if name == HAS_ROOT:
            return self.has_root
        if name == NUM_DESC:
            return _ColVal(z3.BoolVal(True), self.n, ValueType.INT, lambda key: z3.BoolVal(False))
        return self._field_col(s, name)

    def _meta_atom(self, key: str, value: z3.BoolRef) -> z3.BoolRef:
        raise _Unmodelled("a %v-based test of meta.refinery.root")

    def _roots(self) -> None:
        spans = self.spans
        self.has_root = z3.Or([s.is_root for s in spans])
        last: list[z3.BoolRef] = []
        for i, s in enumerate(spans):
            assert s.is_root is not None
            later = [t.is_root for t in spans[i + 1 :]]
            last.append(z3.And(s.is_root, *(z3.Not(x) for x in later if x is not None)))
        self.is_last_root = last

    def _root_column(self, col: str) -> _ColVal:
        if col == META_ROOT_COL:
            return _ColVal(self.has_root, z3.BoolVal(True), ValueType.BOOL, lambda key: z3.BoolVal(False))
        per = [self._field_col(s, col) for s in self.spans]
        kind = per[0].kind
        present: z3.BoolRef = z3.BoolVal(False)
        value = per[0].value
        for _s, c, last in zip(self.spans, per, self.is_last_root, strict=True):
            present = z3.If(last, c.present, present)
            value = z3.If(last, c.value, value)

        def atom(key: str) -> z3.BoolRef:
            out: z3.BoolRef = z3.BoolVal(False)
            for s, last in zip(self.spans, self.is_last_root, strict=True):
                out = z3.If(last, self.atom(s, key, col), out)
            return out

        return _ColVal(present, value, kind, atom)

    def _trace_column(self, name: str) -> _ColVal | z3.BoolRef:
        if name in self.aggs:
            return self.aggs[name]
        if name.startswith(ROOT_PREFIX_COL):
            return self._root_column(base_column(name))
        if name == HAS_ROOT:
            return self.has_root
        if name == NUM_DESC:
            return _ColVal(z3.BoolVal(True), self.n, ValueType.INT, lambda key: z3.BoolVal(False))
        raise AssertionError(name)

    def _render_span(self, s: _Span, row: Row) -> z3.BoolRef:
        return Z3Renderer(lambda name: self._span_column(s, name), self.regexes).row(row)

    # -- queries ----------------------------------------------------------------------------------------------

    def decided(self, i: int) -> z3.BoolRef:
        """Rule ``i`` decides the trace: it matches and no earlier rule does."""
        return z3.And(self.matched[i], *(z3.Not(self.matched[j]) for j in range(i)))

    def undecided(self) -> z3.BoolRef:
        return z3.And([z3.Not(self.matched[j]) for j in range(self.decide)] or [z3.BoolVal(True)])

    def pool_constraints(self) -> list[z3.BoolRef]:
        """Pin every Distinct atom to a candidate value whose truth the engines' matcher computes."""
        out = []
        for s in self.spans:
            by_col: dict[str, list[str]] = {}
            for key, col in s.atoms:
                by_col.setdefault(col, []).append(key)
            for col, keys in sorted(by_col.items()):
                c = self._field_col(s, col)
                nodes = {k: self._distinct_node(k, base_column(col)) for k in keys}
                options = []
                for v in _pool(c.kind, self.literals):
                    try:
                        hits = {k: bool(n.fn(v)) for k, n in nodes.items()}
                    except Exception:  # a candidate the matcher cannot take: not a candidate
                        continue
                    pin = [self.atom(s, k, col) == z3.BoolVal(h) for k, h in hits.items()]
                    options.append(z3.And(self._value_is(c, v, s, col), *pin))
                out.append(z3.Implies(c.present, z3.Or(options) if options else z3.BoolVal(False)))
        return out

    def _distinct_node(self, key: str, col: str) -> Distinct:
        for (k, _c), (node, _kind) in self.cols.distinct.items():
            if k == key:
                return node
        raise AssertionError(key)

    def _value_is(self, c: _ColVal, v: Any, s: _Span, col: str) -> z3.BoolRef:
        if c.kind is ValueType.FLOAT:
            text = s.fields[col.rsplit("\x00", 1)[0]].v == z3.StringVal(gostr.go_v(v))
            return z3.And(c.value == _fp(v) if not math.isnan(v) else z3.fpIsNaN(c.value), text)
        if c.kind is ValueType.JSON:
            text = s.fields[col.rsplit("\x00", 1)[0]].v == z3.StringVal(gostr.go_v(json.loads(v)))
            return z3.And(c.value == self.json_pool.index(v), text)
        if c.kind is ValueType.STR:
            return c.value == z3.StringVal(v)
        raise AssertionError(c.kind)


# ---------------------------------------------------------------------------------------------------------------
# Solving: over-approximation, candidate values, minimisation, witness, confirmation


@dataclass(frozen=True, slots=True)
class _Found:
    status: str  # sat | unsat | unknown
    spans: tuple[dict[str, Any], ...] = ()
    reason: str = ""


def _fp_value(model: z3.ModelRef, x: z3.FPRef) -> float:
    if z3.is_true(model.eval(z3.fpIsNaN(x), model_completion=True)):
        return math.nan
    if z3.is_true(model.eval(z3.fpIsInf(x), model_completion=True)):
        neg = z3.is_true(model.eval(z3.fpIsNegative(x), model_completion=True))
        return -math.inf if neg else math.inf
    if z3.is_true(model.eval(z3.fpIsZero(x), model_completion=True)):
        neg = z3.is_true(model.eval(z3.fpIsNegative(x), model_completion=True))
        return -0.0 if neg else 0.0
    real = model.eval(z3.fpToReal(x), model_completion=True)
    assert isinstance(real, z3.RatNumRef)
    return float(Fraction(real.numerator_as_long(), real.denominator_as_long()))


class Checker:
    """Queries "is there a trace satisfying ``goal``?", tried with 1, 2, ... up to the bound of spans (so a witness
    has as few spans as possible, and small cases are cheap); unsat at the bound is a proof."""

    def __init__(
        self,
        plan: SamplerPlan,
        decide: int,
        literals: list[Any],
        timeout_ms: int,
        natural: Mapping[str, set[ValueType]] | None = None,
    ) -> None:
        self.plan, self.decide, self.literals = plan, decide, literals
        self.natural = natural or {}  # per field: the value types its conditions compare with (witness preference)
        self.timeout_ms = timeout_ms
        self.deadline = time.monotonic() + timeout_ms / 1000  # one budget for every query of the pass
        first = TraceModel(plan, decide, literals, 1)
        self.bound = first.bound
        self.models: dict[int, tuple[TraceModel, z3.Solver]] = {}
        self._add(first)
        self.m = first
        self.solver = self.models[1][1]
        self.pool: dict[int, list[z3.BoolRef]] = {}

    def _add(self, model: TraceModel) -> None:
        solver = z3.Solver()
        solver.add(*model.constraints)
        self.models[model.k] = (model, solver)

    def model(self, k: int) -> TraceModel:
        if k not in self.models:
            self._add(TraceModel(self.plan, self.decide, self.literals, k))
        return self.models[k][0]

    def find(self, goal: Callable[[TraceModel], z3.BoolRef]) -> _Found:
        """A trace satisfying ``goal`` (sat, with spans), none exists (unsat), or unknown with the reason."""
        unknown: _Found | None = None
        for k in sorted({1, 2, self.bound} - {0} if self.bound >= 2 else {1}):  # few spans first; the bound proves
            self.m = self.model(k)
            self.solver = self.models[k][1]
            got = self._find_k(goal(self.m))
            if got.status == "sat":
                return got
            if got.status == "unknown":
                unknown = got
        return unknown or _Found("unsat")

    def _find_k(self, goal: z3.BoolRef) -> _Found:
        s = self.solver
        left = int((self.deadline - time.monotonic()) * 1000)
        if left <= 0:
            return _Found("unknown", reason=self._out_of_time())
        s.set("timeout", left)
        s.push()
        try:
            s.add(goal)
            got = s.check()
            if got == z3.unknown:
                return _Found("unknown", reason=self._unknown_reason())
            if got == z3.unsat:
                return _Found("unsat")
            if any(sp.atoms for sp in self.m.spans):
                if self.m.k not in self.pool:
                    self.pool[self.m.k] = self.m.pool_constraints()
                s.add(*self.pool[self.m.k])
                got = s.check()
                if got != z3.sat:
                    why = "; ".join(self.m.unmodelled) or "features z3 cannot model exactly"
                    return _Found("unknown", reason=f"no witness among candidate values for {why}")
            spans = self._witness()
            if spans is None:
                return _Found("unknown", reason=self._unknown_reason())
            return _Found("sat", spans)
        finally:
            s.pop()

    def _out_of_time(self) -> str:
        return f"the symbolic pass used up its {self.timeout_ms / 1000:g} s (--solver-timeout) before deciding this"

    def _unknown_reason(self) -> str:
        r = self.solver.reason_unknown()
        if r in ("timeout", "canceled"):
            return self._out_of_time()
        return f"the solver gave up ({r})"

    def _try(self, extra: Sequence[z3.BoolRef]) -> bool:
        s = self.solver
        s.push()
        s.add(*extra)
        ok = s.check() == z3.sat
        if not ok:
            s.pop()
        return ok

    def _witness(self) -> tuple[dict[str, Any], ...] | None:
        """Read a readable model. Preferences are kept greedily, each only if the trace still satisfies the goal:
        exactly the span count the spans give; no field the witness does not need (tried one by one, only for the
        fields the first model uses); each field in a type the policy compares it with; ints and strings rather
        than floats and maps; printable short strings; short ints."""
        s = self.solver
        if s.check() != z3.sat:
            return None
        m = self.m
        first = s.model()
        named = [(f, v) for sp in m.spans for f, v in sorted(sp.fields.items())]
        used = [(f, v) for f, v in named if first.eval(v.tag, model_completion=True).as_long() != ABSENT]
        used_ids = {id(v) for _, v in used}
        fields = [v for _, v in named]
        groups: list[list[z3.BoolRef]] = [[m.n == m.k], [v.tag == ABSENT for v in fields if id(v) not in used_ids]]
        groups += [[v.tag == ABSENT] for _, v in used]
        groups.append([z3.Or([v.tag == _TAGS[k] for k in sorted(self.natural[f])]) for f, v in used
                       if self.natural.get(f)])  # fmt: skip
        groups.append([z3.And(v.tag != _TAGS[ValueType.FLOAT], v.tag != _TAGS[ValueType.JSON]) for v in fields])
        groups.append([z3.And(z3.InRe(v.s, _printable()), z3.Length(v.s) <= 24) for v in fields])
        groups.append([z3.Length(v.d) <= 7 for v in fields])
        pushed = 0
        try:
            for group in groups:
                if group and self._try(group):
                    pushed += 1
            return self._read(s.model()) if s.check() == z3.sat else None
        finally:
            for _ in range(pushed):
                s.pop()

    def _read(self, model: z3.ModelRef) -> tuple[dict[str, Any], ...]:
        m = self.m
        ev = lambda x: model.eval(x, model_completion=True)  # noqa: E731
        present = [sp for sp in m.spans if z3.is_true(ev(sp.on))]
        out: list[dict[str, Any]] = []
        for sp in present:
            span: dict[str, Any] = {"trace.span_id": f"s{sp.index + 1}"}
            for fname, v in sp.fields.items():
                tag = ev(v.tag).as_long()
                if tag == ABSENT:
                    continue
                if fname == PARENT_FIELD:
                    span["trace.parent_id"] = ev(v.s).as_string()
                    continue
                kind = next(k for k, t in _TAGS.items() if t == tag)
                if kind is ValueType.NULL:
                    span[fname] = None
                elif kind is ValueType.STR:
                    span[fname] = ev(v.s).as_string()
                elif kind is ValueType.INT:
                    span[fname] = int(ev(v.d).as_string())
                elif kind is ValueType.FLOAT:
                    span[fname] = _fp_value(model, v.f)
                elif kind is ValueType.BOOL:
                    span[fname] = z3.is_true(ev(v.b))
                else:
                    span[fname] = json.loads(m.json_pool[ev(v.j).as_long()])
            out.append(span)
        n = ev(m.n).as_long()
        pad = [dict(out[0], **{"trace.span_id": f"p{i + 1}"}) for i in range(max(0, n - len(out)))]
        return tuple(pad + out)


# ---------------------------------------------------------------------------------------------------------------
# Properties


@dataclass(frozen=True, slots=True)
class Probe:
    """A named trace predicate (the error definition, a must-keep class): true when any of its rules matches."""

    name: str
    rules: tuple[Rule, ...]
    waived: frozenset[str] = frozenset()  # rules whose violations a waiver (accept) takes out of the search


@dataclass(slots=True)
class SymbolicReport:
    """Per check name (fallback, errors, must_keep, budget): the verdict; per rule: reachability."""

    checks: dict[str, Verdict]
    rules: dict[str, Verdict]
    bound: int = 0
    seconds: float = 0.0
    details: dict[str, list[Verdict]] = field(default_factory=dict)  # must_keep: one per class

    def witness_lines(self) -> list[str]:
        """Every witness as flat JSON lines (the ingest format), in a deterministic order, each span once."""
        verdicts = [*self.checks.values(), *(v for vs in self.details.values() for v in vs), *self.rules.values()]
        lines = (json.dumps(span, sort_keys=True, ensure_ascii=False) for v in verdicts for span in v.witness)
        return list(dict.fromkeys(lines))


def _never_kept(o: Outcome) -> bool:
    """The outcome can drop a trace (keep probability below 1, or a DeterministicSampler hash)."""
    if o.keep == "deterministic":
        return True
    return keep_probabilities([(o.keep, o.rate)])[0] < 1.0


def _trace_id_for(outcome: Outcome | None, name: str) -> str:
    """A witness trace id; for a DeterministicSampler rule, one its hash drops."""
    base = f"nectar-witness-{name}"
    if outcome is None or outcome.keep != "deterministic":
        return base
    for i in range(10_000):
        tid = f"{base}-{i}"
        if not gostr.deterministic_keep(tid, outcome.rate):
            return tid
    return base


def _with_ids(spans: Iterable[dict[str, Any]], trace_id: str) -> tuple[dict[str, Any], ...]:
    return tuple({"trace.trace_id": trace_id, **s} for s in spans)


class _Prover:
    def __init__(self, sampler: RulesBasedSampler, probes: Sequence[Probe], timeout_ms: int) -> None:
        self.sampler = sampler
        self.probes = list(probes)
        self.rules = list(sampler.rules)
        self.n = len(self.rules)
        self.groups: list[list[int]] = []
        all_rules = list(self.rules)
        for p in self.probes:
            self.groups.append(list(range(len(all_rules), len(all_rules) + len(p.rules))))
            all_rules += p.rules
        full = RulesBasedSampler(tuple(all_rules), sampler.check_nested_fields)
        self.plan = plan_sampler(full)
        literals = _literals(all_rules)
        self.checker = Checker(self.plan, self.n, literals, timeout_ms, _natural_kinds(all_rules))
        self.outcomes = [rp.outcome for rp in self.plan.rules[: self.n]]

    def probe(self, m: TraceModel, k: int) -> z3.BoolRef:
        return z3.Or([m.matched[i] for i in self.groups[k]] or [z3.BoolVal(False)])

    def confirm(self, spans: tuple[dict[str, Any], ...], rule: int | None, probe: int | None) -> str | None:
        """None when the reference engine agrees the witness is decided by ``rule`` (None: no rule) and satisfies
        ``probe``; else what differs."""
        tid = spans[0]["trace.trace_id"]
        d = decide_trace(self.sampler, tid, spans)
        want = self.rules[rule].name if rule is not None else None
        if d.rule != want:
            return f"the reference engine decides the witness by {d.rule!r}, not {want!r}"
        if probe is not None:
            probe_sampler = RulesBasedSampler(self.probes[probe].rules, self.sampler.check_nested_fields)
            if not any(rule_matches(probe_sampler, tid, spans)):
                return f"the witness is not a {self.probes[probe].name} trace for the reference engine"
        return None

    def _violating(self, i: int, probe: int) -> Callable[[TraceModel], z3.BoolRef]:
        return lambda m: z3.And(m.decided(i), self.probe(m, probe))

    def violation(self, name: str, probe: int) -> Verdict:
        """Is there a trace decided by a rule whose outcome can drop it, satisfying the probe? Rules in order."""
        reasons: list[tuple[str, str]] = []
        waived = self.probes[probe].waived
        for i, o in enumerate(self.outcomes):
            if not _never_kept(o) or self.rules[i].name in waived:
                continue
            got = self.checker.find(self._violating(i, probe))
            if got.status == "unknown":
                reasons.append((self.rules[i].name, got.reason))
                continue
            if got.status == "sat":
                spans = _with_ids(got.spans, _trace_id_for(o, name))
                bad = self.confirm(spans, i, probe)
                if bad is not None:
                    reasons.append((self.rules[i].name, f"unconfirmed witness ({bad})"))
                    continue
                return Verdict("refuted", _describe(spans, self.rules[i].name, o), spans, self.rules[i].name)
        if reasons:
            return Verdict("unknown", _grouped(reasons))
        accepted = f"; violations by {', '.join(sorted(waived))} are waived" if waived else ""
        return Verdict("proved", f"no trace of any shape violates it ({self.checker.bound} spans suffice){accepted}")

    def fallback(self) -> Verdict:
        got = self.checker.find(lambda m: m.undecided())
        if got.status == "unknown":
            return Verdict("unknown", got.reason)
        if got.status == "unsat":
            return Verdict("proved", "every possible trace is decided by some rule")
        spans = _with_ids(got.spans, "nectar-witness-fallback")
        bad = self.confirm(spans, None, None)
        if bad is not None:
            return Verdict("unknown", f"unconfirmed witness ({bad})")
        return Verdict("refuted", f"{_shape(spans)} is decided by no rule (Refinery keeps it)", spans)

    def reachable(self, i: int) -> Verdict:
        name = self.rules[i].name
        got = self.checker.find(lambda m: m.decided(i))
        if got.status == "unknown":
            return Verdict("unknown", got.reason, rule=name)
        if got.status == "sat":
            spans = _with_ids(got.spans, f"nectar-witness-rule-{i}")
            bad = self.confirm(spans, i, None)
            if bad is not None:
                return Verdict("unknown", f"unconfirmed witness ({bad})", rule=name)
            return Verdict("proved", f"decides e.g. {_shape(spans)}", spans, name)
        alone = self.checker.find(lambda m: m.matched[i])
        if alone.status == "unsat":
            return Verdict("refuted", f"rule {name} matches no possible trace", rule=name)
        return Verdict("refuted", f"rule {name} is shadowed: every trace it matches is decided by an earlier rule",
                       rule=name)  # fmt: skip


def _grouped(reasons: list[tuple[str, str]]) -> str:
    """``rules a, b: reason; rule c: other reason`` (rules with the same reason named once)."""
    by: dict[str, list[str]] = {}
    for rule, why in reasons:
        by.setdefault(why, []).append(rule)
    return "; ".join(f"rule{'s' if len(r) > 1 else ''} {', '.join(r)}: {why}" for why, r in by.items())


def _fmt_value(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return json.dumps(v)


def _backticks(text: str) -> str:
    return f"`{text}`"


def _shape(spans: Sequence[dict[str, Any]], code: Callable[[str], str] = _backticks) -> str:
    """A trace in words: its distinct spans' fields (ids left out), each ``field = value`` through ``code``."""
    seen: list[str] = []
    for s in spans:
        fields = [code(f"{k} = {_fmt_value(v)}") for k, v in s.items() if not k.startswith("trace.")]
        root = "" if s.get("trace.parent_id") else " (root)"
        text = ("a span " + " and ".join(fields) if fields else "a span with no fields") + root
        if text not in seen:
            seen.append(text)
    extra = f" ({len(spans)} spans)" if len(spans) > len(seen) else ""
    return "a trace with " + "; ".join(seen) + extra


def _describe(spans: Sequence[dict[str, Any]], rule: str, o: Outcome) -> str:
    how = {"false": "dropped", "sampled": f"sampled at 1 in {o.rate}", "deterministic": "dropped by the hash"}
    return f"{_shape(spans)} is {how.get(o.keep, 'not always kept')} by rule {rule}"


def prove_symbolic(
    sampler: RulesBasedSampler,
    errors: Probe | None,
    must_keep: Sequence[Probe],
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    decided_by: Mapping[int, str] | None = None,
) -> SymbolicReport:
    """Every property over all possible traces (module docstring), within ``timeout_ms`` for the whole pass (the
    errors, then the must-keep classes, the fallback, each rule's reachability; what the time does not reach is
    unknown, saying so). Never raises for a policy it cannot model: every verdict is then unknown with the reason.

    ``decided_by``: rule index -> a corpus trace the engines decided with that rule. Reachability is existential,
    so such a trace proves it without the solver (the verdict names the trace)."""
    start = time.perf_counter()
    probes = ([errors] if errors is not None else []) + list(must_keep)
    try:
        prover = _Prover(sampler, probes, timeout_ms)
    except _Unmodelled as exc:
        why = Verdict("unknown", str(exc))
        return SymbolicReport(
            checks={"fallback": why, "errors": why, "must_keep": why, "budget": BUDGET_NOT_SYMBOLIC},
            rules={r.name: why for r in sampler.rules},
        )
    checks: dict[str, Verdict] = {}
    details: dict[str, list[Verdict]] = {}
    if errors is not None:
        checks["errors"] = prover.violation("errors", 0)
    offset = 1 if errors is not None else 0
    per_class = [prover.violation(f"must-keep-{k}", offset + k) for k in range(len(must_keep))]
    if must_keep:
        details["must_keep"] = per_class
        checks["must_keep"] = _combine(per_class, [p.name for p in must_keep])
    else:
        checks["must_keep"] = Verdict("skipped", "no must-keep classes")
    checks["fallback"] = prover.fallback()
    checks["budget"] = BUDGET_NOT_SYMBOLIC
    known = decided_by or {}
    rules = {
        r.name: (
            Verdict("proved", f"decides corpus trace {known[i]}", rule=r.name) if i in known else prover.reachable(i)
        )
        for i, r in enumerate(prover.rules)
    }
    return SymbolicReport(checks, rules, prover.checker.bound, time.perf_counter() - start, details)


def _combine(verdicts: list[Verdict], names: list[str]) -> Verdict:
    for v, name in zip(verdicts, names, strict=True):
        if v.status == "refuted":
            return Verdict("refuted", f"class {name}: {v.reason}", v.witness, v.rule)
    unknown = [f"class {n}: {v.reason}" for v, n in zip(verdicts, names, strict=True) if v.status == "unknown"]
    if unknown:
        return Verdict("unknown", "; ".join(unknown))
    return Verdict("proved", "no trace of any shape drops a must-keep trace")


# ---------------------------------------------------------------------------------------------------------------
# Diff: the traces two samplers decide differently (``nectar diff``)
#
# One model: OLD's rules decide (the Checker's first ``n`` rules), NEW's rules and the probes follow as rules that
# only match. Each side's choice is a rule index, or its length for "no rule matched" (or its top-level sampler,
# which is then its only choice). The query "OLD takes choice i and NEW takes choice j" for every pair (i, j) whose
# outcomes differ is asked as one disjunction; a witness is decided by the reference engine on both sides, which
# names its pair; that pair leaves the disjunction and the query is asked again, until none is left (unsat at the
# bound: no other kind of change exists) or the time or the witness count runs out.

MAX_DIFF_WITNESSES = 16  # kinds of change listed before the search stops (the rest: "more may exist")
MAX_CLASS_WITNESSES = 4  # per probe (error definition, must-keep class): witnesses whose keep probability drops


@dataclass(frozen=True, slots=True)
class SideOutcome:
    """What one side does with a trace: the deciding rule (None: no rule matched, or the top-level sampler decides)
    and its outcome. ``settings``: a stateful sampler's settings (JSON text); its rates depend on traffic, so two
    stateful outcomes are the same only with the same kind and settings."""

    rule: str | None
    keep: str  # true | false | sampled | deterministic (a trace-id hash keeps 1 in rate)
    rate: int
    sampler: str | None = None
    settings: str = ""

    @property
    def key(self) -> tuple[Any, ...]:
        """Equal keys decide every trace alike (a dropped trace's rate and sampler are never seen)."""
        if self.keep == "false":
            return ("false",)
        return (self.keep, self.rate, self.sampler or "", self.settings)

    @property
    def probability(self) -> float:
        """The keep probability (a trace-id hash: 1/rate of trace ids; a stateful sampler: 1/its configured rate)."""
        keep = "sampled" if self.keep == "deterministic" else self.keep
        return keep_probabilities([(keep, self.rate)])[0]

    def phrase(self) -> str:
        """``kept by keep-errors``, ``sampled 1 in 20 by sample-cache``, ``dropped by probes``."""
        if self.rule is not None:
            who = f"by {self.rule}"
        elif self.sampler is not None:
            who = f"by the top-level {self.sampler}"
        else:
            who = "(no rule matched)"
        if self.keep == "true":
            return f"kept {who}"
        if self.keep == "false":
            return f"dropped {who}"
        if self.keep == "deterministic":
            return f"kept 1 in {self.rate} by trace-id hash {who}"
        if self.sampler is not None:
            return f"sampled {who} ({self.sampler}, configured rate {self.rate}, actual rate set by traffic)"
        return f"sampled 1 in {self.rate} {who}"

    def to_json(self, prefix: str) -> dict[str, Any]:
        """Keep as ``nectar replay --per-trace`` writes it (true, false, "sampled"; or "deterministic")."""
        keep = {"true": True, "false": False}.get(self.keep, self.keep)
        return {f"{prefix}_rule": self.rule, f"{prefix}_keep": keep, f"{prefix}_rate": self.rate,
                f"{prefix}_sampler": self.sampler}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DiffWitness:
    """A trace (flat JSON spans, the ingest format) that OLD and NEW decide differently, confirmed by the reference
    engine on both sides; ``classes``: the probes it satisfies (``errors``, must-keep classes)."""

    old: SideOutcome
    new: SideOutcome
    spans: tuple[dict[str, Any], ...]
    classes: tuple[str, ...] = ()

    @property
    def at_risk(self) -> tuple[str, ...]:
        """The classes of this trace whose keep probability the change lowers."""
        return self.classes if self.new.probability < self.old.probability else ()

    def shape(self, code: Callable[[str], str] = _backticks) -> str:
        """The trace in words (``a trace with a span `error = true` (root)``), each field through ``code``."""
        return _shape(self.spans, code)

    def change(self) -> str:
        """``, an error trace, was kept by keep-errors and is now dropped by probes``."""
        what = [
            "an error trace" if c == "errors" else f"in must-keep class {c.removeprefix('must_keep:')}"
            for c in self.classes
        ]
        classes = f", {' and '.join(what)}," if what else ""
        return f"{classes} was {self.old.phrase()} and is now {self.new.phrase()}"

    def description(self) -> str:
        return self.shape() + self.change()

    def to_json(self) -> dict[str, Any]:
        return {
            **self.old.to_json("old"),
            **self.new.to_json("new"),
            "description": self.description(),
            "classes": list(self.classes),
            "at_risk": list(self.at_risk),
            "spans": list(self.spans),
        }


@dataclass(frozen=True, slots=True)
class SymbolicDiff:
    """``equivalent`` (no trace of any shape is decided differently), ``different`` (one witness per kind of
    change: per pair of deciding rules, plus error and must-keep traces whose keep probability drops) or
    ``unknown``; ``complete``: every kind of change is listed; ``reason`` says why not, or why unknown."""

    status: str
    reason: str
    witnesses: tuple[DiffWitness, ...] = ()
    complete: bool = False
    bound: int = 0
    seconds: float = 0.0

    def at_risk(self, prefix: str) -> list[DiffWitness]:
        """Witnesses of a class whose name starts with ``prefix`` (``errors``, ``must-keep``) whose keep probability
        drops."""
        return [w for w in self.witnesses if any(c.startswith(prefix) for c in w.at_risk)]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "complete": self.complete,
            "bound": self.bound,
            "witnesses": [w.to_json() for w in self.witnesses],
        }


def _side_outcome(rule: str | None, o: Outcome, s: Sampler | None) -> SideOutcome:
    settings = json.dumps(dict(s.params), sort_keys=True, default=str) if s is not None and s.stateful else ""
    return SideOutcome(rule, o.keep, o.rate, o.sampler, settings)


def _diff_side(
    sampler: SamplerConfig | RulesBasedSampler | Sampler,
) -> tuple[tuple[Rule, ...], list[SideOutcome], bool]:
    """A side's rules, its choices' outcomes (one per rule, then "no rule matched" or the top-level sampler) and
    its CheckNestedFields."""
    choice = sampler.choice if isinstance(sampler, SamplerConfig) else sampler
    if isinstance(choice, RulesBasedSampler):
        plan = plan_sampler(choice)
        outs = [_side_outcome(rp.name, rp.outcome, r.sampler) for rp, r in zip(plan.rules, choice.rules, strict=True)]
        return choice.rules, [*outs, SideOutcome(None, NO_MATCH.keep, NO_MATCH.rate)], choice.check_nested_fields
    if isinstance(choice, Sampler):
        return (), [_side_outcome(None, sampler_outcome(choice, ""), choice)], False
    return (), [SideOutcome(None, NO_MATCH.keep, NO_MATCH.rate)], False


Pair = tuple[int, int]


class _DiffSearch:
    def __init__(
        self,
        old: SamplerConfig | RulesBasedSampler | Sampler,
        new: SamplerConfig | RulesBasedSampler | Sampler,
        probes: Sequence[Probe],
        timeout_ms: int,
    ) -> None:
        self.old, self.new, self.probes = old, new, list(probes)
        o_rules, self.o_out, o_nested = _diff_side(old)
        n_rules, self.n_out, n_nested = _diff_side(new)
        self.no, self.nn = len(o_rules), len(n_rules)
        # A rule's match depends only on its conditions and scope: NEW's rules and the probes that repeat an earlier
        # rule's reuse its formula (a reordered or renamed rule costs the solver nothing).
        rules: list[Rule] = list(o_rules)
        seen: dict[Any, int] = {}
        for k, r in enumerate(o_rules):
            seen.setdefault(r.match_key, k)

        def place(r: Rule) -> int:
            key = r.match_key
            if key not in seen:
                seen[key] = len(rules)
                rules.append(r)
            return seen[key]

        self.new_at = [place(r) for r in n_rules]  # NEW rule j's index in the model
        self.groups: list[list[int]] = [[place(r) for r in p.rules] for p in self.probes]
        self.pairs = [(i, j) for i in range(self.no + 1) for j in range(self.nn + 1)
                      if self.o_out[i].key != self.n_out[j].key]  # fmt: skip
        self.checker: Checker | None = None
        if self.pairs:
            plan = plan_sampler(RulesBasedSampler(tuple(rules), o_nested or n_nested))
            self.checker = Checker(plan, self.no, _literals(rules), timeout_ms, _natural_kinds(rules))

    # -- formulas ---------------------------------------------------------------------------------------------

    def _none(self, m: TraceModel, count: int) -> z3.BoolRef:
        return z3.And([z3.Not(m.matched[k]) for k in range(count)] or [z3.BoolVal(True)])

    def _takes(self, m: TraceModel, pair: Pair) -> z3.BoolRef:
        i, j = pair
        old = m.decided(i) if i < self.no else self._none(m, self.no)
        earlier = [z3.Not(m.matched[self.new_at[k]]) for k in range(min(j, self.nn))]
        new = z3.And(m.matched[self.new_at[j]], *earlier) if j < self.nn else z3.And(earlier or [z3.BoolVal(True)])
        return z3.And(old, new)

    def goal(self, pairs: Sequence[Pair], probe: int | None = None) -> Callable[[TraceModel], z3.BoolRef]:
        def make(m: TraceModel) -> z3.BoolRef:
            some = z3.Or([self._takes(m, p) for p in pairs])
            if probe is None:
                return some
            return z3.And(some, z3.Or([m.matched[k] for k in self.groups[probe]] or [z3.BoolVal(False)]))

        return make

    # -- witnesses --------------------------------------------------------------------------------------------

    def classify(self, spans: tuple[dict[str, Any], ...]) -> Pair:
        """The pair of choices the reference engine takes on each side."""
        tid = spans[0]["trace.trace_id"]
        o = decide_trace(self.old, tid, spans).rule_index
        n = decide_trace(self.new, tid, spans).rule_index
        return (self.no if o is None else o, self.nn if n is None else n)

    def witness(self, pair: Pair, spans: tuple[dict[str, Any], ...]) -> DiffWitness:
        tid = spans[0]["trace.trace_id"]
        classes = tuple(
            p.name for p in self.probes if p.rules and any(rule_matches(RulesBasedSampler(p.rules), tid, spans))
        )
        return DiffWitness(self.o_out[pair[0]], self.n_out[pair[1]], spans, classes)

    def drops(self, pair: Pair) -> bool:
        return self.n_out[pair[1]].probability < self.o_out[pair[0]].probability

    def _find(self, pairs: list[Pair], probe: int | None, n: int) -> tuple[str, DiffWitness | None, Pair | None]:
        """("sat", witness, pair) | ("unsat"|"unknown", None, None), with the reason in the first slot's place."""
        assert self.checker is not None
        got = self.checker.find(self.goal(pairs, probe))
        if got.status != "sat":
            return (got.status if got.status == "unsat" else got.reason), None, None
        spans = _with_ids(got.spans, f"nectar-diff-witness-{n}")
        pair = self.classify(spans)
        if pair not in pairs:
            o, nw = self.o_out[pair[0]], self.n_out[pair[1]]
            return f"unconfirmed witness (the reference engine: {o.phrase()}, then {nw.phrase()})", None, None
        w = self.witness(pair, spans)
        if probe is not None and self.probes[probe].name not in w.classes:
            return f"unconfirmed witness (not a {self.probes[probe].name} trace for the reference engine)", None, None
        return "sat", w, pair

    def label(self, pair: Pair) -> str:
        """``keep-errors#1 -> drop-probes``."""

        def who(o: SideOutcome) -> str:
            return o.rule or (f"top-level {o.sampler}" if o.sampler else "(no rule)")

        return f"{who(self.o_out[pair[0]])} -> {who(self.n_out[pair[1]])}"

    def _find_within(
        self, pairs: list[Pair], probe: int | None, n: int, share: float
    ) -> tuple[str, DiffWitness | None, Pair | None]:
        """:meth:`_find` with at most ``share`` of the time left, so that the rest stays for later queries."""
        checker = self.checker
        assert checker is not None
        deadline = checker.deadline
        now = time.monotonic()
        checker.deadline = now + (deadline - now) * share
        try:
            status, w, pair = self._find(pairs, probe, n)
        finally:
            checker.deadline = deadline
        if status == checker._out_of_time() and time.monotonic() < deadline:
            status = f"not decided within its share of the {checker.timeout_ms / 1000:g} s (--solver-timeout)"
        return status, w, pair

    def _enumerate(self) -> tuple[dict[Pair, DiffWitness], list[Pair], str]:
        """A witness per pair of choices, one disjunction at a time, until none is left. Returns the witnesses, the
        pairs left undecided and why (empty: every pair is decided)."""
        found: dict[Pair, DiffWitness] = {}
        remaining = list(self.pairs)
        stop = f"the search stops after {MAX_DIFF_WITNESSES} kinds of change"
        while remaining:
            if len(found) >= MAX_DIFF_WITNESSES:
                return found, remaining, stop
            # half the time left at most: if the disjunction is undecided, the pairs one by one get the rest
            status, w, pair = self._find_within(remaining, None, len(found) + 1, 0.5 if len(remaining) > 1 else 1.0)
            if status == "unsat":
                return found, [], ""
            if w is None or pair is None:
                if len(remaining) == 1 or status.startswith("unconfirmed"):
                    return found, remaining, status
                break
            found[pair] = w
            remaining.remove(pair)
        # The disjunction is undecided (say, a float threshold compared two ways): each pair on its own, so that
        # what can be decided is, and what cannot is named. Each pair gets an equal share of the time left (what a
        # quick pair leaves over goes to the next ones), so that one hard pair does not starve the others.
        undecided: list[tuple[Pair, str]] = []
        for k, pair in enumerate(remaining):
            if len(found) >= MAX_DIFF_WITNESSES:
                undecided.append((pair, stop))
                continue
            status, w, _ = self._find_within([pair], None, len(found) + 1, 1 / (len(remaining) - k))
            if w is not None:
                found[pair] = w
            elif status != "unsat":
                undecided.append((pair, status))
        by: dict[str, list[str]] = {}
        for pair, reason in undecided:
            by.setdefault(reason, []).append(self.label(pair))
        why = "; ".join(f"undecided {', '.join(pairs)}: {reason}" for reason, pairs in by.items())
        return found, [p for p, _ in undecided], why

    def run(self) -> SymbolicDiff:
        if self.checker is None:
            return SymbolicDiff("equivalent", "both sides give every trace the same outcome", complete=True)
        found, undecided, why = self._enumerate()
        complete = not why
        # Error and must-keep traces: can one take a path on which its keep probability drops?
        candidates = list(found) + undecided
        extra: list[tuple[Pair, DiffWitness]] = []
        for c, probe in enumerate(self.probes):
            todo = [p for p in candidates if self.drops(p) and not (p in found and probe.name in found[p].classes)]
            for _ in range(MAX_CLASS_WITNESSES):
                if not todo or not probe.rules:
                    break
                status, w, pair = self._find(todo, c, len(found) + len(extra) + 1)
                if status == "unsat":
                    break
                if w is None or pair is None:
                    why = why or f"{probe.name}: {status}"
                    complete = False
                    break
                extra.append((pair, w))
                todo.remove(pair)
        witnesses = list(found.items()) + extra  # in the order found (their trace ids number them)
        out = tuple(w for _, w in witnesses)
        bound = self.checker.bound
        if out:
            kinds = f"{len(found)} kind{'s' if len(found) != 1 else ''} of change"
            more = "every kind of change is listed" if complete else f"more may exist: {why}"
            return SymbolicDiff("different", f"{kinds} ({bound} spans suffice); {more}", out, complete, bound)
        if complete:
            return SymbolicDiff("equivalent", f"no trace of any shape is decided differently ({bound} spans suffice)",
                                (), True, bound)  # fmt: skip
        return SymbolicDiff("unknown", why, (), False, bound)


def diff_symbolic(
    old: SamplerConfig | RulesBasedSampler | Sampler,
    new: SamplerConfig | RulesBasedSampler | Sampler,
    probes: Sequence[Probe] = (),
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> SymbolicDiff:
    """Which traces OLD and NEW decide differently, over every possible trace (see the comment above
    :data:`MAX_DIFF_WITNESSES`), within ``timeout_ms`` for the whole search. ``probes`` (the error definition,
    must-keep classes): each witness says which it satisfies, and for each probe the search looks for a trace of
    it whose keep probability drops. A top-level sampler is its side's only choice (a catch-all). Never raises
    for rules it cannot model: the status is then unknown with the reason."""
    start = time.perf_counter()
    try:
        result = _DiffSearch(old, new, probes, timeout_ms).run()
    except _Unmodelled as exc:
        result = SymbolicDiff("unknown", str(exc))
    return dataclasses.replace(result, seconds=time.perf_counter() - start)


__all__ = [
    "DiffWitness",
    "Probe",
    "SideOutcome",
    "SymbolicDiff",
    "SymbolicReport",
    "Verdict",
    "diff_symbolic",
    "prove_symbolic",
]
