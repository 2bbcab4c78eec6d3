"""``nectar explain``: the waggle report (terminal, Markdown, or one self-contained HTML page with charts)."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from enum import StrEnum
from pathlib import Path

import typer

from nectar.cli.common import (
    DEFAULT_ENGINE_NAME,
    EngineName,
    app,
    notice,
    progress,
    resolve_corpus,
    resolve_policy,
    stdout_is_tty,
)
from nectar.config import load_config
from nectar.corpus.layout import Corpus
from nectar.explain import explain_policy, render
from nectar.policy.load import load_policy
from nectar.util import atomic_write_text, check_outputs


class ExplainFormat(StrEnum):
    text = "text"
    md = "md"
    html = "html"


def _shown(path: Path) -> str:
    """A path as the report shows it: relative to the current folder when inside it (the report of a project
    reads the same on every machine), else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@app.command(
    "explain",
    epilog=(
        "Examples: nectar explain  |  nectar explain --format md > waggle.md  |  "
        "nectar explain --format html -o waggle.html  |  nectar explain policy.toon --corpus traces/  |  "
        "nectar explain --against HEAD~1:policy.toon --format md  |  nectar explain --against rules.yaml"
    ),
)
def explain_cmd(
    policy: Path | None = typer.Argument(None, help="Policy file (default: project.policy from nectar.toml)."),
    corpus: Path | None = typer.Option(None, "--corpus", help="Corpus folder (default: project.corpus)."),
    fmt: ExplainFormat = typer.Option(ExplainFormat.text, "--format", help="text, md (Markdown) or html."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the report to this file (atomically)."),
    engine: EngineName = typer.Option(DEFAULT_ENGINE_NAME, "--engine", help="Evaluator: polars or duckdb."),
    examples: int = typer.Option(3, "--examples", min=0, help="Example trace ids per rule and per failed check."),
    cluster_size: int | None = typer.Option(
        None,
        "--cluster-size",
        min=1,
        help="Refinery peers (default: refinery.cluster_size, 1): UseClusterSize divides throughput goals by it.",
    ),
    against: str | None = typer.Option(
        None,
        "--against",
        help="A baseline to compare with (a .toon policy, a Refinery .yaml, or REV:path from git): the report adds "
        "what changes from it (as `nectar diff`): transition table, budget delta, a before/after chart.",
    ),
    solver_timeout: float = typer.Option(
        20.0, "--solver-timeout", min=0.1, help="With --against: seconds for the symbolic part of the diff."
    ),
) -> None:
    """Explain a policy for review: per rule, what it does in plain English, its Refinery form and what it did on
    the corpus; for the policy, kept volume, budget, proof checks, error and must-keep traces; with --against, what
    changes from a baseline. Always exits 0 when the report is made (use `nectar prove` and `nectar diff --fail-on`
    to gate)."""
    config = load_config()
    if cluster_size is not None:
        config = dataclasses.replace(config, cluster_size=cluster_size)
    if output is not None:
        check_outputs(output)
    path = resolve_policy(policy, config)
    parsed = load_policy(path, config.aliases)
    corp = Corpus.open(resolve_corpus(corpus, config))
    baseline = None
    if against is not None:
        from nectar.diff import load_side

        baseline = load_side(against, config)
    with progress("explaining", total=None):
        ex = explain_policy(
            parsed, corp, config, engine=engine.value, examples=examples, against=baseline,
            solver_timeout_ms=round(solver_timeout * 1000),
        )  # fmt: skip
        ex = dataclasses.replace(ex, policy_path=_shown(path), corpus_path=_shown(corp.root))
        color = output is None and fmt is ExplainFormat.text and stdout_is_tty()
        width = max(80, min(shutil.get_terminal_size((120, 24)).columns, 160)) if color else 120
        text = render(ex, fmt.value, color=color, width=width)
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(output, text)
        notice(f"wrote {output} ({fmt.value}, {len(text.encode('utf-8')):,} bytes)")
