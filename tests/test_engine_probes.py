"""``evaluate_with_probes``: probe rules ride along in the decision pass without changing any decision, and report
exactly what evaluating them on their own reports (the prover's one-pass error/must-keep check relies on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nectar.config import load_config
from nectar.corpus.layout import Corpus
from nectar.engine.api import evaluate, evaluate_with_probes
from nectar.policy.expr import parse_expr, standalone_origin
from nectar.policy.lower import lower_predicate
from nectar.refinery.model import Condition, Datatype, Operator, Rule, RulesBasedSampler

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

PREDICATES = [
    "http.status >= 500",
    'span(service.name == "payments" and http.status >= 500)',
    'root.http.route starts_with "/checkout" and root.duration > 2s',
    "span_count() > 50 or error == true",
    'http.route matches "^/(api/)?search"',
]


def _probes() -> tuple[Rule, ...]:
    aliases = load_config().aliases
    rules: list[Rule] = []
    for k, text in enumerate(PREDICATES):
        expr = parse_expr(text, standalone_origin(text, "test"), aliases).expr
        rules.extend(lower_predicate(expr, f"p{k}").rules[:-1])
    return tuple(rules)


SAMPLERS = {
    "policy": RulesBasedSampler(
        (
            Rule(
                name="errors",
                conditions=(Condition(fields=("error",), operator=Operator.EQ, value=True, datatype=Datatype.BOOL),),
                sample_rate=1,
            ),
            Rule(
                name="api",
                conditions=(Condition(fields=("service.name",), operator=Operator.EQ, value="api"),),
                sample_rate=10,
            ),
            Rule(name="rest", sample_rate=100),
        )
    ),
    "no catch-all": RulesBasedSampler(
        (
            Rule(
                name="api",
                conditions=(Condition(fields=("service.name",), operator=Operator.EQ, value="api"),),
                drop=True,
            ),
        )
    ),
    "no rules": RulesBasedSampler(()),
}


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_probes_agree_with_separate_passes(engine: str, name: str) -> None:
    corpus = Corpus.open(CORPUS)
    sampler = SAMPLERS[name]
    probes = _probes()
    result, pm = evaluate_with_probes(sampler, probes, corpus, engine=engine)
    alone = evaluate(sampler, corpus, engine=engine, with_matches=True)
    assert result.decisions.equals(alone.decisions)
    assert result.matches is not None and alone.matches is not None
    assert result.matches.equals(alone.matches)
    separate = evaluate(RulesBasedSampler(probes), corpus, engine=engine, with_matches=True).matches
    assert separate is not None
    assert pm.columns == ["trace_id", *[f"p{k}" for k in range(len(probes))]]
    assert pm.to_numpy().tolist() == separate.to_numpy().tolist()
