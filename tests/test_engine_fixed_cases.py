"""Fixed conformance cases, run on all three engines through a real corpus.

The cases live in ``tests/data/engine/fixed_cases.json`` (tests are data): one trace each, one condition, the rule's
scope and whether the condition matches, with the line of Refinery's Go code that says so. They pin what the
differential tests cannot (those only hold the engines to each other): untyped comparisons against booleans
(``compare()`` orders false < true; a bool Value against a non-bool is incomparable), comparisons against nil (a
condition without ``Value``), and which span is the root when several qualify (the last by arrival; log events
never).

Each case becomes a one-rule sampler (``SampleRate: 1``), so a match shows as the trace being decided by rule 0 and
no match as ``no rule matched``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nectar.corpus.layout import Corpus
from nectar.corpus.store import create_corpus, tables_from_records
from nectar.engine.api import evaluate
from nectar.refinery.model import Condition, Datatype, Operator, Rule, RulesBasedSampler

DATA = Path(__file__).parent / "data" / "engine" / "fixed_cases.json"
CASES: list[dict[str, Any]] = json.loads(DATA.read_text(encoding="utf-8"))["cases"]
ENGINES = ("reference", "polars", "duckdb")
TRACE_ID = "t1"
SPAN_KEYS = {"span_id", "parent_id", "timestamp", "fields"}
CONDITION_KEYS = {"field", "fields", "operator", "value", "datatype"}


def _condition(spec: dict[str, Any]) -> Condition:
    """A model Condition from the case's condition: ``field`` (Refinery's Field) or ``fields`` (Fields); no
    ``value`` key means no Value (compared against nil); a JSON list Value is a tuple."""
    if "field" in spec:
        fields, single = (spec["field"],), True
    else:
        fields, single = tuple(spec["fields"]), False
    value = spec.get("value")
    if isinstance(value, list):
        value = tuple(value)
    datatype = Datatype(spec["datatype"]) if spec.get("datatype") else None
    return Condition(fields, Operator(spec["operator"]), value, datatype, single_field=single)


def _sampler(case: dict[str, Any]) -> RulesBasedSampler:
    rule = Rule("case", (_condition(case["condition"]),), scope=case["scope"], sample_rate=1)
    return RulesBasedSampler(rules=(rule,))


def _corpus(case: dict[str, Any], tmp: Path) -> Corpus:
    records = [
        {
            "trace_id": TRACE_ID,
            "span_id": s["span_id"],
            "parent_id": s["parent_id"],
            "timestamp": s.get("timestamp", 1_700_000_000_000_000 + i),
            "fields": s["fields"],
        }
        for i, s in enumerate(case["spans"])  # list order = arrival order
    ]
    create_corpus(tmp / "corpus", tables_from_records([records], 0), [{"format": "test"}], {})
    return Corpus.open(tmp / "corpus")


def _matched(case: dict[str, Any], corpus: Corpus, engine: str) -> bool:
    rows = evaluate(_sampler(case), corpus, engine=engine).decisions.select("trace_id", "rule_index", "reason").rows()
    assert len(rows) == 1 and rows[0][0] == TRACE_ID, rows
    _, rule_index, reason = rows[0]
    assert (rule_index, reason) in ((0, f"rules/{case['scope']}/case"), (None, "no rule matched")), rows
    return rule_index == 0


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_fixed_case(case: dict[str, Any], tmp_path: Path) -> None:
    corpus = _corpus(case, tmp_path)
    got = {engine: _matched(case, corpus, engine) for engine in ENGINES}
    assert got == dict.fromkeys(ENGINES, case["expected"]), case["why"]


def test_cases_are_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for c in CASES:
        assert set(c) == {"id", "why", "spans", "condition", "scope", "expected"}, c["id"]
        assert c["why"].strip() and "\n" not in c["why"], c["id"]
        assert isinstance(c["expected"], bool) and c["scope"] in ("trace", "span"), c["id"]
        assert c["spans"] and all(set(s) <= SPAN_KEYS and "fields" in s for s in c["spans"]), c["id"]
        cond = c["condition"]
        assert set(cond) <= CONDITION_KEYS and ("field" in cond) != ("fields" in cond), c["id"]
        # Refinery's validator rejects a null Value ("must not be nil"): no Value is written as no key.
        assert "value" not in cond or cond["value"] is not None, c["id"]
        _condition(cond)  # operator and datatype are Refinery's


def test_cases_cover_the_traps() -> None:
    """The file keeps the cases that make planted bugs visible (see the module docstring)."""
    by_id = {c["id"]: c for c in CASES}
    ops = ("eq", "ne", "lt", "le", "gt", "ge")
    for span in ("true", "false"):
        for lit in ("true", "false"):
            assert all(f"bool/span-{span}/{op}/lit-{lit}" in by_id for op in ops)
    for span in ("strtrue", "int1"):
        assert all(f"bool/span-{span}/{op}/lit-true" in by_id for op in ops)
    for span in ("int0", "str-empty", "false", "null", "missing"):
        assert all(f"nil/span-{span}/{op}/no-value" in by_id for op in ops)
    # >= false is always true on a bool; >= without a Value is true on a non-nil value.
    assert by_id["bool/span-false/ge/lit-false"]["expected"] is True
    assert by_id["nil/span-int0/ge/no-value"]["expected"] is True
    # Several roots: a case where only the first root matches (false), and where only the last does (true).
    assert by_id["roots/two/first-matches/eq-a"]["expected"] is False
    assert by_id["roots/two/last-matches/eq-b"]["expected"] is True
