"""The reference evaluator on every conformance vector: on raw span dicts, and through ingest + decide_corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nectar.engine.reference import decide_corpus, decide_trace, rule_matches
from tests.vectors import corpus_from_vector, expected, rules_sampler, vector_params, vector_trace_id


@pytest.mark.parametrize("vector", vector_params())
def test_vector_on_span_dicts(vector: dict[str, Any]) -> None:
    sampler = rules_sampler(vector)
    d = decide_trace(sampler, vector_trace_id(vector), vector["trace"])
    assert (d.rule, d.keep.value, d.rate, d.reason) == expected(vector), vector.get("why")
    assert d.spans == len(vector["trace"])
    if d.rule is not None:
        assert d.rule_index is not None and sampler.rules[d.rule_index].name == d.rule
        # The deciding rule matched, and no earlier rule did.
        m = rule_matches(sampler, vector_trace_id(vector), vector["trace"])
        assert m[d.rule_index] and not any(m[: d.rule_index])


@pytest.mark.parametrize("vector", vector_params())
def test_vector_through_ingest(vector: dict[str, Any], tmp_path: Path) -> None:
    corpus = corpus_from_vector(vector, tmp_path)
    sampler = rules_sampler(vector)
    res = decide_corpus(sampler, corpus, with_matches=True)
    rows = res.decisions.to_dicts()
    assert len(rows) == 1
    row = rows[0]
    assert row["trace_id"] == vector_trace_id(vector)
    assert (row["rule"], row["keep"], row["rate"], row["reason"]) == expected(vector), vector.get("why")
    assert res.matches is not None
    assert res.matches.columns == ["trace_id", *[f"m{i}" for i in range(len(sampler.rules))]]
    if row["rule_index"] is not None:
        assert res.matches.row(0)[1 + row["rule_index"]] is True


@pytest.mark.parametrize("vector", vector_params())
def test_vector_rules_validate_like_refinery(vector: dict[str, Any]) -> None:
    """Which vectors describe rules Refinery v3.2.2 would refuse to load (runtime-only behaviour)."""
    from nectar.refinery.loader import validate_rules
    from tests.vectors import RUNTIME_ONLY_VECTORS, rules_yaml

    messages = [e.message for e in validate_rules(rules_yaml(vector), "v.yaml")]
    downstream_det = any("DeterministicSampler" in r.get("Sampler", {}) for r in vector["rules"])
    if vector["id"] in RUNTIME_ONLY_VECTORS:
        assert messages and all("must be a slice of all the same type" in m for m in messages)
    elif downstream_det:
        assert all("contains unknown key DeterministicSampler" in m for m in messages) and messages
    else:
        assert messages == []
