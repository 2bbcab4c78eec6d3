"""Stateful samplers replayed over a corpus: trace keys as Refinery builds them, one dynsampler per shared config,
the same simulated rates on every engine, and the reports that show them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nectar.cli import main
from nectar.corpus.layout import Corpus
from nectar.engine import reference, stateful
from nectar.engine.api import ENGINES, evaluate
from nectar.refinery import dynsampler
from nectar.refinery.loader import load_rules
from nectar.refinery.model import Rule, RulesBasedSampler, Sampler
from tests.engine_helpers import corpus_from_spans

SAMPLE = Path(__file__).resolve().parents[1] / "corpus"
B = "\u2022"

RULES = """
RulesVersion: 2
Samplers:
  __default__:
    RulesBasedSampler:
      Rules:
        - Name: "errors"
          Conditions:
            - Field: "error"
              Operator: "="
              Value: true
              Datatype: "bool"
          Sampler:
            EMADynamicSampler:
              GoalSampleRate: 3
              AdjustmentInterval: "30s"
              FieldList: ["service.name", "root.http.route"]
        - Name: "errors again"
          Conditions:
            - Field: "http.status_code"
              Operator: ">="
              Value: 500
          Sampler:
            EMADynamicSampler:
              GoalSampleRate: 3
              FieldList: ["root.http.route", "service.name"]
        - Name: "everything else"
          Sampler:
            EMAThroughputSampler:
              GoalThroughputPerSec: 8
              UseClusterSize: true
              FieldList: ["service.name", "root.http.route", "http.status_code"]
              UseTraceLength: true
  windowed:
    WindowedThroughputSampler:
      GoalThroughputPerSec: 1
      FieldList: ["service.name", "http.route"]
      MaxKeys: 5
  total:
    TotalThroughputSampler:
      GoalThroughputPerSec: 1
      FieldList: ["service.name"]
  dyn:
    DynamicSampler:
      SampleRate: 10
      FieldList: ["root.http.route", "http.method"]
"""


@pytest.fixture(scope="module")
def rules_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("rules") / "rules.yaml"
    p.write_text(RULES, encoding="utf-8")
    return p


def _span(tid: str, sid: str, parent: str | None, t: float, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"trace.trace_id": tid, "trace.span_id": sid, "timestamp": t, **fields}
    if parent is not None:
        out["trace.parent_id"] = parent
    return out


# ---------------------------------------------------------------------------------------------------------------
# Trace keys


def _keys(corpus: Corpus, fields: list[str], utl: bool) -> tuple[dict[str, str], dict[str, str]]:
    ids = pl.Series(sorted({t.trace_id for t in reference.corpus_traces(corpus)}))
    vec = dict(stateful.build_keys(corpus, ids, fields, utl).rows())
    ref = dict(reference.trace_keys(corpus, ids, fields, utl).rows())
    return vec, ref


def test_key_examples_from_refinery(tmp_path: Path) -> None:
    spans = [
        # FieldList [b, a], a = {x}, b = {1, 2}: fields sorted, values sorted, a bullet after each, a comma per field
        _span("t1", "r", None, 1000.5, a="x", b=1),
        _span("t1", "c", "r", 1000.6, b=2),
        # one span {http.status_code: 200}; with UseTraceLength the span count follows
        _span("t2", "r", None, 1000.7, **{"http.status_code": 200}),
    ]
    corpus = corpus_from_spans(spans, tmp_path)
    vec, ref = _keys(corpus, ["b", "a"], False)
    assert vec == ref
    assert vec["t1"] == f"x{B},1{B}2{B},"
    vec, ref = _keys(corpus, ["http.status_code"], True)
    assert vec == ref == {"t1": "2", "t2": f"200{B},1"}


def test_key_corners(tmp_path: Path) -> None:
    spans = [
        # floats: 'f' formatting on span fields (1000000), %v on root fields (1e+06); "" never written; null <nil>
        _span("t1", "r1", None, 1000.5, f=1e6, s="", n=None, ok=True),
        _span("t1", "c1", "r1", 1000.6, f=0.5, s="b", n="v", ok=False),
        # two roots: the last to arrive is the root; a log event is never a root
        _span("t2", "r2", None, 1000.7, f=2.0),
        _span("t2", "r3", None, 1000.8, f=3.0, **{"meta.signal_type": "log"}),
        _span("t2", "r4", None, 1000.9, f=4.5),
        # no root at all: root fields write nothing
        _span("t3", "c3", "gone", 1001.0, f=7.0, s=""),
    ]
    corpus = corpus_from_spans(spans, tmp_path)
    vec, ref = _keys(corpus, ["f", "root.f", "s", "n", "ok", "meta.refinery.root"], True)
    assert vec == ref
    # sorted fields: f, meta.refinery.root, n, ok, (root.f), s
    assert vec["t1"] == f"0.5{B}1000000{B},false{B}true{B},<nil>{B}v{B},false{B}true{B},b{B},1e+06,2"
    assert vec["t2"] == f"2{B}3{B}4.5{B},true{B},4.5,3"  # the log event has no meta.refinery.root
    assert vec["t3"] == f"7{B},false{B},,1"


def test_key_stores_at_most_99_values(tmp_path: Path) -> None:
    spans = [_span("t", f"s{i}", None if i == 0 else "s0", 1000 + i / 1000, a=f"v{i:03d}", b=i) for i in range(120)]
    corpus = corpus_from_spans(spans, tmp_path)
    vec, ref = _keys(corpus, ["a", "b"], False)
    assert vec == ref
    values = vec["t"].rstrip(",").split(B)
    assert len([v for v in values if v]) == 99  # the 100th distinct value is counted, not stored; b never starts


_VALUES = st.one_of(
    st.text(alphabet="ab\u00e9,", max_size=3), st.integers(-3, 3), st.sampled_from([0.5, 1e6, -0.0, 2.0]),
    st.booleans(), st.none(),
)  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(
    traces=st.lists(
        st.lists(
            st.tuples(st.booleans(), st.dictionaries(st.sampled_from(["a", "b", "c"]), _VALUES, max_size=3)),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=5,
    ),
    fields=st.lists(st.sampled_from(["a", "b", "c", "root.a", "root.c", "meta.refinery.root"]), max_size=4),
    utl=st.booleans(),
)
def test_vectorized_keys_equal_the_transcription(
    traces: list[list[tuple[bool, dict[str, Any]]]],
    fields: list[str],
    utl: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    spans = []
    for i, trace in enumerate(traces):
        for j, (root, values) in enumerate(trace):
            spans.append(_span(f"t{i}", f"s{i}-{j}", None if root else "p", 1000 + i + j / 10, **values))
    corpus = corpus_from_spans(spans, tmp_path_factory.mktemp("keys"))
    vec, ref = _keys(corpus, fields, utl)
    assert vec == ref


# ---------------------------------------------------------------------------------------------------------------
# Instances and replay


def test_shared_dynsampler_instances(rules_path: Path) -> None:
    rf = load_rules(rules_path)
    insts = stateful.instances(rf.sampler_for(None))
    # the two EMADynamic rules share type, goal and (sorted) field list: ONE dynsampler, created by the first rule
    assert [[m.rule for m in i.members] for i in insts] == [["errors", "errors again"], ["everything else"]]
    assert insts[0].settings.interval_ns == 30 * dynsampler.NS
    # UseClusterSize: Refinery divides the goal by the peers (integer division, at least 1)
    assert stateful.instances(rf.sampler_for(None), cluster_size=3)[1].settings.goal_throughput == 2.0
    assert stateful.instances(rf.sampler_for(None), cluster_size=100)[1].settings.goal_throughput == 1.0


@pytest.mark.parametrize("env", [None, "windowed", "total", "dyn"])
def test_engines_agree_on_simulated_rates(rules_path: Path, env: str | None) -> None:
    rf = load_rules(rules_path)
    corpus = Corpus.open(SAMPLE)
    results = {e: evaluate(rf, corpus, engine=e, env=env) for e in ENGINES}
    base = results["duckdb"].decisions
    for e in ENGINES:
        assert results[e].decisions.equals(base), e
        assert [r.to_json() for r in results[e].samplers] == [r.to_json() for r in results["duckdb"].samplers]
    assert base.get_column("rate").n_unique() > 2  # the rates vary with traffic: not one nominal rate


def test_replay_stream_matches_a_direct_simulation(rules_path: Path) -> None:
    """The rates the engines write equal simulating the decided traces by hand, in decision order."""
    rf = load_rules(rules_path)
    corpus = Corpus.open(SAMPLE)
    res = evaluate(rf, corpus, env="total")
    times = stateful.decision_times(corpus)
    keys = stateful.build_keys(corpus, res.decisions.get_column("trace_id"), ["service.name"], False)
    stream = res.decisions.join(keys, on="trace_id").join(times, on="trace_id").sort("t_ns", "last_arrival", "trace_id")
    names = sorted(set(stream.get_column("key").to_list()))
    ids = [names.index(k) for k in stream.get_column("key").to_list()]
    settings_ = dynsampler.settings_for(Sampler("TotalThroughputSampler", {"GoalThroughputPerSec": 1}))
    sim = dynsampler.simulate(
        settings_, stream.get_column("t_ns").to_numpy(), ids, stream.get_column("spans").to_numpy()
    )
    assert stream.get_column("rate").to_list() == dynsampler.refinery_rate(sim.rates).tolist()


def test_cluster_size_raises_rates(rules_path: Path) -> None:
    rf = load_rules(rules_path)
    corpus = Corpus.open(SAMPLE)
    one = evaluate(rf, corpus).decisions.filter(pl.col("rule") == "everything else")
    four = evaluate(rf, corpus, cluster_size=4).decisions.filter(pl.col("rule") == "everything else")
    assert four.get_column("rate").sum() > one.get_column("rate").sum()


def test_trace_without_timestamp_is_decided_at_the_start(tmp_path: Path) -> None:
    corpus = corpus_from_spans([{"trace.trace_id": f"t{i}", "name": "n"} for i in range(5)], tmp_path)
    ema = Sampler("EMADynamicSampler", {"GoalSampleRate": 7, "FieldList": ["name"]})
    for engine in ENGINES:
        res = evaluate(ema, corpus, engine=engine)
        assert set(res.decisions.get_column("rate").to_list()) == {7}  # the starting rate: no update yet
        assert res.samplers[0].first_update_s is None and "never updated" in res.samplers[0].note


def test_no_stateful_sampler_no_runs(tmp_path: Path) -> None:
    corpus = corpus_from_spans([_span("t", "s", None, 1000.5, a=1)], tmp_path)
    res = evaluate(RulesBasedSampler((Rule("all", sample_rate=3),)), corpus)
    assert res.samplers == ()


# ---------------------------------------------------------------------------------------------------------------
# Reports


def test_replay_reports_simulated_samplers(rules_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(rules_path), "--corpus", str(SAMPLE), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    runs = data["samplers"]
    assert [r["kind"] for r in runs] == ["EMADynamicSampler", "EMAThroughputSampler"]
    assert runs[0]["rules"] == ["errors", "errors again"]
    top = runs[1]["top_keys"]
    assert 1 <= len(top) <= 5 and all(k["rate_over_time"] for k in top)
    assert runs[1]["first_update_s"] == 15.0 and runs[1]["traces_at_starting_rate"] > 0
    kept = sum(r["expected_kept_spans"] for r in data["rules"])
    assert kept == pytest.approx(data["totals"]["expected_kept_spans"], rel=1e-6)
    assert main(["replay", str(rules_path), "--corpus", str(SAMPLE)]) == 0
    text = capsys.readouterr().out
    assert "upper bound" not in text
    assert "Stateful sampler: EMAThroughputSampler (everything else)" in text
    assert "starting rate 10" in text
    assert main(["replay", str(rules_path), "--corpus", str(SAMPLE), "--format", "json", "--cluster-size", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["samplers"][1]["settings"]["goal_throughput_per_sec"] == 1.0


def test_a_stateful_sampler_never_guarantees_a_trace(tmp_path: Path) -> None:
    """Errors decided by a dynamic sampler fail the errors check even where its replayed rate is 1 (at this traffic):
    the rate depends on traffic, so it promises nothing."""
    from nectar.config import Config
    from nectar.policy import parse_policy
    from nectar.prove import prove_policy

    spans = [_span(f"t{i}", "r", None, 1000.5 + i, error=True, **{"service.name": "api"}) for i in range(3)]
    corpus = corpus_from_spans(spans, tmp_path)
    policy = parse_policy(
        "nectar_policy{version,name,rules}:\n  1\n  p\n  rules[1]{name,description,match,action,priority}:\n"
        '    all,"",true,"dynamic(rate=10, keys=(service.name))",0\n',
        "p.toon",
    )
    report = prove_policy(policy, corpus, Config())
    assert report.decisions.get_column("rate").to_list() == [10, 10, 10]  # the starting rate: no update yet
    errors = next(c for c in report.checks if c.name == "errors")
    assert errors.status == "fail" and errors.figures["not_always_kept"] == 3
    many = [_span(f"u{i}", "r", None, 1000.5 + i * 20, error=True, **{"service.name": "api"}) for i in range(6)]
    corpus = corpus_from_spans(many, tmp_path, "later")
    report = prove_policy(policy, corpus, Config())
    assert 1 in report.decisions.get_column("rate").to_list()  # after an update: rate 1 for a quiet key
    errors = next(c for c in report.checks if c.name == "errors")
    assert errors.status == "fail" and errors.figures["not_always_kept"] == 6
