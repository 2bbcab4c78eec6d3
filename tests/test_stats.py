"""Corpus statistics and the field catalog, checked against direct Polars computations on the same data."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from nectar.cli import main
from nectar.corpus.layout import Corpus, ValueType
from nectar.corpus.stats import TopValue, corpus_stats, field_catalog, render_catalog, render_stats
from nectar.corpus.store import create_corpus, tables_from_records
from nectar.corpus.synth import synth_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    d = tmp_path_factory.mktemp("stats") / "c"
    synth_corpus(d, 40_000, 21)
    return Corpus.open(d)


@pytest.fixture(scope="module")
def df(corpus: Corpus) -> pl.DataFrame:
    return corpus.scan().collect()


def _q(s: pl.Series, q: float) -> float:
    return s.quantile(q, interpolation="nearest")  # type: ignore[return-value]


def test_stats_match_polars(corpus: Corpus, df: pl.DataFrame) -> None:
    s = corpus_stats(corpus)
    per_trace = df.group_by("trace_id").len()["len"]
    assert s.spans == df.height == corpus.manifest.spans
    assert s.traces == per_trace.len() == corpus.manifest.traces
    assert s.roots == df["parent_id"].null_count()
    assert s.traces_with_root == s.traces
    d = s.spans_per_trace
    assert d is not None
    assert (d.min, d.p50, d.p90, d.p99, d.max) == (
        per_trace.min(),
        _q(per_trace, 0.5),
        _q(per_trace, 0.9),
        _q(per_trace, 0.99),
        per_trace.max(),
    )
    by_service = dict(df.group_by("service.name").len().iter_rows())
    assert {x.name: x.spans for x in s.services} == by_service
    counts = [x.spans for x in s.services]
    assert counts == sorted(counts, reverse=True)
    assert s.time_start == corpus.manifest.time_start and 3000 < s.window_seconds <= 3600
    j = s.to_json()
    assert j["traces_without_root"] == 0 and j["spans_per_trace"]["max"] == d.max
    assert "spans per trace" in render_stats(s)


def test_catalog_matches_polars(corpus: Corpus, df: pl.DataFrame) -> None:
    cat = field_catalog(corpus, top=5)
    assert cat.spans == df.height
    assert list(cat.names) == sorted(corpus.field_columns)
    for f in cat.fields:
        col = df[f.name]
        assert len(f.types) == 1
        t = f.types[0]
        assert f.present == t.count == col.len() - col.null_count()
        assert f.presence == pytest.approx(f.present / df.height)
        assert t.distinct == f.distinct == col.drop_nulls().n_unique()
        if t.type in (ValueType.STR, ValueType.BOOL) or (t.type is ValueType.INT and t.distinct <= 50):
            vc = col.drop_nulls().value_counts(name="n").sort(["n", f.name], descending=[True, False]).head(5)
            assert t.top_values == tuple(TopValue(v, n) for v, n in vc.iter_rows()), f.name
        else:
            assert t.top_values == ()
        if t.type in (ValueType.INT, ValueType.FLOAT):
            q = t.quantiles
            assert q is not None
            s = col.drop_nulls()
            assert (q.min, q.p50, q.p90, q.p99, q.max) == (s.min(), _q(s, 0.5), _q(s, 0.9), _q(s, 0.99), s.max())
        else:
            assert t.quantiles is None


def test_catalog_specifics(corpus: Corpus) -> None:
    cat = field_catalog(corpus)
    assert cat.get("nope") is None
    svc = cat.get("service.name")
    assert svc is not None and svc.presence == 1.0 and svc.distinct == 6
    err = cat.get("error")
    assert err is not None and err.types[0].top_values == (TopValue(True, err.present),) and err.presence < 0.05
    status = cat.get("http.response.status_code")
    assert status is not None and status.types[0].top_values[0].value == 200
    assert status.types[0].quantiles is not None and status.types[0].quantiles.max >= 500
    dur = cat.get("duration_ms")
    assert dur is not None and dur.types[0].top_values == () and dur.types[0].type is ValueType.FLOAT


def test_catalog_json_is_deterministic(corpus: Corpus, capsys: pytest.CaptureFixture[str]) -> None:
    a = json.dumps(field_catalog(corpus).to_json(), sort_keys=True)
    b = json.dumps(field_catalog(corpus).to_json(), sort_keys=True)
    assert a == b
    assert main(["corpus", "fields", "--corpus", str(corpus.root), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(a)
    assert main(["corpus", "fields", "--corpus", str(corpus.root), "--field", "user.tier"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 fields") and "'free'" in out
    assert main(["corpus", "fields", "--corpus", str(corpus.root), "--field", "http.status", "--format", "json"]) == 0
    names = [f["name"] for f in json.loads(capsys.readouterr().out)["fields"]]
    assert names == ["http.response.status_code", "http.status_code"]  # the default alias
    assert main(["corpus", "fields", "--corpus", str(corpus.root), "--field", "nope"]) == 2
    assert "no field 'nope'" in capsys.readouterr().err
    assert main(["corpus", "stats", "--corpus", str(corpus.root), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == corpus_stats(corpus).to_json()


def _record(trace: str, span: str, parent: str | None, fields: dict[str, object]) -> dict[str, object]:
    return {"trace_id": trace, "span_id": span, "parent_id": parent, "timestamp": 1_000_000, "fields": fields}


def test_catalog_with_mixed_types_and_nulls(tmp_path: Path) -> None:
    """A field with several types and a key present with null: counts per type, presence over all."""
    records = [
        _record("t1", "a", None, {"service.name": "x", "code": 500, "tag": None}),
        _record("t1", "b", "a", {"service.name": "x", "code": "500", "tag": "k"}),
        _record("t1", "c", "a", {"service.name": "y", "code": 2.5}),
        _record("t2", "d", "", {"code": 500}),
        _record("t3", "e", "zz", {"service.name": "y"}),
    ]
    create_corpus(tmp_path / "c", tables_from_records([records], 0), sources=[], options={})
    corpus = Corpus.open(tmp_path / "c")
    cat = field_catalog(corpus)
    code = cat.get("code")
    assert code is not None
    assert [(t.type, t.count, t.distinct) for t in code.types] == [
        (ValueType.STR, 1, 1),
        (ValueType.INT, 2, 1),
        (ValueType.FLOAT, 1, 1),
    ]
    assert code.present == 4 and code.distinct == 3
    assert code.type_of(ValueType.INT) is not None and code.type_of(ValueType.INT).top_values == (TopValue(500, 2),)  # type: ignore[union-attr]
    tag = cat.get("tag")
    assert tag is not None and tag.present == 2
    assert [(t.type, t.count) for t in tag.types] == [(ValueType.STR, 1), (ValueType.NULL, 1)]
    s = corpus_stats(corpus)
    assert (s.spans, s.traces, s.roots, s.traces_with_root) == (5, 3, 2, 2)  # "" parent is a root, "zz" is not
    assert [(x.name, x.spans) for x in s.services] == [("x", 2), ("y", 2), (None, 1)]
    text = render_catalog(cat)
    assert "code  [str 1, int 2, float 1]" in text and "null 1" in text


def test_empty_corpus(tmp_path: Path) -> None:
    create_corpus(tmp_path / "c", iter([]), sources=[], options={})
    corpus = Corpus.open(tmp_path / "c")
    s = corpus_stats(corpus)
    assert (s.spans, s.traces, s.spans_per_trace, s.services) == (0, 0, None, ())
    assert field_catalog(corpus).fields == ()
