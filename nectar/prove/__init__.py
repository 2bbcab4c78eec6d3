"""The prover: show with the user's own traffic that a policy keeps what must be kept and fits its budget.

``prove_policy(policy, corpus, config, engine)`` -> :class:`ProofReport`; ``render_text``, ``render_junit`` and
``to_json`` render it.
"""

from nectar.prove.core import ProofReport, prove_policy
from nectar.prove.report import render_junit, render_text, to_json

__all__ = ["ProofReport", "prove_policy", "render_junit", "render_text", "to_json"]
