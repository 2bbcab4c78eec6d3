"""`nectar ingest` core behaviour: flat JSON lines, type fidelity, idempotency, atomicity, gzip, stdin,
folders and globs, the CLI, and the fast path agreeing with the line-by-line reader."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nectar.cli import main
from nectar.corpus import store
from nectar.corpus.ingest import ingest_paths, jsonl
from nectar.corpus.ingest.jsonl_fast import fast_chunk
from nectar.corpus.layout import Corpus, ValueType
from nectar.errors import NectarError

DATA = Path(__file__).parent / "data" / "ingest"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def frame(corpus: Path) -> pl.DataFrame:
    return Corpus.open(corpus).scan().collect().sort("arrival")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def span(i: int, **fields: Any) -> dict[str, Any]:
    return {"trace.trace_id": f"t{i // 3}", "trace.span_id": f"s{i}", **fields}


# ---- flat JSON lines and type fidelity -----------------------------------------------------------------------


def test_type_fidelity_int_float_string_null_absent_json(tmp_path: Path) -> None:
    rows = [
        span(0, v=500),
        span(1, v=500.0),
        span(2, v="500"),
        span(3, v=None),
        span(4),
        span(5, v=True),
        span(6, v={"a": [1, 2]}),
        span(7, v=[1, "x"]),
    ]
    s = ingest_paths([str(write_jsonl(tmp_path / "a.jsonl", rows))], tmp_path / "c")
    assert (s.spans, s.skipped) == (8, 0)
    c = Corpus.open(tmp_path / "c")
    cols = c.field_columns["v"]
    assert set(cols) == {ValueType.INT, ValueType.FLOAT, ValueType.STR, ValueType.NULL, ValueType.BOOL, ValueType.JSON}
    assert c.manifest.fields["v"] == {"int": 1, "float": 1, "str": 1, "null": 1, "bool": 1, "json": 2}
    df = frame(tmp_path / "c")
    assert df[cols[ValueType.INT]].to_list()[:2] == [500, None]
    assert df[cols[ValueType.FLOAT]].to_list()[:2] == [None, 500.0]
    assert df[cols[ValueType.STR]].to_list()[2] == "500"
    assert df[cols[ValueType.NULL]].to_list()[3:5] == [True, None]  # present-with-null vs absent
    assert df[cols[ValueType.JSON]].to_list()[6:] == ['{"a":[1,2]}', '[1,"x"]']


def test_key_whose_type_varies_across_part_files(tmp_path: Path) -> None:
    rows = [span(0, code=200), span(1, code=201), span(2, code="404"), span(3, code=5.5)]
    f = write_jsonl(tmp_path / "a.jsonl", rows)
    ingest_paths([str(f)], tmp_path / "c", batch_spans=2)
    c = Corpus.open(tmp_path / "c")
    assert len(c.manifest.files) == 2
    assert c.manifest.fields["code"] == {"int": 2, "str": 1, "float": 1}
    df = frame(tmp_path / "c")
    assert df["code::int"].to_list() == [200, 201, None, None]
    assert df["code::str"].to_list() == [None, None, "404", None]
    assert df["arrival"].to_list() == [0, 1, 2, 3]


def test_ids_are_core_columns_not_fields(tmp_path: Path) -> None:
    """Refinery consumes the trace and parent ids (hidden from rules); span ids are ordinary fields that also fill
    the span_id core column (cases of every kind: test_ingest_id_fields.py)."""
    rows = [
        {"trace.trace_id": "t1", "trace.span_id": "a", "trace.parent_id": "", "meta.signal_type": "trace"},
        {"traceId": "t1", "spanId": "b", "parentId": "a", "name": "child"},
        {"trace.trace_id": "t1", "trace.span_id": "c", "trace.parent_id": "a", "timestamp": "2024-01-01T00:00:00Z"},
    ]
    ingest_paths([str(write_jsonl(tmp_path / "a.jsonl", rows))], tmp_path / "c")
    c = Corpus.open(tmp_path / "c")
    assert set(c.manifest.fields) == {"meta.signal_type", "name", "trace.span_id", "spanId"}
    df = frame(tmp_path / "c")
    assert df["parent_id"].to_list() == [None, "a", "a"]  # an empty parent is a root
    assert df["span_id"].to_list() == ["a", "b", "c"]
    assert df["trace.span_id"].to_list() == ["a", None, "c"] and df["spanId"].to_list() == [None, "b", None]
    assert df["timestamp"].dt.epoch("us").to_list() == [None, None, 1704067200000000]


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        ("2024-01-01T00:00:00.123456789Z", 1704067200123456),
        ("2024-01-01T02:00:00+02:00", 1704067200000000),
        ("2024-01-01T00:00:00", 1704067200000000),
        (1704067200, 1704067200000000),
        (1704067200.25, 1704067200250000),
        (1704067200123, 1704067200123000),
        (1704067200123456, 1704067200123456),
        (1704067200123456789, 1704067200123456),
        ("1704067200", 1704067200000000),
    ],
)
def test_timestamps_are_utc_microseconds(tmp_path: Path, value: Any, micros: int) -> None:
    f = write_jsonl(tmp_path / "a.jsonl", [span(0, timestamp=value)])
    ingest_paths([str(f)], tmp_path / "c")
    assert frame(tmp_path / "c")["timestamp"].dt.epoch("us").to_list() == [micros]


def test_malformed_jsonl_is_reported_with_lines_and_valid_lines_kept(tmp_path: Path) -> None:
    s = ingest_paths([str(DATA / "jsonl_malformed.jsonl")], tmp_path / "c")
    assert s.spans == 2
    assert [(r.line, r.reason.split(":")[0]) for r in s.skipped_records] == [
        (2, "invalid JSON"),
        (3, "trace id not a string"),
        (4, "missing trace id"),
        (5, "not a JSON object"),
        (6, "bad timestamp"),
    ]
    df = frame(tmp_path / "c")
    assert df["http.status_code::int"].to_list() == [500, None]
    assert df["http.status_code::str"].to_list() == [None, "500"]


# ---- idempotency and atomicity ---------------------------------------------------------------------------------


def test_idempotent_same_bytes_add_nothing(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "a.jsonl", [span(i) for i in range(5)])
    ingest_paths([str(f)], tmp_path / "c")
    before = snapshot(tmp_path / "c")
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(f.read_bytes())
    s = ingest_paths([str(f), str(copy)], tmp_path / "c")
    assert (s.files, s.spans, s.already_ingested) == (0, 0, [str(f), str(copy)])
    assert snapshot(tmp_path / "c") == before
    # Two inputs with the same bytes in one run: the second is the already-ingested one.
    s2 = ingest_paths([str(f), str(copy)], tmp_path / "c2")
    assert (s2.files, s2.spans, s2.already_ingested) == (1, 5, [str(copy)])


def test_strict_failure_mid_file_leaves_corpus_byte_identical(tmp_path: Path) -> None:
    ingest_paths([str(write_jsonl(tmp_path / "a.jsonl", [span(i) for i in range(4)]))], tmp_path / "c")
    before = snapshot(tmp_path / "c")
    bad = tmp_path / "b.jsonl"
    bad.write_text("".join(json.dumps(span(10 + i)) + "\n" for i in range(5)) + "{oops\n" + json.dumps(span(20)) + "\n")
    with pytest.raises(NectarError) as err:
        ingest_paths([str(bad)], tmp_path / "c", strict=True, batch_spans=2)
    assert err.value.span is not None and (err.value.span.file, err.value.span.line) == (str(bad), 6)
    assert "{oops" in err.value.render()
    assert snapshot(tmp_path / "c") == before
    # A strict failure on a new corpus leaves no folder behind.
    with pytest.raises(NectarError):
        ingest_paths([str(bad)], tmp_path / "new", strict=True)
    assert not (tmp_path / "new").exists()


def test_failure_while_writing_a_later_part_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_paths([str(write_jsonl(tmp_path / "a.jsonl", [span(i) for i in range(3)]))], tmp_path / "c")
    before = snapshot(tmp_path / "c")
    calls = {"n": 0}
    real = store.pq.write_table

    def flaky(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(*args, **kwargs)

    monkeypatch.setattr(store.pq, "write_table", flaky)
    big = write_jsonl(tmp_path / "b.jsonl", [span(100 + i) for i in range(10)])
    with pytest.raises(OSError, match="disk full"):
        ingest_paths([str(big)], tmp_path / "c", batch_spans=3)
    assert snapshot(tmp_path / "c") == before


# ---- inputs: gzip, stdin, folders, globs -----------------------------------------------------------------------


def test_gzip_gives_the_same_corpus(tmp_path: Path) -> None:
    rows = [span(i, n=i, name=f"op{i}") for i in range(6)]
    plain = write_jsonl(tmp_path / "a.jsonl", rows)
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    ingest_paths([str(plain)], tmp_path / "c1")
    ingest_paths([str(gz)], tmp_path / "c2")
    assert frame(tmp_path / "c1").equals(frame(tmp_path / "c2"))


def test_truncated_gzip_keeps_what_was_readable(tmp_path: Path) -> None:
    data = gzip.compress("".join(json.dumps(span(i, pad="x" * 200)) + "\n" for i in range(2000)).encode())
    gz = tmp_path / "cut.jsonl.gz"
    gz.write_bytes(data[: len(data) // 2])
    s = ingest_paths([str(gz)], tmp_path / "c")
    assert s.skipped >= 1 and any("unreadable input" in r.reason for r in s.skipped_records)
    assert 0 <= s.spans < 2000


def test_stdin_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    data = "".join(json.dumps(span(i)) + "\n" for i in range(4)).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(["ingest", "-", "--corpus", str(tmp_path / "c"), "--output", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (out["spans"], out["sources"][0]["path"], out["sources"][0]["format"]) == (4, "<stdin>", "jsonl")
    # The same bytes again on stdin: already ingested.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    main(["ingest", "-", "--corpus", str(tmp_path / "c"), "--output", "json"])
    assert json.loads(capsys.readouterr().out)["already_ingested"] == ["<stdin>"]


def test_folders_recursive_and_globs(tmp_path: Path) -> None:
    (tmp_path / "in" / "deep").mkdir(parents=True)
    write_jsonl(tmp_path / "in" / "a.jsonl", [span(0)])
    write_jsonl(tmp_path / "in" / "deep" / "b.json", [span(3)])
    (tmp_path / "in" / "README.md").write_text("# not data\n")
    (tmp_path / "in" / ".hidden.jsonl").write_text("garbage\n")
    s = ingest_paths([str(tmp_path / "in")], tmp_path / "c")
    assert (s.files, s.spans, s.skipped) == (2, 2, 0)
    s = ingest_paths([str(tmp_path / "in" / "**" / "*.json")], tmp_path / "c2")
    assert (s.files, s.spans) == (1, 1)
    with pytest.raises(NectarError, match="no files match"):
        ingest_paths([str(tmp_path / "nothing*.jsonl")], tmp_path / "c3")
    with pytest.raises(NectarError, match="no such file"):
        ingest_paths([str(tmp_path / "missing.jsonl")], tmp_path / "c3")


def test_corpus_inside_the_input_folder_is_not_read(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [span(0)])
    ingest_paths([str(tmp_path)], tmp_path / "corpus")
    s = ingest_paths([str(tmp_path)], tmp_path / "corpus")
    assert s.files == 0 and s.already_ingested == [str(tmp_path / "a.jsonl")]


def test_sample_rate_and_options_are_recorded(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "a.jsonl", [span(0)])
    ingest_paths([str(f)], tmp_path / "c", sample_rate=10)
    m = Corpus.open(tmp_path / "c").manifest
    assert m.sample_rate == 10.0 and m.ingest_options == {"format": "auto", "strict": False}
    assert m.sources[0]["sha256"] and m.sources[0]["format"] == "jsonl"
    with pytest.raises(NectarError, match="sample-rate"):
        ingest_paths([str(f)], tmp_path / "c", sample_rate=0.5)


def test_cli_text_summary_and_strict_exit_code(tmp_path: Path, capsys: Any) -> None:
    code = main(["ingest", str(DATA / "jsonl_malformed.jsonl"), "--corpus", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 spans" in out and "skipped 5 malformed record(s)" in out and "jsonl_malformed.jsonl:2:" in out
    code = main(["ingest", str(DATA / "jsonl_malformed.jsonl"), "--corpus", str(tmp_path / "s"), "--strict"])
    err = capsys.readouterr().err
    assert code == 2 and "jsonl_malformed.jsonl:2:" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


# ---- the native fast path agrees with the line reader ----------------------------------------------------------


def _both_paths(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[pl.DataFrame, pl.DataFrame]:
    f = tmp_path / "x.jsonl"
    f.write_text(text, encoding="utf-8")
    out = []
    for i, fast in enumerate((True, False)):
        monkeypatch.setattr(jsonl, "USE_FAST_PATH", fast)
        c = tmp_path / f"c{i}"
        s = ingest_paths([str(f)], c)
        out.append((frame(c), Corpus.open(c).manifest.fields, s.skipped))
    (a, fa, sa), (b, fb, sb) = out
    assert fa == fb and sa == sb
    assert a.columns == b.columns
    return a, b


def test_fast_path_is_taken_for_dense_files_and_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        span(i, timestamp=f"2024-01-01T00:00:{i:02d}.{i:09d}Z", d=i + 0.5, ok=i % 2 == 0, code=200 + i, s="x" * i)
        for i in range(30)
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    assert fast_chunk(text.encode()) is not None
    a, b = _both_paths(tmp_path, text, monkeypatch)
    assert a.drop("arrival").equals(b.drop("arrival"))


_keys = st.sampled_from(["a", "b", "http.status_code", "trace_id", "x::int", "timestamp"])
_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.just(1.0),
    st.just({"n": 1}),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(_keys, _values, max_size=4), min_size=1, max_size=8))
def test_fast_path_never_differs_from_line_reader(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]]
) -> None:
    tmp = tmp_path_factory.mktemp("h")
    text = "".join(
        json.dumps({"trace.trace_id": f"t{i % 3}", "trace.span_id": f"s{i}", **r}) + "\n" for i, r in enumerate(rows)
    )
    a, b = _both_paths(tmp, text, monkeypatch)
    assert a.drop("arrival").equals(b.drop("arrival"), null_equal=True)


_typed = st.sampled_from(
    [
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
        st.text(max_size=4),
        st.booleans(),
        st.sampled_from(["2024-01-01T00:00:00Z", "2024-02-29", "x"]),
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fast_path_with_one_type_per_key_matches(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    keys = data.draw(st.lists(st.sampled_from(["a", "b", "c", "timestamp"]), unique=True, max_size=3))
    kinds = {k: data.draw(_typed) for k in keys}
    n = data.draw(st.integers(min_value=1, max_value=6))
    rows = [{k: data.draw(kinds[k]) for k in keys if data.draw(st.booleans())} for _ in range(n)]
    tmp = tmp_path_factory.mktemp("h")
    text = "".join(
        json.dumps({"trace.trace_id": "t", "trace.span_id": f"s{i}", **r}) + "\n" for i, r in enumerate(rows)
    )
    a, b = _both_paths(tmp, text, monkeypatch)
    assert a.drop("arrival").equals(b.drop("arrival"), null_equal=True)


@pytest.mark.parametrize("stamp", ["¹", "٣٣", "1.2.3", "--5"])
def test_non_ascii_digit_timestamps_are_reported_not_crashed_on(tmp_path: Path, stamp: str) -> None:
    # str.isdigit() is true for "¹" and "٣", which int() rejects: found by hypothesis in CI.
    src = tmp_path / "in.jsonl"
    good = {"trace.trace_id": "t1", "trace.span_id": "a", "timestamp": "2026-11-01T12:00:00Z"}
    bad = {"trace.trace_id": "t2", "trace.span_id": "b", "timestamp": stamp}
    src.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    summary = ingest_paths([str(src)], tmp_path / "c")
    assert summary.spans == 1
    assert summary.skipped == 1
    assert [(s.line, "bad timestamp" in s.reason) for s in summary.skipped_records] == [(2, True)]
