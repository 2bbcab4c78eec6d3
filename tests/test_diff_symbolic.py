"""The symbolic diff (nectar.prove.symbolic.diff_symbolic): which traces of any shape two samplers decide differently.

Each witness is ingested through the real ingest path and decided by every engine on both sides, which must show
the change it claims; "equivalent" is checked on spellings that differ only in form; top-level samplers, stateful
samplers and what the model does not cover (CheckNestedFields) have their own cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nectar.config import Config
from nectar.corpus.layout import Corpus
from nectar.diff import diff_sides, load_side
from nectar.engine.api import ENGINES, evaluate
from nectar.prove.symbolic import DiffWitness, Probe, diff_symbolic
from nectar.refinery.model import (
    Condition,
    Operator,
    Rule,
    RulesBasedSampler,
    Sampler,
    SamplerConfig,
    SamplerKind,
)
from tests.engine_helpers import corpus_from_spans

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "diff"
C = Condition
BUDGET_MS = 120_000  # generous on a loaded 2-core machine; these queries take well under a second each
FAST = Config(error_definition="error == true")
ERRORS = Probe("errors", (Rule("e", (C(("error",), Operator.EQ, True),), sample_rate=1),))
ROUTE = "http.route"


AnySampler = SamplerConfig | RulesBasedSampler | Sampler


def _confirm(old: AnySampler, new: AnySampler, w: DiffWitness, tmp: Path, name: str) -> None:
    """The witness through the real ingest path, decided by every engine on both sides: the claimed change."""
    corpus: Corpus = corpus_from_spans([dict(s) for s in w.spans], tmp, name)
    for engine in ENGINES:
        for sampler, want in ((old, w.old), (new, w.new)):
            rows = evaluate(sampler, corpus, engine=engine).decisions.select("rule", "keep", "rate", "sampler").rows()
            assert len(rows) == 1, (engine, rows)
            rule, keep, rate, kind = rows[0]
            assert (rule, kind) == (want.rule, want.sampler), (engine, rows, want)
            if want.keep in ("true", "false"):
                assert (keep, rate) == (want.keep, want.rate), (engine, rows, want)
            elif want.keep == "sampled" and want.sampler is None:
                assert (keep, rate) == ("sampled", want.rate), (engine, rows, want)


def test_a_planted_change_the_corpus_does_not_contain(tmp_path: Path) -> None:
    """OLD keeps errors before dropping /livez probes, NEW drops the probes first: a failing probe was kept and is
    now dropped. The sample corpus has no failing probe, so only the symbolic part can show it."""
    old, new = (load_side(str(DATA / f), FAST) for f in ("probes-after-errors.toon", "probes-first.toon"))
    report = diff_sides(old, new, FAST, Corpus.open(REPO / "corpus"), solver_timeout_ms=BUDGET_MS)
    assert report.corpus is not None and report.corpus.changed_traces == 0
    s = report.symbolic
    assert s is not None and s.status == "different" and s.complete, s
    (w,) = s.witnesses
    assert (w.old.rule, w.old.keep, w.new.rule, w.new.keep) == ("keep-errors", "true", "drop-livez", "false")
    assert w.classes == ("errors",) and w.at_risk == ("errors",)
    assert any(x.get(ROUTE) == "/livez" for x in w.spans) and "was kept by keep-errors" in w.description()
    _confirm(old.sampler, new.sampler, w, tmp_path, "w")


@pytest.mark.parametrize(
    ("old", "new"),
    [("or-spelling.toon", "two-rules.toon"), ("two-rules.toon", "or-spelling.toon"), ("readme.toon", "renamed.toon")],
)
def test_two_spellings_of_one_policy_are_equivalent(old: str, new: str) -> None:
    """`a or b -> keep` and two rules decide alike (their rule names and reasons differ); so does a rename."""
    o, n = (load_side(str(DATA / f), Config()) for f in (old, new))
    s = diff_symbolic(o.sampler, n.sampler, (ERRORS,), BUDGET_MS)
    assert (s.status, s.complete, s.witnesses) == ("equivalent", True, ()), s.reason


def test_an_error_trace_at_risk_is_looked_for_where_the_first_witness_is_not_one(tmp_path: Path) -> None:
    """The kind of change "kept by keep-checkout, now sampled" has a witness that need not be an error trace; the
    search then asks for an error trace taking the same path."""
    old = RulesBasedSampler(
        (
            Rule("keep-checkout", (C((ROUTE,), Operator.EQ, "/checkout"),), sample_rate=1),
            Rule("rest", (), sample_rate=10),
        )
    )
    new = RulesBasedSampler((Rule("rest", (), sample_rate=10),))
    s = diff_symbolic(old, new, (ERRORS,), BUDGET_MS)
    assert s.status == "different" and s.complete
    assert {(w.old.rule, w.new.rule) for w in s.witnesses} == {("keep-checkout", "rest")}
    risky = s.at_risk("errors")
    assert risky and all(any(x.get("error") is True for x in w.spans) for w in risky)
    for k, w in enumerate(s.witnesses):
        _confirm(old, new, w, tmp_path, f"w{k}")


def test_every_kind_of_change_is_listed(tmp_path: Path) -> None:
    """Three kinds of change, each a pair of deciding rules; pairs whose outcomes agree are not changes."""
    old = RulesBasedSampler(
        (
            Rule("keep-errors", (C(("error",), Operator.EQ, True),), sample_rate=1),
            Rule("probes", (C((ROUTE,), Operator.IN, ("/healthz", "/livez")),), drop=True),
            Rule("rest", (), sample_rate=100),
        )
    )
    new = RulesBasedSampler(
        (
            Rule("probes", (C((ROUTE,), Operator.EQ, "/healthz"),), drop=True),
            Rule("keep-errors", (C(("error",), Operator.EQ, True),), sample_rate=1),
            Rule("rest", (), sample_rate=20),
        )
    )
    s = diff_symbolic(old, new, (ERRORS,), BUDGET_MS)
    assert s.status == "different" and s.complete, s.reason
    pairs = {(w.old.rule, w.new.rule) for w in s.witnesses}
    assert pairs == {("keep-errors", "probes"), ("probes", "rest"), ("rest", "rest")}
    for k, w in enumerate(s.witnesses):
        _confirm(old, new, w, tmp_path, f"w{k}")


EMA = Sampler(SamplerKind.EMA_DYNAMIC, {"GoalSampleRate": 10, "FieldList": (ROUTE,)})


def test_a_top_level_sampler_is_a_catch_all(tmp_path: Path) -> None:
    """OLD: a top-level EMADynamicSampler; NEW: keep errors, then the same sampler as a rule's. The only change is
    error traces (the sampler's settings are the same, so the rest is decided alike)."""
    old = SamplerConfig(others=(EMA,))
    new = SamplerConfig(
        rules_based=RulesBasedSampler(
            (Rule("keep-errors", (C(("error",), Operator.EQ, True),), sample_rate=1), Rule("rest", (), samplers=(EMA,)))
        )
    )
    s = diff_symbolic(old, new, (ERRORS,), BUDGET_MS)
    assert s.status == "different" and s.complete, s.reason
    (w,) = s.witnesses
    assert (w.old.rule, w.old.sampler, w.new.rule) == (None, SamplerKind.EMA_DYNAMIC, "keep-errors")
    assert "by the top-level EMADynamicSampler" in w.description() and w.at_risk == ()  # kept now: no risk
    _confirm(old, new, w, tmp_path, "w")
    back = diff_symbolic(new, old, (ERRORS,), BUDGET_MS)
    assert [x.at_risk for x in back.witnesses] == [("errors",)]


def test_stateful_samplers_are_alike_only_with_the_same_settings() -> None:
    other = Sampler(SamplerKind.EMA_DYNAMIC, {"GoalSampleRate": 20, "FieldList": (ROUTE,)})
    same = diff_symbolic(SamplerConfig(others=(EMA,)), SamplerConfig(others=(EMA,)), (), BUDGET_MS)
    assert same.status == "equivalent"
    s = diff_symbolic(SamplerConfig(others=(EMA,)), SamplerConfig(others=(other,)), (), BUDGET_MS)
    assert s.status == "different" and len(s.witnesses) == 1
    assert "actual rate set by traffic" in s.witnesses[0].description()


def test_deterministic_samplers_by_rate() -> None:
    det = Sampler(SamplerKind.DETERMINISTIC, {"SampleRate": 10})
    plain = RulesBasedSampler((Rule("rest", (), sample_rate=10),))
    s = diff_symbolic(SamplerConfig(others=(det,)), plain, (), BUDGET_MS)
    (w,) = s.witnesses  # 1 in 10 by trace-id hash is not 1 in 10 at random
    assert w.old.keep == "deterministic" and "by trace-id hash" in w.description()
    assert diff_symbolic(SamplerConfig(others=(det,)), SamplerConfig(others=(det,)), (), BUDGET_MS).status == (
        "equivalent"
    )


def test_what_the_model_does_not_cover_is_unknown_with_the_reason() -> None:
    nested = RulesBasedSampler(
        (Rule("a", (C((ROUTE,), Operator.EQ, "/x"),), sample_rate=1), Rule("rest", (), sample_rate=5)),
        check_nested_fields=True,
    )
    s = diff_symbolic(nested, RulesBasedSampler((Rule("rest", (), sample_rate=5),)), (), BUDGET_MS)
    assert s.status == "unknown" and "CheckNestedFields" in s.reason and not s.witnesses


def test_out_of_time_says_so() -> None:
    old, new = (load_side(str(DATA / f), Config()) for f in ("readme.toon", "reviewed.toon"))
    s = diff_symbolic(old.sampler, new.sampler, (ERRORS,), 1)
    assert s.status in ("unknown", "different") and not s.complete
    assert "--solver-timeout" in s.reason
