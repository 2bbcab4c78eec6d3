"""Each input format: detection, the Refinery (husky) field mapping, and malformed inputs reported without losing
valid spans. Small fixtures are generated here or live in tests/data/ingest/."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from nectar.corpus.ingest import ingest_paths
from nectar.corpus.ingest.common import go_json
from nectar.corpus.ingest.sources import detect_format
from nectar.corpus.layout import Corpus
from nectar.errors import NectarError

DATA = Path(__file__).parent / "data" / "ingest"


def frame(corpus: Path) -> pl.DataFrame:
    return Corpus.open(corpus).scan().collect().sort("arrival")


def rows(corpus: Path) -> list[dict[str, Any]]:
    """Spans as dicts of their non-null values (core columns included)."""
    return [{k: v for k, v in r.items() if v is not None} for r in frame(corpus).to_dicts()]


# ---- detection ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b'{"resourceSpans": []}\n', "otlp-json"),
        (b'{\n  "result": {\n    "resourceSpans": [', "otlp-json"),
        (b'{"data": [{"traceID": "a", "spans": []}]}', "jaeger"),
        (b'{\n    "data": [\n        {\n            "traceID"', "jaeger"),
        (b'[{"traceId": "a", "id": "b", "localEndpoint": {}}]', "zipkin"),
        (b'[\n  {\n    "traceId": "a",\n    "id": "b"', "zipkin"),
        (b'{"index":{"_id":"x"}}\n{"traceId":"a"}', "opensearch"),
        (b'{"traceID":"a","spanID":"b","process":{}}\n', "opensearch"),
        (b'{"traceId":"a","spanId":"b","durationInNanos":5}\n', "opensearch"),
        (b'{"trace.trace_id":"a","name":"x"}\n', "jsonl"),
        (b"PAR1\x15\x04", "parquet"),
        (b"\n\x8a\x01\n\x12", "otlp-proto"),
        (b"", "jsonl"),
        (b"hello world, not traces\n", None),
    ],
)
def test_detect_format(head: bytes, fmt: str | None) -> None:
    assert detect_format(head) == fmt


def test_undetectable_file_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "notes.json"
    f.write_text("hello, these are not spans\n")
    with pytest.raises(NectarError, match="cannot tell the format") as err:
        ingest_paths([str(f)], tmp_path / "c")
    assert err.value.hint and "--format" in err.value.hint


# ---- OTLP ---------------------------------------------------------------------------------------------------


def test_otlp_json_husky_mapping_and_malformed_spans(tmp_path: Path) -> None:
    s = ingest_paths([str(DATA / "otlp_malformed.json")], tmp_path / "c")
    assert (s.spans, s.span_events, s.skipped) == (2, 2, 2)
    assert sorted(r.where or "" for r in s.skipped_records) == [
        "resourceSpans[0].scopeSpans[0].spans[1]",
        "resourceSpans[0].scopeSpans[0].spans[2]",
    ]
    assert {r.reason.split(":")[0] for r in s.skipped_records} == {"attribute 'n'", "missing trace id"}
    event, link, root, child = rows(tmp_path / "c")
    assert root["trace_id"] == "5b8efff798038103d269b633813fc60c" and root["span_id"] == "eee19b7ec3c1b174"
    assert {k: root[k] for k in root if k not in ("timestamp", "arrival", "trace_id", "span_id")} == {
        "service.name": "checkout",
        "host.name": "h1",
        "library.name": "io.opentelemetry.okhttp",
        "library.version": "1.2",
        "telemetry.instrumentation_library": True,
        "name": "ok",
        "trace.span_id": "eee19b7ec3c1b174",  # husky writes it; Refinery consumes only trace and parent ids
        "type": "server",
        "span.kind": "server",
        "duration_ms": 250.0,
        "status_code": 2,
        "error": True,
        "status_message": "boom",
        "span.num_events": 1,
        "span.num_links": 1,
        "meta.signal_type": "trace",
        "http.status_code": 500,
        "ratio": 0.5,
        "tags": '["a",2]\n',
        "m.x": True,
        "m.y.z": "deep",
        "blob": '"AAEC"\n',
        "exception.type": "ValueError",
        "exception.message": "bad",
    }
    assert "sampleRate" not in frame(tmp_path / "c").columns
    assert event["meta.annotation_type"] == "span_event" and event["parent_id"] == root["span_id"]
    assert event["meta.time_since_span_start_ms"] == 100.0 and event["error"] is True
    assert event["parent_name"] == "ok" and "span_id" not in event
    assert link["meta.annotation_type"] == "link" and link["trace.link.trace_id"] == "0000000000000001"
    assert child["trace_id"] == root["trace_id"] and child["span_id"] == "eee19b7ec3c1b174"[:-1] + "7"
    assert child["type"] == "client" and child["duration_ms"] == 1.0 and "error" not in child


def test_otlp_proto_equals_otlp_json(tmp_path: Path) -> None:
    doc = json.loads((DATA / "otlp_malformed.json").read_text())
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"] = [spans[0], spans[3]]
    (tmp_path / "ok.json").write_text(json.dumps(doc))
    from google.protobuf import json_format

    req = json_format.Parse(json.dumps(_to_proto3_json(doc)), ExportTraceServiceRequest())
    (tmp_path / "ok.pb").write_bytes(req.SerializeToString())
    ingest_paths([str(tmp_path / "ok.json")], tmp_path / "cj")
    ingest_paths([str(tmp_path / "ok.pb")], tmp_path / "cp")
    assert frame(tmp_path / "cj").equals(frame(tmp_path / "cp"))
    # Length-prefixed messages (collector file exporter, proto format) and gzip.
    body = req.SerializeToString()
    (tmp_path / "stream.pb.gz").write_bytes(gzip.compress((len(body).to_bytes(4, "big") + body) * 2))
    s = ingest_paths([str(tmp_path / "stream.pb.gz")], tmp_path / "cs")
    assert s.spans == 4 and s.sources[0]["format"] == "otlp-proto"


def _to_proto3_json(doc: Any) -> Any:
    """OTLP/JSON (hex ids) -> proto3 JSON (base64 ids), for json_format.Parse."""
    import base64

    if isinstance(doc, dict):
        out = {}
        for k, v in doc.items():
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                raw = bytes.fromhex(v) if len(v) in (16, 32) else base64.b64decode(v)
                out[k] = base64.b64encode(raw).decode()
            else:
                out[k] = _to_proto3_json(v)
        return out
    if isinstance(doc, list):
        return [_to_proto3_json(x) for x in doc]
    return doc


def test_otlp_proto_binary_junk_and_truncation_are_reported(tmp_path: Path) -> None:
    s = ingest_paths([str(DATA / "junk.bin")], tmp_path / "c")
    assert s.spans == 0 and s.skipped == 1 and "invalid protobuf" in s.skipped_records[0].reason
    req = ExportTraceServiceRequest()
    sp = req.resource_spans.add().scope_spans.add().spans.add()
    sp.trace_id, sp.span_id, sp.name = bytes(16), b"\x01" * 8, "x"
    sp.attributes.append(KeyValue(key="k", value=AnyValue(string_value="v" * 50)))
    body = req.SerializeToString()
    (tmp_path / "cut.pb").write_bytes(body[:-10])
    s = ingest_paths([str(tmp_path / "cut.pb")], tmp_path / "c2", fmt="otlp-proto")
    assert s.spans == 0 and s.skipped == 1
    with pytest.raises(NectarError, match="invalid protobuf"):
        ingest_paths([str(tmp_path / "cut.pb")], tmp_path / "c3", fmt="otlp-proto", strict=True)


def test_otlp_json_lines_and_trace_id_trimming(tmp_path: Path) -> None:
    def line(tid: str, sid: str) -> str:
        return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": tid, "spanId": sid}]}]}]})

    f = tmp_path / "export.jsonl"
    f.write_text(
        line("0000000000000000f798a1e7f33c8af6", "00000000000000aa") + "\n{broken\n" + line("ab" * 16, "bb" * 8)
    )
    s = ingest_paths([str(f)], tmp_path / "c")
    assert (s.spans, s.skipped, s.skipped_records[0].line) == (2, 1, 2)
    assert frame(tmp_path / "c")["trace_id"].to_list() == ["f798a1e7f33c8af6", "ab" * 16]


def test_go_json_matches_go_encoder() -> None:
    assert go_json([1, 2.0, 1e21, 1.5e-7, "<a>", {"b": 1, "a": None}]) == '[1,2,1e+21,1.5e-7,"<a>",{"a":null,"b":1}]\n'


# ---- Jaeger -------------------------------------------------------------------------------------------------


def test_jaeger_truncated_download_keeps_complete_traces(tmp_path: Path) -> None:
    s = ingest_paths([str(DATA / "jaeger_truncated.json")], tmp_path / "c")
    assert s.spans == 3  # trace a1 (2 spans) and b2 minus its badly typed span
    reasons = sorted(r.reason.split(":")[0] for r in s.skipped_records)
    assert reasons == ["invalid JSON", "wrong type"]
    bad = next(r for r in s.skipped_records if r.reason.startswith("wrong type"))
    assert bad.where == "data[1].spans[1]" and "retries" in bad.reason
    root = rows(tmp_path / "c")[0]
    assert root["trace_id"] == "00000000000000a1" and root["span_id"] == "0000000000000001"
    assert root["service.name"] == "api" and root["hostname"] == "h1" and root["span.kind"] == "server"
    assert root["http.status_code"] == 503 and root["status_code"] == 2 and root["error"] is True
    assert root["duration_ms"] == 1.5 and root["timestamp"].timestamp() == 1700000000.0


def test_jaeger_special_tags_links_and_logs(tmp_path: Path) -> None:
    spans = [
        {
            "traceID": "t1" * 8,
            "spanID": "0000000000000002",
            "operationName": "op",
            "references": [
                {"refType": "FOLLOWS_FROM", "traceID": "t1" * 8, "spanID": "0000000000000009"},
                {"refType": "CHILD_OF", "traceID": "t1" * 8, "spanID": "0000000000000001"},
            ],
            "startTime": 1700000000000000,
            "duration": 10,
            "tags": [
                {"key": "error", "type": "bool", "value": True},
                {"key": "otel.scope.name", "type": "string", "value": "lib"},
                {"key": "ratio", "type": "float64", "value": 1},
                {"key": "blob", "type": "binary", "value": "AAE="},
            ],
            "logs": [{"timestamp": 1700000000000005, "fields": [{"key": "event", "type": "string", "value": "retry"}]}],
            "processID": "p1",
        }
    ]
    trace = {"traceID": "t1" * 8, "spans": spans, "processes": {"p1": {"serviceName": "svc", "tags": []}}}
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"data": [trace]}).replace("t1", "e1"))
    s = ingest_paths([str(f)], tmp_path / "c")
    assert (s.spans, s.span_events) == (1, 2)
    event, link, sp = rows(tmp_path / "c")
    assert sp["parent_id"] == "0000000000000001" and sp["library.name"] == "lib" and sp["error"] is True
    assert sp["ratio"] == 1.0 and sp["blob"] == '"AAE="\n' and sp["span.num_links"] == 1
    assert event["name"] == "retry" and event["meta.time_since_span_start_ms"] == 0.005
    assert link["trace.link.span_id"] == "0000000000000009"


# ---- Zipkin -------------------------------------------------------------------------------------------------


def test_zipkin_mapping_shared_spans_and_malformed(tmp_path: Path) -> None:
    s = ingest_paths([str(DATA / "zipkin_malformed.json")], tmp_path / "c")
    assert (s.spans, s.span_events, s.skipped) == (3, 1, 2)
    assert sorted((r.where, r.reason.split(":")[0]) for r in s.skipped_records) == [
        ("[2]", "wrong type"),
        ("[3]", "missing span id"),
    ]
    client, event, server, nodur = rows(tmp_path / "c")
    assert client["trace_id"] == server["trace_id"] == "0000000000000abc"
    assert client["span_id"] == server["span_id"] == "00000000000000a1"  # both halves kept
    assert (client["type"], server["type"]) == ("client", "server")
    assert client["error"] is True and client["status_message"] == "boom" and client["http.status_code"] == "500"
    assert client["peer.service"] == "cart" and client["net.peer.port"] == 8080
    assert server["service.name"] == "cart" and "error" not in server
    assert event["name"] == "cache miss" and event["parent_id"] == "00000000000000a1"
    assert nodur["duration_ms"] == 0.0 and "timestamp" not in nodur


def test_zipkin_truncated_array_keeps_earlier_spans(tmp_path: Path) -> None:
    text = (DATA / "zipkin_malformed.json").read_text()
    f = tmp_path / "z.json"
    f.write_text(text[: text.index('"db"')])
    s = ingest_paths([str(f)], tmp_path / "c", fmt="zipkin")
    assert s.spans == 2 and s.skipped == 1 and "2 spans before it are kept" in s.skipped_records[0].reason


# ---- OpenSearch ---------------------------------------------------------------------------------------------


def test_opensearch_data_prepper_mapping_and_malformed(tmp_path: Path) -> None:
    s = ingest_paths([str(DATA / "opensearch_malformed.ndjson")], tmp_path / "c")
    assert (s.spans, s.skipped) == (2, 2)
    assert [(r.line, r.reason.split(":")[0]) for r in s.skipped_records] == [
        (4, "invalid JSON"),
        (6, "missing trace id"),
    ]
    root, child = rows(tmp_path / "c")
    assert root["http.status_code"] == 503 and root["status_code"] == 2 and root["error"] is True
    assert root["service.name"] == "frontend" and root["type"] == "server"
    assert root["duration_ms"] == 393.149952 and "parent_id" not in root
    assert not any(k.startswith(("traceGroup", "span.attributes", "resource.attributes")) for k in root)
    assert child["parent_id"] == root["span_id"] and child["status_code"] == 0 and "error" not in child


# ---- Parquet ------------------------------------------------------------------------------------------------


def test_parquet_generic_table_and_corpus_part_roundtrip(tmp_path: Path) -> None:
    t = pa.table(
        {
            "traceId": ["a", "a", None, "b"],
            "spanId": ["1", "2", "3", "4"],
            "parentId": ["", "1", "1", ""],
            "timestamp": pa.array([1_700_000_000_000_000] * 4, pa.timestamp("us")),
            "http.status_code": pa.array([200, 500, 1, None], pa.int32()),
            "svc": pa.array(["x", "y", "z", "w"]).dictionary_encode(),
            "attrs": pa.array([[1], None, None, [2, 3]], pa.list_(pa.int64())),
        }
    )
    pq.write_table(t, tmp_path / "spans.parquet")
    s = ingest_paths([str(tmp_path / "spans.parquet")], tmp_path / "c")
    assert (s.spans, s.skipped, s.skipped_records[0].where) == (3, 1, "row 3")
    df = frame(tmp_path / "c")
    assert df["parent_id"].to_list() == [None, "1", None]
    assert df["http.status_code"].to_list() == [200, 500, None] and df["attrs"].to_list() == ["[1]", None, "[2,3]"]
    # A Nectar part re-ingested elsewhere keeps every column's type (column map in the part's metadata).
    c = Corpus.open(tmp_path / "c")
    s2 = ingest_paths([str(tmp_path / "c" / c.manifest.files[0].path)], tmp_path / "c2")
    assert s2.spans == 3
    assert frame(tmp_path / "c2").equals(df) and Corpus.open(tmp_path / "c2").manifest.fields == c.manifest.fields


def test_parquet_malformed(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    s = ingest_paths([str(tmp_path / "bad.parquet")], tmp_path / "c")
    assert s.skipped == 1 and "invalid Parquet" in s.skipped_records[0].reason
    pq.write_table(pa.table({"name": ["x"]}), tmp_path / "noid.parquet")
    s = ingest_paths([str(tmp_path / "noid.parquet")], tmp_path / "c2")
    assert s.skipped == 1 and "missing trace id" in s.skipped_records[0].reason


def test_otlp_proto_truncated_keeps_whole_resource_spans(tmp_path: Path) -> None:
    req = ExportTraceServiceRequest()
    for i in range(3):
        sp = req.resource_spans.add().scope_spans.add().spans.add()
        sp.trace_id, sp.span_id, sp.name = bytes([i + 1]) * 16, b"\x01" * 8, f"s{i}"
    (tmp_path / "t.pb").write_bytes(req.SerializeToString()[:-5])
    s = ingest_paths([str(tmp_path / "t.pb")], tmp_path / "c")
    assert s.spans == 2 and s.skipped == 1
    assert "the 2 resource spans before it are kept" in s.skipped_records[0].reason


@pytest.mark.parametrize("bad", ["¹", "--5", "٣"])
def test_integer_text_that_is_not_ascii_decimal_is_reported_not_crashed_on(tmp_path: Path, bad: str) -> None:
    # "¹".isdigit() and "--5".lstrip("-").isdigit() are true, but int() rejects both.
    trace = {
        "data": [
            {
                "traceID": "abc",
                "spans": [
                    {
                        "traceID": "abc",
                        "spanID": "01",
                        "operationName": "a",
                        "startTime": bad,
                        "duration": 5,
                        "processID": "p1",
                    },
                    {
                        "traceID": "abc",
                        "spanID": "02",
                        "operationName": "b",
                        "startTime": 1,
                        "duration": 5,
                        "processID": "p1",
                    },
                ],
                "processes": {"p1": {"serviceName": "svc"}},
            }
        ]
    }
    src = tmp_path / "t.json"
    src.write_text(json.dumps(trace), encoding="utf-8")
    summary = ingest_paths([str(src)], tmp_path / "c", fmt="jaeger")
    assert summary.spans == 1 and summary.skipped == 1


def test_otlp_int_beyond_int64_becomes_a_float_and_the_corpus_stays_readable(tmp_path: Path) -> None:
    from nectar.corpus.stats import field_catalog

    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "name": "a",
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000001000000000",
                                "attributes": [{"key": "big", "value": {"intValue": "99999999999999999999"}}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    src = tmp_path / "big.json"
    src.write_text(json.dumps(doc), encoding="utf-8")
    ingest_paths([str(src)], tmp_path / "c")
    corpus = Corpus.open(tmp_path / "c")
    assert corpus.manifest.fields["big"] == {"float": 1}
    assert list(corpus.manifest.files[0].columns.values()).count(["big", "int"]) == 0  # no all-null int column
    assert corpus.scan().select("big").collect().item() == 1e20
    assert {f.name for f in field_catalog(corpus).fields} >= {"big"}
