"""Every conformance vector (SEMANTICS.md's executable half) on the Polars and DuckDB engines, through the real
ingest path and the real rules loader (tests/vectors.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nectar.engine.api import evaluate
from tests.vectors import corpus_from_vector, expected, rules_sampler, vector_params, vector_trace_id


@pytest.mark.parametrize("vector", vector_params())
@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_vector(engine: str, vector: dict[str, Any], tmp_path: Path) -> None:
    corpus = corpus_from_vector(vector, tmp_path)
    res = evaluate(rules_sampler(vector), corpus, engine=engine, with_matches=True)
    assert res.decisions.height == 1
    row = res.decisions.row(0, named=True)
    assert row["trace_id"] == vector_trace_id(vector)
    assert (row["rule"], row["keep"], row["rate"], row["reason"]) == expected(vector)
    assert res.matches is not None and res.matches.columns == ["trace_id"] + [
        f"m{i}" for i in range(len(vector["rules"]))
    ]
    if row["rule_index"] is not None:
        assert res.matches.row(0, named=True)[f"m{row['rule_index']}"] is True


def test_unknown_engine(tmp_path: Path) -> None:
    from nectar.errors import NectarError
    from nectar.refinery.model import RulesBasedSampler
    from tests.engine_helpers import corpus_from_spans

    corpus = corpus_from_spans([{"trace.trace_id": "t1", "name": "x"}], tmp_path)
    with pytest.raises(NectarError, match="unknown engine"):
        evaluate(RulesBasedSampler(), corpus, engine="spark")
