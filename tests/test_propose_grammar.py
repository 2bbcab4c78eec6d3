"""The offline proposer's English on another corpus (the synthetic one: both HTTP status spellings, four namespaces,
values shared between fields): intent -> rules (match, action) in priority order, and refusals naming the word."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nectar.config import DEFAULT_ALIASES
from nectar.corpus.layout import Corpus
from nectar.corpus.stats import FieldCatalog, field_catalog
from nectar.corpus.synth import synth_corpus
from nectar.errors import NectarError
from nectar.policy import ir
from nectar.policy.format import format_expr
from nectar.propose.offline import propose_offline

ERR = "error == true or http.status >= 500"
HEALTH = 'http.route in ("/healthz", "/readyz")'

CASES: list[tuple[str, list[tuple[str, str]], float | None]] = [
    (
        "Always keep errors. Drop /healthz. Sample 10% of the rest.",
        [(ERR, "keep"), ('http.route == "/healthz"', "drop"), ("true", "sample(10%)")],
        None,
    ),
    (
        "Never drop errors, keep everything except health checks",
        [(ERR, "keep"), (HEALTH, "drop"), ("true", "keep")],
        None,
    ),
    ("Sample everything at 5% except errors", [(ERR, "keep"), ("true", "sample(5%)")], None),
    (
        "Keep errors and stay under 500 events per second, sample the rest at 1%",
        [(ERR, "keep"), ("true", "sample(1%)")],
        500.0,
    ),
    ("Keep errors, sample the rest at 1%, budget 2k events/s", [(ERR, "keep"), ("true", "sample(1%)")], 2000.0),
    (
        "Keep requests that return 5xx, don't keep health checks, sample the rest at 1 in 4",
        [("http.status >= 500", "keep"), (HEALTH, "drop"), ("true", "sample(1/4)")],
        None,
    ),
    (
        "Keep api traffic in eu-west-1 and sample the rest at 1%",
        [('span(service.name == "api" and cloud.region == "eu-west-1")', "keep"), ("true", "sample(1%)")],
        None,
    ),
    ("Keep the catalog namespace", [('k8s.namespace.name == "catalog"', "keep"), ("true", "keep")], None),
    (
        "Keep redis errors and postgres calls slower than 100ms; sample the rest at 2%",
        [
            (f'span(db.system == "redis" and ({ERR}))', "keep"),
            ('span(db.system == "postgresql" and duration > 100ms)', "keep"),
            ("true", "sample(2%)"),
        ],
        None,
    ),
    (
        "keep traces with at least 20 spans, drop traces with fewer than 2 spans, sample the rest at 1 in 100",
        [("span_count() >= 20", "keep"), ("span_count() < 2", "drop"), ("true", "sample(1/100)")],
        None,
    ),
    (
        "Keep 429s and 5xx responses, drop 404s, sample other traffic at 0.5%",
        [
            ("http.status == 429", "keep"),
            ("http.status >= 500", "keep"),
            ("http.status == 404", "drop"),
            ("true", "sample(0.5%)"),
        ],
        None,
    ),
    (
        "Keep POST requests to /api/checkout, sample GET requests at 1%, keep the rest",
        [
            ('span(http.method == "POST" and http.route == "/api/checkout")', "keep"),
            ('http.method == "GET"', "sample(1%)"),
            ("true", "keep"),
        ],
        None,
    ),
    ("Keep all traffic", [("true", "keep")], None),
]

REFUSED = [
    ("Keep customer traces", "customer", "does not say which traces"),
    ("Keep big traces", "big", "needs a size"),
    ("Keep traces whose user.tier is gold", "gold", "user.tier has: free, pro, enterprise"),
    ("Keep errors except health checks", "except", "only understood after 'everything'"),
    ("Keep errors, sample the rest at 1 in 0", "1", "not a sample rate"),
]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> FieldCatalog:
    d: Path = tmp_path_factory.mktemp("synth") / "corpus"
    synth_corpus(d, spans=3000, seed=7)
    return field_catalog(Corpus.open(d), top=50)


@pytest.mark.parametrize(("intent", "rules", "budget"), CASES, ids=[c[0][:40] for c in CASES])
def test_intent(intent: str, rules: list[tuple[str, str]], budget: float | None, catalog: FieldCatalog) -> None:
    p = propose_offline(intent, catalog, DEFAULT_ALIASES)
    got = [(format_expr(r.match), r.action_text) for r in p.policy.ordered_rules()]
    assert got == rules, p.text
    assert p.policy.budget_per_second == budget


@pytest.mark.parametrize(("intent", "word", "message"), REFUSED, ids=[r[0][:40] for r in REFUSED])
def test_refused(intent: str, word: str, message: str, catalog: FieldCatalog) -> None:
    with pytest.raises(NectarError) as info:
        propose_offline(intent, catalog, DEFAULT_ALIASES)
    err = info.value
    assert message in err.render()
    assert err.span is not None and intent[err.span.column - 1 :].startswith(word)


def test_ambiguous_value_is_reported(catalog: FieldCatalog) -> None:
    p = propose_offline("Keep catalog traffic", catalog, DEFAULT_ALIASES)
    (note,) = [n for n in p.notes if n.phrase == "catalog"]
    assert note.meaning == 'service.name == "catalog"' and "also a value of k8s.namespace.name" in note.detail


def test_project_error_definition_joins_errors(catalog: FieldCatalog) -> None:
    p = propose_offline("keep db errors", catalog, DEFAULT_ALIASES, error_definition="status_code == 2")
    first = p.policy.ordered_rules()[0]
    assert format_expr(first.match) == f"span(exists(db.system) and ({ERR} or status_code == 2))"
    assert any("prove.error_definition" in n.detail for n in p.notes)


WORDS = [
    "keep", "drop", "sample", "errors", "and", "or", ",", ";", ".", "the", "rest", "everything", "else", "at",
    "1%", "10", "%", "1", "in", "20", "slow", "over", "5s", "500", "ms", "more", "than", "spans", "health",
    "checks", "GET", "POST", "/api/search", "/api/*", "payments", "api", "catalog", "eu-west-1", "free-tier",
    "users", "4xx", "5xx", "429", "except", "never", "don't", "budget", "events/s", "2k", "(", ")", "zorp",
    "redis", "database", "failed", "namespace", "service", "1/50", "0%", "100%", "'", '"', "`", "\\", "<=", ">",
]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(WORDS), min_size=0, max_size=14))
def test_any_word_salad_is_a_policy_or_a_positioned_error(words: list[str], catalog: FieldCatalog) -> None:
    intent = " ".join(words)
    try:
        p = propose_offline(intent, catalog, DEFAULT_ALIASES)
    except NectarError as exc:
        assert exc.render() and "built an invalid policy" not in exc.message  # the user's words, not a bug
        return
    assert p.policy.ordered_rules()[-1].match == ir.Const(True)
    assert propose_offline(intent, catalog, DEFAULT_ALIASES).text == p.text
