"""Commands of this group register on `nectar.cli.common.app` (see nectar/cli/__init__.py).

``nectar replay``: replay an existing Refinery rules file over the corpus (refinery issues #903, #1495).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from nectar.cli.common import OutputFormat, app, emit_json, out_console, resolve_corpus, stdout_is_tty
from nectar.engine.api import DEFAULT_ENGINE

REPLAY_EPILOG = (
    "Examples: nectar replay rules.yaml --env production  |  "
    "nectar replay rules.yaml --corpus corpus --engine duckdb --format json  |  "
    "nectar replay rules.yaml --per-trace decisions.jsonl  |  "
    "nectar replay rules.yaml --cluster-size 3 --no-validate"
)


class EngineChoice(StrEnum):
    polars = "polars"
    duckdb = "duckdb"
    reference = "reference"


DEFAULT_CHOICE = EngineChoice(DEFAULT_ENGINE)  # nectar.engine.api.DEFAULT_ENGINE, for every CLI


@app.command("replay", epilog=REPLAY_EPILOG)
def replay_cmd(
    rules: Path = typer.Argument(..., help="Refinery rules file (RulesVersion 2 YAML)."),
    corpus: Path | None = typer.Option(None, "--corpus", help="Corpus folder (default: project.corpus)."),
    env: str | None = typer.Option(
        None, "--env", help="Environment (Samplers key); Refinery's lookup: exact name, else __default__."
    ),
    engine: EngineChoice = typer.Option(DEFAULT_CHOICE, "--engine", help="polars, duckdb or reference."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
    per_trace: Path | None = typer.Option(
        None, "--per-trace", help="Write each trace's decision as JSON lines (sorted by trace id) to FILE."
    ),
    cluster_size: int | None = typer.Option(
        None,
        "--cluster-size",
        min=1,
        help="Refinery peers (default: refinery.cluster_size, 1): UseClusterSize divides throughput goals by it.",
    ),
    no_validate: bool = typer.Option(
        False,
        "--no-validate",
        help="Run the file as Refinery does with validation off (refinery --no-validate); its findings become lints.",
    ),
) -> None:
    """Replay a Refinery rules file over the corpus: per rule, what it matches, decides and would keep."""
    from nectar.config import load_config
    from nectar.corpus.layout import Corpus
    from nectar.engine.api import evaluate, select_sampler
    from nectar.engine.replay import ReplayInput, build_report, per_trace_lines, sampler_key
    from nectar.refinery.lints import lint_rules
    from nectar.refinery.loader import load_rules_with_positions, validate_rules
    from nectar.refinery.model import nested_deterministic_valid
    from nectar.util import atomic_write_bytes, check_outputs

    config = load_config()
    if per_trace is not None:
        check_outputs(per_trace)
    nested = nested_deterministic_valid(config.refinery_version)
    # exit 2 with Refinery's messages if it rejects the file (unless --no-validate: then they are reported as lints)
    rules_file, positions = load_rules_with_positions(
        rules, accept_downstream_deterministic=nested, validate=not no_validate
    )
    opened = Corpus.open(resolve_corpus(corpus, config))
    key = sampler_key(rules_file, env)
    lints = []
    if no_validate:
        for err in validate_rules(rules, accept_downstream_deterministic=nested):
            lints.append(validation_lint(err))
    lints += [lint.as_dict() for lint in lint_rules(rules_file, positions) if lint.sampler == key]
    cluster_size = cluster_size if cluster_size is not None else config.cluster_size
    inp = ReplayInput(rules_file, str(rules), opened, env, engine.value)
    result = evaluate(
        select_sampler(rules_file, env), opened, engine=engine.value, with_matches=True, cluster_size=cluster_size
    )
    report = build_report(inp, lints, result)
    if per_trace is not None:
        lines = per_trace_lines(result.decisions).get_column("line")
        step = 100_000  # JSON lines streamed in chunks: a corpus can have millions of traces
        atomic_write_bytes(
            per_trace,
            (("\n".join(lines.slice(i, step).to_list()) + "\n").encode("utf-8") for i in range(0, len(lines), step)),
        )
        report["per_trace_file"] = str(per_trace)
    if fmt is OutputFormat.json:
        emit_json(report)
        return
    render_text(report)


def validation_lint(err: Any) -> dict[str, Any]:
    """A Refinery validation message as a lint (``replay --no-validate``): Refinery would refuse to start."""
    out: dict[str, Any] = {
        "code": "R000",
        "severity": "error",
        "sampler": None,
        "rule_index": None,
        "rule": None,
        "condition_index": None,
        "message": f"Refinery rejects this file with validation on: {err.message}",
        "hint": "Refinery runs it only with --no-validate; fix it so `refinery --validate` passes",
    }
    if err.span is not None:
        out.update(file=err.span.file, line=err.span.line, column=err.span.column)
    return out


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def sampler_line(run: dict[str, Any]) -> str:
    """One line about a simulated stateful sampler (replay and explain print it)."""
    who = ", ".join(run["rules"]) or "top level"
    bursts = f", {run['bursts']:,} burst{'s' if run['bursts'] != 1 else ''}" if run["bursts"] else ""
    return (
        f"{run['kind']} ({who}): {_n(run['traces'], 'trace')} over {_n(run['keys'], 'key')}, simulated rate "
        f"{run['mean_rate']:,.4g} on average (span-weighted), {run['updates']:,} updates{bursts}"
    )


def _num(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}" if x != int(x) else f"{int(x):,}"


def _outcome(r: dict[str, Any]) -> str:
    if r.get("goal_throughput_per_sec"):
        return f"{r['sampler']} (goal {r['goal_throughput_per_sec']}/s)"
    if r.get("sampler"):
        return f"{r['sampler']} ({r['keep']}, rate {r['rate']})"
    return {"true": "keep", "false": "drop"}.get(r["keep"], f"1 in {r['rate']}") + (
        f" (rate {r['rate']})" if r["keep"] == "false" else ""
    )


def render_text(report: dict[str, Any]) -> None:
    """The replay report as a table (rich on a terminal, plain text otherwise)."""
    out = out_console()
    c = report["corpus"]
    env_text = report["env"] if report["env"] is not None else "(none)"
    out.print(
        f"Replay of {report['rules_file']} on {c['path']}: env {env_text} -> sampler {report['sampler']} "
        f"({report['sampler_type']}), engine {report['engine']}",
        markup=False,
    )
    out.print(
        f"Corpus: {c['spans']:,} spans, {c['traces']:,} traces, window {c['window_seconds']:,.0f}s, "
        f"sample rate {c['sample_rate']:g}",
        markup=False,
    )
    headers = ["#", "rule", "scope", "outcome", "matched traces", "decided traces", "decided spans",
               "kept spans", "kept ev/s", "traffic share"]  # fmt: skip
    rows: list[list[str]] = []
    for r in report["rules"]:
        rows.append(
            [
                str(r["index"]),
                r["name"],
                r["scope"],
                _outcome(r),
                f"{r['matched']['traces']:,}",
                f"{r['decided']['traces']:,}",
                f"{r['decided']['spans']:,}",
                _num(r["expected_kept_spans"]),
                _num(r["kept_events_per_sec"], 2),
                f"{r['share']['spans'] * 100:.1f}%",
            ]
        )
    d = report["default"]
    rows.append(
        [
            "-",
            d["name"],
            "",
            _outcome(d),
            "",
            f"{d['decided']['traces']:,}",
            f"{d['decided']['spans']:,}",
            _num(d["expected_kept_spans"]),
            _num(d["kept_events_per_sec"], 2),
            f"{d['share']['spans'] * 100:.1f}%",
        ]
    )
    t = report["totals"]
    total_row = ["", "total", "", "", "", f"{t['traces']:,}", f"{t['spans']:,}", _num(t["expected_kept_spans"]),
                 _num(t["kept_events_per_sec"], 2), "100.0%"]  # fmt: skip
    if stdout_is_tty():
        from rich.table import Table

        table = Table(show_lines=False)
        for h in headers:
            table.add_column(h, justify="right" if h not in ("rule", "scope", "outcome") else "left")
        for row in rows:
            table.add_row(*row)
        table.add_row(*total_row, style="bold")
        out.print(table)
    else:
        widths = [max(len(h), *(len(row[i]) for row in [*rows, total_row])) for i, h in enumerate(headers)]
        for row in [headers, *rows, total_row]:
            out.print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), markup=False)
    out.print(
        f"Expected kept: {_num(t['expected_kept_spans'])} of {t['spans']:,} spans ({t['keep_fraction'] * 100:.2f}%), "
        f"{_num(t['kept_events_per_sec'], 2)} events/s",
        markup=False,
    )
    for run in report.get("samplers", []):
        out.print(f"Stateful sampler: {sampler_line(run)}", markup=False)
        out.print(f"  {run['note']}", markup=False)
    if report["never_matching"]:
        out.print("Rules that never match this corpus: " + ", ".join(report["never_matching"]), markup=False)
    shadowed = [n for n in report["never_deciding"] if n not in report["never_matching"]]
    if shadowed:
        out.print("Rules that match but never decide (shadowed by earlier rules): " + ", ".join(shadowed), markup=False)
    for lint in report["lints"]:
        where = f"{lint['file']}:{lint['line']}:{lint['column']}: " if "file" in lint else ""
        out.print(f"{where}{lint['severity']} {lint['code']}: {lint['message']}", markup=False)
    if "per_trace_file" in report:
        out.print(f"Per-trace decisions written to {report['per_trace_file']}", markup=False)
