"""The synthetic corpus: determinism, exact size, streaming in bounded memory, and realism properties."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import polars as pl
import pytest

from nectar.cli import main
from nectar.corpus import synth
from nectar.corpus.layout import MANIFEST_NAME, Corpus, ValueType
from nectar.corpus.synth import synth_batches, synth_corpus

HEALTH = ("GET /healthz", "GET /readyz")


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if not p.name.startswith(".")}


def test_same_seed_same_bytes_across_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth, "CHUNK_SPANS", 10_000)
    a = synth_corpus(tmp_path / "a", 25_000, 11)
    synth_corpus(tmp_path / "b", 25_000, 11)
    synth_corpus(tmp_path / "c", 25_000, 12)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert [f.rows for f in a.files] == [10_000, 10_000, 5_000]
    assert a.spans == 25_000
    c = _files(tmp_path / "c")
    assert c["part-000001.parquet"] != _files(tmp_path / "a")["part-000001.parquet"]
    assert set(c) == {MANIFEST_NAME, "part-000001.parquet", "part-000002.parquet", "part-000003.parquet"}


@pytest.mark.parametrize("spans", [0, 1, 7, 1234])
def test_exact_span_count(tmp_path: Path, spans: int) -> None:
    m = synth_corpus(tmp_path / "c", spans, 3)
    assert m.spans == spans
    df = Corpus.open(tmp_path / "c").scan().collect()
    assert df.height == spans
    if spans:  # whole traces only: every trace has its root
        roots = df.filter(pl.col("parent_id").is_null())
        assert roots["trace_id"].n_unique() == df["trace_id"].n_unique() == m.traces


def test_manifest_records_the_generator(tmp_path: Path) -> None:
    m = synth_corpus(tmp_path / "c", 2000, 5, sample_rate=10, window=600)
    assert m.sample_rate == 10.0
    assert m.sources == [
        {
            "format": "synth",
            "generator": synth.GENERATOR,
            "seed": 5,
            "spans": 2000,
            "window_seconds": 600,
            "start": "2026-01-05T09:00:00Z",
        }
    ]
    assert 500 < m.window_seconds <= 600


def test_streams_in_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generating 200k spans in 25k-span chunks peaks far lower than in one 200k chunk; batches come lazily."""

    def peak(chunk: int) -> int:
        monkeypatch.setattr(synth, "CHUNK_SPANS", chunk)
        tracemalloc.start()
        try:
            sizes = [t.num_rows for t, _ in synth_batches(200_000, 1)]  # each table dropped before the next
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert sum(sizes) == 200_000 and max(sizes) <= chunk

    small, big = peak(25_000), peak(200_000)
    assert small < big / 3, (small, big)


@pytest.fixture(scope="module")
def spans(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    d = tmp_path_factory.mktemp("synth") / "c"
    synth_corpus(d, 200_000, 7)
    return Corpus.open(d).scan().collect()


@pytest.fixture(scope="module")
def traces(spans: pl.DataFrame) -> pl.DataFrame:
    status = pl.max_horizontal("http.response.status_code", "http.status_code")
    root = pl.col("parent_id").is_null()
    return spans.group_by("trace_id").agg(
        pl.len().alias("n"),
        root.sum().alias("roots"),
        pl.col("name").filter(root).first().alias("root_name"),
        pl.col("duration_ms").filter(root).first().alias("root_ms"),
        status.max().alias("status"),
        pl.col("arrival").max().alias("last_arrival"),
        pl.col("arrival").filter(root).first().alias("root_arrival"),
    )


def test_types_are_otlp_types(spans: pl.DataFrame) -> None:
    schema = spans.schema
    assert schema["duration_ms"] == pl.Float64
    assert schema["status_code"] == pl.Int64
    assert schema["http.response.status_code"] == pl.Int64
    assert schema["http.status_code"] == pl.Int64
    assert schema["error"] == pl.Boolean
    assert schema["service.name"] == pl.String


def test_both_status_field_generations(spans: pl.DataFrame) -> None:
    new = spans.filter(pl.col("http.response.status_code").is_not_null())
    old = spans.filter(pl.col("http.status_code").is_not_null())
    assert new.height > 10_000 and old.height > 10_000
    assert set(new["service.name"].unique()) == {"frontend", "checkout", "catalog"}
    assert set(old["service.name"].unique()) == {"api", "payments", "search"}
    assert (
        spans.filter(
            pl.col("http.response.status_code").is_not_null() & pl.col("http.status_code").is_not_null()
        ).height
        == 0
    )
    assert new["http.request.method"].null_count() == 0 and old["http.method"].null_count() == 0


def test_status_mix(traces: pl.DataFrame) -> None:
    requests = traces.filter(~pl.col("root_name").is_in(HEALTH))
    share = requests.select((pl.col("status") >= 500).mean()).item()
    assert 0.001 < share < 0.02  # 5xx: rare but present
    codes = set(requests["status"].drop_nulls().unique())
    assert {200, 201, 404, 429, 500, 503}.issubset(codes)
    assert requests.select((pl.col("status").is_between(400, 499)).mean()).item() > 0.005


def test_otel_error_status(spans: pl.DataFrame) -> None:
    # Refinery's OTLP ingest: error = true exactly when the OTel status is ERROR (2), absent otherwise.
    assert spans.filter(pl.col("error").is_not_null() != (pl.col("status_code") == 2)).height == 0
    assert spans.filter(pl.col("error") == False).height == 0  # noqa: E712
    assert set(spans["status_code"].unique()) == {0, 1, 2}
    server_5xx = spans.filter((pl.col("span.kind") == "server") & (pl.col("http.response.status_code") >= 500))
    assert server_5xx.height and server_5xx["error"].all()
    db_err = spans.filter(pl.col("db.system").is_not_null() & pl.col("error"))
    assert db_err.height and db_err["status_message"].null_count() == 0


def test_health_checks_numerous_and_alone(traces: pl.DataFrame, spans: pl.DataFrame) -> None:
    health = traces.filter(pl.col("root_name").is_in(HEALTH))
    assert health.height / traces.height > 0.3
    assert (health["n"] == 1).all()
    routes = spans.filter(pl.col("name").is_in(HEALTH))["http.route"].unique().to_list()
    assert sorted(routes) == ["/healthz", "/readyz"]


def test_slow_tail_and_fan_out(traces: pl.DataFrame) -> None:
    slow = traces.filter(pl.col("root_ms") > 5000).height
    assert 5 <= slow < traces.height * 0.01
    assert traces.select(pl.col("root_ms").median()).item() < 50
    fan_out = traces.filter(pl.col("n") >= 150)
    assert fan_out.height >= 5 and fan_out["n"].max() > 300  # type: ignore[operator]


def test_tree_shape_and_timing(spans: pl.DataFrame, traces: pl.DataFrame) -> None:
    assert (traces["roots"] == 1).all()
    assert (traces["last_arrival"] == traces["root_arrival"]).all()  # export order: the root ends last
    parents = spans.select(
        pl.col("span_id").alias("parent_id"),
        pl.col("trace_id").alias("parent_trace"),
        pl.col("timestamp").dt.epoch("us").alias("p_start"),
        pl.col("duration_ms").alias("p_ms"),
        pl.col("arrival").alias("p_arrival"),
    )
    children = spans.filter(pl.col("parent_id").is_not_null())
    j = children.join(parents, on="parent_id", how="left")
    assert j["p_start"].null_count() == 0  # every parent id names a span
    assert (j["trace_id"] == j["parent_trace"]).all()
    start = pl.col("timestamp").dt.epoch("us")
    assert j.filter(start < pl.col("p_start")).height == 0  # parents start first
    end_over = start + pl.col("duration_ms") * 1000 - (pl.col("p_start") + pl.col("p_ms") * 1000)
    assert j.select(end_over.max()).item() <= 1.0  # and end last (1 µs of timestamp truncation)
    assert (j["arrival"] < j["p_arrival"]).all()


def test_attributes_present(spans: pl.DataFrame) -> None:
    assert set(spans["db.system"].drop_nulls().unique()) == {"postgresql", "redis"}
    assert set(spans["user.tier"].drop_nulls().unique()) == {"free", "pro", "enterprise"}
    assert spans["cloud.region"].null_count() == 0 and spans["k8s.namespace.name"].null_count() == 0
    assert set(spans["span.kind"].unique()) == {"server", "client", "internal"}
    assert spans.filter(pl.col("db.system") == "postgresql")["db.statement"].null_count() == 0
    window = spans.select(pl.col("timestamp").max() - pl.col("timestamp").min()).item()
    assert 3500 < window.total_seconds() <= 3600


def test_field_catalog_of_manifest_is_single_typed(tmp_path: Path) -> None:
    m = synth_corpus(tmp_path / "c", 3000, 2)
    c = Corpus.open(tmp_path / "c")
    assert all(len(types) == 1 for types in m.fields.values())
    assert c.field_columns["http.status_code"] == {ValueType.INT: "http.status_code"}


def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c"
    assert main(["corpus", "synth", "--spans", "1500", "--seed", "4", "--out", str(out), "--format", "json"]) == 0
    assert '"spans": 1500' in capsys.readouterr().out
    before = _files(out)
    assert main(["corpus", "synth", "--spans", "1500", "--seed", "4", "--out", str(out)]) == 0
    assert _files(out) == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["corpus", "synth", "--spans", "10", "--out", str(tmp_path / "other")]) == 2
    assert "not a Nectar corpus" in capsys.readouterr().err
    assert main(["corpus", "synth", "--spans", "10", "--window", "0", "--out", str(tmp_path / "w")]) == 2


def test_bundled_corpus_is_what_the_documented_command_makes(tmp_path: Path) -> None:
    """corpus/ = `nectar corpus synth --spans 50000 --seed 7` (same data; bytes also depend on store.py's writer)."""
    from tests.conftest import REPO

    bundled = Corpus.open(REPO / "corpus")
    made = Corpus.open(tmp_path / "c") if synth_corpus(tmp_path / "c", 50_000, 7) else None
    assert made is not None
    assert bundled.manifest.to_json() | {"files": None} == made.manifest.to_json() | {"files": None}
    assert bundled.scan().collect().equals(made.scan().collect())
    assert "--spans 50000 --seed 7 --out corpus" in (REPO / "corpus" / "README.md").read_text()
