"""``nectar propose``: plain English to a proven policy, offline (grounded in the corpus) or with Claude."""

from nectar.propose.common import Note, Proposal, RuleSpec, explain_rule
from nectar.propose.offline import propose_offline

__all__ = ["Note", "Proposal", "RuleSpec", "explain_rule", "propose_offline"]
