"""`nectar replay`: the report's totals add up, the per-trace file is sorted JSON lines, env selection follows
Refinery's lookup, and a file Refinery rejects exits 2 with Refinery's message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nectar.cli import main
from nectar.corpus.layout import Corpus
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nectar.corpus.synth import synth_corpus

    out = tmp_path_factory.mktemp("replay") / "corpus"
    synth_corpus(out, spans=20_000, seed=3, sample_rate=10)
    return out


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nectar.corpus.ingest import ingest_paths

    out = tmp_path_factory.mktemp("replay-real") / "corpus"
    ingest_paths([str(shared_path("realtraces"))], out)
    return out


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _check_totals(report: dict[str, Any], corpus: Corpus) -> None:
    t = report["totals"]
    assert t["traces"] == corpus.manifest.traces and t["spans"] == corpus.manifest.spans
    rows = [*report["rules"], report["default"]]
    assert sum(r["decided"]["traces"] for r in rows) == t["traces"]
    assert sum(r["decided"]["spans"] for r in rows) == t["spans"]
    assert sum(r["expected_kept_spans"] for r in rows) == pytest.approx(t["expected_kept_spans"])
    assert sum(v["traces"] for v in t["by_keep"].values()) == t["traces"]
    for r in report["rules"]:
        assert r["matched"]["traces"] >= r["decided"]["traces"]
        assert (r["matched"]["traces"] == 0) == (r["name"] in report["never_matching"])
    w = report["corpus"]["window_seconds"]
    if w:
        expect = t["expected_kept_spans"] * report["corpus"]["sample_rate"] / w
        assert t["kept_events_per_sec"] == pytest.approx(expect, rel=1e-5)


def _check_per_trace(path: Path, traces: int) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == traces
    ids = [r["trace_id"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for r in rows:
        assert set(r) == {"trace_id", "rule", "keep", "rate", "reason"}
        assert r["keep"] in (True, False, "sampled")
        assert isinstance(r["rate"], int)
    return rows


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_replay_synthetic(synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str) -> None:
    rules = shared_path("refinery", "example_rules.yaml")
    per = tmp_path / "out" / "pt.jsonl"
    args = ["replay", str(rules), "--corpus", str(synth_dir), "--env", "production", "--engine", engine]
    code, out, _ = _run(capsys, *args, "--format", "json", "--per-trace", str(per))
    assert code == 0
    report = json.loads(out)
    assert report["sampler"] == "production" and report["sampler_type"] == "RulesBasedSampler"
    assert report["rules"][0]["name"] == "drop kubernetes probes"
    _check_totals(report, Corpus.open(synth_dir))
    rows = _check_per_trace(per, report["totals"]["traces"])
    probes = [r for r in rows if r["rule"] == "drop kubernetes probes"]
    assert probes and all(r["keep"] is False and r["reason"] == "rules/span/drop kubernetes probes" for r in probes)
    # Stable: the same run gives the same bytes (engine aside).
    _, out2, _ = _run(capsys, *args, "--format", "json")
    again = json.loads(out2)
    again.pop("per_trace_file", None)
    report.pop("per_trace_file", None)
    assert again == report


def test_replay_engines_agree(synth_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = str(shared_path("refinery", "example_rules.yaml"))
    reports = []
    for engine in ("polars", "duckdb", "reference"):
        code, out, _ = _run(capsys, "replay", rules, "--corpus", str(synth_dir), "--env", "production",
                            "--engine", engine, "--format", "json")  # fmt: skip
        assert code == 0
        rep = json.loads(out)
        rep.pop("engine")
        reports.append(rep)
    assert reports[0] == reports[1] == reports[2]


def test_replay_text(synth_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = str(shared_path("refinery", "example_rules.yaml"))
    code, out, _ = _run(capsys, "replay", rules, "--corpus", str(synth_dir), "--env", "production")
    assert code == 0
    assert "drop kubernetes probes" in out and "total" in out and "Expected kept" in out
    assert "\x1b[" not in out  # no colour off a terminal


def test_env_selection(synth_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rules = str(shared_path("refinery", "example_rules.yaml"))
    code, out, _ = _run(capsys, "replay", rules, "--corpus", str(synth_dir), "--env", "staging", "--format", "json")
    rep = json.loads(out)
    assert code == 0 and rep["sampler"] == "staging"
    assert [r["name"] for r in rep["rules"]][-1] == "load test traffic"
    # Unknown (and differently cased) names fall back to __default__: a DeterministicSampler with rate 1.
    per = tmp_path / "pt.jsonl"
    code, out, _ = _run(capsys, "replay", rules, "--corpus", str(synth_dir), "--env", "Production", "--format",
                        "json", "--per-trace", str(per))  # fmt: skip
    rep = json.loads(out)
    assert code == 0 and rep["sampler"] == "__default__" and rep["sampler_type"] == "DeterministicSampler"
    assert rep["rules"] == [] and rep["totals"]["keep_fraction"] == 1.0
    rows = _check_per_trace(per, rep["totals"]["traces"])
    assert {r["reason"] for r in rows} == {"deterministic/always"} and {r["keep"] for r in rows} == {True}


def test_rejected_file_exits_2(synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("RulesVersion: 1\nSamplers:\n  __default__:\n    DeterministicSampler:\n      SampleRate: 1\n")
    per = tmp_path / "pt.jsonl"
    code, _, err = _run(capsys, "replay", str(bad), "--corpus", str(synth_dir), "--per-trace", str(per))
    assert code == 2
    assert "RulesVersion must be 2, but it is 1" in err
    assert "Traceback" not in err and not per.exists()


def test_missing_corpus_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = str(shared_path("refinery", "example_rules.yaml"))
    code, _, err = _run(capsys, "replay", rules, "--corpus", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err


def test_replay_realtraces(real_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = str(shared_path("refinery", "example_rules.yaml"))
    per = tmp_path / "pt.jsonl"
    code, out, _ = _run(capsys, "replay", rules, "--corpus", str(real_dir), "--env", "production", "--engine",
                        "duckdb", "--format", "json", "--per-trace", str(per))  # fmt: skip
    assert code == 0
    rep = json.loads(out)
    _check_totals(rep, Corpus.open(real_dir))
    rows = _check_per_trace(per, rep["totals"]["traces"])
    # realtraces hold errors (OTel status ERROR, HTTP 5xx): some trace is kept by an error rule.
    assert any(r["rule"] in ("keep server errors", "keep spans marked as errors") for r in rows)


def test_lints_and_never_matching(synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "RulesVersion: 2\n"
        "Samplers:\n"
        "  __default__:\n"
        "    RulesBasedSampler:\n"
        "      Rules:\n"
        "        - Name: 'no rate'\n"
        "          Conditions:\n"
        "            - Field: 'no.such.field'\n"
        "              Operator: 'exists'\n"
        "        - Name: 'all'\n"
        "          SampleRate: 4\n"
    )
    code, out, _ = _run(capsys, "replay", str(rules), "--corpus", str(synth_dir), "--format", "json")
    rep = json.loads(out)
    assert code == 0 and rep["sampler"] == "__default__"
    assert "R007" in {lint["code"] for lint in rep["lints"]}
    assert rep["never_matching"] == ["no rate"]
    assert rep["rules"][1]["decided"]["traces"] == rep["totals"]["traces"]
    assert rep["totals"]["expected_kept_spans"] == pytest.approx(rep["totals"]["spans"] / 4)
    code, out, _ = _run(capsys, "replay", str(rules), "--corpus", str(synth_dir))
    assert code == 0 and "R007" in out and "never match" in out
