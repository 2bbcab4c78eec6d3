"""Writing corpora: append part files and keep the manifest true, atomically.

Every writer of a corpus (``nectar ingest``, ``nectar corpus synth``) goes through :func:`append_tables` or
:func:`create_corpus`. Both stream: ``batches`` is consumed one table at a time and each table is written to its
own part file before the next one is pulled, so memory holds at most one batch.

Atomicity: new part files are written under a hidden temporary name and renamed into place; the manifest is
saved last, with an atomic rename. If anything fails before that, the new part files are deleted and the old
manifest (the source of truth: readers ignore Parquet files it does not list) is left byte-identical.

Arrival numbers (``arrival``, Refinery's arrival order) continue from the corpus's span count. Callers that build
tables with :func:`nectar.corpus.layout.spans_to_table` get ``first_arrival`` from :func:`next_arrival`, or
use :func:`tables_from_records`; :func:`append_tables` renumbers a batch whose arrival numbers do not continue
the corpus, so a caller cannot get them wrong.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nectar.corpus.layout import (
    ARRIVAL,
    CORE_SCHEMA,
    MANIFEST_NAME,
    PARENT_ID,
    PART_PREFIX,
    SPAN_ID,
    TIMESTAMP,
    TRACE_ID,
    Corpus,
    Manifest,
    PartFile,
    ValueType,
    iso_utc_from_us,
    spans_to_table,
)
from nectar.errors import NectarError
from nectar.util import int_from_text, sha256_file

ROW_GROUP_ROWS = 128 * 1024
COMPRESSION = "zstd"
LOCK_NAME = ".nectar.lock"
# Each part file also carries its column map in the Parquet schema metadata, so a part read on its own (e.g.
# re-ingested into another corpus) keeps every column's value type. The manifest stays the source of truth.
COLUMNS_METADATA_KEY = b"nectar.columns"

Batch = tuple[pa.Table, dict[str, list[str]]]
_UNIQUE_COLUMNS = frozenset((TRACE_ID, SPAN_ID, PARENT_ID, TIMESTAMP, ARRIVAL))


def load_manifest(corpus_dir: Path) -> Manifest | None:
    """The corpus's manifest, or None when the folder holds no corpus yet."""
    if not (Path(corpus_dir) / MANIFEST_NAME).is_file():
        return None
    return Corpus.open(corpus_dir).manifest


def next_arrival(corpus_dir: Path) -> int:
    """The ``first_arrival`` to pass to :func:`spans_to_table` for the next batch appended to ``corpus_dir``."""
    m = load_manifest(corpus_dir)
    return m.spans if m is not None else 0


def tables_from_records(record_batches: Iterable[Iterable[Mapping[str, Any]]], first_arrival: int) -> Iterator[Batch]:
    """Turn batches of span records (see :func:`spans_to_table`) into tables with continuing arrival numbers."""
    arrival = first_arrival
    for records in record_batches:
        table, colmap = spans_to_table(records, arrival)
        arrival += table.num_rows
        yield table, colmap


def _part_number(name: str) -> int | None:
    if not (name.startswith(PART_PREFIX) and name.endswith(".parquet")):
        return None
    digits = name[len(PART_PREFIX) : -len(".parquet")]
    return int_from_text(digits, signed=False)


def _next_part_number(root: Path, manifest: Manifest) -> int:
    """One past the highest part number in the manifest or on disk (never overwrite a stray file)."""
    nums = [n for f in manifest.files if (n := _part_number(Path(f.path).name)) is not None]
    if root.is_dir():
        nums += [n for p in root.iterdir() if (n := _part_number(p.name)) is not None]
    return max(nums, default=0) + 1


@contextmanager
def _corpus_lock(root: Path) -> Iterator[None]:
    """An exclusive advisory lock on the corpus folder (released by the OS if the process dies)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise NectarError(
                f"corpus {str(root)!r} is being written by another process",
                hint="wait for the other `nectar ingest` / `nectar corpus synth` to finish",
            ) from exc
        yield
    finally:
        os.close(fd)


def _normalise(table: pa.Table, first_arrival: int) -> pa.Table:
    """Core columns with the contract's types, and arrival numbers that continue the corpus."""
    n = table.num_rows
    if TRACE_ID not in table.column_names:
        raise ValueError("a corpus batch needs a trace_id column")
    for f in CORE_SCHEMA:
        if f.name == ARRIVAL:
            continue
        if f.name not in table.column_names:
            table = table.append_column(f.name, pa.nulls(n, f.type))
        elif table.schema.field(f.name).type != f.type:
            i = table.column_names.index(f.name)
            table = table.set_column(i, f.name, table.column(f.name).cast(f.type))
    want = pa.array(range(first_arrival, first_arrival + n), pa.int64())
    if ARRIVAL in table.column_names:
        have = table.column(ARRIVAL)
        ok = have.type == pa.int64() and have.null_count == 0
        if ok and n:
            mm = pc.min_max(have)
            ok = mm["min"].as_py() == first_arrival and mm["max"].as_py() == first_arrival + n - 1
        # A batch numbered 0..n-1 (or from a stale count) is shifted; one not a plain run is renumbered in order.
        if not ok:
            table = table.set_column(table.column_names.index(ARRIVAL), ARRIVAL, want)
    else:
        table = table.append_column(ARRIVAL, want)
    # Core columns first, in the contract's order; then the field columns as given.
    core = [f.name for f in CORE_SCHEMA]
    return table.select(core + [c for c in table.column_names if c not in core])


def _non_null(col: pa.ChunkedArray, vtype: ValueType) -> int:
    if vtype is ValueType.NULL:  # a bool marker column: True where the key was present with null
        return int(pc.sum(col).as_py() or 0)
    return len(col) - col.null_count


def append_tables(
    corpus_dir: Path,
    batches: Iterable[Batch],
    sources: list[dict[str, Any]],
    options: dict[str, Any],
    sample_rate: float | None = None,
) -> Manifest:
    """Append each batch as the next part file of ``corpus_dir`` and save the updated manifest.

    Creates the folder and a new corpus when there is no manifest. ``batches`` is consumed lazily, one table at
    a time. Each table is ``(table, column map)`` as :func:`spans_to_table` returns. ``sources`` are added to
    the manifest's source list, ``options`` merged into its ingest options; ``sample_rate`` (when given)
    replaces the recorded one. Returns the new manifest. On any failure the new part files are removed and the
    old manifest stays as it was.
    """
    root = Path(corpus_dir)
    created = not root.exists()
    try:
        return _append_locked(root, batches, sources, options, sample_rate)
    except BaseException:
        if created:  # a new corpus that failed: leave no folder behind
            shutil.rmtree(root, ignore_errors=True)
        raise


def _append_locked(
    root: Path,
    batches: Iterable[Batch],
    sources: list[dict[str, Any]],
    options: dict[str, Any],
    sample_rate: float | None,
) -> Manifest:
    with _corpus_lock(root):
        old = load_manifest(root) or Manifest()
        new = Manifest.from_json(old.to_json())  # a copy: `old` stays as the fallback
        written: list[Path] = []
        try:
            number = _next_part_number(root, old)
            arrival = old.spans
            t_min: list[int] = []
            t_max: list[int] = []
            if old.time_start:
                t_min.append(_iso_to_us(old.time_start))
            if old.time_end:
                t_max.append(_iso_to_us(old.time_end))
            for table, colmap in batches:
                if table.num_rows == 0:
                    continue
                table = _normalise(table, arrival)
                meta = dict(table.schema.metadata or {})
                meta[COLUMNS_METADATA_KEY] = json.dumps(colmap, sort_keys=True, separators=(",", ":")).encode()
                table = table.replace_schema_metadata(meta)
                name = f"{PART_PREFIX}{number:06d}.parquet"
                final = root / name
                tmp = root / f".{name}.tmp"
                written.append(tmp)
                # Dictionary pages pay off for repeated values (service names, routes), not for the unique ids.
                dictionary = [c for c in table.column_names if c not in _UNIQUE_COLUMNS]
                pq.write_table(
                    table, tmp, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS, use_dictionary=dictionary
                )
                os.replace(tmp, final)
                written[-1] = final
                new.files.append(PartFile(path=name, sha256=sha256_file(final), rows=table.num_rows, columns=colmap))
                for col, (fname, t) in colmap.items():
                    count = _non_null(table.column(col), ValueType(t))
                    if count:
                        by_type = new.fields.setdefault(fname, {})
                        by_type[t] = by_type.get(t, 0) + count
                ts = pc.min_max(table.column(TIMESTAMP).cast(pa.int64()))
                if ts["min"].is_valid:
                    t_min.append(ts["min"].as_py())
                    t_max.append(ts["max"].as_py())
                arrival += table.num_rows
                number += 1
                del table
            new.spans = arrival
            new.traces = _count_traces(root, new)
            new.time_start = iso_utc_from_us(min(t_min)) if t_min else None
            new.time_end = iso_utc_from_us(max(t_max)) if t_max else None
            new.sources = list(old.sources) + list(sources)
            new.ingest_options = {**old.ingest_options, **options}
            if sample_rate is not None:
                new.sample_rate = float(sample_rate)
            new.save(root)
        except BaseException:
            for p in written:
                p.unlink(missing_ok=True)
            raise
    return new


def _iso_to_us(text: str) -> int:
    from datetime import UTC, datetime

    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _count_traces(root: Path, manifest: Manifest) -> int:
    """Distinct trace ids over the whole corpus: a lazy scan of the trace_id column only."""
    if not manifest.files:
        return 0
    import polars as pl

    ids = pl.concat([pl.scan_parquet(root / f.path).select(TRACE_ID) for f in manifest.files])
    out = ids.select(pl.col(TRACE_ID).n_unique()).collect()
    return int(out.item())


def create_corpus(
    out_dir: Path,
    batches: Iterable[Batch],
    sources: list[dict[str, Any]],
    options: dict[str, Any],
    sample_rate: float | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Write a fresh corpus to ``out_dir`` (replacing a corpus already there), atomically.

    The corpus is built in a hidden sibling folder and swapped into place at the end, so a failure leaves
    ``out_dir`` as it was. A non-empty folder that is not a corpus is refused unless ``overwrite`` is true.
    """
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise NectarError(f"{str(out)!r} exists and is not a folder")
        is_corpus = (out / MANIFEST_NAME).is_file()
        if not is_corpus and any(out.iterdir()) and not overwrite:
            raise NectarError(
                f"{str(out)!r} is a non-empty folder that is not a Nectar corpus",
                hint="choose an empty or new folder, or overwrite it on purpose",
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    # mkdtemp makes the folder 0700; the corpus should get the mode a plain mkdir would (umask applies).
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    try:
        manifest = append_tables(staging, batches, sources, options, sample_rate)
        (staging / LOCK_NAME).unlink(missing_ok=True)
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, trash / "old")
            os.replace(staging, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


__all__ = [
    "COMPRESSION",
    "ROW_GROUP_ROWS",
    "append_tables",
    "create_corpus",
    "load_manifest",
    "next_arrival",
    "tables_from_records",
]
