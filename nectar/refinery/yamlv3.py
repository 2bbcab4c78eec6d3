"""Decode YAML the way ``gopkg.in/yaml.v3`` 3.0.1 decodes it into ``any`` (SEMANTICS.md 1.7), with positions.

PyYAML resolves plain scalars with YAML 1.1 rules (``yes`` is a bool, ``017`` is a string...). Refinery decodes
rules with yaml.v3, whose ``resolve.go`` follows YAML 1.2's core schema with a few Go twists. So PyYAML is used
only to *compose* the node tree (syntax and marks); every plain scalar is typed here:

* ``~``, ``null``/``Null``/``NULL`` and the empty scalar are nil; only ``true/True/TRUE/false/False/FALSE`` are
  bools (``yes``, ``on``, ``y`` stay strings);
* integers go through Go ``strconv.ParseInt(s, 0, 64)`` after removing ``_``: ``017`` and ``0o17`` are 15,
  ``0x1F`` is 31, ``0b101`` is 5, ``1_000`` is 1000; too big for int64 but fitting uint64 -> a uint64 (kept as a
  Python int > 2**63-1); otherwise a YAML-style float (``08`` is the float 8.0, ``99999999999999999999`` 1e20);
* ``YYYY-M-D`` dates (optionally with a time) are ``time.Time`` (:class:`GoTime`), which Refinery's validator
  rejects;
* ``.inf``/``-.inf``/``.nan`` are floats; everything else is a string.

Mappings become :class:`YMap` (a dict remembering the marks of its keys and values; ``string_keys`` is False when
yaml.v3 would build a ``map[interface{}]interface{}``, which Refinery's validator does not treat as a map), and
sequences :class:`YList`. Duplicate keys are an error, as in yaml.v3. Syntax errors become a positioned
:class:`~nectar.errors.NectarError`.

Aliases are bounded exactly as yaml.v3 bounds them (``decode.go``: ``unmarshal`` and ``allowedAliasRatio``), so a
"billion laughs" file is refused with yaml.v3's message, at the alias whose expansion crossed the bound, before
anything expands it: see :class:`_AliasBudget`. Decoded values of an alias are shared, never copied.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from nectar.errors import NectarError, Span
from nectar.refinery import gostr

PLAIN_TAG = "tag:nectar.local,2026:plain"
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

UINT64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Pos:
    """A 1-based position and the length of the text it points at."""

    line: int
    column: int
    length: int = 1

    def span(self, filename: str, source: str | None) -> Span:
        return Span(filename, self.line, self.column, self.length, source)


NO_POS = Pos(1, 1, 1)


class YMap(dict[Any, Any]):
    """A decoded mapping with the positions of its keys and values."""

    pos: Pos
    key_pos: dict[Any, Pos]
    value_pos: dict[Any, Pos]
    string_keys: bool

    def __init__(self, pos: Pos = NO_POS) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos = {}
        self.value_pos = {}
        self.string_keys = True


class YList(list[Any]):
    """A decoded sequence with the positions of its items."""

    pos: Pos
    item_pos: list[Pos]

    def __init__(self, pos: Pos = NO_POS) -> None:
        super().__init__()
        self.pos = pos
        self.item_pos = []


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip


@dataclass(frozen=True, slots=True)
class GoTime:
    """A YAML timestamp (Go ``time.Time``); Refinery's validator rejects it everywhere in a rules file."""

    text: str
    year: int
    month: int
    day: int
    rest: str = ""

    def __str__(self) -> str:
        # Go's time.Time.String() for a UTC date: "2026-01-01 00:00:00 +0000 UTC" (times are kept as written).
        if self.rest:
            return self.text
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d} 00:00:00 +0000 UTC"

    def go_sharp(self) -> str:
        """Go ``%#v`` of the time (date only)."""
        return f"time.Date({self.year}, time.{_MONTHS[self.month - 1]}, {self.day}, 0, 0, 0, 0, time.UTC)"


class AliasNode(Node):
    """An alias (``*name``) where it is written; PyYAML's composer would return the anchored node itself."""

    id = "alias"

    def __init__(self, target: Node, anchor: str, start_mark: Any, end_mark: Any) -> None:
        super().__init__(target.tag, target.value, start_mark, end_mark)
        self.target = target
        self.anchor = anchor


class _Loader(yaml.SafeLoader):
    """PyYAML composer whose plain scalars keep a marker tag, so that yaml.v3's rules can type them, and whose
    aliases stay visible as :class:`AliasNode` (yaml.v3 counts them; see :class:`_AliasBudget`)."""

    has_aliases = False

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:  # type: ignore[override]
        if kind is ScalarNode:
            return PLAIN_TAG if implicit[0] else _STR
        return _SEQ if kind is SequenceNode else _MAP

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        if self.check_event(AliasEvent):
            event = self.peek_event()
            target = super().compose_node(parent, index)  # the anchored node (or PyYAML's "undefined alias")
            assert target is not None
            self.has_aliases = True
            return AliasNode(target, event.anchor, event.start_mark, event.end_mark)
        node = super().compose_node(parent, index)
        assert node is not None
        return node


def _pos(node: Node) -> Pos:
    m, e = node.start_mark, node.end_mark
    length = e.index - m.index if e.line == m.line else len(str(node.value)) if isinstance(node, ScalarNode) else 1
    return Pos(m.line + 1, m.column + 1, max(1, length))


# ---------------------------------------------------------------------------------------------------------------
# Scalars (yaml.v3 resolve.go)

_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_MAP_VALUES: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_TS_RE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?))?\Z"
)
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _go_parse_int_base0(s: str) -> int | None:
    """``strconv.ParseUint``/``ParseInt(s, 0, ...)`` magnitude parsing (underscores already removed); signed."""
    neg = s.startswith("-")
    if s[:1] in "+-":
        s = s[1:]
    if not s:
        return None
    base = 10
    low = s[:2].lower()
    if low == "0x":
        base, s = 16, s[2:]
    elif low == "0o":
        base, s = 8, s[2:]
    elif low == "0b":
        base, s = 2, s[2:]
    elif s[0] == "0" and len(s) > 1:
        base, s = 8, s[1:]
    if not s or any(c not in _DIGITS[base] for c in s):
        return None
    n = int(s, base)
    return -n if neg else n


def _days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _timestamp(s: str) -> GoTime | None:
    m = _TS_RE.match(s)
    if m is None:
        return None
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= mo <= 12 and 1 <= d <= _days_in_month(y, mo)):
        return None
    hms = [g for g in m.groups()[3:] if g is not None]
    if hms and not (int(hms[0]) < 24 and int(hms[1]) < 60 and int(hms[2]) < 60):
        return None
    return GoTime(s, y, mo, d, s[m.end(3) :])


def resolve_plain(s: str) -> Any:
    """The Go value yaml.v3 gives an untagged plain scalar (see the module docstring)."""
    if s in _MAP_VALUES:
        return _MAP_VALUES[s]
    hint = s[:1]
    if hint == ".":
        return gostr.parse_float(s) if gostr.parse_float(s) is not None else s
    if hint and (hint in "+-" or hint.isdigit()) and hint.isascii():
        ts = _timestamp(s)
        if ts is not None:
            return ts
        plain = s.replace("_", "")
        n = _go_parse_int_base0(plain)
        if n is not None and gostr.INT64_MIN <= n <= gostr.INT64_MAX:
            return n
        if n is not None and 0 <= n <= UINT64_MAX and not plain.startswith("-"):
            return n  # a uint64
        if _YAML_STYLE_FLOAT.match(plain):
            f = gostr.parse_float(plain)
            if f is not None:
                return f
        # yaml.v3 retries "0b"/"-0b"/"0o"/"-0o" prefixes explicitly; ParseInt(s, 0) above covers them already.
    return s


def _tagged_scalar(node: ScalarNode, filename: str, source: str | None) -> Any:
    tag, value = node.tag, node.value
    if tag == PLAIN_TAG:
        return resolve_plain(value)
    if tag == _STR or (tag.startswith("!") and not tag.startswith("!!")):
        return value
    resolved = resolve_plain(value)
    want = {_INT: int, _FLOAT: float, _BOOL: bool, _NULL: type(None), _TIMESTAMP: GoTime}.get(tag)
    if want is None:
        return value  # unknown global tags: keep the text (Refinery only sees strings, ints... anyway)
    if want is float and isinstance(resolved, int) and not isinstance(resolved, bool):
        return float(resolved)
    if isinstance(resolved, want) and not (want is int and isinstance(resolved, bool)):
        return resolved
    raise NectarError(
        f"cannot decode {value!r} as {tag.rsplit(':', 1)[-1]}",
        span=_pos(node).span(filename, source),
    )


# ---------------------------------------------------------------------------------------------------------------
# Documents


def _is_merge(node: Node) -> bool:
    """yaml.v3 ``isMerge``: a plain (or ``!!merge``) ``<<`` key."""
    return isinstance(node, ScalarNode) and node.tag in (PLAIN_TAG, _MERGE) and node.value == "<<"


# yaml.v3 decode.go: a document may take at most this share of its decoded nodes from aliases (99% up to 400,000
# decoded nodes, then down to 10% at 4,000,000), once it has more than 100 alias-driven and 1,000 decoded nodes.
ALIAS_RATIO_RANGE_LOW = 400_000
ALIAS_RATIO_RANGE_HIGH = 4_000_000


def allowed_alias_ratio(decode_count: int) -> float:
    """yaml.v3 ``allowedAliasRatio``."""
    if decode_count <= ALIAS_RATIO_RANGE_LOW:
        return 0.99
    if decode_count >= ALIAS_RATIO_RANGE_HIGH:
        return 0.10
    span = ALIAS_RATIO_RANGE_HIGH - ALIAS_RATIO_RANGE_LOW
    return 0.99 - 0.89 * ((decode_count - ALIAS_RATIO_RANGE_LOW) / span)


class _Stop(Exception):
    """yaml.v3 stops decoding here with another error, which :class:`_Builder` reports."""


class _AliasBudget:
    """yaml.v3's decode walk into ``any`` (decode.go ``unmarshal``, ``alias``, ``mapping``, ``merge``), counting.

    Every call of ``unmarshal`` counts one decoded node (the document, each key, each value, an alias and then
    its target again, the parent's keys once more before a ``<<`` merge); those under an alias count as
    alias-driven too. Refinery decodes rules with yaml.v3, so a file whose count crosses
    :func:`allowed_alias_ratio` is refused here as Refinery refuses it: ``document contains excessive aliasing``.
    The walk stops at that point, so it costs at most about 100 times the file's own nodes (and never more than
    about 400,000 alias-driven nodes), whatever the aliases would expand to.
    """

    def __init__(self, builder: _Builder) -> None:
        self.builder = builder
        self.decode_count = 0
        self.alias_count = 0
        self.expanding: list[AliasNode] = []  # the aliases being expanded, outermost first
        self.merged_fields: set[Any] | None = None

    def check(self, root: Node) -> None:
        self.decode_count = 1  # the document node
        with contextlib.suppress(_Stop):
            self.unmarshal(root)

    def unmarshal(self, node: Node) -> None:
        self.decode_count += 1
        if self.expanding:
            self.alias_count += 1
        if (
            self.alias_count > 100
            and self.decode_count > 1000
            and self.alias_count / self.decode_count > allowed_alias_ratio(self.decode_count)
        ):
            self.refuse(node)
        if isinstance(node, AliasNode):
            if node in self.expanding:
                raise self.builder.error(f"anchor '{node.anchor}' value contains itself", node)
            self.expanding.append(node)
            self.unmarshal(node.target)
            self.expanding.pop()
        elif isinstance(node, SequenceNode):
            for item in node.value:
                self.unmarshal(item)
        elif isinstance(node, MappingNode):
            self.mapping(node)

    def refuse(self, node: Node) -> None:
        at = self.expanding[0] if self.expanding else node
        raise NectarError(
            "document contains excessive aliasing (yaml.v3's limit, which Refinery applies when it loads rules): "
            f"expanding this alias makes {self.alias_count:,} of {self.decode_count:,} decoded YAML nodes come "
            f"from aliases, more than {allowed_alias_ratio(self.decode_count):.0%}",
            span=_pos(at).span(self.builder.filename, self.builder.source),
            hint="write the values out, or use fewer nested aliases; Refinery refuses this file too",
        )

    def key(self, node: Node) -> Any:
        """The decoded key (Go ``k.Interface()``), hashable; a mapping or sequence key stops yaml.v3."""
        while isinstance(node, AliasNode):
            node = node.target
        if not isinstance(node, ScalarNode):
            raise _Stop
        try:
            value = _tagged_scalar(node, self.builder.filename, self.builder.source)
        except NectarError:
            raise _Stop from None
        return (type(value), "NaN" if isinstance(value, float) and math.isnan(value) else value)

    def mapping(self, node: MappingNode) -> None:
        texts = [(type(k), k.anchor if isinstance(k, AliasNode) else k.value if isinstance(k, ScalarNode) else "")
                 for k, _ in node.value]  # fmt: skip
        if len(set(texts)) < len(texts):
            return  # yaml.v3: duplicate keys are a type error and the mapping is not decoded
        merged_fields, self.merged_fields = self.merged_fields, None
        merge: Node | None = None
        for knode, vnode in node.value:
            if _is_merge(knode):
                merge = vnode
                continue
            self.unmarshal(knode)
            key = self.key(knode)
            if merged_fields is not None:
                if key in merged_fields:
                    continue
                merged_fields.add(key)
            self.unmarshal(vnode)
        self.merged_fields = merged_fields
        if merge is not None:
            self.merge(node, merge)

    def merge(self, parent: MappingNode, merge: Node) -> None:
        merged_fields = self.merged_fields
        if merged_fields is None:
            self.merged_fields = set()
            for knode, _ in parent.value:
                self.unmarshal(knode)
                self.merged_fields.add(self.key(knode))
        items = merge.value if isinstance(merge, SequenceNode) else [merge]
        for item in items:
            target = item.target if isinstance(item, AliasNode) else item
            if not isinstance(target, MappingNode):
                raise _Stop  # "map merge requires map or sequence of maps as the value"
            self.unmarshal(item)
        self.merged_fields = merged_fields


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else gostr.go_v(key)


class _Builder:
    def __init__(self, filename: str, source: str | None) -> None:
        self.filename = filename
        self.source = source
        self.active: set[int] = set()
        self.done: dict[int, Any] = {}

    def error(self, message: str, node: Node) -> NectarError:
        return NectarError(message, span=_pos(node).span(self.filename, self.source))

    def build(self, node: Node) -> Any:
        if isinstance(node, AliasNode):
            if id(node.target) in self.active:
                raise self.error(f"anchor '{node.anchor}' value contains itself", node)
            node = node.target
        if id(node) in self.done:  # an alias of an already built node: share the value (yaml.v3 copies it)
            return self.done[id(node)]
        if isinstance(node, ScalarNode):
            return _tagged_scalar(node, self.filename, self.source)
        if id(node) in self.active:  # pragma: no cover - a cycle always goes through an alias
            raise self.error("anchor's value contains itself", node)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                out_l = YList(_pos(node))
                for item in node.value:
                    out_l.append(self.build(item))
                    out_l.item_pos.append(_pos(item))
                result: Any = out_l
            else:
                assert isinstance(node, MappingNode)
                result = self.mapping(node)
        finally:
            self.active.discard(id(node))
        self.done[id(node)] = result
        return result

    def mapping(self, node: MappingNode) -> YMap:
        out = YMap(_pos(node))
        merges: list[YMap] = []
        for knode, vnode in node.value:
            if _is_merge(knode):
                merged = self.build(vnode)
                items = merged if isinstance(merged, YList) else [merged]
                for m in items:
                    if not isinstance(m, YMap):
                        raise self.error("map merge requires map or sequence of maps as the value", vnode)
                    merges.append(m)
                continue
            key = self.build(knode)
            if isinstance(key, (YMap, YList)):
                raise self.error("invalid map key: a mapping or sequence cannot be a key", knode)
            if isinstance(key, float) and math.isnan(key):
                key = "NaN"
            if key in out and type(key) is type(next(k for k in out if k == key)):
                first = out.key_pos[key]
                raise self.error(f'mapping key "{_key_text(key)}" already defined at line {first.line}', knode)
            if not isinstance(key, str):
                out.string_keys = False
            out[key] = self.build(vnode)
            out.key_pos[key] = _pos(knode)
            out.value_pos[key] = _pos(vnode)
        # yaml.v3: keys written in the mapping win over merged ones; earlier merged maps win over later ones.
        for m in merges:
            for k, v in m.items():
                if k not in out:
                    out[k] = v
                    out.key_pos[k] = m.key_pos.get(k, m.pos)
                    out.value_pos[k] = m.value_pos.get(k, m.pos)
                    if not isinstance(k, str):
                        out.string_keys = False
        return out


def _line_col(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of character offset ``position`` in ``text``."""
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a document is decoded. Decoding allocates a node and a value
    per scalar, all of it acyclic, and every full collection would walk all of it again: a 20,000-rule file
    decodes in about half the time without. Reference counting still frees everything; the loader's few cycles
    are collected later."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def loads(text: str, filename: str = "<rules>") -> Any:
    """The first YAML document of ``text`` as yaml.v3 would decode it (None for an empty stream).

    Raises a positioned :class:`NectarError` for syntax errors, duplicate keys, recursive anchors and excessive
    aliasing (yaml.v3's rule, see :class:`_AliasBudget`).
    """
    with _no_cyclic_gc():
        return _loads(text, filename)


def _loads(text: str, filename: str) -> Any:
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_node() if loader.check_node() else None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, DEL, VT, ...)
        line, column = _line_col(text, exc.position)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise NectarError(
            f"YAML reader: character {char!r} (U+{ord(char):04X}) is not allowed in a YAML file",
            span=Span(filename, line, column, 1, text),
            hint="remove the control character, or write it as an escape inside a double-quoted string",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        span = Span(filename, mark.line + 1, mark.column + 1, 1, text) if mark is not None else None
        raise NectarError(f"YAML syntax error: {msg}", span=span) from None
    except yaml.YAMLError as exc:
        raise NectarError(f"YAML syntax error: {exc}", span=Span(filename, 1, 1, 1, text)) from None
    except (ValueError, RecursionError) as exc:  # e.g. unusual control characters
        raise NectarError(f"cannot read YAML: {exc}", span=Span(filename, 1, 1, 1, text)) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        return None
    builder = _Builder(filename, text)
    try:
        if loader.has_aliases:
            _AliasBudget(builder).check(node)
        return builder.build(node)
    except RecursionError:
        raise NectarError("YAML nesting is too deep", span=Span(filename, 1, 1, 1, text)) from None


# ---------------------------------------------------------------------------------------------------------------
# Go formatting of decoded values (validation messages)


def is_string_map(v: Any) -> bool:
    """A ``map[string]any`` for Refinery (a mapping whose keys are all strings)."""
    return isinstance(v, YMap) and v.string_keys


def go_type(v: Any) -> str:
    """Go ``%T`` of a value decoded by yaml.v3 into ``any``."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int" if gostr.INT64_MIN <= v <= gostr.INT64_MAX else "uint64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, GoTime):
        return "time.Time"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}" if is_string_map(v) else "map[interface {}]interface {}"
    return type(v).__name__


def go_v(v: Any) -> str:
    """Go ``%v`` of a decoded value (timestamps as ``time.Time.String()``)."""
    return str(v) if isinstance(v, GoTime) else gostr.go_v(v)


def go_sharp_v(v: Any) -> str:
    """Go ``%#v`` (only reached for non-strings in a string array)."""
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, int) and not isinstance(v, bool) and v > gostr.INT64_MAX:
        return hex(v)
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(go_sharp_v(x) for x in v) + "}"
    if isinstance(v, dict):
        inner = ", ".join(f"{go_sharp_v(k)}:{go_sharp_v(v[k])}" for k in sorted(v, key=str))
        return go_type(v) + "{" + inner + "}"
    if isinstance(v, GoTime):
        return v.go_sharp()
    return go_v(v)
