"""Engine edge cases the vectors do not pin: user text that looks like SQL, odd field names, empty corpora,
non-rules samplers, and the DeterministicSampler hash on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from nectar.corpus.layout import Corpus
from nectar.corpus.store import create_corpus, tables_from_records
from nectar.engine.api import evaluate
from nectar.refinery import gostr
from nectar.refinery.model import Condition, Datatype, Operator, Rule, RulesBasedSampler, Sampler, SamplerConfig
from tests.engine_helpers import corpus_from_spans

ENGINES = ["polars", "duckdb", "reference"]


def _rows(sampler: object, corpus: Corpus, engine: str) -> list[tuple[object, ...]]:
    res = evaluate(sampler, corpus, engine=engine)  # type: ignore[arg-type]
    return res.decisions.select("trace_id", "rule", "keep", "rate", "reason").rows()


@pytest.mark.parametrize("engine", ENGINES)
def test_sql_looking_values_and_names(engine: str, tmp_path: Path) -> None:
    evil = "x'); DROP TABLE spans; --"
    spans = [
        {"trace.trace_id": "t1", 'we"ird': evil, "a'b": 1, "ünï.cødé": "ok"},
        {"trace.trace_id": "t2", 'we"ird': "plain", "a'b": 2},
    ]
    corpus = corpus_from_spans(spans, tmp_path)
    rules = RulesBasedSampler(
        rules=(
            Rule("evil", (Condition(('we"ird',), Operator.EQ, evil),), sample_rate=1),
            Rule("quote", (Condition(("a'b",), Operator.IN, (2, 3), Datatype.INT),), sample_rate=3),
            Rule("uni", (Condition(("ünï.cødé",), Operator.STARTS_WITH, "o"),), sample_rate=1),
        )
    )
    rows = _rows(rules, corpus, engine)
    assert rows == [
        ("t1", "evil", "true", 1, "rules/trace/evil"),
        ("t2", "quote", "sampled", 3, "rules/trace/quote"),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_top_level_samplers(engine: str, tmp_path: Path) -> None:
    ids = [f"{i:032x}" for i in range(1, 40)]
    corpus = corpus_from_spans([{"trace.trace_id": t, "name": "n"} for t in ids], tmp_path)
    det = Sampler("DeterministicSampler", {"SampleRate": 4})
    rows = _rows(SamplerConfig(others=(det,)), corpus, engine)
    for tid, rule, keep, rate, reason in rows:
        assert rule is None and rate == 4 and reason == "deterministic/chance"
        assert keep == ("true" if gostr.deterministic_keep(tid, 4) else "false")
    assert {r[2] for r in rows} == {"true", "false"}
    ema = Sampler("EMADynamicSampler", {"GoalSampleRate": 7, "FieldList": ["name"]})
    assert {r[2:] for r in _rows(ema, corpus, engine)} == {("sampled", 7, "emadynamic")}


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_corpus(engine: str, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    create_corpus(out, tables_from_records([], 0), [], {})
    corpus = Corpus.open(out)
    rules = RulesBasedSampler(rules=(Rule("r", (Condition(("x",), Operator.EXISTS),), sample_rate=1),))
    assert _rows(rules, corpus, engine) == []


def test_go_v_fast_agrees_with_gostr() -> None:
    import math
    import random
    import struct

    from nectar.engine.lowering import go_v_fast

    rnd = random.Random(9)
    vals = [struct.unpack("d", struct.pack("Q", rnd.getrandbits(64)))[0] for _ in range(20000)]
    vals += [
        round(rnd.random() * 10 ** rnd.randint(-6, 8), rnd.randint(0, 6)) * rnd.choice([1, -1]) for _ in range(20000)
    ]
    vals += [1e-4, 0.0001, 999999.5, 999999.9999999999, 1e6, -1e-4, 0.00009999, 0.0, -0.0, math.nan, math.inf, 5.0]
    assert [go_v_fast(v) for v in vals] == [gostr.go_v(v) for v in vals]


def _rate_with_limit(limit: int) -> int | None:
    """A SampleRate whose DeterministicSampler limit (MaxUint32 / rate) is exactly ``limit``, if one exists."""
    rate = (2**32 - 1) // limit
    return rate if rate > 1 and gostr.deterministic_limit(rate) == limit else None


def _boundary_trace() -> tuple[str, int, int]:
    """A trace id and two rates: one whose limit is exactly the id's hash (kept, ``hash <= limit``) and one whose
    limit is one less (dropped). Random ids almost never touch this boundary, so search for a small hash."""
    for i in range(5_000_000):
        tid = f"{i:032x}"
        h = gostr.deterministic_hash(tid)
        if 2 <= h < 50_000:
            at, above = _rate_with_limit(h), _rate_with_limit(h - 1)
            if at is not None and above is not None:
                return tid, at, above
    raise AssertionError("no trace id with a small enough hash")


@pytest.mark.parametrize("engine", ENGINES)
def test_deterministic_keep_boundary(engine: str, tmp_path: Path) -> None:
    tid, at, above = _boundary_trace()
    corpus = corpus_from_spans([{"trace.trace_id": tid, "name": "n"}], tmp_path)
    for rate, keep in ((at, "true"), (above, "false")):
        det = Sampler("DeterministicSampler", {"SampleRate": rate})
        assert _rows(SamplerConfig(others=(det,)), corpus, engine) == [(tid, None, keep, rate, "deterministic/chance")]
