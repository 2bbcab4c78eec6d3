"""Jaeger JSON: the UI download / query API ``{"data": [trace, ...]}`` (spans with ``processID`` into
``processes``), a bare trace object, or a list of traces. :func:`jaeger_span` also serves Jaeger's
Elasticsearch span documents (:mod:`nectar.corpus.ingest.opensearch`).

Mapped as the OpenTelemetry collector's Jaeger receiver would hand it to Refinery over OTLP: ids padded to 64/128
bits, the parent from the first ``CHILD_OF`` reference in the same trace (else the first ``FOLLOWS_FROM``), other
references as links, ``startTime``/``duration`` in µs, typed tags (``string``/``bool``/``int64``/``float64``/
``binary``) as attributes, special tags consumed (``span.kind`` -> kind; ``error=true`` and ``otel.status_code``/
``otel.status_description`` -> status; without them an HTTP status >= 500 on a server span, >= 400 on a client
span, is an ERROR status; ``w3c.tracestate``; ``otel.scope.*``/``otel.library.*`` -> scope), process tags as
resource attributes, ``process.serviceName`` as ``service.name``, logs as span events (``event`` field -> name).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from nectar.corpus.ingest.builder import RecordError, Skips, SpanSink
from nectar.corpus.ingest.common import as_int, go_json, hex_id, salvage_array
from nectar.corpus.ingest.otel import OtelSpan, emit_span, scope_fields
from nectar.corpus.ingest.sources import Source, read_whole
from nectar.util import int_from_text

_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


def read(src: Source, sink: SpanSink, skips: Skips) -> Iterator[None]:
    """Read a Jaeger JSON document (held whole: these are per-trace downloads or API responses)."""
    name = src.display
    text = read_whole(src, skips)
    if text is None:
        return
    try:
        doc = json.loads(text)
    except ValueError as exc:
        doc = _salvage(text, exc, name, skips)
        if doc is None:
            return
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        traces, prefix = doc["data"], "data"
    elif isinstance(doc, list):
        traces, prefix = doc, ""
    elif isinstance(doc, dict) and "spans" in doc:
        traces, prefix = [doc], None
    else:
        skips.add(name, None, "not a Jaeger JSON document: no data[] of traces", where="$")
        return
    limit = sink.batch_spans
    for i, trace in enumerate(traces):
        twhere = "$" if prefix is None else f"{prefix}[{i}]"
        if not isinstance(trace, dict) or not isinstance(trace.get("spans"), list):
            skips.add(name, None, "wrong type: trace has no spans list", where=twhere)
            continue
        processes = trace.get("processes") or {}
        for j, s in enumerate(trace["spans"]):
            try:
                if not isinstance(s, dict):
                    raise RecordError("wrong type: span is not an object")
                proc = s.get("process")
                if proc is None:
                    pid = s.get("processID")
                    proc = processes.get(pid) if isinstance(processes, dict) else None
                    if proc is None and pid is not None:
                        raise RecordError(f"unknown process: processID {pid!r} is not in processes")
                emit_span(sink, *jaeger_span(s, proc or {}))
            except (RecordError, AttributeError, TypeError, ValueError) as exc:
                reason = exc.reason if isinstance(exc, RecordError) else f"wrong type: {exc}"
                skips.add(name, None, reason, where=f"{twhere}.spans[{j}]")
                continue
            if sink.n >= limit:
                yield


def jaeger_span(s: dict[str, Any], process: dict[str, Any]) -> tuple[OtelSpan, dict[str, Any]]:
    """One Jaeger span (JSON model) and its process as an :class:`OtelSpan` and its resource+scope fields."""
    tid = hex_id(s.get("traceID"), "trace id", 16)
    sid = hex_id(s.get("spanID"), "span id", 16)
    attrs = tags(s.get("tags"), s.get("tag"))
    parent, links = _references(s.get("references"), tid)
    start_us = as_int(s.get("startTime"), "startTime")
    duration_us = as_int(s.get("duration"), "duration")
    kind = _KINDS.get(str(attrs.pop("span.kind", "")).lower(), 0)
    status, message = _status(attrs, kind)
    trace_state = attrs.pop("w3c.tracestate", "")
    scope_name = attrs.pop("otel.scope.name", None) or attrs.pop("otel.library.name", None) or ""
    scope_version = attrs.pop("otel.scope.version", None) or attrs.pop("otel.library.version", None) or ""
    attrs.pop("otel.library.name", None)
    attrs.pop("otel.library.version", None)
    events = []
    for log in s.get("logs") or []:
        fields = tags(log.get("fields"), None)
        ename = fields.pop("event", "") if isinstance(fields.get("event"), str) else ""
        events.append((as_int(log.get("timestamp"), "log timestamp") * 1_000, ename, fields))
    resource = tags(process.get("tags"), process.get("tag"))
    service = process.get("serviceName")
    if isinstance(service, str) and service:
        resource["service.name"] = service
    base = {**resource, **scope_fields(str(scope_name), str(scope_version), {})}
    span = OtelSpan(
        trace_id=tid,
        span_id=sid,
        parent_id=parent,
        name=s.get("operationName") or "",
        kind=kind,
        start_ns=start_us * 1_000,
        end_ns=(start_us + duration_us) * 1_000,
        attrs=attrs,
        status_code=status,
        status_message=message,
        trace_state=trace_state if isinstance(trace_state, str) else "",
        events=events,
        links=links,
    )
    return span, base


def _references(refs: Any, tid: str) -> tuple[str, list[tuple[str, str, dict[str, Any]]]]:
    if not refs:
        return "", []
    parsed: list[tuple[str, str, str]] = []
    for r in refs:
        rtid = hex_id(r.get("traceID") or tid, "reference trace id", 16)
        rsid = hex_id(r.get("spanID"), "reference span id", 16)
        parsed.append((str(r.get("refType") or "CHILD_OF").upper(), rtid, rsid))
    parent_i = next((i for i, (t, rt, _) in enumerate(parsed) if t == "CHILD_OF" and rt == tid), None)
    if parent_i is None:
        parent_i = next((i for i, (t, rt, _) in enumerate(parsed) if t == "FOLLOWS_FROM" and rt == tid), None)
    parent = parsed[parent_i][2] if parent_i is not None else ""
    links: list[tuple[str, str, dict[str, Any]]] = [
        (rt, rs, {}) for i, (_, rt, rs) in enumerate(parsed) if i != parent_i
    ]
    return parent, links


def _status(attrs: dict[str, Any], kind: int) -> tuple[int, str]:
    """OTel status from Jaeger tags, consuming them (collector ``setInternalSpanStatus``)."""
    code, message, found = 0, "", False
    if attrs.get("error") is True:
        del attrs["error"]
        code, found = 2, True
        desc = attrs.pop("otel.status_description", None)
        if isinstance(desc, str):
            message = desc
    if "otel.status_code" in attrs:
        value = attrs.pop("otel.status_code")
        if not found:
            found = True
            code = {"OK": 1, "ERROR": 2}.get(str(value).upper(), 0)
            desc = attrs.pop("otel.status_description", None)
            if isinstance(desc, str):
                message = desc
    elif not found:
        http = attrs.get("http.status_code")
        if isinstance(http, str) and (n := int_from_text(http, signed=False)) is not None:
            http = n
        if isinstance(http, int) and not isinstance(http, bool) and (http >= 500 or (kind == 3 and http >= 400)):
            code = 2
    return code, message


def tags(tag_list: Any, tag_map: Any) -> dict[str, Any]:
    """Typed Jaeger tags (``[{key, type, value}]``) plus an Elasticsearch ``tag`` map (``@`` for ``.``)."""
    out: dict[str, Any] = {}
    if tag_list:
        if not isinstance(tag_list, list):
            raise RecordError("wrong type: tags is not a list")
        for t in tag_list:
            key = t.get("key")
            if not isinstance(key, str) or not key:
                raise RecordError("wrong type: tag without a key")
            out[key] = _tag_value(key, t.get("type"), t.get("value"))
    if tag_map:
        if not isinstance(tag_map, dict):
            raise RecordError("wrong type: tag is not an object")
        for k, v in tag_map.items():
            key = k.replace("@", ".")
            out[key] = _tag_value(key, None, v)
    return out


def _tag_value(key: str, typ: Any, v: Any) -> Any:
    t = str(typ).lower() if typ is not None else None
    if t in (None, ""):  # untyped (Elasticsearch tag map): the JSON type decides
        if isinstance(v, (dict, list)):
            return go_json(v)
        return v
    if t == "string":
        if isinstance(v, str):
            return v
        raise RecordError(f"wrong type: tag {key!r} of type string has value {v!r}")
    if t == "bool":
        if isinstance(v, bool):
            return v
        if v in ("true", "false"):
            return v == "true"
        raise RecordError(f"wrong type: tag {key!r} of type bool has value {v!r}")
    if t == "int64":
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, str) and (n := int_from_text(v)) is not None:
            return n
        if isinstance(v, float) and v.is_integer():
            return int(v)
        raise RecordError(f"wrong type: tag {key!r} of type int64 has value {v!r}")
    if t == "float64":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                pass
        raise RecordError(f"wrong type: tag {key!r} of type float64 has value {v!r}")
    if t == "binary":
        # Arrives at Refinery as an OTLP bytes attribute: JSON text of its base64 (husky).
        if isinstance(v, str):
            return go_json(v)
        raise RecordError(f"wrong type: tag {key!r} of type binary has value {v!r}")
    raise RecordError(f"wrong type: tag {key!r} has unknown type {typ!r}")


_DATA_ARRAY = re.compile(r'^\s*\{\s*"data"\s*:\s*\[')


def _salvage(text: bytes, exc: ValueError, name: str, skips: Skips) -> dict[str, Any] | None:
    """The complete traces of a damaged ``{"data": [...]}`` document (the damage is reported)."""
    doc = text.decode("utf-8", "replace")
    lines = doc.splitlines()
    m = _DATA_ARRAY.match(doc)
    if m is None:
        line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        src_line = lines[line - 1] if line and line <= len(lines) else None
        skips.add(name, line, f"invalid JSON: {getattr(exc, 'msg', exc)}", column=col, text=src_line)
        return None
    traces, broken = salvage_array(doc, m.end() - 1)
    if broken is not None:
        line, col, msg = broken
        src_line = lines[line - 1] if line <= len(lines) else None
        kept = f"the {len(traces)} complete traces before it are kept"
        skips.add(name, line, f"invalid JSON: {msg} ({kept})", column=col, text=src_line)
    return {"data": traces}
