"""RE2 patterns as z3 regular expressions, for the subset that maps exactly.

Refinery's ``matches`` is Go's ``regexp.MatchString``: an unanchored search with RE2 syntax. A pattern translates
when every construct in it has the same meaning in z3's regex theory (over Unicode code points, which is what Go
matches on UTF-8 text):

* literals, ``.`` (any character but ``\\n``), classes ``[...]``/``[^...]`` with ranges, ``\\d \\D \\s \\S \\w \\W``
  (ASCII, as in RE2), groups, alternation, ``* + ? {m,n}`` (greedy or lazy: the same set of strings);
* ``^``/``\\A`` at the very start and ``$``/``\\z`` at the very end (of the pattern or of each top-level branch).

Anything else makes :func:`translate` raise :class:`Unsupported` with the reason (flags such as ``(?i)``, ``\\b``,
anchors in the middle, POSIX classes ``[[:alpha:]]``, Unicode classes ``\\pL``, backreferences); the symbolic
checker then treats the condition as one it cannot model exactly and says so.
"""

from __future__ import annotations

import re
from typing import Any

import z3

try:  # Python 3.11+
    import re._constants as sre_c
    import re._parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as sre_c  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]


def _re_sort() -> z3.ReSortRef:
    return z3.ReSort(z3.StringSort())


def _any_char() -> z3.ReRef:
    return z3.AllChar(_re_sort())


_MAX_REPEAT = 1000  # RE2's limit on {m,n}

_DIGIT = [(48, 57)]
_SPACE = [(9, 10), (12, 13), (32, 32)]  # RE2 \s: [\t\n\f\r ]
_WORD = [(48, 57), (65, 90), (95, 95), (97, 122)]
_CATEGORIES: dict[Any, tuple[list[tuple[int, int]], bool]] = {
    sre_c.CATEGORY_DIGIT: (_DIGIT, False),
    sre_c.CATEGORY_NOT_DIGIT: (_DIGIT, True),
    sre_c.CATEGORY_SPACE: (_SPACE, False),
    sre_c.CATEGORY_NOT_SPACE: (_SPACE, True),
    sre_c.CATEGORY_WORD: (_WORD, False),
    sre_c.CATEGORY_NOT_WORD: (_WORD, True),
}
_BAD_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE


class Unsupported(Exception):
    """The pattern uses a construct z3's regex theory cannot express exactly; the message says which."""


def _range(lo: int, hi: int) -> z3.ReRef:
    return z3.Range(chr(lo), chr(hi)) if lo != hi else z3.Re(z3.StringVal(chr(lo)))


def _union(items: list[z3.ReRef]) -> z3.ReRef:
    if not items:
        return z3.Empty(_re_sort())
    return items[0] if len(items) == 1 else z3.Union(*items)


def _concat(items: list[z3.ReRef]) -> z3.ReRef:
    if not items:
        return z3.Re(z3.StringVal(""))
    return items[0] if len(items) == 1 else z3.Concat(*items)


def _not_chars(re_: z3.ReRef) -> z3.ReRef:
    """Any single character not matched by the one-character regex ``re_``."""
    return z3.Intersect(_any_char(), z3.Complement(re_))


def _class(items: list[tuple[Any, Any]]) -> z3.ReRef:
    negate = False
    parts: list[z3.ReRef] = []
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            parts.append(_range(av, av))
        elif op is sre_c.RANGE:
            parts.append(_range(av[0], av[1]))
        elif op is sre_c.CATEGORY:
            ranges, neg = _CATEGORIES.get(av, (None, False))
            if ranges is None:
                raise Unsupported(f"character class {av}")
            r = _union([_range(lo, hi) for lo, hi in ranges])
            parts.append(_not_chars(r) if neg else r)
        else:
            raise Unsupported(f"{op} in a character class")
    r = _union(parts)
    return _not_chars(r) if negate else r


def _seq(items: list[tuple[Any, Any]]) -> z3.ReRef:
    return _concat([_item(op, av) for op, av in items])


def _item(op: Any, av: Any) -> z3.ReRef:
    if op is sre_c.LITERAL:
        return _range(av, av)
    if op is sre_c.NOT_LITERAL:
        return _not_chars(_range(av, av))
    if op is sre_c.ANY:
        return _not_chars(_range(10, 10))  # RE2: . does not match \n without (?s)
    if op is sre_c.IN:
        return _class(av)
    if op is sre_c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if (add_flags | del_flags) & _BAD_FLAGS:
            raise Unsupported("a flag group such as (?i) or (?s)")
        return _seq(list(sub))
    if op is sre_c.BRANCH:
        return _union([_seq(list(b)) for b in av[1]])
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
        lo, hi, sub = av
        inner = _seq(list(sub))
        if hi is sre_c.MAXREPEAT:
            if lo == 0:
                return z3.Star(inner)
            if lo == 1:
                return z3.Plus(inner)
            return z3.Concat(z3.Loop(inner, lo, lo), z3.Star(inner))
        if hi > _MAX_REPEAT:
            raise Unsupported(f"a repetition bound above {_MAX_REPEAT}")
        if lo == 0 and hi == 1:
            return z3.Option(inner)
        return z3.Loop(inner, lo, hi)
    if op is sre_c.AT:
        raise Unsupported("an anchor or word boundary inside the pattern (only ^ at the start and $ at the end)")
    raise Unsupported(f"the construct {str(op).lower()}")


_STARTS = (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_STRING)
_ENDS = (sre_c.AT_END,)


def _search(items: list[tuple[Any, Any]]) -> z3.ReRef:
    """An unanchored search for the sequence ``items`` (with ``^``/``$`` allowed at its ends)."""
    start = bool(items) and items[0][0] is sre_c.AT and items[0][1] in _STARTS
    if start:
        items = items[1:]
    end = bool(items) and items[-1][0] is sre_c.AT and items[-1][1] in _ENDS
    if end:
        items = items[:-1]
    body = _seq(items)
    parts = ([] if start else [z3.Star(_any_char())]) + [body] + ([] if end else [z3.Star(_any_char())])
    return _concat(parts)


def translate(pattern: str) -> z3.ReRef:
    """The set of strings in which Go's ``regexp.MatchString(pattern, s)`` finds a match, as a z3 regex.

    Raises :class:`Unsupported` (with the reason) when the pattern is outside the exact subset.
    """
    if "[:" in pattern or "\\p" in pattern or "\\P" in pattern or "\\Q" in pattern or "\\C" in pattern:
        raise Unsupported("POSIX, Unicode or quoting classes ([[:alpha:]], \\pL, \\Q...\\E)")
    if "\\Z" in pattern or "{," in pattern:
        raise Unsupported("\\Z or {,n} (RE2 reads {,n} as literal text)")
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise Unsupported(f"syntax outside the common RE2/Python subset ({exc})") from None
    if parsed.state.flags & _BAD_FLAGS:
        raise Unsupported("a flag such as (?i), (?m) or (?s)")
    items = list(parsed)
    if len(items) == 1 and items[0][0] is sre_c.BRANCH:  # a|^b$: anchors per top-level branch
        return _union([_search(list(b)) for b in items[0][1][1]])
    if len(items) == 1 and items[0][0] is sre_c.SUBPATTERN and not (items[0][1][1] | items[0][1][2]) & _BAD_FLAGS:
        inner = list(items[0][1][3])
        if len(inner) == 1 and inner[0][0] is sre_c.BRANCH:
            return _union([_search(list(b)) for b in inner[0][1][1]])
    return _search(items)
