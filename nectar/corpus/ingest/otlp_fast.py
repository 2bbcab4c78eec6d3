"""The fast path for OTLP JSON lines: a chunk of whole lines parsed by Arrow's JSON reader and mapped to corpus
columns with Arrow compute, no Python per span.

It is taken only when the result is provably what the line-by-line reader (:mod:`nectar.corpus.ingest.otlp_json`
with :func:`nectar.corpus.ingest.otel.emit_span`) would give; otherwise :func:`fast_otlp_chunk` returns None and
the chunk is read line by line. It gives up when:

* Arrow refuses the chunk (invalid JSON, a value whose type changes between lines) or the documents hold
  anything but ``resourceSpans[].resource.attributes`` and ``scopeSpans[].spans[]`` with ``traceId``, ``spanId``,
  ``parentSpanId``, ``name``, ``kind`` (numbers), ``startTimeUnixNano``, ``endTimeUnixNano``, ``attributes`` and
  ``status`` (``code`` as a number, ``message``): scopes with names or attributes, events, links, trace state,
  dropped counts, Jaeger's ``result`` wrapper all take the line-by-line reader;
* an attribute value is not exactly one of ``stringValue``/``intValue`` (text or number)/``doubleValue``/
  ``boolValue`` (arrays, kvlists and bytes need husky's JSON text), a key is empty, a sample-rate key, repeated
  on one span, or names a field the span already has (the fixed OTLP fields, the ids, or a resource key on a
  span) or a configured trace-id or parent-id field;
* the configured id fields are not husky's: Refinery must consume ``trace.trace_id`` and ``trace.parent_id``
  and never ``trace.span_id`` (which every span carries as a field, :func:`~nectar.corpus.ingest.otel.emit_span`);
* an id is not lowercase hex of the right length (base64 ids, 64-bit trace ids padded with zeros), a start time
  is missing or an end time precedes it (``meta.invalid_duration``).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from nectar.corpus.ingest.otel import KIND_NAMES, SAMPLE_RATE_KEYS, STATUS_ERROR
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
from nectar.refinery.ids import DEFAULT_ID_FIELDS, IdFields

_SPAN_KEYS = {"traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano"}
_SPAN_KEYS |= {"attributes", "status"}
_FIXED = {"name", "meta.signal_type", "status_code", "span.num_events", "span.num_links", "span.kind", "type"}
_FIXED |= {"duration_ms", "error", "status_message", "trace.trace_id", "trace.parent_id", "trace.span_id"}
_VALUE_KINDS = {"stringValue", "intValue", "doubleValue", "boolValue"}


class _Refuse(Exception):
    """The chunk needs the line-by-line reader."""


def fast_otlp_chunk(chunk: bytes, ids: IdFields = DEFAULT_ID_FIELDS) -> tuple[pa.Table, dict[str, list[str]]] | None:
    """A part-file table for a chunk of whole OTLP JSON lines, or None when the slow path must read it.

    ``ids`` names Refinery's trace-id and parent-id fields (``[refinery]`` in ``nectar.toml``)."""
    names = {*ids.trace, *ids.parent}
    if "trace.trace_id" not in ids.trace or "trace.parent_id" not in ids.parent or "trace.span_id" in names:
        return None
    try:
        table = pj.read_json(io.BytesIO(chunk), read_options=pj.ReadOptions(block_size=1 << 22))
        return _convert(table, _FIXED | names)
    except (_Refuse, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, KeyError):
        return None


def _fields(t: pa.DataType) -> set[str]:
    return {t.field(i).name for i in range(t.num_fields)}


def _struct_of_list(arr: Any, allowed: set[str], what: str) -> pa.StructArray:
    """The flattened struct children of a list<struct> array, refusing unknown keys."""
    if not pa.types.is_list(arr.type) or not pa.types.is_struct(arr.type.value_type):
        raise _Refuse(what)
    if _fields(arr.type.value_type) - allowed:
        raise _Refuse(what)
    return pc.list_flatten(arr)


def _convert(table: pa.Table, reserved: set[str]) -> tuple[pa.Table, dict[str, list[str]]]:
    """``reserved``: the keys an attribute may not have (husky's own fields, Refinery's id fields)."""
    if table.column_names != ["resourceSpans"] or table.num_rows == 0:
        raise _Refuse("top level")
    rs_list = table.column("resourceSpans").combine_chunks()
    if rs_list.null_count:
        raise _Refuse("null resourceSpans")
    rs = _struct_of_list(rs_list, {"resource", "scopeSpans"}, "resourceSpans")
    if "scopeSpans" not in _fields(rs.type):
        raise _Refuse("no scopeSpans")
    ss_list = rs.field("scopeSpans")
    ss = _struct_of_list(ss_list, {"scope", "spans"}, "scopeSpans")
    if "scope" in _fields(ss.type) and ss.field("scope").type.num_fields:
        raise _Refuse("scope fields")  # library.name etc.: the slow path
    rs_of_ss = pc.list_parent_indices(ss_list)
    spans_list = ss.field("spans")
    spans = _struct_of_list(spans_list, _SPAN_KEYS, "spans")
    n = len(spans)
    if n == 0:
        raise _Refuse("no spans")
    span_rs = pc.take(rs_of_ss, pc.list_parent_indices(spans_list))  # each span's resourceSpans row
    names = _fields(spans.type)

    def col(key: str) -> Any:
        return spans.field(key) if key in names else pa.nulls(n)

    trace = _hex_ids(col("traceId"), 32, required=True)
    if pc.any(pc.starts_with(trace, "0000000000000000")).as_py():
        raise _Refuse("64-bit trace id")
    span_id = _hex_ids(col("spanId"), 16, required=True)
    parent = col("parentSpanId")
    if parent.null_count < n:
        parent = pc.if_else(pc.equal(parent.cast(pa.string()), ""), pa.scalar(None, pa.string()), parent)
        _hex_ids(parent.drop_null(), 16, required=False)
    parent = parent.cast(pa.string())
    start = _uint(col("startTimeUnixNano"))
    end = _uint(col("endTimeUnixNano"))
    if pc.any(pc.less_equal(start, 0)).as_py() or pc.any(pc.less_equal(end, 0)).as_py():
        raise _Refuse("missing times")
    if pc.any(pc.less(end, start)).as_py():
        raise _Refuse("invalid duration")
    duration = pc.divide(pc.cast(pc.subtract(end, start), pa.float64()), 1e6)
    ts = pc.cast(pc.divide(start, 1_000), pa.int64()).cast(pa.timestamp("us", tz="UTC"))

    fields: dict[tuple[str, ValueType], pa.Array] = {}
    name = col("name")
    fields[("name", ValueType.STR)] = pc.fill_null(name.cast(pa.string()), "")
    fields[("trace.span_id", ValueType.STR)] = span_id  # husky writes it on every span; Refinery never consumes it
    fields[("meta.signal_type", ValueType.STR)] = pa.array(["trace"] * n, pa.string())
    status_code, status_msg = _status(col("status"), n)
    fields[("status_code", ValueType.INT)] = status_code
    zeros = pa.array([0] * n, pa.int64())
    fields[("span.num_events", ValueType.INT)] = zeros
    fields[("span.num_links", ValueType.INT)] = zeros
    kind = col("kind")
    if kind.null_count < n and not pa.types.is_integer(kind.type):
        raise _Refuse("kind names")
    kind = pc.fill_null(kind.cast(pa.int64()), 0)
    if pc.any(pc.or_(pc.less(kind, 0), pc.greater_equal(kind, len(KIND_NAMES)))).as_py():
        raise _Refuse("kind out of range")
    kind_text = pc.take(pa.array(KIND_NAMES, pa.string()), kind)
    fields[("span.kind", ValueType.STR)] = kind_text
    fields[("type", ValueType.STR)] = kind_text
    fields[("duration_ms", ValueType.FLOAT)] = duration
    is_error = pc.equal(status_code, STATUS_ERROR)
    fields[("error", ValueType.BOOL)] = pc.if_else(is_error, True, pa.scalar(None, pa.bool_()))
    if status_msg is not None:
        fields[("status_message", ValueType.STR)] = pc.if_else(
            pc.equal(status_msg, ""), pa.scalar(None, pa.string()), status_msg
        )

    span_attrs = _attributes(col("attributes"), n) if "attributes" in names else {}
    res = rs.field("resource") if "resource" in _fields(rs.type) else None
    res_attrs: dict[tuple[str, ValueType], pa.Array] = {}
    if res is not None:
        if _fields(res.type) - {"attributes"}:
            raise _Refuse("resource fields")
        if "attributes" in _fields(res.type):
            per_rs = _attributes(res.field("attributes"), len(rs))
            res_attrs = {k: pc.take(v, span_rs) for k, v in per_rs.items()}
    span_keys = {k for k, _ in span_attrs}
    res_keys = {k for k, _ in res_attrs}
    if span_keys & reserved or res_keys & reserved or span_keys & res_keys:
        raise _Refuse("a key clash")  # husky's precedence: left to the slow path
    fields.update(res_attrs)
    fields.update(span_attrs)
    return _table(trace, span_id, parent, ts, fields)


def _hex_ids(arr: Any, length: int, required: bool) -> pa.Array:
    if not pa.types.is_string(arr.type):
        raise _Refuse("id type")
    if required and arr.null_count:
        raise _Refuse("missing id")
    pattern = f"^[0-9a-f]{{{length}}}$"
    if not pc.all(pc.match_substring_regex(arr, pattern)).as_py():
        raise _Refuse("id form")
    return arr


def _uint(arr: Any) -> pa.Array:
    """Nanosecond times: proto3 JSON writes 64-bit integers as text (or numbers)."""
    if arr.null_count:
        raise _Refuse("missing time")
    if pa.types.is_string(arr.type):
        if not pc.all(pc.match_substring_regex(arr, "^[0-9]{1,19}$")).as_py():
            raise _Refuse("time text")
        return pc.cast(arr, pa.int64())
    if pa.types.is_integer(arr.type):
        return arr.cast(pa.int64())
    raise _Refuse("time type")


def _status(status: Any, n: int) -> tuple[pa.Array, pa.Array | None]:
    if pa.types.is_null(status.type):
        return pa.array([0] * n, pa.int64()), None
    if not pa.types.is_struct(status.type) or _fields(status.type) - {"code", "message"}:
        raise _Refuse("status fields")
    keys = _fields(status.type)
    code = status.field("code") if "code" in keys else pa.nulls(n, pa.int64())
    if code.null_count < n and not pa.types.is_integer(code.type):
        raise _Refuse("status code names")
    code = pc.fill_null(code.cast(pa.int64()), 0)
    msg = None
    if "message" in keys:
        m = status.field("message")
        if m.null_count < n:
            if not pa.types.is_string(m.type):
                raise _Refuse("status message type")
            msg = pc.fill_null(m, "")
    return code, msg


def _attributes(attrs: Any, n: int) -> dict[tuple[str, ValueType], pa.Array]:
    """Per (key, value type): a column of ``n`` rows (null where the row lacks the key in that type)."""
    if pa.types.is_null(attrs.type):
        return {}
    kv = _struct_of_list(attrs, {"key", "value"}, "attributes")
    if len(kv) == 0:
        return {}
    owner = pc.list_parent_indices(attrs)
    if "key" not in _fields(kv.type) or "value" not in _fields(kv.type):
        raise _Refuse("attribute without key or value")
    keys = kv.field("key")
    value = kv.field("value")
    if not pa.types.is_string(keys.type) or keys.null_count or pc.any(pc.equal(keys, "")).as_py():
        raise _Refuse("attribute key")
    if pc.any(pc.is_in(keys, pa.array(list(SAMPLE_RATE_KEYS)))).as_py():
        raise _Refuse("sample rate key")
    if not pa.types.is_struct(value.type) or _fields(value.type) - _VALUE_KINDS or value.null_count:
        raise _Refuse("attribute value kind")
    # Exactly one typed value per attribute, and no key twice on one span.
    present = [pc.is_valid(value.field(k)) for k in sorted(_fields(value.type))]
    count = pc.add(present[0].cast(pa.int8()), 0) if present else None
    for p in present[1:]:
        count = pc.add(count, p.cast(pa.int8()))
    if count is None or not pc.all(pc.equal(count, 1)).as_py():
        raise _Refuse("attribute value count")
    out: dict[tuple[str, ValueType], pa.Array] = {}
    seen: dict[str, np.ndarray] = {}  # per key, the rows that have it: a key twice on one span is refused
    owner_np = owner.to_numpy(zero_copy_only=False)
    for kind in sorted(_fields(value.type)):
        v = value.field(kind)
        rows = pc.is_valid(v)
        if not pc.any(rows).as_py():
            continue
        vt, vals = _typed(kind, pc.filter(v, rows))
        own = owner_np[rows.to_numpy(zero_copy_only=False)]
        codes = pc.filter(keys, rows).dictionary_encode()
        dictionary = codes.dictionary.to_pylist()
        idx = codes.indices.to_numpy(zero_copy_only=False)
        order = np.argsort(idx, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(idx, minlength=len(dictionary)))))
        for code, key in enumerate(dictionary):
            sel = order[bounds[code] : bounds[code + 1]]
            key_rows = own[sel]
            mask = seen.get(key)
            if mask is None:
                mask = seen[key] = np.zeros(n, dtype=bool)
            before = int(np.count_nonzero(mask))
            mask[key_rows] = True
            if int(np.count_nonzero(mask)) - before != len(key_rows):
                raise _Refuse("repeated key")  # on one span, or already seen with another value type
            out[(key, vt)] = _scatter(key_rows, sel, vals, n, ARROW_TYPE[vt])
    return out


def _typed(kind: str, vals: pa.Array) -> tuple[ValueType, pa.Array]:
    t = vals.type
    if kind == "stringValue" and pa.types.is_string(t):
        return ValueType.STR, vals
    if kind == "boolValue" and pa.types.is_boolean(t):
        return ValueType.BOOL, vals
    if kind == "intValue":
        if pa.types.is_integer(t):
            return ValueType.INT, vals.cast(pa.int64())
        if pa.types.is_string(t) and pc.all(pc.match_substring_regex(vals, "^-?[0-9]{1,18}$")).as_py():
            return ValueType.INT, pc.cast(vals, pa.int64())
    if kind == "doubleValue" and (pa.types.is_floating(t) or pa.types.is_integer(t)):
        return ValueType.FLOAT, vals.cast(pa.float64())
    raise _Refuse(f"{kind} of type {t}")


def _scatter(rows: np.ndarray, picks: np.ndarray, vals: pa.Array, n: int, typ: pa.DataType) -> pa.Array:
    """A column of ``n`` rows holding ``vals[picks[i]]`` at ``rows[i]`` (each row at most once), null elsewhere."""
    pos = np.full(n, -1, dtype=np.int64)
    pos[rows] = picks
    return pc.take(vals, pa.array(pos, mask=pos < 0)).cast(typ)


def _table(
    trace: pa.Array, span_id: pa.Array, parent: pa.Array, ts: pa.Array, fields: dict[tuple[str, ValueType], Any]
) -> tuple[pa.Table, dict[str, list[str]]]:
    n = len(trace)
    columns: dict[str, Any] = {
        TRACE_ID: trace,
        SPAN_ID: span_id,
        PARENT_ID: parent,
        TIMESTAMP: ts,
        ARRIVAL: pa.array(range(n), pa.int64()),
    }
    colmap: dict[str, list[str]] = {}
    by_name: dict[str, dict[ValueType, Any]] = {}
    for (fname, vt), arr in fields.items():
        if arr.null_count == len(arr):
            continue
        by_name.setdefault(fname, {})[vt] = arr
    for fname in sorted(by_name):
        slots = by_name[fname]
        single = len(slots) == 1
        for t in TYPE_ORDER:
            if t in slots:
                phys = physical_name(fname, t, single)
                columns[phys] = slots[t].cast(ARROW_TYPE[t])
                colmap[phys] = [fname, t.value]
    return pa.table(columns), colmap
