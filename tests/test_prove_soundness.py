"""No green verdict that means nothing (issue 13, part 2 and 3): a check with nothing to check is VACUOUS (never
PASS; --strict and compile refuse it), the default error definition counts OTel's error status, waivers declared in
the policy turn only their own rule's violations into WAIVED, and the nectar-proof/2 shape. Corpora are ingested for
real from flat JSON lines; the CLI runs as a user runs it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from nectar.cli import main
from nectar.config import DEFAULT_ERROR_DEFINITION, Config, load_config
from nectar.corpus.layout import Corpus
from nectar.corpus.synth import synth_corpus
from nectar.policy import parse_policy
from nectar.prove import prove_policy, render_junit, render_text, to_json
from nectar.prove.checks import CheckResult, SymbolicResult
from nectar.prove.report import check_line
from tests.test_prove import make_corpus, span

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "corpus"
PROBE = '"http.route == \\"/healthz\\""'


def policy_text(
    rules: Sequence[str], must_keep: Sequence[str] = (), accept: Sequence[str] = (), budget: str = ""
) -> str:
    """A policy from table rows (rules: name,match,action,priority)."""
    keys = ["version", "name", *(["budget_per_second"] if budget else []), "rules"]
    keys += (["must_keep"] if must_keep else []) + (["accept"] if accept else [])
    out = ["nectar_policy{" + ",".join(keys) + "}:", "  1", "  test", *([f"  {budget}"] if budget else [])]
    out.append(f"  rules[{len(rules)}]{{name,match,action,priority}}:")
    out += [f"    {r}" for r in rules]
    if must_keep:
        out.append(f"  must_keep[{len(must_keep)}]{{name,match}}:")
        out += [f"    {m}" for m in must_keep]
    if accept:
        out.append(f"  accept[{len(accept)}]{{check,rule,reason}}:")
        out += [f"    {a}" for a in accept]
    return "\n".join(out) + "\n"


def prove(corpus: Corpus, rules: list[str], **kw: Any) -> Any:
    strict = kw.pop("strict", False)
    return prove_policy(parse_policy(policy_text(rules, **kw), "test.toon"), corpus, Config(), strict=strict)


def status(report: Any) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def check(report: Any, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


# A probe that failed (503 on /healthz), an OTel error (error: true, no 5xx), a 5xx, a slow trace, plain traffic.
EVENTS = [
    span("probe", "a", None, 0, **{"http.route": "/healthz", "http.status_code": 503}),
    span("otel", "a", None, 10),
    span("otel", "b", "a", 10, error=True, **{"service.name": "db"}),
    span("5xx", "a", None, 20, **{"http.response.status_code": 500}),
    span("slow", "a", None, 30, duration_ms=9000.0),
    *(span(f"t{i}", "a", None, 10 * i, **{"http.route": "/x"}) for i in range(4, 10)),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("soundness"), EVENTS)


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    out = tmp_path_factory.mktemp("empty") / "corpus"
    synth_corpus(out, spans=0, seed=7)
    return Corpus.open(out)


# ---------------------------------------------------------------------------------------------------- vacuous

KEEP_ALL = ["rest,true,keep,0"]
VACUOUS_CASES = [
    # (name, corpus fixture, rules, must_keep, budget, expected statuses)
    ("empty corpus", "empty", KEEP_ALL, ['slow,"duration > 5s"'], "100",
     {"fallback": "pass", "errors": "vacuous", "must_keep": "vacuous", "budget": "vacuous"}),
    ("no error trace", "plain", KEEP_ALL, [], "",
     {"fallback": "pass", "errors": "vacuous", "must_keep": "skip", "budget": "skip"}),
    ("a class matching nothing", "corpus", KEEP_ALL, ['slow,"duration > 5s"', 'vip,"exists(user.tier)"'], "",
     {"fallback": "pass", "errors": "pass", "must_keep": "vacuous", "budget": "skip"}),
    ("a failure outranks vacuity", "corpus", ["rest,true,sample(0.5),0"],
     ['slow,"duration > 5s"', 'vip,"exists(user.tier)"'], "",
     {"fallback": "pass", "errors": "fail", "must_keep": "fail", "budget": "skip"}),
    ("everything checked", "corpus", KEEP_ALL, ['slow,"duration > 5s"'], "1000",
     {"fallback": "pass", "errors": "pass", "must_keep": "pass", "budget": "pass"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("corpus_name", "rules", "must_keep", "budget", "expected"),
    [c[1:] for c in VACUOUS_CASES],
    ids=[c[0] for c in VACUOUS_CASES],
)
def test_vacuous_checks(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    corpus_name: str,
    rules: list[str],
    must_keep: list[str],
    budget: str,
    expected: dict[str, str],
) -> None:
    if corpus_name == "plain":
        corp = make_corpus(tmp_path, [span(f"t{i}", "a", None, i) for i in range(3)])
    else:
        corp = request.getfixturevalue(corpus_name)
    report = prove(corp, rules, must_keep=must_keep, budget=budget)
    assert status(report) == expected
    vacuous = [name for name, s in expected.items() if s == "vacuous"]
    assert report.vacuous == vacuous
    assert report.passed == ("fail" not in expected.values())
    assert prove(corp, rules, must_keep=must_keep, budget=budget, strict=True).passed is (report.passed and not vacuous)
    result = render_text(report).rstrip().splitlines()[-1]
    if "fail" in expected.values():
        assert result.startswith("Result: the policy FAILS its checks")
    elif vacuous:
        assert result == f"Result: no check failed; {len(vacuous)} vacuous (nothing to check): {', '.join(vacuous)}"
    else:
        assert result == "Result: all checks passed"


def test_a_must_keep_class_matching_nothing_is_named(corpus: Corpus) -> None:
    report = prove(corpus, KEEP_ALL, must_keep=['slow,"duration > 5s"', 'vip,"exists(user.tier)"'])
    mk = check(report, "must_keep")
    assert mk.figures["classes_matching_no_trace"] == ["vip"]
    assert mk.summary == "must-keep coverage 1/1, but class 'vip' matches no trace: that part was not checked"
    assert "  must_keep  VACUOUS on the corpus (1 class unmatched) · symbolic: skipped\n" in render_text(report)


def test_must_keep_ids_none_in_the_corpus_is_vacuous(tmp_path: Path) -> None:
    corp = make_corpus(tmp_path, [span("t1", "a", None, 0), span("t2", "a", None, 5)])
    (corp.root / "must-keep.txt").write_text("# none of these\nnope\n")
    mk = check(prove(corp, KEEP_ALL), "must_keep")
    assert mk.status == "vacuous" and "none of the 1 trace ids in must-keep.txt is in the corpus" in mk.summary
    (corp.root / "must-keep.txt").write_text("t1\nnope\n")
    mk = check(prove(corp, KEEP_ALL), "must_keep")
    assert mk.status == "pass" and mk.note == "1 listed ids are not in the corpus"


def test_empty_project_prove_and_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: `nectar init p --spans 0 && cd p && nectar prove && nectar compile`."""
    assert main(["init", str(tmp_path / "p"), "--spans", "0"]) == 0
    monkeypatch.chdir(tmp_path / "p")
    capsys.readouterr()
    assert main(["prove"]) == 0
    out = capsys.readouterr().out
    assert "all checks passed" not in out and "all 0" not in out
    # Nothing to check on the corpus, while the symbolic pass still proves the rules keep every error trace.
    assert "  errors     VACUOUS on the corpus (no traces) · symbolic: PROVED\n" in out
    assert out.rstrip().endswith("Result: no check failed; 2 vacuous (nothing to check): errors, budget")

    assert main(["prove", "--strict"]) == 1
    out = capsys.readouterr().out
    assert "Result: no check failed, but --strict fails on vacuous checks (nothing to check): errors, budget" in out

    assert main(["prove", "--format", "junit"]) == 0
    junit = capsys.readouterr().out
    assert '<skipped message="vacuous: the corpus has no traces: nothing was checked" />' in junit
    assert 'failures="0"' in junit
    assert main(["prove", "--format", "junit", "--strict"]) == 1
    assert '<failure message="vacuous (--strict): the corpus has no traces' in capsys.readouterr().out

    assert main(["compile"]) == 1
    err = capsys.readouterr().err
    assert "the proof is vacuous (errors, budget: nothing to check), so the policy is not proven" in err
    assert "--allow-vacuous" in err and "all checks passed" not in err
    assert not Path("rules.yaml").exists() and not Path("nectar.lock").exists()

    assert main(["compile", "--allow-vacuous"]) == 0
    assert "vacuous, allowed by --allow-vacuous: errors, budget" in capsys.readouterr().out
    proof = json.loads(Path("nectar.lock").read_text())["proof"]
    assert (proof["proven"], proof["allow_vacuous"], proof["vacuous"]) == (True, True, ["errors", "budget"])
    assert proof["checks"]["errors"]["status"] == "vacuous"
    assert main(["compile", "--allow-vacuous", "--locked"]) == 0
    capsys.readouterr()
    assert main(["verify"]) == 0
    assert "accepted with --allow-vacuous: errors, budget" in capsys.readouterr().out
    assert main(["verify", "--require-proof"]) == 1
    capsys.readouterr()
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Waggle report: production-sampling  no check failed; 2 vacuous (nothing to check)")


# ---------------------------------------------------------------------------------------------------- errors


def test_the_default_error_definition_is_one_constant(tmp_path: Path) -> None:
    assert DEFAULT_ERROR_DEFINITION == "error == true or http.status >= 500"
    assert Config().error_definition == DEFAULT_ERROR_DEFINITION
    assert main(["init", str(tmp_path / "p"), "--spans", "10"]) == 0
    toml = (tmp_path / "p" / "nectar.toml").read_text()
    assert f'error_definition = "{DEFAULT_ERROR_DEFINITION}"' in toml
    assert load_config(tmp_path / "p").error_definition == DEFAULT_ERROR_DEFINITION


DROPS_OTEL_ERRORS = ["keep-5xx,http.status >= 500,keep,20", "drop-errors,error == true,drop,10", "rest,true,keep,0"]


def test_dropping_error_true_fails_by_default(corpus: Corpus) -> None:
    report = prove(corpus, DROPS_OTEL_ERRORS)
    errors = check(report, "errors")
    assert errors.status == "fail" and errors.figures["declared"] == 3  # probe (503), otel (error: true), 5xx
    assert [(c.trace_id, c.policy_rule) for c in errors.counterexamples] == [("otel", "drop-errors")]
    assert errors.counterexamples[0].values == ({"span_id": "b", "error": True},)
    text = render_text(report)
    assert f"Error traces: any span matching {DEFAULT_ERROR_DEFINITION} (prove.error_definition, the default)" in text
    assert to_json(report)["error_definition"] == DEFAULT_ERROR_DEFINITION
    only_5xx = prove_policy(
        parse_policy(policy_text(DROPS_OTEL_ERRORS), "t.toon"), corpus, Config(error_definition="http.status >= 500")
    )
    assert check(only_5xx, "errors").status == "pass"
    assert "(prove.error_definition, from nectar.toml)" in render_text(only_5xx)


def test_dropping_error_true_fails_on_the_sample_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.toon"
    path.write_text(policy_text(DROPS_OTEL_ERRORS))
    assert main(["prove", str(path), "--corpus", str(SAMPLE), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    errors = data["checks"][1]
    assert errors["name"] == "errors" and errors["status"] == "fail"
    figures = errors["corpus"]["figures"]
    assert figures["declared"] == 194 and figures["not_always_kept"] == 162
    assert {c["policy_rule"] for c in errors["corpus"]["counterexamples"]} == {"drop-errors"}


# ---------------------------------------------------------------------------------------------------- waivers

# Errors: the probe (503) is dropped by health-checks; the OTel error falls to the sampled catch-all.
WAIVER_RULES = [f"health-checks,{PROBE},drop,30", "keep-5xx,http.status >= 500,keep,20", "rest,true,sample(0.5),0"]
WAIVE_PROBES = "errors,health-checks,probes are never worth keeping"


def test_a_waiver_waives_its_rule_only(corpus: Corpus) -> None:
    report = prove(corpus, WAIVER_RULES, accept=[WAIVE_PROBES])
    errors = check(report, "errors")
    assert errors.status == "fail"  # the OTel error, decided by rest, is not waived
    assert [c.trace_id for c in errors.counterexamples] == ["otel"]
    assert errors.figures == {"declared": 3, "kept": 1, "not_always_kept": 2, "waived": 1}
    assert [(w.rule, w.reason, w.traces) for w in errors.waived] == [
        ("health-checks", "probes are never worth keeping", 1)
    ]
    assert errors.summary == (
        f"1 of 3 error traces ({DEFAULT_ERROR_DEFINITION}) are not always kept (1 more waived: 1 by health-checks)"
    )
    assert not report.warnings


def test_all_violations_waived(corpus: Corpus) -> None:
    accept = [WAIVE_PROBES, 'errors,rest,"background jobs, reviewed in #42"']
    report = prove(corpus, WAIVER_RULES, accept=accept)
    errors = check(report, "errors")
    assert errors.status == "waived" and report.passed and not errors.counterexamples
    assert [(w.rule, w.traces) for w in errors.waived] == [("health-checks", 1), ("rest", 1)]
    text = render_text(report)
    assert "  errors     WAIVED on the corpus (1/3 kept) · symbolic: skipped\n" in text
    assert "             waived: 1 trace decided by health-checks (probes are never worth keeping)\n" in text
    assert text.rstrip().endswith("Result: no check failed; 1 waived (violations accepted in the policy): errors")
    junit = render_junit(report)
    assert 'failures="0"' in junit and "waived: 1 trace decided by rest (background jobs, reviewed in #42)" in junit
    data = to_json(report)
    assert data["waivers"] == [
        {"check": "errors", "rule": "health-checks", "reason": "probes are never worth keeping", "traces": 1},
        {"check": "errors", "rule": "rest", "reason": "background jobs, reviewed in #42", "traces": 1},
    ]
    assert data["checks"][1]["corpus"]["waived"] == data["waivers"]


def test_explain_shows_waivers(corpus: Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.toon"
    path.write_text(policy_text(WAIVER_RULES, accept=[WAIVE_PROBES, "errors,rest,reviewed"]))
    assert main(["explain", str(path), "--corpus", str(corpus.root), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert md.startswith(
        "## Waggle report: test (no check failed; 1 waived (violations accepted in the policy): errors)"
    )
    assert "| errors | **WAIVED** |" in md and "waived: 1 trace decided by health-checks" in md


def test_an_unused_waiver_is_a_warning(corpus: Corpus) -> None:
    report = prove(corpus, WAIVER_RULES, accept=[WAIVE_PROBES, "errors,keep-5xx,never needed"])
    assert [(w.code, w.check, w.rule) for w in report.warnings] == [("unused-waiver", "errors", "keep-5xx")]
    text = render_text(report)
    assert "\nWarnings:\n  warning unused-waiver: the waiver of errors for rule 'keep-5xx' is unused" in text
    assert to_json(report)["warnings"][0]["rule"] == "keep-5xx"
    strict = prove(corpus, ["rest,true,keep,0"], accept=["errors,rest,never needed"], strict=True)
    assert not strict.passed and strict.strict_failures() == ["1 warning(s)"]


MK_RULES = [f"health-checks,{PROBE},drop,30", "rest,true,sample(0.5),0"]
MK_CLASSES = [f"probes,{PROBE}", "failures,http.status >= 500"]  # the probe trace is in both classes


@pytest.mark.parametrize(
    ("accept", "expected_status", "waived"),
    [
        # A class waiver covers only its class: the probe trace is also a `failures` trace, still failing.
        (["must_keep:probes,health-checks,probes are noise"], "fail", 0),
        (["must_keep:probes,health-checks,probes are noise", "must_keep:failures,health-checks,same"], "fail", 1),
        (["must_keep,health-checks,probes are noise"], "fail", 1),
        (["must_keep,health-checks,probes are noise", "must_keep,rest,5xx sampled on purpose"], "waived", 2),
    ],
)
def test_must_keep_waivers_per_class(corpus: Corpus, accept: list[str], expected_status: str, waived: int) -> None:
    mk = check(prove(corpus, MK_RULES, must_keep=MK_CLASSES, accept=accept), "must_keep")
    assert mk.status == expected_status and mk.figures["waived"] == waived
    assert mk.figures["declared"] == 2 and mk.figures["kept"] == 0
    assert len(mk.counterexamples) == 2 - waived


def test_compile_records_waivers_in_the_lock(
    corpus: Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.toon"
    path.write_text(policy_text(WAIVER_RULES, accept=[WAIVE_PROBES, "errors,rest,reviewed"]))
    lock = tmp_path / "nectar.lock"
    argv = ["compile", str(path), "--corpus", str(corpus.root), "-o", str(tmp_path / "r.yaml"), "--lock", str(lock)]
    assert main(argv) == 0
    assert "waived: errors by health-checks (1 trace), errors by rest (1 trace)" in capsys.readouterr().out
    proof = json.loads(lock.read_text())["proof"]
    assert proof["waivers"] == [
        {"check": "errors", "rule": "health-checks", "reason": "probes are never worth keeping", "traces": 1},
        {"check": "errors", "rule": "rest", "reason": "reviewed", "traces": 1},
    ]
    assert (proof["vacuous"], proof["allow_vacuous"]) == ([], False)
    assert proof["checks"]["errors"]["status"] == "waived"


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ("eror,health-checks,x", 5, "unknown check 'eror' in accept"),
        ("errors,health-check,x", 12, "accept names rule 'health-check', which is not a rule of this policy"),
        ("budget,rest,x", 5, "the budget check cannot be waived"),
        ('"must_keep:vip",rest,x', 5, "accept names must_keep class 'vip', which the policy does not declare"),
    ],
)
def test_a_bad_waiver_is_a_positioned_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, column: int, message: str
) -> None:
    path = tmp_path / "p.toon"
    text = policy_text(WAIVER_RULES, accept=[row])
    path.write_text(text)
    line = text.splitlines().index(f"    {row}") + 1
    assert main(["prove", str(path), "--corpus", str(SAMPLE)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:{line}:{column}: error: {message}")
    assert f"\n{line:>4} |     {row}\n" in err and "^" in err and "Traceback" not in err


def test_fmt_keeps_the_accept_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.toon"
    path.write_text(policy_text(WAIVER_RULES, accept=[WAIVE_PROBES, "must_keep : x ,rest,y"], must_keep=["x,true"]))
    assert main(["fmt", str(path)]) == 0
    text = path.read_text()
    assert text.splitlines()[-3:] == [
        "  accept[2]{check,rule,reason}:",
        "    errors,health-checks,probes are never worth keeping",
        '    "must_keep:x",rest,y',
    ]
    assert main(["fmt", str(path), "--check"]) == 0
    policy = parse_policy(text)
    assert [(a.check, a.rule, a.reason) for a in policy.accept] == [
        ("errors", "health-checks", "probes are never worth keeping"),
        ("must_keep:x", "rest", "y"),
    ]
    assert main(["fmt", str(path), "--style", "standard"]) == 0
    assert parse_policy(path.read_text()) == policy


# ---------------------------------------------------------------------------------------------------- output shape


def test_json_schema_nectar_proof_2(corpus: Corpus) -> None:
    data = to_json(prove(corpus, WAIVER_RULES, accept=[WAIVE_PROBES]))
    assert data["schema"] == "nectar-proof/2"
    assert {"passed", "verdict", "strict", "error_definition", "checks", "vacuous", "waivers", "warnings"} <= set(data)
    assert data["verdict"] == "the policy FAILS its checks: errors"
    for c in data["checks"]:
        assert set(c) == {"name", "status", "passed", "summary", "corpus", "symbolic"}
        assert set(c["corpus"]) == {"status", "figures", "counterexamples", "waived"}
        assert c["corpus"]["status"] == c["status"] in ("pass", "fail", "vacuous", "waived", "skip")
        assert c["passed"] is (c["status"] != "fail")
        assert c["symbolic"]["status"] == "skipped" and c["symbolic"]["reason"] and c["symbolic"]["witness"] == []
    budget = data["checks"][3]
    assert "no symbolic claim" in budget["symbolic"]["reason"]


def _check_lines(text: str) -> list[str]:
    names = ("fallback", "errors", "must_keep", "budget")
    return [ln for ln in text.splitlines() if ln[2:].split(" ", 1)[0] in names and " on the corpus" in ln]


def test_one_line_per_check_within_80_columns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "p.toon"
    path.write_text(policy_text(["rest,true,sample(0.5),0"], must_keep=['big,"span_count() > 1"'], budget="10"))
    argv = ["prove", str(path), "--corpus", str(SAMPLE), "--max-examples", "0", "--symbolic", "off"]
    assert main(argv) == 1
    lines = _check_lines(capsys.readouterr().out)
    assert [ln.split()[0] for ln in lines] == ["fallback", "errors", "must_keep", "budget"]
    assert all(len(ln) <= 80 and ln.endswith("· symbolic: skipped") for ln in lines), lines
    assert lines[1] == "  errors     FAIL on the corpus (0/194 kept) · symbolic: skipped"


@pytest.mark.parametrize("status", ["pass", "fail", "waived"])
def test_a_check_line_fits_80_columns_with_millions_of_traces(status: str) -> None:
    c = CheckResult("must_keep", status, "", brief="9,999,999/9,999,999 kept")
    line = "  " + check_line(c)
    assert len(line) <= 80 and "(9,999,999/9,999,999 kept)" in line, line
    vac = CheckResult("must_keep", "vacuous", "", brief="12 classes unmatched")
    assert len("  " + check_line(vac)) <= 80
    refuted = CheckResult("must_keep", status, "", brief="9,999,999/9,999,999 kept", symbolic=SymbolicResult("refuted"))
    assert len("  " + check_line(refuted)) <= 80 and check_line(refuted).endswith("· symbolic: REFUTED")
