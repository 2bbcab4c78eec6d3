"""Turn a Parquet corpus back into ingestible files: flat JSON lines and OTLP JSON lines.

The ingest benchmark needs inputs of a known size in the formats users send; these writers produce them from a
synthetic corpus (made by ``nectar corpus synth``). Both keep every value's JSON type (an int stays an int, a
float is written with a fraction or exponent, absent fields are absent keys, never ``null``), so ingesting the
output gives back the same fields.

* :func:`write_flat_jsonl`: one span per line, Honeycomb/libhoney style: ``trace.trace_id``, ``trace.parent_id``
  (roots have none), ``trace.span_id``, ``timestamp`` (RFC 3339), and every field as a top-level key. Built with
  Polars string expressions (each non-null value JSON-encoded by Polars), no Python loop per span.
* :func:`write_otlp_jsonl`: the OpenTelemetry collector file exporter's form, one ``ExportTraceServiceRequest`` per
  line holding ``batch`` consecutive spans grouped by resource. ``duration_ms``, ``status_code``, ``error``,
  ``span.kind``/``type`` and ``status_message`` become the OTLP span's own fields (ingest derives them back);
  ``service.*``, ``k8s.*`` and ``cloud.*`` are resource attributes; the rest are span attributes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from nectar.corpus.layout import Corpus

ID_COLUMNS = ("trace_id", "span_id", "parent_id", "timestamp", "arrival")
RESOURCE_PREFIXES = ("service.", "k8s.", "cloud.")
SPAN_OWN = ("name", "duration_ms", "status_code", "error", "span.kind", "type", "status_message")
KIND = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
CHUNK_ROWS = 200_000


def _frames(corpus_dir: Path, spans: int | None) -> list[pl.DataFrame]:
    """The corpus's spans in arrival order, in chunks (at most ``spans`` rows in all)."""
    corpus = Corpus.open(corpus_dir)
    lf = corpus.scan().sort("arrival")
    if spans is not None:
        lf = lf.head(spans)
    df = lf.collect()
    return [df.slice(i, CHUNK_ROWS) for i in range(0, df.height, CHUNK_ROWS)]


def _field_columns(df: pl.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in ID_COLUMNS]


def write_flat_jsonl(corpus_dir: Path, out: Path, spans: int | None = None) -> int:
    """Write the corpus's spans (the first ``spans`` by arrival) as flat JSON lines; returns the span count."""
    n = 0
    with out.open("wb") as fh:
        for df in _frames(corpus_dir, spans):
            keys = {"trace_id": "trace.trace_id", "parent_id": "trace.parent_id", "span_id": "trace.span_id"}
            parts: list[pl.Expr] = [
                pl.when(pl.col(c).is_not_null()).then(
                    pl.struct(pl.col(c).alias(k)).struct.json_encode().str.slice(1).str.strip_suffix("}")
                )
                for c, k in keys.items()
            ]
            ts = pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            parts.append(pl.lit('"timestamp":"') + ts + pl.lit('"'))
            for c in _field_columns(df):
                encoded = pl.struct(pl.col(c)).struct.json_encode().str.slice(1).str.strip_suffix("}")
                parts.append(pl.when(pl.col(c).is_not_null()).then(encoded))
            line = pl.lit("{") + pl.concat_str(parts, separator=",", ignore_nulls=True) + pl.lit("}")
            lines = df.select(line.alias("line")).get_column("line")
            fh.write(("\n".join(lines.to_list()) + "\n").encode())
            n += df.height
    return n


def _any_value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}  # proto3 JSON: 64-bit integers as strings
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _attrs(items: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in items if v is not None]


def write_otlp_jsonl(corpus_dir: Path, out: Path, spans: int | None = None, batch: int = 500) -> int:
    """Write the corpus's spans as OTLP JSON lines (``batch`` spans per request); returns the span count."""
    n = 0
    with out.open("w", encoding="utf-8") as fh:
        for df in _frames(corpus_dir, spans):
            fields = _field_columns(df)
            resource = [c for c in fields if c.startswith(RESOURCE_PREFIXES)]
            attributes = [c for c in fields if c not in resource and c not in SPAN_OWN]
            df = df.with_columns(
                (pl.col("timestamp").dt.epoch("us") * 1000).alias("__start"),
                (
                    pl.col("timestamp").dt.epoch("us") * 1000 + (pl.col("duration_ms") * 1e6).round().cast(pl.Int64)
                ).alias("__end"),
            )
            rows = df.iter_rows(named=True)
            buf: list[dict[str, Any]] = []
            for row in rows:
                buf.append(row)
                if len(buf) == batch:
                    fh.write(_request(buf, resource, attributes) + "\n")
                    buf = []
            if buf:
                fh.write(_request(buf, resource, attributes) + "\n")
            n += df.height
    return n


def _request(rows: list[dict[str, Any]], resource: list[str], attributes: list[str]) -> str:
    by_resource: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key = tuple(row[c] for c in resource)
        span: dict[str, Any] = {
            "traceId": row["trace_id"],
            "spanId": row["span_id"],
            "name": row["name"],
            "kind": KIND.get(row["span.kind"] or "", 0),
            "startTimeUnixNano": str(row["__start"]),
            "endTimeUnixNano": str(row["__end"]),
            "attributes": _attrs([(c, row[c]) for c in attributes]),
        }
        if row["parent_id"]:
            span["parentSpanId"] = row["parent_id"]
        status: dict[str, Any] = {"code": row["status_code"] or 0}
        if row.get("status_message"):
            status["message"] = row["status_message"]
        span["status"] = status
        by_resource.setdefault(key, []).append(span)
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": _attrs(list(zip(resource, key, strict=True)))},
                "scopeSpans": [{"spans": spans}],
            }
            for key, spans in by_resource.items()
        ]
    }
    return json.dumps(doc, separators=(",", ":"))
