"""The benchmark suite at toy size, so it keeps working: the floor query agrees with both engines, the exported
ingest inputs give back the same corpus verdicts, and ``python -m benchmarks`` runs every case and writes its
results (the real runs are ``python -m benchmarks``, outside pytest)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.export import write_flat_jsonl, write_otlp_jsonl
from benchmarks.floor import check_floor_agreement, prove_floor
from benchmarks.runner import POLICY, parse_size, size_label
from nectar.config import Config
from nectar.corpus.ingest import ingest_paths
from nectar.corpus.layout import Corpus
from nectar.corpus.synth import synth_corpus
from nectar.policy.load import load_policy
from nectar.prove import prove_policy

ROOT = Path(__file__).resolve().parents[1]
SPANS = 10_000


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / f"corpus-{SPANS}"
    synth_corpus(out, SPANS, 7)
    return out


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_floor_query_agrees_with_the_engines(small_corpus: Path, engine: str) -> None:
    check_floor_agreement(small_corpus, POLICY, engine)


def test_floor_agrees_on_the_bundled_corpus() -> None:
    """The sample corpus has every rule of policy12 deciding some traces but one: a broader agreement check."""
    floor = prove_floor(ROOT / "corpus")
    assert floor.get_column("rule_index").n_unique() >= 8
    for engine in ("polars", "duckdb"):
        check_floor_agreement(ROOT / "corpus", POLICY, engine)


def _verdicts(corpus: Path) -> list[tuple[str, int, int]]:
    config = Config()
    report = prove_policy(load_policy(POLICY, config.aliases), Corpus.open(corpus), config)
    return [(r["name"], r["matched"]["traces"], r["decided"]["traces"]) for r in report.replay["rules"]]


@pytest.mark.parametrize(("writer", "fmt"), [(write_flat_jsonl, "jsonl"), (write_otlp_jsonl, "otlp-json")])
def test_exported_inputs_ingest_to_the_same_verdicts(small_corpus: Path, tmp_path: Path, writer, fmt: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "spans.jsonl"
    assert writer(small_corpus, path) == SPANS
    if fmt == "jsonl":
        assert b"null" not in path.read_bytes()  # absent fields are absent keys (and the fast path applies)
    summary = ingest_paths([str(path)], tmp_path / "corpus", fmt=fmt, strict=True)
    assert summary.spans == SPANS
    assert _verdicts(tmp_path / "corpus") == _verdicts(small_corpus)


def test_sizes() -> None:
    assert [parse_size(s) for s in ("10k", "1m", "2.5M", "1_000")] == [10_000, 1_000_000, 2_500_000, 1_000]
    assert [size_label(n) for n in (10_000, 1_000_000, 1234)] == ["10k", "1M", "1234"]


def test_runner_runs_every_case(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "benchmarks", "--sizes", "10k", "--ingest-sizes", "10k,20k", "--explain-sizes", "10k"]
    cmd += ["--reference-spans", "5k", "--repeat", "1", "--out", str(out), "--cache", str(tmp_path / "cache")]
    subprocess.run([*cmd, "--no-check", "-q"], cwd=ROOT, check=True, timeout=240)
    results = json.loads((out / "results.json").read_text())
    assert results["format"] == "nectar-bench/1"
    assert {"cpu", "cores", "ram_gb", "python", "libraries"} <= set(results["machine"])
    seen = {(e["case"], e["size"], e["variant"]) for e in results["entries"]}
    for engine in ("polars", "duckdb"):
        assert ("prove", 10_000, f"nectar prove --engine {engine}") in seen
    assert ("prove", 10_000, "reference evaluator (extrapolated)") in seen
    assert ("ingest OTLP JSON lines", 10_000, "nectar ingest") in seen
    assert ("ingest flat JSON lines", 20_000, "nectar ingest") in seen
    assert sum(1 for c, _, _ in seen if c == "compile_explain") == 4
    for e in results["entries"]:
        assert len(e["runs"]) == 1 and e["runs"][0]["rc"] in (0, 1)
        assert e["wall_s"]["min"] > 0 and e["peak_rss_mb"]["max"] > 0
    md = (out / "RESULTS.md").read_text()
    for heading in ("## Targets", "## Prove", "## Ingest flat JSON lines", "## Ingest OTLP JSON lines", "## Compile"):
        assert heading in md
