"""OTLP protobuf: one ``ExportTraceServiceRequest`` (= ``TracesData`` on the wire) per file, or a stream of
messages each preceded by its length (4 bytes, big-endian), as the collector's file exporter writes them.

Decoded with the ``opentelemetry-proto`` package; field mapping: :mod:`nectar.corpus.ingest.otel`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from nectar.corpus.ingest.builder import RecordError, Skips, SpanSink
from nectar.corpus.ingest.common import go_json
from nectar.corpus.ingest.otel import MAX_DEPTH, SAMPLE_RATE_KEYS, OtelSpan, emit_span, scope_fields
from nectar.corpus.ingest.sources import Source, read_whole


def read(src: Source, sink: SpanSink, skips: Skips) -> Iterator[None]:
    """Read an OTLP protobuf file (a single message, or length-prefixed messages)."""
    data = read_whole(src, skips)
    if data is None:
        return
    split = _split(data)
    messages: list[tuple[int | None, bytes]] = list(split) if split is not None else [(None, data)]
    for i, (offset, body) in enumerate(messages):
        where = f"message[{i}]" if offset is not None else None
        req = ExportTraceServiceRequest()
        try:
            req.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            # Keep the resource spans that decode on their own (a truncated file loses only its tail).
            kept, bad_at = _salvage(body)
            at = (offset or 0) + bad_at
            msg = f"invalid protobuf: not an ExportTraceServiceRequest (from byte {at}): {exc}"
            if kept:
                msg += f" (the {len(kept)} resource spans before it are kept)"
            skips.add(src.display, None, msg, where=where)
            req = ExportTraceServiceRequest()
            req.resource_spans.extend(kept)
        yield from _request(req, sink, skips, src.display, where)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(data) and shift < 64:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
    raise ValueError("truncated varint")


def _salvage(body: bytes) -> tuple[list[Any], int]:
    """The top-level ``resource_spans`` (field 1) that decode, up to the first damage, and where it is."""
    kept: list[Any] = []
    pos = 0
    n = len(body)
    try:
        while pos < n:
            start = pos
            tag, pos = _varint(body, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 2:
                size, pos = _varint(body, pos)
                if pos + size > n:
                    return kept, start
                if field == 1:
                    rs = ResourceSpans()
                    rs.ParseFromString(body[pos : pos + size])
                    kept.append(rs)
                pos += size
            elif wire == 0:
                _, pos = _varint(body, pos)
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
            else:
                return kept, start
    except (DecodeError, RuntimeError, ValueError):
        return kept, start
    return kept, pos


def _split(data: bytes) -> list[tuple[int, bytes]] | None:
    """Length-prefixed messages, if the whole file is exactly that; else None (one message)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    n = len(data)
    while pos < n:
        if pos + 4 > n:
            return None
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 0 or pos + 4 + size > n:
            return None
        out.append((pos, data[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    # A plain ExportTraceServiceRequest starts with tag 0x0A, which as a length prefix is far past the end.
    return out or None


def _request(req: Any, sink: SpanSink, skips: Skips, name: str, where0: str | None) -> Iterator[None]:
    limit = sink.batch_spans
    prefix = f"{where0}." if where0 else ""
    for i, rs in enumerate(req.resource_spans):
        base = attributes(rs.resource.attributes)
        for j, ss in enumerate(rs.scope_spans):
            sc = ss.scope
            sbase = {**base, **scope_fields(sc.name, sc.version, attributes(sc.attributes))}
            for k, s in enumerate(ss.spans):
                try:
                    emit_span(sink, _span(s), sbase)
                except RecordError as exc:
                    skips.add(name, None, exc.reason, where=f"{prefix}resourceSpans[{i}].scopeSpans[{j}].spans[{k}]")
                    continue
                if sink.n >= limit:
                    yield


def _span(s: Any) -> OtelSpan:
    if not s.trace_id:
        raise RecordError("missing trace id")
    if not s.span_id:
        raise RecordError("missing span id")
    events = [(e.time_unix_nano, e.name, attributes(e.attributes)) for e in s.events]
    links = [(lk.trace_id.hex(), lk.span_id.hex(), attributes(lk.attributes)) for lk in s.links]
    return OtelSpan(
        trace_id=s.trace_id.hex(),
        span_id=s.span_id.hex(),
        parent_id=s.parent_span_id.hex(),
        name=s.name,
        kind=int(s.kind),
        start_ns=s.start_time_unix_nano,
        end_ns=s.end_time_unix_nano,
        attrs=attributes(s.attributes),
        status_code=int(s.status.code),
        status_message=s.status.message,
        trace_state=s.trace_state,
        events=events,
        links=links,
    )


def attributes(kvs: Any) -> dict[str, Any]:
    """Protobuf KeyValues to husky field values (see :mod:`nectar.corpus.ingest.otel`)."""
    out: dict[str, Any] = {}
    for kv in kvs:
        if not kv.key or not kv.HasField("value") or kv.value.WhichOneof("value") is None:
            continue
        if kv.key in SAMPLE_RATE_KEYS:
            continue
        _put(out, kv.key, kv.value, 0)
    return out


def _put(out: dict[str, Any], key: str, v: Any, depth: int) -> None:
    which = v.WhichOneof("value")
    if which == "kvlist_value":
        if depth < MAX_DEPTH:
            for kv in v.kvlist_value.values:
                if kv.key and kv.HasField("value") and kv.value.WhichOneof("value") is not None:
                    _put(out, f"{key}.{kv.key}", kv.value, depth + 1)
        else:
            out[key] = go_json(_plain(v))
    elif which in ("array_value", "bytes_value"):
        out[key] = go_json(_plain(v))
    elif which is not None:
        out[key] = getattr(v, which)


def _plain(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [p for p in (_plain(x) for x in v.array_value.values) if p is not None]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in v.kvlist_value.values if kv.key}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    if which is None:
        return None
    return getattr(v, which)
