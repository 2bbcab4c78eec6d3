"""``nectar compile``, ``nectar verify`` and ``nectar import``: shipping a policy as Refinery rules, checking what
ships, and adopting an existing rules file."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import typer

from nectar.cli.common import (
    OutputFormat,
    app,
    emit_json,
    notice,
    out_console,
    resolve_corpus,
    resolve_policy,
    warn,
)
from nectar.cli.engine_cmds import DEFAULT_CHOICE, EngineChoice
from nectar.config import Config, load_config
from nectar.errors import EXIT_CHECK_FAILED, NectarError
from nectar.util import atomic_write_text, check_outputs


def _rules_path(output: Path | None, config: Config) -> Path:
    if output is not None:
        return output
    return config.rules if config.rules is not None else Path("rules.yaml")


def _lock_path(lock: Path | None, rules_path: Path, config: Config) -> Path:
    if lock is not None:
        return lock
    if config.lock is not None:
        return config.lock
    return rules_path.parent / "nectar.lock"


COMPILE_EPILOG = (
    "Examples: nectar compile  |  nectar compile policy.toon -o rules.yaml --env production  |  "
    "nectar compile --locked  (CI: fail if the output would differ from nectar.lock)  |  nectar compile --no-prove  |  "
    "nectar compile --allow-vacuous"
)


@app.command("compile", epilog=COMPILE_EPILOG)
def compile_cmd(
    policy: Path | None = typer.Argument(None, help="Policy file (default: project.policy from nectar.toml)."),
    corpus: Path | None = typer.Option(None, "--corpus", help="Corpus the proof runs on (default: project.corpus)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Rules file to write (default: project.rules)."),
    lock: Path | None = typer.Option(None, "--lock", help="Lockfile to write (default: project.lock)."),
    env: list[str] = typer.Option(
        [],
        "--env",
        metavar="NAME",
        help="Environment to write the rules under (repeatable; default: compile.environments).",
    ),
    locked: bool = typer.Option(
        False, "--locked", help="Fail (exit 1, write nothing) if the output would differ from the lockfile."
    ),
    no_prove: bool = typer.Option(False, "--no-prove", help="Skip the proof (recorded in the lockfile)."),
    allow_vacuous: bool = typer.Option(
        False,
        "--allow-vacuous",
        help="Lock a proof in which a check had nothing to check (no traces, no error traces, a must-keep class "
        "that matches no trace); recorded in the lockfile.",
    ),
    engine: EngineChoice = typer.Option(DEFAULT_CHOICE, "--engine", help="Proof engine (polars, duckdb, ...)."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Prove the policy, then write Refinery's rules.yaml (RulesVersion 2) and nectar.lock.

    Nothing is written when the proof fails or is vacuous without --allow-vacuous (exit 1, with the prover's
    report), or when the policy cannot be compiled exactly (exit 2). Same policy, config and corpus: same bytes.
    """
    from nectar.compile import check_locked, compile_policy, read_lock, write_outputs

    config = load_config()
    policy_path = resolve_policy(policy, config)
    rules_path = _rules_path(output, config)
    lock_path = _lock_path(lock, rules_path, config)
    check_outputs(rules_path, lock_path)  # before the proof, and before reading the lock (a FIFO would block)
    corpus_dir = None if no_prove else resolve_corpus(corpus, config)
    previous = read_lock(lock_path)
    result = compile_policy(
        policy_path,
        config,
        rules_path=rules_path,
        lock_path=lock_path,
        corpus_dir=corpus_dir,
        environments=env or None,
        prove=not no_prove,
        engine=engine.value,
        previous_lock=previous,
        allow_vacuous=allow_vacuous,
    )
    if locked:
        diffs = check_locked(result, lock_path)
        if diffs:
            if fmt is OutputFormat.json:
                emit_json({"ok": False, "locked": True, "differences": diffs, "written": False})
            else:
                notice(f"--locked: the output differs from {lock_path}; nothing was written:")
                for d in diffs:
                    notice(f"  {d}")
            raise typer.Exit(EXIT_CHECK_FAILED)
        # The output is what the lock records (keys that say only how it was proven may differ): keep the lock
        # exactly as it is, so a passing --locked run never changes a checked-in file.
        recorded = read_lock(lock_path)
        if recorded is not None:
            result = dataclasses.replace(result, lock=recorded)
    write_outputs(result, rules_path, lock_path)
    for diag in result.source.policy.diagnostics:
        text = NectarError(diag.message, diag.span, diag.hint).render()
        warn(text.removeprefix("error: ").replace(": error: ", ": "))
    n_rules = len(result.lowered.sampler.rules)
    envs = result.lock["rules"]["environments"]
    proven = result.lock["proof"]["proven"]
    if fmt is OutputFormat.json:
        emit_json(
            {
                "ok": True,
                "rules": str(rules_path),
                "lock": str(lock_path),
                "refinery_rules": n_rules,
                "environments": envs,
                "proven": proven,
                "rules_sha256": result.lock["rules"]["sha256"],
                "rules_md5": result.lock["rules"]["md5"],
                "proof": result.lock["proof"],
            }
        )
        return
    out = out_console()
    if result.proof is not None:
        from nectar.compile import proof_text

        out.print(proof_text(result.proof), markup=False)
    how = "proven" if proven else "NOT proven (--no-prove)"
    if result.lock["proof"].get("vacuous"):
        how += f"; vacuous, allowed by --allow-vacuous: {', '.join(result.lock['proof']['vacuous'])}"
    waived = [w for w in result.lock["proof"].get("waivers", []) if w["traces"]]
    if waived:
        how += "; waived: " + ", ".join(
            f"{w['check']} by {w['rule']} ({w['traces']:,} trace{'' if w['traces'] == 1 else 's'})" for w in waived
        )
    out.print(
        f"wrote {rules_path} ({n_rules} Refinery rules, environments {', '.join(envs)}; {how}) and {lock_path}",
        markup=False,
    )
    out.print(f"rules md5 {result.lock['rules']['md5']} (compare with Refinery's /query/configmetadata)", markup=False)


VERIFY_EPILOG = (
    "Examples: nectar verify  |  nectar verify policy.toon --rules rules.yaml --lock nectar.lock --format json"
)


@app.command("verify", epilog=VERIFY_EPILOG)
def verify_cmd(
    policy: Path | None = typer.Argument(None, help="Policy file (default: project.policy from nectar.toml)."),
    rules: Path | None = typer.Option(None, "--rules", help="Rules file (default: project.rules)."),
    lock: Path | None = typer.Option(None, "--lock", help="Lockfile (default: project.lock)."),
    corpus: Path | None = typer.Option(None, "--corpus", help="Corpus to check against the lock (optional)."),
    require_proof: bool = typer.Option(
        False, "--require-proof", help="Also fail if the lock was made --no-prove or --allow-vacuous."
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Check that the policy, rules.yaml and nectar.lock agree; say exactly what differs (exit 1), else exit 0."""
    from nectar.compile import verify

    config = load_config()
    policy_path = resolve_policy(policy, config)
    rules_path = _rules_path(rules, config)
    lock_path = _lock_path(lock, rules_path, config)
    corpus_dir = corpus if corpus is not None else config.corpus
    report = verify(policy_path, rules_path, lock_path, config, corpus_dir, require_proof)
    if fmt is OutputFormat.json:
        emit_json(report.to_json())
    else:
        out_console().print(report.render_text(), markup=False)
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


IMPORT_EPILOG = (
    "Examples: nectar import rules.yaml -o policy.toon  |  nectar import rules.yaml --env production  |  "
    "nectar import rules.yaml --format json"
)


@app.command("import", epilog=IMPORT_EPILOG)
def import_cmd(
    rules: Path = typer.Argument(..., help="Existing Refinery rules file (RulesVersion 2 YAML)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Policy file to write (default: stdout)."),
    env: str = typer.Option("__default__", "--env", help="Environment (Samplers key) to import."),
    name: str | None = typer.Option(None, "--name", help="Policy name (default: from the file and environment)."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Lift a Refinery rules file into a TOON policy that compiles back to the same decisions.

    What has no exact policy form is refused with the reason (exit 2), never silently changed.
    """
    from nectar.policy.lift import import_rules

    config = load_config()
    if output is not None:
        check_outputs(output)
    result = import_rules(rules, env, config, name=name)
    if output is not None:
        atomic_write_text(output, result.text)
    if fmt is OutputFormat.json:
        emit_json(
            {
                "policy": result.text,
                "output": str(output) if output is not None else None,
                "environment": env,
                "rules": len(result.policy.rules),
                "notes": list(result.notes),
            }
        )
        return
    for n in result.notes:
        warn(n)
    if output is None:
        sys.stdout.write(result.text)
    else:
        notice(f"wrote {output} ({len(result.policy.rules)} policy rules from environment {env!r} of {rules})")
