"""Which id keys Refinery consumes (hidden from rules) and which stay fields, through every path Nectar has.

The cases live in ``tests/data/ingest/id_fields.json`` (one raw event each, with the line of ``types/payload.go``
that decides it). Each event goes through flat JSON lines ingest (the native fast path and the line reader), a
generic Parquet table when it has no null, and the reference evaluator's ``span_from_event``; all must agree on the
trace it lands in, the fields rules see, and the root flag, and each condition must match (or not) on the three
engines and on ``rule_matches`` over the raw event. Then: ``nectar ingest`` reads the names from ``nectar.toml``;
every OTLP-shaped format gives each span a ``trace.span_id`` field through the one husky mapping.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from nectar.cli import main
from nectar.corpus.ingest import ingest_paths, jsonl, otlp_json
from nectar.corpus.ingest.jsonl_fast import fast_chunk
from nectar.corpus.ingest.otlp_fast import fast_otlp_chunk
from nectar.corpus.layout import CORE_COLUMNS, Corpus
from nectar.engine.api import evaluate
from nectar.engine.reference import rule_matches, span_from_event
from nectar.refinery.ids import DEFAULT_ID_FIELDS, IdFields, consume_ids
from nectar.refinery.model import META_ROOT, Condition, Datatype, Operator, Rule, RulesBasedSampler

DATA = Path(__file__).parent / "data" / "ingest"
CASES: list[dict[str, Any]] = json.loads((DATA / "id_fields.json").read_text(encoding="utf-8"))["cases"]
ENGINES = ("reference", "polars", "duckdb")


def _ids(case: dict[str, Any]) -> IdFields:
    spec = case.get("ids")
    return IdFields(tuple(spec["trace"]), tuple(spec["parent"])) if spec else DEFAULT_ID_FIELDS


def _condition(spec: dict[str, Any]) -> Condition:
    fields, single = ((spec["field"],), True) if "field" in spec else (tuple(spec["fields"]), False)
    datatype = Datatype(spec["datatype"]) if spec.get("datatype") else None
    return Condition(fields, Operator(spec["operator"]), spec.get("value"), datatype, single_field=single)


def _sampler(condition: dict[str, Any]) -> RulesBasedSampler:
    return RulesBasedSampler(rules=(Rule("check", (_condition(condition),), scope="trace", sample_rate=1),))


def _visible(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case["event"].items() if k not in case["consumed"]}


def _corpus_fields(corpus: Corpus) -> dict[str, Any]:
    """The one span's fields as a corpus holds them (a null-marker column means present with null)."""
    row = corpus.scan().collect().row(0, named=True)
    out: dict[str, Any] = {}
    for name, by_type in corpus.field_columns.items():
        for vtype, col in by_type.items():
            if row[col] is not None:
                out[name] = None if vtype.value == "null" else row[col]
    return out


def _ingest_jsonl(case: dict[str, Any], tmp: Path, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Corpus:
    monkeypatch.setattr(jsonl, "USE_FAST_PATH", fast)
    src = tmp / "event.jsonl"
    src.write_text(json.dumps(case["event"]) + "\n", encoding="utf-8")
    out = tmp / f"c-{fast}"
    s = ingest_paths([str(src)], out, id_fields=_ids(case))
    assert (s.spans, s.skipped) == (1, 0), s.skipped_records
    return Corpus.open(out)


def _assert_span(corpus: Corpus, case: dict[str, Any]) -> None:
    core = corpus.scan().select(CORE_COLUMNS).collect().row(0, named=True)
    assert core["trace_id"] == case["trace"]
    assert (core["parent_id"] is None) == case["root"]
    assert _corpus_fields(corpus) == _visible(case)


def test_consume_ids_table_is_the_cases() -> None:
    """The rule itself, stated once (nectar.refinery.ids), gives every case's consumed keys."""
    for case in CASES:
        c = consume_ids(case["event"], _ids(case))
        assert sorted(c.keys) == sorted(case["consumed"]), case["id"]
        assert (c.parent_key is None) == case["root"], case["id"]
        assert c.trace_key is not None and case["event"][c.trace_key] == case["trace"], case["id"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_on_every_path_and_engine(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _ids(case)
    # The reference evaluator's view of the raw event.
    span = span_from_event(case["event"], ids)
    assert {k: v for k, v in span.fields.items() if k != META_ROOT} == _visible(case)
    assert span.is_root == case["root"]
    # Flat JSON lines, both readers (the fast path declines what it cannot do exactly, e.g. nulls).
    corpora = [_ingest_jsonl(case, tmp_path, fast, monkeypatch) for fast in (True, False)]
    for corpus in corpora:
        _assert_span(corpus, case)
    assert corpora[0].scan().collect().drop("arrival").equals(corpora[1].scan().collect().drop("arrival"))
    # The same event as a one-row Parquet table (columns in key order), when it has no null to lose.
    if None not in case["event"].values():
        pq.write_table(pa.table({k: [v] for k, v in case["event"].items()}), tmp_path / "event.parquet")
        ingest_paths([str(tmp_path / "event.parquet")], tmp_path / "cp", id_fields=ids)
        _assert_span(Corpus.open(tmp_path / "cp"), case)
    # Each condition, on the three engines over the corpus and on the raw event.
    for check in case["checks"]:
        sampler = _sampler(check["condition"])
        got = {e: evaluate(sampler, corpora[1], engine=e).decisions["rule_index"][0] == 0 for e in ENGINES}
        got["raw event"] = rule_matches(sampler, case["trace"], [case["event"]], ids)[0]
        assert got == dict.fromkeys(got, check["match"]), (check, got)


def test_fast_path_still_taken_for_plain_ids() -> None:
    """Keeping trace.span_id as a field costs the native path nothing; two trace-id keys send it to the line
    reader, which sees each line's key order."""
    line = {"trace.trace_id": "t1", "trace.span_id": "s1", "trace.parent_id": "p", "n": 1}
    ready = fast_chunk((json.dumps(line) + "\n").encode())
    assert ready is not None
    table, colmap = ready
    assert {f for f, _ in colmap.values()} == {"trace.span_id", "n"}
    assert table.column("span_id").to_pylist() == ["s1"] and table.column("parent_id").to_pylist() == ["p"]
    assert fast_chunk((json.dumps({**line, "traceId": "t2"}) + "\n").encode()) is None
    custom = IdFields(("my.trace",), ("my.parent",))
    ready = fast_chunk((json.dumps({"my.trace": "t1", **line}) + "\n").encode(), custom)
    assert ready is not None
    assert {f for f, _ in ready[1].values()} == {"trace.trace_id", "trace.span_id", "trace.parent_id", "n"}


# ---- nectar.toml [refinery] names reach `nectar ingest` ----------------------------------------------------------


def test_cli_ingest_reads_id_names_from_nectar_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = (
        '[project]\ncorpus = "corpus"\n\n[refinery]\ntrace_id_fields = ["my.trace"]\nparent_id_fields = ["my.parent"]\n'
    )
    (tmp_path / "nectar.toml").write_text(toml, encoding="utf-8")
    rows = [
        {"my.trace": "t1", "trace.trace_id": "x", "name": "root"},
        {"my.trace": "t1", "my.parent": "r", "trace.parent_id": "", "name": "child"},
    ]
    (tmp_path / "spans.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", "spans.jsonl"]) == 0
    c = Corpus.open(tmp_path / "corpus")
    assert set(c.manifest.fields) == {"trace.trace_id", "trace.parent_id", "name"}
    assert c.manifest.ingest_options["trace_id_fields"] == ["my.trace"]
    assert c.manifest.ingest_options["parent_id_fields"] == ["my.parent"]
    df = c.scan().collect().sort("arrival")
    assert df["trace_id"].to_list() == ["t1", "t1"] and df["parent_id"].to_list() == [None, "r"]


def test_default_names_are_not_recorded(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl"
    src.write_text('{"trace.trace_id": "t1"}\n', encoding="utf-8")
    ingest_paths([str(src)], tmp_path / "c")
    assert Corpus.open(tmp_path / "c").manifest.ingest_options == {"format": "auto", "strict": False}


# ---- OTLP and the formats mapped to it: husky's trace.span_id on every span --------------------------------------


def _otlp_doc(scope: dict[str, Any] | None = None, attrs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    root = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "root",
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000100000000",
        "attributes": attrs or [],
        "events": [{"timeUnixNano": "1700000000050000000", "name": "ev"}],
        "links": [{"traceId": "00000000000000000000000000000001", "spanId": "0000000000000002"}],
    }
    child = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b175",
        "parentSpanId": "eee19b7ec3c1b174",
        "name": "child",
        "kind": 3,
        "startTimeUnixNano": "1700000000010000000",
        "endTimeUnixNano": "1700000000020000000",
    }
    ss: dict[str, Any] = {"spans": [root, child]}
    if scope is not None:
        ss["scope"] = scope
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [ss]}]}


def _rows(corpus: Path) -> list[dict[str, Any]]:
    df = Corpus.open(corpus).scan().collect().sort("arrival")
    return [{k: v for k, v in r.items() if v is not None} for r in df.iter_rows(named=True)]


def test_otlp_span_gets_trace_span_id_and_its_events_do_not(tmp_path: Path) -> None:
    src = tmp_path / "otlp.json"
    src.write_text(json.dumps(_otlp_doc(), indent=1), encoding="utf-8")
    ingest_paths([str(src)], tmp_path / "c")
    event, link, root, child = _rows(tmp_path / "c")
    for span in (root, child):
        assert span["trace.span_id"] == span["span_id"]
        assert "trace.trace_id" not in span and "trace.parent_id" not in span  # consumed
    assert "trace.span_id" not in event and "trace.span_id" not in link
    assert event["parent_id"] == link["parent_id"] == root["span_id"] and "parent_id" not in root
    assert child["parent_id"] == root["span_id"]


@pytest.mark.parametrize("fast", [True, False])
def test_otlp_json_lines_fast_and_line_reader_agree_on_trace_span_id(
    fast: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _otlp_doc(attrs=[{"key": "a", "value": {"stringValue": "x"}}])
    doc["resourceSpans"][0]["resource"]["attributes"] = [{"key": "service.name", "value": {"stringValue": "svc"}}]
    for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        s.pop("events", None)
        s.pop("links", None)
    line = json.dumps(doc) + "\n"
    assert fast_otlp_chunk(line.encode()) is not None  # the native path takes this document
    assert fast_otlp_chunk(line.encode(), IdFields(parent=("parentId",))) is None  # but not with other names
    monkeypatch.setattr(otlp_json, "USE_FAST_PATH", fast)
    src = tmp_path / "otlp.jsonl"
    src.write_text(line, encoding="utf-8")
    ingest_paths([str(src)], tmp_path / "c")
    root, child = _rows(tmp_path / "c")
    assert root["trace.span_id"] == "eee19b7ec3c1b174" and child["trace.span_id"] == "eee19b7ec3c1b175"


def test_every_otlp_shaped_format_carries_trace_span_id(tmp_path: Path) -> None:
    jaeger = {
        "data": [
            {
                "traceID": "00000000000000a1",
                "spans": [
                    {
                        "traceID": "00000000000000a1",
                        "spanID": "00000000000000b1",
                        "operationName": "op",
                        "references": [],
                        "startTime": 1700000000000000,
                        "duration": 5,
                        "tags": [],
                        "processID": "p1",
                    },
                ],
                "processes": {"p1": {"serviceName": "svc", "tags": []}},
            }
        ]
    }
    zipkin = [
        {
            "traceId": "00000000000000a1",
            "id": "00000000000000b1",
            "name": "op",
            "timestamp": 1700000000000000,
            "duration": 5,
            "localEndpoint": {"serviceName": "svc"},
        }
    ]
    data_prepper = {
        "traceId": "00000000000000a1",
        "spanId": "00000000000000b1",
        "name": "op",
        "startTime": "2023-11-14T22:13:20Z",
        "endTime": "2023-11-14T22:13:21Z",
        "kind": "SPAN_KIND_SERVER",
        "durationInNanos": 1_000_000_000,
        "traceGroup": "op",
        "serviceName": "svc",
    }
    sources = {
        "jaeger.json": json.dumps(jaeger),
        "zipkin.json": json.dumps(zipkin),
        "prepper.ndjson": json.dumps({"index": {}}) + "\n" + json.dumps(data_prepper) + "\n",
    }
    for name, text in sources.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        s = ingest_paths([str(tmp_path / name)], tmp_path / f"c-{name}")
        assert (s.spans, s.skipped) == (1, 0), (name, s.skipped_records)
        (span,) = _rows(tmp_path / f"c-{name}")
        assert span["trace.span_id"] == span["span_id"] == "00000000000000b1", name


def test_otlp_proto_equals_otlp_json_with_trace_span_id(tmp_path: Path) -> None:
    doc = _otlp_doc(scope={"name": "lib"})
    for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:  # proto3 JSON writes bytes as base64
        for obj in (s, *s.get("links", [])):
            for key in ("traceId", "spanId", "parentSpanId"):
                if key in obj:
                    obj[key] = base64.b64encode(bytes.fromhex(obj[key])).decode()
    req = json_format.Parse(json.dumps(doc), ExportTraceServiceRequest())
    (tmp_path / "x.pb").write_bytes(req.SerializeToString())
    (tmp_path / "x.json").write_text(json.dumps(doc), encoding="utf-8")
    ingest_paths([str(tmp_path / "x.pb")], tmp_path / "cp")
    ingest_paths([str(tmp_path / "x.json")], tmp_path / "cj")
    assert _rows(tmp_path / "cp") == _rows(tmp_path / "cj")
    span_ids = [r.get("trace.span_id") for r in _rows(tmp_path / "cp")]  # event, link, root, child
    assert span_ids == [None, None, "eee19b7ec3c1b174", "eee19b7ec3c1b175"]


def test_otlp_goes_through_the_same_id_rule(tmp_path: Path) -> None:
    """The husky map is consumed like any event: a span attribute comes first in husky's key order, so a string
    ``traceId`` attribute names the trace and husky's ``trace.trace_id`` stays a field; parent-id names without
    ``trace.parent_id`` leave OTLP children as roots, with ``trace.parent_id`` visible."""
    attrs = [{"key": "traceId", "value": {"stringValue": "mine"}}]
    src = tmp_path / "a.json"
    src.write_text(json.dumps(_otlp_doc(attrs=attrs)), encoding="utf-8")
    ingest_paths([str(src)], tmp_path / "c")
    _, _, root, _ = _rows(tmp_path / "c")
    assert root["trace_id"] == "mine" and root["trace.trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert "traceId" not in root

    ingest_paths([str(src)], tmp_path / "c2", id_fields=IdFields(parent=("parentId",)))
    _, _, _, child = _rows(tmp_path / "c2")
    assert "parent_id" not in child and child["trace.parent_id"] == "eee19b7ec3c1b174"


def test_otlp_without_a_trace_id_field_is_skipped(tmp_path: Path) -> None:
    """Trace-id names that husky never writes: Refinery puts the span in no trace; Nectar skips and says so."""
    src = tmp_path / "a.json"
    src.write_text(json.dumps(_otlp_doc()), encoding="utf-8")
    s = ingest_paths([str(src)], tmp_path / "c", id_fields=IdFields(trace=("my.trace",)))
    assert (s.spans, s.skipped) == (0, 2)
    assert {r.reason for r in s.skipped_records} == {"missing trace id"}


def test_parquet_keeps_refinery_visible_columns_as_fields(tmp_path: Path) -> None:
    t = pa.table(
        {
            "trace.trace_id": ["a", "a"],
            "trace.span_id": ["1", "2"],
            "trace.parent_id": ["", "1"],
            "traceId": ["x", None],
            "n": [1, 2],
        }
    )
    pq.write_table(t, tmp_path / "t.parquet")
    ingest_paths([str(tmp_path / "t.parquet")], tmp_path / "c")
    df = Corpus.open(tmp_path / "c").scan().collect().sort("arrival")
    assert df["span_id"].to_list() == ["1", "2"] and df["trace.span_id"].to_list() == ["1", "2"]
    assert df["parent_id"].to_list() == [None, "1"] and "trace.parent_id" not in df.columns
    assert df["traceId"].to_list() == ["x", None]  # the second trace-id column: an ordinary field
    # A Nectar part re-ingested is taken as it is (its fields are already what rules saw).
    part = next((tmp_path / "c").glob("part-*.parquet"))
    ingest_paths([str(part)], tmp_path / "c2")
    again = Corpus.open(tmp_path / "c2").scan().collect().sort("arrival")
    assert again.drop("arrival").equals(df.drop("arrival"))
    assert isinstance(again, pl.DataFrame)
