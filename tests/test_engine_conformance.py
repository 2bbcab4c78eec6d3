"""Every conformance vector (SEMANTICS.md's executable half) on the Polars and DuckDB engines, via real ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nectar.engine.api import evaluate
from tests.engine_helpers import corpus_from_spans, load_conformance_or_empty, sampler_from_vector

VECTORS = load_conformance_or_empty()


def _expected(v: dict[str, Any]) -> tuple[Any, ...]:
    e = v["expect"]
    keep = {True: "true", False: "false"}.get(e["keep"], e["keep"])
    return e["rule"], keep, e["rate"], e["reason"]


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_all_vectors(engine: str, tmp_path: Path) -> None:
    if not VECTORS:
        pytest.skip("conformance.json not present")
    failures = []
    for i, v in enumerate(VECTORS):
        corpus = corpus_from_spans(v["trace"], tmp_path, f"v{i}")
        res = evaluate(sampler_from_vector(v), corpus, engine=engine, with_matches=True)
        assert res.decisions.height == 1
        row = res.decisions.row(0, named=True)
        got = (row["rule"], row["keep"], row["rate"], row["reason"])
        if got != _expected(v):
            failures.append((v["id"], got, _expected(v)))
        assert res.matches is not None and res.matches.width == len(v["rules"]) + 1
    assert failures == []


def test_unknown_engine(tmp_path: Path) -> None:
    from nectar.errors import NectarError
    from nectar.refinery.model import RulesBasedSampler

    corpus = corpus_from_spans([{"trace.trace_id": "t1", "name": "x"}], tmp_path)
    with pytest.raises(NectarError, match="unknown engine"):
        evaluate(RulesBasedSampler(), corpus, engine="spark")
