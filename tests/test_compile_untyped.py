"""untyped(field op value): the policy form of Refinery's native (Datatype-less) comparison, added so that imported
rules stay exact. Parse, canonical format, lowering without a Datatype, what it refuses, and that it means what
Refinery does (replayed against the same condition written by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nectar.corpus.layout import Corpus
from nectar.engine.api import evaluate
from nectar.errors import NectarError
from nectar.policy.expr import parse_expr
from nectar.policy.format import format_expr
from nectar.policy.lower import lower_atom, lower_predicate
from nectar.policy.normalize import normalize
from nectar.refinery.model import Condition, Datatype, Operator, Rule, RulesBasedSampler

BUNDLED = Path(__file__).resolve().parent.parent / "corpus"

CASES = [
    ("untyped(http.status_code >= 500)", Condition(("http.status_code",), Operator.GE, 500, None)),
    ("untyped(http.status_code = 500.0)", Condition(("http.status_code",), Operator.EQ, 500.0, None)),
    ('untyped(http.status_code != "200")', Condition(("http.status_code",), Operator.NE, "200", None)),
    ("untyped(error > false)", Condition(("error",), Operator.GT, False, None)),
    ('untyped(root.name < "b")', Condition(("root.name",), Operator.LT, "b", None)),
    ("untyped(duration > 1s)", Condition(("duration_ms",), Operator.GT, 1000.0, None)),
    (
        "untyped(http.status == 404)",
        Condition(("http.response.status_code", "http.status_code"), Operator.EQ, 404, None, False),
    ),
]


@pytest.mark.parametrize(("text", "condition"), CASES)
def test_untyped_lowers_without_datatype(text: str, condition: Condition) -> None:
    expr = parse_expr(text).expr
    canonical = format_expr(expr)
    assert parse_expr(canonical).expr == expr
    assert canonical.startswith("untyped(")
    (clause,) = normalize(expr)
    assert lower_atom(clause.atoms[0]) == condition


def test_typed_and_untyped_differ() -> None:
    typed = lower_atom(parse_expr("http.status_code >= 500").expr)  # type: ignore[arg-type]
    assert typed.datatype is Datatype.INT
    assert parse_expr("http.status_code >= 500").expr != parse_expr("untyped(http.status_code >= 500)").expr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("untyped(span_count() > 3)", "span_count() is always a whole number"),
        ('untyped(name in ("a"))', "untyped(...) takes one comparison"),
        ("untyped(exists(a))", "untyped(...) takes one comparison"),
        ("not untyped(a > 1)", "`not` over a condition has no exact Refinery form"),
    ],
)
def test_untyped_refusals(text: str, message: str) -> None:
    with pytest.raises(NectarError) as info:
        normalize(parse_expr(text).expr)
    assert message in info.value.message


def test_untyped_means_refinery_native_comparison() -> None:
    """On the bundled corpus, untyped(...) decides exactly like the hand-written Datatype-less condition."""
    corpus = Corpus.open(BUNDLED)
    for text, cond in CASES:
        mine = evaluate(lower_predicate(parse_expr(text).expr), corpus).decisions
        hand = RulesBasedSampler((Rule("match#1", (cond,), sample_rate=1), Rule("match:no", drop=True)))
        assert mine.equals(evaluate(hand, corpus).decisions), text
    # and it is not the typed comparison: a float status never equals the int 500 without a Datatype
    typed = evaluate(lower_predicate(parse_expr("http.status_code == 500").expr), corpus).decisions
    untyped = evaluate(lower_predicate(parse_expr('untyped(http.status_code == "500")').expr), corpus).decisions
    assert (typed["keep"] == "true").sum() > 0 and (untyped["keep"] == "true").sum() == 0
