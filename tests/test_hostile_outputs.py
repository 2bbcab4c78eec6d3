"""Hostile paths and inputs: every one is a clear error with exit 2 naming the path, never a traceback, a crash, a
replaced file or a temporary file left behind.

* outputs (``-o`` and every other file a command writes): a device, a named pipe, a symbolic link, a folder, a
  path under a file, a read-only folder; write errors (ENOSPC, EACCES, EROFS) while writing and renaming;
* policy input: a folder, bytes that are not UTF-8 (positioned at the first bad byte);
* nesting: a match expression or a policy file nested deeper than ``ir.MAX_NESTING`` (positioned at the opening
  that exceeds it), and the deepest accepted input survives every command;
* a hypothesis test: random bytes and near-valid policies through ``nectar fmt`` and ``nectar check``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nectar.cli import main
from nectar.cli.policy_cmds import EXAMPLE_POLICY
from nectar.errors import NectarError
from nectar.policy.ir import MAX_NESTING
from nectar.util import atomic_write_bytes, atomic_write_files

# ------------------------------------------------------------------------------------------------ helpers


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_clean_error(code: int, err: str, *names: str | Path) -> None:
    """Exit 2, no traceback, and the message names each of ``names``."""
    assert code == 2, err
    assert "Traceback" not in err, err
    for name in names:
        assert str(name) in err, (name, err)


def temp_files(folder: Path) -> list[str]:
    """The temporary files nectar's writer makes (``.<name>.<random>.tmp``) left in ``folder``."""
    return sorted(n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".tmp"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project (nectar init, 2,000 spans) with compiled rules.yaml and nectar.lock."""
    root = tmp_path_factory.mktemp("hostile") / "proj"
    assert main(["init", str(root), "--spans", "2000"]) == 0
    cwd = Path.cwd()
    os.chdir(root)
    try:
        assert main(["compile", "--no-prove"]) == 0
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project)
    return project


# ------------------------------------------------------------------------------------------------ outputs

# Every command that writes a file, with the option naming it. `{T}` is the hostile target; the other files a
# command writes go to `{D}` (a scratch folder), so the project stays as it is.
WRITERS: dict[str, list[str]] = {
    "explain -o": ["explain", "--format", "md", "-o", "{T}"],
    "import -o": ["import", "rules.yaml", "-o", "{T}"],
    "compile -o": ["compile", "--no-prove", "-o", "{T}", "--lock", "{D}/nectar.lock"],
    "compile --lock": ["compile", "--no-prove", "-o", "{D}/rules.yaml", "--lock", "{T}"],
    "propose -o": ["propose", "keep errors, sample the rest at 1%", "--provider", "offline", "-o", "{T}", "--yes"],
    "prove --witness-out": ["prove", "--symbolic", "off", "--witness-out", "{T}"],
    "replay --per-trace": ["replay", "rules.yaml", "--per-trace", "{T}"],
    "fmt (rewrites its policy)": ["fmt", "{T}"],
}


@dataclass
class Target:
    """A hostile output path and how to tell that it was left alone."""

    path: Path
    snapshot: Callable[[], Any]


def _kind(path: Path) -> tuple[str, Any]:
    st_ = path.lstat()
    if stat.S_ISLNK(st_.st_mode):
        return "link", os.readlink(path)
    if stat.S_ISDIR(st_.st_mode):
        return "dir", sorted(os.listdir(path))
    if stat.S_ISFIFO(st_.st_mode):
        return "fifo", None
    if stat.S_ISCHR(st_.st_mode):
        return "chr", st_.st_rdev
    return "file", path.read_bytes()


def make_fifo(tmp: Path) -> Target:
    p = tmp / "out.fifo"
    os.mkfifo(p)
    return Target(p, lambda: _kind(p))


def make_symlink(tmp: Path) -> Target:
    real = tmp / "real.txt"
    real.write_bytes(b"the file the link points to\n")
    p = tmp / "out.link"
    p.symlink_to(real.name)
    return Target(p, lambda: (_kind(p), real.read_bytes()))


def make_dangling_symlink(tmp: Path) -> Target:
    p = tmp / "out.dangling"
    p.symlink_to("nowhere.txt")
    return Target(p, lambda: (_kind(p), (tmp / "nowhere.txt").exists()))


def make_folder(tmp: Path) -> Target:
    p = tmp / "out.d"
    p.mkdir()
    (p / "keep.txt").write_bytes(b"keep")
    return Target(p, lambda: _kind(p))


def make_under_a_file(tmp: Path) -> Target:
    parent = tmp / "plain.txt"
    parent.write_bytes(b"plain")
    return Target(parent / "out.yaml", lambda: _kind(parent))


def make_device(tmp: Path) -> Target:
    """/dev/full, or as root a private node of the same device: root may rename over /dev/full, so a regression
    would replace the machine's device (as it did before the fix), where a user's rename into /dev fails."""
    dev = Path("/dev/full")
    if not dev.exists():
        pytest.skip("no /dev/full on this system")
    p = dev
    if os.geteuid() == 0:
        p = tmp / "full"
        try:
            os.mknod(p, stat.S_IFCHR | 0o666, dev.stat().st_rdev)
        except OSError as exc:
            pytest.skip(f"running as root and cannot make a private device node ({exc.strerror})")
    return Target(p, lambda: _kind(p))


def make_read_only_folder(tmp: Path) -> Target:
    if os.geteuid() == 0:
        pytest.skip("running as root: a read-only folder is still writable (no EACCES)")
    folder = tmp / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return Target(folder / "out.yaml", lambda: _kind(folder))


TARGETS: dict[str, Callable[[Path], Target]] = {
    "/dev/full (device)": make_device,
    "FIFO": make_fifo,
    "symlink": make_symlink,
    "dangling symlink": make_dangling_symlink,
    "folder": make_folder,
    "path under a file": make_under_a_file,
    "read-only folder": make_read_only_folder,
}


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for p in tmp_path.rglob("*"):  # give back what a test made read-only, so pytest can clean up
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)


@pytest.mark.parametrize("target_kind", list(TARGETS))
@pytest.mark.parametrize("writer", list(WRITERS))
def test_hostile_output_is_refused_and_left_alone(
    writer: str, target_kind: str, in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = TARGETS[target_kind](scratch)
    before = target.snapshot()
    argv = [a.replace("{T}", str(target.path)).replace("{D}", str(scratch)) for a in WRITERS[writer]]
    code, _, err = run(capsys, *argv)
    assert_clean_error(code, err, target.path)
    assert target.snapshot() == before
    if target.path.parent.is_dir():
        assert temp_files(target.path.parent) == []
    assert temp_files(scratch) == []
    assert not (scratch / "rules.yaml").exists() and not (scratch / "nectar.lock").exists()


def test_symlink_message_says_to_pass_the_real_path(
    in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = make_symlink(scratch)
    code, _, err = run(capsys, "import", "rules.yaml", "-o", target.path)
    assert_clean_error(code, err, target.path, "symbolic link", f"pass the real path: {scratch / 'real.txt'}")


@pytest.mark.parametrize("target_kind", [k for k in TARGETS if k != "read-only folder"])
def test_the_writer_itself_refuses_hostile_targets(target_kind: str, scratch: Path) -> None:
    """The check is in the one writer, not only in the commands: a caller that skips it is still safe."""
    target = TARGETS[target_kind](scratch)
    before = target.snapshot()
    with pytest.raises(NectarError) as info:
        atomic_write_bytes(target.path, b"new")
    assert str(target.path) in info.value.render()
    assert target.snapshot() == before
    assert temp_files(scratch) == []


def test_same_file_twice_is_refused(in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = scratch / "both.yaml"
    code, _, err = run(capsys, "compile", "--no-prove", "-o", out, "--lock", out)
    assert_clean_error(code, err, out)
    assert not out.exists()


# Write errors where they happen: creating the temporary file (EACCES, EROFS, ENOSPC), syncing it (ENOSPC, EIO),
# renaming it (EACCES, EXDEV). Running as root makes real EACCES impossible, so the errors are injected.
FAULTS: dict[str, tuple[str, int]] = {
    "EACCES creating": ("tempfile.mkstemp", errno.EACCES),
    "EROFS creating": ("tempfile.mkstemp", errno.EROFS),
    "ENOSPC creating": ("tempfile.mkstemp", errno.ENOSPC),
    "ENOSPC syncing": ("os.fsync", errno.ENOSPC),
    "EIO syncing": ("os.fsync", errno.EIO),
    "EACCES renaming": ("os.replace", errno.EACCES),
    "EXDEV renaming": ("os.replace", errno.EXDEV),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_write_errors_name_the_path_and_leave_the_old_file(
    fault: str, in_project: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    where, code_ = FAULTS[fault]
    out = scratch / "policy-out.toon"
    out.write_bytes(b"old contents\n")

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code_, os.strerror(code_))

    monkeypatch.setattr(f"nectar.util.{where}", fail)
    code, _, err = run(capsys, "import", "rules.yaml", "-o", out)
    monkeypatch.undo()
    assert_clean_error(code, err, out, os.strerror(code_), "nothing was written")
    assert out.read_bytes() == b"old contents\n"
    assert temp_files(scratch) == []


def test_a_failed_rename_puts_back_the_outputs_already_replaced(
    in_project: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """compile writes rules.yaml and the lock all-or-nothing: when the second rename fails, the first is undone."""
    rules, lock = scratch / "rules.yaml", scratch / "nectar.lock"
    rules.write_bytes(b"old rules\n")
    old_lock = (in_project / "nectar.lock").read_bytes()  # a valid lock: compile reads the previous one
    lock.write_bytes(old_lock)
    real_replace = os.replace
    calls: list[str] = []

    def second_fails(src: Any, dst: Any) -> None:
        calls.append(str(dst))
        if str(dst) == str(lock):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr("nectar.util.os.replace", second_fails)
    code, _, err = run(capsys, "compile", "--no-prove", "-o", rules, "--lock", lock)
    monkeypatch.undo()
    assert_clean_error(code, err, lock, "No space left on device")
    assert calls[:2] == [str(rules), str(lock)]
    assert rules.read_bytes() == b"old rules\n" and lock.read_bytes() == old_lock
    assert temp_files(scratch) == []


def test_a_regular_output_is_still_written_atomically_with_its_mode(scratch: Path) -> None:
    out = scratch / "sub" / "dir" / "out.txt"
    atomic_write_files([(out, [b"a\n", b"b\n"])])  # missing folders are made; chunks are streamed
    assert out.read_bytes() == b"a\nb\n"
    out.chmod(0o640)
    atomic_write_bytes(out, b"c\n")
    assert out.read_bytes() == b"c\n" and stat.S_IMODE(out.stat().st_mode) == 0o640
    assert temp_files(out.parent) == []


def test_a_fifo_lock_does_not_block_compile(
    in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """compile reads the old lock before writing: a FIFO there would block forever; it is refused first."""
    fifo = make_fifo(scratch)
    code, _, err = run(capsys, "compile", "--no-prove", "--locked", "-o", scratch / "r.yaml", "--lock", fifo.path)
    assert_clean_error(code, err, fifo.path, "named pipe")


def test_init_writes_nothing_when_one_file_is_refused(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = scratch / "proj"
    folder.mkdir()
    (folder / "elsewhere.toml").write_text("# mine\n")
    (folder / "nectar.toml").symlink_to("elsewhere.toml")
    code, _, err = run(capsys, "init", folder, "--force", "--spans", "100")
    assert_clean_error(code, err, folder / "nectar.toml", "symbolic link")
    assert sorted(os.listdir(folder)) == ["elsewhere.toml", "nectar.toml"]
    assert (folder / "elsewhere.toml").read_text() == "# mine\n"


# ------------------------------------------------------------------------------------------------ policy input

POLICY_READERS: dict[str, list[str]] = {
    "check": ["check", "{P}"],
    "fmt": ["fmt", "{P}"],
    "fmt --check": ["fmt", "--check", "{P}"],
    "compile": ["compile", "{P}", "--no-prove", "-o", "{D}/rules.yaml", "--lock", "{D}/nectar.lock"],
    "prove": ["prove", "{P}", "--symbolic", "off"],
    "explain": ["explain", "{P}"],
}


def _argv(template: list[str], policy: Path, scratch: Path) -> list[str]:
    return [a.replace("{P}", str(policy)).replace("{D}", str(scratch)) for a in template]


# (bytes of the policy, line and column of the first bad byte)
README_BYTES = EXAMPLE_POLICY.encode("utf-8")
NOT_UTF8: dict[str, tuple[bytes, int, int]] = {
    "lone 0xff in the name": (README_BYTES.replace(b"production-sampling", b"produc\xfftion"), 3, 9),
    "bad byte first": (b"\x80" + README_BYTES, 1, 1),
    "truncated sequence at the end": (README_BYTES + b"    x,y,true,keep,1 \xe2\x82", 9, 21),
    "latin-1 in a match cell": (README_BYTES.replace(b"Retain all errors", b"Retain all \xe9rrors"), 6, 28),
    "after CRLF lines and a multibyte character": (
        README_BYTES.replace(b"\n", b"\r\n").replace(b"Retain slow", b"R\xc3\xa9tain \xc3slow"),
        7,
        22,
    ),
    "UTF-16": (EXAMPLE_POLICY.encode("utf-16"), 1, 1),
}


@pytest.mark.parametrize("case", list(NOT_UTF8))
@pytest.mark.parametrize("reader", list(POLICY_READERS))
def test_policy_that_is_not_utf8_is_a_positioned_error(
    reader: str, case: str, in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, line, col = NOT_UTF8[case]
    policy = scratch / "bad.toon"
    policy.write_bytes(data)
    code, _, err = run(capsys, *_argv(POLICY_READERS[reader], policy, scratch))
    assert_clean_error(code, err, f"{policy}:{line}:{col}: error: the file is not UTF-8 text")
    caret = err.splitlines()[2]
    assert caret.index("^") == len(f"{line:>4} | ") + col - 1, err
    assert policy.read_bytes() == data


def test_propose_refine_reads_the_policy_through_the_same_reader(
    in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = scratch / "bad.toon"
    data, line, col = NOT_UTF8["lone 0xff in the name"]
    policy.write_bytes(data)
    code, _, err = run(capsys, "propose", "keep errors", "--refine", "--provider", "offline", "-o", policy, "--yes")
    assert_clean_error(code, err, f"{policy}:{line}:{col}:")
    assert policy.read_bytes() == data and not (scratch / "bad.toon.bak").exists()


def test_nectar_toml_that_is_not_utf8_is_a_positioned_error(
    scratch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (scratch / "nectar.toml").write_bytes(b'[project]\npolicy = "p\xff.toon"\n')
    monkeypatch.chdir(scratch)
    code, _, err = run(capsys, "check", "-e", "true")
    assert_clean_error(code, err, "nectar.toml:2:12: error: the file is not UTF-8 text")


@pytest.mark.parametrize("reader", list(POLICY_READERS))
def test_folder_as_policy_is_a_clear_error(
    reader: str, in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = scratch / "policies"
    folder.mkdir()
    code, _, err = run(capsys, *_argv(POLICY_READERS[reader], folder, scratch))
    assert_clean_error(code, err, folder, "is a folder")
    assert os.listdir(folder) == []


@pytest.mark.parametrize("reader", list(POLICY_READERS))
def test_device_as_policy_is_refused_not_read_forever(
    reader: str, in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/dev/zero never ends: reading it would fill memory."""
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this system")
    code, _, err = run(capsys, *_argv(POLICY_READERS[reader], Path("/dev/zero"), scratch))
    assert_clean_error(code, err, "/dev/zero is a character device")


def test_fmt_refuses_a_policy_it_would_replace_before_reading_it(
    in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fmt rewrites its file: a FIFO is refused up front (reading it would block), a symlink is left a symlink;
    `fmt --stdout` only reads, so it follows the link."""
    fifo = make_fifo(scratch)
    code, _, err = run(capsys, "fmt", fifo.path)
    assert_clean_error(code, err, fifo.path, "named pipe")
    link = scratch / "policy.link"
    (scratch / "real.toon").write_text(EXAMPLE_POLICY.replace("  1\n", "  1  \n"))
    link.symlink_to("real.toon")
    code, _, err = run(capsys, "fmt", link)
    assert_clean_error(code, err, link, "symbolic link")
    assert link.is_symlink()
    code, out, _ = run(capsys, "fmt", "--stdout", link)
    assert code == 0 and out == EXAMPLE_POLICY


# ------------------------------------------------------------------------------------------------ nesting

X = "error == true"
# The densest nesting per opening (three IR levels per `span(`: span, or, and), and the other openings alone.
DEEP: dict[str, Callable[[int], str]] = {
    "parentheses": lambda n: "(" * n + X + ")" * n,
    "span(": lambda n: "span(" * n + X + ")" * n,
    "not": lambda n: "not " * n + X,
    "and/or in parentheses": lambda n: "".join(f"{X} {'and' if i % 2 else 'or'} (" for i in range(n)) + X + ")" * n,
    "span(a or b and span(": lambda n: "".join(f"span({X} or {X} and " for _ in range(n)) + X + ")" * n,
    "mixed": lambda n: "".join(("(", "span(", "not ")[i % 3] for i in range(n)) + X + ")" * (n - n // 3),
}
# Where the opening of level MAX_NESTING + 1 starts (0-based offset into the expression) and what it is.
OPENING = {"(": 1, "span(": 5, "not": 3}


def _deep_policy(expr: str) -> str:
    """The README policy with ``expr`` as the match of its first rule (line 6), in a quoted cell."""
    return EXAMPLE_POLICY.replace("error == true or http.status >= 500", '"' + expr + '"')


def _opening(expr: str, level: int) -> tuple[int, str]:
    """Offset and text of the opening of nesting ``level``: in the shapes above each opening (`(`, `span(`, `not`)
    nests inside all the ones before it, so it is the ``level``-th in the text."""
    found = list(re.finditer(r"span\(|not |\(", expr))
    return found[level - 1].start(), found[level - 1].group().strip()


DEEP_COMMANDS: dict[str, list[str]] = {
    "check": ["check", "{P}"],
    "fmt": ["fmt", "--stdout", "{P}"],
    "compile": ["compile", "{P}", "--no-prove", "-o", "{D}/rules.yaml", "--lock", "{D}/nectar.lock"],
    "prove": ["prove", "{P}", "--symbolic", "off"],
    "explain": ["explain", "{P}"],
}


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 1000])  # 1000: a RecursionError before the bound
@pytest.mark.parametrize("command", list(DEEP_COMMANDS))
@pytest.mark.parametrize("shape", list(DEEP))
def test_nesting_beyond_the_bound_is_a_positioned_error(
    shape: str, command: str, depth: int, in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expr = DEEP[shape](depth)
    policy = scratch / "deep.toon"
    policy.write_text(_deep_policy(expr))
    code, _, err = run(capsys, *_argv(DEEP_COMMANDS[command], policy, scratch))
    offset, opening = _opening(expr, MAX_NESTING + 1)
    line = 6  # the keep-errors row; the cell starts after `    keep-errors,Retain all errors,"`
    col = len('    keep-errors,Retain all errors,"') + offset + 1
    assert_clean_error(code, err, f"{policy}:{line}:{col}: error: the expression nests too deeply")
    assert f"`{opening}` opens level {MAX_NESTING + 1}" in err and f"at most {MAX_NESTING} levels" in err
    caret = err.splitlines()[2]
    assert caret.strip() == "^" * OPENING[opening] and caret.index("^") == len("   6 | ") + col - 1, err


@pytest.mark.parametrize("command", [*DEEP_COMMANDS, "prove (symbolic)", "explain html"])
@pytest.mark.parametrize("shape", list(DEEP))
def test_the_deepest_accepted_expression_survives_every_command(
    shape: str, command: str, in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = scratch / "deep.toon"
    policy.write_text(_deep_policy(DEEP[shape](MAX_NESTING)))
    extra = {
        "prove (symbolic)": ["prove", "{P}", "--solver-timeout", "1"],
        "explain html": ["explain", "{P}", "--format", "html", "-o", "{D}/x.html"],
    }
    code, _, err = run(capsys, *_argv({**DEEP_COMMANDS, **extra}[command], policy, scratch))
    assert "Traceback" not in err and "nests too deeply" not in err, err
    assert code in (0, 1, 2), err
    if code == 2:  # refused by a later check (e.g. `not span(...)` has no Refinery form), with its position
        assert f"{policy}:6:" in err, err


def test_expression_nesting_bound_applies_to_check_e(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "-e", DEEP["parentheses"](MAX_NESTING + 1))
    assert_clean_error(code, err, f"<expr>:1:{MAX_NESTING + 1}: error: the expression nests too deeply")
    code, _, _ = run(capsys, "check", "-e", DEEP["parentheses"](MAX_NESTING))
    assert code == 0


@pytest.mark.parametrize("command", ["check", "fmt", "prove"])
def test_a_policy_file_nested_too_deeply_is_a_positioned_error(
    command: str, in_project: Path, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = scratch / "deep.toon"
    policy.write_text("".join(" " * i + f"k{i}:\n" for i in range(1500)))
    code, _, err = run(capsys, *_argv(POLICY_READERS[command], policy, scratch))
    level = MAX_NESTING + 1
    assert_clean_error(code, err, f"{policy}:{level}:{level}: error: the file nests too deeply")


# ------------------------------------------------------------------------------------------------ fuzzing

_HOSTILE = [b"\xff", b"\x80", b"\xc3", b"\xe2\x82", b"\x00", b"\r", b"\n", b"(", b"span(", b"not ", b'"', b"\t", b" "]


@st.composite
def near_valid_policies(draw: st.DrawFn) -> bytes:
    """The README policy with a few byte-level edits: deletions, hostile insertions, deep nesting, bad UTF-8."""
    data = README_BYTES
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.integers(0, 3))
        if op == 0:
            data = data[:pos] + data[pos + 1 :]
        elif op == 1:
            data = data[:pos] + draw(st.sampled_from(_HOSTILE)) + data[pos:]
        elif op == 2:
            n = draw(st.sampled_from([MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, 1000]))
            data = data[:pos] + draw(st.sampled_from([b"(", b"span(", b"not "])) * n + data[pos:]
        else:
            data = data[:pos] + draw(st.binary(max_size=8)) + data[pos:]
    return data


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.one_of(st.binary(max_size=300), near_valid_policies()))
def test_fmt_and_check_never_crash(
    data: bytes, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.chdir(tmp)  # no nectar.toml around: the defaults
        policy = Path(tmp) / "policy.toon"
        policy.write_bytes(data)
        for argv in (["check", str(policy)], ["fmt", str(policy)], ["check", str(policy)]):
            code, _, err = run(capsys, *argv)
            assert code in (0, 1, 2), (argv, code, err)
            assert "Traceback" not in err, err
        assert temp_files(Path(tmp)) == []
