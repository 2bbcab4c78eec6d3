"""The canonical text of a policy and of match expressions, printed from the IR (``nectar fmt``).

Formatting is a pure function of the IR, so it is idempotent: ``format(parse(format(parse(t)))) == format(parse(t))``.
Two spellings: ``header`` (the README's form, the default) and ``standard`` (plain TOON ``key: value`` lines).
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum

from nectar.policy import ir
from nectar.policy.toon import encode_number, encode_string


class Spelling(StrEnum):
    HEADER = "header"
    STANDARD = "standard"


# ------------------------------------------------------------------------------------------- expressions

_PREC_OR, _PREC_AND, _PREC_NOT, _PREC_ATOM = 1, 2, 3, 4


def format_string(value: str) -> str:
    """A double-quoted string literal of the match language."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return '"' + out.replace("\r", "\\r") + '"'


def format_field(f: ir.FieldRef) -> str:
    if f.kind is ir.FieldKind.SPAN_COUNT:
        return "span_count()"
    if f.quoted:
        return "`" + f.written.replace("\\", "\\\\").replace("`", "\\`") + "`"
    return f.written


def format_literal(lit: ir.Literal) -> str:
    if lit.kind is ir.LitKind.STRING:
        return format_string(str(lit.value))
    if lit.kind is ir.LitKind.BOOL:
        return "true" if lit.value else "false"
    return lit.text  # numbers and durations as written: unambiguous, and what the author meant to read


@functools.singledispatch
def _fmt(node: object, prec: int) -> tuple[str, int]:  # pragma: no cover - every node type is registered
    raise TypeError(f"cannot format {type(node).__name__}")


@_fmt.register
def _(node: ir.Compare, prec: int) -> tuple[str, int]:
    text = f"{format_field(node.field)} {node.op.value} {format_literal(node.value)}"
    return (f"untyped({text})" if node.untyped else text), _PREC_ATOM


@_fmt.register
def _(node: ir.InList, prec: int) -> tuple[str, int]:
    values = ", ".join(format_literal(v) for v in node.values)
    op = "not in" if node.negated else "in"
    return f"{format_field(node.field)} {op} ({values})", _PREC_ATOM


@_fmt.register
def _(node: ir.StringOp, prec: int) -> tuple[str, int]:
    op = ("not " if node.negated else "") + node.kind.value
    return f"{format_field(node.field)} {op} {format_literal(node.pattern)}", _PREC_ATOM


@_fmt.register
def _(node: ir.Exists, prec: int) -> tuple[str, int]:
    return ("not " if node.negated else "") + f"exists({format_field(node.field)})", _PREC_ATOM


@_fmt.register
def _(node: ir.HasRoot, prec: int) -> tuple[str, int]:
    return ("not " if node.negated else "") + "has_root()", _PREC_ATOM


@_fmt.register
def _(node: ir.Const, prec: int) -> tuple[str, int]:
    return ("true" if node.value else "false"), _PREC_ATOM


@_fmt.register
def _(node: ir.SpanGroup, prec: int) -> tuple[str, int]:
    return f"span({format_expr(node.item)})", _PREC_ATOM


@_fmt.register
def _(node: ir.Not, prec: int) -> tuple[str, int]:
    return "not " + _wrap(node.item, _PREC_NOT), _PREC_NOT


@_fmt.register
def _(node: ir.And, prec: int) -> tuple[str, int]:
    return " and ".join(_wrap(i, _PREC_AND) for i in node.items), _PREC_AND


@_fmt.register
def _(node: ir.Or, prec: int) -> tuple[str, int]:
    return " or ".join(_wrap(i, _PREC_OR) for i in node.items), _PREC_OR


def _wrap(node: ir.Expr, outer: int) -> str:
    text, prec = _fmt(node, outer)
    # `not` binds tighter than `and`; an `and` inside `or` needs no parentheses, but we add them for readers
    # when mixing `and` and `or` (the most common misreading of boolean expressions).
    if prec < outer or (outer == _PREC_OR and prec == _PREC_AND) or (outer == _PREC_NOT and prec < _PREC_ATOM):
        return f"({text})"
    return text


def format_expr(expr: ir.Expr) -> str:
    """The canonical text of a match expression."""
    return _fmt(expr, 0)[0]


# ------------------------------------------------------------------------------------------- actions


def format_action(action: ir.Action) -> str:
    match action:
        case ir.KeepAction():
            return "keep"
        case ir.DropAction():
            return "drop"
        case ir.SampleAction():
            return f"sample({action.written})"
        case ir.DynamicAction() | ir.ThroughputAction():
            return _stateful(action)
        case ir.DeterministicAction():
            return f"deterministic(rate={action.rate})"
    raise TypeError(f"cannot format {type(action).__name__}")  # pragma: no cover


_KEY_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_@\-]*(\.[A-Za-z0-9_@\-]+)*")


def _stateful(action: ir.StatefulAction) -> str:
    """``dynamic(rate=N, keys=(...), kind=K, <settings>)``; the default kind (``ema``) is not written."""
    spec = action.spec
    out = [f"{spec.goal_arg}={action.goal}", f"keys=({_keys(action.keys)})"]
    if spec.kind is not ir.sampler_kinds(spec.action)[0]:
        out.append(f"kind={spec.kind}")
    return f"{spec.action}({', '.join(out)}{_settings(spec, action.settings)})"


def _settings(spec: ir.SamplerSpec, settings: tuple[tuple[str, ir.SettingValue], ...]) -> str:
    names = {key: arg for arg, (key, _) in spec.settings.items()}
    out = []
    for key, value in settings:
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = repr(value) if isinstance(value, float) else str(value)
        out.append(f", {names[key]}={text}")
    return "".join(out)


def _keys(keys: tuple[str, ...]) -> str:
    return ", ".join(k if _KEY_NAME.fullmatch(k) else format_string(k) for k in keys)


# ------------------------------------------------------------------------------------------- policies


def _cell(text: str) -> str:
    return encode_string(text, ",")


def _match_cell(expr: ir.Expr) -> str:
    text = format_expr(expr)
    # `true`/`false` stay unquoted: they decode as booleans, which the loader reads as the constant.
    return text if text in ("true", "false") else _cell(text)


def format_policy(policy: ir.Policy, spelling: Spelling = Spelling.HEADER) -> str:
    """The canonical text of a policy (ends with a newline)."""
    values: list[tuple[str, str | list[str]]] = [
        ("version", str(policy.version)),
        ("name", _cell(policy.name)),
    ]
    if policy.description:
        values.append(("description", _cell(policy.description)))
    if policy.budget_per_second is not None:
        values.append(("budget_per_second", encode_number(policy.budget_per_second)))
    rows = [
        ",".join(
            [
                _cell(r.name),
                _cell(r.description),
                _match_cell(r.match),
                _cell(format_action(r.action)),
                str(r.priority),
            ]
        )
        for r in policy.rules
    ]
    values.append(("rules", [f"rules[{len(rows)}]{{name,description,match,action,priority}}:", *rows]))
    if policy.must_keep:
        mk = [",".join([_cell(m.name), _match_cell(m.match)]) for m in policy.must_keep]
        values.append(("must_keep", [f"must_keep[{len(mk)}]{{name,match}}:", *mk]))
    if policy.accept:
        acc = [",".join([_cell(a.check), _cell(a.rule), _cell(a.reason)]) for a in policy.accept]
        values.append(("accept", [f"accept[{len(acc)}]{{check,rule,reason}}:", *acc]))

    lines: list[str] = []
    if spelling is Spelling.HEADER:
        lines.append("nectar_policy{" + ",".join(k for k, _ in values) + "}:")
    else:
        lines.append("nectar_policy:")
    for key, value in values:
        if isinstance(value, list):
            lines.append("  " + value[0])
            lines.extend("    " + row for row in value[1:])
        elif spelling is Spelling.HEADER:
            lines.append("  " + value)
        else:
            lines.append(f"  {key}: {value}")
    return "\n".join(lines) + "\n"
