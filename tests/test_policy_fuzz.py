"""Property tests: the readers never fail with anything but NectarError, and formatting round-trips."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nectar.errors import NectarError
from nectar.policy import format_expr, format_policy, parse_expr, parse_policy
from nectar.policy.format import Spelling
from nectar.policy.toon import parse_toon

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

README = (Path(__file__).parent / "data" / "policy" / "identity" / "readme.toon").read_text(encoding="utf-8")

# ---------------------------------------------------------------------------------- generated expressions

names = st.sampled_from(["a", "b.c", "service.name", "http.route", "root.http.route", "k8s.namespace.name"])
text_values = st.text(alphabet=string.ascii_letters + string.digits + ' /."\\-_:,()', max_size=8)
strings = text_values.map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
ints = st.integers(-1000, 100000).map(str)
floats = st.floats(0, 1e6, allow_nan=False).map(lambda f: repr(round(f, 3)))
values = st.one_of(strings, ints, floats, st.sampled_from(["true", "false"]))


@st.composite
def atoms(draw: st.DrawFn) -> str:
    field = draw(names)
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return f"{field} {draw(st.sampled_from(['==', '!=']))} {draw(values)}"
    if kind == 1:
        return f"{field} {draw(st.sampled_from(['>', '>=', '<', '<=']))} {draw(st.one_of(ints, floats))}"
    if kind == 2:
        vals = draw(st.lists(strings, min_size=1, max_size=3))
        return f"{field} {draw(st.sampled_from(['in', 'not in']))} ({', '.join(vals)})"
    if kind == 3:
        op = draw(st.sampled_from(["contains", "not contains", "starts_with", "ends_with"]))
        return f"{field} {op} {draw(strings)}"
    if kind == 4:
        return f"{draw(st.sampled_from(['', 'not ']))}exists({field})"
    if kind == 5:
        op = draw(st.sampled_from([">", "<="]))
        unit = draw(st.sampled_from(["ms", "s", "m", "h"]))
        return f"duration {op} {draw(st.integers(0, 999))}{unit}"
    if kind == 6:
        return f"span_count() {draw(st.sampled_from(['>', '==']))} {draw(st.integers(0, 500))}"
    if kind == 7:
        return draw(st.sampled_from(["has_root()", "not has_root()", "true", "false"]))
    if kind == 8:
        return f'{field} matches "{draw(st.sampled_from(["^/api/", "a+b", "[0-9]{3}$", "x|y"]))}"'
    return (
        f"`{draw(st.text(alphabet=string.ascii_letters + ' `', min_size=1, max_size=6)).replace('`', '') or 'q'}` == 1"
    )


expressions = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        inner.map(lambda e: f"not ({e})"),
        inner.map(lambda e: f"span({e})"),
    ),
    max_leaves=6,
)


@SETTINGS
@given(expressions)
def test_generated_expressions_round_trip(text: str) -> None:
    parsed = parse_expr(text).expr
    canonical = format_expr(parsed)
    again = format_expr(parse_expr(canonical).expr)
    assert again == canonical


# ---------------------------------------------------------------------------------- arbitrary text

grammar_soup = st.lists(
    st.sampled_from(
        [
            "a",
            "b.c",
            "==",
            "=",
            "!=",
            ">",
            ">=",
            "=>",
            "<",
            "in",
            "not",
            "and",
            "or",
            "(",
            ")",
            ",",
            '"x"',
            '"',
            "5s",
            "5sec",
            "1e3",
            "-",
            "exists",
            "span",
            "span_count",
            "has_root",
            "contains",
            "matches",
            "`q`",
            "`",
            "true",
            "false",
            "root.",
            "\\",
            "'",
            "&&",
            "!",
        ]
    ),
    max_size=12,
).map(" ".join)


@SETTINGS
@given(st.one_of(st.text(max_size=40), grammar_soup))
def test_expression_parser_only_raises_nectar_errors(text: str) -> None:
    try:
        parse_expr(text)
    except NectarError as exc:
        assert exc.span is not None
        exc.render()


@SETTINGS
@given(st.text(max_size=200))
def test_toon_reader_only_raises_nectar_errors(text: str) -> None:
    try:
        parse_toon(text, "f.toon")
    except NectarError as exc:
        exc.render()


@SETTINGS
@given(st.data())
def test_mutated_policies_only_raise_nectar_errors(data: st.DataObject) -> None:
    text = README
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        op = data.draw(st.integers(0, 2))
        if op == 0:
            text = text[:pos] + text[pos + 1 :]
        elif op == 1:
            text = text[:pos] + data.draw(st.sampled_from(list(',"\\:{}[]() \n\t-#=>x1'))) + text[pos:]
        else:
            text = text[:pos] + text[pos:].replace(",", "", 1)
    try:
        policy = parse_policy(text, "p.toon")
    except NectarError as exc:
        assert exc.render()
        return
    # Whatever parses must format and read back to the same policy.
    assert parse_policy(format_policy(policy)) == policy


# ---------------------------------------------------------------------------------- generated policies

rule_names = st.text(alphabet=string.ascii_letters + string.digits + '-_ ,:"', min_size=1, max_size=12).filter(
    lambda s: s.strip() == s and s.strip()
)


@st.composite
def policies(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 4))
    names_ = draw(st.lists(rule_names, min_size=n, max_size=n, unique=True))
    rules = []
    for name in names_:
        match = draw(expressions)
        action = draw(
            st.sampled_from(
                [
                    "keep",
                    "drop",
                    "sample(0.1)",
                    "sample(1/20)",
                    "deterministic(rate=5)",
                    "dynamic(rate=10, keys=(service.name))",
                ]
            )
        )
        desc = draw(st.one_of(st.just(""), rule_names))
        rules.append((name, desc, match, action, draw(st.integers(-5, 200))))

    def cell(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    rows = "\n".join(f"    {cell(n)},{cell(d)},{cell(m)},{cell(a)},{p}" for n, d, m, a, p in rules)
    budget = draw(st.one_of(st.none(), st.integers(1, 10**6)))
    head = "nectar_policy:\n  version: 1\n  name: " + cell(draw(rule_names)) + "\n"
    if budget is not None:
        head += f"  budget_per_second: {budget}\n"
    return head + f"  rules[{n}]{{name,description,match,action,priority}}:\n{rows}\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_generated_policies_round_trip_in_both_spellings(text: str) -> None:
    policy = parse_policy(text)
    for spelling in Spelling:
        out = format_policy(policy, spelling)
        assert parse_policy(out) == policy
        assert format_policy(parse_policy(out), spelling) == out
