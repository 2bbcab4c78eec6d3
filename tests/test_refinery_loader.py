"""Rules loader: yaml.v3 scalar typing, Refinery v3.2.2 validation messages, positions, and the IR it builds."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nectar.errors import ErrorGroup, NectarError
from nectar.refinery.loader import closest_names, load_rules, load_rules_with_positions, validate_rules
from nectar.refinery.model import Datatype, Operator, RulesBasedSampler, Sampler, SamplerKind
from nectar.refinery.yamlv3 import GoTime, YList, YMap, loads, resolve_plain
from tests.conftest import shared_path
from tests.vectors import vector_params

# ---------------------------------------------------------------------------------------------------------------
# yaml.v3 typing (SEMANTICS.md 1.7)

PLAIN = [
    ("500", 500),
    ("-5", -5),
    ("+5", 5),
    ("017", 15),
    ("0o17", 15),
    ("0x1F", 31),
    ("0b101", 5),
    ("1_000", 1000),
    ("08", 8.0),  # not octal: ParseInt fails, YAML-style float accepts it
    ("9999999999999999999", 9999999999999999999),  # uint64
    ("99999999999999999999", 1e20),
    ("-9999999999999999999", -9999999999999999999.0),
    ("5.0", 5.0),
    ("1e6", 1e6),
    (".5", 0.5),
    ("-.5", -0.5),
    ("1.", 1.0),
    (".inf", math.inf),
    ("-.Inf", -math.inf),
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("n", "n"),
    ("tRUE", "tRUE"),
    ("~", None),
    ("null", None),
    ("Null", None),
    ("", None),
    ("12:30", "12:30"),
    ("0x1p3", "0x1p3"),
    ("1e", "1e"),
    ("inf", "inf"),
    ("nan", "nan"),
    ("2026-13-01", "2026-13-01"),
    ("kube-probe/", "kube-probe/"),
]


@pytest.mark.parametrize(("text", "want"), PLAIN)
def test_plain_scalars_like_yaml_v3(text: str, want: Any) -> None:
    got = resolve_plain(text)
    assert type(got) is type(want) and got == want


def test_nan_and_timestamps() -> None:
    assert math.isnan(resolve_plain(".nan"))
    ts = resolve_plain("2026-01-01")
    assert isinstance(ts, GoTime) and str(ts) == "2026-01-01 00:00:00 +0000 UTC"
    assert isinstance(resolve_plain("2026-1-2T10:20:30Z"), GoTime)
    assert isinstance(resolve_plain("2026-01-02 10:20:30.5"), GoTime)


def test_quoted_and_tagged_scalars() -> None:
    doc = loads("a: '500'\nb: \"true\"\nc: !!str 5\nd: !!float 5\ne: |\n  yes\nf: [1, '1', 1.0]\n")
    assert doc == {"a": "500", "b": "true", "c": "5", "d": 5.0, "e": "yes\n", "f": [1, "1", 1.0]}
    assert isinstance(doc, YMap) and isinstance(doc["f"], YList)
    assert doc.key_pos["c"].line == 3 and doc.key_pos["c"].column == 1


def test_merge_keys_and_anchors() -> None:
    doc = loads("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n")
    assert doc["use"] == {"x": 1, "y": 3}


def test_non_string_keys_are_not_a_string_map() -> None:
    doc = loads("1: a\n")
    assert isinstance(doc, YMap) and doc.string_keys is False


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a: [1, 2\n", 2, "YAML syntax error"),
        ("a: 1\na: 2\n", 2, 'mapping key "a" already defined at line 1'),
        ("a: b: c\n", 1, "YAML syntax error"),
        ("a: &x [*x]\n", 1, "contains itself"),
        ("key: @value\n", 1, "YAML syntax error"),  # issue #1819's unquoted '@'
    ],
)
def test_yaml_errors_are_positioned(text: str, line: int, fragment: str) -> None:
    with pytest.raises(NectarError) as ei:
        loads(text, "r.yaml")
    assert fragment in ei.value.message
    assert ei.value.span is not None and ei.value.span.file == "r.yaml" and ei.value.span.line == line
    assert "r.yaml:" in ei.value.render()


# ---------------------------------------------------------------------------------------------------------------
# Validation (every validation vector: verdict and exact messages)


@pytest.mark.parametrize("vector", vector_params("validation_vectors"))
def test_validation_vectors(vector: dict[str, Any]) -> None:
    errors = validate_rules(vector["yaml"], f"{vector['id']}.yaml")
    assert (not errors) is vector["expect_valid"]
    assert sorted(e.message for e in errors) == sorted(vector.get("messages", []))
    for e in errors:
        assert e.span is not None and e.span.file == f"{vector['id']}.yaml"
        line = vector["yaml"].splitlines()[e.span.line - 1]
        assert line[e.span.column - 1 :].strip(), "the span points at text"
    if vector["expect_valid"]:
        load_rules(vector["yaml"], "v.yaml")
    else:
        with pytest.raises(ErrorGroup) as ei:
            load_rules(vector["yaml"], "v.yaml")
        assert len(ei.value.errors) == len(vector["messages"])


HEAD = "RulesVersion: 2\nSamplers:\n  __default__:\n"


P0 = "Within sampler __default__: Within field RulesBasedSampler.Rules[0]: "
C0 = P0 + "Within field Rules.Conditions[0]: "
COND = "          Conditions:\n            - Field: x\n"


def _rule(body: str) -> str:
    return HEAD + "    RulesBasedSampler:\n      Rules:\n        - Name: r\n" + body


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        (
            "RulesVersion: 1\nSamplers:\n  __default__: {DeterministicSampler: {SampleRate: 1}}\n",
            ["RulesVersion must be 2, but it is 1"],
        ),
        ("Samplers:\n  __default__: {DeterministicSampler: {SampleRate: 1}}\n", ["RulesVersion is required"]),
        ("RulesVersion: 2\n", ["Samplers is required"]),
        ("RulesVersion: '2'\nSamplers: {__default__: {}}\n", ["RulesVersion must be an int, but 2 is string"]),
        (
            "RulesVersion: 2\nSamplers:\n  prod: {DeterministicSampler: {SampleRate: 1}}\n",
            ["Samplers must include a __default__ sampler"],
        ),
        ("RulesVersion: 2\nSamplers:\n  __default__: 5\n", ["Sampler __default__ must be a map, but 5 is int"]),
        (_rule("          Samplerate: 10\n"), [P0 + "unknown field Rules.Samplerate; did you mean SampleRate?"]),
        (_rule("          SampleRate: 10.5\n"), [P0 + "field Rules.SampleRate must be an int"]),
        (_rule("          SampleRate: '10'\n"), [P0 + "field Rules.SampleRate must be an int"]),
        (_rule("          Scope: spans\n"), [P0 + "field Rules.Scope (spans) must be one of [trace span]"]),
        (_rule("          Conditions: {Field: x}\n"), [P0 + "field Rules.Conditions must be an array of objects"]),
        (
            _rule(COND + "              Fields: [y]\n              Operator: exists\n"),
            [
                C0 + "the group Conditions includes Fields, which conflicts with Field",
                C0 + "the group Conditions includes Field, which conflicts with Fields",
            ],
        ),
        (
            _rule(COND + "              Operator: ends-with\n              Value: a\n"),
            [
                C0 + "field Conditions.Operator (ends-with) must be one of [= != > < >= <= starts-with contains "
                "does-not-contain exists not-exists has-root-span matches in not-in]"
            ],
        ),
        (
            _rule(COND + "              Operator: '='\n              Value: {a: 1}\n"),
            [C0 + "field Conditions.Value must be a list of string, int, float, or bool"],
        ),
        (
            _rule("          Sampler:\n            DeterministicSampler: {SampleRate: 2}\n"),
            [P0 + "field Rules.Sampler contains unknown key DeterministicSampler"],
        ),
        (
            HEAD + "    EMAThroughputSampler: {GoalThroughputPerSec: 0, FieldList: [a], AdjustmentInterval: 15}\n",
            [
                "Within sampler __default__: field EMAThroughputSampler.GoalThroughputPerSec (0) must be at least 1",
                "Within sampler __default__: field EMAThroughputSampler.AdjustmentInterval (15) must be a valid "
                "duration like '3m30s' or '100ms'",
            ],
        ),
        (
            HEAD + "    DynamicSampler: {SampleRate: 2, FieldList: a, ClearFrequency: 1m30s}\n",
            ["Within sampler __default__: field DynamicSampler.FieldList must be a string array but a is string"],
        ),
        (
            HEAD + "    DynamicSampeler: {SampleRate: 2}\n",
            [
                "Within sampler __default__: unknown group DynamicSampeler; did you mean DynamicSampler?",
                "Within sampler __default__: unknown field DynamicSampeler.SampleRate; did you mean SampleRate?",
            ],
        ),
        (
            HEAD + "    Dynamic: {SampleRate: 2}\n",  # edit distance picks "Name" (5) over "DynamicSampler" (7)
            [
                "Within sampler __default__: unknown group Dynamic; did you mean Name?",
                "Within sampler __default__: unknown field Dynamic.SampleRate; did you mean SampleRate?",
            ],
        ),
        (HEAD + "    DeterministicSampler: {SampleRate: 1}\n  other: {}\n", []),
        (_rule("          Name: 404\n"), None),  # duplicate key: a YAML error, not a validation message
    ],
)
def test_validation_messages(text: str, messages: list[str] | None) -> None:
    errors = validate_rules(text, "t.yaml")
    if messages is None:
        assert len(errors) == 1 and "already defined" in errors[0].message
        return
    assert sorted(e.message for e in errors) == sorted(messages)


def test_closest_names_quirk_keeps_repeats_of_later_names() -> None:
    assert closest_names("Samplerate") == ["SampleRate"]
    assert closest_names("Rules.Datatyp") == ["Datatype"]
    names = closest_names("MaxKey")
    assert names[0] == "MaxKeys"


def test_json_rules_fail_like_refinery(tmp_path: Path) -> None:
    p = tmp_path / "rules.json"
    p.write_text('{"RulesVersion": 2, "Samplers": {"__default__": {"DeterministicSampler": {"SampleRate": 1}}}}')
    errors = validate_rules(p)
    assert [e.message for e in errors] == ["RulesVersion must be an int, but 2 is float64"]


def test_downstream_deterministic_switch() -> None:
    text = _rule("          Sampler:\n            DeterministicSampler: {SampleRate: 2}\n")
    with pytest.raises(ErrorGroup):
        load_rules(text, "t.yaml")
    rf = load_rules(text, "t.yaml", accept_downstream_deterministic=True)
    rbs = rf.samplers["__default__"].rules_based
    assert rbs is not None and rbs.rules[0].sampler == Sampler("DeterministicSampler", {"SampleRate": 2})


# ---------------------------------------------------------------------------------------------------------------
# The IR

IR_TEXT = """\
RulesVersion: 2
Samplers:
  __default__:
    DeterministicSampler:
      SampleRate: 4
  prod:
    RulesBasedSampler:
      CheckNestedFields: true
      Rules:
        - Name: one
          SampleRate: 3
          Scope: span
          Conditions:
            - Field: http.status_code
              Operator: ">="
              Value: 500
              Datatype: int
            - Fields: [a, root.b]
              Operator: in
              Value: [x, "y"]
            - Field: c
              Value: 017
        - Name: two
          Drop: true
          Conditions: []
        - Name: three
          Scope: weird
          Sampler:
            EMADynamicSampler: {GoalSampleRate: 7, FieldList: [service.name]}
            TotalThroughputSampler: {GoalThroughputPerSec: 5, FieldList: [x]}
        - Name: four
  both:
    DynamicSampler: {SampleRate: 3, FieldList: [a]}
    RulesBasedSampler: {}
  none:
    Rules: {Name: x}
"""


def test_ir_shape() -> None:
    # Invalid scopes are rejected by the validator but run by Refinery with --no-validate: build without it.
    assert [e.message for e in validate_rules(IR_TEXT, "ir.yaml")] == [
        "Within sampler prod: Within field RulesBasedSampler.Rules[2]: field Rules.Scope (weird) must be one of "
        "[trace span]"
    ]
    rf, pos = load_rules_with_positions(IR_TEXT, "ir.yaml", validate=False)
    assert list(rf.samplers) == ["__default__", "prod", "both", "none"]
    default = rf.samplers["__default__"]
    assert default.rules_based is None and default.choice == Sampler("DeterministicSampler", {"SampleRate": 4})
    prod = rf.samplers["prod"].rules_based
    assert isinstance(prod, RulesBasedSampler) and prod.check_nested_fields is True
    one, two, three, four = prod.rules
    c0, c1, c2 = one.conditions or ()
    assert (c0.fields, c0.single_field, c0.operator, c0.value, c0.datatype) == (
        ("http.status_code",), True, Operator.GE, 500, Datatype.INT)  # fmt: skip
    assert (c1.fields, c1.single_field, c1.operator, c1.value) == (("a", "root.b"), False, Operator.IN, ("x", "y"))
    assert (c2.operator, c2.value, c2.datatype) == (None, 15, None)
    assert (one.scope, one.sample_rate, one.drop, one.effective_scope) == ("span", 3, False, "span")
    assert (two.conditions, two.drop, two.sample_rate, two.is_catch_all) == ((), True, 0, True)
    assert three.effective_scope == "invalid" and three.scope == "weird"
    assert [s.kind for s in three.samplers] == ["EMADynamicSampler", "TotalThroughputSampler"]
    assert three.sampler is not None and three.sampler.kind == SamplerKind.EMA_DYNAMIC
    assert three.sampler.nominal_rate == 7 and three.sampler.field_list == ("service.name",)
    assert (four.conditions, four.sample_rate, four.scope) == (None, 0, None)
    both = rf.samplers["both"]
    assert isinstance(both.choice, RulesBasedSampler) and [s.kind for s in both.others] == ["DynamicSampler"]
    assert rf.samplers["none"].choice is None
    span = pos.span("prod", 0, 1, "Fields")
    assert span is not None and (span.line, span.column) == (18, 15)
    assert rf.sampler_for("prod") is rf.samplers["prod"] and rf.sampler_for("x") is default


def test_example_rules_load() -> None:
    path = shared_path("refinery", "example_rules.yaml")
    rf = load_rules(path)
    assert set(rf.samplers) == {"__default__", "production", "staging", "legacy-frontend"}
    prod = rf.samplers["production"].rules_based
    assert prod is not None and len(prod.rules) == 12
    assert prod.rules[-1].sampler is not None and prod.rules[-1].sampler.kind == "EMAThroughputSampler"
    assert load_rules(str(path)) == rf


def test_unloadable_rule_entry_is_an_error() -> None:
    text = HEAD + "    RulesBasedSampler:\n      Rules: [just-a-string]\n"
    assert validate_rules(text, "t.yaml") == []  # the validator lets it through...
    with pytest.raises(NectarError, match="not a mapping"):  # ...but Refinery cannot decode it into a rule
        load_rules(text, "t.yaml")


# ---------------------------------------------------------------------------------------------------------------
# Robustness: nothing but NectarError on arbitrary YAML-ish text

_TOKENS = [*"ab01:- \n\t[]{},'\"&*!|>#%@`~.?", "RulesVersion", "Samplers", "__default__", "Rules", "Conditions",
           "  ", "\n  - ", ": ", "Value", "2", "null"]  # fmt: skip
_yamlish = st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(_yamlish)
def test_loader_only_raises_nectar_errors(text: str) -> None:
    try:
        load_rules(text, "fuzz.yaml")
    except NectarError as exc:
        exc.render()
    validate_rules(text, "fuzz.yaml")


@settings(max_examples=150, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
))  # fmt: skip
def test_loader_only_raises_nectar_errors_on_structured_input(value: Any) -> None:
    import json

    doc = {"RulesVersion": 2, "Samplers": {"__default__": {"RulesBasedSampler": {"Rules": [value]}}}}
    text = json.dumps(doc, allow_nan=True).replace("NaN", ".nan").replace("-Infinity", "-.inf").replace(
        "Infinity", ".inf")  # fmt: skip
    with contextlib.suppress(NectarError):
        load_rules(text, "fuzz.yaml")
