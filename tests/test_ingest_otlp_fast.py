"""The OTLP JSON lines fast path (:mod:`nectar.corpus.ingest.otlp_fast`) gives exactly what the line-by-line
reader gives: the same corpus (every column, every type), the same skipped records, or it steps aside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from benchmarks.export import write_otlp_jsonl
from nectar.corpus.ingest import ingest_paths, otlp_json
from nectar.corpus.ingest.otlp_fast import fast_otlp_chunk
from nectar.corpus.layout import Corpus
from nectar.corpus.synth import synth_corpus
from tests.conftest import shared_path

T = "4bf92f3577b34da6a3ce929d0e0e4736"


def _frame(corpus: Path) -> pl.DataFrame:
    df = Corpus.open(corpus).scan().collect()
    return df.select(sorted(df.columns))


def _both(tmp_path: Path, path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[pl.DataFrame, pl.DataFrame]:
    out = []
    for i, fast in enumerate((True, False)):
        monkeypatch.setattr(otlp_json, "USE_FAST_PATH", fast)
        c = tmp_path / f"c{i}"
        s = ingest_paths([str(path)], c, fmt="otlp-json")
        out.append((_frame(c), Corpus.open(c).manifest.fields, s.skipped, [r.line for r in s.skipped_records]))
    (a, fa, sa, la), (b, fb, sb, lb) = out
    assert (fa, sa, la) == (fb, sb, lb)
    assert a.columns == b.columns
    assert a.equals(b)
    return a, b


def _span(i: int, **extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "traceId": T,
        "spanId": f"{i + 1:016x}",
        "name": f"op{i}",
        "kind": 2,
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + i * 1_000_000),
        "endTimeUnixNano": str(1_700_000_000_000_000_000 + i * 1_000_000 + 1_234_567),
        "attributes": [
            {"key": "http.status_code", "value": {"intValue": str(200 + i)}},
            {"key": "ratio", "value": {"doubleValue": i + 0.5}},
            {"key": "ok", "value": {"boolValue": i % 2 == 0}},
        ],
        "status": {"code": 2 if i == 3 else 0},
    }
    if i:
        s["parentSpanId"] = f"{i:016x}"
    s.update(extra)
    return s


def _doc(spans: list[dict[str, Any]], resource: list[dict[str, Any]] | None = None, **scope: Any) -> str:
    res = resource if resource is not None else [{"key": "service.name", "value": {"stringValue": "api"}}]
    return json.dumps({"resourceSpans": [{"resource": {"attributes": res}, "scopeSpans": [{**scope, "spans": spans}]}]})


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "in.jsonl"
    p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return p


def test_plain_lines_take_the_fast_path_and_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [_doc([_span(i) for i in range(k * 5, k * 5 + 5)]) for k in range(4)]
    assert fast_otlp_chunk(("\n".join(lines) + "\n").encode()) is not None
    a, _ = _both(tmp_path, _write(tmp_path, lines), monkeypatch)
    assert a.height == 20 and a.get_column("error").drop_nulls().to_list() == [True]


def test_synthetic_export_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synth_corpus(tmp_path / "synth", 3_000, 11)
    path = tmp_path / "synth.jsonl"
    write_otlp_jsonl(tmp_path / "synth", path)
    assert fast_otlp_chunk(path.read_bytes()) is not None
    _both(tmp_path, path, monkeypatch)


ODD_CASES = {
    "scope name": [_doc([_span(0)], scope={"name": "io.opentelemetry.http", "version": "1"})],
    "event": [_doc([_span(0, events=[{"timeUnixNano": "1700000000000000001", "name": "exception"}])])],
    "kind name": [_doc([_span(0, kind="SPAN_KIND_CLIENT")])],
    "status name": [_doc([_span(0, status={"code": "STATUS_CODE_ERROR", "message": "boom"})])],
    "status message": [_doc([_span(3, status={"code": 2, "message": "boom"}), _span(4, status={"message": ""})])],
    "base64 id": [_doc([_span(0, spanId="AAAAAAAAAAE=")])],
    "upper hex": [_doc([_span(0, traceId=T.upper())])],
    "64-bit trace id": [_doc([_span(0, traceId="0000000000000000" + T[:16])])],
    "repeated key": [_doc([_span(0, attributes=[{"key": "a", "value": {"intValue": "1"}},
                                                {"key": "a", "value": {"stringValue": "x"}}])])],
    "key twice across spans is fine": [_doc([_span(0), _span(1)])],
    "clash with a fixed field": [_doc([_span(0, attributes=[{"key": "name", "value": {"stringValue": "x"}}])])],
    "clash with the resource": [_doc([_span(0, attributes=[{"key": "service.name", "value": {"stringValue": "x"}}])])],
    "sample rate": [_doc([_span(0, attributes=[{"key": "SampleRate", "value": {"intValue": "10"}}])])],
    "int as number, double as int": [_doc([_span(0, attributes=[{"key": "n", "value": {"intValue": 7}},
                                                               {"key": "d", "value": {"doubleValue": 3}}])])],
    "array value": [_doc([_span(0, attributes=[{"key": "xs", "value": {"arrayValue": {"values": [
        {"stringValue": "a"}]}}}])])],
    "empty attributes": [_doc([_span(0, attributes=[]), _span(1)])],
    "one type per key varies": [_doc([_span(0), _span(1, attributes=[{"key": "http.status_code",
                                                                      "value": {"stringValue": "500"}}])])],
    "end before start": [_doc([_span(0, endTimeUnixNano="1")])],
    "no times": [_doc([{k: v for k, v in _span(0).items() if not k.endswith("UnixNano")}])],
    "timestamp-looking string": [_doc([_span(0, attributes=[{"key": "at", "value": {"stringValue":
                                                                                    "2024-01-01T00:00:00Z"}}])])],
    "no resource": [json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [_span(0)]}]}]})],
    "malformed line between good ones": [_doc([_span(0)]), "{not json", _doc([_span(1)])],
    "missing span id": [_doc([{k: v for k, v in _span(0).items() if k != "spanId"}, _span(1)])],
    "blank line": [_doc([_span(0)]), "", _doc([_span(1)])],
}  # fmt: skip


# Cases the fast path must take (the rest may go either way, as long as the corpus is the same).
FAST = {"status message", "key twice across spans is fine", "int as number, double as int", "empty attributes"}
FAST |= {"one type per key varies", "no resource"}


@pytest.mark.parametrize("case", list(ODD_CASES))
def test_odd_documents_match_the_line_reader(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, ODD_CASES[case])
    if case in FAST:
        assert fast_otlp_chunk(path.read_bytes()) is not None
    _both(tmp_path, path, monkeypatch)


def test_real_otlp_trace_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = shared_path("realtraces", "jaeger-ui-hotrod-otlp", "derived", "hotrod-trace.otlp.json")
    doc = json.loads(src.read_text(encoding="utf-8"))
    _both(tmp_path, _write(tmp_path, [json.dumps(doc), json.dumps(doc)]), monkeypatch)


def test_chunks_ahead_keeps_order_and_defers_a_read_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from nectar.corpus.ingest import chunks

    monkeypatch.setattr(chunks, "CHUNK_BYTES", 10)

    class Truncated(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            if self.tell() >= 40:
                raise EOFError("truncated")
            return super().read(n)

    data = b"".join(b"line %02d\n" % i for i in range(12))
    got: list[bytes] = []
    with pytest.raises(EOFError):
        for chunk, parsed in chunks.chunks_ahead(Truncated(data), len, first=b"head\n"):
            assert parsed == len(chunk) and chunk.endswith(b"\n")
            got.append(chunk)
    assert b"".join(got) == b"head\n" + data[: len(b"".join(got)) - 5]  # whole lines, in order, up to the error
    assert len(b"".join(got)) >= 40
    plain = list(chunks.chunks_ahead(io.BytesIO(data), None))
    assert b"".join(c for c, _ in plain) == data and all(p is None for _, p in plain)
