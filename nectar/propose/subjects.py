"""The subject of a clause: which traces its words name, as match-expression conditions grounded in the corpus.

A subject is a union of items (``errors and slow requests`` = either); the words of one item all hold together,
on one span (``GET requests to /api/search`` = ``span(...)``, Refinery ``Scope: span``) except span counts, which
are properties of the trace. Every word must be understood: a convention (errors, 4xx, health checks, methods,
routes, thresholds with units, span counts), a corpus value (through :class:`~nectar.propose.grounding.Grounder`),
a noun naming a field, or a filler word; anything else raises :class:`NotUnderstood` pointing at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nectar.config import DEFAULT_ERROR_DEFINITION
from nectar.propose.clauses import NotUnderstood, Tok, int_word
from nectar.propose.common import Note, slug
from nectar.propose.grounding import Grounder, quote

CATCH_ALL = {"everything", "everyone", "everybody", "else", "rest", "remaining", "other", "others", "all", "anything"}
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
_DB_WORDS = {"database", "databases", "db", "sql", "queries", "query"}
_METHODS = {"get", "post", "put", "delete", "patch", "head", "options", "connect", "trace"}
_HEALTH_TOKENS = re.compile(r"^(health\w*|ready\w*|readiness|live[sz]?|liveness|alive|ping|hc)$")
UNITS = {
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


@dataclass(slots=True)
class Pred:
    text: str  # match-expression text
    scope: str  # "span" (true of one span) or "trace" (span count)
    name: str  # for the rule name
    note: Note | None = None


class _Interpreter:
    def __init__(self, g: Grounder, error_definition: str | None = None) -> None:
        self.g = g
        self.error_definition = error_definition

    def _status(self, tok: Tok | None) -> str:
        f = self.g.role("status")
        if f is None:
            raise NotUnderstood("this corpus has no HTTP status field", tok, "ingest traces with http.status_code")
        return self.g.written(f)

    def errors(self, tok: Tok) -> Pred:
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
            raise NotUnderstood("cannot tell errors in this corpus: no boolean `error` field and no HTTP status", tok)
        text = " or ".join(parts)
        detail = "convention: an error is a span with " + " or ".join(
            p.replace(" == true", " = true").replace(">= 500", ">= 500 (HTTP server error)") for p in conv
        )
        if len(parts) > len(conv):
            detail += f", or what nectar.toml prove.error_definition says ({extra})"
        return Pred(f"({text})" if len(parts) > 1 else text, "span", "errors", Note(tok.text, text, detail))

    def status_range(self, lo: int, hi: int, phrase: str, name: str, tok: Tok) -> Pred:
        f = self._status(tok)
        if hi >= 600:
            text = f"{f} >= {lo}"
            return Pred(text, "span", name, Note(phrase, text, f"HTTP status {lo} or more"))
        text = f"{f} >= {lo} and {f} < {hi}"
        return Pred(text, "span", name, Note(phrase, f"span({text})", f"HTTP status {lo}-{hi - 1}, on one span"))

    def status_code(self, code: int, phrase: str, tok: Tok) -> Pred:
        f = self._status(tok)
        text = f"{f} == {code}"
        seen = code in self.g.int_values(self.g.role("status") or "")
        detail = f"HTTP status {code}" + ("" if seen else " (no span in the corpus has it)")
        return Pred(text, "span", str(code), Note(phrase, text, detail))

    def health(self, phrase: str, tok: Tok) -> Pred:
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
                return Pred(
                    text,
                    "span",
                    "health-checks",
                    Note(phrase, text, f"the health/readiness values of {f} in the corpus"),
                )
        raise NotUnderstood(
            "no health-check or readiness routes in this corpus", tok, "name the route instead, e.g. /healthz"
        )

    def duration(self, op: str, num: str, unit: str, phrase: str, tok: Tok) -> Pred:
        f = self.g.role("duration")
        if f is None:
            raise NotUnderstood("this corpus has no duration field", tok)
        w = "duration" if self.g.aliases.get("duration") == (f,) else self.g.written(f)
        lit = f"{num}{unit}"  # a duration literal is milliseconds against any field (README "Match expressions")
        text = f"{w} {op} {lit}"
        return Pred(text, "span", "slow" if op in (">", ">=") else "fast", Note(phrase, text, f"span duration ({f})"))

    def span_count(self, op: str, num: str, phrase: str) -> Pred:
        text = f"span_count() {op} {num}"
        return Pred(text, "trace", f"{num}-spans", Note(phrase, text, "the number of spans in the trace"))

    def method(self, word: str, tok: Tok) -> Pred:
        f = self.g.role("method")
        if f is None:
            raise NotUnderstood(f"this corpus has no HTTP method field for {word!r}", tok)
        vals = {v.upper(): v for v in self.g.values_of(f)}
        value = vals.get(word.upper(), word.upper())
        text = f"{self.g.written(f)} == {quote(value)}"
        detail = f"HTTP method ({f})" + ("" if word.upper() in vals else "; no span in the corpus has it")
        return Pred(text, "span", value.lower(), Note(tok.text, text, detail))

    def route(self, path: str, tok: Tok) -> Pred:
        f = self.g.role("route")
        fields = [x for x in (f, "name") if x is not None and self.g.has(x)]
        prefix = path.endswith("*")
        p = path.rstrip("*")
        for fld in fields:
            vals = self.g.values_of(fld)
            w = self.g.written(fld)
            if not prefix and p in vals:
                text = f"{w} == {quote(p)}"
                return Pred(text, "span", slug(p), Note(tok.text, text, f"{fld} has {p!r}"))
            starts = [v for v in vals if v.startswith(p)]
            if starts and (prefix or p.endswith("/") or fld == f):
                text = f"{w} starts_with {quote(p)}"
                return Pred(text, "span", slug(p), Note(tok.text, text, f"routes under {p} ({', '.join(starts[:3])})"))
        if f is None:
            raise NotUnderstood(f"this corpus has no route field for {path!r}", tok)
        text = f"{self.g.written(f)} == {quote(p)}"
        return Pred(text, "span", slug(p), Note(tok.text, text, f"{f} (no span in the corpus has this route)"))

    def database(self, tok: Tok) -> Pred:
        f = self.g.role("db")
        if f is None:
            raise NotUnderstood("this corpus has no database spans (no db.system field)", tok)
        text = f"exists({self.g.written(f)})"
        return Pred(text, "span", "db", Note(tok.text, text, f"database calls: spans with {f}"))


def _number_unit(toks: list[Tok], i: int) -> tuple[str, str | None, int] | None:
    """A number at ``toks[i]`` with an optional unit (attached or next word): (number, unit, tokens used)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]*)", toks[i].low)
    if not m:
        n = int_word(toks[i].low)
        if n is None:
            return None
        m = re.fullmatch(r"(\d+)()", str(n))
        assert m is not None
    num, unit = m.group(1), m.group(2)
    if unit:
        return (num, UNITS[unit], 1) if unit in UNITS else None
    if i + 1 < len(toks) and toks[i + 1].low in UNITS:
        return num, UNITS[toks[i + 1].low], 2
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
class Item:
    preds: list[Pred] = field(default_factory=list)
    catch_all: bool = False

    def text(self) -> str:
        seen: list[Pred] = []
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


class SubjectReader(_Interpreter):
    _prefer: tuple[str, ...] = ()

    def item(self, toks: list[Tok]) -> Item:
        """One item of a subject: every word must be understood; all its conditions hold together."""
        it = Item()
        nouns = [t.text for t in toks if self.g.has(t.text)]  # a field named as such: "user.tier is gold"
        nouns += [f for t in toks if t.low not in _ERROR_WORDS | _DB_WORDS for f in self.g.fields_for_noun(t.low)]
        prefer = tuple(dict.fromkeys(nouns))
        self._prefer = prefer
        need_threshold: Tok | None = None
        need_size: Tok | None = None
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
                        sub.append(Tok(p, t.start + t.text.index(p, pos - t.start)))
                        pos = sub[-1].start + len(p)
                    toks[i : i + 1] = sub
                    continue
                if low in CATCH_ALL:
                    it.catch_all = True
                elif low in _FILLER or self.g.fields_for_noun(low) or self.g.has(t.text):
                    pass
                else:
                    raise NotUnderstood(self._unknown(t), t, self._suggest(t))
            i += 1
        if need_threshold is not None and not any(p.name in ("slow", "fast") for p in it.preds):
            raise NotUnderstood(
                f"{need_threshold.text!r} needs a threshold", need_threshold, "say how slow, e.g. `slower than 2s`"
            )
        if need_size is not None and not any(p.scope == "trace" for p in it.preds):
            raise NotUnderstood(
                f"{need_size.text!r} needs a size", need_size, "say how big, e.g. `with more than 50 spans`"
            )
        if it.preds:
            it.catch_all = False
            return it
        # No condition: a catch-all only when the words say so ("everything else", "the rest", "other regions",
        # "all traffic"); "keep customer traces" names no traces this proposer can find, so it is refused.
        vague = [t for t in toks if t.low not in _GENERIC | CATCH_ALL and not self.g.fields_for_noun(t.low)]
        if vague:
            raise NotUnderstood(f"{vague[0].text!r} does not say which traces", vague[0], self._suggest(vague[0]))
        it.catch_all = True
        return it

    def _unknown(self, t: Tok) -> str:
        return f"{t.text!r} is not a value, field or sampling word this proposer knows"

    def _suggest(self, t: Tok) -> str:
        for f in self._prefer:
            vals = self.g.values_of(f)
            if vals:
                return f"{f} has: " + ", ".join(vals[:8]) + (" ..." if len(vals) > 8 else "")
        near = self.g.closest_values(t.low)
        if near:
            return "values in the corpus that are close: " + ", ".join(near)
        return "name a value present in the corpus (see `nectar corpus fields`), or write the policy by hand"

    def _comparative(self, toks: list[Tok], i: int, it: Item) -> int:
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
                it.preds.append(Pred(text, "span", f"status-{num}", Note(phrase, text, "HTTP status")))
                return end - i
            raise NotUnderstood(f"{phrase!r}: a number needs a unit (ms, s, m, h) or `spans`", toks[i + n])
        return 0

    def _value(self, toks: list[Tok], i: int, it: Item, prefer: tuple[str, ...]) -> int:
        if toks[i].low in _FILLER | CATCH_ALL:
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
            it.preds.append(Pred(text, "span", slug(str(h.value)), Note(phrase, text, detail)))
            return n
        return 0


def union(items: list[Item]) -> str:
    """Items of one subject joined by ``or``; equality tests of one field become ``in (...)``."""
    texts = list(dict.fromkeys(i.text() for i in items))
    eq = [re.fullmatch(r'(\S+) == (".*"|-?\d+)', t) for t in texts]
    if len(texts) > 1 and all(eq) and len({m.group(1) for m in eq if m}) == 1:
        f = eq[0].group(1) if eq[0] else ""
        return f"{f} in ({', '.join(m.group(2) for m in eq if m)})"
    if len(texts) == 1:
        return texts[0]
    return " or ".join(f"({t})" if " and " in t or " or " in t else t for t in texts)


__all__ = ["CATCH_ALL", "Item", "Pred", "SubjectReader", "union"]
