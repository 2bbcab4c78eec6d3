"""Sets of int64 values as regular languages of their decimal spellings, for the symbolic prover.

z3 reasons about string-to-integer conversions slowly, but a set of integers given by ranges is a regular language
of decimal strings, and regex membership is fast. Two spellings matter:

* :func:`canonical`: Go's ``%v`` of an int64 (``0``, ``-12``, ``500``: no sign for positives, no leading zeros). The
  symbolic prover holds every int value as this string, so ``%v`` tests (``starts-with``, regexes) need no
  conversion at all;
* :func:`atoi`: what ``strconv.Atoi`` accepts for a value (an optional ``+``/``-``, ASCII digits, leading zeros,
  ``-0`` is 0), within int64.
"""

from __future__ import annotations

import z3

from nectar.refinery.gostr import INT64_MAX, INT64_MIN

Ranges = list[tuple[int, int]]


def _re() -> z3.ReSortRef:
    return z3.ReSort(z3.StringSort())


def _digit() -> z3.ReRef:
    return z3.Range("0", "9")


def _lit(s: str) -> z3.ReRef:
    return z3.Re(z3.StringVal(s))


def _union(items: list[z3.ReRef]) -> z3.ReRef:
    if not items:
        return z3.Empty(_re())
    return items[0] if len(items) == 1 else z3.Union(*items)


def _cat(*items: z3.ReRef) -> z3.ReRef:
    return items[0] if len(items) == 1 else z3.Concat(*items)


def _digits(lo: int, hi: int) -> z3.ReRef:
    return z3.Range(str(lo), str(hi)) if lo != hi else _lit(str(lo))


def _any(n: int) -> z3.ReRef:
    return z3.Loop(_digit(), n, n) if n > 0 else _lit("")


def _ge(s: str) -> z3.ReRef:
    """Digit strings of ``len(s)`` that are >= ``s``."""
    if not s.strip("0"):  # "" or all zeros: every digit string of that length
        return _any(len(s))
    d = int(s[0])
    parts = [_cat(_lit(s[0]), _ge(s[1:]))]
    if d < 9:
        parts.append(_cat(_digits(d + 1, 9), _any(len(s) - 1)))
    return _union(parts)


def _le(s: str) -> z3.ReRef:
    """Digit strings of ``len(s)`` that are <= ``s``."""
    if not s.strip("9"):  # "" or all nines: every digit string of that length
        return _any(len(s))
    d = int(s[0])
    parts = [_cat(_lit(s[0]), _le(s[1:]))]
    if d > 0:
        parts.append(_cat(_digits(0, d - 1), _any(len(s) - 1)))
    return _union(parts)


def _same_len(x: str, y: str) -> z3.ReRef:
    """Digit strings of the common length of ``x <= y`` between them."""
    if not x:
        return _lit("")
    if x[0] == y[0]:
        return _cat(_lit(x[0]), _same_len(x[1:], y[1:]))
    a, b = int(x[0]), int(y[0])
    if not x[1:].strip("0") and not y[1:].strip("9"):  # [a-b] then any digits: the common case, one node
        return _cat(_digits(a, b), _any(len(x) - 1))
    parts = [_cat(_lit(x[0]), _ge(x[1:])), _cat(_lit(y[0]), _le(y[1:]))]
    if b - a > 1:
        parts.append(_cat(_digits(a + 1, b - 1), _any(len(x) - 1)))
    return _union(parts)


def _positive(a: int, b: int) -> z3.ReRef:
    """Canonical spellings of the integers in ``[a, b]``, ``1 <= a``. The lengths whose every number is in range
    are one node, ``[1-9][0-9]{m,n}``; only the two partial lengths at the ends are spelled out."""
    la, lb = len(str(a)), len(str(b))
    full = [n for n in range(la, lb + 1) if a <= 10 ** (n - 1) and 10**n - 1 <= b]
    parts = []
    if full:
        lo_n, hi_n = full[0], full[-1]
        parts.append(_cat(z3.Range("1", "9"), z3.Loop(_digit(), lo_n - 1, hi_n - 1) if hi_n > 1 else _lit("")))
    for n in range(la, lb + 1):
        if n in full:
            continue
        lo, hi = max(a, 10 ** (n - 1)), min(b, 10**n - 1)
        if lo <= hi:
            parts.append(_same_len(str(lo), str(hi)))
    return _union(parts)


def _clip(ranges: Ranges) -> Ranges:
    return [(max(lo, INT64_MIN), min(hi, INT64_MAX)) for lo, hi in ranges if max(lo, INT64_MIN) <= min(hi, INT64_MAX)]


def canonical(ranges: Ranges) -> z3.ReRef:
    """Go's ``%v`` spellings of the int64 values in the union of ``ranges`` (inclusive)."""
    parts = []
    for lo, hi in _clip(ranges):
        if lo <= 0 <= hi:
            parts.append(_lit("0"))
        if hi >= 1:
            parts.append(_positive(max(lo, 1), hi))
        if lo <= -1:
            parts.append(_cat(_lit("-"), _positive(max(-hi, 1), -lo)))
    return _union(parts)


def atoi(ranges: Ranges) -> z3.ReRef:
    """The strings ``strconv.Atoi`` turns into an int64 in the union of ``ranges``."""
    zeros = z3.Star(_lit("0"))
    parts = []
    for lo, hi in _clip(ranges):
        if lo <= 0 <= hi:
            parts.append(_cat(z3.Option(z3.Union(_lit("+"), _lit("-"))), z3.Plus(_lit("0"))))
        if hi >= 1:
            parts.append(_cat(z3.Option(_lit("+")), zeros, _positive(max(lo, 1), hi)))
        if lo <= -1:
            parts.append(_cat(_lit("-"), zeros, _positive(max(-hi, 1), -lo)))
    return _union(parts)


def op_ranges(op: str, n: int) -> Ranges:
    """The int64 values ``x`` with ``x <op> n``."""
    return {
        "eq": [(n, n)],
        "ne": [(INT64_MIN, n - 1), (n + 1, INT64_MAX)],
        "lt": [(INT64_MIN, n - 1)],
        "le": [(INT64_MIN, n)],
        "gt": [(n + 1, INT64_MAX)],
        "ge": [(n, INT64_MAX)],
    }[op]


ALL: Ranges = [(INT64_MIN, INT64_MAX)]
