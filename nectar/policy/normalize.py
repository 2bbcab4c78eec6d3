"""From a match expression to Refinery's shape: a list of rules (clauses), each an AND of conditions in one scope.

Refinery has no OR and no NOT inside a rule, so (SEMANTICS.md 2.2-2.3):

* ``or`` becomes consecutive rules with the same action (first match wins, so this is exact);
* ``and`` joins the conditions of one rule; in trace scope each condition is true when ANY span satisfies it;
* ``span(...)`` asks for all its conditions on one span: Refinery's ``Scope: span``;
* ``not`` is pushed down to the atoms (De Morgan) and replaced by the complementary operator **only where that is
  exact**: on one span (inside ``span(...)``, or for a ``root.`` field, which reads only the root span), the
  operators ``exists``/``not-exists``, ``in``/``not-in`` and ``contains``/``does-not-contain`` are exact
  complements, and ``span_count()`` comparisons and ``has_root()`` are properties of the whole trace. Anything
  else (``not`` over a comparison, ``starts_with``, ``matches``; ``not`` over a trace-scope atom, which would
  mean "no span", not "some span") is refused with an explanation and the exact alternative.

Nothing is ever silently weakened: every clause returned is exactly one Refinery rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from nectar.errors import NectarError, Span
from nectar.policy import ir

MAX_CLAUSES = 64


@dataclass(frozen=True, slots=True)
class Clause:
    """One Refinery rule's conditions: ``scope`` is ``trace`` or ``span``; no atoms means "every trace"."""

    scope: str
    atoms: tuple[ir.Atom, ...]
    span: Span | None = None


# A term of the disjunctive normal form: trace-level atoms, and span groups (each a tuple of atoms on one span).
@dataclass(frozen=True, slots=True)
class _Term:
    atoms: tuple[ir.Atom, ...] = ()
    groups: tuple[tuple[ir.Atom, ...], ...] = ()


def _trace_invariant(atom: ir.Atom) -> bool:
    """Atoms that give the same answer whichever span is visited (so they can join a span-scope rule)."""
    if isinstance(atom, ir.HasRoot):
        return False  # Refinery: has-root-span in a span-scope rule never matches
    f = atom.field
    return f.root or f.kind is ir.FieldKind.SPAN_COUNT


def _single_span(atom: ir.Atom) -> bool:
    return isinstance(atom, ir.HasRoot) or atom.field.root or atom.field.kind is ir.FieldKind.SPAN_COUNT


def negate_atom(atom: ir.Atom, on_one_span: bool, span: Span | None) -> ir.Atom:
    """The exact complement of ``atom``, or a :class:`NectarError` saying why there is none."""
    if isinstance(atom, ir.HasRoot):
        return ir.HasRoot(not atom.negated, atom.span)
    if isinstance(atom, ir.Compare) and atom.field.kind is ir.FieldKind.SPAN_COUNT:
        return ir.Compare(atom.field, atom.op.negated(), atom.value, atom.span, atom.untyped)
    where = span or atom.span
    if not (on_one_span or _single_span(atom)):
        raise NectarError(
            "`not` over a condition has no exact Refinery form here: Refinery tests each condition against ANY "
            "span of the trace, so it can say 'some span does not ...' but not 'no span ...'",
            where,
            "to exclude traces, put a rule that matches them first with the other action (e.g. a `drop` rule "
            "above the `keep` rule); or write the negative operator yourself (!=, not in, not contains, "
            "not exists(...)), which is true when ANY span satisfies it",
        )
    match atom:
        case ir.Exists():
            return ir.Exists(atom.field, not atom.negated, atom.span)
        case ir.InList():
            return ir.InList(atom.field, atom.values, not atom.negated, atom.span)
        case ir.StringOp(kind=ir.StrOpKind.CONTAINS):
            return ir.StringOp(atom.field, atom.kind, atom.pattern, not atom.negated, atom.span)
        case ir.StringOp():
            raise NectarError(
                f"`not ... {atom.kind.value}` has no Refinery operator (Refinery has only does-not-contain)",
                where,
                "match the traces you want to exclude in an earlier rule with the other action",
            )
        case ir.Compare():
            raise NectarError(
                f"`not` over `{atom.op.value}` is not exact in Refinery: a missing field or a value of another type "
                f"makes both `{atom.op.value}` and `{atom.op.negated().value}` false",
                where,
                f"write `{atom.op.negated().value}` directly if a missing field should not match, or match the "
                "excluded traces first in an earlier rule with the other action",
            )
    raise AssertionError(atom)  # pragma: no cover


def _dnf(expr: ir.Expr, negate: bool, in_span: bool) -> list[_Term]:
    """Disjunctive normal form with `not` pushed to exact atoms. [] means false; [_Term()] means true."""
    match expr:
        case ir.Const(value=v):
            return [_Term()] if v != negate else []
        case ir.Not(item=item):
            return _dnf(item, not negate, in_span)
        case ir.And(items=items) | ir.Or(items=items):
            is_and = isinstance(expr, ir.And) != negate
            parts = [_dnf(i, negate, in_span) for i in items]
            if not is_and:
                return [t for p in parts for t in p]
            out: list[_Term] = []
            for combo in product(*parts):
                out.append(_Term(tuple(a for t in combo for a in t.atoms), tuple(g for t in combo for g in t.groups)))
                if len(out) > MAX_CLAUSES * 4:
                    raise NectarError(
                        f"the expression expands to more than {MAX_CLAUSES} Refinery rules",
                        expr.span,
                        "split it into several policy rules",
                    )
            return out
        case ir.SpanGroup(item=item):
            if negate:
                raise NectarError(
                    "`not span(...)` would mean 'no span has all of these', which Refinery cannot express",
                    expr.span,
                    "match those traces first in an earlier rule with the other action",
                )
            inner = _dnf(item, False, True)
            return [_Term((), (t.atoms + tuple(a for g in t.groups for a in g),)) for t in inner]
        case _:
            atom: ir.Atom = expr  # type: ignore[assignment]
            if negate:
                atom = negate_atom(atom, in_span, expr.span)
            return [_Term((atom,))]


def _clause(term: _Term, span: Span | None) -> Clause:
    atoms = list(term.atoms)
    groups = [g for g in term.groups if g]
    # A group of one atom on one span is the same as that atom in trace scope (ANY span satisfying it).
    singles = [g[0] for g in groups if len(g) == 1]
    multi = [g for g in groups if len(g) > 1]
    if not multi:
        return Clause("trace", tuple(atoms + singles), span)
    if len(multi) > 1:
        raise NectarError(
            "two span(...) groups in one rule: Refinery's span scope asks for ONE span with all the conditions",
            span,
            "merge them into one span(...), or write two rules",
        )
    others = atoms + singles
    bad = [a for a in others if not _trace_invariant(a)]
    if bad:
        b = bad[0]
        if isinstance(b, ir.HasRoot):
            raise NectarError(
                "has_root() cannot join a span(...) group: Refinery never matches has-root-span in span scope",
                b.span or span,
                "use a root.<field> condition (it reads the root span), or put has_root() in a separate rule",
            )
        raise NectarError(
            "a span(...) group cannot be combined with trace-wide conditions in one rule: Refinery evaluates a rule "
            "either across the trace or on one span",
            b.span or span,
            "move the condition inside span(...), write it on the root (root.<field>), or use two rules",
        )
    for a in multi[0]:
        if isinstance(a, ir.HasRoot):
            raise NectarError(
                "has_root() inside span(...) never matches in Refinery (has-root-span is trace-scope only)",
                a.span or span,
                "move has_root() out of span(...) into its own rule",
            )
    return Clause("span", tuple(multi[0]) + tuple(others), span)


def normalize(expr: ir.Expr) -> list[Clause]:
    """The Refinery rules (as clauses) that together match exactly what ``expr`` matches, in order.

    An empty list means the expression never matches. Raises :class:`NectarError` when there is no exact form.
    """
    terms = _dnf(expr, False, False)
    clauses: list[Clause] = []
    seen: set[tuple[str, tuple[ir.Atom, ...]]] = set()
    for t in terms:
        c = _clause(t, expr.span)
        key = (c.scope, c.atoms)
        if key in seen:
            continue
        seen.add(key)
        clauses.append(c)
        if not c.atoms:
            break  # a catch-all: later clauses can never decide
    if len(clauses) > MAX_CLAUSES:
        raise NectarError(
            f"the expression expands to {len(clauses)} Refinery rules (at most {MAX_CLAUSES})",
            expr.span,
            "split it into several policy rules",
        )
    return clauses
