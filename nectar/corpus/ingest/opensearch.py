"""OpenSearch / Elasticsearch ``_bulk`` NDJSON of span documents (action line, then document), or the bare
documents one per line. Two document shapes are recognised per line:

* Data Prepper ``otel-v1-apm-span`` documents (``traceId``, ``spanId``, ``parentSpanId``, ``serviceName``,
  ``startTime``, ``durationInNanos``, ``status.code``, ``span.attributes.http@status_code`` with ``@`` for ``.``,
  ``resource.attributes.*``, or the nested ``attributes``/``resource.attributes``/``status`` objects);
* Jaeger's Elasticsearch span documents (``traceID``, ``spanID``, ``references``, ``startTime``/``duration`` in
  µs, ``tags[]`` and the ``tag`` map, ``process.serviceName``) -> :func:`nectar.corpus.ingest.jaeger.jaeger_span`.

Both are mapped to what Refinery would see had the spans come by OTLP (so ``span.attributes.http@status_code``
becomes ``http.status_code``, ``status.code`` becomes ``status_code``/``error``); Data Prepper's own derived fields
(``traceGroup``, ``traceGroupFields.*``, ``durationInNanos``, ``dropped*Count``) are not span data and are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from nectar.corpus.ingest.builder import RecordError, Skips, SpanSink
from nectar.corpus.ingest.common import go_json, hex_id, rfc3339_to_us
from nectar.corpus.ingest.jaeger import jaeger_span
from nectar.corpus.ingest.otel import MAX_DEPTH, SAMPLE_RATE_KEYS, OtelSpan, emit_span, kind_number, scope_fields
from nectar.corpus.ingest.otel import status_number as _status_number
from nectar.corpus.ingest.sources import Source, line_text, open_stream

_ACTIONS = ("index", "create", "update", "delete")
_SPAN_ATTR = "span.attributes."
_RES_ATTR = "resource.attributes."


def read(src: Source, sink: SpanSink, skips: Skips) -> Iterator[None]:
    """Read ``_bulk`` NDJSON (or bare span documents) line by line."""
    raw, stream = open_stream(src)
    name = src.display
    limit = sink.batch_spans
    expect_doc = False  # after an index/create action line
    try:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except ValueError as exc:
                msg = getattr(exc, "msg", None) or str(exc)
                skips.add(
                    name, lineno, f"invalid JSON: {msg}", column=getattr(exc, "colno", None), text=line_text(line)
                )
                expect_doc = False
                continue
            if not isinstance(d, dict):
                skips.add(name, lineno, "not a JSON object", text=line_text(line))
                expect_doc = False
                continue
            if not expect_doc and len(d) == 1 and next(iter(d)) in _ACTIONS:
                action = next(iter(d))
                expect_doc = action in ("index", "create")
                if action == "update":
                    skips.add(name, lineno, "unsupported bulk action: update", text=line_text(line))
                continue
            expect_doc = False
            try:
                if "traceID" in d and "traceId" not in d:
                    span, base = jaeger_span(d, d.get("process") or {})
                else:
                    span, base = data_prepper_span(d)
                emit_span(sink, span, base)
            except (RecordError, AttributeError, TypeError, ValueError) as exc:
                reason = exc.reason if isinstance(exc, RecordError) else f"wrong type: {exc}"
                skips.add(name, lineno, reason, text=line_text(line))
                continue
            if sink.n >= limit:
                yield
    except (OSError, EOFError) as exc:
        skips.add(name, None, f"unreadable input: {exc}")
    finally:
        raw.close()


def data_prepper_span(d: dict[str, Any]) -> tuple[OtelSpan, dict[str, Any]]:
    """One Data Prepper span document as an :class:`OtelSpan` and its resource+scope fields."""
    tid = hex_id(d.get("traceId"), "trace id", 16)
    sid = hex_id(d.get("spanId"), "span id", 16)
    parent = d.get("parentSpanId")
    parent_hex = hex_id(parent, "parent span id", 16) if parent else ""
    attrs: dict[str, Any] = {}
    resource: dict[str, Any] = {}
    nested_attrs = d.get("attributes")
    if isinstance(nested_attrs, dict):
        _put_all(attrs, nested_attrs)
    res = d.get("resource")
    if isinstance(res, dict) and isinstance(res.get("attributes"), dict):
        _put_all(resource, res["attributes"])
    for k, v in d.items():
        if k.startswith(_SPAN_ATTR):
            _put(attrs, k[len(_SPAN_ATTR) :].replace("@", "."), v, 0)
        elif k.startswith(_RES_ATTR):
            _put(resource, k[len(_RES_ATTR) :].replace("@", "."), v, 0)
    service = d.get("serviceName")
    if isinstance(service, str) and service and "service.name" not in resource:
        resource["service.name"] = service
    st = d.get("status")
    status: dict[str, Any] = st if isinstance(st, dict) else {}
    code = _status_number(d.get("status.code", status.get("code")))
    message = d.get("status.message", status.get("message")) or ""
    sc = d.get("instrumentationScope")
    scope: dict[str, Any] = sc if isinstance(sc, dict) else {}
    scope_name = d.get("instrumentationScope.name") or d.get("instrumentationLibrary.name") or scope.get("name") or ""
    scope_version = (
        d.get("instrumentationScope.version") or d.get("instrumentationLibrary.version") or scope.get("version") or ""
    )
    start_us = rfc3339_to_us(d["startTime"]) if d.get("startTime") else 0
    start_ns = start_us * 1_000
    dur = d.get("durationInNanos")
    if isinstance(dur, int) and not isinstance(dur, bool):
        end_ns = start_ns + dur if start_ns else 0
    elif d.get("endTime"):
        end_ns = rfc3339_to_us(d["endTime"]) * 1_000
    else:
        end_ns = 0
    events = []
    for e in d.get("events") or []:
        eattrs: dict[str, Any] = {}
        _put_all(eattrs, e.get("attributes") or {})
        t = e.get("time")
        events.append((rfc3339_to_us(t) * 1_000 if t else 0, str(e.get("name") or ""), eattrs))
    links = []
    for link in d.get("links") or []:
        lattrs: dict[str, Any] = {}
        _put_all(lattrs, link.get("attributes") or {})
        ltid = link.get("traceId")
        lsid = link.get("spanId")
        links.append(
            (
                hex_id(ltid, "link trace id", 16) if ltid else "",
                hex_id(lsid, "link span id", 16) if lsid else "",
                lattrs,
            )
        )
    span = OtelSpan(
        trace_id=tid,
        span_id=sid,
        parent_id=parent_hex,
        name=str(d.get("name") or ""),
        kind=kind_number(d.get("kind")),
        start_ns=start_ns,
        end_ns=end_ns,
        attrs=attrs,
        status_code=code,
        status_message=message if isinstance(message, str) else "",
        trace_state=d.get("traceState") or "",
        events=events,
        links=links,
    )
    return span, {**resource, **scope_fields(str(scope_name), str(scope_version), {})}


def _put_all(out: dict[str, Any], attrs: Any) -> None:
    if not isinstance(attrs, dict):
        raise RecordError("wrong type: attributes is not an object")
    for k, v in attrs.items():
        _put(out, k.replace("@", "."), v, 0)


def _put(out: dict[str, Any], key: str, v: Any, depth: int) -> None:
    """A Data Prepper attribute as its OTLP original would arrive: objects were kvlists (flattened), arrays
    were arrays (JSON text); a sample-rate key is consumed (husky)."""
    if depth == 0 and key in SAMPLE_RATE_KEYS:
        return
    if isinstance(v, dict):
        if depth < MAX_DEPTH:
            for k2, v2 in v.items():
                _put(out, f"{key}.{k2}", v2, depth + 1)
        else:
            out[key] = go_json(v)
    elif isinstance(v, list):
        out[key] = go_json(v)
    elif v is not None:
        out[key] = v
