"""Flat JSON lines, one span per line, Honeycomb/libhoney style.

Ids are consumed into the core columns and are not fields (Refinery hides them from rules, SEMANTICS.md 2.1):
the trace id from ``trace.trace_id`` else ``traceId`` (Refinery's default ``TraceNames``), the parent from
``trace.parent_id`` else ``parentId`` (default ``ParentNames``; an empty string means a root), the span id from
``trace.span_id`` else ``spanId``; ``timestamp`` (RFC 3339 or epoch s/ms/µs/ns) is the span start. Every other
key is a field with the type JSON gave it: int, float (``1.0`` is a float), string, bool, null (present with
null), and objects/arrays kept whole as JSON.

Note: Refinery's own libhoney JSON path decodes every JSON number as float64 (SEMANTICS.md 2.1); the corpus keeps
the source's int/float distinction and leaves that coercion to the evaluators.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from nectar.corpus.ingest.builder import RecordError, Skips, SpanSink
from nectar.corpus.ingest.chunks import chunks_ahead
from nectar.corpus.ingest.common import rfc3339_to_us, timestamp_to_us
from nectar.corpus.ingest.sources import Source, line_text, open_stream
from nectar.refinery.model import PARENT_ID_KEYS, TRACE_ID_KEYS

TRACE_KEYS = TRACE_ID_KEYS  # Refinery's default IDFieldNames
PARENT_KEYS = PARENT_ID_KEYS
SPAN_KEYS = ("trace.span_id", "spanId")
TIMESTAMP_KEY = "timestamp"


def _take(d: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """Remove every string-valued key of ``keys`` from ``d``; the first non-empty one is the id."""
    found = None
    for k in keys:
        v = d.get(k)
        if v.__class__ is str:
            del d[k]
            if found is None and v:
                found = v
    return found


def take_ids(d: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """Remove the id keys from a flat span and return ``(trace id, span id, parent id)``."""
    trace = _take(d, TRACE_KEYS)
    if trace is None:
        present = [k for k in TRACE_KEYS if k in d]
        raise RecordError(f"trace id not a string: {present[0]!r}" if present else "missing trace id")
    return trace, _take(d, SPAN_KEYS), _take(d, PARENT_KEYS)


USE_FAST_PATH = True  # tests turn it off to compare both paths


def read(src: Source, sink: SpanSink, skips: Skips) -> Iterator[Any]:
    """Read a flat JSON lines file chunk by chunk (memory: one chunk plus the current batch).

    Each chunk of whole lines goes through the native fast path (:mod:`nectar.corpus.ingest.jsonl_fast`) when
    that gives exactly the same result, else line by line.
    """
    from nectar.corpus.ingest.jsonl_fast import fast_chunk

    raw, stream = open_stream(src)
    first_line = 1
    try:
        # The next chunk is parsed in a thread while this one's part files are written (chunks.chunks_ahead).
        for chunk, ready in chunks_ahead(stream, fast_chunk if USE_FAST_PATH else None):
            lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
            if ready is not None:
                table, colmap = ready
                sink.real_spans += table.num_rows
                step = sink.batch_spans
                for start in range(0, table.num_rows, step):
                    part = table.slice(start, step)
                    keep = [c for c in part.column_names if c not in colmap or _has_values(part, c)]
                    yield part.select(keep), {c: colmap[c] for c in keep if c in colmap}
            else:
                yield from read_lines(enumerate(io.BytesIO(chunk), first_line), src.display, sink, skips)
            first_line += lines
    except (OSError, EOFError) as exc:  # a truncated gzip stream: keep what was read, report the rest
        skips.add(src.display, None, f"unreadable input: {exc} (the lines before line {first_line} are kept)")
    finally:
        raw.close()


def read_lines(numbered: Iterator[tuple[int, bytes]], name: str, sink: SpanSink, skips: Skips) -> Iterator[None]:
    """The line-by-line reader: every line's fate decided and reported on its own."""
    loads = json.loads
    add = sink.add
    limit = sink.batch_spans
    for lineno, line in numbered:
        try:
            d = loads(line)
        except ValueError as exc:
            if not line.strip():
                continue
            col = getattr(exc, "colno", None)
            msg = getattr(exc, "msg", None) or str(exc)
            skips.add(name, lineno, f"invalid JSON: {msg}", column=col, text=line_text(line))
            continue
        if d.__class__ is not dict:
            skips.add(name, lineno, "not a JSON object", text=line_text(line))
            continue
        # Fast path: the common spelling of every id; anything else goes through take_ids.
        tid = d.pop("trace.trace_id", None)
        if tid.__class__ is str and tid and "traceId" not in d:
            sid = d.pop("trace.span_id", None)
            if sid is not None and sid.__class__ is not str:
                d["trace.span_id"] = sid
                sid = None
            pid = d.pop("trace.parent_id", None)
            if (pid is not None and pid.__class__ is not str) or "parentId" in d or "spanId" in d:
                if pid is not None:
                    d["trace.parent_id"] = pid
                if sid is not None:
                    d["trace.span_id"] = sid
                d["trace.trace_id"] = tid
                tid = None
        else:
            if tid is not None:
                d["trace.trace_id"] = tid
            tid = None
        try:
            if tid is None:
                tid, sid, pid = take_ids(d)
            ts = d.pop("timestamp", None)
            if ts is None:
                ts_us = None
            elif ts.__class__ is str and len(ts) > 19 and ts[10] == "T":
                ts_us = rfc3339_to_us(ts)
            else:
                ts_us = timestamp_to_us(ts)
        except RecordError as exc:
            skips.add(name, lineno, exc.reason, text=line_text(line))
            continue
        add(tid, sid or None, pid or None, ts_us, d)
        if sink.n >= limit:
            yield


def _has_values(table: Any, column: str) -> bool:
    return bool(table.column(column).null_count < table.num_rows)
