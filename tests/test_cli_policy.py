"""The policy commands as a user runs them: exit codes, messages on stderr, files written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nectar.cli import main

README = (Path(__file__).parent / "data" / "policy" / "identity" / "readme.toon").read_text(encoding="utf-8")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    code, out, _ = run(["init", str(tmp_path / "proj"), "--spans", "500"], capsys)
    assert code == 0, out
    monkeypatch.chdir(tmp_path / "proj")
    return tmp_path / "proj"


def test_init_makes_a_ready_project(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("nectar.toml", "policy.toon", ".gitignore", "corpus/manifest.json"):
        assert (project / name).exists(), name
    assert (project / "policy.toon").read_text() == README
    assert (project / "nectar.toml").stat().st_mode & 0o777 == 0o666 & ~_umask()
    code, out, err = run(["check"], capsys)
    assert code == 0
    assert "ok: policy 'production-sampling', 3 rules -> 4 Refinery rules" in out
    assert err == ""


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_init_refuses_a_non_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    code, _, err = run(["init", str(tmp_path / "x")], capsys)
    assert code == 2
    assert "is not empty" in err and "--force" in err
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
    code, _, _ = run(["init", str(tmp_path / "x"), "--force", "--spans", "200"], capsys)
    assert code == 0
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_check_reports_position_and_caret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bad.toon"
    p.write_text(README.replace("http.status >= 500", "http.status => 500"))
    code, out, err = run(["check", str(p)], capsys)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"{p}:6:64: error: `=>` is not an operator; did you mean `>=`?"
    assert lines[1].endswith("keep-errors,Retain all errors,error == true or http.status => 500,keep,100")
    assert lines[2].index("^^") == lines[1].index("=>")
    assert "Traceback" not in err


def test_check_reports_all_rule_errors_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bad.toon"
    p.write_text(README.replace("http.status >= 500", "http.status => 500").replace("5s", "5sec"))
    code, _, err = run(["check", str(p)], capsys)
    assert code == 2
    assert ":6:64: error:" in err and ":7:47: error:" in err


def test_check_json_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.toon"
    p.write_text(README.replace("sample(0.01)", "sample(0.3)"))
    code, out, _ = run(["check", str(p), "--format", "json"], capsys)
    assert code == 0
    import json

    data = json.loads(out)
    assert data["ok"] is True and data["refinery_rules"] == 4  # `or` in keep-errors makes two
    assert "keeps 1 trace in 3" in data["warnings"][0]["message"]
    code, _, err = run(["check", str(p), "--strict"], capsys)
    assert code == 1
    assert "warning:" in err


def test_check_expression(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["check", "-e", "a == 1 or span(b == 2 and c == 3)"], capsys)
    assert code == 0
    assert "becomes 2 Refinery rule(s)" in out and "scope span: b == 2 AND c == 3" in out
    code, _, err = run(["check", "-e", "not (a == 1)"], capsys)
    assert code == 2 and "hint:" in err


def test_missing_policy_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["check", str(tmp_path / "nope.toon")], capsys)
    assert code == 2 and "not found" in err


def test_fmt_rewrites_then_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.toon"
    messy = README.replace("http.status >= 500", "http.status>=500").replace(
        "nectar_policy{version,name,budget_per_second,rules}:\n  1\n  production-sampling\n  10000\n",
        "nectar_policy:\n  version: 1\n  name: production-sampling\n  budget_per_second: 10000\n",
    )
    p.write_text(messy)
    code, out, _ = run(["fmt", str(p), "--check"], capsys)
    assert code == 1 and "+++" in out
    assert p.read_text() == messy  # --check writes nothing
    assert run(["fmt", str(p)], capsys)[0] == 0
    assert p.read_text() == README
    assert run(["fmt", str(p), "--check"], capsys)[0] == 0
    code, out, _ = run(["fmt", str(p), "--style", "standard", "--stdout"], capsys)
    assert code == 0 and out.startswith("nectar_policy:\n  version: 1\n")
    assert p.read_text() == README


def test_fmt_refuses_a_broken_policy_and_leaves_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.toon"
    broken = README.replace("rules[3]", "rules[5]")
    p.write_text(broken)
    code, _, err = run(["fmt", str(p)], capsys)
    assert code == 2 and "declares 5 rows but 3 follow" in err
    assert p.read_text() == broken


def test_console_script_exit_codes_and_help(tmp_path: Path) -> None:
    exe = [sys.executable, "-m", "nectar"]
    r = subprocess.run([*exe, "--version"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.startswith("nectar ")
    for cmd in (["init"], ["check"], ["fmt"]):
        r = subprocess.run([*exe, *cmd, "--help"], capture_output=True, text=True, check=False)
        assert r.returncode == 0 and "Example" in r.stdout, cmd
    p = tmp_path / "bad.toon"
    p.write_text("nectar_policy:\n  version: one\n")
    r = subprocess.run([*exe, "check", str(p)], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert r.returncode == 2
    assert "version must be a whole number" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*exe, "check", "--bogus"], capture_output=True, text=True, check=False)
    assert r.returncode == 2
