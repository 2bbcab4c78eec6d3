"""``nectar diff``: what changes when a policy changes, on the corpus and for every possible trace."""

from __future__ import annotations

import dataclasses
import sys
from enum import StrEnum
from pathlib import Path

import typer

from nectar.cli.common import app, emit_json, err_console, progress
from nectar.cli.engine_cmds import DEFAULT_CHOICE, EngineChoice
from nectar.config import Config, load_config
from nectar.errors import EXIT_CHECK_FAILED

DIFF_EPILOG = (
    "Examples: nectar diff old.toon policy.toon  |  nectar diff HEAD~1:policy.toon policy.toon --format md  |  "
    "nectar diff rules.yaml policy.toon --env production  |  "
    "nectar diff origin/main:policy.toon policy.toon --format md --fail-on errors,must-keep  |  "
    "nectar diff a.toon b.toon --format json --symbolic off"
)


class DiffFormat(StrEnum):
    text = "text"
    md = "md"
    json = "json"


class Symbolic(StrEnum):
    on = "on"
    off = "off"


def corpus_or_none(corpus: Path | None, config: Config) -> Path | None:
    """``--corpus``, else nectar.toml's ``project.corpus``, else ``./corpus`` when it is one, else None."""
    if corpus is not None:
        return corpus
    if config.corpus is not None:
        return config.corpus
    default = Path("corpus")
    return default if (default / "manifest.json").exists() else None


@app.command("diff", epilog=DIFF_EPILOG)
def diff_cmd(
    old: str = typer.Argument(..., help="The policy before: a .toon policy, a Refinery .yaml, or REV:path (git)."),
    new: str = typer.Argument(..., help="The policy after: the same kinds, in any mix with OLD."),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Corpus folder (default: project.corpus, else ./corpus; without one, no corpus part)."
    ),
    env: str | None = typer.Option(
        None, "--env", help="Environment (Samplers key) on both sides; Refinery's lookup: exact name, else __default__."
    ),
    fmt: DiffFormat = typer.Option(DiffFormat.text, "--format", help="text, md (a pull-request comment) or json."),
    fail_on: str | None = typer.Option(
        None,
        "--fail-on",
        help="Exit 1 when one of these kinds of change occurs (comma-separated): errors (an error trace's keep "
        "probability drops, on the corpus or for a witness), must-keep (the same for must-keep traces), budget "
        "(expected kept events/s rise over the budget; any rise without one), any (any decision or reason change).",
    ),
    engine: EngineChoice = typer.Option(DEFAULT_CHOICE, "--engine", help="polars, duckdb or reference."),
    symbolic: Symbolic = typer.Option(
        Symbolic.on, "--symbolic", help="Also compare over every possible trace (z3): on or off."
    ),
    solver_timeout: float = typer.Option(
        20.0,
        "--solver-timeout",
        min=0.1,
        help="Seconds for the whole symbolic search; what it does not reach is reported as such.",
    ),
    examples: int = typer.Option(3, "--examples", min=0, help="Example trace ids per row."),
    witness_out: Path | None = typer.Option(
        None, "--witness-out", help="Write every symbolic witness trace here as flat JSON lines (ingestable)."
    ),
    cluster_size: int | None = typer.Option(
        None,
        "--cluster-size",
        min=1,
        help="Refinery peers (default: refinery.cluster_size, 1): UseClusterSize divides throughput goals by it.",
    ),
) -> None:
    """Show what changes from OLD to NEW: on the corpus, the traces whose decision changes (old rule and outcome ->
    new rule and outcome), the change in expected kept events/s, error and must-keep traces whose keep probability
    drops, and traces whose only change is the reason string; for every possible trace (symbolic), "equivalent" or
    a witness trace per kind of change. Exit 0, or 1 when --fail-on selects a kind of change that occurs."""
    import json

    from nectar.corpus.layout import Corpus
    from nectar.diff import diff_sides, load_side, parse_fail_on
    from nectar.util import atomic_write_text, check_outputs

    kinds = parse_fail_on(fail_on)
    config = load_config()
    if cluster_size is not None:
        config = dataclasses.replace(config, cluster_size=cluster_size)
    if witness_out is not None:
        check_outputs(witness_out)
    old_side = load_side(old, config, env)
    new_side = load_side(new, config, env)
    where = corpus_or_none(corpus, config)
    opened = Corpus.open(where) if where is not None else None
    with progress("diffing", total=None):
        report = diff_sides(
            old_side, new_side, config, opened, engine=engine.value, examples=examples, env=env,
            solver_timeout_ms=round(solver_timeout * 1000) if symbolic is Symbolic.on else None,
        )  # fmt: skip
    if witness_out is not None:
        spans = report.symbolic.witnesses if report.symbolic is not None else ()
        lines = [json.dumps(s, sort_keys=True, ensure_ascii=False) for w in spans for s in w.spans]
        atomic_write_text(witness_out, "".join(line + "\n" for line in lines))
    if fmt is DiffFormat.json:
        emit_json(report.to_json())
    elif fmt is DiffFormat.md:
        from nectar.diff.render_md import render_md

        sys.stdout.write(render_md(report))
    else:
        from nectar.diff.render_text import render_text

        sys.stdout.write(render_text(report))
    failed = report.failures(kinds)
    for line in failed:
        err_console().print(f"--fail-on {line}", markup=False)
    if failed:
        raise typer.Exit(EXIT_CHECK_FAILED)
