"""The offline proposer against the 15 dev intents: every trace decided as the expected Refinery rules decide it.

Decisions are compared rule-independently (keep + rate per trace), with the real ingest, the real policy parser,
the real lowering and the Polars engine; the expected rules go through the real Refinery rules loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from nectar.config import DEFAULT_ALIASES
from nectar.corpus.ingest import ingest_paths
from nectar.corpus.layout import Corpus
from nectar.corpus.stats import FieldCatalog, field_catalog
from nectar.engine.api import evaluate
from nectar.errors import NectarError
from nectar.policy.lower import lower_policy
from nectar.propose.offline import propose_offline, split_clauses
from nectar.refinery.loader import load_rules
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def dev() -> dict:
    return json.loads(shared_path("intents", "dev.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    src = shared_path("intents", "corpus.jsonl")
    out = tmp_path_factory.mktemp("intents") / "corpus"
    ingest_paths([str(src)], out)
    return Corpus.open(out)


@pytest.fixture(scope="module")
def catalog(corpus: Corpus) -> FieldCatalog:
    return field_catalog(corpus, top=50)


def _decisions(sampler: object, corpus: Corpus) -> pl.DataFrame:
    d = evaluate(sampler, corpus, engine="polars").decisions  # type: ignore[arg-type]
    return d.select("trace_id", "keep", "rate").sort("trace_id")


def _expected_sampler(rules: list[dict]) -> object:
    doc = {"RulesVersion": 2, "Samplers": {"__default__": {"RulesBasedSampler": {"Rules": rules}}}}
    return load_rules(yaml.safe_dump(doc, sort_keys=False), "expected.yaml")


def _case_ids() -> list[int]:
    return list(range(15))


@pytest.mark.parametrize("case", _case_ids())
def test_dev_intent_decides_like_expected(case: int, dev: dict, corpus: Corpus, catalog: FieldCatalog) -> None:
    c = dev["cases"][case]
    proposal = propose_offline(c["intent"], catalog, DEFAULT_ALIASES)
    got = _decisions(lower_policy(proposal.policy).sampler, corpus)
    want = _decisions(_expected_sampler(c["rules"]), corpus)
    assert got["trace_id"].to_list() == want["trace_id"].to_list()
    diff = got.join(want, on="trace_id", suffix="_want").filter(
        (pl.col("keep") != pl.col("keep_want")) | (pl.col("rate") != pl.col("rate_want"))
    )
    assert diff.height == 0, f"{c['intent']!r}\n{proposal.text}\n{diff.head(5)}"
    assert proposal.notes, "every dev intent grounds at least one word"


def test_dev_has_fifteen_cases(dev: dict) -> None:
    assert len(dev["cases"]) == 15


def test_output_is_deterministic(dev: dict, catalog: FieldCatalog) -> None:
    for c in dev["cases"]:
        a = propose_offline(c["intent"], catalog, DEFAULT_ALIASES)
        b = propose_offline(c["intent"], catalog, DEFAULT_ALIASES)
        assert a.text == b.text and a.notes == b.notes and a.to_json() == b.to_json()


@pytest.mark.parametrize(
    ("intent", "word", "clause"),
    [
        ("Keep errors, drop traces from mars, sample the rest at 1%", "mars", "drop traces from mars"),
        ("Keep quux requests and sample the rest at 10%", "quux", "Keep quux requests"),
        ("Keep slow requests, sample the rest at 1%", "slow", "Keep slow requests"),
        ("Keep requests over 5 and sample the rest at 1%", "5", "Keep requests over 5"),
        ("Sample payments traffic", "Sample", "Sample payments traffic"),
    ],
)
def test_unknown_clause_is_refused_naming_it(intent: str, word: str, clause: str, catalog: FieldCatalog) -> None:
    with pytest.raises(NectarError) as info:
        propose_offline(intent, catalog, DEFAULT_ALIASES)
    err = info.value
    assert repr(clause) in err.message
    assert err.span is not None and intent[err.span.column - 1 :].startswith(word)


def test_several_unknown_clauses_all_reported(catalog: FieldCatalog) -> None:
    with pytest.raises(NectarError) as info:
        propose_offline("Keep zorp traffic, drop blarg traffic, sample the rest at 1%", catalog, DEFAULT_ALIASES)
    text = info.value.render()
    assert "zorp" in text and "blarg" in text


def test_catch_all_must_come_last(catalog: FieldCatalog) -> None:
    with pytest.raises(NectarError, match="put the catch-all"):
        propose_offline("Keep everything, drop health checks", catalog, DEFAULT_ALIASES)


@pytest.mark.parametrize(
    ("intent", "match"),
    [
        ("Keep the paymnts service", 'service.name == "payments"'),  # typo
        ("Keep traces in EU-WEST-1", 'cloud.region == "eu-west-1"'),  # case
        ("Keep postgres calls", 'db.system == "postgresql"'),  # prefix
        ("Drop the stagings namespace", 'k8s.namespace.name == "staging"'),  # plural
        ("Keep 404s and 503 responses", "http.status in (404, 503)"),
        ("Keep requests taking at least 2.5 seconds", "duration >= 2.5s"),
        ("Keep traces with fewer than 3 spans", "span_count() < 3"),
        ("Drop requests to /api/*", 'http.route starts_with "/api/"'),
        ("Keep DELETE requests", 'http.method == "DELETE"'),
        ("Keep 5xx", "http.status >= 500"),
        ("Keep catalog errors", 'span(service.name == "catalog" and (error == true or http.status >= 500))'),
    ],
)
def test_grounding_tolerance(intent: str, match: str, catalog: FieldCatalog) -> None:
    p = propose_offline(intent, catalog, DEFAULT_ALIASES)
    first = p.to_json()["rules"][0]
    assert first["match"] == match, p.text
    assert p.notes


def test_mappings_are_reported(catalog: FieldCatalog) -> None:
    p = propose_offline("Sample free-tier users at 10% and keep everyone else", catalog, DEFAULT_ALIASES)
    notes = {n.phrase: n for n in p.notes}
    assert notes["free"].meaning == 'user.tier == "free"'
    assert "user.tier has 'free'" in notes["free"].detail
    assert notes["at 10%"].detail == "keep 1 in 10"


def test_default_catch_all_is_an_assumption(catalog: FieldCatalog) -> None:
    p = propose_offline("Drop health checks", catalog, DEFAULT_ALIASES)
    assert p.policy.ordered_rules()[-1].name == "rest"
    assert any("kept" in a for a in p.assumptions)


def test_refine_inserts_before_catch_all(catalog: FieldCatalog) -> None:
    base = propose_offline("Keep errors, sample the rest at 1%", catalog, DEFAULT_ALIASES).policy
    p = propose_offline("also drop health checks", catalog, DEFAULT_ALIASES, base=base)
    names = [r.name for r in p.policy.ordered_rules()]
    assert names == ["errors", "health-checks", "rest"]
    assert p.policy.name == base.name
    q = propose_offline("sample the rest at 5%", catalog, DEFAULT_ALIASES, base=p.policy)
    assert [r.name for r in q.policy.ordered_rules()] == names
    assert q.to_json()["rules"][-1]["action"] == "sample(5%)"


def test_clause_splitting() -> None:
    cs = split_clauses("Keep server errors always, client errors (4xx) at 1 in 5, and everything else at 1 in 50")
    assert [c.rate[0] if c.rate else c.verb for c in cs] == ["keep", "sample(1/5)", "sample(1/50)"]
    cs = split_clauses("Keep errors, slow requests over 2s and payments traffic; drop the rest")
    assert len(cs) == 2


def test_written_policy_round_trips(catalog: FieldCatalog, tmp_path: Path) -> None:
    from nectar.policy.load import load_policy

    p = propose_offline("Keep errors, drop health checks, sample the rest at 1 in 20", catalog, DEFAULT_ALIASES)
    f = tmp_path / "policy.toon"
    f.write_text(p.text, encoding="utf-8")
    assert load_policy(f, DEFAULT_ALIASES) == p.policy
