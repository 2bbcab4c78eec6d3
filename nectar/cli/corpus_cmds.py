"""``nectar corpus synth|stats|fields`` and ``nectar sql``: make a corpus, look at it, query it."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nectar.cli.common import (
    OutputFormat,
    app,
    corpus_app,
    emit_json,
    notice,
    out_console,
    report_error,
    resolve_corpus,
)
from nectar.config import load_config
from nectar.corpus.layout import Corpus
from nectar.errors import NectarError

if TYPE_CHECKING:
    from nectar.corpus.sql import SqlSession


@corpus_app.command(
    "synth",
    epilog="Example: nectar corpus synth --spans 50000 --seed 7 --out corpus  (same seed and size: same bytes)",
)
def synth_cmd(
    out: Path = typer.Option(..., "--out", help="Folder to write the corpus to (replaced if it holds a corpus)."),
    spans: int = typer.Option(50_000, "--spans", min=0, help="Exact number of spans to generate."),
    seed: int = typer.Option(7, "--seed", help="Random seed: same seed and size give byte-identical files."),
    sample_rate: float = typer.Option(
        1.0, "--sample-rate", help="Recorded in the manifest: 10 means the corpus is 1 in 10 of real traffic."
    ),
    window: float = typer.Option(3600.0, "--window", help="Seconds of traffic the spans are spread over."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty folder that is not a corpus."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Generate realistic synthetic OpenTelemetry traffic (six services, errors, slow tail, fan-out) as a corpus."""
    from nectar.corpus.synth import synth_corpus

    manifest = synth_corpus(out, spans, seed, sample_rate=sample_rate, window=window, overwrite=overwrite)
    if fmt is OutputFormat.json:
        emit_json(
            {"corpus": str(out), "spans": manifest.spans, "traces": manifest.traces, "files": len(manifest.files)}
        )
        return
    out_console().print(
        f"Wrote {out}: {manifest.spans:,} spans, {manifest.traces:,} traces, {len(manifest.files)} part file(s), "
        f"{manifest.time_start} .. {manifest.time_end}",
        markup=False,
    )


@corpus_app.command("stats", epilog="Examples: nectar corpus stats  |  nectar corpus stats --corpus big --format json")
def stats_cmd(
    corpus: Path | None = typer.Option(None, "--corpus", help="Corpus folder (default: project.corpus)."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Spans, traces, time window, spans per trace (min/p50/p90/p99/max), root spans and services."""
    from nectar.corpus.stats import corpus_stats, render_stats

    stats = corpus_stats(Corpus.open(resolve_corpus(corpus)))
    if fmt is OutputFormat.json:
        emit_json(stats.to_json())
        return
    out_console().print(render_stats(stats), markup=False)


@corpus_app.command(
    "fields",
    epilog="Examples: nectar corpus fields  |  nectar corpus fields --format json --top 20  |  ... --field name",
)
def fields_cmd(
    corpus: Path | None = typer.Option(None, "--corpus", help="Corpus folder (default: project.corpus)."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
    top: int = typer.Option(10, "--top", min=1, help="Top values kept per field and type."),
    only: list[str] | None = typer.Option(
        None, "--field", help="Show only this field or alias, e.g. http.status (repeatable)."
    ),
) -> None:
    """The field catalog: per field its types, presence, distinct values, top values or quantiles."""
    from nectar.corpus.stats import FieldCatalog, field_catalog, render_catalog

    catalog = field_catalog(Corpus.open(resolve_corpus(corpus)), top=top)
    if only:
        # An alias (nectar.toml [aliases], e.g. http.status) stands for the fields it names.
        aliases = load_config().aliases
        wanted: set[str] = set()
        for name in only:
            targets = [name] if catalog.get(name) is not None else list(aliases.get(name, ()))
            targets = [t for t in targets if catalog.get(t) is not None]
            if not targets:
                raise NectarError(f"no field {name!r} in the corpus", hint="`nectar corpus fields` lists them all")
            wanted.update(targets)
        catalog = FieldCatalog(catalog.spans, tuple(f for f in catalog.fields if f.name in wanted))
    if fmt is OutputFormat.json:
        emit_json(catalog.to_json())
        return
    out_console().print(render_catalog(catalog, top=min(top, 5) if not only else top), markup=False)


class SqlFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


SQL_EPILOG = (
    "Examples:  "
    "nectar sql 'SELECT \"http.route\", count(*) FROM spans GROUP BY 1 ORDER BY 2 DESC'  |  "
    "nectar sql 'SELECT root_service, count(*) FILTER (WHERE has_error) AS errors FROM traces GROUP BY 1' "
    "--format csv  |  nectar sql  (interactive; end statements with ;, .quit to leave)"
)


@app.command("sql", epilog=SQL_EPILOG)
def sql_cmd(
    query: str | None = typer.Argument(None, help="SQL to run (omit for an interactive prompt)."),
    corpus: Path | None = typer.Option(None, "--corpus", help="Corpus folder (default: project.corpus)."),
    fmt: SqlFormat = typer.Option(SqlFormat.table, "--format", help="table, csv or json."),
    max_rows: int = typer.Option(1000, "--max-rows", min=1, help="Rows shown in table format (csv/json: all)."),
) -> None:
    """Read-only DuckDB SQL over the corpus: views `spans` (one row per span) and `traces` (one per trace).

    Quote dotted field names: "http.route". Writing, attaching, extensions, settings and reading other files
    are refused (exit 2).
    """
    from nectar.corpus.sql import open_session

    with open_session(resolve_corpus(corpus)) as session:
        if query is not None:
            _run_and_print(session, query, fmt, max_rows)
            return
        _interactive(session, fmt, max_rows)


def _run_and_print(session: SqlSession, query: str, fmt: SqlFormat, max_rows: int) -> None:
    from nectar.corpus.sql import render_csv, render_json, render_table

    results = session.run(query, max_rows if fmt is SqlFormat.table else None)
    if fmt is SqlFormat.json:
        sys.stdout.write(render_json(results))
    elif fmt is SqlFormat.csv:
        sys.stdout.write("\n".join(render_csv(r) for r in results))
    else:
        out_console().print("\n\n".join(render_table(r) for r in results), markup=False, highlight=False)


def _interactive(session: SqlSession, fmt: SqlFormat, max_rows: int) -> None:
    """Read statements ending with ``;`` (``.quit`` or end of input stops); errors are shown and reading goes on.

    With piped input (not a terminal) there is no prompt, and the exit code is 2 if any statement failed.
    """
    tty = sys.stdin.isatty()
    if tty:
        notice("nectar sql: views `spans` and `traces`. End statements with ;  (.quit to leave)")
    buf: list[str] = []
    failed = 0
    while True:
        try:
            line = input(("nectar> " if not buf else "   ...> ") if tty else "")
        except EOFError:
            break
        if not buf and line.strip() in (".quit", ".exit", "\\q"):
            break
        buf.append(line)
        if line.rstrip().endswith(";"):
            text = "\n".join(buf)
            buf = []
            try:
                _run_and_print(session, text, fmt, max_rows)
            except NectarError as exc:
                failed = report_error(exc)
    rest = "\n".join(buf)
    if rest.strip():
        try:
            _run_and_print(session, rest, fmt, max_rows)
        except NectarError as exc:
            failed = report_error(exc)
    if failed and not tty:
        raise typer.Exit(failed)
