"""Hostile inputs (the hardening issue's points 2, 3 and 11): each is a clear error with exit 2, or a bounded
result, never a traceback, unbounded memory, a leak or a read outside the corpus.

* ``nectar sql`` reads nothing outside the corpus. Every table function of the installed DuckDB that takes a path is
  found in ``duckdb_functions()`` (so a reader a new DuckDB adds is tested too) and refused on files outside the
  corpus: absolute, relative to the working folder's ``.tmp/`` (DuckDB's default temporary directory, which it
  allows when external access is off), through ``..`` out of the session's own temporary folder, through symlinks
  in the corpus folder, and by glob. The session's temporary folder is private and removed when it closes.
* A rules file whose aliases expand without bound (a "billion laughs") is refused quickly, at the alias, with
  bounded memory, by yaml.v3's own rule: the boundary vectors below were measured with gopkg.in/yaml.v3 v3.0.1.
  Mutated rules files (byte flips, truncation, duplicated keys, aliases) never crash ``replay`` or ``import``.
* Many rules: 2,000 rules replay and import, the three engines agree, and evaluating the rules in chunks (as the
  engines do above ``nectar.engine.chunks.CHUNK_RULES`` rules) decides exactly as one query.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from benchmarks.many_rules import rules_yaml
from nectar.cli import main
from nectar.compile import compile_policy
from nectar.config import Config
from nectar.corpus.layout import Corpus
from nectar.corpus.sql import SqlSession, open_session
from nectar.engine import chunks
from nectar.engine.api import evaluate, evaluate_with_probes
from nectar.errors import NectarError
from nectar.refinery.loader import load_rules
from nectar.refinery.model import RulesBasedSampler
from nectar.refinery.yamlv3 import loads
from tests.conftest import shared_path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
SECRET = "NECTAR-SECRET-7f3a9c"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nectar.corpus.synth import synth_corpus

    out = tmp_path_factory.mktemp("hostile") / "corpus"
    synth_corpus(out, spans=800, seed=5)
    return out


# ---------------------------------------------------------------------------------------------------------------
# 2. nectar sql: nothing outside the corpus is readable, by any table function


PATH_PARAMS = frozenset({"path", "paths", "file", "pattern"})
# Table functions with a path parameter that open nothing (their outcome must still show no secret).
NOT_FILE_READERS = {"which_secret": "matches a path against the scopes of the session's secrets; opens nothing"}
# Readers the enumeration must find, so that it cannot pass by finding none.
KNOWN_READERS = frozenset(
    {"read_text", "read_blob", "read_csv", "read_csv_auto", "read_json", "read_json_auto", "read_ndjson",
     "read_parquet", "parquet_scan", "glob", "sniff_csv", "parquet_metadata", "parquet_schema"}
)  # fmt: skip


def _table_functions() -> dict[str, list[tuple[list[str], list[str]]]]:
    """Every table function of the installed DuckDB: its overloads' parameter names and types."""
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute(
            "SELECT function_name, parameters, parameter_types FROM duckdb_functions() WHERE function_type = 'table'"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[list[str], list[str]]]] = {}
    for name, params, types in rows:
        out.setdefault(name, []).append((list(params), [str(t) for t in types]))
    return out


TABLE_FUNCTIONS = _table_functions()
PATH_FUNCTIONS = sorted(
    name for name, overloads in TABLE_FUNCTIONS.items() if any(p and p[0] in PATH_PARAMS for p, _ in overloads)
)
WITH_ARGUMENTS = sorted(name for name, overloads in TABLE_FUNCTIONS.items() if any(p for p, _ in overloads))
TARGETS = ("absolute", "cwd_tmp_relative", "cwd_tmp_absolute", "dotdot_from_temp_dir", "symlink_file", "symlink_dir",
           "glob_outside")  # fmt: skip


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _dummy(sql_type: str) -> str:
    t = sql_type.upper()
    if t == "BOOLEAN":
        return "false"
    if t.endswith("[]"):
        return "['x']"
    if t in ("VARCHAR", "JSON", "VARIANT"):
        return "'x'"
    return "1"


def _calls(name: str, target: str) -> list[str]:
    """``name(target, ...)`` with dummies for further parameters, shortest first, over every overload."""
    calls: list[str] = []
    for params, types in sorted(TABLE_FUNCTIONS[name], key=lambda o: len(o[0])):
        if not params:
            continue
        for arity in range(1, len(params) + 1):
            args = [_lit(target), *[_dummy(t) for t in types[1:arity]]]
            call = f"SELECT * FROM {name}({', '.join(args)})"
            if call not in calls:
                calls.append(call)
    return calls


def _outcome(session: SqlSession, name: str, target: str) -> tuple[str, NectarError | None]:
    """Run the first call of ``name`` on ``target`` that binds: (everything it printed, its error or None)."""
    last: NectarError | None = None
    for query in _calls(name, target):
        try:
            results = session.run(query, max_rows=100)
        except NectarError as exc:
            if "no function matches" in exc.message.lower() or "requires" in exc.message.lower():
                last = exc
                continue  # another arity or overload
            return exc.render(), exc
        return json.dumps([r.rows for r in results], default=str), None
    assert last is not None
    return last.render(), last


@pytest.fixture(scope="module")
def sandbox(small_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A session opened (as ``nectar sql`` opens it) in a working folder whose ``.tmp/`` holds a secret, over a
    corpus folder with symlinks to a secret outside it; and the paths every target reads."""
    base = tmp_path_factory.mktemp("sandbox")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.env").write_text(f"TOKEN={SECRET}\n", encoding="utf-8")
    (outside / "secret.csv").write_text(f"a,b\n{SECRET},1\n", encoding="utf-8")
    corpus = base / "corpus"
    shutil.copytree(small_corpus, corpus)
    (corpus / "leak.env").symlink_to(outside / "secret.env")
    (corpus / "leakdir").symlink_to(outside, target_is_directory=True)
    work = base / "work"
    (work / ".tmp").mkdir(parents=True)
    (work / ".tmp" / "secret.env").write_text(f"TOKEN={SECRET}\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        session = open_session(corpus)
        temp_dir = session.temp_dir
        up = "/..".join([""] * (len(temp_dir.parts)))  # from the temp dir back up to /
        targets = {
            "absolute": str(outside / "secret.env"),
            "cwd_tmp_relative": ".tmp/secret.env",
            "cwd_tmp_absolute": str(work / ".tmp" / "secret.env"),
            "dotdot_from_temp_dir": f"{temp_dir}{up}{outside / 'secret.env'}",
            "symlink_file": str(corpus / "leak.env"),
            "symlink_dir": str(corpus / "leakdir" / "secret.csv"),
            "glob_outside": str(outside / "*"),
        }
        try:
            yield {"session": session, "targets": targets, "corpus": corpus, "work": work, "outside": outside}
        finally:
            session.close()
    assert not temp_dir.exists(), "the session's temporary folder outlived it"


def test_the_enumeration_finds_the_readers() -> None:
    missing = KNOWN_READERS - set(PATH_FUNCTIONS)
    assert not missing, f"duckdb_functions() no longer shows these readers with a path parameter: {sorted(missing)}"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", PATH_FUNCTIONS)
def test_path_functions_read_nothing_outside_the_corpus(sandbox: dict[str, Any], name: str, target: str) -> None:
    shown, error = _outcome(sandbox["session"], name, sandbox["targets"][target])
    assert SECRET not in shown
    if name not in NOT_FILE_READERS:
        assert error is not None, f"{name} read {target} without an error"
        assert "permission error" in error.message, error.message


@pytest.mark.parametrize("name", WITH_ARGUMENTS)
def test_no_table_function_shows_a_secret(sandbox: dict[str, Any], name: str) -> None:
    """Every table function with a parameter, given the secret's path first: whatever it does, no secret."""
    for target in sandbox["targets"].values():
        shown, _ = _outcome(sandbox["session"], name, target)
        assert SECRET not in shown


def test_nested_query_is_sandboxed_too(sandbox: dict[str, Any]) -> None:
    inner = f"SELECT * FROM read_text({_lit(sandbox['targets']['absolute'])})"
    with pytest.raises(NectarError, match="permission error"):
        sandbox["session"].run(f"SELECT * FROM query({_lit(inner)})")


def test_only_the_private_temp_dir_is_allowed(sandbox: dict[str, Any]) -> None:
    session: SqlSession = sandbox["session"]
    (row,) = session.run(
        "SELECT current_setting('allowed_directories'), current_setting('temp_directory'),"
        " current_setting('enable_external_access'), current_setting('lock_configuration')"
    )[0].rows
    assert row == ([f"{session.temp_dir}/"], str(session.temp_dir), False, True)
    assert stat.S_IMODE(session.temp_dir.stat().st_mode) == 0o700
    assert not session.temp_dir.is_relative_to(sandbox["work"])
    assert list(session.temp_dir.iterdir()) == []  # nothing to read but DuckDB's own spill files


def test_cli_does_not_print_the_working_folders_tmp(
    sandbox: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The issue's reproduction, and no temporary folder left behind by the command."""
    monkeypatch.chdir(sandbox["work"])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for path in (".tmp/secret.env", str(sandbox["work"] / ".tmp" / "secret.env")):
        code, out, err = _run(
            capsys, "sql", f"SELECT * FROM read_text({_lit(path)})", "--corpus", str(sandbox["corpus"])
        )
        assert code == 2 and SECRET not in out + err and "Traceback" not in err
        assert "permission error" in err and "<query>:1:" in err
    assert _run(capsys, "sql", "SELECT count(*) AS n FROM traces", "--corpus", str(sandbox["corpus"]))[0] == 0
    assert list(tmp_path.iterdir()) == []


def test_a_part_file_symlinked_outside_is_refused(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(small_corpus, corpus)
    part = next(corpus.glob("*.parquet"))
    moved = tmp_path / "elsewhere.parquet"
    part.rename(moved)
    part.symlink_to(moved)
    with pytest.raises(NectarError, match="outside the corpus folder"):
        open_session(corpus)
    code, _, err = _run(capsys, "sql", "SELECT 1", "--corpus", str(corpus))
    assert code == 2 and "outside the corpus folder" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------------------------
# 3. Rules files: aliases are bounded as yaml.v3 bounds them


RULE_HEAD = """RulesVersion: 2
Samplers:
  __default__:
    RulesBasedSampler:
      Rules:
        - Name: bomb
          SampleRate: 1
          Conditions:
            - Field: http.route
              Operator: in
              Value:
"""


def _list_bomb(levels: int = 9, fan: int = 9) -> str:
    lines = ['                - &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"                - &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
    return RULE_HEAD + "\n".join(lines) + "\n"


def _map_bomb(levels: int = 10, fan: int = 8) -> str:
    lines = ["                - &m0 {k: lol}"]
    lines += [
        f"                - &m{i} {{{', '.join(f'k{j}: *m{i - 1}' for j in range(fan))}}}" for i in range(1, levels)
    ]
    return RULE_HEAD + "\n".join(lines) + "\n"


def _merge_bomb(levels: int = 12, fan: int = 6) -> str:
    lines = ["x-anchors:", "  m0: &m0 {a: 1, b: 2}"]
    for i in range(1, levels):
        merged = ", ".join([f"*m{i - 1}"] * 1)
        lines.append(f"  m{i}: &m{i} {{<<: {merged}, {', '.join(f'k{j}: *m{i - 1}' for j in range(fan))}}}")
    return "\n".join(lines) + "\n" + RULE_HEAD.replace("RulesVersion: 2\n", "") + "                - x\n"


BOMBS = {"list": _list_bomb, "map": _map_bomb, "merge": _merge_bomb}


@pytest.mark.parametrize("command", ["replay", "import"])
@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_alias_bomb_is_refused_quickly_and_in_bounded_memory(
    kind: str, command: str, small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = BOMBS[kind]()
    assert len(text) < 2000
    path = tmp_path / f"{kind}-bomb.yaml"
    path.write_text(text, encoding="utf-8")
    argv = [command, str(path), *(["--corpus", str(small_corpus)] if command == "replay" else [])]
    tracemalloc.start()
    started = time.monotonic()
    try:
        code, _, err = _run(capsys, *argv)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and "Traceback" not in err
    assert "document contains excessive aliasing" in err
    assert elapsed < 30, f"refused after {elapsed:.1f} s"
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MB allocated while refusing"
    m = re.search(re.escape(str(path)) + r":(\d+):(\d+): error", err)
    assert m, err
    line, col = int(m.group(1)), int(m.group(2))
    assert text.splitlines()[line - 1][col - 1] == "*"  # at the alias whose expansion crossed the bound
    assert re.search(r"^\s+\^+\s*$", err, re.MULTILINE)  # and underlined


def _boundary_doc(kind: str, pad: int) -> str:
    """The documents of the yaml.v3 boundary vectors: ``pad`` plain nodes, then nested aliases."""
    lines = ["pad: [" + ", ".join(str(i) for i in range(pad)) + "]"]
    if kind == "seq":
        lines.append("a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")
        lines.append("b: &b [" + ", ".join(["*a"] * 10) + "]")
        lines.append("c: &c [" + ", ".join(["*b"] * 12) + "]")
        lines.append("d: [" + ", ".join(["*c"] * 10) + "]")
    elif kind == "map":
        lines.append("a: &a {x1: 1, x2: 2, x3: 3, x4: 4, x5: 5}")
        lines.append("b: &b {" + ", ".join(f"y{i}: *a" for i in range(10)) + "}")
        lines.append("c: &c {" + ", ".join(f"z{i}: *b" for i in range(12)) + "}")
        lines.append("d: [" + ", ".join(["*c"] * 10) + "]")
    else:
        lines.append("a: &a {x1: 1, x2: 2, x3: 3, x4: 4, x5: 5}")
        lines.append("b: &b {<<: *a, " + ", ".join(f"y{i}: *a" for i in range(10)) + "}")
        lines.append("c: &c [" + ", ".join("{<<: [*b, *a], w: 1, x1: 0}" for _ in range(40)) + "]")
        lines.append("d: [" + ", ".join(["*c"] * 30) + "]")
    return "\n".join(lines) + "\n"


# (kind, pad, yaml.v3 refuses): the smallest padding each document needs to be accepted, measured by decoding these
# very documents with gopkg.in/yaml.v3 v3.0.1 into map[string]any (as Refinery's validation decodes rules).
YAML_V3_BOUNDARY = [
    ("seq", 109, True),
    ("seq", 110, False),
    ("map", 102, True),
    ("map", 103, False),
    ("merge", 1492, True),
    ("merge", 1493, False),
    ("seq", 0, True),
    ("merge", 5000, False),
]


@pytest.mark.parametrize(("kind", "pad", "refused"), YAML_V3_BOUNDARY)
def test_alias_bound_is_yaml_v3s(kind: str, pad: int, refused: bool) -> None:
    text = _boundary_doc(kind, pad)
    if not refused:
        assert loads(text, "b.yaml")["pad"] == list(range(pad))
        return
    with pytest.raises(NectarError, match="document contains excessive aliasing") as ei:
        loads(text, "b.yaml")
    span = ei.value.span
    assert span is not None and span.file == "b.yaml" and text.splitlines()[span.line - 1][span.column - 1] == "*"


def test_ordinary_anchors_still_load(small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Anchors, aliases and merge keys as people write them: 50 rules sharing their settings and conditions."""
    lines = ["RulesVersion: 2", "Samplers:", "  __default__:", "    RulesBasedSampler:", "      Rules:",
             "        - <<: &common {SampleRate: 1, Scope: span}", "          Name: r0",
             "          Conditions: &errors [{Field: error, Operator: '=', Value: true, Datatype: bool}]"]  # fmt: skip
    lines += [f"        - {{<<: *common, Name: r{i}, Conditions: *errors}}" for i in range(1, 50)]
    path = tmp_path / "anchors.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = _run(capsys, "replay", str(path), "--corpus", str(small_corpus), "--format", "json")
    assert code == 0, err
    assert [r["name"] for r in json.loads(out)["rules"]] == [f"r{i}" for i in range(50)]
    assert _run(capsys, "import", str(path))[0] == 0


def test_recursive_alias_is_positioned() -> None:
    with pytest.raises(NectarError, match="anchor 'x' value contains itself") as ei:
        loads("a: &x [1, *x]\n", "r.yaml")
    assert ei.value.span is not None and (ei.value.span.line, ei.value.span.column) == (1, 11)


def _policy(match: str) -> str:
    head = "nectar_policy{version,name,budget_per_second,rules}:\n  1\n  p\n  10000\n"
    rows = "  rules[2]{name,description,match,action,priority}:\n"
    return head + rows + f'    r1,d,"{match}",keep,100\n    rest,d,true,sample(0.01),0\n'


def test_policy_expansion_is_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A policy's `and` of `or`s would expand to 2**30 Refinery rules: refused before it expands."""
    match = " and ".join(f"(a{i} == 1 or b{i} == 2)" for i in range(30))
    path = tmp_path / "p.toon"
    path.write_text(_policy(match), encoding="utf-8")
    started = time.monotonic()
    code, _, err = _run(capsys, "check", str(path))
    assert code == 2 and "Refinery rules" in err and str(path) in err and time.monotonic() - started < 30


# ---------------------------------------------------------------------------------------------------------------
# 3. Mutated rules files never crash replay or import

FUZZ_SEED = int(os.environ["NECTAR_FUZZ_SEED"]) if os.environ.get("NECTAR_FUZZ_SEED", "").isdigit() else 20261206
SNIPPETS = [b"\t", b": ", b"- ", b"\n  ", b"'", b'"', b"&a ", b"*a", b" *a", b"<<: *a\n", b"&a [*a]", b"#", b"{", b"["]
SNIPPETS += [b"}", b"]", b"\xc3\xa9", b"\xff", b"\x00", b"\r\n", b"!!int ", b"!!str ", b"~", b"0x1F", b"1e400"]


def _fuzz_bases() -> list[bytes]:
    return [(DATA / "compile" / "liftable-rules.yaml").read_bytes(), _list_bomb(3, 3).encode()]


@st.composite
def _mutant(draw: st.DrawFn, bases: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 2))):
        op = draw(st.sampled_from(["flip", "truncate", "duplicate_line", "insert", "alias_value"]))
        if op == "flip" and data:  # mostly to another printable character, so that the YAML often still parses
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.one_of(st.integers(32, 126), st.integers(32, 126), st.integers(0, 255)))
        elif op == "truncate":
            data = data[: draw(st.integers(len(data) // 2, len(data)))]
        elif op == "duplicate_line":  # duplicated keys, most of the time
            lines = data.split(b"\n")
            at = draw(st.integers(0, len(lines) - 1))
            lines.insert(at, lines[at])
            data = bytearray(b"\n".join(lines))
        elif op == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.sampled_from(SNIPPETS))
        else:  # anchor a value and alias it further down
            lines = data.split(b"\n")
            values = [i for i, ln in enumerate(lines) if b": " in ln and not ln.rstrip().endswith(b":")]
            if len(values) >= 2:
                a, b = sorted(draw(st.lists(st.sampled_from(values), min_size=2, max_size=2, unique=True)))
                key, _, value = lines[a].partition(b": ")
                lines[a] = key + b": &v " + value
                lines[b] = lines[b].partition(b": ")[0] + b": *v"
                data = bytearray(b"\n".join(lines))
    return bytes(data)


def _fuzz_once(text: bytes, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutant-rules.yaml"
        path.write_bytes(text)
        for argv in (["replay", str(path), "--corpus", str(corpus)], ["import", str(path)]):
            try:
                code, _, err = _run(capsys, *argv)
            except Exception as exc:  # the property is precisely that nothing escapes
                pytest.fail(f"nectar {argv[0]} raised {type(exc).__name__}: {exc}\n--- input ---\n{text!r}")
            assert code in (0, 1, 2), (argv[0], code, err)
            assert "Traceback" not in err, err
            if code != 0:
                assert str(path) in err, f"nectar {argv[0]} exited {code} without naming the file:\n{err}"


@seed(FUZZ_SEED)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_mutated_rules_never_crash(data: st.DataObject, small_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fuzz_once(data.draw(_mutant(_fuzz_bases())), small_corpus, capsys)


@seed(FUZZ_SEED)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_mutated_example_rules_never_crash(
    data: st.DataObject, small_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = shared_path("refinery", "example_rules.yaml").read_bytes()
    _fuzz_once(data.draw(_mutant([example])), small_corpus, capsys)


# ---------------------------------------------------------------------------------------------------------------
# 11. Many rules


@pytest.fixture(scope="module")
def many_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("many") / "rules-2000.yaml"
    path.write_text(rules_yaml(2000, seed=11), encoding="utf-8")
    return path


ACTIONS = ["SampleRate: 1", "Drop: true", "SampleRate: 7", "Sampler: {DeterministicSampler: {SampleRate: 3}}"]


def _spread_rules(n: int, corpus: Corpus) -> str:
    """``n`` rules whose first matches spread over the whole file (thresholds descending through the traces'
    longest spans), with every action kind, span scope and a nested DeterministicSampler, so that chunk boundaries
    fall between deciding rules."""
    longest = corpus.scan().group_by("trace_id").agg(pl.col("duration_ms").max()).collect().get_column("duration_ms")
    ordered = sorted(longest.drop_nulls().to_list(), reverse=True)
    out = ["RulesVersion: 2", "Samplers:", "  __default__:", "    RulesBasedSampler:", "      Rules:"]
    for i in range(n):
        threshold = ordered[i * len(ordered) // n] - 1e-6
        action = ACTIONS[i % len(ACTIONS)]
        scope = "          Scope: span\n" if i % 5 == 0 else ""
        cond = f"{{Field: duration_ms, Operator: '>', Value: {threshold:.3f}, Datatype: float}}"
        out.append(f"        - Name: r{i}\n          {action}\n{scope}          Conditions:\n            - {cond}")
        if i % 3 == 0:
            out.append(f"            - {{Field: service.name, Operator: '!=', Value: svc-{i}}}")
    out.append("        - Name: rest\n          SampleRate: 10")
    return "\n".join(out) + "\n"


def _results(rules: Any, corpus: Corpus, engine: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    got = evaluate(rules, corpus, engine=engine, with_matches=True)
    assert got.matches is not None
    return got.decisions, got.matches


def test_2000_rules_all_engines_agree(many_rules: Path, small_corpus: Path) -> None:
    rules, corpus = load_rules(many_rules), Corpus.open(small_corpus)
    assert chunks.CHUNK_RULES < 2000  # the vectorized engines evaluate these in chunks
    want = _results(rules, corpus, "reference")
    assert want[1].width == 2001
    for engine in ("duckdb", "polars"):
        got = _results(rules, corpus, engine)
        assert got[0].equals(want[0]), engine
        assert got[1].equals(want[1]), engine


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_chunks_decide_as_one_query(engine: str, small_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = Corpus.open(small_corpus)
    rules = load_rules(_spread_rules(300, corpus), "spread.yaml", accept_downstream_deterministic=True)
    monkeypatch.setattr(chunks, "CHUNK_RULES", 10_000)
    one = _results(rules, corpus, engine)
    assert one[0].get_column("rule_index").n_unique() > 20  # decisions spread over many rules
    for size in (1, 7, 64, 299):
        monkeypatch.setattr(chunks, "CHUNK_RULES", size)
        got = _results(rules, corpus, engine)
        assert got[0].equals(one[0]) and got[1].equals(one[1]), size
    assert _results(rules, corpus, "reference")[0].equals(one[0])


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_chunks_keep_probes_apart(engine: str, small_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``evaluate_with_probes``: the probes (rules after ``decide``) never decide, in any chunk."""
    corpus = Corpus.open(small_corpus)
    rules = load_rules(_spread_rules(40, corpus), "spread.yaml", accept_downstream_deterministic=True)
    sampler = rules.sampler_for(None).choice
    assert isinstance(sampler, RulesBasedSampler)
    head, probes = RulesBasedSampler(sampler.rules[:25]), sampler.rules[25:]
    monkeypatch.setattr(chunks, "CHUNK_RULES", 10_000)
    want = evaluate_with_probes(head, probes, corpus, engine=engine)
    monkeypatch.setattr(chunks, "CHUNK_RULES", 6)
    got = evaluate_with_probes(head, probes, corpus, engine=engine)
    assert got[0].decisions.equals(want[0].decisions) and got[1].equals(want[1])
    assert got[0].matches is not None and want[0].matches is not None and got[0].matches.equals(want[0].matches)


def test_2000_rules_replay_and_import(
    many_rules: Path, small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "replay", str(many_rules), "--corpus", str(small_corpus), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert len(report["rules"]) == 2000 and report["totals"]["traces"] == Corpus.open(small_corpus).manifest.traces
    assert sum(r["decided"]["traces"] for r in [*report["rules"], report["default"]]) == report["totals"]["traces"]
    policy = tmp_path / "imported.toon"
    code, _, err = _run(capsys, "import", str(many_rules), "-o", str(policy))
    assert code == 0, err
    compiled = compile_policy(policy, Config(), rules_path=tmp_path / "r.yaml", lock_path=tmp_path / "l.lock",
                              prove=False)  # fmt: skip
    corpus = Corpus.open(small_corpus)
    want = evaluate(load_rules(many_rules), corpus, "polars").decisions
    got = evaluate(load_rules(compiled.rules_text), corpus, "polars").decisions
    assert got.select("trace_id", "keep", "rate").equals(want.select("trace_id", "keep", "rate"))


def test_many_rules_benchmark_case_runs(tmp_path: Path) -> None:
    """The benchmark case works (at toy size; its timing is the benchmark's business, not pytest's)."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "benchmarks", "--cases", "many_rules", "--rules", "150", "--repeat", "1"]
    cmd += ["--out", str(out), "--cache", str(tmp_path / "cache"), "-q"]
    subprocess.run(cmd, cwd=REPO, check=True, timeout=300)
    entries = json.loads((out / "results.json").read_text())["entries"]
    got = {(e["case"], e["size"], e["variant"]) for e in entries}
    for variant in ("nectar import", "nectar replay --engine duckdb", "nectar replay --engine polars"):
        assert ("many_rules", 150, variant) in got
    assert "Many rules" in (out / "RESULTS.md").read_text()
