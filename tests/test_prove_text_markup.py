"""The prover's text report shows rule names and match expressions as written: square brackets in a regex are
text, not Rich markup (``[a-z]`` used to vanish from the rules table)."""

from __future__ import annotations

from pathlib import Path

from nectar.config import Config
from nectar.corpus.layout import Corpus
from nectar.policy.load import parse_policy
from nectar.prove import prove_policy, render_text

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

POLICY = """nectar_policy{version,name,rules}:
  1
  brackets
  rules[2]{name,match,action}:
    "[search]","http.route matches \\"^/(api/)?search(/[a-z]+)?$\\"",sample(0.25)
    rest,true,keep
"""


def test_regex_brackets_survive_the_rules_table() -> None:
    config = Config()
    policy = parse_policy(POLICY, "p.toon", config.aliases)
    text = render_text(prove_policy(policy, Corpus.open(CORPUS), config), color=False)
    assert '"^/(api/)?search(/[a-z]+)?$"' in text
    assert "[search]" in text
