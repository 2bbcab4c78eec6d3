"""One root error type for everything a user can get wrong.

Every user-facing error is a :class:`NectarError`. When it knows where in a file the problem is, it carries a
:class:`Span` and renders as ``file:line:col: message``, the source line, and a caret under the span. The CLI
prints :meth:`NectarError.render` to stderr and exits with :attr:`NectarError.exit_code`, never a traceback.

Exit codes (documented in the README):

* ``0`` success;
* ``1`` a check failed (:class:`CheckFailed`): the input was fine but the policy does not hold;
* ``2`` bad input (:class:`NectarError` and every other subclass).
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


@dataclass(frozen=True, slots=True)
class Span:
    """A place in a source text: 1-based line and column, and the length of the underlined part.

    ``source`` is the whole text the span points into (so the line can be shown); ``file`` is what to call it
    in messages (a path, or ``<expr>`` for a bare expression).
    """

    file: str
    line: int
    column: int
    length: int = 1
    source: str | None = None

    def shifted(self, line: int, column: int, file: str | None = None, source: str | None = None) -> Span:
        """This span, for text that was embedded at ``line``/``column`` of a larger source.

        Used when a match expression sits in a cell of a policy file: the expression is parsed on its own and
        its spans are moved into the file's coordinates.
        """
        new_col = self.column + column - 1 if self.line == 1 else self.column
        return Span(
            file=file if file is not None else self.file,
            line=self.line + line - 1,
            column=new_col,
            length=self.length,
            source=source if source is not None else self.source,
        )

    def source_line(self) -> str | None:
        if self.source is None:
            return None
        lines = self.source.splitlines()
        if 1 <= self.line <= len(lines):
            return lines[self.line - 1]
        return "" if self.line == len(lines) + 1 else None

    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class NectarError(ValueError):
    """A problem with the user's input. Renders with its position when it has one."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        """``file:line:col: message``, then the source line and a caret under the span, then a hint."""
        out: list[str] = []
        if self.span is None:
            out.append(f"error: {self.message}")
        else:
            out.append(f"{self.span.location()}: error: {self.message}")
            line = self.span.source_line()
            if line is not None:
                text = line.expandtabs(1)
                gutter = f"{self.span.line:>4} | "
                out.append(gutter + text)
                width = max(1, min(self.span.length, max(1, len(text) - self.span.column + 1)))
                out.append(" " * (len(gutter) + self.span.column - 1) + "^" * width)
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)

    def as_dict(self) -> dict[str, object]:
        """The error as data, for ``--format json``."""
        d: dict[str, object] = {"message": self.message}
        if self.span is not None:
            d.update(file=self.span.file, line=self.span.line, column=self.span.column)
        if self.hint:
            d["hint"] = self.hint
        return d


class CheckFailed(NectarError):
    """The input was valid, but a check on it failed (exit 1)."""

    exit_code = EXIT_CHECK_FAILED


class ErrorGroup(NectarError):
    """Several independent errors found in one pass (all reported, first one decides the position)."""

    def __init__(self, errors: list[NectarError]) -> None:
        assert errors
        super().__init__(errors[0].message, errors[0].span, errors[0].hint)
        self.errors = errors
        self.exit_code = max(e.exit_code for e in errors)

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)

    def as_dict(self) -> dict[str, object]:
        return {"errors": [e.as_dict() for e in self.errors]}
