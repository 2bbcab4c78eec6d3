"""Flat JSON lines, one span per line, Honeycomb/libhoney style: each line is one event as Refinery receives it.

Ids follow Refinery (:func:`nectar.corpus.ingest.builder.take_ids`, SEMANTICS.md 2.1): the string-valued trace-id
and parent-id keys it consumes (``[refinery] trace_id_fields``/``parent_id_fields``, default ``trace.trace_id``/
``traceId`` and ``trace.parent_id``/``parentId``; only the first trace-id key in key order, every parent-id key;
an empty parent means a root) become core columns and are not fields. Everything else is a field that rules see,
with the type JSON gave it: int, float (``1.0`` is a float), string, bool, null (present with null), and
objects/arrays kept whole as JSON. So ``trace.span_id``/``spanId`` (which also fill the ``span_id`` core column), a
``null`` parent id and a second trace-id key stay fields. ``timestamp`` (RFC 3339 or epoch s/ms/µs/ns) is the span
start.

Note: Refinery's own libhoney JSON path decodes every JSON number as float64 (SEMANTICS.md 2.1); the corpus keeps
the source's int/float distinction and leaves that coercion to the evaluators.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from functools import partial
from typing import Any

from nectar.corpus.ingest.builder import RecordError, Skips, SpanSink, take_ids
from nectar.corpus.ingest.chunks import chunks_ahead
from nectar.corpus.ingest.common import rfc3339_to_us, timestamp_to_us
from nectar.corpus.ingest.sources import Source, line_text, open_stream

TIMESTAMP_KEY = "timestamp"


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
        parse = partial(fast_chunk, ids=sink.ids) if USE_FAST_PATH else None
        for chunk, ready in chunks_ahead(stream, parse):
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
    ids = sink.ids
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
        try:
            tid, sid, pid = take_ids(d, ids)
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
        add(tid, sid, pid, ts_us, d)
        if sink.n >= limit:
            yield


def _has_values(table: Any, column: str) -> bool:
    return bool(table.column(column).null_count < table.num_rows)
