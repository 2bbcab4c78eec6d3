"""The fast path for flat JSON lines: a whole chunk parsed by Arrow's (multi-threaded, native) JSON reader.

It is taken only when the result is provably what the line-by-line reader (:mod:`nectar.corpus.ingest.jsonl`)
would produce; otherwise :func:`fast_chunk` returns None and the chunk is read line by line. It gives up when:

* Arrow refuses the chunk (invalid JSON, a value whose type changes between lines, a repeated key, a
  non-object line) -- the slow path reports or handles each line;
* the chunk mentions ``null`` anywhere (Arrow cannot tell a key present with null from an absent key);
* a column is nested, null-typed, or a timestamp Arrow inferred from text (the field must stay a string);
* a float column holds an integral value (Arrow merges ``1`` and ``1.0`` into one double column; a value
  with a fraction can only have been written as a float);
* the ids are not plain: two trace-id or two parent-id keys (Arrow loses each line's key order, which decides
  which one Refinery consumes), two span-id keys, a non-text id, a missing or empty trace id, id names that
  overlap or name ``timestamp``;
* a ``timestamp`` is not RFC 3339 text with an offset (or epoch integers / a plain date-time).
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from nectar.corpus.ingest.builder import SPAN_ID_KEYS
from nectar.corpus.ingest.jsonl import TIMESTAMP_KEY
from nectar.corpus.layout import ARRIVAL, ARROW_TYPE, PARENT_ID, SPAN_ID, TIMESTAMP, TRACE_ID, ValueType, physical_name
from nectar.refinery.ids import DEFAULT_ID_FIELDS, IdFields

_TS = pa.timestamp("us", tz="UTC")
_ARROW_VT = (
    (pa.types.is_int64, ValueType.INT),
    (pa.types.is_float64, ValueType.FLOAT),
    (pa.types.is_boolean, ValueType.BOOL),
    (pa.types.is_string, ValueType.STR),
)


def fast_chunk(chunk: bytes, ids: IdFields = DEFAULT_ID_FIELDS) -> tuple[pa.Table, dict[str, list[str]]] | None:
    """A part-file table for a chunk of whole lines, or None when the slow path must read it.

    ``ids`` names Refinery's trace-id and parent-id fields. With one trace-id column (text, never empty) and at
    most one parent-id column (text; null there means the key is absent), Refinery consumes exactly those two
    (:func:`nectar.refinery.ids.consume_ids`); the span-id column stays a field.
    """
    if set(ids.trace) & set(ids.parent) or TIMESTAMP_KEY in ids.trace + ids.parent:
        return None
    try:
        table = pj.read_json(io.BytesIO(chunk), read_options=pj.ReadOptions(block_size=1 << 22))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    n = table.num_rows
    if n == 0:
        return None
    names = table.column_names
    # A key present with null and an absent key are both null to Arrow: only a chunk without any null value
    # (no nulls at all, or no `null` token anywhere) can be taken as is.
    if any(c.null_count for c in table.columns) and b"null" in chunk:
        return None
    trace = _single_id(table, ids.trace)
    span = _single_id(table, SPAN_ID_KEYS)
    parent = _single_id(table, ids.parent)
    if trace is None or span is None or parent is None or not trace[0]:
        return None
    tcol = table.column(trace[0])
    if tcol.null_count or pc.any(pc.equal(tcol, "")).as_py():
        return None
    ts = _timestamps(table.column(TIMESTAMP_KEY)) if TIMESTAMP_KEY in names else pa.nulls(n, _TS)
    if ts is None:
        return None
    consumed = {trace[0], parent[0], TIMESTAMP_KEY}
    columns: dict[str, Any] = {
        TRACE_ID: tcol.combine_chunks(),
        SPAN_ID: _empty_to_null(table.column(span[0])) if span[0] else pa.nulls(n, pa.string()),
        PARENT_ID: _empty_to_null(table.column(parent[0])) if parent[0] else pa.nulls(n, pa.string()),
        TIMESTAMP: ts,
        ARRIVAL: pa.array(range(n), pa.int64()),
    }
    colmap: dict[str, list[str]] = {}
    for name in sorted(c for c in names if c not in consumed):
        col = table.column(name)
        vt = next((v for test, v in _ARROW_VT if test(col.type)), None)
        if vt is None:
            return None
        if vt is ValueType.FLOAT and col.null_count < len(col):
            values = col.drop_null()
            if pc.any(pc.equal(pc.floor(values), values)).as_py():
                return None  # may have been written as an int
        phys = physical_name(name, vt, True)
        columns[phys] = col.cast(ARROW_TYPE[vt]).combine_chunks()
        colmap[phys] = [name, vt.value]
    return pa.table(columns), colmap


def _single_id(table: pa.Table, keys: tuple[str, ...]) -> tuple[str, ...] | None:
    """``(column,)`` when exactly one spelling is present as text, ``("",)`` when none is, None otherwise."""
    present = [k for k in keys if k in table.column_names]
    if not present:
        return ("",)
    if len(present) > 1 or not pa.types.is_string(table.schema.field(present[0]).type):
        return None
    return (present[0],)


def _empty_to_null(col: pa.ChunkedArray) -> pa.Array:
    arr = col.combine_chunks()
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _timestamps(col: pa.ChunkedArray) -> pa.Array | None:
    """The ``timestamp`` column as UTC microseconds, exactly as :func:`~.common.timestamp_to_us` would give."""
    t = col.type
    arr = col.combine_chunks()
    if pa.types.is_string(t):
        # Arrow's ISO 8601 parser accepts a subset of what Python's does (offset required, at most 9 fraction
        # digits) and gives the same instant; anything else falls back to the line-by-line reader.
        try:
            ns = pc.cast(arr, pa.timestamp("ns", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if len(ns) and pc.min(ns.cast(pa.int64())).as_py() < 0:
            return None  # before 1970: Python floors to µs, Arrow truncates
        return ns.cast(_TS, safe=False)
    if pa.types.is_timestamp(t) and t.unit == "s":
        # Arrow read a date-time without fraction and offset; Python reads it as UTC too.
        if t.tz is None:
            return arr.cast(pa.int64()).cast(pa.timestamp("s", tz="UTC")).cast(_TS)
        return arr.cast(_TS)
    if pa.types.is_int64(t):
        if arr.null_count or pc.min(arr).as_py() < 0:
            return None
        a = arr
        scaled = pc.if_else(
            pc.less(a, 100_000_000_000),
            pc.multiply(arr, 1_000_000),
            pc.if_else(
                pc.less(a, 100_000_000_000_000),
                pc.multiply(arr, 1_000),
                pc.if_else(pc.less(a, 10**17), arr, pc.divide(arr, 1_000)),
            ),
        )
        return pc.cast(scaled, _TS)
    return None
