"""Every tree the match grammar can build has a builder, and every engine renders every plan node.

The expression builder dispatches on grammar rule names (``b_<alias>``), so a rule added to
``grammars/match.lark`` without its builder would fail only when someone writes it; this test reads the grammar's
rules instead. The engines' renderers are abstract-method complete (mypy rejects an incomplete one); here the same
is checked at run time, with every node type of the plan's two expression languages.
"""

from __future__ import annotations

import typing

import pytest

from nectar.engine import lowering, plan
from nectar.engine.duckdb_engine import DuckRenderer
from nectar.engine.polars_engine import PolarsRenderer
from nectar.policy import expr

EXPRESSION_RULES = {"or_expr", "and_expr", "not_expr", "atom", "comparison"}


def test_every_expression_rule_has_a_builder() -> None:
    parser = expr._parser()
    trees = set()
    for rule in parser.rules:
        if rule.origin.name in EXPRESSION_RULES:
            name = rule.alias or rule.origin.name
            if rule.alias or not rule.options.expand1:  # `?rule` with one child is inlined by Lark
                trees.add(str(name))
    assert trees >= {"compare", "in_list", "not_", "span_group", "untyped"}
    missing = sorted(t for t in trees if not hasattr(expr._Builder, "b_" + t))
    assert not missing, f"grammar rules without a builder in nectar/policy/expr.py: {missing}"


@pytest.mark.parametrize("renderer", [PolarsRenderer, DuckRenderer])
def test_renderers_implement_every_node(renderer: type) -> None:
    assert not getattr(renderer, "__abstractmethods__", None), renderer.__abstractmethods__
    node_types = typing.get_args(lowering.Node)
    row_types = typing.get_args(plan.Row)
    assert len(node_types) == 6 and len(row_types) == 10
    abstract = plan.Renderer.__abstractmethods__
    # one abstract method per node type (RPred is rendered through the predicate node it carries)
    assert len(abstract) == len(node_types) + len(row_types) - 1
