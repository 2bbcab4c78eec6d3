"""Go value semantics Refinery's rule matching depends on, exact to Go (SEMANTICS.md sections 1.3, 2.6-2.8).

Values are modelled as Python values with their Go types (SEMANTICS.md 5): ``None`` is Go ``nil``, ``bool`` is
``bool`` (always tested before ``int``: ``isinstance(True, int)``), ``int`` is int64 on the span side and Go ``int``
on the rule side (a rule int outside the int64 range is a YAML ``uint64``), ``float`` is float64, ``str`` is
``string``, ``list``/``tuple`` is ``[]any`` and ``dict`` is ``map[string]any``.

Public helpers:

* :func:`go_v` / :func:`go_v_float`: ``fmt.Sprintf("%v", v)`` (Refinery ``convertToString``);
* :func:`atoi`, :func:`parse_float`, :func:`parse_bool`: ``strconv.Atoi``/``ParseFloat(s, 64)``/``ParseBool``,
  ``None`` on error;
* :func:`compare`: ``sample/rules.go`` ``compare`` (untyped comparison), ``None`` when incomparable;
* :func:`to_int`, :func:`to_float`, :func:`to_string`, :func:`to_bool`: the ``Datatype`` coercions
  (``tryConvertToInt``, ``tryConvertToFloat``, ``convertToString``, ``TryConvertToBool``);
* :func:`deterministic_keep`: the ``DeterministicSampler`` trace-id hash.
"""

from __future__ import annotations

import decimal
import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT32_MAX = 2**32 - 1

# sample/deterministic.go: shardingSalt, appended to the trace id before hashing.
DETERMINISTIC_SALT = "5VQ8l2jE5aJLPVqk"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------------------------------------------------
# %v formatting


def _float_special(f: float) -> tuple[str, str | None]:
    """(sign, text): the text when ``f`` is NaN, an infinity or a zero (the same in every Go float format)."""
    if math.isnan(f):
        return "", "NaN"
    if math.isinf(f):
        return "", "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    return sign, (sign + "0" if f == 0 else None)


def go_v_float(f: float) -> str:
    """``strconv.FormatFloat(f, 'g', -1, 64)`` as ``%v`` prints it (SEMANTICS.md 2.8).

    Shortest round-trip digits; scientific when the decimal exponent is < -4 or >= 6 (Go uses precision 6 for
    that decision when the precision is "shortest"); exponent signed with at least two digits; ``+Inf``/``NaN``.
    """
    sign, special = _float_special(f)
    if special is not None:
        return special
    t = decimal.Decimal(repr(abs(f))).as_tuple()  # repr() gives the shortest round-trip digits
    digits = "".join(map(str, t.digits))
    assert isinstance(t.exponent, int)
    x = len(digits) + t.exponent - 1  # exponent of the leading digit
    digits = digits.rstrip("0") or "0"
    if x < -4 or x >= 6:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if x >= 0:
        ip, fp = digits[: x + 1].ljust(x + 1, "0"), digits[x + 1 :]
        return sign + ip + ("." + fp if fp else "")
    return sign + "0." + "0" * (-x - 1) + digits


def format_float_f(f: float) -> str:
    """``strconv.FormatFloat(f, 'f', -1, 64)``: shortest round-trip digits, never an exponent (``1e+06`` is
    ``1000000``, ``1e-07`` is ``0.0000001``); ``NaN``, ``+Inf``, ``-Inf``; ``-0`` keeps its sign."""
    sign, special = _float_special(f)
    if special is not None:
        return special
    d = decimal.Decimal(repr(abs(f)))
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return sign + text


def key_string(value: Any) -> str:
    """How Refinery's trace key writes a span value (``sample/trace_key.go`` ``AddAsString``): strings as they
    are, ints in decimal, floats with :func:`format_float_f` (not ``%v``), bools, ``<nil>``, anything else
    ``%v``."""
    if isinstance(value, float):
        return format_float_f(value)
    return go_v(value)


def go_v(value: Any) -> str:
    """Go ``fmt.Sprintf("%v", value)`` for a span or rule value (Refinery ``convertToString``).

    ``nil`` -> ``<nil>``; bools ``true``/``false``; ints in decimal; floats via :func:`go_v_float`;
    lists ``[a 1]``; maps ``map[k:1 z:<nil>]`` with sorted keys (fmt sorts map keys since Go 1.12).
    """
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_v_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_v(v) for v in value) + "]"
    if isinstance(value, dict):
        # Go orders string keys byte-wise; for UTF-8 that is code point order, i.e. Python's str order.
        return "map[" + " ".join(f"{go_v(k)}:{go_v(value[k])}" for k in sorted(value, key=str)) + "]"
    return str(value)


# ---------------------------------------------------------------------------------------------------------------
# strconv


_ATOI_RE = re.compile(r"[+-]?[0-9]+\Z")


def atoi(s: str) -> int | None:
    """``strconv.Atoi``: optional sign and ASCII digits only (no spaces, ``_``, ``0x``), in int64 range."""
    if not _ATOI_RE.match(s):
        return None
    n = int(s)
    return n if INT64_MIN <= n <= INT64_MAX else None


def parse_bool(s: str) -> bool | None:
    """``strconv.ParseBool``: ``1 t T TRUE true True`` / ``0 f F FALSE false False``; anything else None."""
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def _underscore_ok(s: str) -> bool:
    """strconv ``underscoreOK``: underscores only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in ("b", "o", "x"):
        i = 2
        saw = "0"
        hexa = s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


# strconv readFloat's grammar (before the underscore check): sign, mantissa with at least one digit, exponent.
_DEC_FLOAT_RE = re.compile(r"[+-]?([0-9_]*(?:\.[0-9_]*)?)(?:[eE][+-]?[0-9][0-9_]*)?\Z")
_HEX_FLOAT_RE = re.compile(r"([+-]?)0[xX]([0-9a-fA-F_]*\.?[0-9a-fA-F_]*)[pP]([+-]?[0-9][0-9_]*)\Z")


def _special(s: str) -> float | None:
    """strconv ``special``: ``inf``/``infinity`` with optional sign, ``nan`` without sign, any case."""
    low = s.lower()
    body = low[1:] if low[:1] in ("+", "-") else low
    if body in ("inf", "infinity"):
        return -math.inf if low.startswith("-") else math.inf
    if low == "nan":
        return math.nan
    return None


def parse_float(s: str) -> float | None:
    """``strconv.ParseFloat(s, 64)``; None on a syntax error or overflow (ErrRange), like Refinery's callers.

    Accepts ``1e3``, ``.5``, ``5.``, ``inf``, ``+Inf``, ``Infinity``, ``NaN``, hex floats (``0x1p-2``, exponent
    required) and Go literal underscores between digits (``1_000.5``); rejects spaces, ``+nan``, ``1e``, ``0x1``.
    Underflow gives 0 without error, as in Go.
    """
    sp = _special(s)
    if sp is not None:
        return sp
    if not s or not _underscore_ok(s):
        return None
    m = _HEX_FLOAT_RE.match(s)
    if m is not None:
        sign, mant, exp = m.group(1), m.group(2).replace("_", ""), m.group(3).replace("_", "")
        if not any(c not in "." for c in mant):
            return None
        try:
            v = float.fromhex(f"{sign}0x{mant}p{exp}")
        except OverflowError:
            return None
        return None if math.isinf(v) else v
    if s[:1] in ("+", "-") and s[1:3].lower() == "0x":
        return None
    if s[:2].lower() == "0x" and len(s) > 2:
        return None  # a hex mantissa without a 'p' exponent
    m = _DEC_FLOAT_RE.match(s)
    if m is None or not any(c.isdigit() for c in m.group(1)):
        return None
    try:
        v = float(s.replace("_", ""))
    except (ValueError, OverflowError):
        return None
    return None if math.isinf(v) else v


# ---------------------------------------------------------------------------------------------------------------
# Comparison and Datatype coercion


def _cmp3(a: float | int, b: float | int) -> int:
    # Go: switch { case a < b: less; case a > b: more; default: equal } -- so NaN compares equal to anything.
    if a < b:
        return -1
    if a > b:
        return 1
    return 0


def compare(a: Any, b: Any) -> int | None:
    """``sample/rules.go`` ``compare``: span value ``a`` against rule value ``b`` (SEMANTICS.md 2.6).

    Returns -1/0/1, or None when Go finds the pair incomparable (then every operator is false, ``!=`` included).
    nil equals nil and is less than anything; int64 and float64 compare numerically; bools false < true; strings
    byte-wise. Anything else (a string against a number, a uint64 rule value, maps, lists) is incomparable.
    """
    if a is None:
        return 0 if b is None else -1
    if b is None:
        return 1
    if isinstance(a, bool) or isinstance(b, bool):
        if isinstance(a, bool) and isinstance(b, bool):
            return _cmp3(int(a), int(b))
        return None
    if isinstance(b, int) and not INT64_MIN <= b <= INT64_MAX:
        return None  # a YAML uint64: compare() has no uint64 case
    if isinstance(a, int) and not INT64_MIN <= a <= INT64_MAX:
        return None
    if isinstance(a, int) and isinstance(b, int):
        return _cmp3(a, b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return _cmp3(float(a), float(b))
    if isinstance(a, str) and isinstance(b, str):
        ab, bb = a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
        return (ab > bb) - (ab < bb)
    return None


def go_float_to_int(f: float) -> int:
    """Go ``int(f)`` on amd64: truncation; NaN and out-of-range values give math.MinInt64 (CVTTSD2SI)."""
    if math.isnan(f) or math.isinf(f):
        return INT64_MIN
    n = int(f)
    return n if INT64_MIN <= n <= INT64_MAX else INT64_MIN


def to_int(v: Any) -> int | None:
    """``tryConvertToInt`` (Datatype int): ints as is, floats truncated, strings via Atoi; else None."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v if INT64_MIN <= v <= INT64_MAX else None  # uint64 has no case
    if isinstance(v, float):
        return go_float_to_int(v)
    if isinstance(v, str):
        return atoi(v)
    return None


def to_float(v: Any) -> float | None:
    """``tryConvertToFloat`` (Datatype float): floats as is, ints widened, strings via ParseFloat; else None."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return float(v) if INT64_MIN <= v <= INT64_MAX else None
    if isinstance(v, float):
        return v
    if isinstance(v, str):
        return parse_float(v)
    return None


def to_string(v: Any) -> str:
    """Datatype string: ``%v`` of the value (never fails; a missing field is passed as None -> ``<nil>``)."""
    return go_v(v)


def to_bool(v: Any) -> bool:
    """``TryConvertToBool`` (Datatype bool): ``ParseBool(%v)``; **anything unparseable is false**, never None.

    So ``"yes"``, ``"on"`` and ``2`` are false (SEMANTICS.md 2.7). Whether the field exists is the caller's
    business (a missing field makes a bool comparison false).
    """
    return parse_bool(go_v(v)) is True


# ---------------------------------------------------------------------------------------------------------------
# DeterministicSampler


def deterministic_hash(trace_id: str) -> int:
    """``binary.BigEndian.Uint32(sha1(traceID + shardingSalt)[:4])`` (``sample/deterministic.go``)."""
    digest = hashlib.sha1((trace_id + DETERMINISTIC_SALT).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big")


def deterministic_keep(trace_id: str, rate: int) -> bool:
    """Whether a ``DeterministicSampler`` with ``SampleRate: rate`` keeps the trace.

    Rate <= 1 always keeps; otherwise keep iff hash <= MaxUint32 / uint32(rate) (integer division).
    (Rate 0 panics in Refinery: that is a lint, not a decision; here it keeps.)
    """
    if rate <= 1:
        return True
    return deterministic_hash(trace_id) <= deterministic_limit(rate)


def deterministic_limit(rate: int) -> int:
    """The largest hash a ``DeterministicSampler`` with ``SampleRate: rate`` (> 1) keeps:
    ``MaxUint32 / uint32(rate)`` (integer division; a rate that wraps to 0 keeps everything here)."""
    return UINT32_MAX // (rate & UINT32_MAX or 1)


# ---------------------------------------------------------------------------------------------------------------
# time.ParseDuration (durations in sampler settings: "30s", "1m30s", "100ms")

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5
    "μs": 1_000,  # U+03BC
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]+)")


def parse_duration(s: str) -> int | None:
    """Go ``time.ParseDuration``: nanoseconds, or None. ``[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+`` or ``0``."""
    neg = s[:1] == "-"
    body = s[1:] if s[:1] in ("+", "-") else s
    if body == "0":
        return 0
    if not body:
        return None
    total = 0
    pos = 0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None or (not m.group(1) and not m.group(2)):
            return None
        unit = _DURATION_UNITS.get(m.group(3))
        if unit is None:
            return None
        whole = int(m.group(1) or "0")
        frac = m.group(2) or ""
        total += whole * unit + (int(frac) * unit) // (10 ** len(frac)) if frac else whole * unit
        if total > INT64_MAX + (1 if neg else 0):
            return None
        pos = m.end()
    return -total if neg else total


# ---------------------------------------------------------------------------------------------------------------
# encoding/json Marshal and gjson (CheckNestedFields looks fields up in the JSON-marshalled span)


class NotMarshalable(ValueError):
    """``json.Marshal`` fails (NaN or infinite floats): Refinery then skips the nested lookup."""


def _json_float(f: float) -> str:
    # encoding/json floatEncoder: 'f' format unless abs < 1e-6 or >= 1e21, then 'e' with "e-07" cleaned to "e-7".
    if math.isnan(f) or math.isinf(f):
        raise NotMarshalable(go_v_float(f))
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        s = go_v_float(f)  # shortest digits in 'e' form (exponent < -4 or >= 21 here, so always scientific)
        mant, _, exp = s.partition("e")
        sign, digits = exp[0], exp[1:].lstrip("0") or "0"
        return f"{mant}e{sign}{digits}"
    return _format_f(f)


def _format_f(f: float) -> str:
    """``strconv.FormatFloat(f, 'f', -1, 64)``: shortest digits, never an exponent."""
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    s = format(decimal.Decimal(repr(f)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "<": "\\u003c", ">": "\\u003e",
                 "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}  # fmt: skip


def _json_str(s: str) -> str:
    out = []
    for c in s:
        e = _JSON_ESCAPES.get(c)
        if e is not None:
            out.append(e)
        elif ord(c) < 0x20:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def go_json(v: Any) -> str:
    """Go ``json.Marshal`` of a decoded value: compact, map keys sorted, HTML-safe escapes, Go float format."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, str):
        return _json_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(_json_str(str(k)) + ":" + go_json(v[k]) for k in sorted(v, key=str)) + "}"
    return _json_str(str(v))


def _gjson_string(v: Any) -> str:
    """gjson ``Result.String()``: strings raw, null "", numbers as their JSON text when it is plain digits (else
    ``FormatFloat(f, 'f', -1)``), objects and arrays as their JSON text."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        raw = _json_float(v)
        return raw if re.fullmatch(r"-?[0-9]+", raw) else _format_f(v)
    if isinstance(v, str):
        return v
    return go_json(v)


def _gjson_components(path: str) -> list[str]:
    """Split a gjson path on unescaped dots; ``\\.`` (and any ``\\c``) is a literal character."""
    parts, cur, i = [], [], 0
    while i < len(path):
        c = path[i]
        if c == "\\" and i + 1 < len(path):
            cur.append(path[i + 1])
            i += 2
            continue
        if c == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _gjson_wild(pattern: str, key: str) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, key, re.DOTALL) is not None


def gjson_get(doc: Mapping[str, Any], path: str) -> str | None:
    """``gjson.Get(json.Marshal(doc), path).String()`` for the path subset Refinery users write, or None when the
    path does not exist: dotted keys (``\\.`` escapes a dot), array indexes (``a.0.b``), ``#`` (array length, as
    the last component) and ``*``/``?`` key wildcards (first match in marshalled, i.e. sorted, key order).
    A present JSON null exists and reads as ``""``. Raises :class:`NotMarshalable` if Marshal would fail.
    """
    go_json(doc)  # Marshal fails as a whole on NaN/Inf anywhere in the span
    cur: Any = doc
    parts = _gjson_components(path)
    for n, part in enumerate(parts):
        if isinstance(cur, dict):
            if "*" in part or "?" in part:
                key = next((k for k in sorted(cur, key=str) if _gjson_wild(part, str(k))), None)
                if key is None:
                    return None
                cur = cur[key]
            elif part in cur:
                cur = cur[part]
            else:
                return None
        elif isinstance(cur, list):
            if part == "#" and n == len(parts) - 1:
                return str(len(cur))
            if part.isdigit() and part.isascii() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                return None
        else:
            return None
    return _gjson_string(cur)
