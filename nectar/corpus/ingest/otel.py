"""Spans as Refinery sees them after OTLP ingest: the field mapping of husky ``otlp/traces_direct.go``.

Every format that is not already flat (OTLP JSON and protobuf, Jaeger, Zipkin, OpenSearch/Data Prepper) is
decoded into :class:`OtelSpan` and emitted by :func:`emit_span`, so all of them give the fields Refinery would
see had the data come by OTLP. What husky sets, and so what we set (names and Go types):

* span: ``trace.trace_id``, ``trace.parent_id`` (when it has a parent), ``trace.span_id`` (always), ``name``,
  ``type`` and ``span.kind`` (``client``/``server``/``producer``/``consumer``/``internal``/
  ``unspecified``), ``duration_ms`` (float64; 0 when start or end is 0; negative -> 0 plus
  ``meta.invalid_duration``), ``status_code`` (int64, the OTel status), ``error`` (true, only when the status is
  ERROR), ``status_message`` (when non-empty), ``trace.trace_state`` (when non-empty), ``span.num_events``,
  ``span.num_links`` (int64), ``meta.signal_type`` = ``trace``;
* scope: ``library.name``, ``library.version``, ``telemetry.instrumentation_library`` (true for known
  instrumentation-library name prefixes), then scope attributes; resource attributes (``service.name`` ...);
* precedence when keys clash (husky keeps the first one written, :func:`husky_event`): the span's (event's,
  link's) own attributes, then the fixed fields above, then scope, then resource, then (spans only) the
  attributes of the span's first ``exception`` event (``exception.message``/``type``/``stacktrace``/``escaped``);
* attribute values: string, bool, int -> int64, double -> float64; arrays and bytes -> JSON **text** with Go's
  trailing newline; kvlists flattened to dotted keys up to depth 5, deeper ones as JSON text; a ``sampleRate`` /
  ``SampleRate`` attribute is consumed as the event's sample rate and is not a field;
* span events and links become extra events of the trace (rows here) with ``trace.trace_id``, no span id,
  ``trace.parent_id`` = the span, ``meta.annotation_type`` (``span_event``/``link``), ``parent_name``, and the
  span's ``error``; events carry ``meta.time_since_span_start_ms`` and their own timestamp, links
  ``trace.link.trace_id``/``trace.link.span_id`` and the span's timestamp. They count towards
  ``?.NUM_DESCENDANTS`` in Refinery, so we ingest them: exact. husky appends them before their span; so do we
  (arrival order).

Trace and span ids are hex; a 128-bit trace id whose high half is zero is written with 16 digits (husky
``BytesToTraceID``). Each row then goes through Refinery's id consumption, as a flat JSON event does
(:func:`~nectar.corpus.ingest.builder.take_ids`, ``[refinery] trace_id_fields``/``parent_id_fields``): the trace
and parent ids become core columns and are hidden from rules; ``trace.span_id`` is an ordinary field Refinery never
consumes, so rules see it (and the ``span_id`` core column holds the OTLP span id).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from itertools import chain
from typing import Any

from nectar.corpus.ingest.builder import RecordError, SpanSink, take_ids
from nectar.corpus.ingest.common import go_json, trim_trace_id
from nectar.util import int_from_text

MAX_DEPTH = 5  # husky common.go maxDepth: kvlists deeper than this are kept as JSON text
STATUS_ERROR = 2
KIND_NAMES = ("unspecified", "internal", "server", "client", "producer", "consumer")
_KIND_BY_TEXT = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_BY_TEXT = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
# husky common.go instrumentationLibraryPrefixes
_LIBRARY_PREFIXES = (
    "io.opentelemetry",
    "opentelemetry.instrumentation",
    "OpenTelemetry.Instrumentation",
    "OpenTelemetry::Instrumentation",
    "go.opentelemetry.io/contrib/instrumentation",
    "@opentelemetry/instrumentation",
)
SAMPLE_RATE_KEYS = ("sampleRate", "SampleRate")
_EXCEPTION_STR = ("exception.message", "exception.type", "exception.stacktrace")


class OtelSpan:
    """One span in OTLP's terms, attributes already converted to husky's field values."""

    __slots__ = (
        "attrs",
        "end_ns",
        "events",
        "kind",
        "links",
        "name",
        "parent_id",
        "span_id",
        "start_ns",
        "status_code",
        "status_message",
        "trace_id",
        "trace_state",
    )

    def __init__(
        self,
        trace_id: str,
        span_id: str,
        parent_id: str,
        name: str,
        kind: int,
        start_ns: int,
        end_ns: int,
        attrs: dict[str, Any],
        status_code: int = 0,
        status_message: str = "",
        trace_state: str = "",
        events: list[tuple[int, str, dict[str, Any]]] | None = None,
        links: list[tuple[str, str, dict[str, Any]]] | None = None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.name = name
        self.kind = kind
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attrs = attrs
        self.status_code = status_code
        self.status_message = status_message
        self.trace_state = trace_state
        self.events = events or []
        self.links = links or []


def scope_fields(name: str, version: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """The fields an instrumentation scope adds to each of its spans (husky ``getScopeAttributes``)."""
    out: dict[str, Any] = {}
    if name:
        out["library.name"] = name
        if name.startswith(_LIBRARY_PREFIXES):
            out["telemetry.instrumentation_library"] = True
    if version:
        out["library.version"] = version
    out.update(attrs)
    return out


def kind_number(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value < len(KIND_NAMES) else 0
    if isinstance(value, str):
        return _KIND_BY_TEXT.get(value, 0)
    if value is None:
        return 0
    raise RecordError(f"span kind {value!r} is neither a number nor a SPAN_KIND_ name")


def status_number(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in _STATUS_BY_TEXT:
            return _STATUS_BY_TEXT[value]
        if (n := int_from_text(value)) is not None:
            return n
    raise RecordError(f"status code {value!r} is neither a number nor a STATUS_CODE_ name")


def husky_event(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """One event's field map as husky writes it: ``layers`` in write order, and on a clash the first occurrence of a
    key wins, value and position (``msgpAttributes.finalize``). Key order matters to Refinery: of two trace-id
    keys, the first is consumed."""
    out: dict[str, Any] = dict.fromkeys(chain.from_iterable(layers))
    for layer in reversed(layers):
        out.update(layer)
    return out


def emit_span(sink: SpanSink, span: OtelSpan, base: dict[str, Any]) -> None:
    """Append a span's events, links, then the span itself to ``sink``.

    Each row is the map husky gives Refinery (:func:`husky_event`: the span's own attributes, then husky's fields
    from ``trace.trace_id`` on, then ``base``, the resource fields overlaid with the scope fields) and then goes
    through Refinery's id consumption (:func:`~nectar.corpus.ingest.builder.take_ids`), like every other event:
    ``trace.trace_id`` and ``trace.parent_id`` become core columns, ``trace.span_id`` stays a field. Raises
    :class:`RecordError`, adding nothing, when a row ends up without a trace id (trace-id fields configured
    without ``trace.trace_id``: Refinery would not sample the span).
    """
    ids = sink.ids
    tid = trim_trace_id(span.trace_id)
    sid = span.span_id
    is_error = span.status_code == STATUS_ERROR
    start, end = span.start_ns, span.end_ns
    start_us = start // 1_000 if start > 0 else None  # a missing start (Zipkin allows it): no timestamp
    # husky commonFields, for span events and links: the span is their parent.
    common: dict[str, Any] = {"trace.trace_id": tid}
    if sid:
        common["trace.parent_id"] = sid
    if span.name:
        common["parent_name"] = span.name
    rows: list[tuple[dict[str, Any], int | None, bool]] = []
    exception: dict[str, Any] | None = None
    for t_ns, ename, eattrs in span.events:
        fixed = {**common, "meta.annotation_type": "span_event", "meta.signal_type": "trace"}
        if is_error:
            fixed["error"] = True
        fixed["name"] = ename
        if t_ns > 0 and start > 0:
            if t_ns >= start:
                fixed["meta.time_since_span_start_ms"] = (t_ns - start) / 1e6
            else:
                fixed["meta.time_since_span_start_ms"] = 0.0
                fixed["meta.invalid_time_since_span_start"] = True
        rows.append((husky_event(eattrs, fixed, base), t_ns // 1_000 if t_ns > 0 else None, True))
        if exception is None and ename == "exception":
            exception = {k: eattrs[k] for k in _EXCEPTION_STR if isinstance(eattrs.get(k), str)}
            if isinstance(eattrs.get("exception.escaped"), bool):
                exception["exception.escaped"] = eattrs["exception.escaped"]
    for ltid, lsid, lattrs in span.links:
        fixed = {**common, "meta.annotation_type": "link", "meta.signal_type": "trace"}
        if is_error:
            fixed["error"] = True
        if ltid:
            fixed["trace.link.trace_id"] = trim_trace_id(ltid)
        if lsid:
            fixed["trace.link.span_id"] = lsid
        rows.append((husky_event(lattrs, fixed, base), start_us, True))
    fixed = {"trace.trace_id": tid}
    if span.parent_id:
        fixed["trace.parent_id"] = span.parent_id
    fixed["meta.signal_type"] = "trace"
    if is_error:
        fixed["error"] = True
    fixed["name"] = span.name
    fixed["trace.span_id"] = sid  # husky: "always expected, even when empty"
    if span.trace_state:
        fixed["trace.trace_state"] = span.trace_state
    fixed["status_code"] = span.status_code
    if span.status_message:
        fixed["status_message"] = span.status_message
    fixed["span.num_events"] = len(span.events)
    fixed["span.num_links"] = len(span.links)
    kind = KIND_NAMES[span.kind] if 0 <= span.kind < len(KIND_NAMES) else "unspecified"
    fixed["span.kind"] = kind
    fixed["type"] = kind
    duration = 0.0
    if start > 0 and end > 0:
        if end >= start:
            duration = (end - start) / 1e6
        else:
            fixed["meta.invalid_duration"] = True
    fixed["duration_ms"] = duration
    rows.append((husky_event(span.attrs, fixed, base, exception or {}), start_us, False))
    # Core ids first, for every row, so that a span is added whole or not at all. The span id column keeps the
    # OTLP span id (an attribute named trace.span_id may shadow the field, not the span's identity).
    cores = [(take_ids(f, ids), f, ts, annotation) for f, ts, annotation in rows]
    for (trace, _, parent), f, ts, annotation in cores:
        sink.add(trace, None if annotation else sid or None, parent, ts, f, annotation=annotation)


# ---- OTLP JSON attribute values (AnyValue in proto3 JSON) ---------------------------------------------------


def json_attributes(kvs: Any, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """OTLP JSON ``[{"key": ..., "value": {...}}]`` to husky field values (entries without key or value skipped)."""
    if out is None:
        out = {}
    if not kvs:
        return out
    if not isinstance(kvs, list):
        raise RecordError("attributes is not a list")
    for kv in kvs:
        if not isinstance(kv, dict):
            raise RecordError("attribute is not an object")
        key = kv.get("key")
        value = kv.get("value")
        if not key or not value:
            continue
        if key in SAMPLE_RATE_KEYS:
            continue  # husky: consumed as the event's sample rate, not a field
        _put_any(out, key, value, 0)
    return out


def _put_any(out: dict[str, Any], key: str, value: Any, depth: int) -> None:
    if not isinstance(value, dict):
        raise RecordError(f"attribute {key!r}: value is not an object")
    for typ, v in value.items():
        if typ == "stringValue":
            if not isinstance(v, str):
                raise RecordError(f"attribute {key!r}: stringValue is not a string")
            out[key] = v
        elif typ == "intValue":
            out[key] = _json_int(key, v)
        elif typ == "doubleValue":
            out[key] = _json_double(key, v)
        elif typ == "boolValue":
            if not isinstance(v, bool):
                raise RecordError(f"attribute {key!r}: boolValue is not true/false")
            out[key] = v
        elif typ == "arrayValue":
            out[key] = go_json(_json_array(key, v))
        elif typ == "kvlistValue":
            entries = (v or {}).get("values") or []
            if depth < MAX_DEPTH:
                for kv in entries:
                    k2, v2 = kv.get("key"), kv.get("value")
                    if k2 and v2:
                        _put_any(out, f"{key}.{k2}", v2, depth + 1)
            else:
                out[key] = go_json(_json_kvlist(key, entries))
        elif typ == "bytesValue":
            out[key] = go_json(_json_bytes(key, v))
        else:
            continue
        return


def _json_int(key: str, v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    raise RecordError(f"attribute {key!r}: intValue {v!r} is not an integer")


def _json_double(key: str, v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)  # proto3 JSON: "NaN", "Infinity", "-Infinity" or a number as text
        except ValueError:
            pass
    raise RecordError(f"attribute {key!r}: doubleValue {v!r} is not a number")


def _json_bytes(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise RecordError(f"attribute {key!r}: bytesValue is not base64 text")
    try:
        return base64.b64encode(base64.b64decode(v, validate=True)).decode("ascii")
    except ValueError:
        raise RecordError(f"attribute {key!r}: bytesValue is not base64") from None


def _json_plain(key: str, value: Any) -> Any:
    """An AnyValue as a plain value for JSON text (husky ``getMarshallableValue``); None when empty."""
    if not isinstance(value, dict):
        raise RecordError(f"attribute {key!r}: value is not an object")
    for typ, v in value.items():
        if typ == "stringValue":
            return v
        if typ == "intValue":
            return _json_int(key, v)
        if typ == "doubleValue":
            return _json_double(key, v)
        if typ == "boolValue":
            return v
        if typ == "arrayValue":
            return _json_array(key, v)
        if typ == "kvlistValue":
            return _json_kvlist(key, (v or {}).get("values") or [])
        if typ == "bytesValue":
            return _json_bytes(key, v)
    return None


def _json_array(key: str, v: Any) -> list[Any]:
    vals = (v or {}).get("values") or []
    out = [_json_plain(key, x) for x in vals]
    return [x for x in out if x is not None]  # husky drops empty values from arrays


def _json_kvlist(key: str, entries: list[Any]) -> dict[str, Any]:
    return {kv.get("key"): _json_plain(key, kv.get("value") or {}) for kv in entries if kv.get("key")}
