"""Sampler settings on dynamic(...) and throughput(...) (the language extension import needs to lift Refinery's
tuned samplers exactly): parse, canonical format, lowering to the Sampler block, Refinery's validator, errors."""

from __future__ import annotations

import pytest

from nectar.errors import NectarError
from nectar.policy import ir
from nectar.policy.format import format_action
from nectar.policy.load import parse_action
from nectar.policy.lower import lower_action
from nectar.refinery.emit import emit_rules
from nectar.refinery.loader import validate_rules
from nectar.refinery.model import Rule, RulesBasedSampler, RulesFile, SamplerConfig

CASES = [
    (
        "dynamic(rate=5, keys=(a), max_keys=500, weight=0.5, adjustment_interval=30s)",
        "dynamic(rate=5, keys=(a), adjustment_interval=30s, weight=0.5, max_keys=500)",
        {"GoalSampleRate": 5, "FieldList": ["a"], "AdjustmentInterval": "30s", "Weight": 0.5, "MaxKeys": 500},
    ),
    (
        "dynamic(rate=2, keys=(a), age_out_value=0, burst_multiple=2.5, burst_detection_delay=3,"
        " use_trace_length=false)",
        "dynamic(rate=2, keys=(a), age_out_value=0.0, burst_multiple=2.5, burst_detection_delay=3,"
        " use_trace_length=false)",
        {"GoalSampleRate": 2, "FieldList": ["a"], "AgeOutValue": 0.0, "BurstMultiple": 2.5,
         "BurstDetectionDelay": 3, "UseTraceLength": False},
    ),
    (
        "throughput(per_second=200, keys=(service.name, root.http.route), initial_sample_rate=20,"
        " use_cluster_size=true, adjustment_interval=1m30s)",
        "throughput(per_second=200, keys=(service.name, root.http.route), use_cluster_size=true,"
        " initial_sample_rate=20, adjustment_interval=1m30s)",
        {"GoalThroughputPerSec": 200, "FieldList": ["service.name", "root.http.route"], "UseClusterSize": True,
         "InitialSampleRate": 20, "AdjustmentInterval": "1m30s"},
    ),
    ("throughput(per_second=1, keys=(a))", "throughput(per_second=1, keys=(a))",
     {"GoalThroughputPerSec": 1, "FieldList": ["a"]}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "canonical", "params"), CASES)
def test_settings_parse_format_lower(text: str, canonical: str, params: dict) -> None:
    action = parse_action(text)
    assert format_action(action) == canonical
    assert parse_action(canonical) == action
    lowered = lower_action(action)
    sampler = lowered["samplers"][0]  # type: ignore[index]
    assert dict(sampler.params) == params
    rule = Rule("r", samplers=(sampler,))
    text_yaml = emit_rules(RulesFile({"__default__": SamplerConfig(rules_based=RulesBasedSampler((rule,)))}))
    assert validate_rules(text_yaml, "r.yaml") == []


def test_settings_are_ir_data() -> None:
    action = parse_action("dynamic(rate=5, keys=(a), weight=0.5)")
    assert isinstance(action, ir.DynamicAction) and action.settings == (("Weight", 0.5),)
    assert action != parse_action("dynamic(rate=5, keys=(a))")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dynamic(rate=5, keys=(a), weight=1.5)", "weight must be from 0 to 1"),
        ("dynamic(rate=5, keys=(a), adjustment_interval=30)", "adjustment_interval must be a duration"),
        ("dynamic(rate=5, keys=(a), max_keys=1.5)", "max_keys must be a whole number >= 0"),
        ("dynamic(rate=5, keys=(a), use_trace_length=yes)", "use_trace_length must be true or false"),
        ("dynamic(rate=5, keys=(a), use_cluster_size=true)", "dynamic has no argument 'use_cluster_size'"),
        ("throughput(per_second=5, keys=(a), burst_multiple=x)", "burst_multiple must be a number"),
        ("dynamic(rate=5, keys=(a), weigth=0.5)", "dynamic has no argument 'weigth'"),
    ],
)
def test_setting_errors(text: str, message: str) -> None:
    with pytest.raises(NectarError) as info:
        parse_action(text)
    assert message in info.value.message


def test_unknown_setting_hint_lists_the_settings() -> None:
    with pytest.raises(NectarError) as info:
        parse_action("throughput(per_second=5, keys=(a), weigth=0.5)")
    assert info.value.hint is not None and "use_cluster_size" in info.value.hint and "weight" in info.value.hint
