"""A small mutation check: do the tests catch the bugs we know are easy to make?

Run it from the repository root, in the project's venv::

    python -m tests.mutants                      # every mutant (takes a while: one targeted pytest run each)
    python -m tests.mutants --only first-root-polars budget-variance
    python -m tests.mutants --list               # the mutants, and whether each snippet is still found
    python -m tests.mutants --json /tmp/mutants.json --timeout 900

What it does:

1. checks that every mutant's snippet occurs **exactly once** in its file (a refactor that moves or rewrites the
   code must update :data:`MUTANTS`; the script refuses to run otherwise, exit 2). ``tests/test_mutants.py`` runs
   the same check in the normal suite, so the list cannot rot silently;
2. copies ``nectar/`` and ``grammars/`` to a scratch directory and runs pytest from the repository root with
   ``PYTHONPATH=<scratch>`` (``PYTHONSAFEPATH=1``, so neither ``python -m`` nor a child process puts the checkout
   first): ``import nectar`` resolves to the copy. That is verified once up front and again in every pytest run (a
   tiny plugin in the scratch directory records ``nectar.__file__``); the checkout itself is never modified;
3. plants each mutant alone in the copy (one snippet replaced), runs only the test files the mutant lists (or the
   whole suite for ``"all"``) with ``CI=true`` (tests that need ``../shared`` fail instead of skipping), fixed
   hypothesis seeds (``NECTAR_DIFF_SEED``/``NECTAR_FUZZ_SEED``, overridable) and a per-run timeout, and restores
   the file;
4. runs the unmutated copy once over the test files that failed under some mutant, and discounts tests that fail
   there too (pre-existing failures are not kills);
5. prints a table: per mutant, the test files that killed it with their count of failing tests.

A mutant is **killed by a file** when at least one test of that file fails with the mutant planted. A timeout or a
crash counts against the file of the test that was running when it happened (recorded by the plugin), else the
mutant is reported as an error. The bar: every mutant is killed by at least 2 independent test files. Exit status
0 when every mutant meets it, 1 when any mutant survives, is killed by a single file or errored, 2 on a setup error
(a snippet not found exactly once, ``nectar`` not importing from the copy).

Nothing is written into the repository: bytecode is off (``PYTHONDONTWRITEBYTECODE=1``), pytest's cache provider is
off, hypothesis' example database goes to the scratch directory, JUnit XML and logs go to the scratch directory
(removed at the end unless ``--keep``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COPIED = ("nectar", "grammars")  # what the scratch copy holds (nectar/policy/expr.py finds grammars/ beside nectar/)
ALL = "all"
DEFAULT_TIMEOUT = 600.0
BAR = 2  # a mutant must be killed by at least this many test files
DEFAULT_SEEDS = {"NECTAR_DIFF_SEED": "20240611", "NECTAR_FUZZ_SEED": "20240611"}
PROBE = "_nectar_mutants_probe"


@dataclass(frozen=True, slots=True)
class Mutant:
    """One planted bug: ``old`` (which must occur exactly once in ``file``) becomes ``new``."""

    id: str
    description: str
    file: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...] | str  # test files (relative to the repository root), or "all" for the whole suite


# Test files per area (a mutant runs the files of the code it touches).
_ENGINES = (  # the Polars and DuckDB engines: tests that decide traces with them
    "tests/test_engine_fixed_cases.py",
    "tests/test_engine_grid.py",
    "tests/test_differential.py",
    "tests/test_engine_conformance.py",
    "tests/test_engine_edges.py",
    "tests/test_engine_probes.py",
    "tests/test_prove.py",
    "tests/test_replay.py",
    "tests/test_explain.py",
)
_REFERENCE = (  # the reference engine: tests that decide traces with it
    "tests/test_engine_fixed_cases.py",
    "tests/test_engine_grid.py",
    "tests/test_differential.py",
    "tests/test_reference.py",
    "tests/test_reference_vectors.py",
    "tests/test_engine_edges.py",
    "tests/test_lowering.py",
    "tests/test_replay.py",
)
_BUDGET = (  # the prover's budget figures and what reports them
    "tests/test_budget_figures.py",
    "tests/test_prove.py",
    "tests/test_explain.py",
    "tests/test_verify.py",
)

_SAMPLERS = ("tests/test_dynsampler.py", "tests/test_stateful.py")  # the stateful samplers and trace keys
MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "untyped-ge-false",
        "vectorized engines: untyped bool `>= false` always false (_bool_cmp)",
        "nectar/engine/lowering.py",
        '"ge": Cmp(View.RAW, "eq", True) if b else Const(True),',
        '"ge": Cmp(View.RAW, "eq", True) if b else Const(False),',
        _ENGINES,
    ),
    Mutant(
        "untyped-ge-false-reference",
        "reference engine: untyped `>= false` always false (conditionMatchesValue after compare())",
        "nectar/engine/reference.py",
        "        return c is not None and _compare_holds(cond.operator, c)\n",
        "        return c is not None and _compare_holds(cond.operator, c)"
        " and not (cond.operator is Operator.GE and cond.value is False)\n",
        _REFERENCE,
    ),
    Mutant(
        "compare-nil-ge",
        "vectorized engines: compare(x, nil) loses `>=` (no Value, non-null span value)",
        "nectar/engine/lowering.py",
        'return Const(m.op in ("ne", "gt", "ge"))',
        'return Const(m.op in ("ne", "gt"))',
        _ENGINES,
    ),
    Mutant(
        "compare-nil-ge-reference",
        "reference engine: compare(x, nil) loses `>=` (no Value, non-null span value)",
        "nectar/engine/reference.py",
        "        return c is not None and _compare_holds(cond.operator, c)\n",
        "        return c is not None and _compare_holds(cond.operator, c)"
        " and not (cond.operator is Operator.GE and cond.value is None and value is not None)\n",
        _REFERENCE,
    ),
    Mutant(
        "first-root-polars",
        "Polars engine: the FIRST root by arrival instead of the last",
        "nectar/engine/polars_engine.py",
        "pl.col(c).sort_by(ARRIVAL).last()",
        "pl.col(c).sort_by(ARRIVAL).first()",
        _ENGINES,
    ),
    Mutant(
        "first-root-duckdb",
        "DuckDB engine: the roots CTE orders arrival ascending (first root instead of last)",
        "nectar/engine/duckdb_engine.py",
        'ident(ARRIVAL), " DESC) = 1)"))',
        'ident(ARRIVAL), " ASC) = 1)"))',
        _ENGINES,
    ),
    Mutant(
        "first-root-reference",
        "reference engine: trace.root is the first arriving root instead of the last",
        "nectar/engine/reference.py",
        "self.root = roots[-1] if roots else None",
        "self.root = roots[0] if roots else None",
        _REFERENCE,
    ),
    Mutant(
        "span-scope-as-trace",
        "plan: a span-scope rule aggregated like a trace-scope one (each condition on any span)",
        "nectar/engine/plan.py",
        'elif rule.scope == "span":  # all conditions on one span, for any span',
        'elif rule.scope == "spans":  # all conditions on one span, for any span',
        _ENGINES,
    ),
    Mutant(
        "span-scope-as-trace-reference",
        "reference engine: a span-scope rule matched condition by condition on any span",
        "nectar/engine/reference.py",
        "return any(all(cc.holds_on(trace, s) for cc in self.conditions) for s in trace.spans)",
        "return all(any(cc.holds_on(trace, s) for s in trace.spans) for cc in self.conditions)",
        _REFERENCE,
    ),
    Mutant(
        "typed-float-ne-nan-polars",
        "Polars engine: Datatype float `!=` false for a NaN span value (Go: NaN != x is true)",
        "nectar/engine/polars_engine.py",
        'res = (ops[node.op] | nan) if node.op == "ne" else (ops[node.op] & ~nan)',
        "res = ops[node.op] & ~nan",
        _ENGINES,
    ),
    Mutant(
        "typed-float-ne-nan-duckdb",
        "DuckDB engine: Datatype float `!=` false for a NaN span value (Go: NaN != x is true)",
        "nectar/engine/duckdb_engine.py",
        'res = cat(x, " <> ", lit, " OR ", nan)',
        'res = cat(x, " <> ", lit, " AND NOT ", nan)',
        _ENGINES,
    ),
    Mutant(
        "go-v-fast-bounds",
        "%v float fast path used up to 1e7 (Go prints 1e+06 from 1e6 on)",
        "nectar/engine/lowering.py",
        "if value.__class__ is float and 1e-4 <= abs(value) < 1e6:",
        "if value.__class__ is float and 1e-4 <= abs(value) < 1e7:",
        (*_ENGINES, "tests/test_refinery_gostr.py", "tests/test_reference.py"),
    ),
    Mutant(
        "rule-drops-zero-rate",
        "Rule.drops: SampleRate 0 (absent) no longer drops",
        "nectar/refinery/model.py",
        "return self.drop or self.sample_rate <= 0",
        "return self.drop or self.sample_rate < 0",
        ALL,
    ),
    Mutant(
        "keep-probability",
        "keep probability of a sampled trace is 1 - 1/rate instead of 1/rate",
        "nectar/engine/decision.py",
        "sampled = pl.when(rate > 0).then(1.0 / rate).otherwise(0.0)",
        "sampled = pl.when(rate > 0).then(1.0 - 1.0 / rate).otherwise(0.0)",
        (*_BUDGET, "tests/test_replay.py", "tests/test_explain_english.py", "tests/test_compile.py"),
    ),
    Mutant(
        "deterministic-limit-off-by-one",
        "gostr.deterministic_limit one too large (keeps a hash equal to MaxUint32/rate + 1)",
        "nectar/refinery/gostr.py",
        "return UINT32_MAX // (rate & UINT32_MAX or 1)",
        "return UINT32_MAX // (rate & UINT32_MAX or 1) + 1",
        ALL,
    ),
    Mutant(
        "budget-sqrt-sample-rate",
        "budget 95% bound without the corpus sample rate inside the square root",
        "nectar/prove/checks.py",
        "math.sqrt(sample_rate * v_corpus)",
        "math.sqrt(v_corpus)",
        _BUDGET,
    ),
    Mutant(
        "budget-variance",
        "budget variance n p (1-p) instead of n^2 p (1-p)",
        "nectar/prove/checks.py",
        "var = n * n * p * (1.0 - p)",
        "var = n * p * (1.0 - p)",
        _BUDGET,
    ),
    Mutant(
        "ema-age-out-inclusive",
        "EMA samplers age a key out at AgeOutValue itself (the library keeps it: new < AgeOutValue)",
        "nectar/refinery/dynsampler.py",
        "        if new < s.age_out:",
        "        if new <= s.age_out:",
        _SAMPLERS,
    ),
    Mutant(
        "carry-over-order",
        "calculateSampleRates walks keys in reverse order (the unused budget goes to the wrong keys)",
        "nectar/refinery/dynsampler.py",
        "saved = calculate_sample_rates(ratio, ids, [moving[i] for i in ids])",
        "saved = calculate_sample_rates(ratio, ids[::-1], [moving[i] for i in ids[::-1]])",
        _SAMPLERS,
    ),
    Mutant(
        "windowed-includes-current",
        "WindowedThroughput counts the current, partial index in its window",
        "nectar/refinery/dynsampler.py",
        "                if ix <= start_idx:",
        "                if ix <= cur:",
        _SAMPLERS,
    ),
    Mutant(
        "key-writes-empty-string",
        "trace keys write an empty-string value (Refinery's prevStr starts empty, so it never does)",
        "nectar/engine/stateful.py",
        'if v_of[vid] != "":',
        "if True:",
        _SAMPLERS,
    ),
    Mutant(
        "key-first-root",
        "trace keys read root. fields from the first root to arrive instead of the last",
        "nectar/engine/stateful.py",
        "last = pl.col(ARRIVAL).arg_max()",
        "last = pl.col(ARRIVAL).arg_min()",
        _SAMPLERS,
    ),
    Mutant(
        "stateful-guarantees-rate-1",
        "a stateful sampler's trace at replayed rate 1 counts as always kept",
        "nectar/prove/core.py",
        'always = dec.get_column("keep") == "true"',
        "always = dec.select(keep_probability()).to_series() >= 1.0",
        (*_SAMPLERS, "tests/test_prove.py"),
    ),
)


class MutantError(Exception):
    """The mutant list does not fit the source (a snippet is not found exactly once), or the setup is wrong."""


def mutant_tests(m: Mutant) -> list[str]:
    """The pytest arguments that select ``m``'s tests (``[]`` for the whole suite)."""
    return [] if m.tests == ALL else list(m.tests)


def snippet_count(m: Mutant, root: Path = REPO) -> int:
    return (root / m.file).read_text(encoding="utf-8").count(m.old)


def check_mutants(mutants: Sequence[Mutant] = MUTANTS, root: Path = REPO) -> None:
    """Raise :class:`MutantError` unless ids are unique, every snippet occurs exactly once in its file, every
    replacement differs, and every listed test file exists."""
    problems: list[str] = []
    dup = [i for i, n in Counter(m.id for m in mutants).items() if n > 1]
    if dup:
        problems.append(f"duplicate mutant ids: {', '.join(sorted(dup))}")
    for m in mutants:
        path = root / m.file
        if not path.is_file():
            problems.append(f"{m.id}: {m.file} does not exist")
            continue
        n = snippet_count(m, root)
        if n != 1:
            problems.append(f"{m.id}: the snippet occurs {n} times in {m.file} (must be exactly once): {m.old!r}")
        if m.old == m.new:
            problems.append(f"{m.id}: the replacement is the snippet itself")
        if m.tests != ALL:
            if not m.tests:
                problems.append(f"{m.id}: no test files")
            problems += [f"{m.id}: test file {t} does not exist" for t in m.tests if not (root / t).is_file()]
    if problems:
        raise MutantError(
            "the mutant list does not fit the source; update tests/mutants.py:\n  " + "\n  ".join(problems)
        )


# ---------------------------------------------------------------------------------------------------------------
# Running pytest on the scratch copy

_PROBE_SOURCE = '''\
"""pytest plugin of tests/mutants.py: records failing tests, the running test, and which nectar was imported."""
import json
import os
import sys

_OUT = os.environ["NECTAR_MUTANTS_EVENTS"]


def _emit(**rec):
    with open(_OUT, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\\n")


def pytest_configure(config):
    home = os.environ.get("NECTAR_MUTANTS_HYPOTHESIS_HOME")
    if home:
        try:
            from hypothesis.configuration import set_hypothesis_home_dir
        except ImportError:
            return
        set_hypothesis_home_dir(home)


def pytest_collectreport(report):
    if report.failed:
        _emit(event="collect_error", nodeid=report.nodeid)


def pytest_runtest_logstart(nodeid, location):
    _emit(event="start", nodeid=nodeid)


def pytest_runtest_logreport(report):
    if report.failed:
        _emit(event="failed", nodeid=report.nodeid, when=report.when)


def pytest_runtest_logfinish(nodeid, location):
    _emit(event="finish", nodeid=nodeid)


def pytest_sessionfinish(session, exitstatus):
    mod = sys.modules.get("nectar")
    _emit(event="session", nectar=getattr(mod, "__file__", None), exitstatus=int(exitstatus))
'''


@dataclass
class RunResult:
    """One pytest run: failing node ids (collection errors are the file's node id), and how the run ended."""

    failed: set[str] = field(default_factory=set)
    returncode: int | None = None
    timed_out: bool = False
    running: str | None = None  # the test that was running when the run timed out or crashed
    seconds: float = 0.0
    nectar_file: str | None = None
    collected_junit_failures: int | None = None
    log: str = ""

    @property
    def completed(self) -> bool:
        return not self.timed_out and self.returncode in (0, 1)


def file_of(nodeid: str) -> str:
    """The test file of a pytest node id (``tests/test_x.py::test_y[p]`` -> ``tests/test_x.py``)."""
    return nodeid.split("::", 1)[0]


class Scratch:
    """The scratch copy of the package, and pytest runs against it."""

    def __init__(self, base: Path, timeout: float) -> None:
        self.base = base
        self.pkg = base / "pkg"
        self.logs = base / "runs"
        self.timeout = timeout
        self.logs.mkdir(parents=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in COPIED:
            shutil.copytree(REPO / name, self.pkg / name, ignore=ignore)
        (self.pkg / f"{PROBE}.py").write_text(_PROBE_SOURCE, encoding="utf-8")
        self.originals: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("NECTAR_UPDATE_GOLDEN", None)
        env.pop("PYTEST_ADDOPTS", None)
        env["CI"] = "true"
        env["PYTHONPATH"] = os.pathsep.join([str(self.pkg), str(REPO)])  # the copy first; tests.* from the checkout
        env["PYTHONSAFEPATH"] = "1"  # `python -m` (here and in tests' subprocesses) does not put the cwd first
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # nothing written into the repo; mutated sources always recompiled
        for var, value in DEFAULT_SEEDS.items():
            env.setdefault(var, value)
        return env

    def verify_import(self) -> str:
        """``import nectar`` in a subprocess set up like the pytest runs must load the copy."""
        out = subprocess.run(
            [sys.executable, "-c", "import nectar; print(nectar.__file__)"],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        got = out.stdout.strip()
        if out.returncode != 0 or not self._in_copy(got):
            raise MutantError(
                f"import nectar in the test environment loads {got or out.stderr.strip()!r}, not the copy"
            )
        return got

    def _in_copy(self, path: str | None) -> bool:
        return path is not None and Path(path).resolve().is_relative_to(self.pkg.resolve())

    def plant(self, m: Mutant) -> None:
        path = self.pkg / m.file
        text = path.read_text(encoding="utf-8")
        if text.count(m.old) != 1:
            raise MutantError(f"{m.id}: the snippet does not occur exactly once in the copy of {m.file}")
        self.originals[m.file] = text
        path.write_text(text.replace(m.old, m.new, 1), encoding="utf-8")

    def restore(self) -> None:
        for rel, text in self.originals.items():
            path = self.pkg / rel
            path.write_text(text, encoding="utf-8")
            if path.read_text(encoding="utf-8") != text:
                raise MutantError(f"could not restore the scratch copy of {rel}")
        self.originals.clear()

    def run(self, label: str, tests: list[str]) -> RunResult:
        """pytest over ``tests`` (all when empty) from the repository root, on the copy; failing node ids."""
        run_dir = self.logs / label
        run_dir.mkdir(parents=True)
        events, junit = run_dir / "events.jsonl", run_dir / "junit.xml"
        env = self.env()
        env["NECTAR_MUTANTS_EVENTS"] = str(events)
        env["NECTAR_MUTANTS_HYPOTHESIS_HOME"] = str(run_dir / "hypothesis")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", PROBE]
        cmd += [f"--junitxml={junit}", "-o", "junit_family=xunit1", *tests]
        res = RunResult()
        start = time.monotonic()
        with (run_dir / "pytest.log").open("w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                res.returncode = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                res.timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)  # the process group of the pytest we started (and its children)
                proc.wait()
        res.seconds = time.monotonic() - start
        res.log = str(run_dir / "pytest.log")
        self._read_events(events, res)
        if res.nectar_file is not None and not self._in_copy(res.nectar_file):
            raise MutantError(f"{label}: the tests imported nectar from {res.nectar_file}, not from the scratch copy")
        if junit.exists():
            res.collected_junit_failures = _junit_failures(junit)
        return res

    @staticmethod
    def _read_events(path: Path, res: RunResult) -> None:
        if not path.exists():
            return
        open_tests: dict[str, None] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the kill
            ev = rec.get("event")
            if ev in ("failed", "collect_error"):
                res.failed.add(rec["nodeid"])
            elif ev == "start":
                open_tests[rec["nodeid"]] = None
            elif ev == "finish":
                open_tests.pop(rec["nodeid"], None)
            elif ev == "session":
                res.nectar_file = rec.get("nectar")
        if open_tests:
            res.running = next(reversed(open_tests))


def _junit_failures(path: Path) -> int | None:
    """The number of test cases with a failure or error in a JUnit XML report (a cross-check of the plugin)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None
    return sum(1 for tc in root.iter("testcase") if tc.find("failure") is not None or tc.find("error") is not None)


# ---------------------------------------------------------------------------------------------------------------
# Verdicts


@dataclass
class Outcome:
    mutant: Mutant
    run: RunResult
    by_file: dict[str, list[str]] = field(default_factory=dict)  # killing file -> failing node ids
    notes: list[str] = field(default_factory=list)

    @property
    def error(self) -> bool:
        """The run ended abnormally and nothing could be attributed to a file."""
        return not self.run.completed and not self.by_file

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        n = len(self.by_file)
        if n == 0:
            return "SURVIVED"
        return "killed" if n >= BAR else "WEAK"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.mutant.id,
            "description": self.mutant.description,
            "file": self.mutant.file,
            "verdict": self.verdict,
            "killed_by": {f: sorted(ids) for f, ids in sorted(self.by_file.items())},
            "failing_tests": sum(len(v) for v in self.by_file.values()),
            "seconds": round(self.run.seconds, 1),
            "returncode": self.run.returncode,
            "timed_out": self.run.timed_out,
            "notes": self.notes,
        }


def attribute(m: Mutant, run: RunResult, baseline_failed: set[str]) -> Outcome:
    """Failing tests of a mutant run, less those failing without the mutant, grouped by test file."""
    out = Outcome(m, run)
    failed = set(run.failed)
    if not run.completed:
        how = "timed out" if run.timed_out else f"ended with status {run.returncode}"
        if run.running is not None:
            failed.add(run.running)
            out.notes.append(f"run {how} in {run.running} (counted against its file)")
        else:
            out.notes.append(f"run {how}; no running test to attribute it to (see {run.log})")
    pre = failed & baseline_failed
    if pre:
        out.notes.append(f"{len(pre)} failing test(s) also fail without the mutant (not counted)")
    for nodeid in sorted(failed - baseline_failed):
        out.by_file.setdefault(file_of(nodeid), []).append(nodeid)
    return out


def short(path: str) -> str:
    return path.removeprefix("tests/").removesuffix(".py")


def table(outcomes: list[Outcome]) -> str:
    rows = [("mutant", "verdict", "files", "failing", "killed by (failing tests per file)")]
    for o in outcomes:
        kills = ", ".join(f"{short(f)} ({len(ids)})" for f, ids in sorted(o.by_file.items())) or "-"
        rows.append((o.mutant.id, o.verdict, str(len(o.by_file)), str(sum(map(len, o.by_file.values()))), kills))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]),
                                r[3].rjust(widths[3]), r[4]]).rstrip())  # fmt: skip
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len(rows[0][4]))
    return "\n".join(lines)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_mutants(mutants: Sequence[Mutant], timeout: float, keep: bool) -> tuple[list[Outcome], dict[str, Any]]:
    base = Path(tempfile.mkdtemp(prefix="nectar-mutants-"))
    scratch = Scratch(base, timeout)
    try:
        where = scratch.verify_import()
        _log(f"scratch copy: {scratch.pkg} (import nectar -> {where})")
        runs: list[tuple[Mutant, RunResult]] = []
        for i, m in enumerate(mutants, 1):
            tests = mutant_tests(m)
            _log(f"[{i}/{len(mutants)}] {m.id}: {m.file}; pytest {' '.join(tests) or '(whole suite)'}")
            scratch.plant(m)
            try:
                res = scratch.run(f"{i:02d}-{m.id}", tests)
            finally:
                scratch.restore()
            end = "timed out" if res.timed_out else f"exit {res.returncode}"
            _log(f"    {end} after {res.seconds:.0f}s, {len(res.failed)} failing test(s)")
            if res.completed and res.collected_junit_failures not in (None, len(res.failed)):
                _log(f"    note: JUnit XML counts {res.collected_junit_failures} failing, the plugin {len(res.failed)}")
            runs.append((m, res))
        # The unmutated copy, over the files where some mutant made tests fail: those failures are not kills.
        suspects = sorted({file_of(t) for _, r in runs for t in r.failed | ({r.running} if r.running else set())})
        baseline = RunResult()
        if suspects:
            _log(f"baseline (no mutant): pytest {' '.join(suspects)}")
            baseline = scratch.run("00-baseline", suspects)
            end = "timed out" if baseline.timed_out else f"exit {baseline.returncode}"
            _log(f"    {end} after {baseline.seconds:.0f}s, {len(baseline.failed)} failing test(s)")
        pre = set(baseline.failed) | ({baseline.running} if baseline.running else set())
        outcomes = [attribute(m, r, pre) for m, r in runs]
        info = {
            "scratch": str(base),
            "baseline_files": suspects,
            "baseline_failures": sorted(pre),
            "baseline_completed": baseline.completed or not suspects,
            "seeds": {v: scratch.env()[v] for v in DEFAULT_SEEDS},
        }
        return outcomes, info
    finally:
        if keep:
            _log(f"kept scratch directory {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    ap.add_argument("--list", action="store_true", help="list the mutants and check their snippets; run nothing")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per pytest run (default 600)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON to this path (outside the repo)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (copy, logs, JUnit XML)")
    args = ap.parse_args(argv)
    try:
        check_mutants()
    except MutantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.list:
        for m in MUTANTS:
            tests = "all" if m.tests == ALL else " ".join(short(t) for t in m.tests)
            print(f"{m.id:34} {m.file:32} {m.description}\n{'':34} tests: {tests}")
        return 0
    chosen = list(MUTANTS)
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in MUTANTS})
        if unknown:
            print(f"error: unknown mutant id(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen = [m for m in MUTANTS if m.id in set(args.only)]
    if args.json is not None and args.json.resolve().is_relative_to(REPO):
        print(f"error: --json {args.json} is inside the repository; write it elsewhere", file=sys.stderr)
        return 2
    try:
        outcomes, info = run_mutants(chosen, args.timeout, args.keep)
    except MutantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(outcomes))
    if not info["baseline_completed"]:
        print("\nwarning: the baseline run (no mutant) did not complete; its failures may be incomplete")
    if info["baseline_failures"]:
        print(f"\nfailing without any mutant (not counted as kills): {len(info['baseline_failures'])}")
        for t in info["baseline_failures"]:
            print(f"  {t}")
    for o in outcomes:
        for note in o.notes:
            print(f"note: {o.mutant.id}: {note}")
    below = [o for o in outcomes if o.verdict != "killed"]
    print(f"\nseeds: {' '.join(f'{k}={v}' for k, v in info['seeds'].items())}")
    if below:
        print(f"\nbelow the bar (killed by fewer than {BAR} test files):")
        for o in below:
            files = ", ".join(short(f) for f in sorted(o.by_file)) or "none"
            print(f"  {o.mutant.id} [{o.verdict}]: {o.mutant.description}; killed by: {files}")
    else:
        print(f"\nevery mutant is killed by at least {BAR} test files")
    if args.json is not None:
        payload = {**info, "bar": BAR, "mutants": [o.to_json() for o in outcomes]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
