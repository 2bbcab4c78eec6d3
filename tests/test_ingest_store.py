"""The corpus writer shared by ingest and synth: append_tables / create_corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nectar.corpus import store
from nectar.corpus.layout import Corpus, column_map_from_schema
from nectar.errors import NectarError


def records(trace: str, n: int, t0: int = 1_000_000) -> list[dict[str, Any]]:
    return [
        {
            "trace_id": trace,
            "span_id": f"{trace}{i}",
            "parent_id": None if i == 0 else f"{trace}0",
            "timestamp": t0 + i,
            "fields": {"n": i, "s": "x" if i % 2 else None},
        }
        for i in range(n)
    ]


def test_append_continues_arrival_and_recomputes_manifest(tmp_path: Path) -> None:
    c = tmp_path / "c"
    m1 = store.append_tables(c, store.tables_from_records([records("a", 3)], store.next_arrival(c)), [{"p": 1}], {})
    assert (m1.spans, m1.traces, len(m1.files)) == (3, 1, 1)
    # A caller that numbers from 0 again is renumbered to continue the corpus.
    batches = store.tables_from_records([records("b", 2, 5_000_000), records("a", 1, 9)], 0)
    m2 = store.append_tables(c, batches, [{"p": 2}], {"o": 1}, sample_rate=4)
    assert (m2.spans, m2.traces, len(m2.files), m2.sample_rate) == (6, 2, 3, 4.0)
    assert [f.path for f in m2.files] == ["part-000001.parquet", "part-000002.parquet", "part-000003.parquet"]
    assert m2.sources == [{"p": 1}, {"p": 2}] and m2.ingest_options == {"o": 1}
    assert m2.fields == {"n": {"int": 6}, "s": {"null": 4, "str": 2}}
    assert (m2.time_start, m2.time_end) == ("1970-01-01T00:00:00.000009Z", "1970-01-01T00:00:05.000001Z")
    df = Corpus.open(c).scan().collect()
    assert df["arrival"].to_list() == list(range(6))


def test_synth_style_plain_tables(tmp_path: Path) -> None:
    t = pa.table({"trace_id": ["t", "t"], "span_id": ["1", "2"], "http.status_code": pa.array([200, 500], pa.int64())})
    m = store.append_tables(tmp_path / "c", iter([(t, column_map_from_schema(t.schema))]), [], {})
    assert m.fields == {"http.status_code": {"int": 2}}
    df = Corpus.open(tmp_path / "c").scan().collect()
    assert df["arrival"].to_list() == [0, 1] and df["timestamp"].null_count() == 2
    assert pq.read_schema(tmp_path / "c" / "part-000001.parquet").metadata[store.COLUMNS_METADATA_KEY]


def test_failed_append_leaves_manifest_and_removes_parts(tmp_path: Path) -> None:
    c = tmp_path / "c"
    store.append_tables(c, store.tables_from_records([records("a", 2)], 0), [], {})
    before = (c / "manifest.json").read_bytes()

    def boom() -> Any:
        yield from store.tables_from_records([records("b", 2)], 2)
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError):
        store.append_tables(c, boom(), [], {})
    assert (c / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in c.glob("*.parquet")) == ["part-000001.parquet"]


def test_create_corpus_replaces_a_corpus_and_refuses_other_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    store.create_corpus(out, store.tables_from_records([records("a", 3)], 0), [], {})
    m = store.create_corpus(out, store.tables_from_records([records("b", 1)], 0), [], {})
    assert (m.spans, Corpus.open(out).manifest.spans) == (1, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folders left
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(NectarError, match="not a Nectar corpus"):
        store.create_corpus(other, iter(()), [], {})
    assert (other / "keep.txt").exists()
    store.create_corpus(other, store.tables_from_records([records("c", 1)], 0), [], {}, overwrite=True)
    assert not (other / "keep.txt").exists() and Corpus.open(other).manifest.spans == 1
