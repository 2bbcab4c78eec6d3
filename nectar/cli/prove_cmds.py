"""``nectar prove``: check a policy against the corpus."""

from __future__ import annotations

import dataclasses
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
from nectar.util import atomic_write_text, check_outputs


class Symbolic(StrEnum):
    on = "on"
    off = "off"


class ProveFormat(StrEnum):
    text = "text"
    json = "json"
    junit = "junit"


@app.command(
    "prove",
    epilog=(
        "Examples: nectar prove  |  nectar prove policy.toon --corpus traces/ --format json  |  "
        "nectar prove --format junit > proof.xml  |  nectar prove --witness-out witnesses.jsonl && "
        "nectar ingest witnesses.jsonl --corpus witness-corpus"
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
        help="Also fail (exit 1) on a vacuous check (nothing to check), an unused waiver, a lint warning, a "
        "symbolic verdict that is unknown, or a rule no possible trace reaches.",
    ),
    symbolic: Symbolic = typer.Option(
        Symbolic.on, "--symbolic", help="Also prove every check over all possible traces (z3): on or off."
    ),
    solver_timeout: float = typer.Option(
        20.0,
        "--solver-timeout",
        min=0.1,
        help="Seconds for the whole symbolic pass; what it does not decide is unknown.",
    ),
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
    """Prove a policy against the corpus: a catch-all exists, error traces and must-keep traces are always kept,
    and the expected kept events/s fit the budget. A check with nothing to check is VACUOUS, never PASS; a
    violation the policy's `accept` table waives is WAIVED. Exit 0 when no check fails, 1 when one fails (or, with
    --strict, is vacuous).

    Each check is also proved over every possible trace (--symbolic on, the default): PROVED, REFUTED with a witness
    trace (a refutation fails the run), or UNKNOWN with the reason."""
    config = load_config()
    if cluster_size is not None:
        config = dataclasses.replace(config, cluster_size=cluster_size)
    if witness_out is not None:
        check_outputs(witness_out)
    path = resolve_policy(policy, config)
    parsed = load_policy(path, config.aliases)
    corp = Corpus.open(resolve_corpus(corpus, config))
    with progress("proving", total=None):
        timeout_ms = round(solver_timeout * 1000) if symbolic is Symbolic.on else None
        report = prove_policy(
            parsed, corp, config, engine=engine.value, max_examples=max_examples, strict=strict,
            solver_timeout_ms=timeout_ms,
        )  # fmt: skip
    if witness_out is not None:
        atomic_write_text(witness_out, "".join(line + "\n" for line in report.witnesses))
    if fmt is ProveFormat.json:
        emit_json(to_json(report))
    elif fmt is ProveFormat.junit:
        sys.stdout.write(render_junit(report))
    else:
        sys.stdout.write(render_text(report, color=stdout_is_tty()))
    if not report.passed:
        raise typer.Exit(EXIT_CHECK_FAILED)
