"""Every file under ../shared/realtraces ingests with the counts its README gives."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from nectar.corpus.ingest import ingest_paths
from nectar.corpus.layout import Corpus
from tests.conftest import shared_path

BAD_LINES = [108, 126, 130, 262, 264, 542, 818, 820, 836, 872]


def corpus_frame(corpus: Path) -> pl.DataFrame:
    return Corpus.open(corpus).scan().collect()


def real_spans(df: pl.DataFrame) -> pl.DataFrame:
    """Spans proper (not the rows for OTLP span events / links)."""
    if "meta.annotation_type" not in df.columns:
        return df
    return df.filter(pl.col("meta.annotation_type").is_null())


@pytest.mark.parametrize(
    ("folder", "fmt", "spans", "traces", "services"),
    [
        ("deathstarbench-traceweaver/hotel_load100", "jaeger", 5_500, 500, 6),
        ("deathstarbench-traceweaver/media_load100", "jaeger", 6_750, 250, 10),
    ],
)
def test_deathstarbench_folders(tmp_path: Path, folder: str, fmt: str, spans: int, traces: int, services: int) -> None:
    s = ingest_paths([str(shared_path("realtraces", folder))], tmp_path / "c")
    assert (s.spans, s.traces_added, s.skipped) == (spans, traces, 0)
    assert {src["format"] for src in s.sources} == {fmt}
    df = corpus_frame(tmp_path / "c")
    assert df["service.name"].n_unique() == services
    assert df.filter(pl.col("status_code") == 2).height == 0  # no errors in DeathStarBench
    codes = df.filter(pl.col("http.status_code").is_not_null())
    assert codes["http.status_code"].unique().to_list() == [200]
    assert codes["parent_id"].null_count() == traces  # every root carries one (media: its child span too)


def test_opensearch_data_prepper_files_with_invalid_lines(tmp_path: Path) -> None:
    base = shared_path("realtraces", "opensearch-observability")
    one, two = base / "otel-v1-apm-span-000001.json", base / "otel-v1-apm-span-000002.json"
    per_file = []
    for i, f in enumerate((one, two)):
        s = ingest_paths([str(f)], tmp_path / f"c{i}")
        per_file.append((s.spans, s.traces_added))
    assert per_file == [(500, 41), (474, 68)]  # README: 974 spans, 109 traces (41 + 68; one trace spans both)
    s = ingest_paths([str(one), str(two)], tmp_path / "both")
    assert (s.spans, s.corpus_traces, s.skipped) == (974, 108, 10)
    assert [(r.file, r.line) for r in s.skipped_records] == [(str(two), n) for n in BAD_LINES]
    assert all(r.reason.startswith("invalid JSON") for r in s.skipped_records)
    df = real_spans(corpus_frame(tmp_path / "both"))
    assert df["service.name"].n_unique() == 8
    assert df.filter(pl.col("status_code") == 2).height == 41 == df.filter(pl.col("error")).height
    assert sorted(df["http.status_code"].drop_nulls().unique().to_list()) == [200, 206, 404, 422, 503]


def test_opensearch_jaeger_span_documents(tmp_path: Path) -> None:
    f = shared_path("realtraces", "opensearch-observability", "jaeger-span-2023-01-24.json")
    s = ingest_paths([str(f)], tmp_path / "c")
    assert (s.spans, s.traces_added, s.skipped) == (379, 14, 0)
    df = real_spans(corpus_frame(tmp_path / "c"))
    assert df.height == 379 and df["service.name"].n_unique() == 6
    assert df.filter(pl.col("status_code") == 2).height == 18  # error=true tags became ERROR status


def test_opensearch_explore_documents(tmp_path: Path) -> None:
    f = shared_path("realtraces", "opensearch-observability", "otel_v1_apm_span_explore.data.ndjson")
    s = ingest_paths([str(f)], tmp_path / "c")
    assert (s.spans, s.traces_added, s.skipped) == (50, 5, 0)
    assert corpus_frame(tmp_path / "c")["service.name"].n_unique() == 8


def test_jaeger_v3_otlp_json_and_protobuf_agree(tmp_path: Path) -> None:
    base = shared_path("realtraces", "jaeger-ui-hotrod-otlp")
    files = [base / "getTrace-response.json", base / "derived" / "hotrod-trace.otlp.json"]
    files.append(base / "derived" / "hotrod-trace.otlp.pb")
    frames = []
    for i, f in enumerate(files):
        s = ingest_paths([str(f)], tmp_path / f"c{i}")
        assert (s.spans, s.traces_added, s.skipped) == (40, 1, 0)
        frames.append(corpus_frame(tmp_path / f"c{i}"))
    assert frames[0].equals(frames[1]) and frames[0].equals(frames[2])
    spans = real_spans(frames[0])
    assert spans["service.name"].n_unique() == 6
    assert spans.filter(pl.col("error::bool")).height == 3
    assert spans["http.response.status_code"].dtype == pl.Int64


def test_whole_folder_once_then_idempotent(tmp_path: Path) -> None:
    root = shared_path("realtraces")
    s = ingest_paths([str(root)], tmp_path / "c")
    assert s.files == 757 and s.spans == 5_500 + 6_750 + 974 + 379 + 50 + 3 * 40 and s.skipped == 10
    again = ingest_paths([str(root)], tmp_path / "c")
    assert again.files == 0 and len(again.already_ingested) == 757
