"""`nectar diff` (nectar/diff): the corpus diff against two independent replays, reason-only changes, sides of every
kind (policy, rules file, git revision), --fail-on, the md and json forms, `explain --against`, the CI recipe.

The policies and rules files are data in tests/data/diff/.

* The corpus diff (one engine pass over both sides' rules) must equal a per-trace join of two independent
  ``evaluate`` runs (what ``nectar replay --per-trace`` writes for each side), on the sample corpus and a synthetic
  one, on all three engines: the transition table, the reason-only changes, the budget figures and the error and
  must-keep traces whose keep probability drops.
* The symbolic part finds a change the corpus does not contain (tests/test_diff_symbolic.py holds the solver to the
  engines); here it is seen through the CLI and --fail-on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from nectar.cli import main
from nectar.config import Config
from nectar.corpus.layout import Corpus
from nectar.diff import Side, diff_sides, load_side
from nectar.diff.model import DiffReport
from nectar.engine.api import ENGINES, evaluate
from nectar.engine.decision import keep_probability
from nectar.policy.expr import parse_expr, standalone_origin
from nectar.policy.lower import lower_predicate
from nectar.prove.checks import budget_figures
from nectar.refinery.model import SamplerKind

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "diff"
SAMPLE = REPO / "corpus"
CONFIG = Config()  # the defaults: error definition `error == true or http.status >= 500`
JSON_KEYS = {"schema", "changed_traces", "transitions", "reason_only_traces", "budget", "errors_newly_at_risk",
             "symbolic"}  # fmt: skip
TRANSITION_KEYS = {"old_rule", "old_keep", "old_rate", "new_rule", "new_keep", "new_rate", "traces", "spans"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    from nectar.corpus.synth import synth_corpus

    out = tmp_path_factory.mktemp("diff-synth") / "corpus"
    synth_corpus(out, spans=6_000, seed=11, sample_rate=10)
    return Corpus.open(out)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ---------------------------------------------------------------------------------------------- the oracle

_EVALUATED: dict[tuple[str, str, str], pl.DataFrame] = {}


def _decisions(side: Side, corpus: Corpus, engine: str) -> pl.DataFrame:
    """One side replayed on its own (memoized per corpus, engine and side)."""
    key = (str(corpus.root), engine, side.label)
    if key not in _EVALUATED:
        _EVALUATED[key] = evaluate(side.sampler, corpus, engine=engine).decisions
    return _EVALUATED[key]


def _keep(k: str) -> bool | str:
    return {"true": True, "false": False}.get(k, "sampled")


def oracle(old: Side, new: Side, corpus: Corpus, engine: str) -> dict[str, Any]:
    """The diff as two independent replays joined per trace give it, in the report's JSON terms."""
    o, n = _decisions(old, corpus, engine), _decisions(new, corpus, engine)
    joined = o.join(n, on="trace_id", how="inner", suffix="_n")
    assert joined.height == o.height == n.height
    text = CONFIG.error_definition
    err = lower_predicate(parse_expr(text, standalone_origin(text, "t"), CONFIG.aliases).expr)
    errors = set(evaluate(err, corpus, engine=engine).decisions.filter(pl.col("keep") == "true")["trace_id"])
    transitions: Counter[tuple[Any, ...]] = Counter()
    transition_spans: Counter[tuple[Any, ...]] = Counter()
    reasons: Counter[tuple[str, str]] = Counter()
    at_risk = 0
    po = o.select(keep_probability()).to_series().to_list()
    pn = n.select(keep_probability()).to_series().to_list()
    for row, p_old, p_new in zip(joined.iter_rows(named=True), po, pn, strict=True):
        both_drop = row["keep"] == row["keep_n"] == "false"
        alike = (row["keep"], row["rate"], row["sampler"]) == (row["keep_n"], row["rate_n"], row["sampler_n"])
        if both_drop or alike:
            if row["reason"] != row["reason_n"]:
                reasons[(row["reason"], row["reason_n"])] += 1
        else:
            shown_o = None if row["sampler"] in SamplerKind.STATEFUL else row["rate"]
            shown_n = None if row["sampler_n"] in SamplerKind.STATEFUL else row["rate_n"]
            key = (row["rule"], _keep(row["keep"]), shown_o, row["rule_n"], _keep(row["keep_n"]), shown_n)
            transitions[key] += 1
            transition_spans[key] += row["spans"]
        if row["trace_id"] in errors and p_new < p_old:
            at_risk += 1
    m = corpus.manifest
    budgets = [
        budget_figures(d, d.select(keep_probability()).to_series(), m.window_seconds, m.sample_rate).expected_per_second
        for d in (o, n)
    ]
    return {
        "transitions": {k: (v, transition_spans[k]) for k, v in transitions.items()},
        "reasons": dict(reasons),
        "errors_at_risk": at_risk,
        "declared_errors": len(errors),
        "budget": budgets,
    }


def _as_oracle(report: DiffReport) -> dict[str, Any]:
    j = report.to_json()
    transitions: dict[tuple[Any, ...], tuple[int, int]] = {}
    for t in j["transitions"]:
        assert set(t) == TRANSITION_KEYS
        key = (t["old_rule"], t["old_keep"], t["old_rate"], t["new_rule"], t["new_keep"], t["new_rate"])
        traces, spans = transitions.get(key, (0, 0))
        transitions[key] = (traces + t["traces"], spans + t["spans"])
    reasons: Counter[tuple[str, str]] = Counter()
    for r in j["reason_only_traces"]:
        reasons[(r["old_reason"], r["new_reason"])] += r["traces"]
    errors = next(a for a in j["errors_newly_at_risk"] if a["class"] == "errors")
    b = j["budget"]
    return {
        "transitions": transitions,
        "reasons": dict(reasons),
        "errors_at_risk": errors["traces"],
        "declared_errors": errors["declared"],
        "budget": [b["old"]["expected_per_second"], b["new"]["expected_per_second"]],
    }


PAIRS = {
    "reviewed": ("readme.toon", "reviewed.toon"),  # probes dropped first (errors among them), renamed, resampled
    "stateful": ("readme.toon", "dynamic.toon"),  # a dynamic sampler: its own replay per side
    "rules-vs-policy": ("hand-rules.yaml", "readme.toon"),  # a hand-written rules file and the policy replacing it
    "renamed": ("readme.toon", "renamed.toon"),  # reason-only changes
}
CASES = [("sample", "reviewed", e) for e in ENGINES] + [
    ("synth", pair, e) for pair in ("reviewed", "stateful", "rules-vs-policy") for e in ENGINES
]


@pytest.mark.parametrize(("which", "pair", "engine"), CASES)
def test_corpus_diff_equals_two_independent_replays(synth: Corpus, which: str, pair: str, engine: str) -> None:
    corpus = Corpus.open(SAMPLE) if which == "sample" else synth
    old, new = (load_side(str(DATA / f), CONFIG) for f in PAIRS[pair])
    report = diff_sides(old, new, CONFIG, corpus, engine=engine, solver_timeout_ms=None)
    want, got = oracle(old, new, corpus, engine), _as_oracle(report)
    assert got["transitions"] == want["transitions"]
    assert got["reasons"] == want["reasons"]
    assert (got["errors_at_risk"], got["declared_errors"]) == (want["errors_at_risk"], want["declared_errors"])
    assert got["budget"] == pytest.approx(want["budget"], rel=1e-8)
    assert report.corpus is not None and report.corpus.changed_traces == sum(v[0] for v in want["transitions"].values())
    assert "one engine pass" in report.corpus.passes


def test_the_sample_case_is_not_vacuous() -> None:
    """The reviewed pair changes decisions of each kind on the sample corpus: resampled, dropped probes, error
    traces among the probes (newly at risk), a must-keep class, renamed rules (reason-only)."""
    old, new = (load_side(str(DATA / f), CONFIG) for f in PAIRS["reviewed"])
    c = diff_sides(old, new, CONFIG, Corpus.open(SAMPLE), solver_timeout_ms=None).corpus
    assert c is not None
    pairs = {(t.old.rule, t.new.rule) for t in c.transitions}
    assert {("sample-rest", "drop-probes"), ("keep-errors#1", "drop-probes"), ("sample-rest", "keep-slow")} <= pairs
    risk = {a.name: a.traces for a in c.at_risk}
    assert risk["errors"] > 0 and risk["must_keep:checkout"] > 0
    assert c.reason_only and all(r.old_rule.startswith("keep-errors") for r in c.reason_only if r.old_rule)
    assert c.new_budget.expected_per_second is not None and c.old_budget.expected_per_second is not None
    assert c.new_budget.expected_per_second < c.old_budget.expected_per_second


def test_the_readme_example(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's report (dropping probes first): its corpus part, as printed there."""
    old, new = str(DATA / "readme.toon"), str(DATA / "drop-probes.toon")
    code, out, _ = _run(capsys, "diff", old, new, "--corpus", str(SAMPLE), "--symbolic", "off")
    assert code == 0
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "sample-rest: 1 in 100 -> drop-probes: drop 3,748 3,748" in lines
    assert "keep-errors#1: keep -> drop-probes: drop 7 7" in lines
    assert "expected kept events/s 0.4621 0.4497 -0.01236 (-2.67%)" in lines
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "  sample-rest: 1 in 100 -> drop-probes: drop   3,748  3,748" in readme


def test_renaming_a_rule_is_a_reason_only_change(capsys: pytest.CaptureFixture[str]) -> None:
    old, new = (str(DATA / f) for f in PAIRS["renamed"])
    code, out, _ = _run(capsys, "diff", old, new, "--corpus", str(SAMPLE), "--format", "json")
    assert code == 0
    j = json.loads(out)
    assert j["changed_traces"] == 0 and j["transitions"] == []
    (r,) = j["reason_only_traces"]  # every error trace of the sample corpus has error = true: keep-errors#1
    assert (r["old_reason"], r["new_reason"], r["traces"]) == (
        "rules/trace/keep-errors#1",
        "rules/trace/keep-failures#1",
        194,
    )
    assert j["symbolic"]["status"] == "equivalent"  # the decisions are the same for every possible trace
    assert j["budget"]["delta_per_second"] == 0
    # --fail-on any counts a reason change (Refinery writes the reason into the data); errors does not
    assert _run(capsys, "diff", old, new, "--corpus", str(SAMPLE), "--fail-on", "any", "--symbolic", "off")[0] == 1
    assert _run(capsys, "diff", old, new, "--corpus", str(SAMPLE), "--fail-on", "errors", "--symbolic", "off")[0] == 0


# ---------------------------------------------------------------------------------------------- the CLI


def test_a_change_the_corpus_does_not_contain(capsys: pytest.CaptureFixture[str]) -> None:
    """Probes dropped before errors are kept: the sample corpus has no failing /livez probe, so no corpus trace
    changes, but the symbolic part shows one and --fail-on errors fails on it."""
    old, new = str(DATA / "probes-after-errors.toon"), str(DATA / "probes-first.toon")
    code, out, err = _run(capsys, "diff", old, new, "--corpus", str(SAMPLE), "--format", "json", "--fail-on", "errors")
    assert code == 1, err
    j = json.loads(out)
    assert j["changed_traces"] == 0
    assert j["symbolic"]["status"] == "different" and j["symbolic"]["complete"] is True
    (w,) = j["symbolic"]["witnesses"]
    assert (w["old_rule"], w["old_keep"], w["new_rule"], w["new_keep"]) == (
        "keep-errors",
        True,
        "drop-livez",
        False,
    )
    assert w["at_risk"] == ["errors"] and any(s.get("http.route") == "/livez" for s in w["spans"])
    assert "--fail-on errors: witness: a trace with" in err
    # without the symbolic part, the corpus alone sees nothing
    assert _run(capsys, "diff", old, new, "--corpus", str(SAMPLE), "--symbolic", "off", "--fail-on", "errors")[0] == 0


def test_fail_on_budget_and_bad_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    readme, over = str(DATA / "readme.toon"), str(DATA / "over-budget.toon")
    args = ["--corpus", str(SAMPLE), "--symbolic", "off"]
    code, _, err = _run(capsys, "diff", readme, over, *args, "--fail-on", "budget")
    assert code == 1 and "over the budget of 1/s" in err
    assert _run(capsys, "diff", over, readme, *args, "--fail-on", "budget")[0] == 0  # going down never fails
    assert _run(capsys, "diff", readme, over, *args, "--fail-on", "must-keep")[0] == 0  # no must-keep class
    code, _, err = _run(capsys, "diff", readme, over, *args, "--fail-on", "errors,sometimes")
    assert code == 2 and "unknown kind 'sometimes'" in err


def test_text_fits_80_columns_and_md_is_a_pr_comment(capsys: pytest.CaptureFixture[str]) -> None:
    old, new = str(DATA / "readme.toon"), str(DATA / "reviewed.toon")
    args = ["diff", old, new, "--corpus", str(SAMPLE), "--symbolic", "off"]
    code, text, _ = _run(capsys, *args)
    assert code == 0
    assert max(len(line) for line in text.splitlines()) <= 80
    for figure in ("5,297", "45,062", "3,748", "-15.3%", "0.4621", "0.3912"):  # numbers are never cut
        assert figure in text
    code, md, _ = _run(capsys, *args, "--format", "md")
    assert code == 0
    assert md.startswith(f"## Sampling change: `{old}` → `{new}`\n\n**")  # the summary line, bold: decisions change
    assert "| old rule | old outcome | new rule | new outcome | traces | spans | e.g. |" in md
    assert "| `keep-errors#1` | keep | `drop-probes` | drop | 7 | 7 |" in md
    assert "### Budget" in md and "| expected kept events/s | 0.4621 | 0.3912 |" in md
    assert "<summary>Reason-only changes: 187 traces</summary>" in md
    code, js, _ = _run(capsys, *args, "--format", "json")
    j = json.loads(js)
    assert set(j) == JSON_KEYS and j["schema"] == "nectar-diff/1"
    assert all(set(t) == TRANSITION_KEYS for t in j["transitions"])
    assert set(j["budget"]) >= {"old", "new"} and j["symbolic"]["status"] == "skipped"
    assert {a["class"] for a in j["errors_newly_at_risk"]} == {"errors", "must_keep:checkout"}
    # the witnesses of the symbolic part, in every form
    old, new = str(DATA / "probes-after-errors.toon"), str(DATA / "probes-first.toon")
    code, md, _ = _run(capsys, "diff", old, new, "--format", "md")
    assert code == 0 and "### For all traces (symbolic)" in md and "**At risk: errors.**" in md
    assert "1. a trace with a span `error = " in md  # the field as code, not escaped
    assert "```json\n{" in md  # the witness traces, ingestable
    code, text, _ = _run(capsys, "diff", old, new)
    assert "At risk: errors." in " ".join(text.split()) and max(len(line) for line in text.splitlines()) <= 80


def test_rules_file_against_the_policy_it_compiles_to(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Mixed sides: `nectar compile`'s rules.yaml against its policy: nothing changes, not even a reason."""
    policy = tmp_path / "policy.toon"
    shutil.copy(DATA / "readme.toon", policy)
    rules = tmp_path / "rules.yaml"
    lock = tmp_path / "nectar.lock"
    assert main(["compile", str(policy), "--corpus", str(SAMPLE), "-o", str(rules), "--lock", str(lock)]) == 0
    capsys.readouterr()
    code, out, err = _run(capsys, "diff", str(rules), str(policy), "--corpus", str(SAMPLE), "--format", "json")
    assert code == 0, err
    j = json.loads(out)
    assert (j["changed_traces"], j["transitions"], j["reason_only_traces"]) == (0, [], [])
    assert j["symbolic"]["status"] == "equivalent"
    # and a hand-written environment: --env picks it on both sides (Refinery's lookup)
    code, out, _ = _run(capsys, "diff", str(DATA / "hand-rules.yaml"), str(policy), "--corpus", str(SAMPLE),
                        "--env", "production", "--format", "json", "--symbolic", "off")  # fmt: skip
    rows = json.loads(out)["transitions"]
    assert code == 0 and rows and {r["old_rule"] for r in rows} == {None}  # the top-level DeterministicSampler


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if shutil.which("git") is None:  # pragma: no cover
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    shutil.copy(DATA / "probes-after-errors.toon", root / "policy.toon")
    _git(root, "add", "policy.toon")
    _git(root, "commit", "-q", "-m", "policy")
    _git(root, "update-ref", "refs/remotes/origin/main", "HEAD")  # as CI's checkout of the base branch
    shutil.copy(DATA / "probes-first.toon", root / "policy.toon")
    monkeypatch.chdir(root)
    return root


def test_git_revisions(repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _run(capsys, "diff", "HEAD:policy.toon", "policy.toon", "--format", "json", "--symbolic", "off")
    assert code == 0, err
    assert json.loads(out)["changed_traces"] is None  # no corpus here: the corpus part is skipped
    code, out, _ = _run(capsys, "diff", "HEAD:policy.toon", "HEAD:policy.toon", "--format", "json")
    assert code == 0 and json.loads(out)["symbolic"]["status"] == "equivalent"
    code, _, err = _run(capsys, "diff", "nope:policy.toon", "policy.toon")
    assert code == 2 and "cannot read nope:policy.toon from git" in err
    code, _, err = _run(capsys, "diff", "HEAD:missing.toon", "policy.toon")
    assert code == 2 and "missing.toon" in err
    code, _, err = _run(capsys, "diff", "HEAD:policy.txt", "policy.toon")
    assert code == 2 and "cannot tell a policy from a rules file" in err
    monkeypatch.setenv("PATH", str(repo / "no-bin"))
    code, _, err = _run(capsys, "diff", "HEAD:policy.toon", "policy.toon")
    assert code == 2 and "git is not installed" in err


def test_the_ci_recipe(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """examples/ci/: the workflow runs `nectar diff origin/main:policy.toon policy.toon --format md`; that command,
    run as the workflow runs it (a checkout with the base branch fetched), makes the comment."""
    workflow = (REPO / "examples" / "ci" / "nectar-diff.yml").read_text(encoding="utf-8")
    for needle in ("pull_request", "fetch-depth: 0", "nectar diff origin/main:policy.toon policy.toon --format md",
                   "--fail-on errors,must-keep", "gh pr comment"):  # fmt: skip
        assert needle in workflow, needle
    steps = yaml.safe_load(workflow)["jobs"]["diff"]["steps"]  # valid YAML, a GitHub Actions job
    assert any("nectar diff" in s.get("run", "") for s in steps)
    shutil.copytree(SAMPLE, repo / "corpus")
    code, md, _ = _run(capsys, "diff", "origin/main:policy.toon", "policy.toon", "--format", "md",
                       "--fail-on", "errors,must-keep")  # fmt: skip
    assert code == 1  # the failing probe that is an error trace
    assert md.startswith("## Sampling change: `origin/main:policy.toon` → `policy.toon`")
    assert "drop-livez" in md and "**At risk: errors.**" in md


# ---------------------------------------------------------------------------------------------- explain --against


@pytest.mark.parametrize("form", ["text", "md", "html"])
def test_explain_against(tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str) -> None:
    old, new = str(DATA / "readme.toon"), str(DATA / "reviewed.toon")
    out = tmp_path / f"waggle.{form}"
    args = ["explain", new, "--corpus", str(SAMPLE), "--against", old, "--format", form, "-o", str(out)]
    assert main([*args, "--solver-timeout", "1"]) == 0, capsys.readouterr().err
    page = out.read_text(encoding="utf-8")
    if form == "html":
        assert "<h2 id='against'>Changes against <code>" in page
        assert '<figure id="before-after"' in page and page.count("<svg") >= 5
        assert "<td><code>keep-errors#1</code></td><td>keep</td><td><code>drop-probes</code></td>" in page
    else:
        assert f"Changes against {'`' + old + '`' if form == 'md' else old}" in page
        assert "Decision changes on the corpus" in page and "keep-errors#1" in page
        assert "Kept volume per rule" in page


def test_explain_against_is_deterministic_and_equal_to_diff(capsys: pytest.CaptureFixture[str]) -> None:
    """The diff inside the report is the diff `nectar diff` prints (the same sections, same numbers)."""
    old, new = str(DATA / "readme.toon"), str(DATA / "renamed.toon")
    assert main(["explain", new, "--corpus", str(SAMPLE), "--against", old]) == 0
    page = capsys.readouterr().out
    assert main(["diff", old, new, "--corpus", str(SAMPLE)]) == 0
    diff = capsys.readouterr().out
    body = diff.split("\n", 2)[2]  # without the title
    assert body.rstrip("\n") in page
