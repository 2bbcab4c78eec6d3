"""Plain-English descriptions of policy rules, generated deterministically from the policy IR.

A reviewer should be able to approve a sampling change from these sentences, so they say what Refinery will do,
not what the author may have meant: every trace-scope condition is about ANY span (SEMANTICS.md 2.2), negative
operators are "some span does not", and a missing field reads as the text ``<nil>`` for text operators
(SEMANTICS.md 2.5). The sentence stays short; the traps go into separate notes.

``not`` is pushed down to the atoms first, exactly as :mod:`nectar.policy.normalize` does (the policy was already
validated by it, so every negation here has an exact form). One dispatch convention, as in
:mod:`nectar.policy.format`: ``functools.singledispatch`` over IR node types.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from nectar.policy import ir
from nectar.policy.format import format_expr, format_field, format_literal
from nectar.policy.normalize import negate_atom, normalize
from nectar.refinery import gostr

# Readable names for the default aliases (README "Field aliases"); any other alias shows its name and fields.
_ALIAS_LABELS = {
    "http.status": "an HTTP status",
    "http.method": "an HTTP method",
    "duration": "a duration",
    "service": "a service name",
}


@dataclass(frozen=True, slots=True)
class RuleText:
    """A rule in English: one ``sentence`` and the ``notes`` (semantics traps) a reviewer must know."""

    sentence: str
    notes: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------------- fields/values


def field_label(f: ir.FieldRef) -> str:
    """``an HTTP status (http.response.status_code, else http.status_code)``, ``http.route``, ``duration_ms``."""
    fields = ", else ".join(f.fields)
    base = f.written[5:] if f.root and not f.quoted else f.written
    if base in _ALIAS_LABELS and f.is_alias:
        return f"{_ALIAS_LABELS[base]} ({fields})"
    if f.is_alias:
        return f"{base} ({fields})"
    return format_field(f) if f.quoted else fields


def _value(lit: ir.Literal) -> str:
    if lit.kind is ir.LitKind.DURATION:
        ms = float(lit.value)
        shown = f"{ms:,.0f}" if ms == int(ms) else f"{ms:,g}"
        return f"{lit.text} ({shown} ms)"
    return format_literal(lit)


def _values(lits: tuple[ir.Literal, ...]) -> str:
    items = [_value(v) for v in lits]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


_CMP_PHRASE = {
    ir.CmpOp.GT: "of more than {}",
    ir.CmpOp.GE: "of {} or more",
    ir.CmpOp.LT: "of less than {}",
    ir.CmpOp.LE: "of {} or less",
    ir.CmpOp.EQ: "equal to {}",
    ir.CmpOp.NE: "other than {}",
}
_COUNT_PHRASE = {
    ir.CmpOp.GT: "more than {} spans",
    ir.CmpOp.GE: "{} spans or more",
    ir.CmpOp.LT: "fewer than {} spans",
    ir.CmpOp.LE: "{} spans or fewer",
    ir.CmpOp.EQ: "exactly {} spans",
    ir.CmpOp.NE: "other than {} spans",
}


# ------------------------------------------------------------------------------------------------- atoms on a span


@functools.singledispatch
def span_phrase(atom: object) -> str:  # pragma: no cover - every atom type is registered
    """What one atom says about one span, as a verb phrase ("has http.route starting with \"/api\"")."""
    raise TypeError(f"cannot describe {type(atom).__name__}")


@span_phrase.register
def _(atom: ir.Compare) -> str:
    return f"has {field_label(atom.field)} " + _CMP_PHRASE[atom.op].format(_value(atom.value))


@span_phrase.register
def _(atom: ir.InList) -> str:
    label = field_label(atom.field)
    if len(atom.values) == 1:
        return f"has {label} {'other than' if atom.negated else 'equal to'} {_value(atom.values[0])}"
    listed = ", ".join(_value(v) for v in atom.values)
    return f"has {label} {'that is none' if atom.negated else 'equal to one'} of {listed}"


@span_phrase.register
def _(atom: ir.StringOp) -> str:
    pat = format_literal(atom.pattern)
    label = field_label(atom.field)
    match atom.kind:
        case ir.StrOpKind.CONTAINS:
            return f"has {label} {'not ' if atom.negated else ''}containing {pat}"
        case ir.StrOpKind.STARTS_WITH:
            return f"has {label} starting with {pat}"
        case ir.StrOpKind.ENDS_WITH:
            return f"has {label} ending with {pat}"
    return f"has {label} matching the regular expression {pat}"


@span_phrase.register
def _(atom: ir.Exists) -> str:
    return f"{'lacks' if atom.negated else 'has'} the field {field_label(atom.field)}"


@span_phrase.register
def _(atom: ir.HasRoot) -> str:  # only reached inside a span group, where normalize refuses it
    return "is in a trace whose root span has " + ("not arrived" if atom.negated else "arrived")


# ------------------------------------------------------------------------------------------------- trace qualifiers


def _is_span_atom(e: ir.Expr) -> bool:
    """An atom that reads one (any) span, rather than the root span or the whole trace."""
    if isinstance(e, ir.HasRoot) or not isinstance(e, ir.ATOM_TYPES):
        return False
    return not (e.field.root or e.field.kind is ir.FieldKind.SPAN_COUNT)


def _trace_atom(atom: ir.Atom, first_any: bool) -> str:
    """A qualifier of a trace ("in which any span has ...", "whose root span ...", "with more than 5 spans")."""
    if isinstance(atom, ir.HasRoot):
        return "whose root span has " + ("not arrived when Refinery decides" if atom.negated else "arrived")
    if isinstance(atom, ir.Compare) and atom.field.kind is ir.FieldKind.SPAN_COUNT:
        phrase = _COUNT_PHRASE[atom.op].format(_value(atom.value))
        return "with " + (phrase.replace(" spans", " span") if atom.value.value == 1 else phrase)
    if atom.field.root:
        return "whose root span " + span_phrase(atom)
    who = "any span" if first_any else "any span (not necessarily the same one)"
    return f"in which {who} {span_phrase(atom)}"


def _push_not(expr: ir.Expr, negate: bool, in_span: bool) -> ir.Expr:
    """``expr`` without ``Not`` nodes: De Morgan, and the exact complement of each atom (as normalize does)."""
    match expr:
        case ir.Const(value=v):
            return ir.Const(v != negate)
        case ir.Not(item=item):
            return _push_not(item, not negate, in_span)
        case ir.And(items=items) | ir.Or(items=items):
            parts = tuple(_push_not(i, negate, in_span) for i in items)
            return ir.And(parts) if isinstance(expr, ir.And) != negate else ir.Or(parts)
        case ir.SpanGroup(item=item):
            return ir.SpanGroup(_push_not(item, negate, True))
    atom: ir.Atom = expr  # type: ignore[assignment]
    return negate_atom(atom, in_span, atom.span) if negate else atom


def _join(items: list[str], word: str) -> str:
    if len(items) <= 2:
        return f" {word} ".join(items)
    return ", ".join(items[:-1]) + f", {word} " + items[-1]


def _group(expr: ir.Expr) -> str:
    """Inside ``span(...)``: what one span must satisfy."""
    match expr:
        case ir.And(items=items):
            inner = [_group(i) for i in items]
            if all(p.startswith("has ") for p in inner):
                rest = [p[4:] for p in inner]
                lead = "has both " if len(rest) == 2 else "has all of: "
                return lead + _join(rest, "and")
            return _join(inner, "and")
        case ir.Or(items=items):
            return "either " + _join([_group(i) for i in items], "or")
        case ir.SpanGroup(item=item):
            return _group(item)  # span(...) inside span(...) is the same one span
        case ir.Const(value=v):
            return "is any span" if v else "is no span (false)"
    if not _is_span_atom(expr):  # root fields, span_count(), has_root(): a property of the span's trace
        return "belongs to a trace " + _trace_atom(expr, True)  # type: ignore[arg-type]
    return span_phrase(expr)


def _qualifier(expr: ir.Expr, seen_any: list[bool], said: bool = False) -> str:
    """A Not-free expression as a trace qualifier. ``seen_any``: "any span" was already said (a later one is "any
    span (not necessarily the same one)"); ``said``: "in which" was already said, so it is not repeated."""
    match expr:
        case ir.Const(value=v):
            return "" if v else "(never: the match is false)"
        case ir.SpanGroup(item=item):
            inner = item.items if isinstance(item, ir.And) else (item,)
            on_span = [i for i in inner if not isinstance(i, ir.ATOM_TYPES) or _is_span_atom(i)]
            trace_wide = [i for i in inner if isinstance(i, ir.ATOM_TYPES) and not _is_span_atom(i)]
            body = on_span[0] if len(on_span) == 1 else ir.And(tuple(on_span))
            parts = [("" if said else _IN_WHICH) + f"one span {_group(body)}"] if on_span else []
            parts += [_qualifier(i, seen_any, said or bool(on_span)) for i in trace_wide]
            return _join(parts, "and")
        case ir.And(items=items):
            parts = []
            for i in items:
                text = _qualifier(i, seen_any, said)
                said = said or text.startswith(_IN_WHICH)
                parts.append(text)
            return _join(parts, "and")
        case ir.Or(items=items):
            alts = [_qualifier(i, [False], said) for i in items]
            return ("either " if said or seen_any[0] else "") + _join(alts, "or")
    atom: ir.Atom = expr  # type: ignore[assignment]
    text = _trace_atom(atom, not seen_any[0])
    if _is_span_atom(atom):
        seen_any[0] = True
    return text[len(_IN_WHICH) :] if said and text.startswith(_IN_WHICH) else text


_IN_WHICH = "in which "


def describe_match(expr: ir.Expr) -> str:
    """The traces ``expr`` matches, as a qualifier of "trace": ``"in which any span has ..."`` ("" for all)."""
    return _qualifier(_push_not(expr, False, False), [False])


# ------------------------------------------------------------------------------------------------- actions


def _keys(keys: tuple[str, ...]) -> str:
    return _join(list(keys), "and") if keys else "(no keys)"


# Refinery's defaults for the interval settings a sentence names (SEMANTICS.md 1.3; a zero duration is the default
# too): ClearFrequency 30s, UpdateFrequency 1s, LookbackFrequency 30 x UpdateFrequency.
_DEFAULT_CLEAR_NS = 30 * 10**9
_DEFAULT_UPDATE_NS = 10**9
_DEFAULT_LOOKBACK_UPDATES = 30


def _ns(settings: dict[str, ir.SettingValue], key: str) -> int:
    value = settings.get(key)
    return (gostr.parse_duration(value) or 0) if isinstance(value, str) else 0


def _duration(ns: int) -> str:
    """A Go duration in words: ``500 ms``, ``30 s``, ``1 min 30 s``, ``2 h``."""
    if ns < 10**9:
        return f"{ns / 10**6:g} ms"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    parts = [f"{hours} h"] * (hours > 0) + [f"{minutes} min"] * (minutes > 0) + [f"{rest / 10**9:g} s"] * (rest > 0)
    return " ".join(parts)


def _stateful(action: ir.StatefulAction, some: str) -> str:
    """A dynamic(...) or throughput(...) action, per kind (ir.SAMPLERS), with the settings that shape it."""
    keys, n, kind = _keys(action.keys), action.goal, action.spec.kind
    settings = dict(action.settings)
    if isinstance(action, ir.DynamicAction):
        if kind is ir.SamplerVariant.CLASSIC:
            clear = _duration(_ns(settings, "ClearFrequency") or _DEFAULT_CLEAR_NS)
            return (
                f"Samples {some} with Refinery's classic dynamic sampler: about 1 in {n:,} overall, per combination "
                f"of {keys}, with rates recomputed every {clear} from the previous interval's counts, keeping rare "
                "combinations more often than common ones"
            )
        return (
            f"Samples {some} with Refinery's EMA dynamic sampler: about 1 in {n:,} overall, per combination "
            f"of {keys}, keeping rare combinations more often than common ones"
        )
    # Refinery: with UseClusterSize the goal is divided by the number of nodes (a goal for the whole cluster)
    where = "across the whole cluster" if settings.get("UseClusterSize") is True else "on each Refinery node"
    if kind is ir.SamplerVariant.WINDOWED:
        update = _ns(settings, "UpdateFrequency") or _DEFAULT_UPDATE_NS
        lookback = _ns(settings, "LookbackFrequency") or _DEFAULT_LOOKBACK_UPDATES * update
        return (
            f"Samples {some} with Refinery's windowed throughput sampler, aiming at {n:,} kept per second {where} "
            f"over a {_duration(lookback)} lookback (rates updated every {_duration(update)}), shared across the "
            f"combinations of {keys}"
        )
    if kind is ir.SamplerVariant.TOTAL:
        clear = _duration(_ns(settings, "ClearFrequency") or _DEFAULT_CLEAR_NS)
        return (
            f"Samples {some} with Refinery's total throughput sampler (deprecated in Refinery), aiming at {n:,} "
            f"kept per second {where}, with rates recomputed every {clear}, shared across the combinations of {keys}"
        )
    return (
        f"Samples {some} with Refinery's EMA throughput sampler, aiming at {n:,} kept per second {where}, shared "
        f"across the combinations of {keys}"
    )


def describe_action(action: ir.Action, every: str, some: str) -> str:
    """The action as a sentence without the final period. ``every`` names the traces as "every trace ...",
    ``some`` as "the traces ..." (for "1 in N of the traces ...")."""
    match action:
        case ir.KeepAction():
            return f"Keeps {every}"
        case ir.DropAction():
            return f"Drops {every}"
        case ir.SampleAction(rate=rate):
            if rate <= 1:
                return f"Keeps {every}"
            return f"Keeps 1 in {rate:,}, at random, of {some}"
        case ir.DynamicAction() | ir.ThroughputAction():
            return _stateful(action, some)
        case ir.DeterministicAction(rate=rate):
            return f"Keeps 1 in {rate:,} of {some}, chosen by a hash of the trace id (the same traces on every node)"
    raise TypeError(f"cannot describe {type(action).__name__}")  # pragma: no cover


# ------------------------------------------------------------------------------------------------- notes


def _atoms(expr: ir.Expr) -> list[tuple[ir.Atom, bool]]:
    """Every atom of a Not-free expression, with whether it is inside a span group."""
    out: list[tuple[ir.Atom, bool]] = []

    def walk(e: ir.Expr, in_span: bool) -> None:
        match e:
            case ir.And(items=items) | ir.Or(items=items):
                for i in items:
                    walk(i, in_span)
            case ir.SpanGroup(item=item):
                walk(item, True)
            case ir.Not(item=item):  # pragma: no cover - pushed down before
                walk(item, in_span)
            case ir.Const():
                pass
            case _:
                out.append((e, in_span))  # type: ignore[arg-type]

    walk(expr, False)
    return out


def _negative(atom: ir.Atom) -> bool:
    match atom:
        case ir.Compare():
            return atom.op is ir.CmpOp.NE and atom.field.kind is not ir.FieldKind.SPAN_COUNT
        case ir.InList() | ir.StringOp() | ir.Exists():
            return atom.negated
    return False


def _notes(expr: ir.Expr, action: ir.Action, first: bool) -> list[str]:
    notes: list[str] = []
    flat = _push_not(expr, False, False)
    atoms = _atoms(flat)
    clauses = normalize(expr)
    any_span = [a for a, in_span in atoms if not in_span and _is_span_atom(a)]
    if any(c.scope == "trace" and sum(1 for a in c.atoms if _is_span_atom(a)) > 1 for c in clauses):
        notes.append(
            "Any span: each condition may be met by a different span of the trace. To require one span with all "
            "of them, write span(...) (Refinery's Scope: span)."
        )
    for a in any_span:
        if _negative(a):
            notes.append(
                f"Negative operator: the condition is true when ANY span {span_phrase(a)}, so one such span is "
                "enough; it does not mean that no span has the value."
            )
    for a, _ in atoms:
        if isinstance(a, ir.HasRoot):
            continue
        # SEMANTICS.md 2.5: does-not-contain and not-in are true on a missing field; != only as a string compare.
        nil_true = isinstance(a, (ir.StringOp, ir.InList)) or (
            isinstance(a, ir.Compare) and a.value.kind is ir.LitKind.STRING and not a.untyped
        )
        if nil_true and _negative(a):
            where = "a root span" if a.field.root else "a span"
            notes.append(
                f"Missing field: `{_atom_text(a)}` is true for {where} without {field_label(a.field)} "
                '(Refinery reads a missing field as the text "<nil>").'
            )
        if isinstance(a, ir.Compare) and a.untyped:
            # SEMANTICS.md 2.6: without a Datatype Refinery compares native values, and types never mix
            notes.append(
                f"Untyped: `{_atom_text(a)}` compares without a Datatype, as Refinery does natively: a value of "
                'another type (the text "500" against the number 500) never matches, and a missing field never '
                "matches either."
            )
        if isinstance(a, ir.StringOp) and a.kind is ir.StrOpKind.MATCHES:
            notes.append("Regular expression: RE2 syntax, unanchored unless it starts with ^ or ends with $.")
        if a.field.root and isinstance(a, ir.Exists) and a.negated:
            notes.append(
                "Root span: Refinery treats a trace whose root has not arrived as lacking the field, so "
                f"`{_atom_text(a)}` is also true for root-less traces."
            )
    if len(clauses) > 1:
        notes.append(f"Or: becomes {len(clauses)} consecutive Refinery rules with the same action.")
    if isinstance(action, ir.SampleAction) and action.rate > 1:
        notes.append(
            f"sample({action.written}) keeps 1 in {action.rate:,} (Refinery SampleRate {action.rate}, a random "
            "draw per trace)."
        )
    if isinstance(action, (ir.DynamicAction, ir.ThroughputAction)):
        notes.append(
            "Stateful sampler: the rate adapts to traffic; the budget figures use its goal as an approximation."
        )
    if not clauses:
        notes.append("It is left out of the Refinery rules.")
    return list(dict.fromkeys(notes))


def _atom_text(a: ir.Atom) -> str:
    return format_expr(a)


def describe_rule(rule: ir.PolicyRule, first: bool) -> RuleText:
    """The rule as one English sentence plus notes. ``first``: no earlier rule can have decided the trace."""
    qual = describe_match(rule.match)
    if not normalize(rule.match):
        return RuleText(
            "Never applies: its match is false, so it decides no trace.", tuple(_notes(rule.match, rule.action, first))
        )
    if qual == "":
        every = "every trace" if first else "every remaining trace (those no earlier rule decided)"
        some = "all traces" if first else "the remaining traces (those no earlier rule decided)"
    else:
        every, some = "every trace " + qual, "the traces " + qual
    sentence = describe_action(rule.action, every, some) + "."
    return RuleText(sentence, tuple(_notes(rule.match, rule.action, first)))


__all__ = ["RuleText", "describe_action", "describe_match", "describe_rule", "field_label", "span_phrase"]
