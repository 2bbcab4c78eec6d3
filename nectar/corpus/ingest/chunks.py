"""Chunks of whole lines, each parsed by a native fast path one chunk ahead, in a thread.

The JSON lines readers (flat and OTLP) hand 16 MB chunks of whole lines to Arrow's JSON reader. Parsing and writing
Parquet both run native code without the GIL, so while the caller turns one chunk into part files the next one is
already being parsed: on a 2-core machine that hides much of the write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

CHUNK_BYTES = 16 << 20


def _read_chunk(stream: IO[bytes], prefix: bytes) -> bytes:
    """``prefix`` plus about CHUNK_BYTES more, ending at a line end (or the end of the stream); one copy."""
    data = stream.read(CHUNK_BYTES)
    parts = [prefix, data] if prefix else [data]
    if data and not data.endswith(b"\n"):
        parts.append(stream.readline())
    return b"".join(parts)


def chunks_ahead(
    stream: IO[bytes], parse: Callable[[bytes], Any] | None, first: bytes = b""
) -> Iterator[tuple[bytes, Any]]:
    """``(chunk, parse(chunk))`` for each chunk of whole lines of ``stream`` (``first`` is put before the first).

    The next chunk is read and parsed (in one worker thread) while the caller handles the current one; with
    ``parse`` None nothing is parsed and the result is None. A read error (a truncated gzip stream) is raised only
    after every chunk read before it was yielded, as a plain loop would.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nectar-parse") if parse is not None else None
    error: BaseException | None = None

    def read(prefix: bytes = b"") -> bytes:
        nonlocal error
        try:
            return _read_chunk(stream, prefix)
        except (OSError, EOFError) as exc:
            error = exc
            return b""

    def submit(chunk: bytes) -> Future[Any] | None:
        return pool.submit(parse, chunk) if pool is not None and parse is not None and chunk else None

    try:
        chunk = read(first)
        pending = submit(chunk)
        while chunk:
            following = read() if error is None else b""
            ahead = submit(following)
            yield chunk, (pending.result() if pending is not None else None)
            chunk, pending = following, ahead
        if error is not None:
            raise error
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
