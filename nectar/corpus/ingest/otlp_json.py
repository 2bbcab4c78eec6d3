"""OTLP JSON: ``ExportTraceServiceRequest`` / ``TracesData`` documents, the collector file exporter's JSON lines
(one ``TracesData`` per line), and Jaeger v2's ``/api/v3`` wrapper ``{"result": {...}}``.

Ids are hex (OTLP/JSON) or base64 (proto3 JSON); 64-bit integers may be JSON strings; enums may be numbers or
names. Field mapping: :mod:`nectar.corpus.ingest.otel` (husky ``traces_direct.go``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from nectar.corpus.ingest.builder import RecordError, Skips, SpanSink
from nectar.corpus.ingest.chunks import chunks_ahead
from nectar.corpus.ingest.common import otlp_json_id
from nectar.corpus.ingest.otel import (
    OtelSpan,
    emit_span,
    json_attributes,
    kind_number,
    scope_fields,
    status_number,
)
from nectar.corpus.ingest.otlp_fast import fast_otlp_chunk
from nectar.corpus.ingest.sources import Source, line_text, open_stream, read_document
from nectar.util import int_from_text

USE_FAST_PATH = True  # tests turn it off to compare both paths


def read(src: Source, sink: SpanSink, skips: Skips) -> Iterator[Any]:
    """Read a document, or JSON lines of documents, of OTLP JSON traces (JSON lines chunk by chunk: memory is one
    chunk plus the current batch)."""
    raw, stream = open_stream(src)
    name = src.display
    try:
        first = stream.readline()
        single_line = True
        try:
            json.loads(first) if first.strip() else None
        except ValueError:
            single_line = False
        if not single_line:
            # One (pretty-printed) document: held whole, as a request body is.
            text = first + read_document(stream)
            try:
                doc = json.loads(text)
            except ValueError as exc:
                line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
                src_line = text.decode("utf-8", "replace").splitlines()[line - 1] if line else None
                skips.add(name, line, f"invalid JSON: {getattr(exc, 'msg', exc)}", column=col, text=src_line)
                return
            yield from _document(doc, sink, skips, name, None)
            return
        # JSON lines: chunks of whole lines through the native fast path when it gives exactly the same result
        # (:mod:`nectar.corpus.ingest.otlp_fast`), else line by line.
        first_line = 1
        for chunk, ready in chunks_ahead(stream, fast_otlp_chunk if USE_FAST_PATH else None, first):
            lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
            if ready is not None:
                table, colmap = ready
                sink.real_spans += table.num_rows
                for start in range(0, table.num_rows, sink.batch_spans):
                    part = table.slice(start, sink.batch_spans)
                    keep = [c for c in part.column_names if c not in colmap or part.column(c).null_count < len(part)]
                    yield part.select(keep), {c: colmap[c] for c in keep if c in colmap}
            else:
                for lineno, line in enumerate(io.BytesIO(chunk), first_line):
                    yield from _line(line, lineno, sink, skips, name)
            first_line += lines
    except (OSError, EOFError) as exc:
        skips.add(name, None, f"unreadable input: {exc}")
    finally:
        raw.close()


def _line(line: bytes, lineno: int, sink: SpanSink, skips: Skips, name: str) -> Iterator[None]:
    if not line.strip():
        return
    try:
        doc = json.loads(line)
    except ValueError as exc:
        msg = getattr(exc, "msg", None) or str(exc)
        skips.add(name, lineno, f"invalid JSON: {msg}", column=getattr(exc, "colno", None), text=line_text(line))
        return
    yield from _document(doc, sink, skips, name, lineno)


def _document(doc: Any, sink: SpanSink, skips: Skips, name: str, lineno: int | None) -> Iterator[None]:
    if isinstance(doc, dict) and "resourceSpans" not in doc and isinstance(doc.get("result"), dict):
        doc = doc["result"]  # Jaeger v2 /api/v3 wraps TracesData in {"result": ...}
    if not isinstance(doc, dict):
        skips.add(name, lineno, "not an OTLP JSON object", where="$")
        return
    rss = doc.get("resourceSpans")
    if rss is None:
        return
    if not isinstance(rss, list):
        skips.add(name, lineno, "not an OTLP JSON object: resourceSpans is not a list", where="resourceSpans")
        return
    limit = sink.batch_spans
    for i, rs in enumerate(rss):
        where = f"resourceSpans[{i}]"
        try:
            if not isinstance(rs, dict):
                raise RecordError("not an object")
            resource = rs.get("resource") or {}
            base = json_attributes(resource.get("attributes"))
        except (RecordError, AttributeError) as exc:
            skips.add(name, lineno, _reason(exc), where=where)
            continue
        scopes = rs.get("scopeSpans")
        if scopes is None:
            scopes = rs.get("instrumentationLibrarySpans")  # OTLP before 0.15
        for j, ss in enumerate(scopes or []):
            swhere = f"{where}.scopeSpans[{j}]"
            try:
                scope = ss.get("scope") or ss.get("instrumentationLibrary") or {}
                sbase = {
                    **base,
                    **scope_fields(
                        _str(scope.get("name")), _str(scope.get("version")), json_attributes(scope.get("attributes"))
                    ),
                }
                spans = ss.get("spans") or []
            except (RecordError, AttributeError) as exc:
                skips.add(name, lineno, _reason(exc), where=swhere)
                continue
            for k, s in enumerate(spans):
                try:
                    emit_span(sink, _span(s), sbase)
                except (RecordError, AttributeError, TypeError, ValueError) as exc:
                    skips.add(name, lineno, _reason(exc), where=f"{swhere}.spans[{k}]")
                    continue
                if sink.n >= limit:
                    yield


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecordError):
        return exc.reason
    return f"wrong type: {exc}"


def _str(v: Any) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise RecordError(f"wrong type: expected text, got {type(v).__name__}")
    return v


def _uint(v: Any, what: str) -> int:
    if v is None:
        return 0
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and (n := int_from_text(v, signed=False)) is not None:
        return n
    raise RecordError(f"wrong type: {what} {v!r} is not an unsigned integer")


def _span(s: Any) -> OtelSpan:
    if not isinstance(s, dict):
        raise RecordError("wrong type: span is not an object")
    tid = s.get("traceId")
    if not tid:
        raise RecordError("missing trace id")
    sid = s.get("spanId")
    if not sid:
        raise RecordError("missing span id")
    parent = s.get("parentSpanId")
    status = s.get("status") or {}
    events = []
    for e in s.get("events") or []:
        events.append(
            (_uint(e.get("timeUnixNano"), "timeUnixNano"), _str(e.get("name")), json_attributes(e.get("attributes")))
        )
    links = []
    for link in s.get("links") or []:
        ltid = link.get("traceId")
        lsid = link.get("spanId")
        links.append(
            (
                otlp_json_id(ltid, "link trace id") if ltid else "",
                otlp_json_id(lsid, "link span id") if lsid else "",
                json_attributes(link.get("attributes")),
            )
        )
    return OtelSpan(
        trace_id=otlp_json_id(tid, "trace id"),
        span_id=otlp_json_id(sid, "span id"),
        parent_id=otlp_json_id(parent, "parent span id") if parent else "",
        name=_str(s.get("name")),
        kind=kind_number(s.get("kind")),
        start_ns=_uint(s.get("startTimeUnixNano"), "startTimeUnixNano"),
        end_ns=_uint(s.get("endTimeUnixNano"), "endTimeUnixNano"),
        attrs=json_attributes(s.get("attributes")),
        status_code=status_number(status.get("code")),
        status_message=_str(status.get("message")),
        trace_state=_str(s.get("traceState")),
        events=events,
        links=links,
    )
