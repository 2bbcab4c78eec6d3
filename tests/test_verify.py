"""nectar verify: policy, rules.yaml and nectar.lock agree (exit 0), or exactly what differs is said (exit 1)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nectar.cli import main
from nectar.compile import verify
from nectar.config import Config

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "tests" / "data" / "policy" / "identity" / "readme.toon"
BUNDLED = REPO / "corpus"


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    p = tmp_path / "proj"
    p.mkdir()
    shutil.copy(POLICY, p / "policy.toon")
    (p / "nectar.toml").write_text('[project]\npolicy = "policy.toon"\ncorpus = "corpus"\n')
    shutil.copytree(BUNDLED, p / "corpus")
    assert _run(p, "compile") == 0
    return p


def _run(proj: Path, *argv: str) -> int:
    old = Path.cwd()
    os.chdir(proj)
    try:
        return main(list(argv))
    finally:
        os.chdir(old)


def _verify(proj: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = _run(proj, "verify", "--format", "json", *extra)
    return code, json.loads(capsys.readouterr().out)


def test_all_agree(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _verify(proj, capsys)
    assert code == 0 and out["ok"] and out["differences"] == []
    assert len(out["checked"]) == 5  # policy, rules hashes, rules = compiled, proof, corpus
    capsys.readouterr()
    assert _run(proj, "verify") == 0
    assert "all agree" in capsys.readouterr().out


def test_edited_rules(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = proj / "rules.yaml"
    rules.write_text(rules.read_text().replace("SampleRate: 100", "SampleRate: 10"))
    code, out = _verify(proj, capsys)
    assert code == 1
    d = out["differences"]
    assert len(d) == 2
    assert d[0].startswith("the rules file is not the locked one")
    assert "not what the policy compiles to" in d[1] and "-          SampleRate: 10" in d[1]
    assert "+          SampleRate: 100" in d[1]


def test_policy_reformatted_only(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pol = proj / "policy.toon"
    pol.write_text(pol.read_text().replace(",keep,100", ",keep,  100"))
    code, out = _verify(proj, capsys)
    assert code == 1 and len(out["differences"]) == 2
    assert "only in formatting" in out["differences"][0]
    assert "only in its header comment" in out["differences"][1]


def test_policy_changed(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pol = proj / "policy.toon"
    pol.write_text(pol.read_text().replace("sample(0.01)", "sample(0.1)"))
    code, out = _verify(proj, capsys)
    assert code == 1
    assert "canonical form differs too" in out["differences"][0]
    assert any("not what the policy compiles to" in d for d in out["differences"])


def test_lock_missing_or_other_version(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = proj / "nectar.lock"
    data = json.loads(lock.read_text())
    data["nectar_version"] = "0.0.9"
    lock.write_text(json.dumps(data))
    code, out = _verify(proj, capsys)
    assert code == 1 and out["differences"] == ["the lock was written by nectar 0.0.9, this is nectar 0.1.0"]
    lock.unlink()
    code, out = _verify(proj, capsys)
    assert code == 1 and "no lockfile" in out["differences"][0]


def test_corpus_changed(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = proj / "corpus" / "manifest.json"
    manifest.write_text(manifest.read_text() + "\n")
    code, out = _verify(proj, capsys)
    assert code == 1 and "the corpus changed since the proof" in out["differences"][0]


def test_no_prove_is_a_note_unless_required(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(proj, "compile", "--no-prove") == 0
    code, out = _verify(proj, capsys)
    assert code == 0 and any("--no-prove" in n for n in out["notes"])
    code, out = _verify(proj, capsys, "--require-proof")
    assert code == 1 and "never proven" in out["differences"][0]


def test_api_without_corpus(proj: Path) -> None:
    report = verify(proj / "policy.toon", proj / "rules.yaml", proj / "nectar.lock", Config())
    assert report.ok
    assert report.notes == ("the corpus the proof used is not available here; not checked",)
    (proj / "rules.yaml").unlink()
    report = verify(proj / "policy.toon", proj / "rules.yaml", proj / "nectar.lock", Config())
    assert not report.ok and report.differences[0].startswith("cannot read the rules file")
