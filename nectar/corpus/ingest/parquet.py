"""Parquet: a Nectar corpus part file, or any flat span table with a trace id column.

Read one row group batch at a time and converted column-wise (no per-row Python). A Nectar part (``trace_id`` and
``arrival`` columns) keeps its core columns ``trace_id``/``span_id``/``parent_id``/``timestamp`` and its fields,
and its ``arrival`` is renumbered. Any other table is read as flat events, one per row, its columns in key order
and a null meaning the key is absent: Refinery's id rule picks the trace and parent ids
(:func:`nectar.refinery.ids.consume_ids`) from the text columns named in ``[refinery] trace_id_fields``/
``parent_id_fields`` (default ``trace.trace_id``/``traceId``, ``trace.parent_id``/``parentId``), and hides only
what it consumes. When a table has no such column, ``trace_id``/``traceID`` (and ``parent_id``/``parentSpanId``)
are taken whole as the id instead. The span id comes from ``span_id``/``trace.span_id``/``spanId``/``spanID``;
``trace.span_id`` and ``spanId`` stay fields rules see, as Refinery never consumes them. Binary ids are read as
hex. ``timestamp`` is a timestamp column, epoch numbers, or RFC 3339 text. Other columns are fields:
``<field>::<type>`` columns (Nectar's own) keep their stated type, ``<field>::null`` marks keys present with null,
and plain columns take the type of their Arrow type (integers -> int, floats -> float, bool, strings -> str,
nested types -> JSON text; nulls mean "absent").
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nectar.corpus.ingest.builder import RecordError, Skips, SpanSink
from nectar.corpus.ingest.common import epoch_to_us, timestamp_to_us
from nectar.corpus.ingest.sources import Source
from nectar.corpus.layout import (
    ARRIVAL,
    ARROW_TYPE,
    PARENT_ID,
    SPAN_ID,
    TIMESTAMP,
    TRACE_ID,
    TYPE_ORDER,
    TYPE_SEP,
    ValueType,
    physical_name,
)
from nectar.corpus.store import COLUMNS_METADATA_KEY
from nectar.refinery.ids import IdFields, consume_ids

# Id columns of tables not written for Refinery, taken whole when no column has a Refinery id field's name.
TRACE_COLUMNS = ("trace_id", "traceID")
PARENT_COLUMNS = ("parent_id", "parentSpanId")
SPAN_COLUMNS = ("span_id", "trace.span_id", "spanId", "spanID")
_SPAN_ALIASES = ("span_id", "spanID")  # not fields; trace.span_id and spanId are
_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class _IdPlan:
    """Where one table's core ids come from."""

    refinery: tuple[str, ...]  # text columns named as Refinery id fields, in column (key) order
    trace: str | None  # else a whole column as the trace id
    parent: str | None  # else a whole column as the parent id
    span: str | None
    consumed: frozenset[str]  # columns that are not fields at all


def _id_plan(schema: pa.Schema, ids: IdFields) -> _IdPlan | None:
    names = schema.names
    if TRACE_ID in names and ARRIVAL in names:  # a Nectar part: its fields are what rules saw
        pcol = PARENT_ID if PARENT_ID in names else None
        scol = SPAN_ID if SPAN_ID in names else None
        core = {TRACE_ID, ARRIVAL, "timestamp", *(c for c in (pcol, scol) if c)}
        return _IdPlan((), TRACE_ID, pcol, scol, frozenset(core))
    named = {*ids.trace, *ids.parent}
    refinery = tuple(c for c in names if c in named and _is_text(schema.field(c).type))
    tcol = None if any(c in ids.trace for c in refinery) else next((c for c in TRACE_COLUMNS if c in names), None)
    if tcol is None and not any(c in ids.trace for c in refinery):
        return None
    pcol = None if any(c in ids.parent for c in refinery) else next((c for c in PARENT_COLUMNS if c in names), None)
    scol = next((c for c in SPAN_COLUMNS if c in names), None)
    consumed = {c for c in (tcol, pcol, "timestamp") if c}
    if scol in _SPAN_ALIASES:
        consumed.add(scol)
    return _IdPlan(refinery, tcol, pcol, scol, frozenset(consumed))


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
    )


def read(src: Source, sink: SpanSink, skips: Skips) -> Iterator[Any]:
    """Yield ready ``(table, column map)`` batches, one per Parquet record batch."""
    path = src.path
    tmp: Path | None = None
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    try:
        if gz:
            fd, name = tempfile.mkstemp(suffix=".parquet")
            tmp = Path(name)
            with gzip.open(path, "rb") as zin, open(fd, "wb") as spool:
                shutil.copyfileobj(zin, spool)
            path = tmp
        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowException, OSError, EOFError) as exc:
            skips.add(src.display, None, f"invalid Parquet: {exc}")
            return
        plan = _id_plan(pf.schema_arrow, sink.ids)
        if plan is None:
            wanted = " or ".join((*sink.ids.trace, *TRACE_COLUMNS))
            skips.add(src.display, None, f"missing trace id: no text column named {wanted}")
            return
        typed = _column_types(pf)
        row0 = 0
        try:
            for batch in pf.iter_batches(batch_size=sink.batch_spans):
                table = pa.Table.from_batches([batch])
                out = _convert(table, plan, sink.ids, typed, src.display, row0, skips)
                row0 += batch.num_rows
                if out is None:
                    continue
                annotations = 0
                if "meta.annotation_type" in out[0].column_names:
                    annotations = out[0].num_rows - out[0].column("meta.annotation_type").null_count
                sink.span_events += annotations
                sink.real_spans += out[0].num_rows - annotations
                yield out
        except (pa.ArrowException, OSError, EOFError) as exc:
            skips.add(src.display, None, f"invalid Parquet: {exc} (rows before row {row0 + 1} are kept)")
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _refinery_ids(
    table: pa.Table, plan: _IdPlan, ids: IdFields
) -> tuple[pa.Array | None, pa.Array | None, dict[str, pa.Array]]:
    """Refinery's id rule on every row: (trace ids, parent ids, per id column the rows where it is consumed).

    Which keys Refinery consumes depends only on which id columns a row has and whether each is empty, so each
    distinct pattern is put once to :func:`~nectar.refinery.ids.consume_ids` (at most 3^k of them for k id
    columns) and the answer spread over its rows.
    """
    n = table.num_rows
    cols = [_as_string(table.column(c)) for c in plan.refinery]
    codes = np.zeros(n, dtype=np.int64)
    for i, arr in enumerate(cols):
        present = pc.is_valid(arr).to_numpy(zero_copy_only=False)
        filled = pc.fill_null(pc.not_equal(arr, ""), False).to_numpy(zero_copy_only=False)
        codes += np.where(present, np.where(filled, 2, 1), 0) * 3**i
    trace_from = np.full(n, -1, dtype=np.int64)
    parent_from = np.full(n, -1, dtype=np.int64)
    hidden = {c: np.zeros(n, dtype=bool) for c in plan.refinery}
    for code in np.unique(codes).tolist():
        rows = codes == code
        event = {}
        for i, c in enumerate(plan.refinery):
            state = code // 3**i % 3
            if state:
                event[c] = "x" if state == 2 else ""
        consumed = consume_ids(event, ids)
        if consumed.trace_key is not None:
            trace_from[rows] = plan.refinery.index(consumed.trace_key)
        if consumed.parent_key is not None:
            parent_from[rows] = plan.refinery.index(consumed.parent_key)
        for c in consumed.keys:
            hidden[c][rows] = True

    def pick(source: np.ndarray) -> pa.Array | None:
        if not (source >= 0).any():
            return None
        out = pa.nulls(n, pa.string())
        for i, arr in enumerate(cols):
            out = pc.if_else(pa.array(source == i), arr, out)
        return out

    return pick(trace_from), pick(parent_from), {c: pa.array(m) for c, m in hidden.items()}


def _convert(
    table: pa.Table,
    plan: _IdPlan,
    ids: IdFields,
    typed: dict[str, tuple[str, ValueType]],
    display: str,
    row0: int,
    skips: Skips,
) -> tuple[pa.Table, dict[str, list[str]]] | None:
    n = table.num_rows
    trace, parent, hidden = _refinery_ids(table, plan, ids) if plan.refinery else (None, None, {})
    if plan.trace is not None:
        trace = _as_string(table.column(plan.trace))
    if trace is None:
        trace = pa.nulls(n, pa.string())
    if plan.parent is not None:
        parent = _as_string(table.column(plan.parent))
    if parent is None:
        parent = pa.nulls(n, pa.string())
    span = _as_string(table.column(plan.span)) if plan.span else pa.nulls(n, pa.string())
    for c, mask in hidden.items():  # what Refinery consumes is not a field; the rest of the column is
        col = table.column(c).combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        table = table.set_column(table.column_names.index(c), c, pc.if_else(mask, pa.scalar(None, col.type), col))
    valid = pc.and_(pc.is_valid(trace), pc.not_equal(trace, ""))
    valid = pc.fill_null(valid, False)
    bad = len(trace) - pc.sum(valid).as_py() if len(trace) else 0
    if bad:
        for i, ok in enumerate(valid.to_pylist()):
            if not ok:
                skips.add(display, None, "missing trace id", where=f"row {row0 + i + 1}")
        table, trace, parent, span = table.filter(valid), trace.filter(valid), parent.filter(valid), span.filter(valid)
    n = table.num_rows
    if n == 0:
        return None
    span = pc.if_else(pc.equal(span, ""), pa.scalar(None, pa.string()), span)
    parent = pc.if_else(pc.equal(parent, ""), pa.scalar(None, pa.string()), parent)
    ts = _timestamps(table.column("timestamp")) if "timestamp" in table.column_names else pa.nulls(n, _TS)
    columns: dict[str, Any] = {
        TRACE_ID: trace,
        SPAN_ID: span,
        PARENT_ID: parent,
        TIMESTAMP: ts,
        ARRIVAL: pa.array(range(n), pa.int64()),
    }
    by_field: dict[str, dict[ValueType, Any]] = {}
    for name in table.column_names:
        if name in plan.consumed:
            continue
        col = table.column(name)
        fname, vt = typed[name] if name in typed else _field_and_type(name, col.type)
        if vt is None:
            continue
        arr = _as_type(col, vt)
        if arr.null_count == len(arr):
            continue
        slots = by_field.setdefault(fname, {})
        slots[vt] = arr if vt not in slots else pc.coalesce(slots[vt], arr)
    colmap: dict[str, list[str]] = {}
    for fname in sorted(by_field):
        slots = by_field[fname]
        single = len([t for t in slots if t is not ValueType.NULL]) == 1
        for t in TYPE_ORDER:
            if t in slots:
                phys = physical_name(fname, t, single)
                columns[phys] = slots[t]
                colmap[phys] = [fname, t.value]
    return pa.table(columns), colmap


def _column_types(pf: pq.ParquetFile) -> dict[str, tuple[str, ValueType]]:
    """The column map a Nectar part file carries in its metadata (see :mod:`nectar.corpus.store`), if any."""
    meta = pf.schema_arrow.metadata or {}
    raw = meta.get(COLUMNS_METADATA_KEY)
    if not raw:
        return {}
    try:
        return {col: (f, ValueType(t)) for col, (f, t) in json.loads(raw).items()}
    except (ValueError, TypeError):
        return {}


def _field_and_type(name: str, atype: pa.DataType) -> tuple[str, ValueType | None]:
    if TYPE_SEP in name:
        fname, _, t = name.rpartition(TYPE_SEP)
        if t in {v.value for v in ValueType}:
            return fname, ValueType(t)
    if pa.types.is_dictionary(atype):
        atype = atype.value_type
    if pa.types.is_boolean(atype):
        return name, ValueType.BOOL
    if pa.types.is_integer(atype):
        return name, ValueType.INT
    if pa.types.is_floating(atype) or pa.types.is_decimal(atype):
        return name, ValueType.FLOAT
    if pa.types.is_string(atype) or pa.types.is_large_string(atype) or pa.types.is_string_view(atype):
        return name, ValueType.STR
    if pa.types.is_null(atype):
        return name, None
    if pa.types.is_nested(atype):
        return name, ValueType.JSON
    return name, ValueType.STR  # timestamps, dates, binary...: as text


def _as_type(col: pa.ChunkedArray, vt: ValueType) -> pa.Array:
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    target = ARROW_TYPE[vt]
    if vt is ValueType.JSON and pa.types.is_nested(col.type):
        text = [
            None if v is None else json.dumps(v, separators=(",", ":"), ensure_ascii=False) for v in col.to_pylist()
        ]
        return pa.array(text, pa.string())
    if vt is ValueType.NULL:
        return pc.if_else(pc.fill_null(col.cast(pa.bool_()), False), True, pa.scalar(None, pa.bool_()))
    try:
        return col.cast(target).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if vt is ValueType.INT:  # uint64 beyond int64: as float, the way value_type() classifies big ints
            return col.cast(pa.float64()).combine_chunks()
        return pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.string())


def _as_string(col: pa.ChunkedArray) -> pa.Array:
    if pa.types.is_binary(col.type) or pa.types.is_fixed_size_binary(col.type):
        return pa.array([None if v is None else v.hex() for v in col.to_pylist()], pa.string())
    return col.cast(pa.string()).combine_chunks()


def _timestamps(col: pa.ChunkedArray) -> pa.Array:
    t = col.type
    if pa.types.is_timestamp(t):
        if t.tz is None:
            col = col.cast(pa.timestamp(t.unit)).cast(pa.timestamp(t.unit, tz="UTC"))
        return col.cast(_TS, safe=False).combine_chunks()
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        out_us: list[int | None] = []
        for v in col.to_pylist():
            try:
                out_us.append(None if v is None else epoch_to_us(v))
            except RecordError:
                out_us.append(None)
        return pa.array(out_us, pa.int64()).cast(_TS)
    out: list[int | None] = []
    for v in col.to_pylist():
        try:
            out.append(timestamp_to_us(v))
        except RecordError:
            out.append(None)
    return pa.array(out, pa.int64()).cast(_TS)
