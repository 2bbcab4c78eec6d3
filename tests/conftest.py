"""Shared fixtures and the rules every test file follows, in one place.

* ``CI=true``: a missing prerequisite (../shared, Chromium) fails the test instead of skipping it; outside CI it
  skips cleanly. Tests call :func:`skip_or_fail` (or :func:`shared_path`), never ``pytest.skip`` for those.
* ``NECTAR_UPDATE_GOLDEN=1`` (exactly ``1``) rewrites golden files: :func:`update_golden`.
* Hypothesis seeds for the randomized suites: :func:`run_seed` (``NECTAR_DIFF_SEED``, ``NECTAR_FUZZ_SEED``), printed
  at the end of every run that drew one, so any run can be replayed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NECTAR_SHARED", REPO.parent / "shared"))
SEED_VARS = ("NECTAR_DIFF_SEED", "NECTAR_FUZZ_SEED")


def in_ci() -> bool:
    """True iff the environment variable ``CI`` is exactly ``true`` (as CI services set it)."""
    return os.environ.get("CI") == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """A missing prerequisite: skip the test, or under ``CI=true`` fail it (CI cannot silently skip)."""
    __tracebackhide__ = True  # the skip/failure is reported at the test's line, not here
    if in_ci():
        pytest.fail(f"{reason} [CI=true: a missing prerequisite is a failure, not a skip]", pytrace=False)
    pytest.skip(reason)


def update_golden() -> bool:
    """True iff ``NECTAR_UPDATE_GOLDEN`` is exactly ``1``: the golden tests rewrite their files instead of comparing."""
    return os.environ.get("NECTAR_UPDATE_GOLDEN") == "1"


def run_seed(var: str) -> int:
    """This run's hypothesis seed for one randomized suite: ``$var`` if set (to replay a run), else a fresh random
    one, stored back in ``$var`` so every reader in this process sees the same number and the end-of-run summary
    prints it."""
    value = os.environ.get(var, "").strip()
    if not value:
        value = str(int.from_bytes(os.urandom(4), "big"))
        os.environ[var] = value
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f"{var}={value!r} is not an integer seed") from None


def shared_path(*parts: str) -> Path:
    """A path under ../shared (or $NECTAR_SHARED): skips the test when it is not there, fails it under ``CI=true``."""
    __tracebackhide__ = True
    p = SHARED.joinpath(*parts)
    if not p.exists():
        skip_or_fail(f"{p} not present (../shared is not checked out beside the repo)")
    return p


@pytest.fixture
def shared() -> Path:
    return shared_path()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Static skip marks that stand for a missing ../shared (tests/vectors.py's ``no-shared`` param) go through
    :func:`skip_or_fail` under ``CI=true``, before pytest's own skipping plugin sees them (outside CI they skip)."""
    if not in_ci():
        return
    for mark in item.iter_markers("skip"):
        reason = str(mark.kwargs.get("reason", mark.args[0] if mark.args else ""))
        if reason.startswith(str(SHARED)):
            skip_or_fail(reason)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for var in SEED_VARS:
        if os.environ.get(var):
            terminalreporter.write_line(f"hypothesis seed: {var}={os.environ[var]} (set it to replay this run)")
