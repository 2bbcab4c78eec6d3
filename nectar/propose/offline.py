"""The offline proposer: plain-English sampling intents to a policy, deterministically, grounded in the corpus.

An intent is a list of clauses in priority order, separated by ``;``, ``,`` or ``and``/``then`` before a verb::

    Keep all errors and slow requests over 5 seconds, sample everything else at 1%

Each clause has an action (``keep``/``drop``/``sample``, or a rate alone: ``1 in 20 for the rest``) and a
subject. A subject is a union of items (``errors and slow requests`` = either); the words of one item all hold
(``GET requests to /api/search`` = one span with both, Refinery ``Scope: span``). Words are understood as:

* conventions: errors (an ``error`` flag or an HTTP status >= 500), server/client errors, ``5xx``/``4xx``,
  status codes, rate-limited (429), health checks (the health/readiness routes present), database calls,
  HTTP methods, routes (``/api/...``), latency thresholds with units, span counts;
* anything else through the field catalog: a word (or a few) equal to a field's top value (``payments``,
  ``staging``, ``eu-west-1``), tolerant of case, separators, plurals and small typos; a noun naming a field nearby
  (``the payments *service*``, ``free-*tier* users``) decides between fields holding the same value.

A word it cannot place makes the whole intent fail with a message naming the clause and the word, so a policy is
never silently partial. Every grounding is reported as a :class:`~nectar.propose.common.Note`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from nectar.config import DEFAULT_ERROR_DEFINITION
from nectar.corpus.stats import FieldCatalog
from nectar.errors import ErrorGroup, NectarError, Span
from nectar.policy import ir
from nectar.policy.format import format_expr
from nectar.propose.common import Note, Proposal, RuleSpec, build_policy, policy_text, slug, unique_names
from nectar.propose.grounding import Grounder, quote

_TOKEN = re.compile(r"/[^\s,;()]*|[<>]=?|\d[\w.]*%?|[A-Za-z_][\w.\-'’]*|[,;()%&]")
_CONNECTORS = {"and", "then", "but", "also", "plus", "while", "finally", "otherwise", "&"}
_KEEP = {"keep", "retain", "preserve", "save", "store", "include", "capture", "send", "accept"}
_DROP = {"drop", "discard", "ignore", "exclude", "skip", "remove", "reject", "filter", "suppress", "throw"}
_SAMPLE = {"sample", "downsample", "thin", "trim"}
_CATCH_ALL = {"everything", "everyone", "everybody", "else", "rest", "remaining", "other", "others", "all", "anything"}
_FILLER = {
    "the", "a", "an", "every", "each", "any", "trace", "traces", "request", "requests", "call", "calls",
    "traffic", "that", "which", "who", "whose", "with", "from", "to", "in", "on", "of", "for", "by", "at",
    "touches", "touch", "touching", "hit", "hits", "hitting", "involve", "involves", "involving", "through",
    "via", "containing", "contain", "contains", "have", "has", "having", "users", "user", "customers",
    "customer", "ones", "events", "event", "always", "only", "just", "too", "as", "well", "is", "are", "where",
    "there", "it", "them", "they", "their", "its", "out", "away", "please", "spans", "span", "operations",
    "operation", "endpoint", "endpoints", "service", "services", "coming", "going", "sent", "made", "do",
    "does", "happen", "happening", "served", "serving", "handled", "be", "being", "should", "must", "we",
    "our", "my", "you", "your", "also", "and", "or", "either", "both", "type", "kind", "rate", "status",
    "http", "code", "codes", "response", "responses", "accounts", "account", "tenants", "tenant", "return",
    "returns", "returned", "returning", "respond", "responds", "responded", "responding", "end", "ends",
    "ending", "result", "results", "resulting", "high", "long-running",
}  # fmt: skip
_ERROR_WORDS = {
    "error", "errors", "failed", "failing", "failure", "failures", "erroring", "errored", "broken", "fail", "fails",
}  # fmt: skip
_EXCEPT = ("except", "excluding", "besides", "but not", "other than", "apart from", "save for", "minus")
_OPPOSITE = {"keep": "drop", "drop": "keep"}
_BUDGET = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(k|thousand)?\s*(?:events?|spans?)?\s*"
    r"(?:per\s+second|per\s+sec\b|a\s+second|/\s*s(?:ec(?:ond)?)?\b|eps\b)",
    re.I,
)
_BUDGET_WORDS = {
    "budget", "of", "under", "below", "within", "stay", "staying", "keep", "keeping", "it", "at", "most", "max",
    "maximum", "a", "the", "with", "total", "and", "limit", "limited", "to", "cap", "capped", "we", "can",
    "afford", "no", "more", "than", "over", "in", "all", "overall", "events", "spans", "target", "aim", "for",
}  # fmt: skip
_DB_WORDS = {"database", "databases", "db", "sql", "queries", "query"}
_METHODS = {"get", "post", "put", "delete", "patch", "head", "options", "connect", "trace"}
_HEALTH_TOKENS = re.compile(r"^(health\w*|ready\w*|readiness|live[sz]?|liveness|alive|ping|hc)$")
_UNITS = {
    "ms": "ms", "msec": "ms", "msecs": "ms", "millisecond": "ms", "milliseconds": "ms",
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
}  # fmt: skip
_COMPARATIVES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("more", "than"), ">"), (("longer", "than"), ">"), (("slower", "than"), ">"), (("greater", "than"), ">"),
    (("at", "least"), ">="), (("less", "than"), "<"), (("fewer", "than"), "<"), (("faster", "than"), "<"),
    (("shorter", "than"), "<"), (("at", "most"), "<="), (("over",), ">"), (("above",), ">"),
    (("exceeding",), ">"), (("past",), ">"), (("beyond",), ">"), (("under",), "<"), (("below",), "<"),
    (("within",), "<="), ((">",), ">"), ((">=",), ">="), (("<",), "<"), (("<=",), "<="),
)  # fmt: skip
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10, "hundred": 100, "thousand": 1000}


@dataclass(slots=True)
class _Tok:
    text: str
    start: int

    @property
    def low(self) -> str:
        return self.text.lower().rstrip("'’").removesuffix("'s").removesuffix("’s")


@dataclass(slots=True)
class _Pred:
    text: str  # match-expression text
    scope: str  # "span" (true of one span) or "trace" (span count)
    name: str  # for the rule name
    note: Note | None = None


@dataclass(slots=True)
class _Clause:
    toks: list[_Tok]
    verb: str | None = None  # keep, drop, sample
    rate: tuple[str, int] | None = None  # (action text, 1-in-N)
    rate_words: str = ""
    subject: list[_Tok] = field(default_factory=list)

    def text(self, intent: str) -> str:
        return intent[self.toks[0].start : self.toks[-1].start + len(self.toks[-1].text)].strip()


class _Fail(Exception):
    def __init__(self, message: str, tok: _Tok | None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tok = tok
        self.hint = hint


def _tokens(intent: str) -> list[_Tok]:
    out = []
    for m in _TOKEN.finditer(intent):
        text = m.group(0)
        end_of_sentence = False
        if len(text) > 1 and text[-1] == "." and (m.end() == len(intent) or intent[m.end()].isspace()):
            text, end_of_sentence = text[:-1], True  # "Keep errors. Drop health checks." : two sentences
        out.append(_Tok(text, m.start()))
        if end_of_sentence:
            out.append(_Tok(";", m.end() - 1))
    return out


def _is_verb(tok: _Tok) -> bool:
    return tok.low in _KEEP | _DROP | _SAMPLE or tok.low in ("never", "don't", "dont", "do")


# --- clauses ------------------------------------------------------------------------------------------------


def _segments(toks: list[_Tok]) -> list[list[_Tok]]:
    segs: list[list[_Tok]] = [[]]
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


def _read_rate(toks: list[_Tok]) -> tuple[list[_Tok], tuple[str, int] | None, str]:
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
            n = _int_word(lows[i + 2])
            if n is not None:
                span, action = (i, i + 3), _one_in(n, toks[i])
        elif i + 3 < len(lows) and low in ("1", "one") and lows[i + 1 : i + 3] == ["out", "of"]:
            n = _int_word(lows[i + 3])
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


def _int_word(w: str) -> int | None:
    if w.isdigit():
        return int(w)
    return _NUMBER_WORDS.get(w)


def _pct_action(pct: float, tok: _Tok) -> tuple[str, int]:
    if pct <= 0:
        return "drop", 0
    if pct >= 100:
        return "keep", 1
    written = (str(int(pct)) if pct.is_integer() else repr(pct)) + "%"
    return f"sample({written})", max(1, round(100 / pct))


def _one_in(n: int, tok: _Tok) -> tuple[str, int]:
    if n <= 0:
        raise _Fail("`1 in 0` is not a sample rate", tok, "write e.g. `1 in 10`")
    return ("keep", 1) if n == 1 else (f"sample(1/{n})", n)


def _read_verb(toks: list[_Tok]) -> tuple[list[_Tok], str | None]:
    while toks and toks[0].low in _CONNECTORS | {"please", "always", "only", "just"}:
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


def _split_and(seg: list[_Tok]) -> list[list[_Tok]]:
    """Split a segment at ``and``/``then`` when a verb follows, or when both sides carry their own rate."""
    parts: list[list[_Tok]] = [[]]
    for i, t in enumerate(seg):
        if t.low in _CONNECTORS and parts[-1] and i + 1 < len(seg):
            nxt = seg[i + 1 :]
            j = 0
            while j < len(nxt) and nxt[j].low in _CONNECTORS | {"always", "only", "just"}:
                j += 1
            starts_verb = j < len(nxt) and (_is_verb(nxt[j]) or nxt[j].low in ("stay", "budget"))
            both_rates = _read_rate(parts[-1])[1] is not None and _read_rate(_until_connector(nxt))[1] is not None
            if starts_verb or both_rates:
                parts.append([])
                continue
        parts[-1].append(t)
    return [p for p in parts if p]


def _until_connector(toks: list[_Tok]) -> list[_Tok]:
    out = []
    for t in toks:
        if t.low in _CONNECTORS:
            break
        out.append(t)
    return out


def split_clauses(intent: str) -> list[_Clause]:
    """The intent's clauses in priority order, each with its verb, rate and subject words."""
    clauses: list[_Clause] = []
    for seg in _segments(_tokens(intent)):
        for part in _split_and(seg):
            rest, verb = _read_verb(part)
            rest, rate, words = _read_rate(rest)
            rest = [t for t in rest if t.text not in ("(", ")")]
            c = _Clause(part, verb, rate, words, rest)
            is_budget = _BUDGET.search(" ".join(t.text for t in part)) is not None
            if verb is None and rate is None and clauses and clauses[-1].verb is not None and not is_budget:
                prev = clauses[-1]  # "keep errors, slow requests and ..." : one more item of the same clause
                prev.toks = prev.toks + part
                prev.subject = [*prev.subject, _Tok("and", part[0].start), *rest]
                continue
            clauses.append(c)
    return clauses


# --- subjects -----------------------------------------------------------------------------------------------


class _Interpreter:
    def __init__(self, g: Grounder, error_definition: str | None = None) -> None:
        self.g = g
        self.error_definition = error_definition

    def _status(self, tok: _Tok | None) -> str:
        f = self.g.role("status")
        if f is None:
            raise _Fail("this corpus has no HTTP status field", tok, "ingest traces with http.status_code")
        return self.g.written(f)

    def errors(self, tok: _Tok) -> _Pred:
        parts = []
        flag = self.g.bool_field("error")
        if flag is not None:
            parts.append(f"{self.g.written(flag)} == true")
        status = self.g.role("status")
        if status is not None:
            parts.append(f"{self.g.written(status)} >= 500")
        conv = list(parts)
        extra = self.error_definition
        if extra and extra.strip() not in (*parts, " or ".join(parts), DEFAULT_ERROR_DEFINITION):
            parts.append(f"({extra.strip()})")  # the project's own definition (nectar.toml prove.error_definition)
        if not parts:
            raise _Fail("cannot tell errors in this corpus: no boolean `error` field and no HTTP status", tok)
        text = " or ".join(parts)
        detail = "convention: an error is a span with " + " or ".join(
            p.replace(" == true", " = true").replace(">= 500", ">= 500 (HTTP server error)") for p in conv
        )
        if len(parts) > len(conv):
            detail += f", or what nectar.toml prove.error_definition says ({extra})"
        return _Pred(f"({text})" if len(parts) > 1 else text, "span", "errors", Note(tok.text, text, detail))

    def status_range(self, lo: int, hi: int, phrase: str, name: str, tok: _Tok) -> _Pred:
        f = self._status(tok)
        if hi >= 600:
            text = f"{f} >= {lo}"
            return _Pred(text, "span", name, Note(phrase, text, f"HTTP status {lo} or more"))
        text = f"{f} >= {lo} and {f} < {hi}"
        return _Pred(text, "span", name, Note(phrase, f"span({text})", f"HTTP status {lo}-{hi - 1}, on one span"))

    def status_code(self, code: int, phrase: str, tok: _Tok) -> _Pred:
        f = self._status(tok)
        text = f"{f} == {code}"
        seen = code in self.g.int_values(self.g.role("status") or "")
        detail = f"HTTP status {code}" + ("" if seen else " (no span in the corpus has it)")
        return _Pred(text, "span", str(code), Note(phrase, text, detail))

    def health(self, phrase: str, tok: _Tok) -> _Pred:
        fields = [f for f in (self.g.role("route"), "name", "span.name") if f is not None and self.g.has(f)]
        for f in fields:
            vals = sorted(
                v
                for v in self.g.values_of(f)
                if any(_HEALTH_TOKENS.match(p) for p in re.split(r"[^a-z0-9]+", v.lower()))
            )
            if vals:
                w = self.g.written(f)
                text = f"{w} == {quote(vals[0])}" if len(vals) == 1 else f"{w} in ({', '.join(quote(v) for v in vals)})"
                return _Pred(
                    text,
                    "span",
                    "health-checks",
                    Note(phrase, text, f"the health/readiness values of {f} in the corpus"),
                )
        raise _Fail("no health-check or readiness routes in this corpus", tok, "name the route instead, e.g. /healthz")

    def duration(self, op: str, num: str, unit: str, phrase: str, tok: _Tok) -> _Pred:
        f = self.g.role("duration")
        if f is None:
            raise _Fail("this corpus has no duration field", tok)
        w = "duration" if self.g.aliases.get("duration") == (f,) else self.g.written(f)
        lit = f"{num}{unit}"  # a duration literal is milliseconds against any field (README "Match expressions")
        text = f"{w} {op} {lit}"
        return _Pred(text, "span", "slow" if op in (">", ">=") else "fast", Note(phrase, text, f"span duration ({f})"))

    def span_count(self, op: str, num: str, phrase: str) -> _Pred:
        text = f"span_count() {op} {num}"
        return _Pred(text, "trace", f"{num}-spans", Note(phrase, text, "the number of spans in the trace"))

    def method(self, word: str, tok: _Tok) -> _Pred:
        f = self.g.role("method")
        if f is None:
            raise _Fail(f"this corpus has no HTTP method field for {word!r}", tok)
        vals = {v.upper(): v for v in self.g.values_of(f)}
        value = vals.get(word.upper(), word.upper())
        text = f"{self.g.written(f)} == {quote(value)}"
        detail = f"HTTP method ({f})" + ("" if word.upper() in vals else "; no span in the corpus has it")
        return _Pred(text, "span", value.lower(), Note(tok.text, text, detail))

    def route(self, path: str, tok: _Tok) -> _Pred:
        f = self.g.role("route")
        fields = [x for x in (f, "name") if x is not None and self.g.has(x)]
        prefix = path.endswith("*")
        p = path.rstrip("*")
        for fld in fields:
            vals = self.g.values_of(fld)
            w = self.g.written(fld)
            if not prefix and p in vals:
                text = f"{w} == {quote(p)}"
                return _Pred(text, "span", slug(p), Note(tok.text, text, f"{fld} has {p!r}"))
            starts = [v for v in vals if v.startswith(p)]
            if starts and (prefix or p.endswith("/") or fld == f):
                text = f"{w} starts_with {quote(p)}"
                return _Pred(text, "span", slug(p), Note(tok.text, text, f"routes under {p} ({', '.join(starts[:3])})"))
        if f is None:
            raise _Fail(f"this corpus has no route field for {path!r}", tok)
        text = f"{self.g.written(f)} == {quote(p)}"
        return _Pred(text, "span", slug(p), Note(tok.text, text, f"{f} (no span in the corpus has this route)"))

    def database(self, tok: _Tok) -> _Pred:
        f = self.g.role("db")
        if f is None:
            raise _Fail("this corpus has no database spans (no db.system field)", tok)
        text = f"exists({self.g.written(f)})"
        return _Pred(text, "span", "db", Note(tok.text, text, f"database calls: spans with {f}"))


def _number_unit(toks: list[_Tok], i: int) -> tuple[str, str | None, int] | None:
    """A number at ``toks[i]`` with an optional unit (attached or next word): (number, unit, tokens used)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]*)", toks[i].low)
    if not m:
        n = _int_word(toks[i].low)
        if n is None:
            return None
        m = re.fullmatch(r"(\d+)()", str(n))
        assert m is not None
    num, unit = m.group(1), m.group(2)
    if unit:
        return (num, _UNITS[unit], 1) if unit in _UNITS else None
    if i + 1 < len(toks) and toks[i + 1].low in _UNITS:
        return num, _UNITS[toks[i + 1].low], 2
    return num, None, 1


_SLOW = {"slow", "slower", "slowest", "latency", "long", "longer", "lengthy", "taking", "take", "takes", "lasting"}
_BIG = {"big", "bigger", "large", "larger", "huge", "small", "smaller", "tiny"}
_GENERIC = {
    "the", "a", "an", "all", "every", "each", "any", "trace", "traces", "request", "requests", "traffic", "span",
    "spans", "call", "calls", "event", "events", "of", "in", "from", "for", "to", "with", "that", "is", "are",
}  # fmt: skip
_FAST = {"fast", "faster", "quick", "quicker"}
_HEALTH_WORDS = {"health", "healthcheck", "healthchecks", "health-check", "health-checks", "readiness", "liveness"}
_HEALTH_TAIL = {"check", "checks", "probe", "probes", "endpoint", "endpoints", "route", "routes"}
_RATE_LIMITED = {"rate-limited", "ratelimited", "throttled", "rate-limit", "rate-limits"}


@dataclass(slots=True)
class _Item:
    preds: list[_Pred] = field(default_factory=list)
    catch_all: bool = False

    def text(self) -> str:
        seen: list[_Pred] = []
        for p in self.preds:
            if p.text not in [s.text for s in seen]:
                seen.append(p)
        span_preds = [p.text for p in seen if p.scope == "span"]
        trace_preds = [p.text for p in seen if p.scope == "trace"]
        parts = []
        if len(span_preds) > 1:
            parts.append("span(" + " and ".join(span_preds) + ")")
        elif span_preds:
            parts.append(f"span({span_preds[0]})" if " and " in span_preds[0] else span_preds[0])
        parts += trace_preds
        return " and ".join(parts)

    def name(self) -> str:
        return "-".join(dict.fromkeys(p.name for p in self.preds))


class _SubjectReader(_Interpreter):
    _prefer: tuple[str, ...] = ()

    def item(self, toks: list[_Tok]) -> _Item:
        """One item of a subject: every word must be understood; all its conditions hold together."""
        it = _Item()
        nouns = [t.text for t in toks if self.g.has(t.text)]  # a field named as such: "user.tier is gold"
        nouns += [f for t in toks if t.low not in _ERROR_WORDS | _DB_WORDS for f in self.g.fields_for_noun(t.low)]
        prefer = tuple(dict.fromkeys(nouns))
        self._prefer = prefer
        need_threshold: _Tok | None = None
        need_size: _Tok | None = None
        i = 0
        toks = list(toks)
        while i < len(toks):
            t, low = toks[i], toks[i].low
            nxt = toks[i + 1].low if i + 1 < len(toks) else ""
            used = self._comparative(toks, i, it)
            if used:
                i += used
                continue
            if low in _SLOW | _FAST:
                need_threshold = need_threshold or t
            elif low in _BIG:
                need_size = need_size or t
            elif low in ("server", "client") and nxt in _ERROR_WORDS:
                lo, hi = (500, 600) if low == "server" else (400, 500)
                it.preds.append(self.status_range(lo, hi, f"{t.text} {toks[i + 1].text}", f"{lo // 100}xx", t))
                i += 2
                continue
            elif re.fullmatch(r"[1-5]xxs?", low):
                low = low[:3]
                lo = int(low[0]) * 100
                it.preds.append(self.status_range(lo, 600 if lo == 500 else lo + 100, t.text, low, t))
            elif re.fullmatch(r"[1-5]\d\ds?", low):
                it.preds.append(self.status_code(int(low[:3]), t.text, t))
            elif low in _RATE_LIMITED or (low == "rate" and nxt in ("limited", "limit")):
                phrase = t.text if low != "rate" else f"{t.text} {toks[i + 1].text}"
                it.preds.append(self.status_code(429, phrase, t))
                i += 1 if low != "rate" else 2
                continue
            elif low in _HEALTH_WORDS or (low in ("probe", "probes") and not it.preds):
                n = 2 if nxt in _HEALTH_TAIL else 1
                it.preds.append(self.health(" ".join(x.text for x in toks[i : i + n]), t))
                i += n
                continue
            elif low in _ERROR_WORDS:
                it.preds.append(self.errors(t))
            elif low in _DB_WORDS:
                it.preds.append(self.database(t))
            elif (t.text.upper() == t.text and low in _METHODS) or (
                low in _METHODS and nxt in ("request", "requests", "call", "calls")
            ):
                it.preds.append(self.method(low, t))
            elif t.text.startswith("/"):
                it.preds.append(self.route(t.text, t))
            else:
                used = self._value(toks, i, it, prefer)
                if used:
                    i += used
                    continue
                if "-" in t.text and t.text.strip("-"):
                    parts = [p for p in t.text.split("-") if p]
                    pos = t.start
                    sub = []
                    for p in parts:
                        sub.append(_Tok(p, t.start + t.text.index(p, pos - t.start)))
                        pos = sub[-1].start + len(p)
                    toks[i : i + 1] = sub
                    continue
                if low in _CATCH_ALL:
                    it.catch_all = True
                elif low in _FILLER or self.g.fields_for_noun(low) or self.g.has(t.text):
                    pass
                else:
                    raise _Fail(self._unknown(t), t, self._suggest(t))
            i += 1
        if need_threshold is not None and not any(p.name in ("slow", "fast") for p in it.preds):
            raise _Fail(
                f"{need_threshold.text!r} needs a threshold", need_threshold, "say how slow, e.g. `slower than 2s`"
            )
        if need_size is not None and not any(p.scope == "trace" for p in it.preds):
            raise _Fail(f"{need_size.text!r} needs a size", need_size, "say how big, e.g. `with more than 50 spans`")
        if it.preds:
            it.catch_all = False
            return it
        # No condition: a catch-all only when the words say so ("everything else", "the rest", "other regions",
        # "all traffic"); "keep customer traces" names no traces this proposer can find, so it is refused.
        vague = [t for t in toks if t.low not in _GENERIC | _CATCH_ALL and not self.g.fields_for_noun(t.low)]
        if vague:
            raise _Fail(f"{vague[0].text!r} does not say which traces", vague[0], self._suggest(vague[0]))
        it.catch_all = True
        return it

    def _unknown(self, t: _Tok) -> str:
        return f"{t.text!r} is not a value, field or sampling word this proposer knows"

    def _suggest(self, t: _Tok) -> str:
        for f in self._prefer:
            vals = self.g.values_of(f)
            if vals:
                return f"{f} has: " + ", ".join(vals[:8]) + (" ..." if len(vals) > 8 else "")
        near = self.g.closest_values(t.low)
        if near:
            return "values in the corpus that are close: " + ", ".join(near)
        return "name a value present in the corpus (see `nectar corpus fields`), or write the policy by hand"

    def _comparative(self, toks: list[_Tok], i: int, it: _Item) -> int:
        lows = [t.low for t in toks]
        for words, op in _COMPARATIVES:
            n = len(words)
            if tuple(lows[i : i + n]) != words or i + n >= len(toks):
                continue
            nu = _number_unit(toks, i + n)
            if nu is None:
                continue
            num, unit, used = nu
            end = i + n + used
            phrase = " ".join(t.text for t in toks[i:end])
            if unit is not None:
                it.preds.append(self.duration(op, num, unit, phrase, toks[i]))
                return end - i
            if end < len(toks) and lows[end] in ("span", "spans"):
                it.preds.append(self.span_count(op, num, phrase + " " + toks[end].text))
                return end - i + 1
            if "status" in lows or "code" in lows:
                f = self._status(toks[i])
                text = f"{f} {op} {num}"
                it.preds.append(_Pred(text, "span", f"status-{num}", Note(phrase, text, "HTTP status")))
                return end - i
            raise _Fail(f"{phrase!r}: a number needs a unit (ms, s, m, h) or `spans`", toks[i + n])
        return 0

    def _value(self, toks: list[_Tok], i: int, it: _Item, prefer: tuple[str, ...]) -> int:
        if toks[i].low in _FILLER | _CATCH_ALL:
            return 0
        for n in (3, 2, 1):
            window = toks[i : i + n]
            if len(window) < n or any(w.text in ("and", "or") for w in window[1:]):
                continue
            phrase = " ".join(w.text.rstrip("'’").removesuffix("'s") for w in window)
            hits = self.g.find_values(phrase, prefer)
            if not hits:
                continue
            h = hits[0]
            w = self.g.written(h.field)
            text = f"{w} == {quote(str(h.value))}"
            detail = f"{h.field} has {str(h.value)!r} on {h.count:,} spans"
            if h.how != "exact":
                detail += f" (matched by {h.how})"
            others = sorted({x.field for x in hits[1:] if x.field != h.field})
            if others:
                detail += f"; also a value of {', '.join(others)}"
            it.preds.append(_Pred(text, "span", slug(str(h.value)), Note(phrase, text, detail)))
            return n
        return 0


def _union(items: list[_Item]) -> str:
    """Items of one subject joined by ``or``; equality tests of one field become ``in (...)``."""
    texts = list(dict.fromkeys(i.text() for i in items))
    eq = [re.fullmatch(r'(\S+) == (".*"|-?\d+)', t) for t in texts]
    if len(texts) > 1 and all(eq) and len({m.group(1) for m in eq if m}) == 1:
        f = eq[0].group(1) if eq[0] else ""
        return f"{f} in ({', '.join(m.group(2) for m in eq if m)})"
    if len(texts) == 1:
        return texts[0]
    return " or ".join(f"({t})" if " and " in t or " or " in t else t for t in texts)


@dataclass(frozen=True, slots=True)
class _Rule:
    spec: RuleSpec
    catch_all: bool
    clause: str


def _strip_connectors(text: str) -> str:
    words = text.split()
    while words and words[0].lower() in _CONNECTORS:
        words = words[1:]
    return " ".join(words)


def _dedupe(notes: list[Note]) -> list[Note]:
    """One note per meaning: phrases that meant the same expression are listed together."""
    by_meaning: dict[str, Note] = {}
    for n in notes:
        seen = by_meaning.get(n.meaning)
        if seen is None:
            by_meaning[n.meaning] = n
        elif n.phrase not in seen.phrase.split(" / "):
            by_meaning[n.meaning] = Note(f"{seen.phrase} / {n.phrase}", n.meaning, seen.detail)
    return list(by_meaning.values())


def _fail_error(intent: str, clause: str, f: _Fail) -> NectarError:
    span = Span("<intent>", 1, f.tok.start + 1, len(f.tok.text), intent) if f.tok else None
    return NectarError(f"cannot understand the clause {clause!r}: {f.message}", span, f.hint)


@dataclass(frozen=True, slots=True)
class ParsedIntent:
    """What an intent asks for: rules in priority order, the groundings made, and a budget if one was given."""

    rules: tuple[_Rule, ...]
    notes: tuple[Note, ...]
    budget_per_second: float | None = None


def _budget(c: _Clause, ctext: str) -> float | None:
    """A budget clause ("stay under 2,000 events per second"): the number, or None when this is not one."""
    m = _BUDGET.search(ctext)
    if m is None:
        return None
    value = float(m.group(1).replace(",", "")) * (1000 if m.group(2) else 1)
    rest = (ctext[: m.start()] + " " + ctext[m.end() :]).lower()
    for w in re.findall(r"[a-z']+", rest):
        if w not in _BUDGET_WORDS:
            tok = next((t for t in c.toks if t.low == w), c.toks[0])
            raise _Fail(
                f"{w!r} in a budget clause", tok, "write the budget on its own: `stay under 500 events per second`"
            )
    if value <= 0:
        raise _Fail("a budget must be more than 0 events per second", c.toks[0])
    return value


def _subject_items(reader: _SubjectReader, toks: list[_Tok]) -> list[_Item]:
    items: list[_Item] = []
    current: list[_Tok] = []
    for t in [*toks, _Tok("and", -1)]:
        if t.low in ("and", "or", "&", "plus"):
            if current:
                items.append(reader.item(current))
            current = []
        else:
            current.append(t)
    return items or [_Item(catch_all=True)]


def _split_except(toks: list[_Tok]) -> tuple[list[_Tok], list[_Tok], _Tok | None]:
    lows = [t.low for t in toks]
    for i in range(len(toks)):
        for phrase in _EXCEPT:
            words = phrase.split()
            if lows[i : i + len(words)] == words:
                return toks[:i], toks[i + len(words) :], toks[i]
    return toks, [], None


def _clause_rules(c: _Clause, ctext: str, reader: _SubjectReader) -> tuple[list[_Rule], list[Note]]:
    if c.rate is not None:
        action, n = c.rate
    elif c.verb == "sample":
        raise _Fail("`sample` needs a rate", c.toks[0], "e.g. `sample ... at 10%` or `1 in 20`")
    elif c.verb is None:
        raise _Fail("no action", c.toks[0], "start the clause with keep, drop or sample, or give a rate")
    else:
        action, n = c.verb, 1
    main, exceptions, except_tok = _split_except(c.subject)
    items = _subject_items(reader, main)
    catch_all = any(i.catch_all for i in items)
    desc = _strip_connectors(ctext)
    desc = desc[:1].upper() + desc[1:200]
    rules: list[_Rule] = []
    notes: list[Note] = []
    if except_tok is not None:
        # "keep everything except health checks": the exception first, with the other action (Refinery: the
        # first matching rule decides, so an earlier rule is how a policy says "but not these").
        if not catch_all or not exceptions:
            raise _Fail(
                f"{except_tok.text!r} is only understood after 'everything'",
                except_tok,
                "write the exception as its own clause first: `drop health checks, keep everything else`",
            )
        ex_items = _subject_items(reader, exceptions)
        if any(i.catch_all for i in ex_items):
            raise _Fail(f"the exception after {except_tok.text!r} names no traces", except_tok)
        other = _OPPOSITE.get(action, "keep")
        rules.append(
            _Rule(RuleSpec(slug("-".join(i.name() for i in ex_items)), _union(ex_items), other, desc), False, ctext)
        )
        notes += [p.note for i in ex_items for p in i.preds if p.note is not None]
        notes.append(Note(except_tok.text, other, f"the exception gets the other action ({other}), in a rule before"))
    match = "true" if catch_all else _union(items)
    # One rule per item ("errors and slow requests": two rules, same action), unless they merged into one
    # `in (...)` list; the same decisions either way (`or` is consecutive rules), clearer per-rule figures.
    groups = [items] if catch_all or " in (" in match or len(items) == 1 else [[i] for i in items]
    for g in groups:
        m = "true" if catch_all else _union(g)
        name = "rest" if catch_all else slug("-".join(i.name() for i in g))
        rules.append(_Rule(RuleSpec(name, m, action, desc), catch_all, ctext))
    notes += [p.note for i in items for p in i.preds if p.note is not None]
    if c.rate is not None:
        kept = "keep every trace" if action == "keep" else "drop them" if action == "drop" else f"keep 1 in {n}"
        notes.append(Note(c.rate_words, action, kept))
    return rules, notes


def parse_intent(
    intent: str,
    catalog: FieldCatalog,
    aliases: Mapping[str, tuple[str, ...]],
    error_definition: str | None = None,
) -> ParsedIntent:
    """The rules an intent asks for, in priority order, and the groundings made. Raises on any clause not understood
    (all of them, each naming its clause and pointing at the word). ``error_definition`` (the project's, when not
    the default) is added to what "errors" means."""
    reader = _SubjectReader(Grounder(catalog, aliases), error_definition)
    rules: list[_Rule] = []
    notes: list[Note] = []
    errors: list[NectarError] = []
    budget: float | None = None
    try:
        clauses = split_clauses(intent)
    except _Fail as f:
        raise _fail_error(intent, intent, f) from None
    if not clauses:
        raise NectarError("the intent is empty", hint='e.g. nectar propose "keep errors, sample the rest at 1%"')
    for c in clauses:
        ctext = c.text(intent)
        try:
            b = _budget(c, ctext)
            if b is not None:
                budget = b
                notes.append(Note(ctext, f"budget_per_second {b:g}", "checked by the prover's budget check"))
                continue
            got, more = _clause_rules(c, ctext, reader)
            rules += got
            notes += more
        except _Fail as f:
            errors.append(_fail_error(intent, ctext, f))
    if errors:
        raise errors[0] if len(errors) == 1 else ErrorGroup(errors)
    for k, r in enumerate(rules[:-1]):
        if r.catch_all:
            later = rules[k + 1].clause
            raise NectarError(
                f"the clause {later!r} comes after {r.clause!r}, which already decides every remaining trace",
                hint="clauses are in priority order: put the catch-all ('the rest', 'everything else') last",
            )
    return ParsedIntent(tuple(rules), tuple(_dedupe(notes)), budget)


def propose_offline(
    intent: str,
    catalog: FieldCatalog,
    aliases: Mapping[str, tuple[str, ...]],
    base: ir.Policy | None = None,
    error_definition: str | None = None,
) -> Proposal:
    """Turn ``intent`` into a validated policy grounded in ``catalog``; with ``base``, refine that policy.

    Refining keeps the base policy's rules in their order, inserts the new rules before its catch-all, and lets a
    new catch-all ("sample the rest at 5%") replace the old one.
    """
    parsed = parse_intent(intent, catalog, aliases, error_definition)
    rules, notes = parsed.rules, parsed.notes
    assumptions: list[str] = []
    new = [r.spec for r in rules if not r.catch_all]
    new_rest = [r.spec for r in rules if r.catch_all]
    if base is not None:
        old = list(base.ordered_rules())
        old_rest = [r for r in old if isinstance(r.match, ir.Const) and r.match.value]
        old_specs = [_spec(r) for r in old if r not in old_rest]
        rest = new_rest or [_spec(r) for r in old_rest[:1]]
        specs = old_specs + new + rest
        name, description = base.name, base.description
        assumptions.append(
            f"refined {base.name!r}: new rules go after its {len(old_specs)} rule(s), before its catch-all"
        )
    else:
        specs = new + new_rest
        name = slug(" ".join(re.findall(r"[A-Za-z0-9]+", intent)[:6]), 48)
        description = intent if len(intent) <= 200 else intent[:197] + "..."
    if not (specs and specs[-1].match == "true"):
        specs.append(RuleSpec("rest", "true", "keep", "traces no clause names"))
        assumptions.append(
            "traces no clause names are kept (Refinery's default); say 'sample the rest at N%' to change"
        )
    names = unique_names([s.name for s in specs])
    specs = [RuleSpec(n, s.match, s.action, s.description) for n, s in zip(names, specs, strict=True)]
    budget = parsed.budget_per_second if parsed.budget_per_second is not None else (base and base.budget_per_second)
    text = policy_text(name, specs, description, budget or None)
    try:
        policy, canonical = build_policy(text, aliases)
    except NectarError as exc:  # pragma: no cover - a proposer bug, reported rather than written
        raise NectarError(f"the offline proposer built an invalid policy: {exc.message}", hint=text) from None
    return Proposal(policy, canonical, "offline", notes, tuple(assumptions))


def _spec(r: ir.PolicyRule) -> RuleSpec:
    from nectar.policy.format import format_action

    return RuleSpec(r.name, format_expr(r.match), format_action(r.action), r.description)


__all__ = ["ParsedIntent", "parse_intent", "propose_offline", "split_clauses"]
