"""Zipkin v2 JSON: an array of spans (``POST /api/v2/spans`` bodies, ``GET /api/v2/trace/{id}`` answers).

Mapped as the OpenTelemetry collector's Zipkin receiver would hand it to Refinery over OTLP: ids padded to
64/128 bits, ``timestamp``/``duration`` in µs (a span without ``duration`` lasts 0 ms; one without
``timestamp`` has no timestamp), ``kind`` CLIENT/SERVER/PRODUCER/CONSUMER, ``localEndpoint.serviceName`` as
``service.name``, ``remoteEndpoint`` as ``peer.service``/``net.peer.ip``/``net.peer.port``, tags as string
attributes except the status tags (``error`` -> ERROR status with the tag's text as message;
``otel.status_code``/``otel.status_description``), annotations as span events.

Client and server halves that share a span id (``shared: true`` on the server half) are both kept: each reaches
Refinery as its own event and counts towards the trace's span count.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from nectar.corpus.ingest.builder import RecordError, Skips, SpanSink
from nectar.corpus.ingest.common import as_uint, hex_id, salvage_array
from nectar.corpus.ingest.otel import OtelSpan, emit_span
from nectar.corpus.ingest.sources import Source, read_whole

_KINDS = {"SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}


def read(src: Source, sink: SpanSink, skips: Skips) -> Iterator[None]:
    """Read a Zipkin v2 JSON array of spans (or JSON lines of spans)."""
    name = src.display
    text = read_whole(src, skips)
    if text is None:
        return
    limit = sink.batch_spans
    try:
        doc = json.loads(text)
        items: list[tuple[int | None, str | None, Any]] = []
        if isinstance(doc, list):
            items = [(None, f"[{i}]", s) for i, s in enumerate(doc)]
        elif isinstance(doc, dict):
            items = [(1, None, doc)]
        else:
            skips.add(name, None, "not a Zipkin JSON array of spans", where="$")
            return
    except ValueError:
        # JSON lines of spans, or a broken document: read what can be read, line by line.
        items = []
        lines = text.decode("utf-8", "replace").splitlines()
        if not text.lstrip().startswith(b"["):
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    items.append((n, None, json.loads(line)))
                except ValueError as lexc:
                    skips.add(name, n, f"invalid JSON: {getattr(lexc, 'msg', lexc)}", text=line)
        else:
            start = text.decode("utf-8", "replace")
            found, broken = salvage_array(start, start.index("["))
            items = [(None, f"[{i}]", s) for i, s in enumerate(found)]
            if broken is not None:
                bline, col, msg = broken
                src_line = lines[bline - 1] if bline <= len(lines) else None
                skips.add(
                    name,
                    bline,
                    f"invalid JSON: {msg} (the {len(found)} spans before it are kept)",
                    column=col,
                    text=src_line,
                )
    for lineno, where, s in items:
        try:
            emit_span(sink, *zipkin_span(s))
        except (RecordError, AttributeError, TypeError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, RecordError) else f"wrong type: {exc}"
            skips.add(name, lineno, reason, where=where)
            continue
        if sink.n >= limit:
            yield


def zipkin_span(s: Any) -> tuple[OtelSpan, dict[str, Any]]:
    """One Zipkin v2 span as an :class:`OtelSpan` and its resource fields."""
    if not isinstance(s, dict):
        raise RecordError("wrong type: span is not an object")
    tid = hex_id(s.get("traceId"), "trace id", 16)
    sid = hex_id(s.get("id"), "span id", 16)
    parent = s.get("parentId")
    parent_hex = hex_id(parent, "parent id", 16) if parent else ""
    start_us = as_uint(s.get("timestamp"), "timestamp")
    duration_us = as_uint(s.get("duration"), "duration")
    raw_tags = s.get("tags") or {}
    if not isinstance(raw_tags, dict):
        raise RecordError("wrong type: tags is not an object")
    attrs: dict[str, Any] = {}
    for k, v in raw_tags.items():
        if not isinstance(v, str):
            raise RecordError(f"wrong type: tag {k!r} is not a string")
        attrs[k] = v
    remote = s.get("remoteEndpoint") or {}
    if remote.get("serviceName"):
        attrs.setdefault("peer.service", remote["serviceName"])
    ip = remote.get("ipv4") or remote.get("ipv6")
    if ip:
        attrs.setdefault("net.peer.ip", ip)
    if remote.get("port"):
        attrs.setdefault("net.peer.port", as_uint(remote["port"], "remoteEndpoint.port"))
    code, message = 0, ""
    if "otel.status_code" in attrs:
        code = {"OK": 1, "ERROR": 2}.get(str(attrs.pop("otel.status_code")).upper(), 0)
        message = attrs.pop("otel.status_description", "")
    elif "error" in attrs:
        code = 2
        text = attrs.pop("error")
        message = "" if text in ("", "true") else text
    events: list[tuple[int, str, dict[str, Any]]] = []
    for a in s.get("annotations") or []:
        events.append((as_uint(a.get("timestamp"), "annotation timestamp") * 1_000, str(a.get("value") or ""), {}))
    local = s.get("localEndpoint") or {}
    base: dict[str, Any] = {}
    if local.get("serviceName"):
        base["service.name"] = local["serviceName"]
    start_ns = start_us * 1_000
    span = OtelSpan(
        trace_id=tid,
        span_id=sid,
        parent_id=parent_hex,
        name=s.get("name") or "",
        kind=_KINDS.get(str(s.get("kind") or "").upper(), 0),
        start_ns=start_ns,
        end_ns=start_ns + duration_us * 1_000 if start_ns else 0,
        attrs=attrs,
        status_code=code,
        status_message=message,
        events=events,
    )
    return span, base
