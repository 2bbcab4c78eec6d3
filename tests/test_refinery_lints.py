"""Lints: one data-driven case per code (rules snippet -> expected codes), plus the example file."""

from __future__ import annotations

import textwrap

import pytest

from nectar.refinery.lints import lint_rules
from nectar.refinery.loader import load_rules_with_positions
from tests.conftest import shared_path

KEEP = "SampleRate: 1"


def _file(default_sampler: str) -> str:
    body = textwrap.indent(textwrap.dedent(default_sampler).strip("\n"), "    ")
    return f"RulesVersion: 2\nSamplers:\n  __default__:\n{body}\n"


def _rules(rules: str) -> str:
    body = textwrap.indent(textwrap.dedent(rules).strip("\n"), "    ")
    return _file(f"RulesBasedSampler:\n  Rules:\n{body}")


def _cond(cond: str, rule_extra: str = KEEP) -> str:
    cond_text = textwrap.indent(textwrap.dedent(cond).strip("\n"), "      ")
    cond_text = "    - " + cond_text.lstrip()
    return _rules(f"- Name: r\n  {rule_extra}\n  Conditions:\n{cond_text}")


CASES = [
    ("R001", _cond("Field: x\nValue: 1")),
    ("R002", _cond("Field: x\nOperator: contains")),
    ("R003", _cond("Field: x\nOperator: matches\nValue: '[a-z+'")),
    ("R003", _cond("Field: x\nOperator: matches\nValue: '(?=a)b'")),  # look-ahead: not RE2
    ("R004", _cond("Field: x\nOperator: '='\nValue: abc\nDatatype: int")),
    ("R004", _cond("Field: x\nOperator: '='\nValue: maybe\nDatatype: bool")),
    ("R005", _cond("Field: x\nOperator: in\nValue: [true]\nDatatype: bool")),
    ("R005", _cond("Field: x\nOperator: not-in\nValue: true")),
    ("R006", _cond("Operator: has-root-span\nValue: true", "SampleRate: 1\n  Scope: span")),
    ("R007", _cond("Field: x\nOperator: exists", "Scope: trace")),
    ("R008", _cond("Field: x\nOperator: exists", "SampleRate: -5")),
    ("R009", _file("DeterministicSampler:\n  SampleRate: 0")),
    ("R010", _file("DeterministicSampler:\n  SampleRate: 1\nRulesBasedSampler: {}")),
    ("R011", _cond("Field: x\nOperator: '='\nValue: yes\nDatatype: bool")),
    ("R012", _cond("Field: trace.parent_id\nOperator: exists")),
    ("R012", _cond("Fields: [a, root.traceId]\nOperator: exists")),
    ("R013", _cond("Field: meta.span_count\nOperator: '>'\nValue: 10\nDatatype: int")),
    ("R014", _cond("Field: root.http.route\nOperator: not-exists")),
    ("R015", _rules(f"- Name: all\n  {KEEP}\n- Name: never\n  {KEEP}\n  Conditions:\n    - Field: x\n"
                    "      Operator: exists")),
    ("R017", _cond("Fields: ['?.NUM_DESCENDANTS']\nOperator: '>'\nValue: 5\nDatatype: int")),
    ("R017", _cond("Field: '?.SPAN_COUNT'\nOperator: exists")),
    ("R018", _cond("Field: http.route\nOperator: does-not-contain\nValue: /health")),
    ("R021", _cond("Field: x\nOperator: exists\nDatatype: int")),
    ("R022", _cond("Field: http.status_code\nOperator: '='\nValue: 500")),
    ("R020", _file("Rules:\n  Name: x")),
]  # fmt: skip


@pytest.mark.parametrize(("code", "text"), CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)])
def test_each_code_fires(code: str, text: str) -> None:
    rf, pos = load_rules_with_positions(text, "lint.yaml")
    lints = lint_rules(rf, pos)
    found = [lint for lint in lints if lint.code == code]
    assert found, f"{code} not in {[lint.code for lint in lints]}"
    lint = found[0]
    assert lint.sampler == "__default__" and lint.message
    assert lint.span is not None and lint.span.file == "lint.yaml"
    assert lint.as_dict()["code"] == code


def test_runtime_only_codes() -> None:
    """R016 (invalid scope) and R019 (downstream DeterministicSampler) need files the validator rejects."""
    text = _rules(f"- Name: a\n  {KEEP}\n  Scope: spans")
    rf, pos = load_rules_with_positions(text, "lint.yaml", validate=False)
    assert [lint.code for lint in lint_rules(rf, pos)] == ["R016"]
    text = _rules("- Name: d\n  Sampler:\n    DeterministicSampler: {SampleRate: 0}")
    rf, pos = load_rules_with_positions(text, "lint.yaml", accept_downstream_deterministic=True)
    assert sorted(lint.code for lint in lint_rules(rf, pos)) == ["R009", "R019"]
    text = _rules(
        "- Name: two\n  Sampler:\n    EMADynamicSampler: {GoalSampleRate: 2, FieldList: [a]}\n"
        "    DynamicSampler: {SampleRate: 2, FieldList: [a]}"
    )
    rf, pos = load_rules_with_positions(text, "lint.yaml")
    lints = lint_rules(rf, pos)
    assert [lint.code for lint in lints] == ["R010"] and "DynamicSampler runs" in lints[0].message


@pytest.mark.parametrize(
    "text",
    [
        # has-root-span guard: root.X not-exists is intended
        _rules(
            f"- Name: g\n  {KEEP}\n  Conditions:\n    - Operator: has-root-span\n      Value: true\n"
            "    - Field: root.db.statement\n      Operator: not-exists"
        ),
        # negative operator in span scope is fine
        _cond("Field: http.route\nOperator: '!='\nValue: /x\nDatatype: string", "SampleRate: 1\n  Scope: span"),
        # Drop without SampleRate is explicit
        _cond("Field: x\nOperator: exists", "Drop: true"),
        # a typed comparison
        _cond("Field: http.status_code\nOperator: '>='\nValue: 500\nDatatype: int"),
        _file("DeterministicSampler:\n  SampleRate: 10"),
    ],
)
def test_clean_rules_have_no_lints(text: str) -> None:
    rf, pos = load_rules_with_positions(text, "clean.yaml")
    assert lint_rules(rf, pos) == []


def test_lint_positions_point_at_the_key() -> None:
    text = _cond("Field: x\nOperator: matches\nValue: '[a-z+'")
    rf, pos = load_rules_with_positions(text, "p.yaml")
    (lint,) = [x for x in lint_rules(rf, pos) if x.code == "R003"]
    assert lint.span is not None
    assert text.splitlines()[lint.span.line - 1].strip().startswith("Value:")
    assert (lint.rule_index, lint.rule_name, lint.condition_index) == (0, "r", 0)


def test_example_rules_lint_clean() -> None:
    """The shared example follows every convention SEMANTICS.md recommends: no lint fires."""
    rf, pos = load_rules_with_positions(shared_path("refinery", "example_rules.yaml"))
    assert [lint.code for lint in lint_rules(rf, pos)] == []
