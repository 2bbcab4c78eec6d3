"""``nectar propose``: plain English to a proven policy, offline (grounded in the corpus) or with Claude.

* :func:`propose_offline` (``offline.py`` with ``clauses.py``, ``subjects.py``, ``grounding.py``): deterministic,
  every word grounded in the corpus field catalog, every mapping reported;
* :func:`propose_claude` (``claude.py``, ``prompt.py``): the Anthropic SDK, a ``submit_policy`` tool, bounded
  repair rounds with the parser's diagnostics and the prover's counterexamples.

Both return a :class:`Proposal` (a validated policy, its canonical text, notes and assumptions).
"""

from nectar.propose.claude import ClaudeSettings, ServiceError, propose_claude
from nectar.propose.common import Note, Proposal, RuleSpec, explain_rule
from nectar.propose.offline import propose_offline

__all__ = [
    "ClaudeSettings",
    "Note",
    "Proposal",
    "RuleSpec",
    "ServiceError",
    "explain_rule",
    "propose_claude",
    "propose_offline",
]
