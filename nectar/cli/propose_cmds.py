"""``nectar propose``: plain English to a proven policy, offline (grounded in the corpus) or with Claude."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from nectar.cli.common import OutputFormat, app, emit_json, notice, out_console, resolve_corpus, stdout_is_tty
from nectar.config import Config, load_config
from nectar.corpus.layout import Corpus
from nectar.corpus.stats import field_catalog
from nectar.errors import EXIT_CHECK_FAILED, NectarError
from nectar.policy import ir
from nectar.policy.load import parse_policy, read_policy_file
from nectar.propose.claude import ClaudeSettings, Verdict, proof_feedback, propose_claude, resolve_model
from nectar.propose.common import Proposal, explain_rule
from nectar.propose.offline import propose_offline
from nectar.prove import prove_policy, render_text, to_json
from nectar.util import atomic_write_bytes, atomic_write_text, check_outputs, sha256_bytes

CATALOG_TOP = 50  # top values per field the proposers ground on
SIDECAR = Path(".nectar") / "proposal.json"


class Provider(StrEnum):
    auto = "auto"
    offline = "offline"
    claude = "claude"


def _target(output: Path | None, cfg: Config) -> Path:
    if output is not None:
        return output
    return cfg.policy if cfg.policy is not None else Path("policy.toon")


def _prover(corpus: Corpus, cfg: Config) -> Any:
    def prove(policy: ir.Policy) -> Verdict:
        report = prove_policy(policy, corpus, cfg)
        return Verdict(report.passed, "" if report.passed else proof_feedback(report), report)

    return prove


def _render(proposal: Proposal, verdict: Verdict, target: Path) -> None:
    out = out_console()
    who = "the offline proposer" if proposal.provider == "offline" else f"Claude ({proposal.model})"
    rounds = f", {proposal.rounds} round(s)" if proposal.provider == "claude" else ""
    out.print(f"Proposed by {who}{rounds} for {target}:\n", markup=False)
    out.print(proposal.text, markup=False)
    out.print("What each rule does (in priority order):", markup=False)
    for i, rule in enumerate(proposal.policy.ordered_rules(), 1):
        out.print(f"  {i}. {rule.name}: {explain_rule(rule)}", markup=False)
    if proposal.notes:
        out.print("\nHow the words were mapped to this corpus:", markup=False)
        for n in proposal.notes:
            out.print(f"  {n.phrase!r} -> {n.meaning}    ({n.detail})", markup=False)
    if proposal.assumptions:
        out.print("\nAssumptions:", markup=False)
        for a in proposal.assumptions:
            out.print(f"  - {a}", markup=False)
    out.print("", markup=False)
    if verdict.report is not None:
        sys.stdout.write(render_text(verdict.report, color=stdout_is_tty()))


def _confirm_overwrite(target: Path, new_text: str, yes: bool) -> bool:
    """Whether to write: True when the file is new or the user agreed; raises without a TTY and without --yes."""
    if not target.exists() or yes:
        return True
    if target.read_bytes() == new_text.encode("utf-8"):
        return True
    if not sys.stdin.isatty():
        raise NectarError(
            f"{target} exists; refusing to replace it without confirmation",
            hint="pass --yes to replace it (a backup is kept as " + target.name + ".bak), or -o another file",
        )
    return typer.confirm(f"Replace {target} (a backup is kept as {target.name}.bak)?", default=False, err=True)


def _write(target: Path, proposal: Proposal) -> list[str]:
    done = []
    if target.exists():
        old = target.read_bytes()  # the bytes, not decoded text: the backup is the file exactly as it was
        if old == proposal.text.encode("utf-8"):
            return [f"{target} unchanged"] + ([_record(target, proposal)] if proposal.model else [])
        backup = target.with_name(target.name + ".bak")
        atomic_write_bytes(backup, old)
        done.append(f"backup {backup}")
    atomic_write_text(target, proposal.text)
    done.insert(0, f"wrote {target}")
    if proposal.model and proposal.prompt_sha256:
        done.append(_record(target, proposal))
    return done


def _record(target: Path, proposal: Proposal) -> str:
    """Record the model and prompt hash: in the sidecar ``.nectar/proposal.json`` beside the policy, and in the
    lockfile too when it already locks this exact policy (``nectar.compile.record_proposal``)."""
    assert proposal.model and proposal.prompt_sha256
    canonical = sha256_bytes(proposal.text.encode("utf-8"))
    data = {
        "model": proposal.model,
        "prompt_sha256": proposal.prompt_sha256,
        "policy": target.name,
        "policy_canonical_sha256": canonical,
    }
    sidecar = target.parent / SIDECAR
    atomic_write_text(sidecar, json.dumps(data, indent=2, sort_keys=True) + "\n")
    cfg = load_config(target.parent)
    lock = cfg.lock if cfg.lock is not None else target.parent / "nectar.lock"
    try:
        from nectar.compile import read_lock, record_proposal

        prev = read_lock(lock) if lock.exists() else None
        locked = prev.get("policy", {}).get("canonical_sha256") if isinstance(prev, dict) else None
        if locked == canonical:
            record_proposal(lock, proposal.model, proposal.prompt_sha256)
            return f"recorded model and prompt sha256 in {lock} and {sidecar}"
    except (ImportError, NectarError, AttributeError):  # pragma: no cover - compile not present or lock unreadable
        pass
    return f"recorded model and prompt sha256 in {sidecar} (run `nectar compile` to lock the new policy)"


@app.command(
    "propose",
    epilog=(
        'Examples: nectar propose "Keep all errors and slow requests over 5 seconds, sample everything else at 1%"'
        '  |  nectar propose --refine "also drop health checks" --yes'
        '  |  nectar propose "keep the payments service, 1 in 20 for the rest" --provider offline -o p.toon'
    ),
)
def propose_cmd(
    intent: str = typer.Argument(..., help="What to keep, drop and sample, in plain English."),
    refine: bool = typer.Option(False, "--refine", help="Change the existing policy instead of starting over."),
    provider: Provider = typer.Option(
        Provider.auto,
        "--provider",
        help="auto (Claude if ANTHROPIC_API_KEY is set, else offline), offline, claude.",
    ),
    model: str | None = typer.Option(
        None, "--model", help="Claude model id (default: NECTAR_MODEL, then [propose] model in nectar.toml)."
    ),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Corpus to ground on and prove against (default: project.corpus)."
    ),
    output: Path | None = typer.Option(None, "-o", "--output", help="Policy file to write (default: project.policy)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Replace an existing policy without asking (keeps a .bak)."),
    proven_only: bool = typer.Option(
        False, "--proven-only", help="Write the policy only if it passes its proof (default: write it, exit 1)."
    ),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="Seconds to wait for each Claude answer."),
    max_retries: int = typer.Option(2, "--max-retries", min=0, help="Retries of a failed Claude request (429/5xx)."),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Turn a plain-English intent into a policy, prove it against the corpus, show it and write it.

    Shows the policy, what each rule does, how words were mapped to the corpus, assumptions and the prover's
    verdict, then writes the policy. A policy that fails its proof is still written (unless --proven-only), as
    a draft to fix: exit 1 says so, and `nectar compile` refuses it until it passes. Nothing is written for a
    clause that is not understood or an unusable answer. Exit 0 proven and written; 1 the proof failed, no
    usable answer, or you declined to replace the policy; 2 bad input, config or auth; 3 the Claude service
    failed (rate limit, overload, server error, timeout, network).
    """
    cfg = load_config()
    target = _target(output, cfg)
    check_outputs(target)  # before asking anyone for a proposal
    corpus_obj = Corpus.open(resolve_corpus(corpus, cfg))
    catalog = field_catalog(corpus_obj, top=CATALOG_TOP)
    current: str | None = None
    base: ir.Policy | None = None
    if refine:
        _, current = read_policy_file(target)
        base = parse_policy(current, str(target), cfg.aliases)
    key = os.environ.get("ANTHROPIC_API_KEY", "")
    chosen = provider
    if provider is Provider.auto:
        chosen = Provider.claude if key else Provider.offline
        if not key:
            notice("note: ANTHROPIC_API_KEY is not set; using the offline proposer (--provider offline to silence)")
    prover = _prover(corpus_obj, cfg)
    if chosen is Provider.claude:
        settings = ClaudeSettings(
            api_key=key,
            model=resolve_model(model, cfg.propose_model),
            base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
            max_retries=max_retries,
            timeout=timeout,
        )
        proposal, verdict = propose_claude(
            intent, catalog, cfg.aliases, prover, settings, current, cfg.error_definition
        )
    else:
        proposal = propose_offline(intent, catalog, cfg.aliases, base, cfg.error_definition)
        verdict = prover(proposal.policy)
    if fmt is OutputFormat.text:
        _render(proposal, verdict, target)  # shown before asking whether to replace the policy
    write = verdict.passed or not proven_only
    done: list[str] = []
    if write and _confirm_overwrite(target, proposal.text, yes):
        done = _write(target, proposal)
    elif write:
        done = [f"{target} not replaced (declined)"]
    written = bool(done) and done[0].startswith("wrote")
    if fmt is OutputFormat.json:
        emit_json(
            {
                **proposal.to_json(),
                "target": str(target),
                "proof": to_json(verdict.report) if verdict.report is not None else None,
                "passed": verdict.passed,
                "written": written,
                "actions": done,
            }
        )
    else:
        for line in done:
            notice(line)
    if not verdict.passed:
        where = f"written to {target} as a draft" if written else f"nothing was written to {target}"
        notice(
            f"the proposed policy fails its proof ({where}); `nectar compile` refuses it until it passes: "
            "change the intent (e.g. keep errors first) or edit the policy"
        )
        raise typer.Exit(EXIT_CHECK_FAILED)
    if write and not written and not done[0].endswith("unchanged"):
        raise typer.Exit(EXIT_CHECK_FAILED)
