"""The prover on purpose-built corpora (ingested for real from flat JSON lines): each check passes and fails on
purpose, with the right counterexamples; the README example on the sample corpus; both engines agree."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from nectar.cli import main
from nectar.config import Config
from nectar.corpus.ingest import ingest_paths
from nectar.corpus.layout import Corpus
from nectar.engine.api import evaluate
from nectar.policy import parse_policy
from nectar.prove import prove_policy, render_junit, render_text, to_json

REPO = Path(__file__).resolve().parent.parent
README_POLICY = (REPO / "tests" / "data" / "policy" / "identity" / "readme.toon").read_text(encoding="utf-8")


def span(trace: str, sid: str, parent: str | None, t: int, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "trace.trace_id": trace,
        "trace.span_id": sid,
        "timestamp": f"2026-11-01T12:{t // 60:02d}:{t % 60:02d}Z",
        "duration_ms": 10.0,
        "service.name": "api",
    }
    if parent:
        event["trace.parent_id"] = parent
    event.update(fields)
    return event


def make_corpus(tmp_path: Path, events: list[dict[str, Any]], name: str = "corpus") -> Corpus:
    src = tmp_path / f"{name}.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    ingest_paths([str(src)], tmp_path / name)
    return Corpus.open(tmp_path / name)


@pytest.fixture
def small(tmp_path: Path) -> Corpus:
    """10 traces over 100 s: t0 has a 503, t1 a 500 on a child span only, t2 is slow, t3..t9 plain (2 spans)."""
    events = [
        span("t0", "a", None, 0, **{"http.status_code": 503}),
        span("t1", "a", None, 10),
        span("t1", "b", "a", 10, **{"http.response.status_code": 500, "service.name": "db"}),
        span("t2", "a", None, 20, duration_ms=9000.0),
    ]
    for i in range(3, 10):
        events += [span(f"t{i}", "a", None, 10 * i, **{"http.route": "/x"}), span(f"t{i}", "b", "a", 10 * i)]
    return make_corpus(tmp_path, events)


def policy(rules: str, budget: str = "1000", must_keep: str = "") -> Any:
    n = rules.strip().count("\n") + 1
    head = "nectar_policy{version,name,budget_per_second,rules" + (",must_keep" if must_keep else "") + "}:\n"
    text = head + f"  1\n  test\n  {budget}\n  rules[{n}]{{name,description,match,action,priority}}:\n"
    text += "".join("    " + ln.strip() + "\n" for ln in rules.strip().splitlines())
    if must_keep:
        m = must_keep.strip().count("\n") + 1
        text += f"  must_keep[{m}]{{name,match}}:\n" + "".join(
            "    " + ln.strip() + "\n" for ln in must_keep.strip().splitlines()
        )
    return parse_policy(text, "test.toon")


def check(report: Any, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


def test_readme_policy_passes_on_purpose_built_corpus(small: Corpus) -> None:
    report = prove_policy(parse_policy(README_POLICY, "p.toon"), small, Config())
    assert report.passed
    errors = check(report, "errors")
    assert errors.status == "pass" and errors.figures["declared"] == 2  # t0 and t1 (500 on a child span)
    assert check(report, "fallback").status == "pass"
    assert check(report, "must_keep").status == "skip"


def test_error_check_fails_with_the_right_counterexamples(small: Corpus) -> None:
    p = policy("""
        keep-slow,"",duration > 5s,keep,10
        rest,"",true,sample(0.1),0
    """)
    report = prove_policy(p, small, Config(), max_examples=5)
    errors = check(report, "errors")
    assert errors.status == "fail" and not report.passed
    assert [c.trace_id for c in errors.counterexamples] == ["t0", "t1"]
    t1 = errors.counterexamples[1]
    assert (t1.rule, t1.keep, t1.rate, t1.reason) == ("rest", "sampled", 10, "rules/trace/rest")
    assert t1.values == ({"span_id": "b", "http.response.status_code": 500},)  # only the fields that matter
    assert "trace_id = 't1'" in t1.sql


def test_error_definition_is_configurable(small: Corpus) -> None:
    p = policy("""
        keep-503,"",http.status == 503,keep,10
        rest,"",true,drop,0
    """)
    assert check(prove_policy(p, small, Config()), "errors").status == "fail"  # t1's 500 is dropped
    only_503 = Config(error_definition="http.status == 503")
    report = prove_policy(p, small, only_503)
    assert check(report, "errors").status == "pass" and report.error_definition == "http.status == 503"


def test_fallback_fails_without_a_catch_all(small: Corpus) -> None:
    p = policy("""keep-errors,"",http.status >= 500,keep,10""")
    fb = check(prove_policy(p, small, Config()), "fallback")
    assert fb.status == "fail" and fb.figures["undecided_traces"] == 8
    assert fb.counterexamples[0].trace_id == "t2" and fb.counterexamples[0].reason == "no rule matched"


def test_fallback_fails_when_rules_follow_the_catch_all(small: Corpus) -> None:
    p = policy("""
        rest,"",true,keep,10
        late,"",http.status >= 500,keep,0
    """)
    fb = check(prove_policy(p, small, Config()), "fallback")
    assert fb.status == "fail" and fb.figures["unreachable"] == ["late"]


def test_must_keep_classes_and_trace_id_file(small: Corpus) -> None:
    p = policy(
        """
        keep-errors,"",http.status >= 500,keep,10
        rest,"",true,sample(0.5),0
        """,
        must_keep="""slow,duration > 5s""",
    )
    mk = check(prove_policy(p, small, Config()), "must_keep")
    assert mk.status == "fail" and mk.summary.startswith("must-keep coverage 0/1")
    assert [c.trace_id for c in mk.counterexamples] == ["t2"]
    (small.root / "must-keep.txt").write_text("# critical\nt0\nt9\nnot-in-corpus\n")
    mk = check(prove_policy(p, small, Config()), "must_keep")
    assert mk.figures["declared"] == 3 and mk.figures["kept"] == 1  # t0 kept; t2 and t9 sampled
    assert mk.figures["listed_ids_not_in_corpus"] == 1
    assert [c.trace_id for c in mk.counterexamples] == ["t2", "t9"]


def test_budget_expected_and_upper_bound(small: Corpus) -> None:
    # Window: first to last span start, 0 s .. 90 s; 18 spans.
    p = policy("""rest,"",true,sample(0.5),0""", budget="0.2")
    report = prove_policy(p, small, Config())
    b = check(report, "budget")
    assert b.status == "pass"
    assert b.figures["expected_per_second"] == pytest.approx(18 * 0.5 / 90, rel=1e-5)
    assert b.figures["upper95_per_second"] > b.figures["expected_per_second"]
    # The corpus is 1 in 10 of real traffic: ten times the events.
    scaled = prove_policy(p, small, Config(corpus_sample_rate=10))
    b10 = check(scaled, "budget")
    assert b10.status == "fail" and b10.figures["expected_per_second"] == pytest.approx(180 * 0.5 / 90, rel=1e-5)
    # n per trace: 1, 2, 1, then 2 x 7; V = sum(n^2 p (1-p)) = 34 * 0.25; the rate goes inside the root.
    z = 1.6448536269514722
    assert b10.figures["upper95_per_second"] == pytest.approx((90 + z * math.sqrt(10 * 8.5)) / 90, abs=1e-4)


def test_budget_uses_the_replayed_rates(small: Corpus) -> None:
    # t0, t1 (3 spans) kept by keep-errors; the other traces go to a throughput rule whose replay over the corpus
    # gives each trace a rate. With the corpus 1 in 10 over 90 s, the budget is 10 * sum(spans / rate) / 90.
    p = policy(
        """
        keep-errors,"",http.status >= 500,keep,10
        rest,"",true,"throughput(per_second=1, keys=(service.name))",0
        """,
        budget="2",
    )
    report = prove_policy(p, small, Config(corpus_sample_rate=10))
    dec = report.decisions
    kept = sum(n / (1 if k == "true" else r) for n, k, r in dec.select("spans", "keep", "rate").iter_rows())
    b = check(report, "budget")
    assert b.figures["expected_per_second"] == pytest.approx(10 * kept / 90, rel=1e-4)
    assert [s.kind for s in report.samplers] == ["EMAThroughputSampler"]
    assert report.samplers[0].traces == dec.filter(dec["rule"] == "rest").height


def test_lints_on_the_corpus(small: Corpus) -> None:
    p = policy("""
        nothing,"","http.route == \\"/nope\\"",keep,30
        shadow-a,"","http.route == \\"/x\\"",keep,20
        shadow-b,"","http.route == \\"/x\\"",drop,10
        typo,"","htp.route == \\"/x\\"",keep,5
        rest,"",true,keep,0
    """)
    codes = {(lint.code, lint.rule) for lint in prove_policy(p, small, Config()).lints}
    assert ("N001", "nothing") in codes
    assert ("N002", "shadow-b") in codes
    assert ("N003", "typo") in codes
    strict = prove_policy(p, small, Config(), strict=True)
    assert all(c.passed for c in strict.checks) and not strict.passed


def test_both_engines_give_identical_reports(small: Corpus) -> None:
    p = policy(
        """
        keep-slow,"",duration > 5s,keep,10
        rest,"",true,sample(0.1),0
    """,
        must_keep="""api,"service.name == \\"db\\"" """,
    )
    a = to_json(prove_policy(p, small, Config(), engine="polars"))
    b = to_json(prove_policy(p, small, Config(), engine="duckdb"))
    a.pop("engine"), b.pop("engine")
    assert a == b


def test_renderings(small: Corpus) -> None:
    p = policy("""rest,"",true,sample(0.1),0""")
    report = prove_policy(p, small, Config())
    text = render_text(report)
    assert "  errors     FAIL on the corpus (0/2 kept) · symbolic: skipped\n" in text
    assert "\x1b[" not in text and "nectar sql" in text
    junit = render_junit(report)
    assert 'failures="1"' in junit and "<failure" in junit
    data = to_json(report)
    assert data["schema"] == "nectar-proof/2" and data["passed"] is False
    assert [c["name"] for c in data["checks"]] == ["fallback", "errors", "must_keep", "budget"]
    assert data["rules"][0]["decided_traces"] == 10


def test_readme_policy_on_the_bundled_sample_corpus(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy_path = tmp_path / "policy.toon"
    policy_path.write_text(README_POLICY)
    code = main(["prove", str(policy_path), "--corpus", str(REPO / "corpus"), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["passed"]
    errors = out["checks"][1]["corpus"]
    assert errors["status"] == "pass" and errors["figures"]["declared"] > 0  # the sample has error traces, all kept
    # The symbolic pass runs by default: the README policy keeps every error trace of any shape.
    assert [c["symbolic"]["status"] for c in out["checks"]] == ["proved", "proved", "skipped", "skipped"]
    assert {v["status"] for v in out["symbolic_rules"].values()} == {"proved"}
    broken = tmp_path / "broken.toon"
    broken.write_text(README_POLICY.replace("http.status >= 500,keep", "http.status >= 500,sample(0.5)"))
    code = main(["prove", str(broken), "--corpus", str(REPO / "corpus")])
    captured = capsys.readouterr()
    assert code == 1 and "errors     FAIL on the corpus" in captured.out and "decided by keep-errors" in captured.out


def test_realtraces_corpus(tmp_path: Path) -> None:
    from tests.conftest import shared_path

    src = shared_path("realtraces", "opensearch-observability", "otel-v1-apm-span-000001.json")
    ingest_paths([str(src)], tmp_path / "rt")
    corpus = Corpus.open(tmp_path / "rt")
    only_5xx = README_POLICY.replace("error == true or http.status >= 500", "http.status >= 500")
    report = prove_policy(parse_policy(only_5xx, "p.toon"), corpus, Config())  # the default error definition
    errors = check(report, "errors")
    assert errors.figures["declared"] > 0
    assert errors.status == "fail"  # OTel ERROR-status traces without a 5xx fall to sample(0.01)
    assert all(c.rule == "sample-rest" for c in errors.counterexamples)
    assert check(prove_policy(parse_policy(README_POLICY, "p.toon"), corpus, Config()), "errors").status == "pass"


def test_clauses_of_one_or_rule_are_not_reported_as_shadowing_each_other(small: Corpus) -> None:
    p = policy("""
        either,"","http.route == \\"/x\\" or exists(http.route)",keep,10
        rest,"",true,keep,0
    """)
    report = prove_policy(p, small, Config())
    assert [r["decided_traces"] for r in to_json(report)["rules"]][:2] == [7, 0]  # either#2 never decides...
    assert not [lint for lint in report.lints if lint.code in ("N001", "N002")]  # ...and that is no news


PROBE_FIRST = """nectar_policy{version,name,budget_per_second,rules}:
  1
  probes-first
  10000
  rules[3]{name,description,match,action,priority}:
    health-checks,Probes are noise,"http.route == \\"/livez\\"",drop,100
    keep-errors,Retain all errors,error == true or http.status >= 500,keep,90
    sample-rest,Sample remaining traffic,true,sample(0.01),0
"""


def test_probe_before_errors_is_refuted_and_the_witness_replays(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The bundled sample holds no /livez probe, let alone a failed one: the corpus check passes, the symbolic one
    # finds the probe that returns 503 in production.
    path = tmp_path / "probes.toon"
    path.write_text(PROBE_FIRST)
    witnesses = tmp_path / "w.jsonl"
    argv = ["prove", str(path), "--corpus", str(REPO / "corpus"), "--format", "json", "--witness-out", str(witnesses)]
    code = main(argv)
    out = json.loads(capsys.readouterr().out)
    errors = out["checks"][1]
    assert code == 1 and out["passed"] is False
    assert errors["corpus"]["status"] == "pass"
    assert errors["symbolic"]["status"] == "refuted" and errors["symbolic"]["rule"] == "health-checks"
    reason = errors["symbolic"]["reason"]
    assert "/livez" in reason and "dropped by rule health-checks" in reason
    # The witness file is the ingest format; the compiled rules decide the witness as the verdict says, on every
    # engine, and it is an error trace.
    ingest_paths([str(witnesses)], tmp_path / "wc")
    corpus = Corpus.open(tmp_path / "wc")
    policy = parse_policy(PROBE_FIRST, "p.toon")
    from nectar.policy.lower import lower_policy

    rules = lower_policy(policy).rules_file()
    tid = errors["symbolic"]["witness"][0]["trace.trace_id"]
    for engine in ("polars", "duckdb", "reference"):
        rows = evaluate(rules, corpus, engine=engine).decisions.filter(pl.col("trace_id") == tid)
        assert rows.select("rule", "keep").rows() == [("health-checks", "false")], engine
    report = prove_policy(policy, corpus, Config())
    assert check(report, "errors").status == "fail"  # on the witness corpus the corpus check fails too
    # Text: both verdicts on one line.
    main(["prove", str(path), "--corpus", str(REPO / "corpus")])
    text = capsys.readouterr().out
    assert "errors     PASS on the corpus (" in text and "· symbolic: REFUTED" in text
    assert "Result: the policy FAILS its checks: errors (refuted for all traces)" in text


def test_symbolic_off(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "probes.toon"
    path.write_text(PROBE_FIRST)
    code = main(["prove", str(path), "--corpus", str(REPO / "corpus"), "--format", "json", "--symbolic", "off"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and {c["symbolic"]["status"] for c in out["checks"]} == {"skipped"}
    assert out["symbolic_rules"] == {}


def test_must_keep_file_not_utf8_is_a_positioned_error(small: Corpus) -> None:
    from nectar.errors import NectarError

    (small.root / "must-keep.txt").write_bytes(b"t0\n\xff\xfe\n")
    p = policy('rest,"",true,keep,0')
    with pytest.raises(NectarError) as info:
        prove_policy(p, small, Config())
    assert "must-keep.txt is not UTF-8" in info.value.message
    assert info.value.span is not None and (info.value.span.line, info.value.span.column) == (2, 1)
