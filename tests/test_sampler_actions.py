"""Every Refinery 3.2.2 stateful sampler as a policy action (``dynamic(..., kind=classic)``,
``throughput(..., kind=windowed|total)`` and the EMA defaults): parse, canonical format, lowering, Refinery's
validator, positioned errors for settings of another kind, import of each sampler type downstream and at the top
level, and ../shared/refinery/example_rules.yaml imported and compiled back environment by environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nectar.cli import main
from nectar.compile import compile_policy
from nectar.config import Config
from nectar.errors import NectarError
from nectar.explain.english import describe_action
from nectar.policy import ir
from nectar.policy.format import format_action, format_policy
from nectar.policy.lift import import_rules, rule_meaning
from nectar.policy.load import parse_action, parse_policy
from nectar.policy.lower import lower_action
from nectar.propose.common import explain_action
from nectar.refinery.emit import emit_rules
from nectar.refinery.loader import GROUPS, load_rules, validate_rules
from nectar.refinery.model import (
    Rule,
    RulesBasedSampler,
    RulesFile,
    Sampler,
    SamplerConfig,
    SamplerKind,
)
from tests.conftest import shared_path

# (as written, canonical, Refinery sampler type, its params). Settings are written out of order on purpose: the
# canonical form puts them in Refinery's (rulesMeta.yaml) order, `kind=` right after the keys, `kind=ema` left out.
KINDS = [
    (
        "dynamic(rate=5, keys=(a, root.b), kind=ema, use_trace_length=true, max_keys=9, burst_detection_delay=2,"
        " burst_multiple=3.5, age_out_value=0.1, weight=0.25, adjustment_interval=45s)",
        "dynamic(rate=5, keys=(a, root.b), adjustment_interval=45s, weight=0.25, age_out_value=0.1, burst_multiple=3.5,"
        " burst_detection_delay=2, max_keys=9, use_trace_length=true)",
        SamplerKind.EMA_DYNAMIC,
        {"GoalSampleRate": 5, "FieldList": ["a", "root.b"], "AdjustmentInterval": "45s", "Weight": 0.25,
         "AgeOutValue": 0.1, "BurstMultiple": 3.5, "BurstDetectionDelay": 2, "MaxKeys": 9, "UseTraceLength": True},
    ),
    (
        "dynamic(rate=20, keys=(request.path, response.status_code), use_trace_length=false, kind=classic,"
        " clear_frequency=60s, max_keys=100)",
        "dynamic(rate=20, keys=(request.path, response.status_code), kind=classic, clear_frequency=60s, max_keys=100,"
        " use_trace_length=false)",
        SamplerKind.DYNAMIC,
        {"SampleRate": 20, "FieldList": ["request.path", "response.status_code"], "ClearFrequency": "60s",
         "MaxKeys": 100, "UseTraceLength": False},
    ),
    ("dynamic(kind=classic, rate=3, keys=(a))", "dynamic(rate=3, keys=(a), kind=classic)", SamplerKind.DYNAMIC,
     {"SampleRate": 3, "FieldList": ["a"]}),
    (
        "throughput(per_second=200, keys=(service.name), adjustment_interval=15s, initial_sample_rate=20,"
        " use_cluster_size=true, weight=0.5, max_keys=10)",
        "throughput(per_second=200, keys=(service.name), use_cluster_size=true, initial_sample_rate=20,"
        " adjustment_interval=15s, weight=0.5, max_keys=10)",
        SamplerKind.EMA_THROUGHPUT,
        {"GoalThroughputPerSec": 200, "FieldList": ["service.name"], "UseClusterSize": True, "InitialSampleRate": 20,
         "AdjustmentInterval": "15s", "Weight": 0.5, "MaxKeys": 10},
    ),
    (
        "throughput(per_second=50, keys=(service.name, http.route), lookback_frequency=30s, kind=windowed,"
        " update_frequency=1s, use_cluster_size=true, max_keys=7, use_trace_length=false)",
        "throughput(per_second=50, keys=(service.name, http.route), kind=windowed, use_cluster_size=true,"
        " update_frequency=1s, lookback_frequency=30s, max_keys=7, use_trace_length=false)",
        SamplerKind.WINDOWED_THROUGHPUT,
        {"GoalThroughputPerSec": 50, "FieldList": ["service.name", "http.route"], "UseClusterSize": True,
         "UpdateFrequency": "1s", "LookbackFrequency": "30s", "MaxKeys": 7, "UseTraceLength": False},
    ),
    ("throughput(per_second=9, keys=(a), kind=windowed)", "throughput(per_second=9, keys=(a), kind=windowed)",
     SamplerKind.WINDOWED_THROUGHPUT, {"GoalThroughputPerSec": 9, "FieldList": ["a"]}),
    (
        "throughput(per_second=1000, keys=(a), use_trace_length=true, kind=total, clear_frequency=1m30s,"
        " use_cluster_size=false, max_keys=0)",
        "throughput(per_second=1000, keys=(a), kind=total, use_cluster_size=false, clear_frequency=1m30s, max_keys=0,"
        " use_trace_length=true)",
        SamplerKind.TOTAL_THROUGHPUT,
        {"GoalThroughputPerSec": 1000, "FieldList": ["a"], "UseClusterSize": False, "ClearFrequency": "1m30s",
         "MaxKeys": 0, "UseTraceLength": True},
    ),
    ("throughput(per_second=4, keys=(a), kind=total)", "throughput(per_second=4, keys=(a), kind=total)",
     SamplerKind.TOTAL_THROUGHPUT, {"GoalThroughputPerSec": 4, "FieldList": ["a"]}),
]  # fmt: skip


def _rules_file(*samplers: Sampler) -> RulesFile:
    rules = tuple(Rule(f"r{i}", samplers=(s,)) for i, s in enumerate(samplers))
    return RulesFile({"__default__": SamplerConfig(rules_based=RulesBasedSampler(rules))})


@pytest.mark.parametrize(("text", "canonical", "kind", "params"), KINDS, ids=[k[1][:40] for k in KINDS])
def test_kind_parses_formats_and_lowers(text: str, canonical: str, kind: str, params: dict) -> None:
    action = parse_action(text)
    assert format_action(action) == canonical
    assert parse_action(canonical) == action
    assert format_action(parse_action(canonical)) == canonical  # stable
    sampler = lower_action(action)["samplers"][0]  # type: ignore[index]
    assert sampler == Sampler(kind, params)
    assert validate_rules(emit_rules(_rules_file(sampler)), "r.yaml") == []


def test_every_stateful_sampler_has_an_action() -> None:
    assert {k[2] for k in KINDS} == set(SamplerKind.STATEFUL)
    assert {spec.refinery for spec in ir.SAMPLERS.values()} == set(SamplerKind.STATEFUL)


_TYPES = {"duration": "duration", "int": "int", "bool": "bool", "float": "float", "unit": "float"}


@pytest.mark.parametrize("spec", list(ir.SAMPLERS.values()), ids=lambda s: s.refinery)
def test_settings_table_is_refinerys_schema(spec: ir.SamplerSpec) -> None:
    """The action writes every key of the sampler's rulesMeta.yaml group (the loader's copy), with its type."""
    schema = {f.name: f.type for f in GROUPS[spec.refinery]}
    written = {spec.goal_key, "FieldList", *(key for key, _ in spec.settings.values())}
    assert written == set(schema)
    for key, kind in spec.settings.values():
        assert _TYPES[kind] == schema[key], key
    assert list(spec.settings.values()) == [(f.name, kind) for f in GROUPS[spec.refinery]
                                            for k, kind in spec.settings.values() if k == f.name]  # fmt: skip


def test_the_default_kind_is_ema_and_not_written() -> None:
    for action, goal in (("dynamic", "rate"), ("throughput", "per_second")):
        plain = parse_action(f"{action}({goal}=5, keys=(a))")
        explicit = parse_action(f"{action}({goal}=5, keys=(a), kind=ema)")
        assert plain == explicit and plain.kind == ir.SamplerVariant.EMA  # type: ignore[union-attr]
        assert format_action(explicit) == f"{action}({goal}=5, keys=(a))"
    assert parse_action("dynamic(rate=5, keys=(a))") != parse_action("dynamic(rate=5, keys=(a), kind=classic)")


def _policy(*actions: str) -> str:
    rows = [f'    r{i},"",{"true" if i == len(actions) - 1 else f"x == {i}"},"{a}",{len(actions) - i}'
            for i, a in enumerate(actions)]  # fmt: skip
    head = "nectar_policy{version,name,rules}:\n  1\n  p\n"
    head += f"  rules[{len(rows)}]{{name,description,match,action,priority}}:\n"
    return head + "\n".join(rows) + "\n"


def test_policy_with_every_kind_formats_back_unchanged() -> None:
    text = _policy(*(k[1] for k in KINDS))
    policy = parse_policy(text, "p.toon")
    assert format_policy(policy) == text
    assert parse_policy(format_policy(policy), "p.toon") == policy


# (action, message, what the caret underlines, parts of the hint)
BAD = [
    ("dynamic(rate=5, keys=(a), kind=classic, weight=0.5)",
     "weight is not a setting of dynamic(kind=classic) (Refinery's DynamicSampler)", "weight=0.5",
     ["dynamic(kind=classic) takes clear_frequency, max_keys, use_trace_length", "belongs to dynamic(kind=ema)"]),
    ("dynamic(rate=5, keys=(a), adjustment_interval=30s, kind=classic)",
     "adjustment_interval is not a setting of dynamic(kind=classic)", "adjustment_interval=30s",
     ["takes clear_frequency, max_keys, use_trace_length"]),
    ("dynamic(rate=5, keys=(a), clear_frequency=60s)",
     "clear_frequency is not a setting of dynamic(kind=ema) (Refinery's EMADynamicSampler)", "clear_frequency=60s",
     ["adjustment_interval, weight", "belongs to dynamic(kind=classic)"]),
    ("throughput(per_second=5, keys=(a), initial_sample_rate=3, kind=windowed)",
     "initial_sample_rate is not a setting of throughput(kind=windowed)", "initial_sample_rate=3",
     ["takes use_cluster_size, update_frequency, lookback_frequency, max_keys, use_trace_length",
      "belongs to throughput(kind=ema)"]),
    ("throughput(per_second=5, keys=(a), kind=total, lookback_frequency=30s)",
     "lookback_frequency is not a setting of throughput(kind=total) (Refinery's TotalThroughputSampler)",
     "lookback_frequency=30s",
     ["takes use_cluster_size, clear_frequency, max_keys, use_trace_length", "throughput(kind=windowed)"]),
    ("throughput(per_second=5, keys=(a), clear_frequency=30s)",
     "clear_frequency is not a setting of throughput(kind=ema)", "clear_frequency=30s",
     ["belongs to throughput(kind=total)"]),
    ("throughput(per_second=5, keys=(a), kind=windowed, weight=0.5)",
     "weight is not a setting of throughput(kind=windowed)", "weight=0.5", ["belongs to throughput(kind=ema)"]),
    ("dynamic(rate=5, keys=(a), kind=windowed)", "dynamic has no kind 'windowed'", "windowed",
     ["ema (EMADynamicSampler, the default), classic (DynamicSampler)"]),
    ("throughput(per_second=5, keys=(a), kind=classic)", "throughput has no kind 'classic'", "classic",
     ["ema (EMAThroughputSampler, the default)", "windowed (WindowedThroughputSampler)",
      "total (TotalThroughputSampler)"]),
    ("throughput(per_second=5, keys=(a), kind=(a))", "throughput has no kind '(a)'", "(a)", ["windowed", "total"]),
    ("dynamic(rate=5, keys=(a), kind=classic, clear_frequency=60)", "clear_frequency must be a duration", "60", []),
    ("throughput(per_second=5, keys=(a), kind=windowed, use_cluster_size=maybe)",
     "use_cluster_size must be true or false", "maybe", []),
    ("throughput(per_second=5, keys=(a), kind=total, max_keys=1.5)", "max_keys must be a whole number >= 0", "1.5",
     []),
    ("dynamic(rate=5, keys=(a), nope=1)", "dynamic has no argument 'nope'", "nope=1", ["kind", "weight"]),
    ("dynamic(rate=5, keys=(a), kind=classic, use_cluster_size=true)", "dynamic has no argument 'use_cluster_size'",
     "use_cluster_size=true", ["clear_frequency"]),
    ("dynamic(rate=5, keys=(a), kind=classic, kind=ema)", "kind= given twice", "kind", []),
]  # fmt: skip


@pytest.mark.parametrize(("action", "message", "underlined", "hints"), BAD, ids=[b[0] for b in BAD])
def test_bad_setting_is_a_positioned_error(action: str, message: str, underlined: str, hints: list[str]) -> None:
    text = _policy(action)
    with pytest.raises(NectarError) as info:
        parse_policy(text, "p.toon")
    err = info.value
    assert message in err.message
    for h in hints:
        assert err.hint is not None and h in err.hint, (h, err.hint)
    assert err.span is not None and err.span.file == "p.toon" and err.span.line == 5
    line = text.splitlines()[4]
    col = line.index(action) + action.rindex(underlined) + 1  # 1-based
    assert err.span.column == col, (err.span.column, col)
    rendered = err.render().splitlines()
    assert rendered[0].startswith(f"p.toon:5:{col}: error: ")
    source, caret = rendered[1], rendered[2]
    assert caret.strip() == "^" * len(underlined)
    assert caret.index("^") == source.index(line) + col - 1  # under the argument


def test_cli_check_exits_2_with_the_position(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.toon"
    p.write_text(_policy("dynamic(rate=5, keys=(a), kind=classic, weight=0.5)"), encoding="utf-8")
    assert main(["check", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:5:" in err and "^^^^^^^^^^" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------------- import

# A sampler block as Refinery users write it (YAML), and the action it imports as.
HAND = {
    SamplerKind.DYNAMIC: (
        'SampleRate: 7\nClearFrequency: "2m"\nFieldList: ["a", "root.b"]\nMaxKeys: 50\nUseTraceLength: true',
        "dynamic(rate=7, keys=(a, root.b), kind=classic, clear_frequency=2m, max_keys=50, use_trace_length=true)",
    ),
    SamplerKind.EMA_DYNAMIC: (
        'GoalSampleRate: 5\nAdjustmentInterval: "30s"\nWeight: 1\nAgeOutValue: 0.5\nBurstMultiple: 2\n'
        'BurstDetectionDelay: 4\nFieldList: ["a"]\nMaxKeys: 10\nUseTraceLength: false',
        "dynamic(rate=5, keys=(a), adjustment_interval=30s, weight=1.0, age_out_value=0.5, burst_multiple=2.0,"
        " burst_detection_delay=4, max_keys=10, use_trace_length=false)",
    ),
    SamplerKind.EMA_THROUGHPUT: (
        'GoalThroughputPerSec: 100\nUseClusterSize: true\nInitialSampleRate: 20\nAdjustmentInterval: "15s"\n'
        'FieldList: ["service.name", "root.http.route"]',
        "throughput(per_second=100, keys=(service.name, root.http.route), use_cluster_size=true,"
        " initial_sample_rate=20, adjustment_interval=15s)",
    ),
    SamplerKind.WINDOWED_THROUGHPUT: (
        'GoalThroughputPerSec: 50\nUseClusterSize: false\nUpdateFrequency: "500ms"\nLookbackFrequency: "10s"\n'
        'FieldList: ["service.name", "http.route"]\nMaxKeys: 3\nUseTraceLength: true',
        "throughput(per_second=50, keys=(service.name, http.route), kind=windowed, use_cluster_size=false,"
        " update_frequency=500ms, lookback_frequency=10s, max_keys=3, use_trace_length=true)",
    ),
    SamplerKind.TOTAL_THROUGHPUT: (
        'GoalThroughputPerSec: 8\nUseClusterSize: true\nClearFrequency: "45s"\nFieldList: ["a"]',
        "throughput(per_second=8, keys=(a), kind=total, use_cluster_size=true, clear_frequency=45s)",
    ),
}
TOP_LEVEL = {**HAND, SamplerKind.DETERMINISTIC: ("SampleRate: 4", "deterministic(rate=4)")}


def _indent(block: str, n: int) -> str:
    return "".join(" " * n + line + "\n" for line in block.splitlines())


def _compile(policy_text: str, tmp: Path) -> RulesFile:
    p = tmp / "imported.toon"
    p.write_text(policy_text, encoding="utf-8")
    result = compile_policy(p, Config(), rules_path=tmp / "r.yaml", lock_path=tmp / "r.lock", prove=False)
    return load_rules(result.rules_text)


@pytest.mark.parametrize("kind", sorted(HAND))
def test_downstream_sampler_imports_and_compiles_back(kind: str, tmp_path: Path) -> None:
    block, action = HAND[kind]
    path = tmp_path / "rules.yaml"
    path.write_text(
        "RulesVersion: 2\nSamplers:\n  __default__:\n    RulesBasedSampler:\n      Rules:\n"
        '        - Name: "tiers"\n          Conditions:\n            - Field: "error"\n              Operator: "="\n'
        f'              Value: true\n              Datatype: "bool"\n          Sampler:\n            {kind}:\n'
        + _indent(block, 14)
        + '        - Name: "rest"\n          SampleRate: 3\n',
        encoding="utf-8",
    )
    original = load_rules(path)
    result = import_rules(path, "__default__", Config())
    assert [r.action_text for r in result.policy.rules] == [action, "sample(1/3)"]
    back = _compile(result.text, tmp_path)
    want, got = original.samplers["__default__"].choice, back.samplers["__default__"].choice
    assert isinstance(want, RulesBasedSampler) and isinstance(got, RulesBasedSampler)
    assert [r.name for r in got.rules] == [r.name for r in want.rules]
    assert [rule_meaning(r) for r in got.rules] == [rule_meaning(r) for r in want.rules]
    assert got.rules[0].sampler is not None and got.rules[0].sampler.kind == kind


@pytest.mark.parametrize("kind", sorted(TOP_LEVEL))
def test_top_level_sampler_imports_and_compiles_back(kind: str, tmp_path: Path) -> None:
    block, action = TOP_LEVEL[kind]
    path = tmp_path / "rules.yaml"
    path.write_text(f"RulesVersion: 2\nSamplers:\n  __default__:\n    {kind}:\n" + _indent(block, 6), encoding="utf-8")
    original = load_rules(path)
    result = import_rules(path, "__default__", Config())
    (rule,) = result.policy.rules
    assert rule.match_text == "true" and rule.action_text == action
    assert rule.description == f"imported from a top-level {kind}"
    back = _compile(result.text, tmp_path)
    assert back.samplers["__default__"] == original.samplers["__default__"]  # the same top-level sampler
    assert isinstance(back.samplers["__default__"].choice, Sampler)


@pytest.mark.parametrize("kind", sorted(HAND))
def test_a_catch_all_compiles_top_level_only_when_it_is_the_only_rule(kind: str, tmp_path: Path) -> None:
    _, action = HAND[kind]
    alone = _compile(_policy(action), tmp_path).samplers["__default__"]
    assert alone.rules_based is None and [s.kind for s in alone.others] == [kind]
    after = _compile(_policy("keep", action), tmp_path).samplers["__default__"]
    assert after.rules_based is not None and not after.others
    last = after.rules_based.rules[-1]
    assert last.sampler is not None and last.sampler.kind == kind and not last.conditions


def test_a_setting_with_no_policy_form_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "RulesVersion: 2\nSamplers:\n  __default__:\n"
        '    DynamicSampler:\n      SampleRate: 0\n      FieldList: ["a"]\n',
        encoding="utf-8",
    )
    with pytest.raises(NectarError) as info:
        import_rules(path, "__default__", Config())
    text = info.value.render()
    assert "the top-level DynamicSampler cannot be imported exactly" in text and "rate must be a whole number" in text
    assert "rules.yaml:3:" in text


# ---------------------------------------------------------------------------------------------------- example_rules

EXAMPLE_ACTIONS = {
    "__default__": ["deterministic(rate=1)"],
    "staging": ["drop", "keep", "throughput(per_second=50, keys=(service.name, http.route), kind=windowed,"
                " update_frequency=1s, lookback_frequency=30s)"],
    "legacy-frontend": ["dynamic(rate=20, keys=(request.path, response.status_code), kind=classic,"
                        " clear_frequency=60s, use_trace_length=false)"],
}  # fmt: skip


@pytest.mark.parametrize("env", ["__default__", "production", "staging", "legacy-frontend"])
def test_example_rules_environment_imports_and_compiles_back(env: str, tmp_path: Path) -> None:
    """Same sampler types, same settings, same conditions (by Refinery's meaning) as the original environment."""
    example = shared_path("refinery", "example_rules.yaml")
    want = load_rules(example).samplers[env].choice
    result = import_rules(example, env, Config())
    if env in EXAMPLE_ACTIONS:
        assert [r.action_text for r in result.policy.rules] == EXAMPLE_ACTIONS[env]
    got = _compile(result.text, tmp_path).samplers["__default__"].choice
    assert type(got) is type(want)
    if isinstance(want, Sampler):
        assert got == want
        return
    assert isinstance(want, RulesBasedSampler) and isinstance(got, RulesBasedSampler)
    assert [r.name for r in got.rules] == [r.name for r in want.rules]
    assert [r.sampler.kind if r.sampler else None for r in got.rules] == [
        r.sampler.kind if r.sampler else None for r in want.rules
    ]
    assert [rule_meaning(r) for r in got.rules] == [rule_meaning(r) for r in want.rules]


def test_example_rules_cli_import_then_compile(tmp_path: Path) -> None:
    example = shared_path("refinery", "example_rules.yaml")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        for env in ("__default__", "production", "staging", "legacy-frontend"):
            assert main(["import", str(example), "--env", env, "-o", f"{env}.toon"]) == 0
            assert main(["compile", f"{env}.toon", "-o", f"{env}.yaml", "--lock", f"{env}.lock", "--no-prove"]) == 0
        assert "WindowedThroughputSampler:" in (tmp_path / "staging.yaml").read_text()
        legacy = (tmp_path / "legacy-frontend.yaml").read_text()
        assert "DynamicSampler:" in legacy and "RulesBasedSampler" not in legacy and 'ClearFrequency: "60s"' in legacy
    finally:
        os.chdir(old)


# ---------------------------------------------------------------------------------------------------- explain


EXPLAIN = [
    ("dynamic(rate=5, keys=(a, b), kind=classic)",
     ["Refinery's classic dynamic sampler", "about 1 in 5 overall", "per combination of a and b",
      "recomputed every 30 s"], "classic dynamic"),
    ("dynamic(rate=5, keys=(a), kind=classic, clear_frequency=1m30s)", ["recomputed every 1 min 30 s"],
     "classic dynamic"),
    ("dynamic(rate=5, keys=(a))", ["Refinery's EMA dynamic sampler"], "(dynamic, goal 1 in 5"),
    ("throughput(per_second=50, keys=(a), kind=windowed, lookback_frequency=30s)",
     ["Refinery's windowed throughput sampler, aiming at 50 kept per second on each Refinery node over a 30 s "
      "lookback", "rates updated every 1 s"], "windowed throughput"),
    ("throughput(per_second=50, keys=(a), kind=windowed, update_frequency=500ms, use_cluster_size=true)",
     ["across the whole cluster over a 15 s lookback (rates updated every 500 ms)"], "windowed throughput"),
    ("throughput(per_second=5000, keys=(a), kind=total)",
     ["Refinery's total throughput sampler", "aiming at 5,000 kept per second", "recomputed every 30 s"],
     "total throughput"),
    ("throughput(per_second=50, keys=(a))", ["Refinery's EMA throughput sampler, aiming at 50 kept per second"],
     "(about 50/s"),
]  # fmt: skip


@pytest.mark.parametrize(("action", "parts", "short"), EXPLAIN, ids=[e[0] for e in EXPLAIN])
def test_kinds_in_plain_english(action: str, parts: list[str], short: str) -> None:
    sentence = describe_action(parse_action(action), "every trace", "the traces")
    for p in parts:
        assert p in sentence, (p, sentence)
    assert short in explain_action(parse_action(action))
