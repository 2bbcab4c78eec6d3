"""Parquet: a Nectar corpus part file, or any flat span table with a trace id column.

Read one row group batch at a time and converted column-wise (no per-row Python). Core columns are found by
name: trace id ``trace_id``/``trace.trace_id``/``traceId``/``traceID``, span id ``span_id``/``trace.span_id``/
``spanId``/``spanID``, parent ``parent_id``/``trace.parent_id``/``parentId``/``parentSpanId`` (empty = root),
``timestamp`` (a timestamp column, epoch numbers, or RFC 3339 text). A Nectar part's ``arrival`` is renumbered.
Other columns are fields: ``<field>::<type>`` columns (Nectar's own) keep their stated type, ``<field>::null``
marks keys present with null, and plain columns take the type of their Arrow type (integers -> int, floats ->
float, bool, strings -> str, nested types -> JSON text; nulls mean "absent").
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

TRACE_COLUMNS = ("trace_id", "trace.trace_id", "traceId", "traceID")
SPAN_COLUMNS = ("span_id", "trace.span_id", "spanId", "spanID")
PARENT_COLUMNS = ("parent_id", "trace.parent_id", "parentId", "parentSpanId")
_TS = pa.timestamp("us", tz="UTC")


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
        names = pf.schema_arrow.names
        tcol = next((c for c in TRACE_COLUMNS if c in names), None)
        if tcol is None:
            skips.add(src.display, None, f"missing trace id: no column named {' or '.join(TRACE_COLUMNS)}")
            return
        scol = next((c for c in SPAN_COLUMNS if c in names), None)
        pcol = next((c for c in PARENT_COLUMNS if c in names), None)
        is_part = tcol == TRACE_ID and ARRIVAL in names
        typed = _column_types(pf)
        consumed = {c for c in (tcol, scol, pcol, "timestamp") if c}
        if is_part:
            consumed.add(ARRIVAL)
        row0 = 0
        try:
            for batch in pf.iter_batches(batch_size=sink.batch_spans):
                table = pa.Table.from_batches([batch])
                out = _convert(table, tcol, scol, pcol, consumed, typed, src.display, row0, skips)
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


def _convert(
    table: pa.Table,
    tcol: str,
    scol: str | None,
    pcol: str | None,
    consumed: set[str],
    typed: dict[str, tuple[str, ValueType]],
    display: str,
    row0: int,
    skips: Skips,
) -> tuple[pa.Table, dict[str, list[str]]] | None:
    trace = _as_string(table.column(tcol))
    valid = pc.and_(pc.is_valid(trace), pc.not_equal(trace, ""))
    valid = pc.fill_null(valid, False)
    bad = len(trace) - pc.sum(valid).as_py() if len(trace) else 0
    if bad:
        for i, ok in enumerate(valid.to_pylist()):
            if not ok:
                skips.add(display, None, "missing trace id", where=f"row {row0 + i + 1}")
        table = table.filter(valid)
        trace = trace.filter(valid)
    n = table.num_rows
    if n == 0:
        return None
    span = _as_string(table.column(scol)) if scol else pa.nulls(n, pa.string())
    parent = _as_string(table.column(pcol)) if pcol else pa.nulls(n, pa.string())
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
        if name in consumed:
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
