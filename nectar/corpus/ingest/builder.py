"""Column-wise accumulation of spans into part-file tables, and the report of records that were skipped.

Every format reader ends in :class:`SpanSink`: it appends each span's core values and fields straight into
per-(field, Python type) column lists (no per-span dicts of dicts), and turns them into one Arrow table per batch
with the same physical names and column map as :func:`nectar.corpus.layout.spans_to_table` (one column per
field and value type, ``<field>::null`` marks for keys present with null, nested values as compact JSON).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from nectar.corpus.layout import (
    ARRIVAL,
    ARROW_TYPE,
    PARENT_ID,
    SPAN_ID,
    TIMESTAMP,
    TRACE_ID,
    TYPE_ORDER,
    ValueType,
    physical_name,
)
from nectar.errors import NectarError, Span
from nectar.refinery.gostr import INT64_MAX, INT64_MIN
from nectar.refinery.ids import DEFAULT_ID_FIELDS, IdFields, consume_ids

BATCH_SPANS = 100_000
# Where the ``span_id`` core column comes from (the first non-empty string). Refinery knows no span id: these keys
# stay ordinary fields that rules can see (SEMANTICS.md 2.1).
SPAN_ID_KEYS = ("trace.span_id", "spanId")


class _Null:
    """A field present with a null value, inside a column (where None means the row lacks the field)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL"


NULL = _Null()
MAX_SKIPPED_DETAILS = 1_000  # skipped records listed one by one; the rest are only counted by reason

_PY_TYPE: dict[type, ValueType] = {
    str: ValueType.STR,
    int: ValueType.INT,
    float: ValueType.FLOAT,
    bool: ValueType.BOOL,
    dict: ValueType.JSON,
    list: ValueType.JSON,
    _Null: ValueType.NULL,
}


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """One input record that was not ingested: where it is and why."""

    file: str
    line: int | None  # 1-based line, when the format is line-oriented
    reason: str
    where: str | None = None  # a path inside a whole-document format, e.g. ``data[0].spans[3]``

    def location(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}"
        if self.where:
            return f"{self.file}:{self.where}"
        return self.file

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "where": self.where, "reason": self.reason}


class RecordError(Exception):
    """A malformed record inside a reader: becomes a :class:`SkippedRecord` (or a failure under ``--strict``)."""

    def __init__(self, reason: str, column: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.column = column


@dataclass(slots=True)
class Skips:
    """Skipped records of one ingest run: counted by reason, the first :data:`MAX_SKIPPED_DETAILS` kept whole."""

    strict: bool = False
    count: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    records: list[SkippedRecord] = field(default_factory=list)

    def add(
        self,
        file: str,
        line: int | None,
        reason: str,
        *,
        where: str | None = None,
        column: int | None = None,
        text: str | None = None,
    ) -> None:
        """Record a skipped record; under ``strict`` raise a :class:`NectarError` pointing at it instead."""
        if self.strict:
            span = None
            if line is not None:
                source = None
                if text is not None:
                    source = "\n" * (line - 1) + text[:2000]
                span = Span(file, line, column or 1, 1, source)
            msg = reason if where is None else f"{where}: {reason}"
            raise NectarError(
                f"malformed record: {msg}",
                span=span,
                hint="without --strict, malformed records are reported and skipped (the rest is kept)",
            )
        self.count += 1
        self.by_reason[_reason_kind(reason)] += 1
        if len(self.records) < MAX_SKIPPED_DETAILS:
            self.records.append(SkippedRecord(file, line, reason, where))


def _reason_kind(reason: str) -> str:
    """The reason without its particulars (``invalid JSON: Expecting ',' ...`` -> ``invalid JSON``)."""
    return reason.split(":", 1)[0]


def take_ids(fields: dict[str, Any], ids: IdFields) -> tuple[str, str | None, str | None]:
    """The core ids of one event as Refinery receives it: ``(trace id, span id, parent id)``.

    The keys Refinery consumes (:func:`nectar.refinery.ids.consume_ids`) are removed from ``fields``: rules cannot
    see them. Everything else stays, ``trace.span_id`` and a ``null`` parent id included. Raises
    :class:`RecordError` when no trace id results (Refinery would pass the event on unsampled, in no trace).
    """
    c = consume_ids(fields, ids)
    trace = fields[c.trace_key] if c.trace_key is not None else ""
    if not trace:
        present = [k for k in ids.trace if k in fields and k not in c.keys]
        raise RecordError(f"trace id not a string: {present[0]!r}" if present else "missing trace id")
    parent = fields[c.parent_key] if c.parent_key is not None else None
    span = None
    for k in SPAN_ID_KEYS:
        v = fields.get(k)
        if v.__class__ is str and v:
            span = v
            break
    for k in c.keys:
        del fields[k]
    return trace, span, parent


class SpanSink:
    """Accumulates spans column by column; :meth:`flush` gives one part-file table and its column map.

    ``ids`` names the fields Refinery takes trace and parent ids from (``nectar.toml`` ``[refinery]``); readers
    turn events into core ids with :func:`take_ids` and it.
    """

    __slots__ = (
        "batch_spans",
        "cols",
        "ids",
        "n",
        "parents",
        "real_spans",
        "span_events",
        "span_ids",
        "timestamps",
        "traces",
    )

    def __init__(self, batch_spans: int = BATCH_SPANS, ids: IdFields = DEFAULT_ID_FIELDS) -> None:
        self.batch_spans = batch_spans
        self.ids = ids
        self.n = 0
        self.traces: list[str] = []
        self.span_ids: list[str | None] = []
        self.parents: list[str | None] = []
        self.timestamps: list[int | None] = []
        self.cols: dict[tuple[str, type], list[Any]] = {}
        self.real_spans = 0  # spans proper
        self.span_events = 0  # rows for span events and links (Refinery: extra events with meta.annotation_type)

    @property
    def full(self) -> bool:
        return self.n >= self.batch_spans

    def add(
        self,
        trace_id: str,
        span_id: str | None,
        parent_id: str | None,
        ts_us: int | None,
        fields: dict[str, Any],
        annotation: bool = False,
    ) -> None:
        """Append one span (or span event/link row). ``fields`` maps field name to a decoded Python value."""
        n = self.n
        cols = self.cols
        for k, v in fields.items():
            if v is None:
                v = NULL  # a key present with null; None in a column means absent
            key = (k, v.__class__)
            col = cols.get(key)
            if col is None:
                cols[key] = col = [None] * n
            elif len(col) != n:
                col.extend([None] * (n - len(col)))
            col.append(v)
        self.traces.append(trace_id)
        self.span_ids.append(span_id)
        self.parents.append(parent_id or None)
        self.timestamps.append(ts_us)
        self.n = n + 1
        if annotation:
            self.span_events += 1
        else:
            self.real_spans += 1

    def flush(self) -> tuple[pa.Table, dict[str, list[str]]]:
        """The accumulated spans as a table (``arrival`` left for the store to number) and its column map."""
        n = self.n
        by_field: dict[str, dict[ValueType, list[Any]]] = {}
        for (fname, pytype), col in self.cols.items():
            if len(col) != n:
                col.extend([None] * (n - len(col)))
            vt = _PY_TYPE.get(pytype)
            if vt is None:
                raise TypeError(f"unsupported value type {pytype.__name__} for field {fname!r}")
            slots = by_field.setdefault(fname, {})
            if vt is ValueType.INT:
                col, overflow = _split_big_ints(col)
                if overflow is not None:
                    _merge_into(slots, ValueType.FLOAT, overflow)
                    if all(v is None for v in col):  # every int was beyond int64: no int column at all
                        continue
            _merge_into(slots, vt, col)
        columns: dict[str, pa.Array] = {
            TRACE_ID: pa.array(self.traces, pa.string()),
            SPAN_ID: pa.array(self.span_ids, pa.string()),
            PARENT_ID: pa.array(self.parents, pa.string()),
            TIMESTAMP: pa.array(self.timestamps, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            ARRIVAL: pa.array(range(n), pa.int64()),  # renumbered by the store to continue the corpus
        }
        colmap: dict[str, list[str]] = {}
        for fname in sorted(by_field):
            slots = by_field[fname]
            single = len([t for t in slots if t is not ValueType.NULL]) == 1
            for t in TYPE_ORDER:
                if t not in slots:
                    continue
                col = slots[t]
                if t is ValueType.NULL:
                    col = [None if v is None else True for v in col]
                elif t is ValueType.JSON:
                    col = [None if v is None else json.dumps(v, separators=(",", ":"), ensure_ascii=False) for v in col]
                elif t is ValueType.FLOAT:
                    col = [None if v is None else float(v) for v in col] if _has_int(col) else col
                name = physical_name(fname, t, single)
                columns[name] = pa.array(col, ARROW_TYPE[t])
                colmap[name] = [fname, t.value]
        table = pa.table(columns)
        self.n = 0
        self.traces, self.span_ids, self.parents, self.timestamps = [], [], [], []
        self.cols = {}
        return table, colmap


def _merge_into(slots: dict[ValueType, list[Any]], vt: ValueType, col: list[Any]) -> None:
    have = slots.get(vt)
    if have is None:
        slots[vt] = col
        return
    # Two Python types for one value type (dict and list are both JSON): take whichever is present.
    slots[vt] = [a if a is not None else b for a, b in zip(have, col, strict=True)]


def _split_big_ints(col: list[Any]) -> tuple[list[Any], list[Any] | None]:
    """Ints outside int64 become floats (as :func:`nectar.corpus.layout.value_type` classifies them)."""
    try:
        pa.array(col, pa.int64())
        return col, None
    except (OverflowError, pa.ArrowInvalid):
        ints = [v if v is None or INT64_MIN <= v <= INT64_MAX else None for v in col]
        floats = [None if v is None or INT64_MIN <= v <= INT64_MAX else float(v) for v in col]
        return ints, floats


def _has_int(col: list[Any]) -> bool:
    return any(v.__class__ is int for v in col)
