"""Regular expressions as Refinery runs them: Go's RE2 syntax, unanchored (``regexp.MatchString``).

We check patterns with RE2 itself (google-re2), so what RE2 cannot do (look-around, back-references) is caught when
the policy is checked, not silently never-matching in production (Refinery logs a bad regex at debug level and the
condition never matches: SEMANTICS.md 2.8).
"""

from __future__ import annotations

import functools
import re

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 otherwise logs every bad pattern to stderr


def check_re2(pattern: str) -> str | None:
    """None when RE2 accepts ``pattern``; otherwise RE2's reason, in words."""
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        msg = exc.args[0] if exc.args else str(exc)
        return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    return None


@functools.lru_cache(maxsize=1024)
def compile_re2(pattern: str) -> re2._Regexp | None:
    """The compiled pattern, or None when RE2 rejects it (Refinery: the condition then never matches)."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error:
        return None


def quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta``: escape every RE2 metacharacter (used to compile ``ends_with`` exactly)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)
