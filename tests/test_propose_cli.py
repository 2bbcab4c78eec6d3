"""``nectar propose`` through the command line, offline: what it shows, when it writes, backups, refusals, refine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nectar.cli import main
from nectar.corpus.synth import synth_corpus

GOOD = "Keep all errors and slow requests over 5 seconds, drop health checks, sample everything else at 1%"


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("synth") / "corpus"
    synth_corpus(d, spans=3000, seed=7)
    return d


@pytest.fixture
def run(corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)

    def go(*args: str) -> tuple[int, str, str]:
        code = main(["propose", *args, "--corpus", str(corpus_dir)])
        out, err = capsys.readouterr()
        return code, out, err

    return go


def test_auto_without_key_uses_offline_with_a_notice(run: Any, tmp_path: Path) -> None:
    code, out, err = run(GOOD)
    assert code == 0, err
    assert err.count("ANTHROPIC_API_KEY is not set") == 1
    assert "Proposed by the offline proposer" in out
    assert "What each rule does" in out and "How the words were mapped" in out and "Result: all checks passed" in out
    assert "'health checks' -> http.route in" in out
    text = (tmp_path / "policy.toon").read_text(encoding="utf-8")
    assert text.startswith("nectar_policy{") and "health-checks" in text
    assert main(["check", str(tmp_path / "policy.toon")]) == 0


def test_same_intent_same_bytes(run: Any, tmp_path: Path) -> None:
    run(GOOD, "--provider", "offline", "-o", "a.toon")
    run(GOOD, "--provider", "offline", "-o", "b.toon")
    assert (tmp_path / "a.toon").read_bytes() == (tmp_path / "b.toon").read_bytes()
    c1 = run(GOOD, "--provider", "offline", "--format", "json", "-o", "c.toon")[1]
    c2 = run(GOOD, "--provider", "offline", "--format", "json", "-o", "c.toon")[1]
    assert json.loads(c1)["actions"] == ["wrote c.toon"] and json.loads(c2)["actions"] == ["c.toon unchanged"]
    assert c1.replace("wrote c.toon", "c.toon unchanged").replace('"written": true', '"written": false') == c2


def test_refuses_to_overwrite_without_tty_or_yes(run: Any, tmp_path: Path) -> None:
    (tmp_path / "policy.toon").write_text("old\n", encoding="utf-8")
    code, _, err = run(GOOD, "--provider", "offline")
    assert code == 2 and "--yes" in err
    assert (tmp_path / "policy.toon").read_text(encoding="utf-8") == "old\n"
    code, _, err = run(GOOD, "--provider", "offline", "--yes")
    assert code == 0, err
    assert (tmp_path / "policy.toon.bak").read_text(encoding="utf-8") == "old\n"
    assert "backup" in err


def test_unknown_clause_exit_2_nothing_written(run: Any, tmp_path: Path) -> None:
    code, _, err = run("Keep errors, drop the flux capacitor, sample the rest at 1%", "--provider", "offline")
    assert code == 2
    assert "cannot understand the clause 'drop the flux capacitor'" in err and "^^^^" in err
    assert "Traceback" not in err and not (tmp_path / "policy.toon").exists()


def test_failed_proof_is_written_as_a_draft_unless_proven_only(run: Any, tmp_path: Path) -> None:
    code, out, err = run("Sample everything at 1%", "--provider", "offline", "--proven-only")
    assert code == 1
    assert "errors     FAIL on the corpus" in out and "nothing was written" in err
    assert not (tmp_path / "policy.toon").exists()
    code, out, err = run("Sample everything at 1%", "--provider", "offline")
    assert code == 1 and "written to policy.toon as a draft" in err and "nectar compile` refuses it" in err
    assert (tmp_path / "policy.toon").exists()


def test_refine(run: Any, tmp_path: Path) -> None:
    assert run("Keep errors, sample the rest at 1%", "--provider", "offline")[0] == 0
    code, out, err = run("also drop health checks", "--refine", "--provider", "offline", "--yes", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert [r["name"] for r in doc["rules"]] == ["errors", "health-checks", "rest"]
    assert doc["written"] and doc["proof"]["passed"]
    assert (tmp_path / "policy.toon.bak").exists()


def test_refine_without_policy_is_bad_input(run: Any) -> None:
    code, _, err = run("also drop health checks", "--refine", "--provider", "offline")
    assert code == 2 and "not found" in err


def test_help_has_an_example(capsys: Any) -> None:
    assert main(["propose", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples: nectar propose" in out and "--refine" in out and "--provider" in out
