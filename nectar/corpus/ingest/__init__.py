"""Trace ingest: read span files of any supported format into a Nectar corpus (``nectar ingest``).

Public API: :func:`ingest_paths` and its result :class:`IngestSummary`. One reader module per format
(``jsonl``, ``otlp_json``, ``otlp_proto``, ``jaeger``, ``zipkin``, ``opensearch``, ``parquet``); each is a
generator that appends spans to a :class:`~nectar.corpus.ingest.builder.SpanSink` and yields whenever a batch is
full, so a whole ingest streams: at most one batch (~100k spans) is held in memory, and each batch becomes a part
file through :func:`nectar.corpus.store.append_tables`, which makes the run atomic.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import pyarrow as pa

from nectar.corpus import store
from nectar.corpus.ingest.builder import BATCH_SPANS, SkippedRecord, Skips, SpanSink
from nectar.corpus.ingest.sources import (
    FORMAT_CHOICES,
    FORMATS,
    Source,
    detect_format,
    expand_inputs,
    open_source,
    read_head,
    reporting_progress,
)
from nectar.errors import NectarError
from nectar.refinery.ids import DEFAULT_ID_FIELDS, IdFields
from nectar.util import sha256_file

_READER_MODULES = {
    "jsonl": "jsonl",
    "otlp-json": "otlp_json",
    "otlp-proto": "otlp_proto",
    "jaeger": "jaeger",
    "zipkin": "zipkin",
    "opensearch": "opensearch",
    "parquet": "parquet",
}

# A reader appends to the sink and yields None when the sink is full, or yields a ready (table, column map).
Reader = Callable[[Source, SpanSink, Skips], Iterator[Any]]


def reader_for(fmt: str) -> Reader:
    """The reader generator of a format name (one of :data:`FORMATS`)."""
    mod = import_module(f"nectar.corpus.ingest.{_READER_MODULES[fmt]}")
    fn: Reader = mod.read
    return fn


@dataclass(slots=True)
class IngestSummary:
    """What one ingest run did. ``spans`` counts spans proper; ``span_events`` the extra rows for OTLP span
    events and links (Refinery turns them into events of the trace); ``rows`` is their sum, the rows added."""

    corpus: str
    files: int = 0
    spans: int = 0
    span_events: int = 0
    traces_added: int = 0
    corpus_spans: int = 0
    corpus_traces: int = 0
    skipped: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_records: list[SkippedRecord] = field(default_factory=list)
    already_ingested: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.spans + self.span_events

    def to_json(self) -> dict[str, Any]:
        """The summary as plain data (``nectar ingest --output json``)."""
        return {
            "corpus": self.corpus,
            "files": self.files,
            "spans": self.spans,
            "span_events": self.span_events,
            "rows": self.rows,
            "traces_added": self.traces_added,
            "corpus_spans": self.corpus_spans,
            "corpus_traces": self.corpus_traces,
            "skipped": self.skipped,
            "skipped_by_reason": dict(sorted(self.skipped_by_reason.items())),
            "skipped_records": [r.to_json() for r in self.skipped_records],
            "already_ingested": self.already_ingested,
            "sources": self.sources,
        }


class _Progress:
    def advance(self, n: int = 1) -> None:
        pass


def ingest_paths(
    paths: list[str],
    corpus_dir: Path,
    fmt: str = "auto",
    strict: bool = False,
    sample_rate: float | None = None,
    progress: Any = None,
    batch_spans: int | None = None,
    id_fields: IdFields = DEFAULT_ID_FIELDS,
) -> IngestSummary:
    """Ingest span files into the corpus at ``corpus_dir`` (created if needed) and return what happened.

    ``paths`` are files, folders (walked recursively), glob patterns, or ``-`` for stdin; gzip is recognised
    anywhere. ``fmt`` is ``auto`` (detected per file) or one of :data:`FORMATS`. A source whose SHA-256 is
    already in the manifest adds nothing and is listed in ``already_ingested``. Malformed records are skipped
    and reported (file and line); with ``strict`` the first one raises :class:`NectarError` instead. Either way
    a failed run leaves the corpus exactly as it was. ``sample_rate`` N records that the corpus holds 1 in N of
    real traffic. ``progress`` is an object with ``advance(bytes)`` (e.g. :func:`nectar.cli.common.progress`).
    ``id_fields`` names the fields Refinery takes trace and parent ids from (``nectar.toml`` ``[refinery]
    trace_id_fields``/``parent_id_fields``): the ones it consumes become core columns, hidden from rules, in every
    format (:func:`nectar.corpus.ingest.builder.take_ids`); names other than the defaults are recorded in the
    manifest's ingest options.
    """
    if fmt not in FORMAT_CHOICES:
        raise NectarError(f"unknown input format {fmt!r}", hint=f"choose one of: {', '.join(FORMAT_CHOICES)}")
    if sample_rate is not None and not sample_rate >= 1:
        raise NectarError("--sample-rate must be a number >= 1 (10 means the corpus holds 1 in 10 of traffic)")
    corpus_dir = Path(corpus_dir)
    bar = progress if progress is not None else _Progress()
    inputs = expand_inputs(paths, exclude=corpus_dir)
    manifest = store.load_manifest(corpus_dir)
    known = {s.get("sha256") for s in manifest.sources} if manifest else set()
    before_traces = manifest.traces if manifest else 0
    summary = IngestSummary(corpus=str(corpus_dir))
    skips = Skips(strict=strict)
    sink = SpanSink(batch_spans or BATCH_SPANS, id_fields)
    new_sources: list[dict[str, Any]] = []

    # Idempotency needs each source's SHA-256 before it is read, unless no ingested source has its size (equal
    # hashes mean equal sizes): then the hash is computed in a thread while the file is parsed.
    sizes = {s.get("bytes") for s in manifest.sources} if manifest else set()
    legacy = manifest is not None and any("bytes" not in s for s in manifest.sources)
    later: dict[str, Future[str]] = {}
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nectar-sha256")

    with tempfile.TemporaryDirectory(prefix="nectar-ingest-") as spool, hasher:
        todo: list[tuple[Source, str]] = []
        for display, path in inputs:
            size = path.stat().st_size if path is not None else None
            if path is not None and size not in sizes and not legacy:
                src = open_source(display, path, Path(spool), hash_now=False)
                later[display] = hasher.submit(sha256_file, path)
            else:
                if size is None or size in sizes:  # it may duplicate a file hashed in the background
                    known.update(fut.result() for fut in later.values())
                src = open_source(display, path, Path(spool))
                if src.sha256 in known:
                    summary.already_ingested.append(display)
                    continue
                known.add(src.sha256)
            sizes.add(src.size)
            src_fmt = fmt if fmt != "auto" else detect_format(read_head(src))
            if src_fmt is None:
                raise NectarError(
                    f"{display}: cannot tell the format of this file",
                    hint=f"name it with --format ({', '.join(FORMATS)})",
                )
            todo.append((src, src_fmt))

        def batches() -> Iterator[tuple[pa.Table, dict[str, list[str]]]]:
            for src, src_fmt in todo:
                spans0, events0, skipped0 = sink.real_spans, sink.span_events, skips.count
                done = [0]

                def advance(n: int, done: list[int] = done, size: int = src.size) -> None:
                    n = min(n, size - done[0])  # a file read twice (detection) is not counted twice
                    if n > 0:
                        done[0] += n
                        bar.advance(n)

                with reporting_progress(advance):
                    for ready in reader_for(src_fmt)(src, sink, skips):
                        if ready is not None:  # a reader that builds whole tables itself (Parquet)
                            if sink.n:
                                yield sink.flush()
                            yield ready
                        elif sink.full:
                            yield sink.flush()
                advance(src.size)
                new_sources.append(
                    {
                        "path": src.display,
                        "bytes": src.size,
                        "sha256": later[src.display].result() if src.display in later else src.sha256,
                        "format": src_fmt,
                        "spans": sink.real_spans - spans0,
                        "span_events": sink.span_events - events0,
                        "skipped": skips.count - skipped0,
                    }
                )
            if sink.n:
                yield sink.flush()

        options: dict[str, Any] = {"format": fmt, "strict": strict}
        if id_fields != DEFAULT_ID_FIELDS:
            options["trace_id_fields"] = list(id_fields.trace)
            options["parent_id_fields"] = list(id_fields.parent)
        if todo or manifest is None:
            new = store.append_tables(corpus_dir, batches(), new_sources, options, sample_rate)
        else:
            new = manifest
            if sample_rate is not None and manifest.sample_rate != float(sample_rate):
                new = store.append_tables(corpus_dir, iter(()), [], {}, sample_rate)

    summary.files = len(new_sources)
    summary.spans = sink.real_spans
    summary.span_events = sink.span_events
    summary.traces_added = new.traces - before_traces
    summary.corpus_spans = new.spans
    summary.corpus_traces = new.traces
    summary.skipped = skips.count
    summary.skipped_by_reason = dict(skips.by_reason)
    summary.skipped_records = list(skips.records)
    summary.sources = new_sources
    return summary


__all__ = ["FORMATS", "FORMAT_CHOICES", "IngestSummary", "SkippedRecord", "ingest_paths", "reader_for"]
