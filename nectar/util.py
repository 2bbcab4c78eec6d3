"""Small shared helpers: checked atomic writes, UTF-8 reading with positions, and stable hashing."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeAlias

from nectar.errors import NectarError, Span

# ------------------------------------------------------------------------------------------------ writing

Content: TypeAlias = bytes | Iterable[bytes]
"""What a file is written from: its bytes, or chunks of them (streamed, for large outputs)."""

_NOT_REGULAR = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


def file_kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is, in words ("a folder", "a named pipe (FIFO)"...); None for a regular file."""
    return next((kind for test, kind in _NOT_REGULAR if test(mode)), None)


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as an output target, or a :class:`NectarError` (exit 2) saying why nectar will not write there.

    Outputs are written by renaming a new file over the target (:func:`atomic_write_files`), which replaces
    whatever the name pointed at. So the target must be absent or a regular file that we may write: a folder,
    a device (``/dev/full``), a named pipe or a socket would be replaced by a regular file, and a symbolic link
    by a file (its own target left as it was), so all of them are refused, a symbolic link with the real path
    to pass instead. A read-only file is refused too. A missing target needs a folder we can create files in
    (missing folders on the way are made when writing). Commands call this before their work, to fail fast;
    :func:`atomic_write_files` calls it again just before it writes.
    """
    target = Path(path)
    try:
        st = target.lstat()
    except (FileNotFoundError, NotADirectoryError):
        _check_folder_for(target)
        return target
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EACCES...
        raise _cannot_write(target, exc) from None
    if stat.S_ISLNK(st.st_mode):
        real = os.path.realpath(target)
        raise NectarError(
            f"{target} is a symbolic link (to {os.readlink(target)}): nectar writes an output by renaming a new "
            "file over it, which would replace the link, not the file it points to",
            hint=f"pass the real path: {real}",
        )
    kind = file_kind(st.st_mode)
    if kind is not None:
        hint = (
            "pass the path of a file (inside that folder or elsewhere)"
            if kind == "a folder"
            else "pass the path of a regular file; nectar would replace this one with a regular file"
        )
        raise NectarError(f"{target} is {kind}, not a regular file: nectar writes outputs only to files", hint=hint)
    if not os.access(target, os.W_OK):
        raise NectarError(
            f"cannot write {target}: the file is read-only", hint="make it writable, or pass another path"
        )
    return target


def check_outputs(*paths: str | os.PathLike[str]) -> list[Path]:
    """:func:`check_output_path` for each of the outputs of one command, which must be distinct files."""
    targets = [check_output_path(p) for p in paths]
    seen: dict[str, Path] = {}
    for t in targets:
        key = os.path.realpath(t)
        if key in seen:
            same = f"{t} is given for two outputs" if seen[key] == t else f"{seen[key]} and {t} are the same file"
            raise NectarError(f"{same}: each output needs its own path")
        seen[key] = t
    return targets


def _check_folder_for(target: Path) -> None:
    """The nearest existing folder above a missing target must be a folder we can create files in."""
    folder = target.parent
    while True:
        try:
            st = folder.stat()
            break
        except (FileNotFoundError, NotADirectoryError):
            if folder.parent == folder:  # pragma: no cover - "/" exists
                return
            folder = folder.parent
        except OSError as exc:
            raise _cannot_write(target, exc) from None
    if not stat.S_ISDIR(st.st_mode):
        raise NectarError(f"cannot write {target}: {folder} is not a folder")
    with contextlib.suppress(OSError):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            raise NectarError(f"cannot write {target}: {folder} is on a read-only file system")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NectarError(f"cannot write {target}: permission denied (cannot create files in {folder})")


def _cannot_write(target: Path, exc: OSError, nothing_written: bool = False) -> NectarError:
    reason = exc.strerror or str(exc)
    return NectarError(f"cannot write {target}: {reason}" + ("; nothing was written" if nothing_written else ""))


def atomic_write_files(files: Sequence[tuple[str | os.PathLike[str], Content]]) -> None:
    """Write files all-or-nothing, each so that readers see either the old file or the whole new one.

    The one writer of nectar's outputs. Each target is checked (:func:`check_output_path`); missing folders are
    made; each file is written to a temporary file in its target's folder (mode: the old file's, else what a plain
    ``open()`` gives), flushed and fsynced; only when all are written are they renamed over their targets
    (``os.replace``, atomic on POSIX), and if a rename fails the targets already replaced are put back. Any error
    (ENOSPC, EACCES, EROFS...) is a :class:`NectarError` naming the target; no temporary file is left behind.
    """
    targets = check_outputs(*(p for p, _ in files))
    temps: list[tuple[Path, str]] = []
    try:
        for target, (_, content) in zip(targets, files, strict=True):
            temps.append((target, _write_temp(target, content)))
        _replace_all(temps)
    finally:
        for _, tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _write_temp(target: Path, content: Content) -> str:
    """A flushed, fsynced temporary file beside ``target`` holding ``content``; its path. Errors name ``target``."""
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            # mkstemp makes the file 0600; give it the mode a plain open() would (or keep the old file's mode).
            try:
                mode = target.lstat().st_mode & 0o7777
            except FileNotFoundError:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.fchmod(fh.fileno(), mode)
            if isinstance(content, bytes):
                fh.write(content)
            else:
                fh.writelines(content)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _cannot_write(target, exc, nothing_written=True) from None
        raise
    return tmp


def _replace_all(temps: Sequence[tuple[Path, str]]) -> None:
    """Rename each temporary file over its target; on a failure, put back the targets already replaced."""
    done: list[tuple[Path, bytes | None]] = []
    try:
        for target, tmp in temps:
            check_output_path(target)  # again: the target may have changed while the files were written
            try:
                old = target.read_bytes() if len(temps) > 1 and target.exists() else None
                os.replace(tmp, target)
            except OSError as exc:
                raise _cannot_write(target, exc, nothing_written=True) from None
            done.append((target, old))
    except BaseException:
        for target, old in reversed(done):
            with contextlib.suppress(OSError, NectarError):
                if old is None:
                    target.unlink()
                    continue
                back = _write_temp(target, old)
                try:
                    os.replace(back, target)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(back)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: Content) -> None:
    """Write one file atomically and checked: :func:`atomic_write_files` with one file."""
    atomic_write_files([(path, data)])


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text (always ``\\n`` line endings)."""
    atomic_write_bytes(path, text.encode("utf-8"))


# ------------------------------------------------------------------------------------------------ reading


def decode_utf8(data: bytes, file: str) -> str:
    """``data`` as UTF-8 text, or a :class:`NectarError` at the first bad byte: ``file:line:col``, the line (bad
    bytes shown as U+FFFD) and a caret. Lines and columns count as everywhere else: ``str.splitlines`` lines,
    1-based character columns."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8")  # valid: the first bad byte is at exc.start
        lines = (before + "x").splitlines()
        line, column = len(lines), len(lines[-1])
        bad = data[exc.start : exc.end]
        shown = ("byte " if len(bad) == 1 else "bytes ") + " ".join(f"0x{b:02x}" for b in bad)
        raise NectarError(
            f"the file is not UTF-8 text: {shown} at offset {exc.start} ({exc.reason})",
            Span(file, line, column, 1, data.decode("utf-8", errors="replace")),
            "save the file as UTF-8",
        ) from None


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_INT_TEXT = re.compile(r"-?[0-9]+")
_UINT_TEXT = re.compile(r"[0-9]+")


def int_from_text(text: str, signed: bool = True) -> int | None:
    """The integer an ASCII decimal text spells (``-`` allowed when ``signed``), or None.

    Not ``str.isdigit()``: it is also true for ``"¹"`` or ``"٣"``, which ``int()`` rejects (and
    ``"--5".lstrip("-").isdigit()`` is true too).
    """
    return int(text) if (_INT_TEXT if signed else _UINT_TEXT).fullmatch(text) else None


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two short strings (for "did you mean" suggestions)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
