"""The ``nectar`` command line: a thin layer over the package.

Each command group lives in its own module and registers itself on :data:`app` when imported below.
:func:`main` is the console script: it runs the app and turns every :class:`~nectar.errors.NectarError` into
its rendered message on stderr and its exit code (0 ok, 1 check failed, 2 bad input), never a traceback.
"""

from __future__ import annotations

import sys

from nectar.cli.common import app, run_app

# Command modules register their commands on `app` when imported (one module per command group).
from nectar.cli import policy_cmds  # noqa: F401  isort: skip
from nectar.cli import ingest_cmds  # noqa: F401  isort: skip
from nectar.cli import corpus_cmds  # noqa: F401  isort: skip
from nectar.cli import engine_cmds  # noqa: F401  isort: skip
from nectar.cli import compile_cmds  # noqa: F401  isort: skip
from nectar.cli import prove_cmds  # noqa: F401  isort: skip
from nectar.cli import explain_cmds  # noqa: F401  isort: skip
from nectar.cli import diff_cmds  # noqa: F401  isort: skip
from nectar.cli import propose_cmds  # noqa: F401  isort: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nectar`` console script."""
    code = run_app(argv if argv is not None else sys.argv[1:])
    if argv is None:
        sys.exit(code)
    return code


__all__ = ["app", "main"]
