"""What every command shares: the Typer app, error handling, output formats, config, progress.

Conventions for all commands:

* a command that reads a policy takes it as an optional argument (default: ``project.policy`` in nectar.toml);
* a command that reads a corpus takes ``--corpus DIR`` (default: ``project.corpus`` in nectar.toml);
* ``--format json`` prints one JSON document on stdout, built once from plain data (:func:`emit_json`);
* colour and progress bars only when the stream is a terminal;
* errors go to stderr as ``file:line:col: message`` with the source line and a caret.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from nectar import __version__
from nectar.config import Config, load_config
from nectar.engine.api import DEFAULT_ENGINE
from nectar.errors import EXIT_BAD_INPUT, NectarError

app = typer.Typer(
    name="nectar",
    help=(
        "Write, prove and ship tail-sampling policies for Honeycomb Refinery.\n\n"
        "Typical workflow:\n\n"
        "  nectar init demo && cd demo\n\n"
        "  nectar check              # parse and validate policy.toon\n\n"
        "  nectar prove              # check the policy against the corpus\n\n"
        "  nectar compile            # write rules.yaml and nectar.lock"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
corpus_app = typer.Typer(
    help="Look at and make corpora: `nectar corpus synth`, `nectar corpus stats`, `nectar corpus fields`.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(corpus_app, name="corpus")


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class EngineName(StrEnum):
    """The vectorized engines a command can run on (``--engine``)."""

    polars = "polars"
    duckdb = "duckdb"


DEFAULT_ENGINE_NAME = EngineName(DEFAULT_ENGINE)  # nectar.engine.api.DEFAULT_ENGINE, the one place it is chosen


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"nectar {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Nectar: write, prove and ship Refinery sampling policies."""


def stdout_is_tty() -> bool:
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def stderr_is_tty() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def out_console() -> Console:
    """Console for results on stdout: colour only on a terminal (and never with NO_COLOR)."""
    tty = stdout_is_tty()
    return Console(
        file=sys.stdout,
        force_terminal=tty,
        no_color=not tty or "NO_COLOR" in os.environ,
        highlight=False,
        soft_wrap=True,
    )


def err_console() -> Console:
    tty = stderr_is_tty()
    return Console(
        file=sys.stderr,
        force_terminal=tty,
        no_color=not tty or "NO_COLOR" in os.environ,
        highlight=False,
        soft_wrap=True,
    )


def emit_json(data: Any) -> None:
    """Print plain data as one JSON document (sorted keys: same data, same bytes)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def warn(message: str) -> None:
    err_console().print(f"warning: {message}", markup=False)


def notice(message: str) -> None:
    err_console().print(message, markup=False)


def config_here() -> Config:
    return load_config()


def resolve_policy(policy: Path | None, cfg: Config | None = None) -> Path:
    """The policy path: the argument, else nectar.toml's ``project.policy``, else ``./policy.toon``."""
    if policy is not None:
        return policy
    cfg = cfg or config_here()
    if cfg.policy is not None:
        return cfg.policy
    default = Path("policy.toon")
    if default.exists():
        return default
    raise NectarError(
        "no policy given and none configured",
        hint="pass the policy file (`nectar check policy.toon`) or run inside a project made by `nectar init`",
    )


def resolve_corpus(corpus: Path | None, cfg: Config | None = None) -> Path:
    """The corpus folder: ``--corpus``, else nectar.toml's ``project.corpus``, else ``./corpus``."""
    if corpus is not None:
        return corpus
    cfg = cfg or config_here()
    if cfg.corpus is not None:
        return cfg.corpus
    default = Path("corpus")
    if (default / "manifest.json").exists():
        return default
    raise NectarError(
        "no corpus given and none configured",
        hint="pass `--corpus DIR`, or set [project] corpus in nectar.toml",
    )


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal; a silent stand-in otherwise.

    Yields an object with ``advance(n)``.
    """
    if not stderr_is_tty():

        class _Silent:
            def advance(self, n: int = 1) -> None:
                pass

        yield _Silent()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        class _Bar:
            def advance(self, n: int = 1) -> None:
                bar.advance(task, n)

        yield _Bar()


def report_error(exc: NectarError) -> int:
    err_console().print(exc.render(), markup=False, highlight=False)
    return exc.exit_code


def run_app(argv: list[str]) -> int:
    """Run the Typer app; map errors to exit codes. Never lets a user error out as a traceback.

    Typer's standalone mode handles usage errors itself (message and exit 2); our own errors propagate out of it.
    """
    try:
        app(args=argv, prog_name="nectar")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_BAD_INPUT)
    except NectarError as exc:
        return report_error(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0
