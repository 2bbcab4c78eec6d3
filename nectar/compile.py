"""Compile a policy to Refinery's ``rules.yaml``, with a lockfile, and verify that policy, rules and lock agree.

What ships is what is proven: the rules file is the lowered policy (:func:`nectar.policy.lower.lower_policy`), the
IR the prover evaluates, serialized by :func:`nectar.refinery.emit.emit_rules`. Before anything is written the text
is read back with nectar's own yaml.v3-faithful loader and Refinery v3.2.2 validator, and must give the same IR.

Same policy, config and corpus give the same bytes: no timestamps, no absolute paths, sorted JSON keys.

>>> result = compile_policy(Path("policy.toon"), load_config(), corpus=None, prove=False)  # doctest: +SKIP
>>> write_outputs(result, Path("rules.yaml"), Path("nectar.lock"))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nectar import __version__
from nectar.config import Config
from nectar.corpus.layout import MANIFEST_NAME, Corpus
from nectar.engine.api import DEFAULT_ENGINE
from nectar.errors import CheckFailed, NectarError
from nectar.policy import ir
from nectar.policy.format import format_policy
from nectar.policy.load import parse_policy, read_policy_file
from nectar.policy.lower import LoweredPolicy, lower_policy
from nectar.refinery.emit import emit_rules
from nectar.refinery.loader import load_rules
from nectar.refinery.model import REFINERY_VERSION, RulesFile, SamplerConfig, nested_deterministic_valid
from nectar.util import atomic_write_files

LOCK_VERSION = 1


# ---------------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class PolicySource:
    """A policy file as read: its bytes, the validated IR, and both hashes the lock records."""

    path: Path
    data: bytes
    policy: ir.Policy

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def canonical(self) -> str:
        return format_policy(self.policy)

    @property
    def canonical_sha256(self) -> str:
        return hashlib.sha256(self.canonical.encode("utf-8")).hexdigest()


def read_policy(path: Path, config: Config) -> PolicySource:
    """Read and validate a policy file (with the config's aliases)."""
    data, text = read_policy_file(path)
    return PolicySource(path, data, parse_policy(text, str(path), config.aliases))


def corpus_fingerprint(corpus_dir: Path) -> dict[str, Any]:
    """The corpus as the lock records it: sha256 of ``manifest.json`` bytes (which lists every part file with its
    size and row count), and its span and trace counts."""
    corpus = Corpus.open(corpus_dir)
    data = (corpus_dir / MANIFEST_NAME).read_bytes()
    return {
        "manifest_sha256": hashlib.sha256(data).hexdigest(),
        "spans": corpus.manifest.spans,
        "traces": corpus.manifest.traces,
    }


# ---------------------------------------------------------------------------------------------------- rules


DETERMINISTIC_HINT = (
    "write sample(1/N) instead (random, as Refinery's SampleRate: N); or, when one deterministic rate should apply "
    "to every trace, make `deterministic(rate=N)` the policy's only rule with the match `true`: nectar then writes "
    "a top-level DeterministicSampler, which every Refinery version accepts"
)


def rules_for(
    policy: ir.Policy,
    lowered: LoweredPolicy,
    environments: Sequence[str],
    refinery_version: str = REFINERY_VERSION,
) -> RulesFile:
    """The rules file for a lowered policy under ``environments`` (``__default__`` always written first).

    A policy whose only rule is a catch-all (match ``true``) with a sampler action (``deterministic``, ``dynamic``,
    ``throughput``, any kind) is that sampler at the top level: the same per-trace decision as a RulesBasedSampler
    whose one rule runs it downstream, and the form ``nectar import`` lifts a top-level sampler to, so that it
    compiles back to the same file.

    ``deterministic(rate=N)`` anywhere else lowers to a rule's downstream DeterministicSampler, which Refinery
    3.2.2's validator rejects ("field Rules.Sampler contains unknown key DeterministicSampler", refinery#1857, fixed
    after 3.2.2; SEMANTICS.md 1.5): refused for ``refinery_version`` 3.2.2 (``refinery.version``), written for a
    later one. The top-level DeterministicSampler makes the same decision (keep iff the trace id's hash is under
    MaxUint32/N) and every Refinery version accepts it.
    """
    rules = lowered.sampler.rules
    envs = list(dict.fromkeys(["__default__", *environments]))
    if len(rules) == 1 and not rules[0].conditions and rules[0].scope is None and rules[0].sampler is not None:
        cfg = SamplerConfig(others=(rules[0].sampler,))
        return RulesFile({env: cfg for env in envs})
    det = [r for r in policy.ordered_rules() if isinstance(r.action, ir.DeterministicAction)]
    if not det or nested_deterministic_valid(refinery_version):
        return lowered.rules_file(environments)
    rule = det[0]
    rate = rule.action.rate if isinstance(rule.action, ir.DeterministicAction) else 0
    raise NectarError(
        f"rule {rule.name!r}: deterministic(rate={rate}) cannot be compiled here: it becomes a "
        "downstream DeterministicSampler, which Refinery 3.2.2's validator rejects (refinery#1857; fixed after "
        "3.2.2), so Refinery would refuse to start with these rules (set refinery.version in nectar.toml if yours "
        "is newer)",
        rule.span,
        DETERMINISTIC_HINT,
    )


def header_lines(source: PolicySource) -> list[str]:
    """The comment at the top of a compiled file: what it was compiled from and by what (no timestamps, no paths
    beyond the policy's file name, so the bytes do not depend on the machine or working directory)."""
    name = json.dumps(source.policy.name, ensure_ascii=False)
    return [
        f"Refinery rules compiled by nectar {__version__} from policy {name} ({source.path.name}).",
        "Do not edit: change the policy and run `nectar compile`; `nectar verify` checks this file against the lock.",
        f"policy sha256:           {source.sha256}",
        f"canonical policy sha256: {source.canonical_sha256}",
        "",
    ]


def render_rules(source: PolicySource, rules: RulesFile, refinery_version: str = REFINERY_VERSION) -> str:
    """The rules file text, checked: it must pass Refinery's validator (of ``refinery_version``) and read back to
    exactly ``rules``."""
    text = emit_rules(rules, header_lines(source))
    try:
        nested = nested_deterministic_valid(refinery_version)
        back = load_rules(text, "<compiled rules.yaml>", accept_downstream_deterministic=nested)
    except NectarError as exc:  # pragma: no cover - the emitter's tests make this unreachable
        raise NectarError(f"internal error: the compiled rules do not validate: {exc.message}") from exc
    if back != rules:  # pragma: no cover - as above
        raise NectarError("internal error: the compiled rules do not read back to the lowered rules")
    return text


# ---------------------------------------------------------------------------------------------------- compile


@dataclass(frozen=True, slots=True)
class CompileResult:
    """Everything ``nectar compile`` writes, computed before anything is written."""

    source: PolicySource
    lowered: LoweredPolicy
    rules: RulesFile
    rules_text: str
    lock: dict[str, Any]
    proof: Any = None  # nectar.prove's ProofReport when proven

    @property
    def rules_bytes(self) -> bytes:
        return self.rules_text.encode("utf-8")

    @property
    def lock_text(self) -> str:
        return dumps_lock(self.lock)


def dumps_lock(lock: Mapping[str, Any]) -> str:
    """The lockfile text: JSON, sorted keys, two-space indent, trailing newline."""
    return json.dumps(lock, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _rel(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (posix), so the lock does not depend on where the project is checked out."""
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:  # pragma: no cover - different drives on Windows
        return path.name


def run_prover(policy: ir.Policy, corpus: Corpus, config: Config, engine: str) -> Any:
    """The prover's report for ``policy`` on ``corpus`` (:func:`nectar.prove.prove_policy`)."""
    from nectar.prove import prove_policy

    return prove_policy(policy, corpus, config, engine=engine)


def proof_text(report: Any) -> str:
    """The prover's report as text (what ``nectar prove`` prints)."""
    from nectar.prove import render_text

    return str(render_text(report)).rstrip()


def stable_figures(value: Any) -> Any:
    """Proof figures as the lock keeps them: floats to 9 significant digits, so that a last-bit difference in a
    parallel sum never makes ``--locked`` fail."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {str(k): stable_figures(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stable_figures(v) for v in value]
    return value


def build_lock(
    result_rules: bytes,
    source: PolicySource,
    lock_path: Path,
    rules_path: Path,
    environments: Sequence[str],
    corpus: Mapping[str, Any] | None,
    proof: Mapping[str, Any],
    proposal: Mapping[str, Any] | None = None,
    refinery_version: str = REFINERY_VERSION,
) -> dict[str, Any]:
    """The lockfile's content (plain data)."""
    base = lock_path.parent
    return {
        "lock_version": LOCK_VERSION,
        "nectar_version": __version__,
        "policy": {
            "path": _rel(source.path, base),
            "name": source.policy.name,
            "sha256": source.sha256,
            "canonical_sha256": source.canonical_sha256,
        },
        "rules": {
            "path": _rel(rules_path, base),
            "sha256": hashlib.sha256(result_rules).hexdigest(),
            # Refinery's /query/configmetadata reports an md5 of the rules it loaded: compare it with this.
            "md5": hashlib.md5(result_rules, usedforsecurity=False).hexdigest(),
            "environments": list(dict.fromkeys(["__default__", *environments])),
            "refinery_version": refinery_version,
        },
        "corpus": dict(corpus) if corpus is not None else None,
        "proof": dict(proof),
        "proposal": dict(proposal) if proposal is not None else None,
    }


def compile_policy(
    policy_path: Path,
    config: Config,
    *,
    rules_path: Path,
    lock_path: Path,
    corpus_dir: Path | None = None,
    environments: Sequence[str] | None = None,
    prove: bool = True,
    engine: str = DEFAULT_ENGINE,
    previous_lock: Mapping[str, Any] | None = None,
    allow_vacuous: bool = False,
) -> CompileResult:
    """Read, lower, (prove,) and render a policy; returns what to write. Writes nothing.

    Raises :class:`NectarError` (exit 2) for a bad policy or one that cannot be compiled, and
    :class:`CheckFailed` (exit 1, the prover's report as the message) when a proof check fails, or when one is
    vacuous (had nothing to check) and ``allow_vacuous`` is not set. The lock records the vacuous checks it
    accepted and the policy's waivers with the traces each waived. The lock keeps a ``proposal`` entry of
    ``previous_lock`` when the policy is unchanged.
    """
    envs = tuple(environments) if environments else tuple(config.environments)
    source = read_policy(policy_path, config)
    lowered = lower_policy(source.policy)
    rules = rules_for(source.policy, lowered, envs, config.refinery_version)
    text = render_rules(source, rules, config.refinery_version)
    report = None
    corpus_info: dict[str, Any] | None = None
    if prove:
        if corpus_dir is None:
            raise NectarError("proving needs a corpus", hint="pass --corpus DIR, or --no-prove to skip the proof")
        corpus = Corpus.open(corpus_dir)
        corpus_info = corpus_fingerprint(corpus_dir)
        report = run_prover(source.policy, corpus, config, engine)
        if not report.passed:
            raise CheckFailed(
                "the policy does not pass its proof; nothing was written\n" + proof_text(report),
                hint="fix the policy (or, knowingly, compile with --no-prove, which the lockfile records)",
            )
        vacuous = [c for c in report.checks if c.status == "vacuous"]
        if vacuous and not allow_vacuous:
            raise CheckFailed(
                f"the proof is vacuous ({', '.join(c.name for c in vacuous)}: nothing to check), so the policy is "
                "not proven; nothing was written\n" + proof_text(report),
                hint="prove on a corpus that holds the traces these checks need (`nectar ingest`), or, knowingly, "
                "compile with --allow-vacuous (the lockfile records it)",
            )
        proof: dict[str, Any] = {
            "proven": True,
            "engine": engine,
            "error_definition": config.error_definition,
            "corpus_sample_rate": config.corpus_sample_rate,
            "checks": stable_figures(report.summary()),
            # What this proof did not check, accepted with --allow-vacuous (compile refuses it otherwise).
            "vacuous": [c.name for c in vacuous],
            "allow_vacuous": bool(vacuous),
            "waivers": [w.to_json() for w in report.waivers],
        }
    else:
        proof = {"proven": False, "skipped": "--no-prove"}
    proposal = find_proposal(source, previous_lock)
    lock = build_lock(
        text.encode("utf-8"), source, lock_path, rules_path, envs, corpus_info, proof, proposal, config.refinery_version
    )
    return CompileResult(source, lowered, rules, text, lock, report)


PROPOSAL_SIDECAR = Path(".nectar") / "proposal.json"  # written by `nectar propose` beside the policy


def find_proposal(source: PolicySource, previous_lock: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Which model proposed this exact policy (canonical form), if known: from the previous lock, else from the
    sidecar ``.nectar/proposal.json`` that ``nectar propose`` writes beside the policy."""
    if previous_lock is not None and isinstance(previous_lock.get("proposal"), dict):
        prev_policy = previous_lock.get("policy")
        if isinstance(prev_policy, dict) and prev_policy.get("canonical_sha256") == source.canonical_sha256:
            return dict(previous_lock["proposal"])
    try:
        side = json.loads((source.path.parent / PROPOSAL_SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(side, dict) and side.get("policy_canonical_sha256") == source.canonical_sha256:
        model, prompt = side.get("model"), side.get("prompt_sha256")
        if isinstance(model, str) and isinstance(prompt, str):
            return {"model": model, "prompt_sha256": prompt}
    return None


# ---------------------------------------------------------------------------------------------------- lock I/O


def read_lock(path: Path) -> dict[str, Any] | None:
    """The lock's content, None when there is no lock; a :class:`NectarError` when it is not a nectar lock."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise NectarError(f"cannot read the lockfile {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NectarError(f"{path} is not a nectar lockfile: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or data.get("lock_version") != LOCK_VERSION:
        raise NectarError(f"{path} is not a nectar lockfile (lock_version {LOCK_VERSION} expected)")
    return data


def lock_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Every key path where two locks differ, as ``path: old -> new`` lines (sorted, stable)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            here = f"{prefix}.{k}" if prefix else str(k)
            if k not in old:
                out.append(f"{here}: (absent) -> {json.dumps(new[k], sort_keys=True)}")
            elif k not in new:
                out.append(f"{here}: {json.dumps(old[k], sort_keys=True)} -> (absent)")
            else:
                out += lock_differences(old[k], new[k], here)
        return out
    if old != new:
        return [f"{prefix}: {json.dumps(old, sort_keys=True)} -> {json.dumps(new, sort_keys=True)}"]
    return []


def write_outputs(result: CompileResult, rules_path: Path, lock_path: Path) -> None:
    """Write rules.yaml and the lock together (all-or-nothing, checked: :func:`nectar.util.atomic_write_files`)."""
    atomic_write_files([(rules_path, result.rules_bytes), (lock_path, result.lock_text.encode("utf-8"))])


# Keys of the lock that record how, not what: both engines give identical proof reports (the test suite holds them
# to it), so proving with the other engine does not change the output that --locked guards.
_LOCKED_IGNORES = (("proof", "engine"),)


def _without_ignored(lock: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(lock)
    for section, key in _LOCKED_IGNORES:
        if isinstance(out.get(section), dict):
            out[section].pop(key, None)
    return out


def check_locked(result: CompileResult, lock_path: Path) -> list[str]:
    """``--locked``: what would change in the lock (empty: the output is exactly what the lock records)."""
    old = read_lock(lock_path)
    if old is None:
        return [f"no lockfile at {lock_path}: run `nectar compile` without --locked to create it"]
    return lock_differences(_without_ignored(old), _without_ignored(result.lock))


def record_proposal(lock_path: Path, model: str, prompt_sha256: str) -> None:
    """Record in an existing lock which model proposed the policy and the sha256 of its prompt (``nectar propose``).

    The entry is kept by later compiles as long as the policy's canonical form is unchanged.
    """
    lock = read_lock(lock_path)
    if lock is None:
        raise NectarError(f"no lockfile at {lock_path}", hint="run `nectar compile` first")
    lock["proposal"] = {"model": model, "prompt_sha256": prompt_sha256}
    atomic_write_files([(lock_path, dumps_lock(lock).encode("utf-8"))])


# ---------------------------------------------------------------------------------------------------- verify


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``nectar verify`` found: ``differences`` (each fails the check) and ``notes`` (informational)."""

    policy: Path
    rules: Path
    lock: Path
    differences: tuple[str, ...]
    notes: tuple[str, ...] = ()
    checked: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "policy": str(self.policy),
            "rules": str(self.rules),
            "lock": str(self.lock),
            "checked": list(self.checked),
            "differences": list(self.differences),
            "notes": list(self.notes),
        }

    def render_text(self) -> str:
        lines = [f"verify {self.policy} / {self.rules} / {self.lock}:"]
        lines += [f"  ok: {c}" for c in self.checked]
        lines += [f"  DIFFERS: {d}" for d in self.differences]
        lines += [f"  note: {n}" for n in self.notes]
        lines.append("all agree" if self.ok else f"{len(self.differences)} difference(s)")
        return "\n".join(lines)


def _short_diff(old: str, new: str, old_name: str, new_name: str, limit: int = 40) -> str:
    diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, lineterm="", n=1))
    more = len(diff) - limit
    return "\n".join(diff[:limit] + ([f"... ({more} more diff lines)"] if more > 0 else []))


def verify(
    policy_path: Path,
    rules_path: Path,
    lock_path: Path,
    config: Config,
    corpus_dir: Path | None = None,
    require_proof: bool = False,
) -> VerifyReport:
    """Check that the policy, the rules file and the lock agree (no prover run; fast enough for every CI job).

    Differences: the lock is missing or unreadable; the policy's bytes or canonical form are not the locked ones;
    the rules file is missing, its sha256/md5 are not the locked ones, or it is not what the policy compiles to now
    (with a diff); the lock was made by another nectar version; the corpus the proof used changed; and, with
    ``require_proof``, a lock made with ``--no-prove`` or ``--allow-vacuous``.
    """
    diffs: list[str] = []
    notes: list[str] = []
    checked: list[str] = []
    lock = read_lock(lock_path)
    if lock is None:
        diffs.append(f"no lockfile at {lock_path}: run `nectar compile`")
        return VerifyReport(policy_path, rules_path, lock_path, tuple(diffs))
    if lock.get("nectar_version") != __version__:
        diffs.append(f"the lock was written by nectar {lock.get('nectar_version')}, this is nectar {__version__}")
    lpol = lock.get("policy") or {}
    lrules = lock.get("rules") or {}

    source: PolicySource | None = None
    try:
        source = read_policy(policy_path, config)
    except NectarError as exc:
        diffs.append(f"the policy cannot be read: {exc.message}")
    if source is not None:
        if source.sha256 == lpol.get("sha256"):
            checked.append(f"policy {policy_path} sha256 {source.sha256[:12]}... is the locked one")
        elif source.canonical_sha256 == lpol.get("canonical_sha256"):
            diffs.append(
                f"the policy file changed since the lock (sha256 {source.sha256[:12]}..., lock "
                f"{str(lpol.get('sha256'))[:12]}...), though only in formatting: its canonical form is the locked one"
            )
        else:
            diffs.append(
                f"the policy changed since the lock (sha256 {source.sha256[:12]}..., lock "
                f"{str(lpol.get('sha256'))[:12]}...; canonical form differs too)"
            )

    rules_bytes: bytes | None = None
    try:
        rules_bytes = rules_path.read_bytes()
    except OSError as exc:
        diffs.append(f"cannot read the rules file {rules_path}: {exc.strerror}")
    if rules_bytes is not None:
        sha = hashlib.sha256(rules_bytes).hexdigest()
        md5 = hashlib.md5(rules_bytes, usedforsecurity=False).hexdigest()
        if sha == lrules.get("sha256") and md5 == lrules.get("md5"):
            checked.append(f"rules {rules_path} sha256 {sha[:12]}... and md5 {md5} are the locked ones")
        else:
            diffs.append(
                f"the rules file is not the locked one (sha256 {sha[:12]}..., lock {str(lrules.get('sha256'))[:12]}...;"
                f" md5 {md5}, lock {lrules.get('md5')})"
            )
        if source is not None:
            envs = [e for e in lrules.get("environments") or config.environments if isinstance(e, str)]
            try:
                version = config.refinery_version
                expected = render_rules(
                    source, rules_for(source.policy, lower_policy(source.policy), envs, version), version
                )
            except NectarError as exc:
                diffs.append(f"the policy does not compile: {exc.message}")
            else:
                actual = rules_bytes.decode("utf-8", errors="replace")

                def body(t: str) -> list[str]:
                    return [line for line in t.splitlines() if not line.startswith("#")]

                if expected == actual:
                    checked.append("the rules file is exactly what the policy compiles to")
                elif body(expected) == body(actual):
                    diffs.append(
                        "the rules file differs from what the policy compiles to only in its header comment (the "
                        "policy hashes or nectar version): the rules are the same, recompile to update the lock"
                    )
                else:
                    diffs.append(
                        "the rules file is not what the policy compiles to:\n"
                        + _short_diff(actual, expected, str(rules_path), "compiled from the policy")
                    )

    proof = lock.get("proof") or {}
    vacuous = ", ".join(map(str, proof.get("vacuous") or []))
    if proof.get("proven") and vacuous:
        what = (
            f"the lock records a proof with vacuous checks (nothing to check), accepted with --allow-vacuous: {vacuous}"
        )
        (diffs if require_proof else notes).append(what)
    elif proof.get("proven"):
        checked.append(f"the lock records a passed proof on engine {proof.get('engine')}")
    elif require_proof:
        diffs.append("the lock was made with --no-prove: the policy was never proven")
    else:
        notes.append("the lock was made with --no-prove: the policy was not proven")
    lcorpus = lock.get("corpus")
    if isinstance(lcorpus, dict):
        if corpus_dir is not None and (corpus_dir / MANIFEST_NAME).is_file():
            now = corpus_fingerprint(corpus_dir)
            if now.get("manifest_sha256") == lcorpus.get("manifest_sha256"):
                checked.append(f"corpus {corpus_dir} is the one the proof used")
            else:
                diffs.append(
                    f"the corpus changed since the proof (manifest sha256 {now['manifest_sha256'][:12]}..., lock "
                    f"{str(lcorpus.get('manifest_sha256'))[:12]}...; {now['spans']} spans / {now['traces']} traces, "
                    f"lock {lcorpus.get('spans')} / {lcorpus.get('traces')}): prove and compile again"
                )
        else:
            notes.append("the corpus the proof used is not available here; not checked")
    return VerifyReport(policy_path, rules_path, lock_path, tuple(diffs), tuple(notes), tuple(checked))


__all__ = [
    "CompileResult",
    "PolicySource",
    "VerifyReport",
    "check_locked",
    "compile_policy",
    "corpus_fingerprint",
    "dumps_lock",
    "read_lock",
    "read_policy",
    "record_proposal",
    "render_rules",
    "rules_for",
    "verify",
    "write_outputs",
]
