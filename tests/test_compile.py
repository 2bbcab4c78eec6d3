"""nectar compile: golden rules files, the emitter's round trip through nectar's yaml.v3 loader and Refinery's
validator, replay of compiled files equal to the prover's decisions, refusals, the lockfile, --locked, atomicity."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nectar.cli import main
from nectar.compile import compile_policy, read_lock, record_proposal, write_outputs
from nectar.config import Config
from nectar.corpus.layout import Corpus
from nectar.engine.api import evaluate
from nectar.policy.load import load_policy
from nectar.policy.lower import lower_policy
from nectar.refinery.emit import emit_rules, quote, scalar
from nectar.refinery.loader import load_rules, validate_rules
from nectar.refinery.model import (
    Condition,
    Datatype,
    Operator,
    Rule,
    RulesBasedSampler,
    RulesFile,
    Sampler,
    SamplerConfig,
    SamplerKind,
)
from nectar.refinery.yamlv3 import loads
from tests.conftest import update_golden

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
GOLDEN = REPO / "tests" / "golden"
BUNDLED = REPO / "corpus"

FIXTURES = sorted(
    [
        *(DATA / "policy" / "identity").glob("*.toon"),
        *(DATA / "policy" / "pairs").glob("*.out.toon"),
        DATA / "compile" / "all-features.toon",
        DATA / "compile" / "deterministic-only.toon",
    ]
)


def golden_name(policy: Path) -> str:
    return f"{policy.parent.name}-" + policy.name.removesuffix(".toon").removesuffix(".out") + ".rules.yaml"


def compile_text(policy: Path, tmp: Path, envs: tuple[str, ...] | None = None) -> str:
    result = compile_policy(
        policy, Config(), rules_path=tmp / "rules.yaml", lock_path=tmp / "nectar.lock", environments=envs, prove=False
    )
    return result.rules_text


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nectar.corpus.synth import synth_corpus

    out = tmp_path_factory.mktemp("compile-synth") / "corpus"
    synth_corpus(out, spans=20_000, seed=11)
    return out


# ---------------------------------------------------------------------------------------------------- goldens


@pytest.mark.parametrize("policy", FIXTURES, ids=lambda p: p.name)
def test_golden(policy: Path, tmp_path: Path) -> None:
    """The compiled bytes are pinned (NECTAR_UPDATE_GOLDEN=1 rewrites them), validate, and read back to the IR."""
    text = compile_text(policy, tmp_path)
    golden = GOLDEN / golden_name(policy)
    if update_golden():
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
    assert validate_rules(text, "rules.yaml") == []
    pol = load_policy(policy)
    lowered = lower_policy(pol)
    back = load_rules(text)
    if pol.rules[0].action.__class__.__name__ != "DeterministicAction":
        assert back == lowered.rules_file()


def test_golden_files_have_no_strays() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.rules.yaml")) == sorted(golden_name(p) for p in FIXTURES)


def test_every_string_is_quoted_and_every_rule_says_what_it_does(tmp_path: Path) -> None:
    text = compile_text(DATA / "compile" / "all-features.toon", tmp_path)
    data = loads(text)
    rules = data["Samplers"]["__default__"]["RulesBasedSampler"]["Rules"]
    for r in rules:
        assert ("SampleRate" in r) != (r.get("Drop") is True or "Sampler" in r) or r.get("Drop") is True
        if r.get("Drop") is not True and "Sampler" not in r:
            assert isinstance(r["SampleRate"], int) and r["SampleRate"] >= 1
        for c in r.get("Conditions") or []:
            untyped = r["Name"].startswith("untyped#")  # the policy asked for untyped(...) comparisons
            if c["Operator"] in ("=", "!=", ">", ">=", "<", "<=", "in", "not-in") and not untyped:
                assert c.get("Datatype") in ("int", "float", "string", "bool")
    for line in text.splitlines():
        if line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.strip().lstrip("- ").partition(": ")
        if key in ("Name", "Operator", "Field", "Datatype", "Scope"):
            assert value.startswith('"') and value.endswith('"'), line
    assert "Value: 1500.0" in text  # a duration is a float in milliseconds, written with a decimal point
    assert 'Value: ["yes", "017", "null", "2026-01-01", "a\\"b"]' in text
    assert '"tab\\there"' in text


def test_header_names_policy_hashes_and_version(tmp_path: Path) -> None:
    policy = DATA / "policy" / "identity" / "readme.toon"
    text = compile_text(policy, tmp_path)
    head = [line for line in text.splitlines() if line.startswith("#")]
    import hashlib

    from nectar import __version__

    assert f"nectar {__version__}" in head[0] and '"production-sampling"' in head[0] and "(readme.toon)" in head[0]
    assert any(hashlib.sha256(policy.read_bytes()).hexdigest() in h for h in head)
    assert "202" not in "".join(head).replace(__version__, "")  # no dates


def test_environments_default_first(tmp_path: Path) -> None:
    text = compile_text(DATA / "policy" / "identity" / "minimal.toon", tmp_path, ("production", "staging"))
    rf = load_rules(text)
    assert list(rf.samplers) == ["__default__", "production", "staging"]
    assert rf.samplers["production"] == rf.samplers["__default__"]


# ---------------------------------------------------------------------------------------------------- emitter


def test_scalar_spelling() -> None:
    assert scalar(5000.0) == "5000.0"
    assert scalar(1e16) == "1e+16"
    assert scalar(float("inf")) == ".inf"
    assert scalar(-float("inf")) == "-.inf"
    assert scalar(True) == "true"
    assert scalar(17) == "17"
    assert quote("a\x00b\u2028\U0001f600\x7f") == '"a\\0b\\L\U0001f600\\x7F"'


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_trap = st.sampled_from(["yes", "no", "on", "017", "0x1F", "null", "~", "", "2026-01-01", "12:30", "true", " x ", "#c"])
_str = st.one_of(_text, _trap)
_float = st.floats(allow_nan=False, width=64)
_int = st.integers(-(2**63), 2**63 - 1)
_scalar = st.one_of(_str, _int, _float, st.booleans())
_value = st.one_of(
    st.none(),
    _scalar,
    st.lists(_str, min_size=1, max_size=3).map(tuple),
    st.lists(_int, min_size=1, max_size=3).map(tuple),
    st.lists(_float, min_size=1, max_size=3).map(tuple),
)
_fields = st.lists(_str.filter(bool), min_size=1, max_size=3).map(tuple)


@st.composite
def _condition(draw: st.DrawFn) -> Condition:
    fields = draw(_fields)
    single = len(fields) == 1 and draw(st.booleans())
    op = draw(st.sampled_from(list(Operator)))
    dt = draw(st.sampled_from([None, *Datatype]))
    return Condition(fields, op, draw(_value), dt, single)


@st.composite
def _rule(draw: st.DrawFn) -> Rule:
    conds = draw(st.one_of(st.none(), st.lists(_condition(), max_size=3).map(tuple)))
    kind = draw(st.sampled_from(["rate", "drop", "sampler"]))
    samplers: tuple[Sampler, ...] = ()
    if kind == "sampler":
        fl = draw(st.lists(_str, min_size=1, max_size=2))
        samplers = (Sampler(SamplerKind.EMA_DYNAMIC, {"GoalSampleRate": draw(st.integers(1, 1000)), "FieldList": fl}),)
    return Rule(
        name=draw(_str),
        conditions=conds,
        scope=draw(st.sampled_from([None, "trace", "span"])),
        sample_rate=draw(st.integers(0, 10_000)) if kind != "sampler" else 0,
        drop=kind == "drop",
        samplers=samplers,
    )


@given(
    rules=st.lists(_rule(), max_size=4),
    envs=st.lists(_str.filter(lambda e: e != "__default__"), max_size=2, unique=True),
    nested=st.booleans(),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_emit_round_trip(rules: list[Rule], envs: list[str], nested: bool) -> None:
    """Whatever the IR holds, the text validates and nectar's yaml.v3 loader reads exactly it back."""
    cfg = SamplerConfig(rules_based=RulesBasedSampler(tuple(rules), nested))
    rf = RulesFile({env: cfg for env in ["__default__", *envs]})
    text = emit_rules(rf, ["a header", "with: colons # and hashes"])
    assert validate_rules(text, "r.yaml") == []
    assert load_rules(text) == rf


def test_emit_top_level_samplers_in_refinery_order() -> None:
    cfg = SamplerConfig(
        rules_based=RulesBasedSampler(()),
        others=(Sampler(SamplerKind.DETERMINISTIC, {"SampleRate": 3}),),
    )
    text = emit_rules(RulesFile({"__default__": cfg}))
    assert text.index("DeterministicSampler") < text.index("RulesBasedSampler")
    assert load_rules(text) == RulesFile({"__default__": cfg})


# ---------------------------------------------------------------------------------------------------- replay


@pytest.mark.parametrize("policy", FIXTURES, ids=lambda p: p.name)
def test_replay_of_compiled_file_equals_prover_decisions(policy: Path, tmp_path: Path, synth_dir: Path) -> None:
    """Replaying the compiled file decides every trace as the lowered policy (what the prover evaluates) does."""
    text = compile_text(policy, tmp_path)
    lowered = lower_policy(load_policy(policy))
    compiled = load_rules(text)
    det = "deterministic" in policy.name
    for corpus in (Corpus.open(BUNDLED), Corpus.open(synth_dir)):
        want = evaluate(lowered.sampler, corpus, "polars").decisions
        got = evaluate(compiled, corpus, "polars").decisions
        if det:  # a top-level DeterministicSampler: same hash decision, no rule name
            cols = ["trace_id", "spans", "keep", "rate"]
            assert got.select(cols).equals(want.select(cols))
            assert set(got["keep"].unique()) == {"true", "false"}
        else:
            assert got.equals(want)


def test_replay_equal_on_duckdb_too(tmp_path: Path) -> None:
    policy = DATA / "compile" / "all-features.toon"
    compiled = load_rules(compile_text(policy, tmp_path))
    lowered = lower_policy(load_policy(policy))
    corpus = Corpus.open(BUNDLED)
    assert evaluate(compiled, corpus, "duckdb").decisions.equals(evaluate(lowered.sampler, corpus, "duckdb").decisions)


# ---------------------------------------------------------------------------------------------------- CLI


def _project(tmp_path: Path, policy: Path = DATA / "policy" / "identity" / "readme.toon") -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(policy, proj / "policy.toon")
    (proj / "nectar.toml").write_text(
        f'[project]\npolicy = "policy.toon"\ncorpus = "{BUNDLED}"\nrules = "rules.yaml"\nlock = "nectar.lock"\n'
    )
    return proj


def _run(proj: Path, *argv: str) -> int:
    old = Path.cwd()
    os.chdir(proj)
    try:
        return main(list(argv))
    finally:
        os.chdir(old)


def test_compile_proves_and_locks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = _project(tmp_path)
    assert _run(proj, "compile") == 0
    out = capsys.readouterr().out
    assert "all checks passed" in out and "rules.yaml" in out and "wrote " in out
    lock = json.loads((proj / "nectar.lock").read_text())
    rules = (proj / "rules.yaml").read_bytes()
    import hashlib

    assert lock["rules"]["sha256"] == hashlib.sha256(rules).hexdigest()
    assert lock["rules"]["md5"] == hashlib.md5(rules).hexdigest()
    assert lock["proof"]["proven"] is True and lock["proof"]["checks"]["errors"]["status"] == "pass"
    assert lock["corpus"]["manifest_sha256"] == hashlib.sha256((BUNDLED / "manifest.json").read_bytes()).hexdigest()
    assert (lock["corpus"]["spans"], lock["corpus"]["traces"]) == (50_000, 9_257)
    assert lock["policy"]["path"] == "policy.toon" and lock["rules"]["path"] == "rules.yaml"
    assert lock["proposal"] is None
    assert (proj / "nectar.lock").read_text() == json.dumps(lock, indent=2, sort_keys=True) + "\n"
    # --locked on the same inputs passes and rewrites the same bytes
    assert _run(proj, "compile", "--locked") == 0
    assert (proj / "rules.yaml").read_bytes() == rules


def test_failed_proof_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = _project(tmp_path)
    text = (proj / "policy.toon").read_text().replace("http.status >= 500,keep", "http.status >= 500,drop")
    (proj / "policy.toon").write_text(text)
    assert _run(proj, "compile") == 1
    err = capsys.readouterr().err
    assert "nothing was written" in err and "FAIL" in err and "errors" in err
    assert not (proj / "rules.yaml").exists() and not (proj / "nectar.lock").exists()
    assert _run(proj, "compile", "--no-prove") == 0
    lock = json.loads((proj / "nectar.lock").read_text())
    assert lock["proof"] == {"proven": False, "skipped": "--no-prove"} and lock["corpus"] is None


def test_locked_fails_on_change_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = _project(tmp_path)
    assert _run(proj, "compile", "--locked", "--no-prove") == 1
    assert "no lockfile" in capsys.readouterr().err
    assert not (proj / "rules.yaml").exists()
    assert _run(proj, "compile", "--no-prove") == 0
    before = ((proj / "rules.yaml").read_bytes(), (proj / "nectar.lock").read_bytes())
    (proj / "policy.toon").write_text((proj / "policy.toon").read_text().replace("sample(0.01)", "sample(0.02)"))
    capsys.readouterr()
    assert _run(proj, "compile", "--locked", "--no-prove") == 1
    err = capsys.readouterr().err
    assert "policy.sha256" in err and "rules.sha256" in err and "rules.md5" in err
    assert ((proj / "rules.yaml").read_bytes(), (proj / "nectar.lock").read_bytes()) == before
    assert _run(proj, "compile", "--locked", "--no-prove", "--format", "json") == 1
    assert json.loads(capsys.readouterr().out)["written"] is False


def test_unwritable_lock_leaves_nothing_half_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = _project(tmp_path)
    (proj / "blocker").write_text("a file where the lock's folder should be\n")
    assert _run(proj, "compile", "--no-prove", "--lock", "blocker/nectar.lock") == 2
    assert "cannot write blocker/nectar.lock: blocker is not a folder" in capsys.readouterr().err
    assert sorted(p.name for p in proj.iterdir()) == ["blocker", "nectar.toml", "policy.toon"]


def test_failed_rename_puts_old_rules_back(tmp_path: Path) -> None:
    """A lock path that is a folder is refused before anything is written, so rules.yaml keeps its old bytes. (A
    rename that fails after rules.yaml was replaced puts the old bytes back: tests/test_hostile_outputs.py.)"""
    from nectar.errors import NectarError

    policy = DATA / "policy" / "identity" / "minimal.toon"
    rules, lock = tmp_path / "rules.yaml", tmp_path / "nectar.lock"
    result = compile_policy(policy, Config(), rules_path=rules, lock_path=lock, prove=False)
    lock.mkdir()
    with pytest.raises(NectarError, match="is a folder"):
        write_outputs(result, rules, lock)
    assert not rules.exists()
    rules.write_text("old\n")
    with pytest.raises(NectarError, match="is a folder"):
        write_outputs(result, rules, lock)
    assert rules.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nectar.lock", "rules.yaml"]


def test_deterministic_refused_with_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = _project(tmp_path, DATA / "compile" / "deterministic-refused.toon")
    assert _run(proj, "compile", "--no-prove") == 2
    err = capsys.readouterr().err
    assert "refinery#1857" in err and "sample(1/N)" in err and "top-level DeterministicSampler" in err
    assert "policy.toon:6:5" in err
    assert not (proj / "rules.yaml").exists()


def test_deterministic_catch_all_is_top_level(tmp_path: Path) -> None:
    text = compile_text(DATA / "compile" / "deterministic-only.toon", tmp_path)
    rf = load_rules(text)
    assert rf.samplers["__default__"] == SamplerConfig(others=(Sampler(SamplerKind.DETERMINISTIC, {"SampleRate": 20}),))


def test_env_option_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = _project(tmp_path)
    assert _run(proj, "compile", "--no-prove", "--env", "production", "--format", "json", "-o", "out/r.yaml") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["environments"] == ["__default__", "production"] and out["proven"] is False
    assert list(load_rules(proj / "out" / "r.yaml").samplers) == ["__default__", "production"]
    lock = read_lock(proj / "nectar.lock")
    assert lock is not None and lock["rules"]["path"] == "out/r.yaml"


def test_record_proposal_survives_recompile(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    assert _run(proj, "compile", "--no-prove") == 0
    record_proposal(proj / "nectar.lock", "model-x", "ab" * 32)
    lock = read_lock(proj / "nectar.lock")
    assert lock is not None and lock["proposal"] == {"model": "model-x", "prompt_sha256": "ab" * 32}
    assert _run(proj, "compile", "--no-prove", "--locked") == 0  # the proposal is kept: the lock is unchanged
    assert _run(proj, "verify") == 0
    (proj / "policy.toon").write_text((proj / "policy.toon").read_text().replace("sample(0.01)", "sample(0.02)"))
    assert _run(proj, "compile", "--no-prove") == 0
    lock = read_lock(proj / "nectar.lock")
    assert lock is not None and lock["proposal"] is None  # a changed policy is no longer what was proposed


def test_write_outputs_api(tmp_path: Path) -> None:
    policy = DATA / "policy" / "identity" / "minimal.toon"
    result = compile_policy(
        policy, Config(), rules_path=tmp_path / "r.yaml", lock_path=tmp_path / "l.lock", prove=False
    )
    write_outputs(result, tmp_path / "r.yaml", tmp_path / "l.lock")
    assert (tmp_path / "r.yaml").read_text() == result.rules_text
    assert read_lock(tmp_path / "l.lock") == result.lock


def test_proposal_sidecar_is_locked(tmp_path: Path) -> None:
    """`nectar propose` leaves .nectar/proposal.json beside the policy; compile locks it when the policy matches."""
    import hashlib

    from nectar.policy.format import format_policy

    proj = _project(tmp_path)
    canonical = format_policy(load_policy(proj / "policy.toon"))
    side = proj / ".nectar" / "proposal.json"
    side.parent.mkdir()
    side.write_text(
        json.dumps(
            {
                "model": "m-1",
                "prompt_sha256": "cd" * 32,
                "policy": "policy.toon",
                "policy_canonical_sha256": hashlib.sha256(canonical.encode()).hexdigest(),
            }
        )
    )
    assert _run(proj, "compile", "--no-prove") == 0
    lock = read_lock(proj / "nectar.lock")
    assert lock is not None and lock["proposal"] == {"model": "m-1", "prompt_sha256": "cd" * 32}
    side.write_text(json.dumps({"model": "m-2", "prompt_sha256": "x", "policy_canonical_sha256": "other"}))
    (proj / "nectar.lock").unlink()
    assert _run(proj, "compile", "--no-prove") == 0
    lock = read_lock(proj / "nectar.lock")
    assert lock is not None and lock["proposal"] is None


def test_locked_does_not_care_which_engine_proved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Both engines give identical proof reports, so proving with the other one changes nothing --locked guards.
    proj = _project(tmp_path)
    assert _run(proj, "compile", "--engine", "polars") == 0
    assert json.loads((proj / "nectar.lock").read_text())["proof"]["engine"] == "polars"
    capsys.readouterr()
    assert _run(proj, "compile", "--locked", "--engine", "duckdb") == 0
    assert json.loads((proj / "nectar.lock").read_text())["proof"]["engine"] == "polars"  # the lock is left as is
    (proj / "policy.toon").write_text((proj / "policy.toon").read_text().replace("sample(0.01)", "sample(0.02)"))
    assert _run(proj, "compile", "--locked", "--engine", "duckdb") == 1
