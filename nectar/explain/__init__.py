"""``nectar explain``: the waggle report, so a reviewer can approve a sampling change without reading the YAML.

``explain_policy(policy, corpus, config)`` proves the policy (:mod:`nectar.prove`) and builds the report as data
(:class:`~nectar.explain.model.Explanation`, once); ``render(explanation, form)`` renders it as terminal text,
Markdown or one self-contained HTML page with charts.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import TYPE_CHECKING

from nectar.config import Config
from nectar.corpus.layout import Corpus
from nectar.engine.api import DEFAULT_ENGINE
from nectar.explain.fates import trace_fates
from nectar.explain.model import Explanation, build_explanation
from nectar.policy import ir
from nectar.prove import prove_policy

if TYPE_CHECKING:
    from nectar.diff.sources import Side


class Form(StrEnum):
    TEXT = "text"
    MD = "md"
    HTML = "html"


def explain_policy(
    policy: ir.Policy,
    corpus: Corpus,
    config: Config,
    engine: str = DEFAULT_ENGINE,
    examples: int = 3,
    against: Side | None = None,
    solver_timeout_ms: int | None = None,
) -> Explanation:
    """Prove ``policy`` on ``corpus`` and build the report; ``examples`` trace ids are shown per rule and check.

    ``against``: a baseline (``nectar explain --against OLD``): the report adds the diff from it to this policy
    (:mod:`nectar.diff`), on the corpus and, with ``solver_timeout_ms``, for every possible trace."""
    report = prove_policy(policy, corpus, config, engine=engine, max_examples=examples)
    ex = build_explanation(report, examples=examples, fates=trace_fates(report))
    if against is None:
        return ex
    from nectar.diff import diff_sides, policy_side

    new = policy_side(policy, config, label=policy.path or "<policy>")
    diff = diff_sides(against, new, config, corpus, engine, solver_timeout_ms, examples)
    return dataclasses.replace(ex, against=diff)


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
