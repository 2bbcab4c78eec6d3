"""``nectar ingest``: read trace files into a corpus (see :mod:`nectar.corpus.ingest`)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from nectar.cli.common import OutputFormat, app, config_here, emit_json, out_console, progress, resolve_corpus
from nectar.corpus.ingest import IngestSummary, ingest_paths
from nectar.corpus.ingest.sources import expand_inputs
from nectar.refinery.ids import IdFields

SHOWN_SKIPS = 20


class InputFormat(StrEnum):
    auto = "auto"
    otlp_json = "otlp-json"
    otlp_proto = "otlp-proto"
    jaeger = "jaeger"
    zipkin = "zipkin"
    jsonl = "jsonl"
    opensearch = "opensearch"
    parquet = "parquet"


@app.command(
    "ingest",
    epilog=(
        "Examples: nectar ingest traces.jsonl --corpus corpus/ ;  "
        "nectar ingest exports/ 'more/*.json.gz' --sample-rate 10 ;  "
        "kubectl logs collector | nectar ingest - --format otlp-json --output json"
    ),
)
def ingest_cmd(
    paths: list[str] = typer.Argument(..., help="Files, folders (recursive), glob patterns, or - for stdin."),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Corpus folder to add to (created if missing; default: project.corpus)."
    ),
    fmt: InputFormat = typer.Option(InputFormat.auto, "--format", help="Input format (default: detect per file)."),
    strict: bool = typer.Option(
        False, "--strict", help="Fail (exit 2, corpus untouched) on the first malformed record instead of skipping it."
    ),
    sample_rate: float | None = typer.Option(
        None, "--sample-rate", help="The corpus holds 1 in N of real traffic (recorded in the manifest)."
    ),
    output: OutputFormat = typer.Option(OutputFormat.text, "--output", help="Summary as text or json."),
) -> None:
    """Ingest span files (OTLP JSON/protobuf, Jaeger, Zipkin, flat JSON lines, OpenSearch bulk, Parquet; gzip ok).

    Idempotent: a file already in the corpus (same SHA-256) adds nothing. Atomic: a failed run leaves the corpus
    as it was. Malformed records are skipped and reported with file and line. The trace and parent ids are read
    from nectar.toml's [refinery] trace_id_fields / parent_id_fields, as Refinery's IDFieldNames / ParentIdFieldNames.
    """
    cfg = config_here()
    ids = IdFields(cfg.trace_id_fields, cfg.parent_id_fields)
    target = resolve_corpus(corpus, cfg)  # --corpus, else project.corpus (created if missing), else ./corpus
    total = 0
    for _, p in expand_inputs(paths, exclude=target):
        if p is not None:
            total += p.stat().st_size
    with progress("ingesting", total=total or None) as bar:
        summary = ingest_paths(
            paths, target, fmt=fmt.value, strict=strict, sample_rate=sample_rate, progress=bar, id_fields=ids
        )
    if output is OutputFormat.json:
        emit_json(summary.to_json())
    else:
        _render(summary)


def _render(s: IngestSummary) -> None:
    con = out_console()
    events = f" (+{s.span_events:,} span events/links)" if s.span_events else ""
    con.print(
        f"ingested {s.files:,} file{'s' if s.files != 1 else ''} into {s.corpus}: {s.spans:,} spans{events}, "
        f"{s.traces_added:,} traces added (corpus now {s.corpus_spans:,} rows, {s.corpus_traces:,} traces)",
        markup=False,
    )
    if s.already_ingested:
        con.print(f"already ingested, skipped: {len(s.already_ingested)} file(s)", markup=False)
        for name in s.already_ingested[:SHOWN_SKIPS]:
            con.print(f"  {name}", markup=False)
    if s.skipped:
        con.print(f"skipped {s.skipped:,} malformed record(s):", markup=False)
        for reason, n in sorted(s.skipped_by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
            con.print(f"  {n:,} x {reason}", markup=False)
        for r in s.skipped_records[:SHOWN_SKIPS]:
            con.print(f"  {r.location()}: {r.reason}", markup=False)
        more = s.skipped - min(len(s.skipped_records), SHOWN_SKIPS)
        if more > 0:
            con.print(f"  ... and {more:,} more (`--output json` lists up to 1,000)", markup=False)
