"""Every comparison a condition can make, on every kind of span value, decided by the three engines alike.

One corpus holds one trace per span value (ints, floats at the %v format boundaries, NaN, numeric and non-numeric
strings, bools, null, absent); one sampler holds one rule per (operator, Datatype, Value) of the grid. A single pass
per engine yields which rules each trace matches, and the three tables must be identical: a wrong coercion in any one
engine (the reference included) shows up as a disagreement naming the trace and the rule.

This is the systematic counterpart of the hand-written fixed cases (tests/data/engine/fixed_cases.json): it does not
say what Refinery answers, only that the engines cannot differ, over a grid too large to write by hand.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import polars as pl

from nectar.engine.api import evaluate
from nectar.refinery.model import Condition, Datatype, Operator, Rule, RulesBasedSampler
from tests.engine_helpers import corpus_from_spans

ABSENT = object()
SPAN_VALUES: list[Any] = [
    500, 0, -1, 2**62, 500.0, 500.5, 0.1, -0.0, 1e6, 999999.0, 1e21, 1e-5, float("nan"), float("inf"),
    "500", "500.0", "+500", " 500", "1e+06", "abc", "", "true", "false", "<nil>", True, False, None, ABSENT,
]  # fmt: skip
LITERALS: list[Any] = [500, 0, 500.0, 1e6, "500", "1e+06", "", "true", "<nil>", True, False, ABSENT]
COMPARISONS = [Operator.EQ, Operator.NE, Operator.LT, Operator.LE, Operator.GT, Operator.GE]
STRINGS = [Operator.STARTS_WITH, Operator.CONTAINS, Operator.DOES_NOT_CONTAIN]
DATATYPES: list[Datatype | None] = [None, *Datatype]
ENGINES = ("reference", "polars", "duckdb")


def _rules() -> list[Rule]:
    rules = []
    grid = itertools.chain(
        itertools.product(COMPARISONS, DATATYPES, LITERALS),
        itertools.product(STRINGS, DATATYPES, ["5", "", "1e", "<nil>", "tr", ABSENT]),
        itertools.product([Operator.IN, Operator.NOT_IN], DATATYPES, [(500, "500"), (True, 0.1), (1e6,)]),
        itertools.product([Operator.EXISTS, Operator.NOT_EXISTS], DATATYPES, [ABSENT]),
    )
    for k, (op, dt, lit) in enumerate(grid):
        value = None if lit is ABSENT else lit
        rules.append(Rule(f"g{k}", (Condition(("x",), op, value, dt),), sample_rate=1))
    return rules


def test_engines_agree_on_the_comparison_grid(tmp_path: Path) -> None:
    spans = [{"trace.trace_id": f"t{i:02d}"} | ({} if v is ABSENT else {"x": v}) for i, v in enumerate(SPAN_VALUES)]
    corpus = corpus_from_spans(spans, tmp_path)
    rules = _rules()
    sampler = RulesBasedSampler(tuple(rules))
    tables: dict[str, pl.DataFrame] = {}
    for engine in ENGINES:
        matches = evaluate(sampler, corpus, engine=engine, with_matches=True).matches
        assert matches is not None
        tables[engine] = matches.sort("trace_id")
    base = tables["reference"]
    assert base.height == len(SPAN_VALUES)
    # The grid is not degenerate: most rules match some value and miss another.
    per_rule = [base[f"m{k}"].sum() for k in range(len(rules))]
    assert sum(0 < n < len(SPAN_VALUES) for n in per_rule) > len(rules) // 2
    for engine in ENGINES[1:]:
        diffs = []
        for k, rule in enumerate(rules):
            col = f"m{k}"
            for tid, want, got in zip(base["trace_id"], base[col], tables[engine][col], strict=True):
                if bool(want) != bool(got):
                    value = SPAN_VALUES[int(tid[1:])]
                    cond = rule.conditions[0]
                    diffs.append(
                        f"x={value!r}: {cond.operator} {cond.value!r} (Datatype {cond.datatype}) "
                        f"reference={bool(want)} {engine}={bool(got)}"
                    )
        assert not diffs, "\n".join(diffs[:40])
