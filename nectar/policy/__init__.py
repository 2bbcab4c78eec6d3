"""The policy language: TOON policy files with Lark-parsed match expressions, built into a typed IR.

Pipeline: ``toon`` (positioned TOON nodes) -> ``load`` (validated :class:`~nectar.policy.ir.Policy`) ->
``normalize`` (Refinery-shaped clauses, exact or refused) -> lowering to Refinery rules (later stages).
``format`` prints the canonical text back from the IR.
"""

from nectar.policy.expr import parse_expr
from nectar.policy.format import Spelling, format_expr, format_policy
from nectar.policy.ir import Policy
from nectar.policy.load import load_policy, parse_policy
from nectar.policy.normalize import Clause, normalize

__all__ = [
    "Clause",
    "Policy",
    "Spelling",
    "format_expr",
    "format_policy",
    "load_policy",
    "normalize",
    "parse_expr",
    "parse_policy",
]
