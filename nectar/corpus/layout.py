"""The on-disk corpus: Parquet files of spans plus a JSON manifest. This module is the contract.

Refinery's verdicts depend on each value's *type* (the string ``"500"`` never equals the number ``500``; a key
present with null differs from an absent key), so the corpus keeps every value with the type the source gave it.

Layout of a corpus folder::

    manifest.json            the source of truth (see :class:`Manifest`); Parquet files it does not list are ignored
    part-000001.parquet      one row per span
    part-000002.parquet      ...

Columns of every part file:

* core columns, hidden from rules (Refinery consumes trace/parent ids and uses the timestamp as event time; the
  span id is Nectar's own, so a source's ``trace.span_id`` is also kept as a field that rules see):
  ``trace_id`` (string, never null), ``span_id`` (string), ``parent_id`` (string, null for a root),
  ``timestamp`` (timestamp[us, UTC], span start), ``arrival`` (int64, the span's position in the corpus:
  Refinery's "last root wins" needs the arrival order);
* one column per (field, value type) pair. A field is anything a rule can name: ``service.name``, ``name``,
  ``duration_ms`` and every attribute, with dotted names as users write them. The value types are
  :class:`ValueType`. In a part file a field with one type is stored under its plain name (``http.route``);
  a field with several types in that file gets one column per type (``http.status_code::int``,
  ``http.status_code::str``). A key present with JSON null is marked in a bool column ``<field>::null``.
  The manifest records, per file, which column holds which (field, type).

Readers never guess from column names: :meth:`Corpus.scan` reads the manifest and gives one canonical frame over
all part files in which a field with one type across the whole corpus has its plain name and a field with
several types has one ``<field>::<type>`` column per type. :attr:`Corpus.field_columns` maps each field to its
canonical columns by type; evaluators use that map.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa

from nectar.errors import NectarError
from nectar.refinery.gostr import INT64_MAX, INT64_MIN
from nectar.util import atomic_write_text

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "nectar-corpus/1"
PART_PREFIX = "part-"

# Core columns: not fields. Refinery hides trace and parent ids from rules (SEMANTICS.md 2.1) and takes the
# timestamp as the event time, not as data.
TRACE_ID = "trace_id"
SPAN_ID = "span_id"
PARENT_ID = "parent_id"
TIMESTAMP = "timestamp"
ARRIVAL = "arrival"
CORE_COLUMNS: tuple[str, ...] = (TRACE_ID, SPAN_ID, PARENT_ID, TIMESTAMP, ARRIVAL)
CORE_SCHEMA = pa.schema(
    [
        pa.field(TRACE_ID, pa.string(), nullable=False),
        pa.field(SPAN_ID, pa.string()),
        pa.field(PARENT_ID, pa.string()),
        pa.field(TIMESTAMP, pa.timestamp("us", tz="UTC")),
        pa.field(ARRIVAL, pa.int64()),
    ]
)

TYPE_SEP = "::"


class ValueType(StrEnum):
    """The type of one field value, as Refinery would hold it in Go.

    ``INT`` is int64, ``FLOAT`` float64, ``BOOL`` bool, ``STR`` string. ``NULL`` marks a key present with a null
    value (Go ``nil`` with exists=true). ``JSON`` holds a nested object or array that the source did not flatten,
    as compact JSON text (Refinery keeps it as a map/slice; ``CheckNestedFields`` can reach into it).
    """

    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    NULL = "null"
    JSON = "json"


ARROW_TYPE: dict[ValueType, pa.DataType] = {
    ValueType.STR: pa.string(),
    ValueType.INT: pa.int64(),
    ValueType.FLOAT: pa.float64(),
    ValueType.BOOL: pa.bool_(),
    ValueType.NULL: pa.bool_(),
    ValueType.JSON: pa.string(),
}

# Display order of types (and the order of per-type columns): deterministic, independent of arrival.
TYPE_ORDER: tuple[ValueType, ...] = tuple(ValueType)


def value_type(value: Any) -> ValueType:
    """The :class:`ValueType` of a Python value decoded from a source (bool is tested before int)."""
    if value is None:
        return ValueType.NULL
    if isinstance(value, bool):
        return ValueType.BOOL
    if isinstance(value, int):
        return ValueType.INT if INT64_MIN <= value <= INT64_MAX else ValueType.FLOAT
    if isinstance(value, float):
        return ValueType.FLOAT
    if isinstance(value, str):
        return ValueType.STR
    if isinstance(value, (dict, list)):
        return ValueType.JSON
    raise TypeError(f"unsupported value type {type(value).__name__}")


def physical_name(field_name: str, vtype: ValueType, single_type: bool) -> str:
    """Column name for a field's values of one type, inside one part file (or in the canonical frame)."""
    if vtype is ValueType.NULL:
        return field_name + TYPE_SEP + vtype.value
    if single_type and field_name not in CORE_COLUMNS and TYPE_SEP not in field_name:
        return field_name
    return field_name + TYPE_SEP + vtype.value


def spans_to_table(records: Iterable[Mapping[str, Any]], first_arrival: int) -> tuple[pa.Table, dict[str, list[str]]]:
    """Build one part file's table from span records, keeping every value's type.

    Each record is a mapping with the core keys (``trace_id``, ``span_id``, ``parent_id``, ``timestamp`` as
    microseconds since the epoch, UTC, or None) and a ``fields`` mapping of field name to Python value
    (None for a key present with null; dict/list for unflattened nested values). ``arrival`` is assigned here,
    counting from ``first_arrival``.

    Returns the table and its column map ``{column: [field, type]}`` for the manifest.
    """
    recs = list(records)
    n = len(recs)
    # Which types each field has in this batch, in first-seen order of fields (sorted below for determinism).
    types: dict[str, set[ValueType]] = {}
    for r in recs:
        for k, v in r["fields"].items():
            types.setdefault(k, set()).add(value_type(v))
    columns: dict[str, pa.Array] = {
        TRACE_ID: pa.array([r[TRACE_ID] for r in recs], pa.string()),
        SPAN_ID: pa.array([r.get(SPAN_ID) for r in recs], pa.string()),
        PARENT_ID: pa.array([r.get(PARENT_ID) or None for r in recs], pa.string()),
        TIMESTAMP: pa.array([r.get(TIMESTAMP) for r in recs], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        ARRIVAL: pa.array(range(first_arrival, first_arrival + n), pa.int64()),
    }
    colmap: dict[str, list[str]] = {}
    for fname in sorted(types):
        ftypes = types[fname]
        value_types = [t for t in TYPE_ORDER if t in ftypes and t is not ValueType.NULL]
        single = len(value_types) == 1
        for t in TYPE_ORDER:
            if t not in ftypes:
                continue
            col = physical_name(fname, t, single)
            vals: list[Any] = []
            for r in recs:
                f = r["fields"]
                if fname in f and value_type(f[fname]) is t:
                    v = f[fname]
                    if t is ValueType.NULL:
                        v = True
                    elif t is ValueType.JSON:
                        v = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
                    elif t is ValueType.FLOAT:
                        v = float(v)
                    vals.append(v)
                else:
                    vals.append(None)
            columns[col] = pa.array(vals, ARROW_TYPE[t])
            colmap[col] = [fname, t.value]
    return pa.table(columns), colmap


def column_map_from_schema(schema: pa.Schema) -> dict[str, list[str]]:
    """The column map of a table written by a producer that only uses plain single-type columns (e.g. synth)."""
    by_arrow = {v: k for k, v in ARROW_TYPE.items() if k not in (ValueType.NULL, ValueType.JSON)}
    out: dict[str, list[str]] = {}
    for f in schema:
        if f.name in CORE_COLUMNS:
            continue
        if TYPE_SEP in f.name:
            fname, _, t = f.name.rpartition(TYPE_SEP)
            out[f.name] = [fname, ValueType(t).value]
        else:
            out[f.name] = [f.name, by_arrow[f.type].value]
    return out


@dataclass(slots=True)
class PartFile:
    """One Parquet file of the corpus, as the manifest lists it."""

    path: str  # relative to the corpus folder
    sha256: str
    rows: int
    columns: dict[str, list[str]]  # column -> [field, type]

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "rows": self.rows, "columns": self.columns}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PartFile:
        return cls(path=d["path"], sha256=d["sha256"], rows=int(d["rows"]), columns=dict(d["columns"]))


@dataclass(slots=True)
class Manifest:
    """What a corpus holds. Written with sorted keys and no timestamps: same inputs, same bytes.

    ``sample_rate`` says how much of real traffic the corpus represents: 10 means "1 in 10" (the corpus holds a
    tenth of production), so the budget check multiplies observed rates by it.
    """

    spans: int = 0
    traces: int = 0
    time_start: str | None = None  # ISO 8601 UTC of the first span start
    time_end: str | None = None  # ISO 8601 UTC of the last span start
    sample_rate: float = 1.0
    files: list[PartFile] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)  # {path, sha256, format, spans, skipped, ...}
    fields: dict[str, dict[str, int]] = field(default_factory=dict)  # field -> {type: spans with that type}
    ingest_options: dict[str, Any] = field(default_factory=dict)

    @property
    def window_seconds(self) -> float:
        """Length of the time window, first to last span start, in seconds (0 when unknown)."""
        if not self.time_start or not self.time_end:
            return 0.0
        from datetime import datetime

        a = datetime.fromisoformat(self.time_start)
        b = datetime.fromisoformat(self.time_end)
        return max(0.0, (b - a).total_seconds())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "spans": self.spans,
            "traces": self.traces,
            "time_window": {"start": self.time_start, "end": self.time_end},
            "sample_rate": self.sample_rate,
            "files": [f.to_json() for f in self.files],
            "sources": self.sources,
            "fields": {k: dict(sorted(v.items())) for k, v in sorted(self.fields.items())},
            "ingest_options": self.ingest_options,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Manifest:
        if d.get("format") != MANIFEST_FORMAT:
            raise NectarError(f"unsupported corpus manifest format {d.get('format')!r} (expected {MANIFEST_FORMAT})")
        tw = d.get("time_window") or {}
        return cls(
            spans=int(d["spans"]),
            traces=int(d["traces"]),
            time_start=tw.get("start"),
            time_end=tw.get("end"),
            sample_rate=float(d.get("sample_rate", 1.0)),
            files=[PartFile.from_json(f) for f in d.get("files", [])],
            sources=list(d.get("sources", [])),
            fields={k: dict(v) for k, v in d.get("fields", {}).items()},
            ingest_options=dict(d.get("ingest_options", {})),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"

    def save(self, folder: str | Path) -> None:
        atomic_write_text(Path(folder) / MANIFEST_NAME, self.dumps())


def field_columns_of(fields: Mapping[str, Mapping[str, int]]) -> dict[str, dict[ValueType, str]]:
    """Canonical column names per field and type, from the manifest's field catalog."""
    out: dict[str, dict[ValueType, str]] = {}
    for fname in sorted(fields):
        ftypes = {ValueType(t) for t in fields[fname]}
        single = len([t for t in ftypes if t is not ValueType.NULL]) == 1
        out[fname] = {t: physical_name(fname, t, single) for t in TYPE_ORDER if t in ftypes}
    return out


class Corpus:
    """An opened corpus folder. Cheap to open: reads only the manifest."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest
        # Types come from the counts and from every part's column map, so a column that a part declares but
        # whose values are all null (a writer's choice, not a contract breach) still has a canonical place.
        types: dict[str, dict[str, int]] = {f: dict(c) for f, c in manifest.fields.items()}
        for part in manifest.files:
            for fname, t in part.columns.values():
                types.setdefault(fname, {}).setdefault(t, 0)
        self.field_columns: dict[str, dict[ValueType, str]] = field_columns_of(types)

    @classmethod
    def open(cls, path: str | Path) -> Corpus:
        root = Path(path)
        mpath = root / MANIFEST_NAME
        if not mpath.is_file():
            hint = "create one with `nectar ingest FILES --corpus DIR` or `nectar corpus synth --out DIR`"
            if not root.exists():
                raise NectarError(f"corpus folder {str(root)!r} does not exist", hint=hint)
            raise NectarError(f"{str(root)!r} is not a Nectar corpus (no {MANIFEST_NAME})", hint=hint)
        try:
            data = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise NectarError(f"cannot read corpus manifest {mpath}: {exc}") from exc
        return cls(root, Manifest.from_json(data))

    def part_paths(self) -> list[Path]:
        return [self.root / f.path for f in self.manifest.files]

    def canonical_selects(self, part: PartFile) -> list[tuple[str, str, ValueType | None]]:
        """For one part file: (physical column, canonical column, type or None for core) in canonical order."""
        out: list[tuple[str, str, ValueType | None]] = [(c, c, None) for c in CORE_COLUMNS]
        for col, (fname, t) in sorted(part.columns.items(), key=lambda kv: kv[0]):
            vt = ValueType(t)
            out.append((col, self.field_columns[fname][vt], vt))
        return out

    def canonical_schema(self) -> dict[str, pa.DataType]:
        """Every canonical column and its Arrow type, core columns first, then fields sorted by name and type."""
        schema: dict[str, pa.DataType] = {f.name: f.type for f in CORE_SCHEMA}
        for by_type in self.field_columns.values():
            for t, col in by_type.items():
                schema[col] = ARROW_TYPE[t]
        return schema

    def scan(self) -> Any:
        """A Polars LazyFrame over all part files with canonical columns (absent values are null)."""
        import polars as pl

        schema = self.canonical_schema()
        pl_schema = pl.Schema({k: pl.from_arrow(pa.array([], v)).dtype for k, v in schema.items()})  # type: ignore[union-attr]
        if not self.manifest.files:
            return pl.LazyFrame(schema=pl_schema)
        frames = []
        for part in self.manifest.files:
            sel = [pl.col(phys).alias(canon) for phys, canon, _ in self.canonical_selects(part)]
            frames.append(pl.scan_parquet(self.root / part.path).select(sel))
        lf = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
        # Put every canonical column in a fixed order, adding those a file lacks as nulls of the right type.
        have = set(lf.collect_schema().names())
        cols = [pl.col(c) if c in have else pl.lit(None, dtype=pl_schema[c]).alias(c) for c in schema]
        return lf.select(cols)


def iso_utc_from_us(us: int | None) -> str | None:
    """ISO 8601 UTC text for microseconds since the epoch (the manifest's time window)."""
    if us is None or (isinstance(us, float) and math.isnan(us)):
        return None
    from datetime import UTC, datetime, timedelta

    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))).isoformat().replace("+00:00", "Z")
