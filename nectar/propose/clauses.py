"""The intent's clauses: tokens with positions, clause boundaries, the action verb and the rate of each clause.

Clauses are separated by ``;``, ``,``, sentence ends, and ``and``/``then`` when a verb (or a budget) follows or
when both sides carry their own rate (``sample pro users at 10% and free users at 1%``). A clause with neither a
verb nor a rate after a comma is one more item of the clause before (``keep errors, slow requests and ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nectar.util import int_from_text

_TOKEN = re.compile(r"/[^\s,;()]*|[<>]=?|\d[\w.]*%?|[A-Za-z_][\w.\-'’]*|[,;()%&]")
CONNECTORS = {"and", "then", "but", "also", "plus", "while", "finally", "otherwise", "&"}
_KEEP = {"keep", "retain", "preserve", "save", "store", "include", "capture", "send", "accept"}
_DROP = {"drop", "discard", "ignore", "exclude", "skip", "remove", "reject", "filter", "suppress", "throw"}
_SAMPLE = {"sample", "downsample", "thin", "trim"}
BUDGET = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(k|thousand)?\s*(?:events?|spans?)?\s*"
    r"(?:per\s+second|per\s+sec\b|a\s+second|/\s*s(?:ec(?:ond)?)?\b|eps\b)",
    re.I,
)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10, "hundred": 100, "thousand": 1000}


@dataclass(slots=True)
class Tok:
    text: str
    start: int

    @property
    def low(self) -> str:
        return self.text.lower().rstrip("'’").removesuffix("'s").removesuffix("’s")


@dataclass(slots=True)
class IntentClause:
    toks: list[Tok]
    verb: str | None = None  # keep, drop, sample
    rate: tuple[str, int] | None = None  # (action text, 1-in-N)
    rate_words: str = ""
    subject: list[Tok] = field(default_factory=list)

    def text(self, intent: str) -> str:
        return intent[self.toks[0].start : self.toks[-1].start + len(self.toks[-1].text)].strip()


class NotUnderstood(Exception):
    def __init__(self, message: str, tok: Tok | None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tok = tok
        self.hint = hint


def _tokens(intent: str) -> list[Tok]:
    out = []
    for m in _TOKEN.finditer(intent):
        text = m.group(0)
        end_of_sentence = False
        if len(text) > 1 and text[-1] == "." and (m.end() == len(intent) or intent[m.end()].isspace()):
            text, end_of_sentence = text[:-1], True  # "Keep errors. Drop health checks." : two sentences
        out.append(Tok(text, m.start()))
        if end_of_sentence:
            out.append(Tok(";", m.end() - 1))
    return out


def is_verb(tok: Tok) -> bool:
    return tok.low in _KEEP | _DROP | _SAMPLE or tok.low in ("never", "don't", "dont", "do")


def _segments(toks: list[Tok]) -> list[list[Tok]]:
    segs: list[list[Tok]] = [[]]
    depth = 0
    for t in toks:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth = max(0, depth - 1)
        elif t.text in (",", ";") and depth == 0:
            segs.append([])
            continue
        segs[-1].append(t)
    return [s for s in segs if s]


def read_rate(toks: list[Tok]) -> tuple[list[Tok], tuple[str, int] | None, str]:
    """Remove a rate phrase (``at 10%``, ``1 in 20``, ``25 percent``, ``1/50``) from ``toks``."""
    lows = [t.low for t in toks]
    for i, low in enumerate(lows):
        span = None
        action: tuple[str, int] | None = None
        m = re.fullmatch(r"(\d+(?:\.\d+)?)%", low)
        if m or (re.fullmatch(r"\d+(?:\.\d+)?", low) and i + 1 < len(lows) and lows[i + 1] in ("%", "percent", "pct")):
            pct = float(m.group(1) if m else low)
            span = (i, i + (1 if m else 2))
            action = _pct_action(pct, toks[i])
        elif i + 2 < len(lows) and (low in ("1", "one")) and lows[i + 1] == "in":
            n = int_word(lows[i + 2])
            if n is not None:
                span, action = (i, i + 3), _one_in(n, toks[i])
        elif i + 3 < len(lows) and low in ("1", "one") and lows[i + 1 : i + 3] == ["out", "of"]:
            n = int_word(lows[i + 3])
            if n is not None:
                span, action = (i, i + 4), _one_in(n, toks[i])
        elif re.fullmatch(r"1/\d+", low):
            span, action = (i, i + 1), _one_in(int(low[2:]), toks[i])
        if span is not None and action is not None:
            a, b = span
            if a > 0 and lows[a - 1] in ("at", "to", "about", "roughly", "only", "keeping", "keep"):
                a -= 1 if lows[a - 1] not in ("keep", "keeping") else 0
            if b < len(lows) and lows[b] == "of":
                b += 1
            words = " ".join(t.text for t in toks[a:b])
            return toks[:a] + toks[b:], action, words
    return toks, None, ""


def int_word(w: str) -> int | None:
    if (n := int_from_text(w, signed=False)) is not None:
        return n
    return _NUMBER_WORDS.get(w)


def _pct_action(pct: float, tok: Tok) -> tuple[str, int]:
    if pct <= 0:
        return "drop", 0
    if pct >= 100:
        return "keep", 1
    written = (str(int(pct)) if pct.is_integer() else repr(pct)) + "%"
    return f"sample({written})", max(1, round(100 / pct))


def _one_in(n: int, tok: Tok) -> tuple[str, int]:
    if n <= 0:
        raise NotUnderstood("`1 in 0` is not a sample rate", tok, "write e.g. `1 in 10`")
    return ("keep", 1) if n == 1 else (f"sample(1/{n})", n)


def _read_verb(toks: list[Tok]) -> tuple[list[Tok], str | None]:
    while toks and toks[0].low in CONNECTORS | {"please", "always", "only", "just"}:
        toks = toks[1:]
    if not toks:
        return toks, None
    low = [t.low for t in toks[:3]]
    negated = low[:2] == ["do", "not"] and low[2:3] in (["keep"], ["drop"], ["sample"])
    if negated or (low[:1] in (["never"], ["don't"], ["dont"]) and low[1:2] in (["keep"], ["drop"], ["sample"])):
        verb = low[2] if negated else low[1]
        return toks[3 if negated else 2 :], "drop" if verb == "keep" else "keep"  # "never drop errors": keep
    if low[0] in _KEEP:
        return toks[1:], "keep"
    if low[0] in _DROP:
        rest = toks[1:]
        if rest and rest[0].low in ("out", "away"):
            rest = rest[1:]
        return rest, "drop"
    if low[0] in _SAMPLE:
        rest = toks[1:]
        if rest and rest[0].low in ("down", "out"):
            rest = rest[1:]
        return rest, "sample"
    return toks, None


def _split_and(seg: list[Tok]) -> list[list[Tok]]:
    """Split a segment at ``and``/``then`` when a verb follows, or when both sides carry their own rate."""
    parts: list[list[Tok]] = [[]]
    for i, t in enumerate(seg):
        if t.low in CONNECTORS and parts[-1] and i + 1 < len(seg):
            nxt = seg[i + 1 :]
            j = 0
            while j < len(nxt) and nxt[j].low in CONNECTORS | {"always", "only", "just"}:
                j += 1
            starts_verb = j < len(nxt) and (is_verb(nxt[j]) or nxt[j].low in ("stay", "budget"))
            both_rates = read_rate(parts[-1])[1] is not None and read_rate(_until_connector(nxt))[1] is not None
            if starts_verb or both_rates:
                parts.append([])
                continue
        parts[-1].append(t)
    return [p for p in parts if p]


def _until_connector(toks: list[Tok]) -> list[Tok]:
    out = []
    for t in toks:
        if t.low in CONNECTORS:
            break
        out.append(t)
    return out


def split_clauses(intent: str) -> list[IntentClause]:
    """The intent's clauses in priority order, each with its verb, rate and subject words."""
    clauses: list[IntentClause] = []
    for seg in _segments(_tokens(intent)):
        for part in _split_and(seg):
            rest, verb = _read_verb(part)
            rest, rate, words = read_rate(rest)
            rest = [t for t in rest if t.text not in ("(", ")")]
            c = IntentClause(part, verb, rate, words, rest)
            is_budget = BUDGET.search(" ".join(t.text for t in part)) is not None
            if verb is None and rate is None and clauses and clauses[-1].verb is not None and not is_budget:
                prev = clauses[-1]  # "keep errors, slow requests and ..." : one more item of the same clause
                prev.toks = prev.toks + part
                prev.subject = [*prev.subject, Tok("and", part[0].start), *rest]
                continue
            clauses.append(c)
    return clauses


__all__ = [
    "BUDGET",
    "CONNECTORS",
    "IntentClause",
    "NotUnderstood",
    "Tok",
    "int_word",
    "is_verb",
    "read_rate",
    "split_clauses",
]
