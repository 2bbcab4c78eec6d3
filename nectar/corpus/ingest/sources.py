"""Where spans come from: paths, folders, globs and stdin; gzip; format detection; reading line by line.

Every input is a file on disk by the time a reader sees it (stdin is spooled to a temporary file while its
SHA-256 is computed), so readers can re-open it, and the manifest can record each source's hash for idempotency.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nectar.corpus.ingest.builder import Skips
from nectar.errors import NectarError
from nectar.util import sha256_file

FORMATS: tuple[str, ...] = ("otlp-json", "otlp-proto", "jaeger", "zipkin", "jsonl", "opensearch", "parquet")
FORMAT_CHOICES: tuple[str, ...] = ("auto", *FORMATS)

# In a folder, only files that look like trace data are read (a README next to the data is not an input).
_DATA_SUFFIXES = {".json", ".jsonl", ".ndjson", ".pb", ".binpb", ".protobuf", ".otlp", ".parquet", ".gz", ".data"}
_HEAD_BYTES = 64 * 1024
_MAX_FIRST_LINE = 16 << 20
_GZIP_MAGIC = b"\x1f\x8b"
# Bytes that JSON text may hold raw: everything but the control characters other than tab, CR and LF.
_TEXT_BYTES = bytes([9, 10, 13, *range(32, 256)])


@dataclass(frozen=True, slots=True)
class Source:
    """One input file: ``display`` is what reports call it, ``path`` where its bytes are (a spool for stdin)."""

    display: str
    path: Path
    sha256: str
    size: int


def expand_inputs(paths: list[str], exclude: Path | None = None) -> list[tuple[str, Path | None]]:
    """Resolve PATH arguments to ``(display name, file)`` pairs in a stable order; ``None`` file means stdin.

    Folders are walked recursively (hidden entries and ``exclude``, the corpus being written, are left out);
    a path that does not exist is taken as a glob pattern.
    """
    out: list[tuple[str, Path | None]] = []
    seen: set[Path] = set()
    excl = exclude.resolve() if exclude is not None else None

    def add(display: str, p: Path) -> None:
        rp = p.resolve()
        if rp in seen:
            return
        seen.add(rp)
        out.append((display, p))

    for arg in paths:
        if arg == "-":
            out.append(("<stdin>", None))
            continue
        p = Path(arg)
        if p.is_file():
            add(arg, p)
        elif p.is_dir():
            for f in _walk(p, excl):
                add(str(f), f)
        elif any(ch in arg for ch in "*?["):
            matches = sorted(glob.glob(arg, recursive=True))
            files: list[Path] = []
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    files.extend(_walk(mp, excl))
                elif mp.is_file():
                    files.append(mp)
            if not files:
                raise NectarError(f"no files match {arg!r}")
            for f in files:
                add(str(f), f)
        else:
            raise NectarError(f"no such file or folder: {arg!r}")
    return out


def _walk(folder: Path, exclude: Path | None) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        rp = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (exclude is None or (rp / d).resolve() != exclude)
        )
        for name in sorted(files):
            if name.startswith("."):
                continue
            if any(name.endswith(s) for s in _DATA_SUFFIXES):
                found.append(rp / name)
    return found


def open_source(display: str, path: Path | None, spool_dir: Path, hash_now: bool = True) -> Source:
    """Hash a file (or spool stdin to a temporary file in ``spool_dir`` while hashing it).

    With ``hash_now`` false a file's ``sha256`` is left empty, for the caller to compute alongside the read.
    """
    if path is not None:
        try:
            return Source(display, path, sha256_file(path) if hash_now else "", path.stat().st_size)
        except OSError as exc:
            raise NectarError(f"cannot read {display}: {exc.strerror}") from exc
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".stdin-", suffix=".spool", dir=spool_dir)
    h = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        src = sys.stdin.buffer
        while block := src.read(1 << 20):
            h.update(block)
            out.write(block)
            size += len(block)
    return Source(display, Path(tmp), h.hexdigest(), size)


# Progress of the file being read: bytes of the file consumed so far are reported to this callback (set by the
# ingest driver around each reader; readers need not know).
_on_bytes: ContextVar[Callable[[int], None] | None] = ContextVar("nectar_ingest_on_bytes", default=None)


@contextmanager
def reporting_progress(callback: Callable[[int], None]) -> Iterator[None]:
    """Report the bytes that :func:`open_stream` streams read from their files to ``callback``."""
    token = _on_bytes.set(callback)
    try:
        yield
    finally:
        _on_bytes.reset(token)


class _Counting(io.RawIOBase):
    """A file that reports how many bytes were read from it."""

    def __init__(self, f: IO[bytes], report: Callable[[int], None]) -> None:
        self._f = f
        self._report = report

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b)  # type: ignore[attr-defined]
        if n:
            self._report(n)
        return n or 0

    def close(self) -> None:
        self._f.close()
        super().close()


def open_stream(src: Source) -> tuple[IO[bytes], IO[bytes]]:
    """``(raw file, decompressed stream)`` of a source; gzip is recognised by its magic bytes."""
    f = open(src.path, "rb")  # noqa: SIM115  (closed by the caller)
    is_gzip = f.read(2) == _GZIP_MAGIC
    f.seek(0)
    report = _on_bytes.get()
    raw: IO[bytes] = io.BufferedReader(_Counting(f, report), 1 << 20) if report is not None else f  # type: ignore[assignment]
    if is_gzip:
        return raw, gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw, raw


def read_head(src: Source) -> bytes:
    raw, stream = open_stream(src)
    try:
        head = stream.read(_HEAD_BYTES)
        if b"\n" not in head and len(head) == _HEAD_BYTES:
            head += stream.readline(_MAX_FIRST_LINE)  # detection judges the first whole line
        return head
    except (OSError, EOFError):  # a truncated or corrupt gzip: let the reader report it
        return b""
    finally:
        raw.close()


_FIRST_KEY = re.compile(rb'^\s*\{\s*"([^"]{1,64})"')


def detect_format(head: bytes) -> str | None:
    """The input format from the first bytes of a (decompressed) file, or None when unrecognisable."""
    if head.startswith(b"PAR1"):
        return "parquet"
    if head[:1024].translate(None, _TEXT_BYTES) or not _is_utf8(head[:1024]):
        return "otlp-proto"  # not text: OTLP protobuf is the only binary trace format we read
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        return "jsonl"  # an empty file: no spans, in any format
    if text[:1] in (b"{", b"["):
        first = text.split(b"\n", 1)[0]
        try:
            obj = json.loads(first)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            return _classify_object(obj)
        if isinstance(obj, list):
            return _classify_array(obj)
        # A multi-line (pretty-printed) document: judge by its first key and what it mentions.
        m = _FIRST_KEY.match(text)
        key = m.group(1).decode("utf-8", "replace") if m else ""
        if key in ("resourceSpans", "result") or b'"resourceSpans"' in text[:4096]:
            return "otlp-json"
        if key in ("data", "traceID", "spans") or b'"operationName"' in text:
            return "jaeger"
        if text[:1] == b"[" and (b'"localEndpoint"' in text or b'"traceId"' in text):
            return "zipkin"
        if text[:1] == b"[" and b'"traceID"' in text:
            return "jaeger"
        return None
    return None


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut at the end of the sample is fine; anything else is binary.
        return exc.reason == "unexpected end of data" and exc.start >= len(b) - 3
    return True


def _classify_object(obj: dict[str, object]) -> str:
    if len(obj) == 1 and next(iter(obj)) in ("index", "create"):
        return "opensearch"
    if "resourceSpans" in obj:
        return "otlp-json"
    res = obj.get("result")
    if isinstance(res, dict) and "resourceSpans" in res:
        return "otlp-json"
    if isinstance(obj.get("data"), list):
        return "jaeger"
    if "traceID" in obj and "spanID" in obj:
        return "opensearch"  # Jaeger's Elasticsearch span documents, one per line
    if "traceId" in obj and "spanId" in obj and ("durationInNanos" in obj or "traceGroup" in obj):
        return "opensearch"  # Data Prepper span documents, one per line
    if "traceId" in obj and "id" in obj and ("localEndpoint" in obj or "kind" in obj or "timestamp" in obj):
        return "zipkin"
    return "jsonl"


def _classify_array(arr: list[object]) -> str | None:
    if not arr:
        return "zipkin"
    first = arr[0]
    if isinstance(first, dict):
        if "traceId" in first and "id" in first:
            return "zipkin"
        if "traceID" in first and "spans" in first:
            return "jaeger"
    return None


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` pairs, 1-based, keeping memory to one line."""
    return enumerate(stream, 1)


def line_text(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\r\n")


def read_document(stream: IO[bytes]) -> bytes:
    """The whole (decompressed) document, for formats that are one JSON value or one protobuf message."""
    buf = io.BytesIO()
    while block := stream.read(1 << 20):
        buf.write(block)
    return buf.getvalue()


def read_whole(src: Source, skips: Skips) -> bytes | None:
    """The whole decompressed document of ``src``, or None after reporting it unreadable to ``skips``."""
    raw, stream = open_stream(src)
    try:
        return read_document(stream)
    except (OSError, EOFError) as exc:
        skips.add(src.display, None, f"unreadable input: {exc}")
        return None
    finally:
        raw.close()
