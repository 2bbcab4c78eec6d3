"""``nectar diff``: what changes when a policy changes, for every trace of the corpus and for every possible trace.

Pipeline::

    OLD, NEW (a policy, a rules file, or either at a git revision)
      -> sources.py     each side as what ships (compiled exactly as `nectar compile` writes it, or loaded)
      -> corpus.py      every corpus trace decided by both sides in one engine pass, compared trace by trace
      -> nectar.prove.symbolic.diff_symbolic   every possible trace (z3): equivalent, or a witness per kind of change
      -> model.py       the report as data (DiffReport), rendered once: render_text.py, render_md.py, JSON

The error definition (``prove.error_definition``) and the must-keep classes (NEW's policy, else OLD's) are the
prover's predicates (:class:`nectar.prove.core.Predicate`), lowered the same way, so "error trace" means here what
it means to ``nectar prove``.
"""

from __future__ import annotations

import dataclasses

from nectar.config import Config
from nectar.corpus.layout import Corpus
from nectar.diff.corpus import corpus_diff
from nectar.diff.model import DiffReport, parse_fail_on
from nectar.diff.sources import Side, load_side, policy_side
from nectar.engine.api import DEFAULT_ENGINE
from nectar.errors import NectarError
from nectar.policy.expr import parse_expr, standalone_origin
from nectar.prove.core import Predicate, predicate_probes

DEFAULT_SOLVER_TIMEOUT_S = 20.0  # the whole symbolic pass, as `nectar prove --solver-timeout`


def predicates(config: Config, old: Side, new: Side) -> tuple[list[Predicate], Side | None]:
    """The error definition, then the must-keep classes of NEW's policy (else OLD's); and the side they came from."""
    text = config.error_definition
    try:
        expr = parse_expr(text, standalone_origin(text, "nectar.toml prove.error_definition"), config.aliases).expr
    except NectarError as exc:
        raise NectarError(f"prove.error_definition: {exc.message}", exc.span, exc.hint) from None
    source = new if new.policy is not None else (old if old.policy is not None else None)
    preds = [Predicate("errors", expr, text)]
    if source is not None and source.policy is not None:
        preds += [Predicate(f"must_keep:{m.name}", m.match, m.match_text) for m in source.policy.must_keep]
    return preds, source


def _budget(old: Side, new: Side) -> float | None:
    for side in (new, old):
        if side.policy is not None and side.policy.budget_per_second is not None:
            return side.policy.budget_per_second
    return None


def _with_rate(corpus: Corpus, config: Config) -> Corpus:
    """The corpus with ``budget.corpus_sample_rate`` from nectar.toml when set (as the prover reads it)."""
    if config.corpus_sample_rate is None:
        return corpus
    return Corpus(corpus.root, dataclasses.replace(corpus.manifest, sample_rate=config.corpus_sample_rate))


def diff_sides(
    old: Side,
    new: Side,
    config: Config,
    corpus: Corpus | None = None,
    engine: str = DEFAULT_ENGINE,
    solver_timeout_ms: int | None = round(DEFAULT_SOLVER_TIMEOUT_S * 1000),
    examples: int = 3,
    env: str | None = None,
) -> DiffReport:
    """The diff of two sides: on ``corpus`` (None: skipped) and over every possible trace (``solver_timeout_ms``
    for the whole symbolic search; None: skipped). ``examples``: trace ids shown per row."""
    preds, source = predicates(config, old, new)
    cd = None
    if corpus is not None:
        cd = corpus_diff(old, new, _with_rate(corpus, config), preds, engine, config.cluster_size, examples,
                         _budget(old, new))  # fmt: skip
    sym = None
    if solver_timeout_ms is not None:
        from nectar.prove.symbolic import Probe, diff_symbolic  # z3 loads only when the symbolic pass runs

        rules, groups = predicate_probes(preds)
        probes = [Probe(p.name, tuple(rules[i] for i in g)) for p, g in zip(preds, groups, strict=True)]
        sym = diff_symbolic(old.sampler, new.sampler, probes, solver_timeout_ms)
    return DiffReport(
        old_label=old.label,
        new_label=new.label,
        env=env,
        corpus=cd,
        symbolic=sym,
        error_definition=config.error_definition,
        must_keep=tuple((p.name.removeprefix("must_keep:"), p.text) for p in preds[1:]),
        must_keep_from=source.label if source is not None and len(preds) > 1 else None,
    )


__all__ = ["DiffReport", "Side", "diff_sides", "load_side", "parse_fail_on", "policy_side", "predicates"]
