"""Small conversions shared by the readers: timestamps, ids, and Go-style JSON text."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nectar.corpus.ingest.builder import RecordError
from nectar.util import int_from_text

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FRACTION = re.compile(r"(\.\d{6})\d+")


# Years 1 to 9999, the range of a Python datetime (and well inside Arrow's int64 microseconds).
MIN_US, MAX_US = -62_135_596_800_000_000, 253_402_300_799_999_999


def epoch_to_us(value: float) -> int:
    """Epoch seconds, milliseconds, microseconds or nanoseconds (told apart by magnitude) to microseconds."""
    a = abs(value)
    if a < 1e11:  # seconds (until the year 5138)
        us = round(value * 1_000_000)
    elif a < 1e14:
        us = round(value * 1_000)
    elif a < 1e17:
        us = int(value)
    else:
        us = int(value) // 1_000
    if not MIN_US <= us <= MAX_US:
        raise RecordError(f"bad timestamp: {value!r} is out of range")
    return us


def rfc3339_to_us(text: str) -> int:
    """RFC 3339 / ISO 8601 text to microseconds since the epoch, UTC (a missing offset means UTC)."""
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    if "." in t:
        t = _FRACTION.sub(r"\1", t)  # Python keeps microseconds; nanoseconds are cut, not rounded
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise RecordError(f"bad timestamp: {text!r} is not RFC 3339 or epoch time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    d = dt - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def timestamp_to_us(value: Any) -> int | None:
    """A timestamp as a JSON source gives it (RFC 3339 text, or epoch number/numeric text) to microseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(f"bad timestamp: {value!r}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise RecordError(f"bad timestamp: {value!r}")
        return epoch_to_us(value)
    if isinstance(value, str):
        s = value.strip()
        # ASCII digits only: str.isdigit() is also true for "¹" or "٣", which int() and float() reject.
        if _EPOCH_TEXT.fullmatch(s):
            return epoch_to_us(float(s) if "." in s else int(s))
        return rfc3339_to_us(s)
    raise RecordError(f"bad timestamp: expected text or a number, got {type(value).__name__}")


def ns_to_us(ns: int) -> int:
    return ns // 1_000


_HEX = re.compile(r"^[0-9a-fA-F]+$")
_EPOCH_TEXT = re.compile(r"-?[0-9]+(\.[0-9]*)?")


def hex_id(value: Any, what: str, width: int) -> str:
    """An id as lower-case hex; ``width`` hex digits of zero padding for short ids (Jaeger/Zipkin drop them)."""
    if not isinstance(value, str) or not value:
        raise RecordError(f"missing {what}" if value in (None, "") else f"{what} is not a string")
    if not _HEX.match(value):
        raise RecordError(f"{what} {value!r} is not hex")
    v = value.lower()
    if len(v) < width:
        v = v.rjust(width, "0")
    elif width == 16 and 16 < len(v) < 32:
        v = v.rjust(32, "0")
    return v


def trim_trace_id(hex_trace_id: str) -> str:
    """husky ``BytesToTraceID``: a 128-bit id whose high 64 bits are zero is written as 16 hex digits."""
    if len(hex_trace_id) == 32 and hex_trace_id.startswith("0000000000000000"):
        return hex_trace_id[16:]
    return hex_trace_id


def otlp_json_id(value: Any, what: str) -> str:
    """An OTLP JSON id: hex as OTLP/JSON specifies, or base64 as proto3 JSON allows (lengths never clash)."""
    if not isinstance(value, str):
        raise RecordError(f"{what} is not a string")
    if _HEX.match(value) and len(value) in (16, 32):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(f"{what} {value!r} is neither hex nor base64") from None
    return raw.hex()


def go_json(value: Any) -> str:
    """JSON text as husky writes arrays and bytes: Go's ``json.Encoder`` (sorted keys, no HTML escaping,
    Go number format) including its trailing newline (husky ``addAttributeToMapAsJson``)."""
    return _go_dumps(value) + "\n"


def _go_dumps(v: Any) -> str:
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, list):
        return "[" + ",".join(_go_dumps(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _go_dumps(v[k]) for k in sorted(v)) + "}"
    return json.dumps(v, ensure_ascii=False)


def go_float(f: float) -> str:
    """Go ``encoding/json`` float64 text: shortest digits; 'e' form only below 1e-6 or from 1e21."""
    if not math.isfinite(f):
        return "null"  # Go refuses to encode these; husky then stores an empty string, rare enough to ignore
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        r = repr(f)
        mant, _, exp = r.partition("e")
        sign = exp[0] if exp[:1] in "+-" else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        if sign == "+" and len(digits) < 2:  # Go: e+21, e+05, but e-7 (encoding/json trims e-07)
            digits = "0" + digits
        return f"{mant}e{sign}{digits}"
    text = format(Decimal(repr(f)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_WS = " \t\r\n"


def salvage_array(text: str, pos: int) -> tuple[list[Any], tuple[int, int, str] | None]:
    """The complete items of a JSON array starting at ``text[pos] == "["``, and where it breaks, if it does.

    For a truncated or damaged document: every item before the damage is kept. The break is reported as
    ``(line, column, message)``.
    """
    dec = json.JSONDecoder()
    items: list[Any] = []
    n = len(text)
    i = pos + 1
    while True:
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] == "]":
            return items, None
        try:
            item, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            return items, (exc.lineno, exc.colno, exc.msg)
        items.append(item)
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] == ",":
            i += 1
            continue
        if i < n and text[i] == "]":
            return items, None
        line = text.count("\n", 0, i) + 1
        col = i - (text.rfind("\n", 0, i) + 1) + 1
        return items, (line, col, "Expecting ',' delimiter" if i < n else "document ends inside an array")


def as_int(v: Any, what: str, signed: bool = True) -> int:
    """A JSON integer field: an int, an integral float, or ASCII decimal text (64-bit ints often come as text).

    Missing (None) is 0, as the exporters that omit zero values mean it.
    """
    if v is None:
        return 0
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and (n := int_from_text(v, signed)) is not None:
        return n
    raise RecordError(f"wrong type: {what} {v!r} is not an integer")


def as_uint(v: Any, what: str) -> int:
    """:func:`as_int` without a sign in text."""
    return as_int(v, what, signed=False)
