"""Property: any policy nectar compiles imports back to a policy that lowers to the very same Refinery rules
(names, order, conditions and actions), through the real emitter, yaml.v3 loader and validator."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nectar.config import Config
from nectar.errors import NectarError
from nectar.policy.lift import lift_rules_file
from nectar.policy.load import parse_policy
from nectar.policy.lower import lower_policy
from nectar.refinery.emit import emit_rules
from nectar.refinery.loader import load_rules
from tests.test_lowering import exprs

ACTIONS = ["keep", "drop", "sample(0.25)", "sample(1/7)", '"dynamic(rate=4, keys=(service.name, http.route))"',
           '"throughput(per_second=9, keys=(service.name))"',
           '"dynamic(rate=3, keys=(a), adjustment_interval=45s, weight=0.1, use_trace_length=true)"',
           '"throughput(per_second=2, keys=(a), use_cluster_size=false, max_keys=7, age_out_value=1.0)"',
           '"dynamic(rate=6, keys=(a), kind=classic, clear_frequency=1m, use_trace_length=true)"',
           '"throughput(per_second=3, keys=(b, a), kind=windowed, update_frequency=2s, lookback_frequency=20s)"',
           '"throughput(per_second=4, keys=(a), kind=total, use_cluster_size=true, max_keys=9)"']  # fmt: skip


def _cell(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(st.tuples(exprs, st.sampled_from(ACTIONS)), min_size=1, max_size=3), st.booleans())
def test_compile_then_import_is_identity(rules: list[tuple[str, str]], catch_all: bool) -> None:
    rows = [f'r{i},"",{_cell(m)},{a},{100 - i}' for i, (m, a) in enumerate(rules)]
    if catch_all:
        rows.append('rest,"",true,sample(0.5),0')
    text = (
        "nectar_policy{version,name,rules}:\n  1\n  p\n"
        + f"  rules[{len(rows)}]{{name,description,match,action,priority}}:\n"
    )
    text += "".join(f"    {r}\n" for r in rows)
    try:
        policy = parse_policy(text)
        lowered = lower_policy(policy)
    except NectarError:
        assume(False)  # refused by the policy language: nothing is compiled
        return
    assume(lowered.sampler.rules)  # no rules at all is lifted as a `true` -> keep rule (same decisions)
    compiled = load_rules(emit_rules(lowered.rules_file()))
    lifted = lift_rules_file(compiled, "__default__", Config(), "p")
    assert lower_policy(lifted.policy).sampler == lowered.sampler
