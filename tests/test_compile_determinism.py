"""Same policy and config, same bytes: compile in fresh processes with different PYTHONHASHSEED, locale and
working directory (and path spelling), with and without the proof, and compare rules.yaml and nectar.lock."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"
POLICIES = {  # all-features does not pass its proof (a sampled rule sits above the error rule): compiled --no-prove
    False: (REPO / "tests" / "data" / "compile" / "all-features.toon", GOLDEN / "compile-all-features.rules.yaml"),
    True: (REPO / "tests" / "data" / "policy" / "identity" / "readme.toon", GOLDEN / "identity-readme.rules.yaml"),
}
CORPUS = REPO / "corpus"

# (PYTHONHASHSEED, LC_ALL, run from: "proj" = the project folder, "sub" = a folder below it, "out" = elsewhere)
VARIANTS = [("0", "C", "proj"), ("12345", "C.UTF-8", "sub"), ("random", "POSIX", "out")]


def _compile(proj: Path, seed: str, locale: str, where: str, prove: bool) -> tuple[bytes, bytes]:
    cwd = {"proj": proj, "sub": proj / "sub", "out": proj.parent}[where]
    rel = os.path.relpath(proj, cwd)
    env = {**os.environ, "PYTHONHASHSEED": seed, "LC_ALL": locale, "LANG": locale, "TZ": "Pacific/Chatham"}
    argv = [sys.executable, "-m", "nectar", "compile", f"{rel}/policy.toon", "-o", f"{rel}/rules.yaml",
            "--lock", f"{rel}/nectar.lock", "--corpus", str(CORPUS)]  # fmt: skip
    if not prove:
        argv.append("--no-prove")
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return (proj / "rules.yaml").read_bytes(), (proj / "nectar.lock").read_bytes()


@pytest.mark.parametrize("prove", [False, True], ids=["no-prove", "proven"])
def test_same_bytes_across_processes(tmp_path: Path, prove: bool) -> None:
    proj = tmp_path / "project"
    (proj / "sub").mkdir(parents=True)
    policy, golden = POLICIES[prove]
    shutil.copy(policy, proj / "policy.toon")
    outputs = set()
    for seed, locale, where in VARIANTS:
        outputs.add(_compile(proj, seed, locale, where, prove))
        (proj / "rules.yaml").unlink()
        (proj / "nectar.lock").unlink()
    assert len(outputs) == 1
    rules, lock = outputs.pop()
    assert rules == golden.read_bytes().replace(f"({policy.name})".encode(), b"(policy.toon)")
    assert b'"proven": ' + (b"true" if prove else b"false") in lock
    assert str(tmp_path).encode() not in rules + lock  # no absolute paths
