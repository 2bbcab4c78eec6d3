"""``nectar explain``: the waggle report, so a reviewer can approve a sampling change without reading the YAML.

``explain_policy(policy, corpus, config)`` proves the policy (:mod:`nectar.prove`) and builds the report as data
(:class:`~nectar.explain.model.Explanation`, once); ``render(explanation, form)`` renders it as terminal text,
Markdown or one self-contained HTML page with charts.
"""

from __future__ import annotations

from enum import StrEnum

from nectar.config import Config
from nectar.corpus.layout import Corpus
from nectar.engine.api import DEFAULT_ENGINE
from nectar.explain.fates import trace_fates
from nectar.explain.model import Explanation, build_explanation
from nectar.policy import ir
from nectar.prove import prove_policy


class Form(StrEnum):
    TEXT = "text"
    MD = "md"
    HTML = "html"


def explain_policy(
    policy: ir.Policy, corpus: Corpus, config: Config, engine: str = DEFAULT_ENGINE, examples: int = 3
) -> Explanation:
    """Prove ``policy`` on ``corpus`` and build the report; ``examples`` trace ids are shown per rule and check."""
    report = prove_policy(policy, corpus, config, engine=engine, max_examples=examples)
    return build_explanation(report, examples=examples, fates=trace_fates(report))


def render(ex: Explanation, form: Form | str, color: bool = False, width: int = 120) -> str:
    """The report in one form. ``color`` and ``width`` apply to the terminal form only."""
    form = Form(form)
    if form is Form.HTML:
        from nectar.explain.render_html import render_html  # matplotlib is imported only for the HTML form

        return render_html(ex)
    if form is Form.MD:
        from nectar.explain.render_md import render_md

        return render_md(ex)
    from nectar.explain.render_text import render_text

    return render_text(ex, color=color, width=width)


__all__ = ["Explanation", "Form", "build_explanation", "explain_policy", "render"]
