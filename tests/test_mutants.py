"""The mutation check's list (``tests/mutants.py``) still fits the source: every snippet occurs exactly once in its
file, ids are unique, the listed test files exist. Fast: no pytest run inside (``python -m tests.mutants`` runs the
mutants themselves)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutants import ALL, MUTANTS, REPO, Mutant, MutantError, RunResult, attribute, check_mutants, snippet_count

REQUIRED = {
    "untyped-ge-false",
    "untyped-ge-false-reference",
    "budget-sqrt-sample-rate",
    "carry-over-order",
    "key-writes-empty-string",
    "compare-nil-ge",
    "compare-nil-ge-reference",
    "first-root-polars",
    "first-root-duckdb",
    "first-root-reference",
    "budget-variance",
}


def test_mutant_ids_are_unique() -> None:
    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids))


def test_required_mutants_are_listed() -> None:
    assert {m.id for m in MUTANTS} >= REQUIRED


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_snippet_occurs_exactly_once(mutant: Mutant) -> None:
    assert snippet_count(mutant) == 1, f"{mutant.id}: update its snippet in tests/mutants.py ({mutant.file})"
    assert mutant.new != mutant.old
    # The mutant really changes the file, and only by the replacement (planted once).
    text = (REPO / mutant.file).read_text(encoding="utf-8")
    assert text.replace(mutant.old, mutant.new, 1) != text


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_listed_test_files_exist(mutant: Mutant) -> None:
    if mutant.tests == ALL:
        return
    assert mutant.tests and isinstance(mutant.tests, tuple)
    for t in mutant.tests:
        assert (REPO / t).is_file(), f"{mutant.id}: {t}"
        assert t.startswith("tests/test_") and t.endswith(".py"), t


def test_whole_list_passes_the_scripts_own_check() -> None:
    check_mutants()


def _tree(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(text, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_m.py").write_text("", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("text", "count"), [("x = 1\n", 0), ("a <= 0\nb <= 0\n", 2)], ids=["missing", "twice"])
def test_check_refuses_a_snippet_not_found_exactly_once(tmp_path: Path, text: str, count: int) -> None:
    root = _tree(tmp_path, text)
    m = Mutant("m", "d", "pkg/m.py", "<= 0", "< 0", ("tests/test_m.py",))
    with pytest.raises(MutantError, match=f"occurs {count} times"):
        check_mutants([m], root)


def test_check_refuses_duplicate_ids_and_missing_test_files(tmp_path: Path) -> None:
    root = _tree(tmp_path, "a <= 0\nb < 1\n")
    ms = [
        Mutant("m", "d", "pkg/m.py", "a <= 0", "a < 0", ("tests/test_m.py",)),
        Mutant("m", "d", "pkg/m.py", "b < 1", "b <= 1", ("tests/test_gone.py",)),
    ]
    with pytest.raises(MutantError) as err:
        check_mutants(ms, root)
    assert "duplicate mutant ids: m" in str(err.value) and "tests/test_gone.py does not exist" in str(err.value)
    check_mutants(ms[:1], root)  # a correct list passes


def test_attribution_groups_by_file_and_discounts_baseline_failures() -> None:
    m = MUTANTS[0]
    run = RunResult(failed={"tests/test_a.py::t1", "tests/test_a.py::t2[x]", "tests/test_b.py::t"}, returncode=1)
    out = attribute(m, run, baseline_failed={"tests/test_b.py::t"})
    assert out.by_file == {"tests/test_a.py": ["tests/test_a.py::t1", "tests/test_a.py::t2[x]"]}
    assert out.verdict == "WEAK"
    out = attribute(m, run, baseline_failed=set())
    assert out.verdict == "killed" and set(out.by_file) == {"tests/test_a.py", "tests/test_b.py"}
    assert attribute(m, RunResult(returncode=0), set()).verdict == "SURVIVED"


def test_timeouts_count_against_the_running_test_only() -> None:
    m = MUTANTS[0]
    hung = RunResult(timed_out=True, running="tests/test_c.py::slow")
    assert attribute(m, hung, set()).by_file == {"tests/test_c.py": ["tests/test_c.py::slow"]}
    assert attribute(m, RunResult(returncode=3), set()).verdict == "ERROR"  # a crash with nothing to attribute
