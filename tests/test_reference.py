"""Reference evaluator corners beyond the conformance vectors, and decide_corpus on real ingested corpora."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nectar.corpus.ingest import ingest_paths
from nectar.corpus.layout import Corpus
from nectar.engine.reference import decide_corpus, decide_trace, rule_matches
from nectar.refinery import gostr
from nectar.refinery.loader import load_rules
from nectar.refinery.model import (
    Condition,
    Datatype,
    Operator,
    Rule,
    RulesBasedSampler,
    Sampler,
    SamplerConfig,
)

TID = "0af7651916cd43dd8448eb211c80319c"


def _span(i: int, parent: str | None = None, **fields: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"trace.trace_id": TID, "trace.span_id": f"s{i}"}
    if parent is not None:
        d["trace.parent_id"] = parent
    d.update({k.replace("__", "."): v for k, v in fields.items()})
    return d


def _one(cond: Condition, scope: str | None = None, nested: bool = False) -> RulesBasedSampler:
    return RulesBasedSampler((Rule("r", (cond,), scope=scope, sample_rate=1),), check_nested_fields=nested)


def _cond(field: str | tuple[str, ...], op: str | None, value: Any = None, dt: str | None = None) -> Condition:
    fields = (field,) if isinstance(field, str) else field
    return Condition(
        fields=fields,
        operator=Operator(op) if op else None,
        value=value,
        datatype=Datatype(dt) if dt else None,
        single_field=isinstance(field, str),
    )


# (span value or MISSING, condition) -> matches? Single-span traces, trace scope.
MISSING = object()
CONDITION_TABLE: list[tuple[Any, Condition, bool]] = [
    (500, _cond("x", "=", 500), True),
    (500.0, _cond("x", "=", 500), True),
    ("500", _cond("x", "=", 500), False),
    ("500", _cond("x", "!=", 500), False),  # incomparable: every operator false
    (MISSING, _cond("x", "!=", 500), False),
    (None, _cond("x", "!=", 500), True),  # present-null is less than anything
    (None, _cond("x", "=", None), True),
    (7, _cond("x", ">", None), True),  # no Value: compares against nil
    (float("nan"), _cond("x", "=", 1.5), True),  # Go's compare falls to "equal" for NaN
    (float("nan"), _cond("x", "=", 1.5, "float"), False),  # IEEE in the typed matcher
    (True, _cond("x", ">", False, "bool"), True),  # bool + > : untyped fallback
    ("abc", _cond("x", "=", "abc", "int"), True),  # Value does not convert: untyped
    ("1e3", _cond("x", "=", 1000, "float"), True),
    (" 500", _cond("x", "=", 500, "int"), False),
    (500.9, _cond("x", "=", 500, "int"), True),
    ("7.5", _cond("x", ">", "12.25", "string"), True),
    (MISSING, _cond("x", "=", "<nil>", "string"), True),
    (MISSING, _cond("x", "contains", "nil"), True),
    (MISSING, _cond("x", "does-not-contain", "a"), True),
    (MISSING, _cond("x", "matches", ".*"), True),
    (MISSING, _cond("x", "not-in", [1, 2], "int"), True),
    (MISSING, _cond("x", "in", ["<nil>"]), True),
    (1234567.0, _cond("x", "in", ("1234567",)), False),  # %v is 1.234567e+06
    (1234567.0, _cond("x", "in", (1234567,), "int"), True),
    ("yes", _cond("x", "=", False, "bool"), True),
    ("true", _cond("x", "in", (True,)), True),  # untyped in: "true" in {"true"}
    ("true", _cond("x", "in", True), False),  # bool scalar: Init error, never matches
    ("x", _cond("x", "not-in", True), False),
    (5, _cond("x", "in", 5), True),
    ("abc", _cond("x", "matches", "b"), True),  # unanchored
    ("abc", _cond("x", "matches", "^b"), False),
    ("abc", _cond("x", "matches", "[b"), False),  # invalid regex never matches
    (500, _cond("x", "matches", "^5"), True),
    ([1, "a"], _cond("x", "=", "[1 a]", "string"), True),
    ({"b": 1, "a": True}, _cond("x", "starts-with", "map[a:true"), True),
    (MISSING, _cond("x", None, 5), False),  # no Operator
    (5, _cond("x", None, 5), False),
    (MISSING, _cond("x", "not-exists"), True),
    (None, _cond("x", "exists"), True),
    (2**63 + 5, _cond("x", "=", 2**63 + 5), False),  # uint64 has no compare case
]


@pytest.mark.parametrize(("value", "cond", "want"), CONDITION_TABLE)
def test_condition_table(value: Any, cond: Condition, want: bool) -> None:
    span = _span(0) if value is MISSING else _span(0, x=value)
    assert rule_matches(_one(cond), TID, [span]) == [want]


def test_multiple_roots_last_wins_and_log_never_root() -> None:
    s = _one(_cond("root.name", "=", "second", "string"))
    spans = [_span(0, name="first"), _span(1, "x", name="child"), _span(2, name="second")]
    assert rule_matches(s, TID, spans) == [True]
    spans.append(_span(3, name="log", meta__signal_type="log"))
    assert rule_matches(s, TID, spans) == [True]
    no_root = _one(_cond("x", "has-root-span", False))
    assert rule_matches(no_root, TID, [_span(0, meta__signal_type="log")]) == [True]
    assert rule_matches(no_root, TID, [_span(0, "p"), _span(1, "")]) == [False]  # empty parent id: a root


def test_meta_refinery_root_is_virtual_and_absent_on_logs() -> None:
    s = _one(_cond("meta.refinery.root", "=", False), scope="span")
    assert rule_matches(s, TID, [_span(0)]) == [False]
    assert rule_matches(s, TID, [_span(0), _span(1, "s0")]) == [True]
    exists = _one(_cond("meta.refinery.root", "exists"))
    assert rule_matches(exists, TID, [_span(0, meta__signal_type="log")]) == [False]


def test_ids_are_invisible_but_non_string_ids_are_fields() -> None:
    s = _one(_cond("trace.parent_id", "exists"))
    assert rule_matches(s, TID, [_span(0), _span(1, "s0")]) == [False]
    assert rule_matches(s, TID, [_span(0) | {"trace.parent_id": 5}]) == [True]


def test_fields_first_present_wins_and_root_skip() -> None:
    c = _cond(("a", "b"), "=", 2)
    assert rule_matches(_one(c), TID, [_span(0, a=1, b=2)]) == [False]
    assert rule_matches(_one(c), TID, [_span(0, b=2)]) == [True]
    r = _cond(("root.a", "b"), "=", 2)
    assert rule_matches(_one(r), TID, [_span(0, "p", a=1, b=2)]) == [True]  # no root: root.a skipped


def test_has_root_span_in_span_scope_never_matches() -> None:
    s = _one(_cond((), "has-root-span", True), scope="span")
    assert rule_matches(s, TID, [_span(0)]) == [False]


def test_num_descendants_only_via_field() -> None:
    spans = [_span(0), _span(1, "s0"), _span(2, "s0")]
    assert rule_matches(_one(_cond("?.NUM_DESCENDANTS", ">=", 3)), TID, spans) == [True]
    assert rule_matches(_one(_cond(("?.NUM_DESCENDANTS",), "exists")), TID, spans) == [False]


@pytest.mark.parametrize(
    ("fields", "path", "want"),
    [
        ({"resp": {"code": 5}}, "resp.code", "5"),
        ({"resp": {"code": 5.5}}, "resp.code", "5.5"),
        ({"resp": {"code": 1e21}}, "resp.code", "1000000000000000000000"),
        ({"http.headers": {"ua": "curl"}}, "http\\.headers.ua", "curl"),
        ({"http.headers": {"ua": "curl"}}, "http.headers.ua", None),
        ({"a": [{"b": "x"}, {"b": "y"}]}, "a.1.b", "y"),
        ({"a": [1, 2, 3]}, "a.#", "3"),
        ({"a": {"b": None}}, "a.b", ""),
        ({"a": {"b": {"c": "<"}}}, "a.b", '{"c":"\\u003c"}'),
        ({"a": {"bcd": 1}}, "a.b*", "1"),
    ],
)
def test_check_nested_fields_gjson(fields: dict[str, Any], path: str, want: str | None) -> None:
    s = _one(_cond(path, "=", want if want is not None else "", "string"), nested=True)
    found = rule_matches(_one(_cond(path, "exists"), nested=True), TID, [_span(0, **fields)])
    assert found == [want is not None]
    if want is not None:
        assert rule_matches(s, TID, [_span(0, **fields)]) == [True]


def test_nested_lookup_uses_root_when_last_field_is_root() -> None:
    c = _cond(("root.x", "a.b"), "=", "1", "string")
    # No flat hit; the loop's last name is plain, so nested lookups run on the visited span.
    spans = [_span(0, a={"b": 2}), _span(1, "s0", a={"b": 1})]
    assert rule_matches(_one(c, scope="span", nested=True), TID, spans) == [True]
    # Last name root.: gjson runs on the root, with the unstripped names (so "root.a.b" is not found).
    c2 = _cond(("a.b", "root.q"), "=", "2", "string")
    assert rule_matches(_one(c2, scope="span", nested=True), TID, spans) == [True]  # root's a.b == 2 for both spans


def _rules_file(sampler_yaml: str) -> SamplerConfig:
    rf = load_rules(f"RulesVersion: 2\nSamplers:\n  __default__:\n{sampler_yaml}", "t.yaml", validate=False)
    return rf.samplers["__default__"]


@pytest.mark.parametrize(
    ("sampler_yaml", "keep", "rate", "reason", "kind"),
    [
        ("    DeterministicSampler: {SampleRate: 1}\n", "true", 1, "deterministic/always", "DeterministicSampler"),
        ("    DynamicSampler: {SampleRate: 7, FieldList: [a]}\n", "sampled", 7, "dynamic", "DynamicSampler"),
        ("    EMADynamicSampler: {GoalSampleRate: 9, FieldList: [a]}\n", "sampled", 9, "emadynamic",
         "EMADynamicSampler"),
        ("    EMAThroughputSampler: {GoalThroughputPerSec: 9, FieldList: [a]}\n", "sampled", 1, "emathroughput",
         "EMAThroughputSampler"),
        ("    WindowedThroughputSampler: {GoalThroughputPerSec: 9, FieldList: [a]}\n", "sampled", 1,
         "windowedthroughput", "WindowedThroughputSampler"),
        ("    TotalThroughputSampler: {GoalThroughputPerSec: 9, FieldList: [a]}\n", "sampled", 1, "totalthroughput",
         "TotalThroughputSampler"),
        ("    Rules: {Name: x}\n", "true", 1, "no rule matched", None),
        ("    RulesBasedSampler:\n      Rules:\n        - Name: e\n          Sampler:\n            EMADynamicSampler: "
         "{GoalSampleRate: 4, FieldList: [a]}\n", "sampled", 4, "rules/trace/e:emadynamic", "EMADynamicSampler"),
        ("    RulesBasedSampler:\n      Rules:\n        - Name: b\n          Sampler:\n            RulesBasedSampler: "
         "{}\n", "true", 1, "rules/trace/bad_rule:b", None),
        ("    RulesBasedSampler:\n      Rules:\n        - Name: i\n          Scope: nope\n          SampleRate: 3\n"
         "          Conditions: [{Field: zz, Operator: exists}]\n", "sampled", 3, "rules/invalid scope/i", None),
        ("    RulesBasedSampler:\n      Rules:\n        - Name: s\n          Scope: span\n          SampleRate: 1\n",
         "true", 1, "rules/span/s", None),
        ("    RulesBasedSampler: {}\n", "true", 1, "no rule matched", None),
    ],
)  # fmt: skip
def test_sampler_outcomes(sampler_yaml: str, keep: str, rate: int, reason: str, kind: str | None) -> None:
    d = decide_trace(_rules_file(sampler_yaml), TID, [_span(0)])
    assert (d.keep.value, d.rate, d.reason, d.sampler) == (keep, rate, reason, kind)


def test_top_level_deterministic_is_the_hash() -> None:
    sc = SamplerConfig(others=(Sampler("DeterministicSampler", {"SampleRate": 10}),))
    kept = 0
    for i in range(200):
        tid = f"trace-{i}"
        d = decide_trace(sc, tid, [{"trace.trace_id": tid}])
        assert d.reason == "deterministic/chance" and d.rate == 10
        assert (d.keep.value == "true") is gostr.deterministic_keep(tid, 10)
        kept += d.keep.value == "true"
    assert 5 < kept < 45


# ---------------------------------------------------------------------------------------------------------------
# decide_corpus: same answers as on the raw events, through the real ingest path

RULES = """\
RulesVersion: 2
Samplers:
  __default__:
    RulesBasedSampler:
      CheckNestedFields: true
      Rules:
        - {Name: errors, SampleRate: 1, Conditions: [{Field: error, Operator: "=", Value: true}]}
        - {Name: slow, SampleRate: 5, Conditions: [{Field: duration_ms, Operator: ">", Value: 100, Datatype: float}]}
        - {Name: nulls, SampleRate: 2, Scope: span, Conditions: [{Field: x, Operator: "!=", Value: 1},
           {Field: x, Operator: "<", Value: 0}]}
        - {Name: rootless, SampleRate: 3, Conditions: [{Operator: has-root-span, Value: false}]}
        - {Name: nested, SampleRate: 4, Conditions: [{Field: obj.k, Operator: "=", Value: "1", Datatype: string}]}
        - {Name: str500, Drop: true, Conditions: [{Field: code, Operator: "=", Value: "500"}]}
        - {Name: mixed, SampleRate: 6, Conditions: [{Fields: [code, name], Operator: in, Value: ["500", a]}]}
        - {Name: big, SampleRate: 7, Conditions: [{Field: "?.NUM_DESCENDANTS", Operator: ">", Value: 3}]}
        - {Name: rest, Drop: true}
"""

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 600),
    st.sampled_from([0.5, 150.0, 99.9, -1.0, 500.0]),
    st.sampled_from(["500", "a", "true", "", "<nil>"]),
    st.just({"k": 1}),
    st.just({"k": "1"}),
    st.just([1, 2]),
)
_span_st = st.dictionaries(st.sampled_from(["error", "duration_ms", "x", "obj", "code", "name"]), _values, max_size=4)
_trace_st = st.lists(st.tuples(_span_st, st.booleans()), min_size=1, max_size=5)


def _events(traces: list[list[tuple[dict[str, Any], bool]]]) -> list[dict[str, Any]]:
    out = []
    for t, spans in enumerate(traces):
        for i, (fields, child) in enumerate(spans):
            e = {"trace.trace_id": f"t{t:03d}", "trace.span_id": f"t{t}s{i}", **fields}
            if child:
                e["trace.parent_id"] = f"t{t}s0"
            out.append(e)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_trace_st, min_size=1, max_size=6))
def test_decide_corpus_agrees_with_raw_events(tmp_path_factory: Any, traces: Any) -> None:
    tmp = tmp_path_factory.mktemp("c")
    events = _events(traces)
    (tmp / "in.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    ingest_paths([str(tmp / "in.jsonl")], tmp / "corpus")
    sampler = load_rules(RULES, "r.yaml").samplers["__default__"]
    res = decide_corpus(sampler, Corpus.open(tmp / "corpus"), with_matches=True)
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_trace.setdefault(e["trace.trace_id"], []).append(e)
    rows = res.decisions.to_dicts()
    assert [r["trace_id"] for r in rows] == sorted(by_trace)
    assert res.matches is not None
    for row, mrow in zip(rows, res.matches.iter_rows(), strict=True):
        spans = by_trace[row["trace_id"]]
        want = decide_trace(sampler, row["trace_id"], spans).as_row()
        assert row == want
        assert list(mrow[1:]) == rule_matches(sampler, row["trace_id"], spans)


def test_decide_corpus_empty_and_bundled(tmp_path: Path) -> None:
    ingest_paths([str(_write(tmp_path / "e.jsonl", []))], tmp_path / "empty")
    res = decide_corpus(RulesBasedSampler(), Corpus.open(tmp_path / "empty"), with_matches=True)
    assert res.decisions.height == 0 and res.matches is not None and res.matches.columns == ["trace_id"]


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path
