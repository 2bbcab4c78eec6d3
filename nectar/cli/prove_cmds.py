"""``nectar prove``: check a policy against the corpus."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from nectar.cli.common import (
    DEFAULT_ENGINE_NAME,
    EngineName,
    app,
    emit_json,
    progress,
    resolve_corpus,
    resolve_policy,
    stdout_is_tty,
)
from nectar.config import load_config
from nectar.corpus.layout import Corpus
from nectar.errors import EXIT_CHECK_FAILED
from nectar.policy.load import load_policy
from nectar.prove import prove_policy, render_junit, render_text, to_json


class ProveFormat(StrEnum):
    text = "text"
    json = "json"
    junit = "junit"


@app.command(
    "prove",
    epilog=(
        "Examples: nectar prove  |  nectar prove policy.toon --corpus traces/ --format json  |  "
        "nectar prove --format junit > proof.xml"
    ),
)
def prove_cmd(
    policy: Path | None = typer.Argument(None, help="Policy file (default: project.policy from nectar.toml)."),
    corpus: Path | None = typer.Option(None, "--corpus", help="Corpus folder (default: project.corpus)."),
    engine: EngineName = typer.Option(DEFAULT_ENGINE_NAME, "--engine", help="Evaluator: polars or duckdb."),
    fmt: ProveFormat = typer.Option(ProveFormat.text, "--format", help="text, json or junit."),
    max_examples: int = typer.Option(5, "--max-examples", min=0, help="Counterexample traces per failed check."),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Also fail (exit 1) on a vacuous check (nothing to check), an unused waiver, or a lint warning.",
    ),
) -> None:
    """Prove a policy against the corpus: a catch-all exists, error traces and must-keep traces are always kept,
    and the expected kept events/s fit the budget. A check with nothing to check is VACUOUS, never PASS; a
    violation the policy's `accept` table waives is WAIVED. Exit 0 when no check fails, 1 when one fails (or, with
    --strict, is vacuous)."""
    config = load_config()
    path = resolve_policy(policy, config)
    parsed = load_policy(path, config.aliases)
    corp = Corpus.open(resolve_corpus(corpus, config))
    with progress("proving", total=None):
        report = prove_policy(parsed, corp, config, engine=engine.value, max_examples=max_examples, strict=strict)
    if fmt is ProveFormat.json:
        emit_json(to_json(report))
    elif fmt is ProveFormat.junit:
        sys.stdout.write(render_junit(report))
    else:
        sys.stdout.write(render_text(report, color=stdout_is_tty()))
    if not report.passed:
        raise typer.Exit(EXIT_CHECK_FAILED)
