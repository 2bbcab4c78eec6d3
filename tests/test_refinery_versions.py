"""`replay --no-validate` runs what Refinery runs with validation off; `refinery.version` moves validation on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nectar.cli import main
from nectar.refinery.model import nested_deterministic_valid

SAMPLE = Path(__file__).resolve().parents[1] / "corpus"

RULES = """RulesVersion: 2
Samplers:
  __default__:
    RulesBasedSampler:
      Rules:
        - Name: "errs"
          Conditions:
            - Field: "error"
              Operator: "="
              Value: true
          Sampler:
            DeterministicSampler:
              SampleRate: 2
        - Name: "odd scope"
          Scope: "spam"
          Conditions:
            - Field: "x"
              Operator: "exists"
          SampleRate: 3
        - Name: "rest"
          SampleRate: 1
"""

NESTED_ONLY = """RulesVersion: 2
Samplers:
  __default__:
    RulesBasedSampler:
      Rules:
        - Name: "all"
          Sampler:
            DeterministicSampler:
              SampleRate: 4
"""


_CAPSYS: list[pytest.CaptureFixture[str]] = []


@pytest.fixture(autouse=True)
def _capture(capsys: pytest.CaptureFixture[str]) -> None:
    _CAPSYS[:] = [capsys]


def _run(args: list[str], cwd: Path) -> tuple[int, str]:
    """The console script in ``cwd`` (its nectar.toml applies): exit code, stdout + stderr."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        code = main(args)
    finally:
        os.chdir(old)
    out = _CAPSYS[0].readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize(("version", "valid"), [("3.2.2", False), ("3.2.3", True), ("3.3.0", True), ("3.1.9", False)])
def test_nested_deterministic_by_version(version: str, valid: bool) -> None:
    assert nested_deterministic_valid(version) is valid


def test_no_validate_runs_what_refinery_runs(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    code, out = _run(["replay", str(rules), "--corpus", str(SAMPLE)], tmp_path)
    assert code == 2 and "must be one of [trace span]" in out
    code, out = _run(["replay", str(rules), "--corpus", str(SAMPLE), "--no-validate", "--format", "json"], tmp_path)
    assert code == 0, out
    report = json.loads(out)
    by_name = {r["name"]: r for r in report["rules"]}
    # the nested DeterministicSampler runs (by trace-id hash), the unknown Scope matches every trace it reaches
    assert by_name["errs"]["decided"]["traces"] > 0 and by_name["errs"]["rate"] == 2
    assert (
        by_name["odd scope"]["decided"]["traces"] == report["totals"]["traces"] - by_name["errs"]["decided"]["traces"]
    )
    assert by_name["rest"]["decided"]["traces"] == 0
    codes = [lint["code"] for lint in report["lints"]]
    assert codes.count("R000") == 2  # both validation findings, as lints with their position
    assert all("line" in lint for lint in report["lints"] if lint["code"] == "R000")


def test_refinery_version_accepts_nested_deterministic(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(NESTED_ONLY, encoding="utf-8")
    code, out = _run(["replay", str(rules), "--corpus", str(SAMPLE)], tmp_path)
    assert code == 2 and "unknown key DeterministicSampler" in out
    (tmp_path / "nectar.toml").write_text('[refinery]\nversion = "3.3.0"\n', encoding="utf-8")
    code, out = _run(["replay", str(rules), "--corpus", str(SAMPLE), "--format", "json"], tmp_path)
    assert code == 0, out
    assert json.loads(out)["rules"][0]["rate"] == 4


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[refinery]\nversion = "three"\n', "refinery.version must be a version"),
        ("[refinery]\ncluster_size = 0\n", "refinery.cluster_size must be a whole number"),
        ("[refinery]\ntrace_id_fields = []\n", "refinery.trace_id_fields must be a non-empty list"),
        ("[refinery]\nbogus = 1\n", "unknown key refinery.bogus"),
    ],
)
def test_refinery_section_errors(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "nectar.toml").write_text(toml, encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text(NESTED_ONLY, encoding="utf-8")
    code, out = _run(["replay", str(rules), "--corpus", str(SAMPLE)], tmp_path)
    assert code == 2 and message in out


DET_POLICY = """nectar_policy{version,name,rules}:
  1
  det
  rules[2]{name,description,match,action,priority}:
    errs,errors,error == true,deterministic(rate=4),10
    rest,rest,true,keep,0
"""


def test_compile_and_import_nested_deterministic_follow_the_version(tmp_path: Path) -> None:
    (tmp_path / "d.toon").write_text(DET_POLICY, encoding="utf-8")
    code, out = _run(["compile", "d.toon", "--no-prove", "-o", "d.yaml"], tmp_path)
    assert code == 2 and "refinery#1857" in out and "refinery.version" in out
    assert not (tmp_path / "d.yaml").exists()
    (tmp_path / "nectar.toml").write_text('[refinery]\nversion = "3.3.0"\n', encoding="utf-8")
    code, out = _run(["compile", "d.toon", "--no-prove", "-o", "d.yaml"], tmp_path)
    assert code == 0, out
    text = (tmp_path / "d.yaml").read_text(encoding="utf-8")
    assert "DeterministicSampler:" in text and "RulesBasedSampler:" in text
    lock = json.loads((tmp_path / "nectar.lock").read_text(encoding="utf-8"))
    assert lock["rules"]["refinery_version"] == "3.3.0"
    code, out = _run(["import", "d.yaml", "-o", "back.toon"], tmp_path)
    assert code == 0, out
    assert "deterministic(rate=4)" in (tmp_path / "back.toon").read_text(encoding="utf-8")
    (tmp_path / "nectar.toml").unlink()
    code, out = _run(["import", "d.yaml", "-o", "again.toon"], tmp_path)
    assert code == 2 and "DeterministicSampler" in out
