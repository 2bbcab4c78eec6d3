"""The two sides of a diff: a policy (``.toon``), a Refinery rules file (``.yaml``), or either at a git revision.

Each side becomes what ships: a policy is compiled exactly as ``nectar compile`` writes it
(:func:`nectar.compile.rules_for`), a rules file is loaded and validated as ``nectar replay`` loads it. A side is
then the sampler Refinery runs for the environment (Refinery's lookup: the exact name, else ``__default__``).

``REV:path`` reads the file with ``git show REV:path`` in the current repository (git's own path rules:
``path`` is from the repository's top, ``./path`` from the current folder); the part after the colon decides the
kind by its extension. A file that exists is read as a file even when its name has a colon.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from nectar.compile import rules_for
from nectar.config import Config
from nectar.errors import NectarError
from nectar.policy import ir
from nectar.policy.load import parse_policy, read_policy_file
from nectar.policy.lower import LoweredPolicy, lower_policy
from nectar.refinery.loader import load_rules_with_positions
from nectar.refinery.model import (
    Rule,
    RulesBasedSampler,
    RulesFile,
    Sampler,
    SamplerConfig,
    nested_deterministic_valid,
)
from nectar.util import decode_utf8

POLICY_SUFFIXES = (".toon",)
RULES_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a diff: where it came from, the rules file it ships as, and the sampler that decides."""

    label: str  # as the user wrote it (``policy.toon``, ``HEAD~1:policy.toon``)
    rules_file: RulesFile
    sampler: SamplerConfig  # the environment's entry (Refinery's lookup)
    policy: ir.Policy | None = None  # when the side is a policy
    lowered: LoweredPolicy | None = None

    @property
    def choice(self) -> RulesBasedSampler | Sampler | None:
        """What runs: the rules, a top-level sampler, or nothing (every trace kept)."""
        return self.sampler.choice

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The Refinery rules in order (none for a top-level sampler)."""
        choice = self.choice
        return choice.rules if isinstance(choice, RulesBasedSampler) else ()

    def policy_rule(self, rule: str | None) -> str | None:
        """The policy rule a Refinery rule was lowered from (``keep-errors#2`` -> ``keep-errors``); the name itself
        for a rules file."""
        if rule is None or self.lowered is None:
            return rule
        for r, origin in zip(self.lowered.sampler.rules, self.lowered.origins, strict=True):
            if r.name == rule:
                return origin.policy_rule
        return rule


def _kind(name: str, label: str) -> str:
    lower = name.lower()
    if lower.endswith(POLICY_SUFFIXES):
        return "policy"
    if lower.endswith(RULES_SUFFIXES):
        return "rules"
    raise NectarError(
        f"{label}: cannot tell a policy from a rules file by the name {name!r}",
        hint="a policy ends in .toon, a Refinery rules file in .yaml or .yml (or .json)",
    )


def git_show(rev: str, path: str) -> bytes:
    """The bytes of ``path`` at revision ``rev`` (``git show REV:path`` in the current folder)."""
    spec = f"{rev}:{path}"
    try:
        proc = subprocess.run(["git", "show", spec], capture_output=True, check=False)
    except FileNotFoundError:
        raise NectarError(
            f"cannot read {spec}: git is not installed (a REV:path argument needs git)",
            hint="install git, or pass the file itself (e.g. `git show REV:path > old.toon`)",
        ) from None
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
        message = (why[0] if why else f"git exited with {proc.returncode}").removeprefix("fatal: ")
        raise NectarError(
            f"cannot read {spec} from git: {message}",
            hint="REV:path is read with `git show` in the current repository; the path is from the repository's "
            "top (or `./path` from the current folder); for CI, fetch the base branch (`fetch-depth: 0`)",
        )
    return proc.stdout


def _read(arg: str) -> tuple[str, str, str]:
    """(kind, text, label) of a side's argument."""
    path = Path(arg)
    if path.is_file() or ":" not in arg:
        kind = _kind(path.name, arg)
        if kind == "policy":
            return kind, read_policy_file(path)[1], arg
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NectarError(
                f"rules file {arg!r} not found", hint="OLD and NEW are files, or REV:path for a file at a revision"
            ) from None
        except OSError as exc:
            raise NectarError(f"cannot read {arg}: {exc.strerror or exc}") from None
        return kind, decode_utf8(data, arg), arg
    rev, name = arg.split(":", 1)
    kind = _kind(name, arg)
    return kind, decode_utf8(git_show(rev, name), arg), arg


def load_side(arg: str, config: Config, env: str | None = None) -> Side:
    """One side of a diff from its command-line argument (see the module docstring). Errors exit 2."""
    kind, text, label = _read(arg)
    if kind == "policy":
        policy = parse_policy(text, label, config.aliases)
        return policy_side(policy, config, env, label)
    nested = nested_deterministic_valid(config.refinery_version)
    if "\n" not in text:  # the loader takes one-line text without a newline for a path
        text += "\n"
    rules_file, _ = load_rules_with_positions(text, label, accept_downstream_deterministic=nested)
    return Side(label, rules_file, rules_file.sampler_for(env))


def policy_side(policy: ir.Policy, config: Config, env: str | None = None, label: str | None = None) -> Side:
    """A policy as a side: the rules file ``nectar compile`` writes for it (``compile.environments``)."""
    lowered = lower_policy(policy)
    rules_file = rules_for(policy, lowered, config.environments, config.refinery_version)
    name = label if label is not None else (policy.path or "<policy>")
    return Side(name, rules_file, rules_file.sampler_for(env), policy, lowered)


__all__ = ["Side", "git_show", "load_side", "policy_side"]
