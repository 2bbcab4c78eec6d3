"""The engine-neutral evaluation plan: what every vectorized engine renders, decided once.

Pipeline::

    Refinery rules (refinery/model.py)
      -> lowering.py   per condition: where its value comes from, a predicate node per value type
      -> plan.py       which columns are read, which spans are roots, which conditions are evaluated per span and
                       which once per trace, the matching sets of Distinct nodes, every condition and rule as a
                       row expression, first-match order
      -> one Renderer per engine (polars_engine.py, duckdb_engine.py) plus that engine's I/O
      -> decision.py   finishing: rule name, keep, rate, reason per trace

Two small expression languages are rendered:

* the predicate :data:`~nectar.engine.lowering.Node` of one condition over one typed column (``Cmp``, ``InSet``...);
* :data:`Row` expressions over the columns of one row (a span, or a trace after grouping): first-present-wins
  chains of ``Fields``, nested lookups, ``is_root``, the matched flag of each rule.

A :class:`Renderer` has one abstract method per node type of both languages, so mypy rejects an engine that forgets
one (instantiating an abstract class is a type error) and :meth:`Renderer.node`/:meth:`Renderer.row` dispatch with
``assert_never``.

Every engine follows the same recipe over the plan (:class:`TracePlan`):

1. spans: the columns the rules read, ``__is_root`` and ``meta.refinery.root`` (:attr:`TracePlan.is_root`,
   :attr:`TracePlan.meta_root`), ``__marshal_ok`` when a nested lookup needs it;
2. roots (when :attr:`TracePlan.needs_root`): per trace, the LAST root span by ``arrival`` (Refinery keeps the
   root that arrives last) with the root columns renamed ``__r:<col>``, and ``__has_root``; joined per span when
   a span-level condition reads the root (:attr:`TracePlan.join_root`), else per trace after grouping;
3. the span count ``__nd`` joined per span when a span-level condition reads ``?.NUM_DESCENDANTS``
   (:attr:`TracePlan.join_nd`), else the trace's ``spans``;
4. group by trace: ``spans`` = count, and ``any()`` of each :attr:`TracePlan.span_aggs` row;
5. ``m<i>`` = :attr:`TracePlan.matched` ``[i]`` per trace; ``rule_index`` = the first ``i < decide`` that matched.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, assert_never

from nectar.corpus.layout import PARENT_ID, ValueType
from nectar.engine.lowering import (
    Cmp,
    CondPlan,
    Const,
    Distinct,
    InSet,
    NestedPath,
    Node,
    Not,
    SamplerPlan,
    StrTest,
    View,
    marshal_ok,
    needs_descendants,
    needs_root,
    visible_fields,
)
from nectar.refinery.model import META_ROOT, SIGNAL_TYPE

# Reserved column names (no corpus column starts with "__").
IS_ROOT = "__is_root"
HAS_ROOT = "__has_root"
NUM_DESC = "__nd"
META_ROOT_COL = "__meta_root"
MARSHAL_OK = "__marshal_ok"
ROOT_PREFIX_COL = "__r:"

# What a view yields; views not listed keep the column's kind.
VIEW_OUT: Mapping[View, ValueType] = {
    View.STR: ValueType.STR,
    View.ATOI: ValueType.INT,
    View.TRUNC: ValueType.INT,
    View.TOFLOAT: ValueType.FLOAT,
    View.PARSEBOOL: ValueType.BOOL,
}


def view_out(view: View, kind: ValueType) -> ValueType:
    """The value type ``view`` yields on a column of type ``kind``."""
    return VIEW_OUT.get(view, kind)


def base_column(col: str) -> str:
    """The corpus column behind a root-joined column name."""
    return col[len(ROOT_PREFIX_COL) :] if col.startswith(ROOT_PREFIX_COL) else col


# ---------------------------------------------------------------------------------------------------------------
# Row expressions


@dataclass(frozen=True, slots=True)
class Col:
    """A column of the row."""

    name: str


@dataclass(frozen=True, slots=True)
class RootOr:
    """The trace root's value of a column when the trace has a root, else the row's own (gjson on ``root.``)."""

    name: str


Ref = Col | RootOr


@dataclass(frozen=True, slots=True)
class RLit:
    """A constant; ``None`` is SQL NULL (a missing value)."""

    value: bool | None


@dataclass(frozen=True, slots=True)
class RPred:
    """A lowered predicate node over typed column ``col`` (false where the column is null)."""

    node: Node
    col: str
    kind: ValueType


@dataclass(frozen=True, slots=True)
class RPresent:
    """The column holds a value (is not null)."""

    ref: Ref


@dataclass(frozen=True, slots=True)
class RFlag:
    """A boolean column, null read as false."""

    ref: Ref


@dataclass(frozen=True, slots=True)
class RIn:
    """The column's value is one of ``values`` (false for null). ``key`` names the list (equal keys, equal lists)."""

    ref: Ref
    kind: ValueType
    key: str
    values: tuple[Any, ...] = field(compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class RFinite:
    """A float column is null or finite (Go's ``json.Marshal`` fails on NaN and infinities)."""

    col: str


@dataclass(frozen=True, slots=True)
class RCase:
    """The value of the first ``when`` that holds, else ``otherwise``."""

    whens: tuple[tuple[Row, Row], ...]
    otherwise: Row


@dataclass(frozen=True, slots=True)
class RAnd:
    items: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class ROr:
    items: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class RNot:
    item: Row


Row = RLit | RPred | RPresent | RFlag | RIn | RFinite | RCase | RAnd | ROr | RNot

T = TypeVar("T")


class Renderer(ABC, Generic[T]):
    """One engine's rendering of both expression languages: a method per node type, children rendered by the
    method itself through :meth:`node` and :meth:`row`."""

    def node(self, node: Node, col: str, kind: ValueType) -> T:
        """A predicate node over typed column ``col`` of value type ``kind``."""
        match node:
            case Const():
                return self.node_const(node, col, kind)
            case Cmp():
                return self.node_cmp(node, col, kind)
            case InSet():
                return self.node_in_set(node, col, kind)
            case StrTest():
                return self.node_str_test(node, col, kind)
            case Not():
                return self.node_not(node, col, kind)
            case Distinct():
                return self.node_distinct(node, col, kind)
            case _:
                assert_never(node)

    def row(self, row: Row) -> T:
        """A row expression."""
        match row:
            case RLit():
                return self.row_lit(row)
            case RPred():
                return self.node(row.node, row.col, row.kind)
            case RPresent():
                return self.row_present(row)
            case RFlag():
                return self.row_flag(row)
            case RIn():
                return self.row_in(row)
            case RFinite():
                return self.row_finite(row)
            case RCase():
                return self.row_case(row)
            case RAnd():
                return self.row_and(row)
            case ROr():
                return self.row_or(row)
            case RNot():
                return self.row_not(row)
            case _:
                assert_never(row)

    @abstractmethod
    def node_const(self, node: Const, col: str, kind: ValueType) -> T: ...

    @abstractmethod
    def node_cmp(self, node: Cmp, col: str, kind: ValueType) -> T: ...

    @abstractmethod
    def node_in_set(self, node: InSet, col: str, kind: ValueType) -> T: ...

    @abstractmethod
    def node_str_test(self, node: StrTest, col: str, kind: ValueType) -> T: ...

    @abstractmethod
    def node_not(self, node: Not, col: str, kind: ValueType) -> T: ...

    @abstractmethod
    def node_distinct(self, node: Distinct, col: str, kind: ValueType) -> T: ...

    @abstractmethod
    def row_lit(self, row: RLit) -> T: ...

    @abstractmethod
    def row_present(self, row: RPresent) -> T: ...

    @abstractmethod
    def row_flag(self, row: RFlag) -> T: ...

    @abstractmethod
    def row_in(self, row: RIn) -> T: ...

    @abstractmethod
    def row_finite(self, row: RFinite) -> T: ...

    @abstractmethod
    def row_case(self, row: RCase) -> T: ...

    @abstractmethod
    def row_and(self, row: RAnd) -> T: ...

    @abstractmethod
    def row_or(self, row: ROr) -> T: ...

    @abstractmethod
    def row_not(self, row: RNot) -> T: ...


def _and(items: Iterable[Row]) -> Row:
    got = tuple(items)
    return got[0] if len(got) == 1 else RAnd(got)


def _or(items: Iterable[Row]) -> Row:
    got = tuple(items)
    return got[0] if len(got) == 1 else ROr(got)


# ---------------------------------------------------------------------------------------------------------------
# Columns a plan reads


def engine_fields(field_columns: Mapping[str, Mapping[ValueType, str]]) -> dict[str, dict[ValueType, str]]:
    """The fields conditions see, with ``meta.refinery.root`` in the engine-computed column ``__meta_root``."""
    fields = visible_fields(field_columns)
    fields[META_ROOT] = {ValueType.BOOL: META_ROOT_COL}
    return fields


class PlanColumns:
    """The columns one sampler plan reads (:meth:`collect_needs`): per span, on the root, and those whose distinct
    values must be read before the query (Distinct nodes, nested lookups, JSON marshal checks)."""

    def __init__(self, plan: SamplerPlan, fields: dict[str, dict[ValueType, str]]) -> None:
        self.plan = plan
        self.fields = fields
        self.base_cols: set[str] = set()
        self.root_cols: set[str] = set()
        self.distinct: dict[tuple[str, str], tuple[Distinct, ValueType]] = {}
        # CheckNestedFields: (cond key/name, column) -> (path, field, type) per candidate field column; the float
        # and JSON columns that decide whether json.Marshal of a span succeeds.
        self.nested_cols: dict[tuple[str, str], tuple[NestedPath, str, ValueType]] = {}
        self.marshal_float: list[str] = []
        self.marshal_json: list[str] = []
        self.need_marshal = False
        self._collect_needs()

    def value_cols(self, fname: str) -> dict[ValueType, str]:
        return self.fields.get(fname, {})

    def _collect_needs(self) -> None:
        for rule in self.plan.rules:
            for cp in rule.conds:
                if cp.const is not None or cp.has_root is not None:
                    continue
                if cp.num_descendants:
                    self._walk(cp.preds[ValueType.INT], NUM_DESC, ValueType.INT)
                    continue
                kinds: list[tuple[ValueType, str]] = []
                for src in cp.sources:
                    for t, col in self.value_cols(src.field).items():
                        (self.root_cols if src.root else self.base_cols).add(col)
                        kinds.append((t, col))
                for np in cp.nested:
                    for fname in np.candidates(self.fields):
                        for t, col in self.value_cols(fname).items():
                            self.base_cols.add(col)
                            if cp.nested_on_root:
                                self.root_cols.add(col)
                            if t is not ValueType.NULL:
                                self.nested_cols[(cp.key + "/" + np.name, col)] = (np, fname, t)
                if cp.nested:
                    self._need_marshal(cp.nested_on_root)
                for t, col in kinds:
                    if t in cp.preds:
                        self._walk(cp.preds[t], col, t)

    def _need_marshal(self, on_root: bool) -> None:
        self.need_marshal = True
        cols = [(t, c) for f, by in self.fields.items() if f != META_ROOT for t, c in by.items()]
        self.marshal_float = sorted(c for t, c in cols if t is ValueType.FLOAT)
        self.marshal_json = sorted(c for t, c in cols if t is ValueType.JSON)
        self.base_cols.update(self.marshal_float, self.marshal_json)
        if on_root:
            self.root_cols.add(MARSHAL_OK)

    def _walk(self, node: Node, col: str, kind: ValueType) -> None:
        if isinstance(node, Distinct):
            self.distinct[(node.key, col)] = (node, kind)
        elif isinstance(node, Not):
            self._walk(node.inner, col, kind)

    def distinct_columns(self) -> list[str]:
        """Columns whose distinct non-null values the engine must read (``__nd``: the distinct span counts)."""
        cols = {c for (_, c) in self.distinct} | {c for (_, c) in self.nested_cols} | set(self.marshal_json)
        return sorted(cols)


# ---------------------------------------------------------------------------------------------------------------
# The trace plan


@dataclass(frozen=True, slots=True)
class TracePlan:
    """Everything an engine needs to decide every trace with one sampler (see the module docstring's recipe)."""

    sampler: SamplerPlan
    span_columns: tuple[str, ...]  # corpus columns read per span (besides trace_id, arrival, parent_id)
    signal_column: str | None  # the str column of meta.signal_type, if the corpus has one
    is_root: Row
    meta_root: Row  # nullable: null for log events
    marshal_ok: Row | None  # set when a nested lookup needs "json.Marshal of the span succeeds"
    root_columns: tuple[str, ...]  # taken from the last root; named ROOT_PREFIX_COL + col
    needs_root: bool
    join_root: bool  # a span-level condition reads the root: join it per span
    needs_descendants: bool
    join_nd: bool  # a span-level condition reads ?.NUM_DESCENDANTS: join the span count per span
    span_aggs: tuple[tuple[str, Row], ...]  # per trace: name = any() of the row over the trace's spans
    matched: tuple[Row, ...]  # per rule: whether it matches, over the per-trace row
    decide: int  # only rules [0, decide) decide; later ones are probes
    sets: Mapping[tuple[str, str], list[Any]]  # (Distinct key, base column) -> matching values
    zeros: Mapping[str, tuple[bool, bool]]  # Distinct key on a float column -> (fn(-0.0), fn(0.0))


def matching_sets(cols: PlanColumns, values: Mapping[str, list[Any]]) -> dict[tuple[str, str], list[Any]]:
    """For each Distinct node and column: the values (of the column's distinct values) for which it holds."""
    out: dict[tuple[str, str], list[Any]] = {}
    for (key, col), (node, kind) in cols.distinct.items():
        domain = [True, False] if kind is ValueType.BOOL else values.get(col, [])  # incl. computed meta.refinery.root
        out[(key, col)] = [v for v in domain if node.fn(v)]
    return out


class _Rows:
    """Builds the row expressions of conditions, given the distinct values read from the corpus."""

    def __init__(self, cols: PlanColumns, values: Mapping[str, list[Any]]) -> None:
        self.cols = cols
        self.values = values

    def condition(self, cp: CondPlan) -> Row:
        """One condition on one span (or on the per-trace row, for trace-level conditions): ``Fields``
        first-present-wins over each name's typed columns, then the nested lookups, else the missing value."""
        if cp.const is not None:
            return RLit(cp.const)
        if cp.has_root is not None:
            flag = RFlag(Col(HAS_ROOT))
            return flag if cp.has_root else RNot(flag)
        if cp.num_descendants:
            return RPred(cp.preds[ValueType.INT], NUM_DESC, ValueType.INT)
        whens: list[tuple[Row, Row]] = []
        for src in cp.sources:
            cols = self.cols.value_cols(src.field)
            if not cols:
                continue
            pre = ROOT_PREFIX_COL if src.root else ""
            inner: list[tuple[Row, Row]] = []
            for t, col in cols.items():
                name = pre + col
                if t is ValueType.NULL:
                    inner.append((RFlag(Col(name)), RLit(cp.null_value)))
                else:
                    inner.append((RPresent(Col(name)), RPred(cp.preds[t], name, t)))
            whens.append((_or(w for w, _ in inner), RCase(tuple(inner), RLit(False))))
        whens += self._nested(cp)
        if not whens:
            return RLit(cp.missing_value)
        return RCase(tuple(whens), RLit(cp.missing_value))

    def _nested(self, cp: CondPlan) -> list[tuple[Row, Row]]:
        """(path found, condition matches) per nested name, on the span gjson reads (the root if the last name
        was root.-prefixed and there is a root), guarded by json.Marshal succeeding on that span."""

        def ref(col: str) -> Ref:
            return RootOr(col) if cp.nested_on_root else Col(col)

        out: list[tuple[Row, Row]] = []
        for np in cp.nested:
            found_whens: list[tuple[Row, Row]] = []
            match_whens: list[tuple[Row, Row]] = []
            for fname in np.candidates(self.cols.fields):  # the first candidate present on the span is read
                f_in: list[tuple[Row, Row]] = []
                m_in: list[tuple[Row, Row]] = []
                for t, col in self.cols.value_cols(fname).items():
                    if t is ValueType.NULL:
                        present: Row = RFlag(ref(col))
                        f_b, m_b = np.found(fname, None)
                        f_e: Row = RLit(f_b)
                        m_e: Row = RLit(m_b)
                    else:
                        present = RPresent(ref(col))
                        key = f"{cp.key}/{np.name}"
                        f_vals, m_vals = self._nested_values(key, col, np, fname, t)
                        f_e = RIn(ref(col), t, f"{key}/{col}/found", tuple(f_vals))
                        m_e = RIn(ref(col), t, f"{key}/{col}/match", tuple(m_vals))
                    f_in.append((present, f_e))
                    m_in.append((present, m_e))
                if not f_in:
                    continue
                exists = _or(p for p, _ in f_in)
                found_whens.append((exists, RCase(tuple(f_in), RLit(False))))
                match_whens.append((exists, RCase(tuple(m_in), RLit(False))))
            if found_whens:
                found = RAnd((RFlag(ref(MARSHAL_OK)), RCase(tuple(found_whens), RLit(False))))
                out.append((found, RCase(tuple(match_whens), RLit(False))))
        return out

    def _nested_values(
        self, key: str, col: str, np: NestedPath, fname: str, kind: ValueType
    ) -> tuple[list[Any], list[Any]]:
        """The column's values for which the nested path exists, and those for which the condition matches."""
        domain: list[Any] = [True, False] if kind is ValueType.BOOL else self.values.get(col, [])
        hits = [(v, np.found(fname, json.loads(v) if kind is ValueType.JSON else v)) for v in domain]
        return [v for v, (e, _) in hits if e], [v for v, (_, m) in hits if m]

    def marshal_ok(self) -> Row:
        """json.Marshal of the span succeeds: no NaN/Inf float anywhere (Refinery then skips nested lookups)."""
        parts: list[Row] = [RFinite(c) for c in self.cols.marshal_float]
        for c in self.cols.marshal_json:
            bad = tuple(v for v in self.values.get(c, []) if not marshal_ok(json.loads(v)))
            parts.append(RNot(RIn(Col(c), ValueType.JSON, f"{c}/unmarshalable", bad)))
        return _and(parts) if parts else RLit(True)


def trace_level(cp: CondPlan) -> bool:
    """A condition whose value is the same on every span of a trace: ``?.NUM_DESCENDANTS``, or only ``root.``
    names and no nested lookup (Refinery's ``checkedOnlyRoot``)."""
    if cp.const is not None or cp.has_root is not None:
        return False
    return cp.num_descendants or (bool(cp.sources) and all(s.root for s in cp.sources) and not cp.nested)


def root_rows(signal_column: str | None) -> tuple[Row, Row]:
    """(is a root, ``meta.refinery.root``): Refinery takes a span for a root unless a parent-id field holds a
    non-empty string; log events are never roots, and carry no ``meta.refinery.root`` (null)."""
    is_log: Row = (
        RPred(Cmp(View.RAW, "eq", "log"), signal_column, ValueType.STR) if signal_column is not None else RLit(False)
    )
    no_parent = ROr((RNot(RPresent(Col(PARENT_ID))), RPred(Cmp(View.RAW, "eq", ""), PARENT_ID, ValueType.STR)))
    is_root = RAnd((no_parent, RNot(is_log)))
    return is_root, RCase(((is_log, RLit(None)),), is_root)


def build_trace_plan(
    plan: SamplerPlan, cols: PlanColumns, values: Mapping[str, list[Any]], decide: int | None = None
) -> TracePlan:
    """The whole plan of a rules-based sampler, given the distinct values of :meth:`PlanColumns.distinct_columns`
    read from the corpus."""
    rows = _Rows(cols, values)
    signal = cols.fields.get(SIGNAL_TYPE, {}).get(ValueType.STR)
    is_root, meta_root = root_rows(signal)
    # Trace-scope conditions that read only the root (or the span count) give the same answer on every span:
    # evaluated once per trace after grouping; the root (span count) is joined per span only when a span-level
    # condition reads it.
    span_level = [cp for r in plan.rules if r.scope == "span" for cp in r.conds]
    span_level += [cp for r in plan.rules if r.scope == "trace" for cp in r.conds if not trace_level(cp)]
    join_root = any(any(s.root for s in cp.sources) or cp.nested_on_root for cp in span_level)
    join_nd = any(cp.num_descendants for cp in span_level)

    span_aggs: list[tuple[str, Row]] = []
    matched: list[Row] = []
    for rule in plan.rules:
        if rule.scope == "invalid" or not rule.conds:
            matched.append(RLit(True))
        elif rule.scope == "span":  # all conditions on one span, for any span
            span_aggs.append((f"s{rule.index}", _and(rows.condition(cp) for cp in rule.conds)))
            matched.append(RFlag(Col(f"s{rule.index}")))
        else:  # trace scope: each condition on any span
            parts: list[Row] = []
            for cp in rule.conds:
                if cp.has_root is not None or trace_level(cp):
                    parts.append(rows.condition(cp))  # on the per-trace row
                else:
                    span_aggs.append((cp.key, rows.condition(cp)))
                    parts.append(RFlag(Col(cp.key)))
            matched.append(_and(parts))
    wanted = sorted((cols.base_cols | cols.root_cols) - {META_ROOT_COL, MARSHAL_OK})
    zeros = {
        node.key: (node.fn(-0.0), node.fn(0.0)) for node, kind in cols.distinct.values() if kind is ValueType.FLOAT
    }
    return TracePlan(
        sampler=plan,
        span_columns=tuple(wanted),
        signal_column=signal,
        is_root=is_root,
        meta_root=meta_root,
        marshal_ok=rows.marshal_ok() if cols.need_marshal else None,
        root_columns=tuple(sorted(cols.root_cols)),
        needs_root=needs_root(plan),
        join_root=join_root,
        needs_descendants=needs_descendants(plan),
        join_nd=join_nd,
        span_aggs=tuple(span_aggs),
        matched=tuple(matched),
        decide=len(matched) if decide is None else decide,
        sets=matching_sets(cols, values),
        zeros=zeros,
    )


__all__ = [
    "HAS_ROOT",
    "IS_ROOT",
    "MARSHAL_OK",
    "META_ROOT_COL",
    "NUM_DESC",
    "ROOT_PREFIX_COL",
    "Col",
    "PlanColumns",
    "RAnd",
    "RCase",
    "RFinite",
    "RFlag",
    "RIn",
    "RLit",
    "RNot",
    "ROr",
    "RPred",
    "RPresent",
    "Renderer",
    "RootOr",
    "Row",
    "TracePlan",
    "base_column",
    "build_trace_plan",
    "engine_fields",
    "matching_sets",
    "trace_level",
    "view_out",
]
