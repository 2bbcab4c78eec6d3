"""Plain-English rule descriptions: a data file of expression/description pairs, the action sentences, the notes
on Refinery's traps, and (hypothesis) a description for every expression the lowering accepts.

Regenerate ``tests/golden/explain/english.txt`` with ``NECTAR_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nectar.config import Config
from nectar.errors import NectarError
from nectar.explain.english import describe_match, describe_rule
from nectar.policy import ir
from nectar.policy.expr import parse_expr, standalone_origin
from nectar.policy.normalize import normalize
from tests.conftest import update_golden

DATA = Path(__file__).resolve().parent / "golden" / "explain" / "english.txt"
ALIASES = Config().aliases


def expr(text: str) -> ir.Expr:
    return parse_expr(text, standalone_origin(text, "<test>"), ALIASES).expr


def _pairs() -> list[tuple[str, str]]:
    out = []
    for block in DATA.read_text(encoding="utf-8").split("\n\n"):
        source, _, described = block.strip("\n").partition("\n=> ")
        out.append((source, described.rstrip("\n") if described else ""))
    return out


@pytest.mark.parametrize(("source", "described"), _pairs(), ids=[p[0] for p in _pairs()])
def test_description(source: str, described: str) -> None:
    assert describe_match(expr(source)) == described


def test_data_file_is_current() -> None:
    text = "\n".join(f"{s}\n=> {describe_match(expr(s))}\n" for s, _ in _pairs())
    if update_golden():
        DATA.write_text(text, encoding="utf-8")
    assert text == DATA.read_text(encoding="utf-8")


def rule(match: str, action: ir.Action) -> ir.PolicyRule:
    return ir.PolicyRule("r", expr(match), match, action, "")


@pytest.mark.parametrize(
    ("match", "action", "first", "sentence"),
    [
        ("http.status >= 500", ir.KeepAction(), True, "Keeps every trace in which any span has an HTTP status"),
        ("true", ir.DropAction(), True, "Drops every trace."),
        ("true", ir.SampleAction(100, "0.01"), False, "Keeps 1 in 100, at random, of the remaining traces"),
        ("true", ir.SampleAction(1, "1"), True, "Keeps every trace."),
        ("error == true", ir.SampleAction(10, "0.1"), True, "Keeps 1 in 10, at random, of the traces in which any"),
        ("true", ir.DynamicAction(20, ("service.name", "http.route")), False, "about 1 in 20 overall, per combin"),
        ("true", ir.ThroughputAction(50, ("service.name",)), False, "aiming at 50 kept per second"),
        ("true", ir.DeterministicAction(4), True, "Keeps 1 in 4 of all traces, chosen by a hash of the trace id"),
    ],
)
def test_action_sentences(match: str, action: ir.Action, first: bool, sentence: str) -> None:
    text = describe_rule(rule(match, action), first).sentence
    assert text.startswith(sentence) or sentence in text
    assert text.endswith(".")


@pytest.mark.parametrize(
    ("match", "note"),
    [
        ('service.name == "api" and error == true', "Any span: each condition may be met by a different span"),
        ("http.status != 200", "Negative operator: the condition is true when ANY span has an HTTP status"),
        ('name not contains "ping"', "is true for a span without name (Refinery reads a missing field as the text"),
        ('http.route not in ("/a", "/b")', '`http.route not in ("/a", "/b")` is true for a span without'),
        ("not exists(root.db.system)", "also true for root-less traces"),
        ('http.route matches "^/x"', "RE2 syntax, unanchored"),
        ("error == true or http.status >= 500", "Or: becomes 2 consecutive Refinery rules"),
        ("false", "left out of the Refinery rules"),
        ("untyped(http.status_code >= 500)", "Untyped: `untyped(http.status_code >= 500)` compares without a Datatype"),
    ],
)
def test_notes(match: str, note: str) -> None:
    notes = describe_rule(rule(match, ir.KeepAction()), True).notes
    assert any(note in n for n in notes), notes


@pytest.mark.parametrize(
    "match",
    [
        'span(service.name == "api" and error == true)',
        "http.status >= 500",
        "http.status != 200",
        "span_count() != 3",
        'untyped(service.name != "web")',
    ],
)
def test_no_missing_field_note_where_refinery_reads_none(match: str) -> None:
    # span groups need one span with both; numeric != is false on a missing field (SEMANTICS.md 2.5)
    notes = describe_rule(rule(match, ir.KeepAction()), True).notes
    assert not any(n.startswith("Any span") or n.startswith("Missing field") for n in notes), notes


ATOMS = [
    "http.status >= 500",
    'service.name == "api"',
    "error == true",
    'name contains "GET"',
    'name not contains "ping"',
    'http.route starts_with "/api"',
    'http.route ends_with ".json"',
    'http.route matches "^/v[0-9]"',
    'http.route in ("/a", "/b")',
    "http.status not in (200, 204)",
    "exists(db.system)",
    "not exists(db.statement)",
    "span_count() > 10",
    "has_root()",
    'root.http.route == "/checkout"',
    "root.duration > 2s",
    "duration <= 100ms",
    "`odd field` != 3",
    'untyped(service.name != "web")',
]


def _exprs() -> st.SearchStrategy[str]:
    atom = st.sampled_from(ATOMS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        pair = st.tuples(inner, inner)
        return st.one_of(
            pair.map(lambda p: f"({p[0]}) and ({p[1]})"),
            pair.map(lambda p: f"({p[0]}) or ({p[1]})"),
            inner.map(lambda e: f"not ({e})"),
            inner.map(lambda e: f"span({e})"),
        )

    return st.recursive(atom, extend, max_leaves=4)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # the recursive strategy's long repr
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_exprs(), st.booleans())
def test_every_lowerable_expression_is_described(text: str, first: bool) -> None:
    try:
        e = expr(text)
        normalize(e)
    except NectarError:
        assume(False)
        return
    r = ir.PolicyRule("r", e, text, ir.KeepAction(), "")
    a, b = describe_rule(r, first), describe_rule(r, first)
    assert a == b  # deterministic
    assert a.sentence.startswith("Keeps every ") and a.sentence.endswith(".")
    assert "None" not in a.sentence and "  " not in a.sentence
