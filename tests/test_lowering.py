"""Lowering the policy IR to Refinery rules: each choice, and a property test that it is exact.

The property test evaluates a match expression by its own meaning (``and``/``or``/``not``/``span(...)`` over a
trace, atoms true when ANY span satisfies them) and checks that the lowered Refinery rules, run by the reference
evaluator, match exactly the same traces, for every expression the lowering accepts.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nectar.engine.reference import EvalTrace, compile_condition, decide_trace, span_from_event
from nectar.errors import NectarError
from nectar.policy import ir, parse_expr, parse_policy
from nectar.policy.lower import lower_atom, lower_policy, lower_predicate
from nectar.refinery.model import Datatype, Operator, SamplerKind

README = (Path(__file__).parent / "data" / "policy" / "identity" / "readme.toon").read_text(encoding="utf-8")


def test_readme_policy_lowers_to_the_expected_rules() -> None:
    lowered = lower_policy(parse_policy(README))
    r = lowered.sampler.rules
    assert [x.name for x in r] == ["keep-errors#1", "keep-errors#2", "keep-slow", "sample-rest"]
    c = r[0].conditions[0]  # type: ignore[index]
    assert (c.fields, c.operator, c.value, c.datatype) == (("error",), Operator.EQ, True, Datatype.BOOL)
    c = r[1].conditions[0]  # type: ignore[index]
    assert c.fields == ("http.response.status_code", "http.status_code") and not c.single_field
    assert (c.operator, c.value, c.datatype) == (Operator.GE, 500, Datatype.INT)
    assert all(x.sample_rate == 1 and not x.drop for x in r[:2])
    c = r[2].conditions[0]  # type: ignore[index]
    assert (c.fields, c.operator, c.value, c.datatype) == (("duration_ms",), Operator.GT, 5000.0, Datatype.FLOAT)
    assert r[3].conditions is None and r[3].sample_rate == 100
    assert [o.policy_rule for o in lowered.origins] == ["keep-errors", "keep-errors", "keep-slow", "sample-rest"]
    assert set(lowered.rules_file(["production"]).samplers) == {"__default__", "production"}


def _atom(text: str) -> Any:
    return lower_atom(parse_expr(text).expr)  # type: ignore[arg-type]


def test_atom_lowering_choices() -> None:
    c = _atom('http.route ends_with "/a.b(c)"')
    assert (c.operator, c.value) == (Operator.MATCHES, r"/a\.b\(c\)$")
    c = _atom("span_count() > 50")
    assert (c.fields, c.single_field, c.datatype) == (("?.NUM_DESCENDANTS",), True, Datatype.INT)
    c = _atom("x in (1, 2.5)")
    assert (c.value, c.datatype) == ((1.0, 2.5), Datatype.FLOAT)
    c = _atom('x not in ("a", "b")')
    assert (c.operator, c.value, c.datatype) == (Operator.NOT_IN, ("a", "b"), Datatype.STRING)
    c = _atom('x == "500"')
    assert (c.value, c.datatype) == ("500", Datatype.STRING)
    c = _atom("error == true")
    assert (c.value, c.datatype) == (True, Datatype.BOOL)
    c = _atom("not has_root()")
    assert (c.fields, c.operator, c.value) == ((), Operator.HAS_ROOT_SPAN, False)
    c = _atom("root.duration >= 1.5s")
    assert (c.fields, c.value) == (("root.duration_ms",), 1500.0)
    c = _atom('x not contains "y"')
    assert c.operator is Operator.DOES_NOT_CONTAIN and c.datatype is None


def test_or_and_span_become_several_rules_with_the_same_action() -> None:
    policy = parse_policy(
        README.replace("error == true or http.status >= 500", '"http.status >= 500 or span(a == 1 and b == 2)"')
    )
    lowered = lower_policy(policy)
    names = [r.name for r in lowered.sampler.rules]
    assert names[:2] == ["keep-errors#1", "keep-errors#2"]
    assert lowered.sampler.rules[1].scope == "span" and lowered.sampler.rules[1].sample_rate == 1
    assert [(o.clause, o.count) for o in lowered.origins[:2]] == [(1, 2), (2, 2)]


def test_sampler_actions() -> None:
    text = README.replace("sample(0.01)", '"dynamic(rate=10, keys=(service.name, http.route))"')
    rule = lower_policy(parse_policy(text)).sampler.rules[-1]
    assert rule.sampler is not None and rule.sampler.kind == SamplerKind.EMA_DYNAMIC
    assert dict(rule.sampler.params) == {"GoalSampleRate": 10, "FieldList": ["service.name", "http.route"]}
    rule = lower_policy(parse_policy(README.replace("sample(0.01)", "drop"))).sampler.rules[-1]
    assert rule.drop and rule.sample_rate == 0


# ------------------------------------------------------------------------------------------- exactness

FIELDS = ["a", "b", "service.name", "root.a", "root.service.name"]
SPAN_FIELDS = ["a", "b", "service.name"]
scalars = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, 2.0, -1.5]),
    st.sampled_from(["1", "x", "api", "<nil>", ""]),
    st.booleans(),
    st.none(),
)


@st.composite
def traces(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 4))
    spans = []
    for i in range(n):
        span: dict[str, Any] = {"trace.trace_id": "t1", "trace.span_id": f"s{i}"}
        if i > 0 or draw(st.booleans()):  # the first span is a root, or the trace's root has not arrived
            span["trace.parent_id"] = "s0" if i else "elsewhere"
        for f in SPAN_FIELDS:
            if draw(st.booleans()):
                span[f] = draw(scalars)
        spans.append(span)
    return spans


lit = st.one_of(
    st.integers(-3, 3).map(str),
    st.sampled_from(["0.5", "1.0", "2.0"]),
    st.sampled_from(['"1"', '"x"', '"api"', '"<nil>"', '""']),
    st.sampled_from(["true", "false"]),
)


@st.composite
def atoms(draw: st.DrawFn) -> str:
    f = draw(st.sampled_from(FIELDS))
    k = draw(st.integers(0, 6))
    if k == 0:
        v = draw(lit)
        ops = ["==", "!="] if v in ("true", "false") or v.startswith('"') else ["==", "!=", ">", "<=", ">=", "<"]
        return f"{f} {draw(st.sampled_from(ops))} {v}"
    if k == 1:
        vals = draw(st.lists(st.sampled_from(['"1"', '"x"', '"api"']), min_size=1, max_size=2))
        return f"{f} {draw(st.sampled_from(['in', 'not in']))} ({', '.join(vals)})"
    if k == 2:
        op = draw(st.sampled_from(["contains", "not contains", "starts_with", "ends_with"]))
        return f'{f} {op} "{draw(st.sampled_from(["a", "x", "1", "nil", ""]))}"'
    if k == 3:
        return f"{draw(st.sampled_from(['', 'not ']))}exists({f})"
    if k == 4:
        return f"span_count() {draw(st.sampled_from(['>', '<=', '==']))} {draw(st.integers(0, 4))}"
    if k == 5:
        return draw(st.sampled_from(["has_root()", "not has_root()", "true", "false"]))
    return f'{f} matches "{draw(st.sampled_from(["^a", "p", "[0-9]", "^$"]))}"'


exprs = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        inner.map(lambda e: f"not ({e})"),
        inner.map(lambda e: f"span({e})"),
    ),
    max_leaves=5,
)


def holds(expr: ir.Expr, trace: EvalTrace, span: Any = None) -> bool:
    """What the expression means, evaluated directly (the oracle)."""
    match expr:
        case ir.Const(value=v):
            return v
        case ir.And(items=items):
            return all(holds(i, trace, span) for i in items)
        case ir.Or(items=items):
            return any(holds(i, trace, span) for i in items)
        case ir.Not(item=item):
            return not holds(item, trace, span)
        case ir.SpanGroup(item=item):
            if span is not None:
                return holds(item, trace, span)
            return any(holds(item, trace, s) for s in trace.spans)
        case ir.HasRoot(negated=neg):
            return (trace.root is not None) != neg
        case _:
            cond = compile_condition(lower_atom(expr), False)  # type: ignore[arg-type]
            if span is not None:
                return cond.holds_on(trace, span)
            return any(cond.holds_on(trace, s) for s in trace.spans)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(exprs, st.lists(traces(), min_size=1, max_size=4))
def test_lowering_is_exact(text: str, trace_list: list[list[dict[str, Any]]]) -> None:
    expr = parse_expr(text).expr
    try:
        predicate = lower_predicate(expr)
    except NectarError:
        assume(False)  # refused: nothing is compiled, so nothing can be wrong
        return
    for events in trace_list:
        trace = EvalTrace("t1", [span_from_event(e) for e in events])
        expected = holds(expr, trace)
        decision = decide_trace(predicate, "t1", events)
        assert (decision.keep.value == "true") == expected, (text, events, decision)


def test_identifier_alphabet_is_not_special() -> None:
    # Guard for the strategies above: every generated field is a plain dotted name.
    assert all(set(f) <= set(string.ascii_letters + ".") for f in FIELDS)
