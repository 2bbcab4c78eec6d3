"""``nectar init``, ``nectar check`` and ``nectar fmt``: making and keeping policy files."""

from __future__ import annotations

import difflib
import shutil
import sys
from pathlib import Path

import typer

from nectar.cli.common import OutputFormat, app, emit_json, notice, out_console, resolve_policy, warn
from nectar.config import DEFAULT_ERROR_DEFINITION, load_config
from nectar.errors import EXIT_CHECK_FAILED, NectarError
from nectar.policy import ir
from nectar.policy.check import check_expression, check_policy
from nectar.policy.format import Spelling, format_expr, format_policy
from nectar.policy.load import parse_policy, read_policy_file
from nectar.util import atomic_write_files, atomic_write_text, check_outputs

EXAMPLE_POLICY = """\
nectar_policy{version,name,budget_per_second,rules}:
  1
  production-sampling
  10000
  rules[3]{name,description,match,action,priority}:
    keep-errors,Retain all errors,error == true or http.status >= 500,keep,100
    keep-slow,Retain slow requests,duration > 5s,keep,90
    sample-rest,Sample remaining traffic,true,sample(0.01),0
"""

CONFIG_TEMPLATE = """\
# nectar.toml: defaults for every nectar command run in this folder (or below it).
# Paths are relative to this file. Every setting can also be given on the command line.

[project]
policy = "policy.toon"      # the policy that check, fmt, prove, compile and explain read
corpus = "corpus"           # the trace corpus (made by `nectar ingest` or `nectar corpus synth`)
rules = "rules.yaml"        # where `nectar compile` writes Refinery's rules
lock = "nectar.lock"        # where `nectar compile` writes the lockfile

[aliases]
# Short names usable in match expressions. A list means "the first of these fields present on the span"
# (Refinery's `Fields`). These are the defaults; add your own or override them here.
"http.status" = ["http.response.status_code", "http.status_code"]
"http.method" = ["http.request.method", "http.method"]
duration = ["duration_ms"]
service = ["service.name"]

[budget]
# How much of real traffic the corpus represents: 10 means the corpus holds 1 span in 10, so observed rates
# are multiplied by 10 before they are compared with the policy's budget_per_second.
# Leave unset to use the corpus's own record (`nectar ingest --sample-rate`).
# corpus_sample_rate = 10

[prove]
# What counts as an error trace for the "errors are never dropped" check: a match expression, true for a trace
# when ANY span satisfies it (the same semantics as policy rules). The default: OpenTelemetry's error status
# (Refinery's `error` flag) or an HTTP 5xx in either status field.
error_definition = "@ERROR_DEFINITION@"

[compile]
# Refinery environments (or Classic datasets) the compiled RulesBasedSampler is written under.
environments = ["__default__"]

[propose]
# The Claude model `nectar propose` uses when ANTHROPIC_API_KEY is set (also --model or NECTAR_MODEL).
# model = "claude-sonnet-5-5"
""".replace("@ERROR_DEFINITION@", DEFAULT_ERROR_DEFINITION)

GITIGNORE = """\
# nectar outputs that are rebuilt from policy.toon (commit them if you deploy from this folder)
/.nectar/
"""


@app.command("init", epilog="Example: nectar init demo && cd demo && nectar check")
def init_cmd(
    directory: Path = typer.Argument(..., help="Folder to create the project in (made if missing)."),
    force: bool = typer.Option(False, "--force", help="Write into a folder that is not empty (overwrites files)."),
    spans: int = typer.Option(50_000, "--spans", help="Size of the sample corpus to generate."),
) -> None:
    """Create a ready project: nectar.toml, policy.toon (the README example), a sample corpus, .gitignore."""
    if directory.exists() and not directory.is_dir():
        raise NectarError(f"{directory} exists and is not a folder")
    if directory.exists() and any(directory.iterdir()) and not force:
        raise NectarError(f"{directory} is not empty", hint="pick a new folder, or pass --force to write into it")
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_files(
        [(directory / name, text.encode("utf-8")) for name, text in
         (("nectar.toml", CONFIG_TEMPLATE), ("policy.toon", EXAMPLE_POLICY), (".gitignore", GITIGNORE))]
    )  # fmt: skip
    made = ["nectar.toml", "policy.toon", ".gitignore"]
    corpus_dir = directory / "corpus"
    from nectar.corpus.synth import synth_corpus

    if corpus_dir.exists() and force:
        shutil.rmtree(corpus_dir)
    synth_corpus(corpus_dir, spans=spans, seed=7)
    made.append(f"corpus/ ({spans:,} synthetic spans, seed 7)")
    out = out_console()
    out.print(f"Created {directory}/:", markup=False)
    for m in made:
        out.print(f"  {m}", markup=False)
    out.print(f"Next: cd {directory} && nectar check", markup=False)


@app.command(
    "check",
    epilog="Examples: nectar check  |  nectar check policy.toon --format json  |  nectar check -e 'http.status >= 500'",
)
def check_cmd(
    policy: Path | None = typer.Argument(None, help="Policy file (default: project.policy from nectar.toml)."),
    expression: str | None = typer.Option(None, "-e", "--expr", help="Check one match expression instead."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as failures (exit 1)."),
) -> None:
    """Parse and validate a policy: syntax, types, regexes, sample rates, and that every rule compiles exactly."""
    config = load_config()
    if expression is not None:
        clauses = check_expression(expression, config)
        if fmt is OutputFormat.json:
            emit_json(
                {
                    "expression": expression,
                    "ok": True,
                    "refinery_rules": [
                        {"scope": c.scope, "conditions": [format_expr(a) for a in c.atoms]} for c in clauses
                    ],
                }
            )
            return
        out = out_console()
        out.print(f"ok: becomes {len(clauses)} Refinery rule(s)", markup=False)
        for i, c in enumerate(clauses, 1):
            conds = " AND ".join(format_expr(a) for a in c.atoms) or "(no conditions: every trace)"
            out.print(f"  {i}. scope {c.scope}: {conds}", markup=False)
        return
    path = resolve_policy(policy, config)
    result = check_policy(path, config)
    if fmt is OutputFormat.json:
        emit_json(result.to_json())
    else:
        for w in result.warnings:
            warn(NectarError(w.message, w.span, w.hint).render().removeprefix("error: ").replace(": error: ", ": "))
        p = result.policy
        out_console().print(
            f"{path}: ok: policy {p.name!r}, {len(p.rules)} rules -> {result.refinery_rule_count} Refinery rules"
            + (f", {len(result.warnings)} warning(s)" if result.warnings else ""),
            markup=False,
        )
    if strict and result.warnings:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command("fmt", epilog="Examples: nectar fmt  |  nectar fmt policy.toon --check  |  nectar fmt --style standard")
def fmt_cmd(
    policy: Path | None = typer.Argument(None, help="Policy file (default: project.policy from nectar.toml)."),
    check: bool = typer.Option(False, "--check", help="Do not write; exit 1 and show a diff if not formatted."),
    style: Spelling = typer.Option(
        Spelling.HEADER, "--style", help="header (the README form) or standard (plain TOON key: value)."
    ),
    stdout: bool = typer.Option(False, "--stdout", help="Print the formatted policy instead of writing the file."),
) -> None:
    """Rewrite a policy in its canonical form (idempotent; meaning is unchanged)."""
    config = load_config()
    path = resolve_policy(policy, config)
    if not (check or stdout) and not path.is_dir():
        check_outputs(path)  # fmt rewrites the file: refuse what the rename would replace, before reading it
    _, text = read_policy_file(path)
    parsed: ir.Policy = parse_policy(text, str(path), config.aliases)
    formatted = format_policy(parsed, style)
    if stdout:
        sys.stdout.write(formatted)
        return
    if check:
        if formatted != text:
            diff = difflib.unified_diff(
                text.splitlines(True), formatted.splitlines(True), str(path), str(path) + " (formatted)"
            )
            sys.stdout.writelines(diff)
            notice(f"{path} is not formatted; run `nectar fmt {path}`")
            raise typer.Exit(EXIT_CHECK_FAILED)
        notice(f"{path} is formatted")
        return
    if formatted == text:
        notice(f"{path} already formatted")
        return
    atomic_write_text(path, formatted)
    notice(f"formatted {path}")
