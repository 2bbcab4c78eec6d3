"""nectar import: Refinery rules lifted into a policy that, compiled again, decides every trace as the original
(replayed on the bundled, a synth and the realtraces corpora); what has no exact form is refused with the reason."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from nectar.cli import main
from nectar.compile import compile_policy
from nectar.config import DEFAULT_ALIASES, Config
from nectar.corpus.layout import Corpus
from nectar.engine.api import evaluate
from nectar.errors import NectarError
from nectar.policy.lift import import_rules
from nectar.policy.load import load_policy
from nectar.policy.lower import lower_policy
from nectar.refinery.emit import emit_rules
from nectar.refinery.loader import load_rules
from nectar.refinery.model import RulesFile
from tests.conftest import shared_path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
LIFTABLE = DATA / "compile" / "liftable-rules.yaml"
BUNDLED = REPO / "corpus"


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> list[Corpus]:
    from nectar.corpus.synth import synth_corpus

    out = tmp_path_factory.mktemp("import-synth") / "corpus"
    synth_corpus(out, spans=20_000, seed=5)
    return [Corpus.open(BUNDLED), Corpus.open(out)]


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    from nectar.corpus.ingest import ingest_paths

    out = tmp_path_factory.mktemp("import-real") / "corpus"
    ingest_paths([str(shared_path("realtraces"))], out)
    return Corpus.open(out)


def _recompile(text: str, tmp: Path) -> RulesFile:
    policy = tmp / "imported.toon"
    policy.write_text(text, encoding="utf-8")
    result = compile_policy(policy, Config(), rules_path=tmp / "r.yaml", lock_path=tmp / "l.lock", prove=False)
    return load_rules(result.rules_text)


def same_decisions(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Per trace: the same keep verdict, the same deciding sampler, the same rate for what may be kept."""
    assert a["trace_id"].to_list() == b["trace_id"].to_list()
    assert a["keep"].to_list() == b["keep"].to_list()
    assert a["sampler"].to_list() == b["sampler"].to_list()
    kept = a["keep"] != "false"
    assert a.filter(kept)["rate"].to_list() == b.filter(kept)["rate"].to_list()


def _replay_equal(original: RulesFile, env: str, lifted: RulesFile, corpus: Corpus) -> None:
    want = evaluate(original, corpus, "polars", env=env).decisions
    got = evaluate(lifted, corpus, "polars").decisions
    same_decisions(want, got)


@pytest.mark.parametrize("env", ["__default__", "production", "staging", "quirks"])
def test_liftable_rules_replay_equal(env: str, tmp_path: Path, corpora: list[Corpus], real_corpus: Corpus) -> None:
    result = import_rules(LIFTABLE, env, Config())
    lifted = _recompile(result.text, tmp_path)
    original = load_rules(LIFTABLE)
    for corpus in [*corpora, real_corpus]:
        _replay_equal(original, env, lifted, corpus)


def test_quirks_are_lifted_with_notes() -> None:
    result = import_rules(LIFTABLE, "quirks", Config())
    rules = {r.name: r for r in result.policy.rules}
    assert str(rules["no operator: never matches"].match_text) == "false"
    assert str(rules["root check in span scope: never matches"].match_text) == "false"
    assert rules["no SampleRate: drops"].action_text == "drop"
    assert rules["string Value converted to int"].match_text == "http.status_code >= 500"
    assert rules["untyped in compares text"].match_text == 'net.peer.port not in ("80", "443")'
    assert rules["a field that is an alias name"].match_text == "exists(`duration`)"
    assert rules["has-root-span with a string"].match_text == "not has_root() and duration_ms < 3.0"
    assert rules["untyped number"].match_text == "untyped(http.status_code >= 400)"
    assert rules["untyped string against numbers never compares"].match_text == (
        'untyped(http.response.status_code != "200")'
    )
    assert rules["int Datatype with a Value that does not convert runs untyped"].match_text == (
        'untyped(db.system == "redis")'
    )
    assert rules["bool ordering runs untyped"].match_text == "untyped(error > false)"
    assert rules["untyped span count"].match_text == "span_count() > 6"
    # errors#1, errors#2 (what compile writes for an `or`) are one policy rule again
    assert (
        rules["errors"].match_text == 'error == true or span(service.name == "frontend" and http.route contains "cart")'
    )
    assert len(result.notes) == 3
    assert [r.priority for r in result.policy.rules] == list(range(140, -1, -10))


def test_example_rules_each_environment(tmp_path: Path, corpora: list[Corpus], real_corpus: Corpus) -> None:
    """../shared/refinery/example_rules.yaml: every environment lifts (a top-level DeterministicSampler, a
    RulesBasedSampler with EMA samplers, one with a WindowedThroughputSampler, a top-level Classic DynamicSampler) and
    replays equal; the samplers' settings are kept, not dropped."""
    example = shared_path("refinery", "example_rules.yaml")
    original = load_rules(example)
    for env in ("__default__", "production", "staging", "legacy-frontend"):
        result = import_rules(example, env, Config())
        lifted = _recompile(result.text, tmp_path)
        for corpus in [*corpora, real_corpus]:
            _replay_equal(original, env, lifted, corpus)
        emitted = emit_rules(lifted)
        if env == "production":
            assert 'AdjustmentInterval: "30s"' in emitted and "Weight: 0.5" in emitted and "MaxKeys: 500" in emitted
            assert "UseClusterSize: true" in emitted and "InitialSampleRate: 20" in emitted
        if env == "staging":
            assert "WindowedThroughputSampler:" in emitted and 'LookbackFrequency: "30s"' in emitted
        if env == "legacy-frontend":  # compiled back to the top-level sampler, not a rule's Sampler
            assert lifted.samplers["__default__"] == original.samplers[env]
            assert "RulesBasedSampler" not in emitted and 'ClearFrequency: "60s"' in emitted


@pytest.mark.parametrize(
    "policy",
    [
        *(DATA / "policy" / "identity").glob("*.toon"),
        *(DATA / "policy" / "pairs").glob("*.out.toon"),
        DATA / "compile" / "all-features.toon",
        DATA / "compile" / "deterministic-only.toon",
    ],
    ids=lambda p: p.name,
)
def test_compile_import_compile_is_identity(policy: Path, tmp_path: Path) -> None:
    """A compiled policy imports back to a policy that compiles to the very same rules (names included)."""
    first = compile_policy(policy, Config(), rules_path=tmp_path / "a.yaml", lock_path=tmp_path / "a.lock", prove=False)
    (tmp_path / "a.yaml").write_text(first.rules_text)
    result = import_rules(tmp_path / "a.yaml", "__default__", Config())
    assert load_rules(first.rules_text) == _recompile(result.text, tmp_path)
    if "deterministic" not in policy.name:  # a top-level sampler has no rule name to carry back
        assert lower_policy(result.policy).sampler == lower_policy(load_policy(policy)).sampler


def _rules(body: str, tmp: Path, name: str = "r.yaml") -> Path:
    path = tmp / name
    path.write_text("RulesVersion: 2\nSamplers:\n  __default__:\n" + body)
    return path


REFUSED = {
    "untyped-list": (
        '    RulesBasedSampler:\n      Rules:\n        - Name: "a"\n          SampleRate: 1\n          Conditions:\n'
        '            - Field: "http.status_code"\n              Operator: ">="\n              Value: [500]\n',
        "with a list Value never compares",
    ),
    "fields-without-alias": (
        '    RulesBasedSampler:\n      Rules:\n        - Name: "a"\n          SampleRate: 1\n          Conditions:\n'
        '            - Fields: ["a.b", "c.d"]\n              Operator: "exists"\n',
        'under [aliases] in nectar.toml, e.g. `b_any = ["a.b", "c.d"]`',
    ),
    "string-vs-number-field": (
        '    RulesBasedSampler:\n      Rules:\n        - Name: "a"\n          SampleRate: 1\n          Conditions:\n'
        '            - Field: "http.status_code"\n              Operator: "in"\n              Value: [500]\n',
        "'http.status_code' holds numbers",
    ),
    "nested": (
        "    RulesBasedSampler:\n      CheckNestedFields: true\n"
        '      Rules:\n        - Name: "a"\n          SampleRate: 1\n',
        "CheckNestedFields: true",
    ),
    "downstream-duration-without-unit": (
        '    RulesBasedSampler:\n      Rules:\n        - Name: "a"\n          Sampler:\n            DynamicSampler:\n'
        '              SampleRate: 3\n              ClearFrequency: "0"\n              FieldList: ["a"]\n',
        "clear_frequency must be a duration",
    ),
    "top-level-rate-zero": (
        '    DynamicSampler:\n      SampleRate: 0\n      FieldList: ["a"]\n',
        "the top-level DynamicSampler cannot be imported exactly",
    ),
    "hidden-field": (
        '    RulesBasedSampler:\n      Rules:\n        - Name: "a"\n          SampleRate: 1\n          Conditions:\n'
        '            - Field: "trace.parent_id"\n              Operator: "exists"\n',
        "rules cannot use the field 'trace.parent_id'",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_reason(case: str, tmp_path: Path) -> None:
    body, reason = REFUSED[case]
    with pytest.raises(NectarError) as info:
        import_rules(_rules(body, tmp_path), "__default__", Config())
    assert reason in info.value.render()


def test_configured_alias_lifts_fields(tmp_path: Path, corpora: list[Corpus]) -> None:
    body, _ = REFUSED["fields-without-alias"]
    path = _rules(body + '        - Name: "rest"\n          SampleRate: 2\n', tmp_path)
    config = replace(Config(), aliases={**DEFAULT_ALIASES, "ab": ("a.b", "c.d")})
    result = import_rules(path, "__default__", config)
    assert result.policy.rules[0].match_text == "exists(ab)"


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert main(["import", str(LIFTABLE), "--env", "staging", "-o", "p.toon", "--name", "stage"]) == 0
        assert "stage" in (tmp_path / "p.toon").read_text()
        assert main(["import", str(LIFTABLE), "--env", "staging", "--format", "json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["rules"] == 3 and out["policy"].startswith("nectar_policy")
        assert main(["import", str(LIFTABLE), "--env", "nope"]) == 2
        assert "no environment 'nope'" in capsys.readouterr().err
        assert main(["import", str(LIFTABLE), "--env", "production"]) == 0
        assert capsys.readouterr().out.startswith("nectar_policy{")
    finally:
        os.chdir(old)
