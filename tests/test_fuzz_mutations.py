"""No-crash fuzzing past the front doors: VALID policies and Refinery rules files, mutated at the line and token
level (delete, duplicate, swap lines; replace a cell, value, operator or number with a tricky one; re-indent;
truncate), so that most mutants still get through the TOON reader / the YAML loader and reach the code behind it.

Each mutant goes through the library (the readers, ``check_policy``, ``format_policy``; the rules loader,
validator, lints and ``import_rules``) and through the CLI in-process (``nectar check``, ``nectar fmt --check``,
``nectar import``). The properties:

* nothing but a :class:`~nectar.errors.NectarError` ever escapes; the CLI exits 0, 1 or 2 with no traceback;
* a syntax error (TOON reader, YAML loader) carries a ``file:line:col`` position, and the CLI prints it;
* what is accepted is consistent: a formatted policy reads back to the same policy, an imported policy reads;
* at least 30% of the mutants get past the front door (the fuzzer really reaches the deeper code).

The seed is fixed (``FIXED_SEED``) so the gate stays deterministic while known findings are being fixed;
``NECTAR_FUZZ_SEED=random`` draws a fresh one (printed at the end of the run), ``NECTAR_FUZZ_SEED=<seed>`` replays it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, note, seed, settings
from hypothesis import strategies as st

from nectar.cli import main
from nectar.compile import rules_for
from nectar.config import Config
from nectar.errors import NectarError
from nectar.policy import format_policy, ir, parse_policy
from nectar.policy.check import check_policy
from nectar.policy.lift import import_rules
from nectar.policy.lower import lower_policy
from nectar.policy.toon import parse_toon
from nectar.refinery.emit import emit_rules
from nectar.refinery.lints import lint_rules
from nectar.refinery.loader import load_rules, load_rules_with_positions, validate_rules
from nectar.refinery.yamlv3 import loads
from tests.conftest import SHARED, run_seed

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
FIXED_SEED = 20240611
if os.environ.get("NECTAR_FUZZ_SEED", "").strip() == "random":
    os.environ["NECTAR_FUZZ_SEED"] = ""
else:
    os.environ.setdefault("NECTAR_FUZZ_SEED", str(FIXED_SEED))
SEED = run_seed("NECTAR_FUZZ_SEED")
REPLAY = f"[NECTAR_FUZZ_SEED={SEED}]"
MIN_DEEP_FRACTION = 0.30

POLICY_SEEDS = sorted([*(DATA / "policy" / "identity").glob("*.toon"), *(DATA / "compile").glob("*.toon")])
RULES_SEEDS = sorted(
    [
        DATA / "compile" / "liftable-rules.yaml",
        *(REPO / "tests" / "golden").glob("*.rules.yaml"),
        *[p for p in [SHARED / "refinery" / "example_rules.yaml"] if p.exists()],  # optional: more shapes
    ]
)
POLICY_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in POLICY_SEEDS}
RULES_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in RULES_SEEDS}

# ------------------------------------------------------------------------------------------------- mutations

TRICKY = [
    "-1", "0", "-0", "-0.0", "1e309", "-1e309", "1e-400", "nan", "NaN", ".nan", "inf", ".inf", "2**63",
    "9223372036854775808", "18446744073709551616", "99999999999999999999999", "0x10", "0o17", "017", "0b101",
    "1_000", "1/3", "1/0", "0.0001", "100%", "101%", "yes", "no", "on", "~", "null", "Null", "true", "True",
    "false", '"', '""', "'", "''", '"a\\"b"', '"\\u0000"', "[", "]", "[]", "{", "}", "{}", "{a: b}", "[a, [b]]",
    ":", ": ", "- ", "-", "#", "# c", "|", ">", "%", "@", "`", "``", "\\", ",", ",,", "(", ")", "()", "&a x",
    "*alias", "&a [*a]", "!!binary aGVsbG8=", "!!binary", "!!str 5", "!!int x", "!!float", "!!map", "!!set {a}",
    "!foo", "<<: *a", "? x", "2026-01-01", "2026-02-30T00:00:00Z", "12:30", "1h30m", "5s", "5sec", "-5s",
    "99999999999h", "x" * 3000, "服务", "🐝", "\u202etxt", "\u00a0", "e\u0301", "\t", "a\tb", "\x0b", "\x7f",
    "keep", "drop", "sample(0)", "sample(2)", "sample(1/0)", "sample(nan)", "sample(1e-30)", "sample(-1)",
    "deterministic(rate=0)", "deterministic(rate=1e309)", "throughput(per_second=-1)", "throughput()",
    "dynamic(rate=1, keys=())", "dynamic(rate=10, keys=(a, a))", "true", "span(", "span(true)", "exists()",
    "not not true", "has_root()", "span_count() > 1e309", "duration > 1e309s", 'a matches "("',
    'a matches "(?<=x)"', 'a matches "\\\\"', 'a in ()', "root.root.x == 1", "?.NUM_DESCENDANTS", "meta.",
    "RulesBasedSampler", "DeterministicSampler", "Rules", "Conditions", "Samplers", "RulesVersion", "Scope",
]  # fmt: skip
OPERATORS = [
    ">=", "<=", "==", "!=", ">", "<", "=", "=>", "in", "not in", "contains", "not contains", "starts_with",
    "ends_with", "matches", "and", "or", "not", "starts-with", "does-not-contain", "exists", "not-exists",
    "has-root-span", "not-in", "does-not-start-with", "ends-with",
]  # fmt: skip
NUMBERS = ["0", "-1", "1", "2", "3.0", "0.5", "100", "101", "1e309", "1e-9", "-0.0", "9223372036854775808",
           "99999999999999999999", "1_000", "0x1F", "007", "1.", ".5", "1e3"]  # fmt: skip
_OP_RE = re.compile("|".join(re.escape(o) for o in sorted(OPERATORS, key=len, reverse=True)))
_NUM_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_TOKEN_RE = re.compile(r'"(?:\\.|[^"\\])*"|[\w.?-]+|[^\s\w]+')


def _cells(line: str) -> list[tuple[int, int]]:
    """Spans of the comma-separated cells of a TOON row (quotes respected)."""
    out, start, quoted, i = [], 0, False, 0
    while i < len(line):
        c = line[i]
        if c == "\\" and quoted:
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == "," and not quoted:
            out.append((start, i))
            start = i + 1
        i += 1
    out.append((start, len(line)))
    return out


def _value_spans(line: str) -> list[tuple[int, int]]:
    """Where a value sits on a line: after ``key:`` or ``- `` (YAML), and each comma-separated cell (TOON)."""
    spans = []
    m = re.match(r"^(\s*(?:- )?[^:#]*?:\s*)(\S.*)$", line)
    if m:
        spans.append((m.start(2), len(line)))
    m = re.match(r"^(\s*- )(\S.*)$", line)
    if m:
        spans.append((m.start(2), len(line)))
    body = len(line) - len(line.lstrip())
    spans += [(body + a, body + b) for a, b in _cells(line[body:])]
    return spans


KINDS = ["delete", "duplicate", "swap", "value", "value", "token", "token", "operator", "operator", "number",
         "number", "indent", "insert", "truncate"]  # fmt: skip
_TABLE_RE = re.compile(r"^(\s*[^\s:\[{\"][^:\[{]*?\[)(\d+)(\][^:]*:\s*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _recount_tables(lines: list[str]) -> list[str]:
    """Make every TOON ``key[N]...:`` header count the rows that now follow it (after rows were deleted or
    duplicated), so that the mutant gets past the reader's row count and into the policy loader."""
    out = list(lines)
    for i, line in enumerate(out):
        m = _TABLE_RE.match(line)
        if not m:
            continue
        n = 0
        for row in out[i + 1 :]:
            if not row.strip() or _indent(row) <= _indent(line):
                break
            n += 1
        out[i] = f"{m.group(1)}{n}{m.group(3)}"
    return out


@st.composite
def mutants(draw: st.DrawFn, texts: dict[str, str], toon: bool) -> tuple[str, str, list[str]]:
    """(seed file name, mutated text, the mutations applied): 1 to 3 line/token-level mutations; for TOON, mostly
    with the tables' row counts brought in line afterwards."""
    name = draw(st.sampled_from(sorted(texts)))
    lines = texts[name].split("\n")
    applied: list[str] = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 2, 3]))):
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        rows = [k for k, row in enumerate(lines) if _indent(row) >= 4 and row.strip()]  # table rows, rule keys
        if rows and draw(st.integers(0, 3)) > 0:  # mostly the body, where the deeper code reads
            i = draw(st.sampled_from(rows))
        line = lines[i] if lines else ""
        kind = draw(st.sampled_from(KINDS))
        if kind == "delete" and lines:
            del lines[i]
        elif kind == "duplicate" and lines:
            lines.insert(i, line)
        elif kind == "swap" and len(lines) > 1:
            same = [k for k, row in enumerate(lines) if _indent(row) == _indent(line) and row.strip()]
            j = draw(st.sampled_from(same)) if draw(st.booleans()) else draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "value" and (spans := _value_spans(line)):
            a, b = draw(st.sampled_from(spans))
            value = draw(st.sampled_from(TRICKY))
            if draw(st.booleans()):  # quoted (TOON and YAML double quotes escape alike): past the reader more often
                value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines[i] = line[:a] + value + line[b:]
        elif kind == "token" and (toks := list(_TOKEN_RE.finditer(line))):
            t = draw(st.sampled_from(toks))
            lines[i] = line[: t.start()] + draw(st.sampled_from(TRICKY)) + line[t.end() :]
        elif kind == "operator" and (ops := list(_OP_RE.finditer(line))):
            t = draw(st.sampled_from(ops))
            lines[i] = line[: t.start()] + draw(st.sampled_from(OPERATORS)) + line[t.end() :]
        elif kind == "number" and (nums := list(_NUM_RE.finditer(line))):
            t = draw(st.sampled_from(nums))
            lines[i] = line[: t.start()] + draw(st.sampled_from(NUMBERS)) + line[t.end() :]
        elif kind == "indent":
            body, width = line.lstrip(" "), _indent(line)
            lines[i] = draw(st.sampled_from([" " * (width + 1), " " * max(0, width - 1), " " * (width + 2),
                                             " " * max(0, width - 2), "\t" + " " * width, ""])) + body  # fmt: skip
        elif kind == "insert":
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + draw(st.sampled_from(TRICKY)) + line[at:]
        elif kind == "truncate":
            text = "\n".join(lines)
            lines = text[: draw(st.integers(0, len(text)))].split("\n")
        else:
            continue
        applied.append(f"{kind}@{i + 1}")
    if toon and draw(st.integers(0, 3)) > 0:
        lines = _recount_tables(lines)
        applied.append("recount")
    text = "\n".join(lines)
    return name, text, applied


# ---------------------------------------------------------------------------------------------------- harness


def cli(argv: list[str]) -> tuple[int, str, str]:
    """``nectar ARGV`` in-process: (exit code, stdout, stderr). Anything but a handled exit propagates."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_cli_clean(argv: list[str], code: int, err: str) -> None:
    assert code in (0, 1, 2), f"{REPLAY} nectar {' '.join(argv)}: exit {code}\n{err}"
    assert "Traceback" not in err, f"{REPLAY} nectar {' '.join(argv)} printed a traceback:\n{err}"


def assert_positioned(exc: NectarError, path: Path, what: str) -> None:
    """A syntax error names its place: a span, rendered as ``path:line:col:`` on the first line."""
    assert exc.span is not None, f"{REPLAY} {what} error without a position: {exc.message!r}"
    first = exc.render().splitlines()[0]
    assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: error: ", first), f"{REPLAY} {what}: {first!r}"


def run_fuzz(name: str, strategy: st.SearchStrategy[tuple[str, str, list[str]]], body: Callable[..., str]) -> None:
    """Run ``body(path, text)`` (returns the stage reached) over the mutants; assert the deep-reach fraction."""
    stages: Counter[str] = Counter()

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(strategy)
    def fuzz(mutant: tuple[str, str, list[str]]) -> None:
        source, text, applied = mutant
        note(f"{REPLAY} seed file {source}, mutations {applied}")
        stage = body(source, text)
        stages[stage] += 1
        event(stage)

    fuzz()
    total = sum(stages.values())
    front_door = stages["front door"]
    deep = (total - front_door) / total
    print(f"\n{name}: {total} mutants, stages {dict(sorted(stages.items()))}, past the front door {deep:.0%}")
    assert deep >= MIN_DEEP_FRACTION, f"{REPLAY} only {deep:.0%} of {name} mutants got past the front door: {stages}"


EXAMPLES = {"policies": 350, "rules": 150}  # about 10 s each on two shared cores


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no nectar.toml above: the CLI runs with the defaults
    return tmp_path


# --------------------------------------------------------------------------------------------------- policies


def policy_case(path: Path, text: str) -> str:
    """One policy mutant through the library and the CLI; returns the stage it reached."""
    path.write_text(text, encoding="utf-8")
    stage = "ok"
    try:
        parse_toon(text, str(path))
    except NectarError as exc:
        assert_positioned(exc, path, "TOON syntax")
        stage = "front door"
    if stage == "ok":
        try:
            policy = parse_policy(text, str(path))
        except NectarError as exc:
            assert_positioned(exc, path, "policy")
            stage = "policy fields"
        else:
            formatted = format_policy(policy)
            assert parse_policy(formatted, str(path)) == policy, f"{REPLAY} the formatted policy reads differently"
            assert format_policy(parse_policy(formatted)) == formatted, f"{REPLAY} fmt is not idempotent"
            try:
                check_policy(path, Config())
            except NectarError as exc:
                assert_positioned(exc, path, "check")
                stage = "check"
            else:
                stage = compiled_stage(policy)
    for argv in (["check", str(path)], ["fmt", "--check", str(path)]):
        code, _, err = cli(argv)
        assert_cli_clean(argv, code, err)
        if stage in ("front door", "policy fields") or (stage == "check" and argv[0] == "check"):
            assert code == 2 and re.match(rf"{re.escape(str(path))}:\d+:\d+: error: ", err), f"{REPLAY} {argv}: {err!r}"
        elif argv[0] == "check":
            assert code == 0, f"{REPLAY} check_policy accepts what `nectar check` rejects:\n{err}"
    return stage


def compiled_stage(policy: ir.Policy) -> str:
    """A policy `nectar check` accepts lowers to rules that Refinery's validator accepts and that load back to the
    same rules (``nectar compile --no-prove`` without the files); a refusal is a NectarError."""
    try:
        rules = rules_for(policy, lower_policy(policy), ("__default__",))
    except NectarError:
        return "refused by compile"
    text = emit_rules(rules)
    assert validate_rules(text, "compiled.yaml") == [], f"{REPLAY} compiled rules do not validate:\n{text}"
    assert load_rules(text, "compiled.yaml") == rules, f"{REPLAY} compiled rules read back differently:\n{text}"
    return "ok"


def test_policy_mutants_never_crash(workdir: Path) -> None:
    run_fuzz("policies", mutants(POLICY_TEXTS, toon=True), lambda source, text: policy_case(workdir / source, text))


# ------------------------------------------------------------------------------------------------ rules files


def rules_case(path: Path, text: str) -> str:
    """One rules-file mutant through the loader, validator, lints, import (library and CLI); its stage."""
    path.write_text(text, encoding="utf-8")
    try:
        loads(text, str(path))
    except NectarError as exc:
        assert_positioned(exc, path, "YAML syntax")
        stage = "front door"
    else:
        stage = "validation"
    errors = validate_rules(path)
    if stage == "front door":
        assert len(errors) == 1, f"{REPLAY} a YAML syntax error is the only error: {errors}"
    for e in errors:
        assert_positioned(e, path, "validation")
    rules_file = None
    if not errors:
        stage = "rules shape"
        try:
            rules_file, positions = load_rules_with_positions(path)
        except NectarError as exc:
            assert_positioned(exc, path, "rules shape")
        else:
            stage = "loaded"
            lint_rules(rules_file, positions)
    envs = ["__default__", *(sorted(rules_file.samplers) if rules_file else []), "production"]
    for env in dict.fromkeys(envs):
        try:
            lifted = import_rules(path, env, Config())
        except NectarError:  # a refusal, or no such environment: not always positioned (see the report)
            lifted = None
        else:
            stage = "imported"
            policy = parse_policy(lifted.text, "imported.toon")  # nectar's own output always reads back...
            compiled_stage(policy)  # ...and compiles to rules Refinery accepts
        argv = ["import", str(path), "--env", env]
        code, out, err = cli(argv)
        assert_cli_clean(argv, code, err)
        assert (code == 0) == (lifted is not None), f"{REPLAY} import library vs CLI disagree ({code}):\n{err}"
        if lifted is not None:
            assert out == lifted.text, f"{REPLAY} `nectar import` prints something else than import_rules"
        elif stage in ("front door", "validation", "rules shape"):
            assert re.match(rf"{re.escape(str(path))}:\d+:\d+: error: ", err), f"{REPLAY} {argv}: {err!r}"
    return stage


def test_rules_mutants_never_crash(workdir: Path) -> None:
    run_fuzz("rules", mutants(RULES_TEXTS, toon=False), lambda source, text: rules_case(workdir / source, text))


# ------------------------------------------------------------------------------------- crashes found by this fuzzer


@pytest.mark.parametrize("char", ["\x7f", "\x0b", "\x00"], ids=["DEL", "VT", "NUL"])
def test_control_character_in_rules_file_is_a_nectar_error(workdir: Path, char: str) -> None:
    path = workdir / "rules.yaml"
    path.write_text(f"RulesVersion: 2{char}\n", encoding="utf-8")
    errors = validate_rules(path)
    assert len(errors) == 1, errors
    assert_positioned(errors[0], path, "YAML reader")
    assert ":1:16:" in errors[0].render().splitlines()[0]
    argv = ["import", str(path)]
    code, _, err = cli(argv)
    assert_cli_clean(argv, code, err)
