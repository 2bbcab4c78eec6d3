"""Match expressions: text -> Lark parse tree -> typed IR (:mod:`nectar.policy.ir`), validated once.

This is the only module that sees Lark. Lark's exceptions are turned into :class:`NectarError` with the position
of the offending text and a friendly message for the common slips (``=>`` for ``>=``, a missing quote, a trailing
``and``, a duration unit Refinery cannot mean).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import lark
from lark import Lark, Token, Tree

from nectar.config import DEFAULT_ALIASES
from nectar.errors import NectarError, Span
from nectar.policy import ir
from nectar.policy.regex import check_re2
from nectar.refinery import gostr
from nectar.util import edit_distance

# Fields Refinery hides from rules or fills only after the decision (SEMANTICS.md 2.1).
HIDDEN_FIELDS = {
    "trace.trace_id": "Refinery consumes the trace id field; rules cannot see it",
    "traceId": "Refinery consumes the trace id field; rules cannot see it",
    "trace.parent_id": "Refinery (>= 3.0) consumes parent id fields to find the root; use has_root() instead",
    "parentId": "Refinery (>= 3.0) consumes parent id fields to find the root; use has_root() instead",
    "meta.span_count": "Refinery adds meta.span_count after the decision; use span_count() instead",
    "meta.event_count": "Refinery adds meta.event_count after the decision; use span_count() instead",
}

# Fields known to hold numbers, to catch `http.status == "500"` at check time (the corpus catches the rest).
NUMERIC_FIELDS = {"http.response.status_code", "http.status_code", "duration_ms", "status_code"}
DURATION_UNITS_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def grammar_text(name: str = "match.lark") -> str:
    """The grammar file: shipped in the wheel as ``nectar/grammars``; in a checkout, the top-level ``grammars/``."""
    packaged = resources.files("nectar").joinpath("grammars", name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammars" / name).read_text(encoding="utf-8")


@functools.cache
def _parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=False)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an expression's text sits: a file's text and a function from offset-in-expression to (line, col)."""

    file: str
    source: str
    locate: Callable[[int], tuple[int, int]]


def standalone_origin(text: str, file: str = "<expr>") -> Origin:
    """Origin for an expression that is the whole text (``nectar check -e``, nectar.toml values)."""

    def locate(offset: int) -> tuple[int, int]:
        before = text[:offset]
        line = before.count("\n") + 1
        return line, offset - (before.rfind("\n") + 1) + 1

    return Origin(file, text, locate)


class _Builder:
    """Builds IR nodes from the Lark tree, one method per grammar rule (dispatched by rule name)."""

    def __init__(self, text: str, origin: Origin, aliases: Mapping[str, tuple[str, ...]]) -> None:
        self.text = text
        self.origin = origin
        self.aliases = aliases
        self.diagnostics: list[ir.Diagnostic] = []

    # ---------------------------------------------------------------- positions and errors
    def span_of(self, start: int, end: int) -> Span:
        line, col = self.origin.locate(start)
        end_line, end_col = self.origin.locate(max(start, end - 1))
        length = end_col - col + 1 if end_line == line else 1
        return Span(self.origin.file, line, col, max(1, length), self.origin.source)

    def node_span(self, node: Tree | Token) -> Span:
        if isinstance(node, Token):
            return self.span_of(node.start_pos or 0, node.end_pos or 0)
        meta = node.meta
        if getattr(meta, "empty", True):
            return self.span_of(0, len(self.text))
        return self.span_of(meta.start_pos, meta.end_pos)

    def error(self, message: str, node: Tree | Token | Span, hint: str | None = None) -> NectarError:
        span = node if isinstance(node, Span) else self.node_span(node)
        return NectarError(message, span, hint)

    # ---------------------------------------------------------------- dispatch
    def build(self, node: Tree | Token) -> ir.Expr:
        if isinstance(node, Token):
            raise self.error(f"unexpected {node.value!r}", node)
        method = getattr(self, "b_" + str(node.data), None)
        if method is None:  # pragma: no cover - the grammar and this class are kept in step
            raise self.error(f"internal: no builder for {node.data}", node)
        result: ir.Expr = method(node)
        return result

    def b_or_expr(self, node: Tree) -> ir.Expr:
        items = [self.build(c) for c in node.children]
        # (a or b) or c is a or b or c: flatten, so that the IR (and so the formatter) is canonical.
        flat = tuple(x for i in items for x in (i.items if isinstance(i, ir.Or) else (i,)))
        return ir.Or(flat, self.node_span(node))

    def b_and_expr(self, node: Tree) -> ir.Expr:
        items = [self.build(c) for c in node.children]
        flat = tuple(x for i in items for x in (i.items if isinstance(i, ir.And) else (i,)))
        return ir.And(flat, self.node_span(node))

    def b_not_(self, node: Tree) -> ir.Expr:
        inner = self.build(node.children[0])
        span = self.node_span(node)
        # `not exists(f)` and `not has_root()` are atoms of their own (Refinery: not-exists, has-root-span false).
        if isinstance(inner, ir.Exists):
            return ir.Exists(inner.field, not inner.negated, span)
        if isinstance(inner, ir.HasRoot):
            return ir.HasRoot(not inner.negated, span)
        return ir.Not(inner, span)

    def b_const_true(self, node: Tree) -> ir.Expr:
        return ir.Const(True, self.node_span(node))

    def b_const_false(self, node: Tree) -> ir.Expr:
        return ir.Const(False, self.node_span(node))

    def b_group(self, node: Tree) -> ir.Expr:
        return self.build(node.children[0])  # parentheses only group: the IR has no node for them

    def b_span_group(self, node: Tree) -> ir.Expr:
        return ir.SpanGroup(self.build(node.children[0]), self.node_span(node))

    def b_has_root(self, node: Tree) -> ir.Expr:
        return ir.HasRoot(False, self.node_span(node))

    # ---------------------------------------------------------------- fields
    def field(self, node: Tree) -> ir.FieldRef:
        span = self.node_span(node)
        if node.data == "span_count":
            return ir.FieldRef(ir.FieldKind.SPAN_COUNT, "span_count()", (), False, False, span)
        tok = node.children[0]
        assert isinstance(tok, Token)
        if node.data == "quoted_field":
            name = re.sub(r"\\(.)", r"\1", tok.value[1:-1])
            if not name:
                raise self.error("empty field name", node)
            self.check_visible(name, node)
            return ir.FieldRef(ir.FieldKind.ATTR, name, (name,), False, True, span)
        written = tok.value
        root = written.startswith("root.") and len(written) > 5
        base = written[5:] if root else written
        if base in self.aliases:
            fields = tuple(self.aliases[base])
        else:
            fields = (base,)
            self.check_alias_typo(base, span)
        for f in fields:
            self.check_visible(f, node)
        return ir.FieldRef(ir.FieldKind.ATTR, written, fields, root, False, span)

    def check_visible(self, name: str, node: Tree) -> None:
        if name in HIDDEN_FIELDS:
            raise self.error(f"rules cannot use the field {name!r}: {HIDDEN_FIELDS[name]}", node)
        if name == "?.NUM_DESCENDANTS":
            raise self.error("write span_count() for the trace's span count", node)

    def check_alias_typo(self, name: str, span: Span) -> None:
        if "." in name:
            return
        for alias in self.aliases:
            if "." not in alias and edit_distance(name, alias) == 1:
                self.diagnostics.append(
                    ir.Diagnostic(
                        f"field {name!r} is not an alias; did you mean {alias!r}?",
                        span,
                        f"{alias!r} stands for {', '.join(self.aliases[alias])}; a name that is not an alias is "
                        "used as a span field as written",
                    )
                )
                return

    # ---------------------------------------------------------------- literals
    def literal(self, node: Tree) -> ir.Literal:
        tok = node.children[0]
        assert isinstance(tok, Token)
        span = self.node_span(node)
        kind = str(node.data)
        if kind == "string":
            return ir.Literal(ir.LitKind.STRING, _unescape(tok.value[1:-1], self, tok), tok.value, span)
        if kind == "true":
            return ir.Literal(ir.LitKind.BOOL, True, "true", span)
        if kind == "false":
            return ir.Literal(ir.LitKind.BOOL, False, "false", span)
        if kind == "duration":
            m = re.fullmatch(r"(-?[\d.]+)(ms|s|m|h)", tok.value)
            assert m
            ms = float(m.group(1)) * DURATION_UNITS_MS[m.group(2)]
            if ms < 0:
                raise self.error("a duration cannot be negative", node)
            return ir.Literal(ir.LitKind.DURATION, ms, tok.value, span)
        text = tok.value
        if re.fullmatch(r"-?\d+", text):
            value = int(text)
            if not gostr.INT64_MIN <= value <= gostr.INT64_MAX:
                raise self.error("integer out of range (Refinery ints are 64-bit)", node)
            return ir.Literal(ir.LitKind.INT, value, text, span)
        f = float(text)
        if math.isinf(f):
            raise self.error("number out of range", node)
        return ir.Literal(ir.LitKind.FLOAT, f, text, span)

    # ---------------------------------------------------------------- atoms
    def b_compare(self, node: Tree) -> ir.Expr:
        fnode, optok, vnode = node.children
        assert isinstance(fnode, Tree) and isinstance(optok, Token) and isinstance(vnode, Tree)
        field = self.field(fnode)
        op = ir.CmpOp("==" if optok.value == "=" else optok.value)
        value = self.literal(vnode)
        span = self.node_span(node)
        if field.kind is ir.FieldKind.SPAN_COUNT:
            if value.kind is not ir.LitKind.INT:
                raise self.error("span_count() compares with a whole number", vnode)
            return ir.Compare(field, op, value, span)
        self.check_value_kind(field, value, op, vnode)
        return ir.Compare(field, op, value, span)

    def b_untyped(self, node: Tree) -> ir.Expr:
        """``untyped(field op value)``: no Datatype, Refinery's native type-strict comparison (SEMANTICS.md 2.6).

        None of the typed checks apply: the author asked for exactly what Refinery does with such a condition."""
        inner = node.children[0]
        assert isinstance(inner, Tree)
        if inner.data != "compare":
            raise self.error("untyped(...) takes one comparison (==, !=, >, >=, <, <=)", inner)
        fnode, optok, vnode = inner.children
        assert isinstance(fnode, Tree) and isinstance(optok, Token) and isinstance(vnode, Tree)
        field = self.field(fnode)
        if field.kind is ir.FieldKind.SPAN_COUNT:
            raise self.error("span_count() is always a whole number: write the comparison without untyped(...)", fnode)
        op = ir.CmpOp("==" if optok.value == "=" else optok.value)
        return ir.Compare(field, op, self.literal(vnode), self.node_span(node), untyped=True)

    def check_value_kind(self, field: ir.FieldRef, value: ir.Literal, op: ir.CmpOp | None, vnode: Tree) -> None:
        is_duration_field = any(f == "duration_ms" or f.endswith("_ms") for f in field.fields)
        if value.kind is ir.LitKind.DURATION and not is_duration_field:
            raise self.error(
                f"a duration ({value.text}) compares with a duration field, and {field.written!r} is not one",
                vnode,
                "durations are compared in milliseconds against duration_ms (alias `duration`) or a field "
                "ending in _ms; for another field write a plain number",
            )
        numeric = any(f in NUMERIC_FIELDS for f in field.fields)
        if value.kind is ir.LitKind.STRING and numeric:
            raise self.error(
                f"{field.written!r} holds numbers, and {value.text} is a string",
                vnode,
                f"write the number without quotes (Refinery: the string {value.text} never equals a number)",
            )
        if op in (ir.CmpOp.GT, ir.CmpOp.GE, ir.CmpOp.LT, ir.CmpOp.LE):
            if value.kind is ir.LitKind.STRING:
                raise self.error(
                    f'`{op.value}` with a string compares byte by byte ("1000" < "500")',
                    vnode,
                    "compare with a number (no quotes), or use ==, in (...), starts_with or matches for text",
                )
            if value.kind is ir.LitKind.BOOL:
                raise self.error(f"`{op.value}` does not apply to true/false", vnode, "use == or !=")

    def list_values(self, node: Tree, field: ir.FieldRef) -> tuple[ir.Literal, ...]:
        vals = [self.literal(c) for c in node.children if isinstance(c, Tree)]
        kinds = {v.kind for v in vals}
        if ir.LitKind.BOOL in kinds:
            raise self.error(
                "`in` with true/false never matches in Refinery", node, "write `field == true` or `field == false`"
            )
        for v, c in zip(vals, [c for c in node.children if isinstance(c, Tree)], strict=True):
            self.check_value_kind(field, v, None, c)
        if ir.LitKind.STRING in kinds and len(kinds) > 1:
            raise self.error(
                "a list mixes strings and numbers; Refinery needs all values of one type",
                node,
                "quote all of them or none",
            )
        if len(kinds) > 1:  # ints with floats or durations: all become floats (exact for float comparison)
            vals = [ir.Literal(ir.LitKind.FLOAT, float(v.value), v.text, v.span) for v in vals]
        return tuple(vals)

    def b_in_list(self, node: Tree) -> ir.Expr:
        fnode, lnode = node.children
        assert isinstance(fnode, Tree) and isinstance(lnode, Tree)
        field = self.field(fnode)
        self.require_attr(field, "in", fnode)
        return ir.InList(field, self.list_values(lnode, field), False, self.node_span(node))

    def b_not_in_list(self, node: Tree) -> ir.Expr:
        fnode, lnode = node.children
        assert isinstance(fnode, Tree) and isinstance(lnode, Tree)
        field = self.field(fnode)
        self.require_attr(field, "not in", fnode)
        return ir.InList(field, self.list_values(lnode, field), True, self.node_span(node))

    def require_attr(self, field: ir.FieldRef, what: str, node: Tree) -> None:
        if field.kind is not ir.FieldKind.ATTR:
            raise self.error(f"`{what}` takes a span field, not span_count()", node)

    def string_op(self, node: Tree, kind: ir.StrOpKind, negated: bool) -> ir.Expr:
        fnode, optok, vnode = node.children
        assert isinstance(fnode, Tree) and isinstance(optok, Token) and isinstance(vnode, Tree)
        field = self.field(fnode)
        self.require_attr(field, kind.value, fnode)
        pattern = self.literal(vnode)
        if pattern.kind is not ir.LitKind.STRING:
            raise self.error(f"`{kind.value}` takes a string in double quotes", vnode)
        if kind is ir.StrOpKind.MATCHES:
            problem = check_re2(str(pattern.value))
            if problem:
                raise self.error(
                    f"invalid regular expression: {problem}",
                    vnode,
                    "Refinery uses Go's RE2 syntax: no look-around, no back-references",
                )
        return ir.StringOp(field, kind, pattern, negated, self.node_span(node))

    def b_contains(self, node: Tree) -> ir.Expr:
        return self.string_op(node, ir.StrOpKind.CONTAINS, False)

    def b_not_contains(self, node: Tree) -> ir.Expr:
        return self.string_op(node, ir.StrOpKind.CONTAINS, True)

    def b_starts_with(self, node: Tree) -> ir.Expr:
        return self.string_op(node, ir.StrOpKind.STARTS_WITH, False)

    def b_ends_with(self, node: Tree) -> ir.Expr:
        return self.string_op(node, ir.StrOpKind.ENDS_WITH, False)

    def b_matches(self, node: Tree) -> ir.Expr:
        return self.string_op(node, ir.StrOpKind.MATCHES, False)

    def b_exists(self, node: Tree) -> ir.Expr:
        fnode = node.children[0]
        assert isinstance(fnode, Tree)
        field = self.field(fnode)
        if field.kind is not ir.FieldKind.ATTR:
            raise self.error("span_count() always exists", fnode)
        return ir.Exists(field, False, self.node_span(node))


def _unescape(body: str, builder: _Builder, tok: Token) -> str:
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt not in escapes:
                start = (tok.start_pos or 0) + 1 + i
                raise NectarError(
                    f"unknown escape \\{nxt} in a string",
                    builder.span_of(start, start + 2),
                    'strings allow \\" \\\\ \\n \\t \\r; in a regex write a backslash as \\\\',
                )
            out.append(escapes[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# ------------------------------------------------------------------------------------------- error messages

_TERMINAL_NAMES = {
    "CMP_OP": "a comparison (== != > >= < <=)",
    "_IN": "`in`",
    "_NOT": "`not`",
    "_AND": "`and`",
    "_OR": "`or`",
    "CONTAINS": "`contains`",
    "STARTS_WITH": "`starts_with`",
    "ENDS_WITH": "`ends_with`",
    "MATCHES": "`matches`",
    "NAME": "a field name",
    "QUOTED_NAME": "a field name",
    "STRING": 'a "string"',
    "NUMBER": "a number",
    "DURATION": "a duration",
    "TRUE": "true",
    "FALSE": "false",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "COMMA": "`,`",
    "$END": "the end",
}
_OPERATOR_TERMINALS = {"CMP_OP", "_IN", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "MATCHES"}
_VALUE_TERMINALS = {"STRING", "NUMBER", "DURATION", "TRUE", "FALSE"}
_OPERATORS_TEXT = "==, !=, >, >=, <, <=, in, not in, contains, not contains, starts_with, ends_with or matches"

_CHAR_SLIPS: list[tuple[str, str, str | None]] = [
    ("=>", "`=>` is not an operator; did you mean `>=`?", None),
    ("=<", "`=<` is not an operator; did you mean `<=`?", None),
    ("<>", "`<>` is not an operator; did you mean `!=`?", None),
    ("&&", "`&&` is not an operator; write `and`", None),
    ("||", "`||` is not an operator; write `or`", None),
    ("'", "strings are written in double quotes", "write \"text\", not 'text'"),
]


def _friendly(exc: lark.exceptions.UnexpectedInput, text: str, b: _Builder) -> NectarError:
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        rest = text[pos:]
        for slip, message, hint in _CHAR_SLIPS:
            if rest.startswith(slip):
                return NectarError(message, b.span_of(pos, pos + len(slip)), hint)
        if rest.startswith('"'):
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            return NectarError("missing closing quote", b.span_of(pos, end), 'end the string with "')
        if rest.startswith("`"):
            return NectarError("missing closing backtick in a field name", b.span_of(pos, pos + 1))
        if rest.startswith("!"):
            return NectarError("`!` is not an operator; write `not` (or `!=`)", b.span_of(pos, pos + 1))
        m = re.match(r"(-?(\d+(\.\d*)?|\.\d+))([A-Za-z_]+)", text[_token_start(text, pos) :])
        if m:
            start = _token_start(text, pos)
            unit = m.group(4)
            return NectarError(
                f"unknown duration unit {unit!r}",
                b.span_of(start, start + len(m.group(0))),
                "durations are written with ms, s, m or h: 250ms, 5s, 1.5m, 2h",
            )
        return NectarError(f"unexpected character {rest[:1]!r}", b.span_of(pos, pos + 1))
    assert isinstance(exc, lark.exceptions.UnexpectedToken)
    tok = exc.token
    expected = set(exc.expected)
    prev = _previous_token(text, tok.start_pos if tok.type != "$END" else len(text))
    if tok.type == "$END":
        end = len(text.rstrip())
        last = re.search(r"(==|!=|>=|<=|[<>=(,]|[^\s(),]+)$", text[:end])
        at = b.span_of(last.start() if last else max(0, end - 1), end)
        if prev in ("and", "or", "not"):
            return NectarError(f"trailing `{prev}`: expected a condition after it", at)
        if expected & _VALUE_TERMINALS and not expected & {"NAME"}:
            return NectarError(
                f"expected a value after `{prev}`",
                at,
                'a value is a number, a "string", true, false or a duration like 5s',
            )
        if "RPAR" in expected:
            return NectarError("missing `)`", at)
        if expected & _OPERATOR_TERMINALS:
            return NectarError(f"expected an operator after the field: {_OPERATORS_TEXT}", at)
        return NectarError("unexpected end of the expression", at)
    start = tok.start_pos or 0
    span = b.span_of(start, tok.end_pos or start + 1)
    if tok.type == "CMP_OP":
        # `=>` lexes as `=` then `>`: look at both together.
        joined_start = len(text[:start].rstrip())
        joined = text[joined_start - 1 : start].strip() + tok.value if joined_start else ""
        for slip, message, hint in _CHAR_SLIPS:
            if joined == slip:
                return NectarError(message, b.span_of(joined_start - 1, tok.end_pos or start + 1), hint)
    if tok.type == "NAME" and start > 0 and (text[start - 1].isdigit() or text[start - 1] == "."):
        num = re.search(r"-?[\d.]+$", text[:start])
        nstart = num.start() if num else start
        return NectarError(
            f"unknown duration unit {tok.value!r}",
            b.span_of(nstart, tok.end_pos or start + 1),
            "durations are written with ms, s, m or h: 250ms, 5s, 1.5m, 2h",
        )
    if tok.type == "NAME" and tok.value in ("exists", "not") and expected & _OPERATOR_TERMINALS:
        return NectarError(f"`{tok.value}` cannot follow a field", span, "write exists(field) or not exists(field)")
    if expected & _OPERATOR_TERMINALS and tok.type in ("NAME", "QUOTED_NAME"):
        return NectarError(f"unknown operator {tok.value!r}; expected {_OPERATORS_TEXT}", span)
    if expected & _VALUE_TERMINALS and tok.type in ("NAME", "QUOTED_NAME"):
        return NectarError(f"expected a value, found {tok.value!r}", span, f'strings need double quotes: "{tok.value}"')
    if tok.type in ("_AND", "_OR") and prev in (None, "(", "and", "or", "not"):
        return NectarError(f"expected a condition before `{tok.value}`", span)
    if prev == "in" and "LPAR" in expected:
        return NectarError("expected `(` after `in`", span, 'write field in ("a", "b")')
    if tok.type in ("NAME", "QUOTED_NAME", "STRING", "NUMBER") and expected & {"_AND", "_OR", "$END", "RPAR"}:
        return NectarError(f"unexpected {tok.value!r}: join conditions with `and` or `or`", span)
    if tok.type == "CMP_OP" and prev is not None and prev in _CMP_TEXT:
        return NectarError(f"unexpected {tok.value!r} after `{prev}`", span, "one comparison operator at a time")
    names = sorted({_TERMINAL_NAMES.get(t, t) for t in expected if not t.startswith("__")})
    return NectarError(f"unexpected {tok.value!r}; expected {', '.join(names)}", span)


_CMP_TEXT = {"==", "!=", ">", ">=", "<", "<=", "="}


def _token_start(text: str, pos: int) -> int:
    while pos > 0 and (text[pos - 1].isalnum() or text[pos - 1] in "._-"):
        pos -= 1
    return pos


def _previous_token(text: str, pos: int) -> str | None:
    m = re.search(r"(==|!=|>=|<=|[<>=()]|[A-Za-z_][\w.]*)\s*$", text[:pos])
    return m.group(1) if m else None


# ------------------------------------------------------------------------------------------- nesting

_OPENINGS = {"group": "(", "span_group": "span(", "not_": "not"}  # the rules that open a nesting level


def _check_nesting(tree: Tree | Token, text: str, b: _Builder) -> None:
    """Refuse an expression nested more than :data:`ir.MAX_NESTING` levels deep, at the opening that exceeds it.

    Lark's LALR parser builds a tree of any depth without recursing; every later stage recurses over the IR, so
    the depth is bounded here, before any of them runs. This walk keeps its own stack."""
    stack: list[tuple[Tree | Token, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data in _OPENINGS:
            depth += 1
            if depth > ir.MAX_NESTING:
                start = node.meta.start_pos
                opening = _OPENINGS[str(node.data)]
                length = text.find("(", start) + 1 - start if opening == "span(" else len(opening)
                raise NectarError(
                    f"the expression nests too deeply: this `{opening}` opens level {depth}, and a match expression "
                    f"nests at most {ir.MAX_NESTING} levels (each `(`, `span(` and `not` opens one)",
                    b.span_of(start, start + max(1, length)),
                    "split the condition over several rules, or remove parentheses that group nothing",
                )
        stack.extend((child, depth) for child in reversed(node.children))


# ------------------------------------------------------------------------------------------- entry point


@dataclass(frozen=True, slots=True)
class Parsed:
    expr: ir.Expr
    diagnostics: tuple[ir.Diagnostic, ...]


def parse_expr(
    text: str,
    origin: Origin | None = None,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
) -> Parsed:
    """Parse and validate a match expression. Raises :class:`NectarError` with the position of the problem."""
    origin = origin or standalone_origin(text)
    builder = _Builder(text, origin, aliases if aliases is not None else DEFAULT_ALIASES)
    if not text.strip():
        raise NectarError("empty match expression", builder.span_of(0, 1), "write `true` to match every trace")
    lead = re.match(r"\s*(and|or)\b", text)
    if lead:
        raise NectarError(f"expected a condition before `{lead.group(1)}`", builder.span_of(lead.start(1), lead.end(1)))
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise _friendly(exc, text, builder) from None
    _check_nesting(tree, text, builder)
    expr = builder.build(tree) if isinstance(tree, Tree) else builder.build(Tree("start", [tree]))
    return Parsed(expr, tuple(builder.diagnostics))
