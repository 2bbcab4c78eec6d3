"""The diff on a corpus: both sides decide every trace, compared trace by trace.

**One engine pass.** Nothing decides in it: OLD's rules, NEW's rules and the predicates (the error definition and
the must-keep classes, as the prover lowers them) all ride along as probe rules that only report whether they
match (:func:`nectar.engine.api.evaluate_with_probes`), each distinct rule once (a rule both sides share is
evaluated once). Each side's decision is then its first matching rule, finished exactly as the engines finish
theirs (:func:`nectar.engine.decision.finish_decisions`: the rule's outcome, the DeterministicSampler hash). A
stateful sampler (``dynamic``, ``throughput``) is replayed per side over the traces that side sends it
(:mod:`nectar.engine.stateful`): its rates depend on which traces reach it, so each side needs its own replay, which
reads the corpus again only for those traces' keys. With ``CheckNestedFields`` on either side (its field lookups
depend on the sampler's setting) each side is evaluated on its own: three passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import polars as pl

from nectar.corpus.layout import TRACE_ID, Corpus
from nectar.diff.model import AtRisk, BudgetSide, CorpusDiff, Decided, ReasonChange, RuleVolume, TraceChange, Transition
from nectar.diff.sources import Side
from nectar.engine.api import evaluate, evaluate_with_probes, replay_stateful
from nectar.engine.decision import EvalResult, finish_decisions, keep_probabilities, keep_probability
from nectar.engine.lowering import plan_sampler
from nectar.prove.checks import budget_figures
from nectar.prove.core import Predicate, predicate_probes, read_must_keep_ids
from nectar.refinery.model import Rule, RulesBasedSampler, SamplerKind

COLS = ("rule", "keep", "rate", "reason", "sampler")
MUST_KEEP_TXT = "must-keep.txt"


def _sig(x: float | None) -> float | None:
    """9 significant digits: the same figures whichever engine summed them."""
    return None if x is None else float(f"{x:.9g}")


def _nested(side: Side) -> bool:
    choice = side.choice
    return isinstance(choice, RulesBasedSampler) and choice.check_nested_fields


class _Probes:
    """Distinct rules as probe columns ``p<k>``: ``add`` gives each rule's column."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.at: dict[object, int] = {}

    def add(self, rules: Sequence[Rule]) -> list[str]:
        cols = []
        for r in rules:
            if r.match_key not in self.at:
                self.at[r.match_key] = len(self.rules)
                self.rules.append(r)
            cols.append(f"p{self.at[r.match_key]}")
        return cols


def side_decisions(
    ids: pl.DataFrame, matches: pl.DataFrame, cols: list[str], side: Side, corpus: Corpus, engine: str, cluster: int
) -> pl.DataFrame:
    """A side's decisions (the engines' table) from whether each of its rules matches (``cols``, in rule order):
    the first match decides; then the engines' finishing and the side's stateful replay."""
    if cols:
        first = pl.coalesce([pl.when(pl.col(c)).then(pl.lit(i, dtype=pl.Int32)) for i, c in enumerate(cols)])
        per_trace = ids.with_columns(matches.select(first.alias("rule_index")).to_series())
    else:  # a top-level sampler, or no rules: nothing matches
        per_trace = ids.with_columns(pl.lit(None, dtype=pl.Int32).alias("rule_index"))
    decided = EvalResult(finish_decisions(per_trace, plan_sampler(side.sampler)))
    return replay_stateful(decided, side.sampler, corpus, engine, cluster).decisions


def _decisions(
    old: Side,
    new: Side,
    corpus: Corpus,
    probe_rules: Sequence[Rule],
    groups: list[list[int]],
    engine: str,
    cluster: int,
) -> tuple[pl.DataFrame, pl.DataFrame, list[pl.Series], str]:
    """Both sides' decisions (same rows, sorted by trace id), each predicate's hits, and how the engine ran."""
    probes = _Probes()
    nested = _nested(old) or _nested(new)
    o_cols = [] if nested else probes.add(old.rules)
    n_cols = [] if nested else probes.add(new.rules)
    pred_cols = [probes.add([probe_rules[i] for i in g]) for g in groups]
    result, pm = evaluate_with_probes(RulesBasedSampler(()), tuple(probes.rules), corpus, engine, cluster)
    ids = result.decisions.select(TRACE_ID, "spans")
    if nested:
        o = evaluate(old.sampler, corpus, engine, cluster_size=cluster).decisions
        n = evaluate(new.sampler, corpus, engine, cluster_size=cluster).decisions
        how = "three engine passes, CheckNestedFields: each side on its own, then the predicates"
    else:
        o = side_decisions(ids, pm, o_cols, old, corpus, engine, cluster)
        n = side_decisions(ids, pm, n_cols, new, corpus, engine, cluster)
        how = f"one engine pass, {len(probes.rules)} distinct rules of both sides and the predicates"
    hits = [pm.select(pl.any_horizontal(c) if c else pl.repeat(False, pm.height)).to_series() for c in pred_cols]
    return o, n, hits, how


def _decided(prefix: str, rate: str = "rate") -> pl.Expr:
    return pl.struct(
        pl.col(f"{prefix}_rule").alias("rule"),
        pl.col(f"{prefix}_keep").alias("keep"),
        pl.col(f"{prefix}_{rate}").alias("rate"),
        pl.col(f"{prefix}_sampler").alias("sampler"),
    )


def _as_decided(d: dict[str, Any]) -> Decided:
    rate = d["rate"]
    return Decided(d["rule"], str(d["keep"]), None if rate is None else int(rate), d["sampler"])


def _examples(limit: int) -> pl.Expr:
    return pl.col(TRACE_ID).sort().head(limit).alias("examples")


def _transitions(changed: pl.DataFrame, limit: int) -> tuple[Transition, ...]:
    keys = ["o_rule", "o_keep", "o_shown", "o_sampler", "n_rule", "n_keep", "n_shown", "n_sampler"]
    groups = (
        changed.group_by(keys)
        .agg(pl.len().alias("traces"), pl.col("spans").sum().alias("spans"), _examples(limit))
        .sort(["traces", "spans", *keys], descending=[True, True] + [False] * len(keys), nulls_last=True)
    )
    out = []
    for g in groups.to_dicts():
        old = Decided(g["o_rule"], g["o_keep"], g["o_shown"], g["o_sampler"])
        new = Decided(g["n_rule"], g["n_keep"], g["n_shown"], g["n_sampler"])
        out.append(Transition(old, new, int(g["traces"]), int(g["spans"]), tuple(g["examples"])))
    return tuple(out)


def _reason_only(same: pl.DataFrame, limit: int) -> tuple[ReasonChange, ...]:
    keys = ["o_rule", "n_rule", "o_reason", "n_reason"]
    groups = (
        same.group_by(keys)
        .agg(
            pl.len().alias("traces"),
            pl.col("spans").sum().alias("spans"),
            (pl.col("o_keep") == "false").sum().alias("dropped"),
            _examples(limit),
        )
        .sort(["traces", *keys], descending=[True] + [False] * len(keys), nulls_last=True)
    )
    return tuple(
        ReasonChange(
            g["o_rule"],
            g["n_rule"],
            g["o_reason"],
            g["n_reason"],
            int(g["traces"]),
            int(g["spans"]),
            int(g["dropped"]),
            tuple(g["examples"]),
        )
        for g in groups.to_dicts()
    )


def _budget(dec: pl.DataFrame, corpus: Corpus) -> BudgetSide:
    m = corpus.manifest
    b = budget_figures(dec, dec.select(keep_probability()).to_series(), m.window_seconds, m.sample_rate)
    spans = int(dec.get_column("spans").sum() or 0)
    return BudgetSide(
        _sig(b.expected_per_second),
        _sig(b.upper95_per_second),
        _sig(b.expected_kept_spans) or 0.0,
        _sig(b.expected_kept_spans / spans if spans else 0.0) or 0.0,
    )


def _kept_by_label(dec: pl.DataFrame, side: Side) -> dict[str, float]:
    """Expected kept spans per rule label (the policy rule for a policy side), summed from integer counts grouped
    by (rule, keep, rate) in a fixed order: the same figures on every engine."""
    groups = (
        dec.group_by("rule", "keep", "rate", "sampler")
        .agg(pl.col("spans").sum().alias("spans"))
        .sort("rule", "keep", "rate", "sampler", nulls_last=True)
        .to_dicts()
    )
    ps = keep_probabilities([(g["keep"], int(g["rate"])) for g in groups]) if groups else []
    terms: dict[str, list[float]] = {}
    for g, p in zip(groups, ps, strict=True):
        terms.setdefault(_label(side, g["rule"], g["sampler"]), []).append(int(g["spans"]) * p)
    return {k: math.fsum(v) for k, v in terms.items()}


def _label(side: Side, rule: str | None, sampler: str | None) -> str:
    if rule is not None:
        return side.policy_rule(rule) or rule
    return f"(top-level {sampler})" if sampler else "(no rule)"  # a sampler without a rule: the top-level one


def _per_rule(o: pl.DataFrame, n: pl.DataFrame, old: Side, new: Side, corpus: Corpus) -> tuple[RuleVolume, ...]:
    ok, nk = _kept_by_label(o, old), _kept_by_label(n, new)
    labels: list[str] = []
    for side, kept in ((new, nk), (old, ok)):
        for r in side.rules:
            labels.append(_label(side, r.name, None))
        labels += sorted(kept)  # the default and top-level labels (rule labels are already in)
    m = corpus.manifest

    def eps(x: float | None) -> float | None:
        if x is None or m.window_seconds <= 0:
            return None
        return _sig(x * m.sample_rate / m.window_seconds)

    out = []
    old_labels = {_label(old, r.name, None) for r in old.rules} | set(ok)
    new_labels = {_label(new, r.name, None) for r in new.rules} | set(nk)
    for label in dict.fromkeys(labels):
        ov = ok.get(label, 0.0) if label in old_labels else None
        nv = nk.get(label, 0.0) if label in new_labels else None
        out.append(RuleVolume(label, _sig(ov), _sig(nv), eps(ov), eps(nv)))
    return tuple(out)


def _at_risk(df: pl.DataFrame, hits: list[tuple[str, str, pl.Series]], limit: int) -> tuple[AtRisk, ...]:
    out = []
    lower = pl.col("n_p") < pl.col("o_p")
    for name, definition, hit in hits:
        mine = df.filter(hit)
        risky = mine.filter(lower).sort(TRACE_ID)
        rows = risky.head(limit).select(TRACE_ID, "spans", _decided("o").alias("old"), _decided("n").alias("new"))
        examples = tuple(
            TraceChange(r[TRACE_ID], int(r["spans"]), _as_decided(r["old"]), _as_decided(r["new"]))
            for r in rows.to_dicts()
        )
        spans = int(risky.get_column("spans").sum() or 0)
        out.append(AtRisk(name, definition, mine.height, risky.height, spans, examples))
    return tuple(out)


def corpus_diff(
    old: Side,
    new: Side,
    corpus: Corpus,
    preds: Sequence[Predicate],
    engine: str,
    cluster_size: int = 1,
    examples: int = 3,
    budget_per_second: float | None = None,
) -> CorpusDiff:
    """Decide every trace of ``corpus`` with both sides and compare (see the module docstring). ``preds``: the error
    definition first, then the must-keep classes; ``examples``: trace ids shown per row."""
    probe_rules, groups = predicate_probes(list(preds))
    o, n, hits, how = _decisions(old, new, corpus, probe_rules, groups, engine, cluster_size)
    if o.get_column(TRACE_ID).to_list() != n.get_column(TRACE_ID).to_list():  # pragma: no cover
        raise AssertionError("the two sides decided different traces")
    stateful = pl.col("sampler").is_in(list(SamplerKind.STATEFUL))
    shown = pl.when(stateful).then(None).otherwise(pl.col("rate")).alias("shown")
    p = keep_probability().alias("p")
    df = pl.concat(
        [
            o.select(
                TRACE_ID, "spans", *[pl.col(c).alias(f"o_{c}") for c in COLS], shown.alias("o_shown"), p.alias("o_p")
            ),
            n.select(*[pl.col(c).alias(f"n_{c}") for c in COLS], shown.alias("n_shown"), p.alias("n_p")),
        ],
        how="horizontal",
    )
    both_drop = (pl.col("o_keep") == "false") & (pl.col("n_keep") == "false")
    alike = (
        (pl.col("o_keep") == pl.col("n_keep"))
        & (pl.col("o_rate") == pl.col("n_rate"))
        & pl.col("o_sampler").eq_missing(pl.col("n_sampler"))
    )
    same = both_drop | alike
    must = [(p.name, p.text, h) for p, h in zip(preds, hits, strict=True)]
    ids = read_must_keep_ids(corpus)
    if ids is not None:
        must.append((MUST_KEEP_TXT, f"trace ids listed in {MUST_KEEP_TXT}", df.get_column(TRACE_ID).is_in(ids)))
    m = corpus.manifest
    return CorpusDiff(
        corpus_path=str(corpus.root),
        engine=engine,
        traces=df.height,
        spans=int(df.get_column("spans").sum() or 0),
        window_seconds=m.window_seconds,
        sample_rate=m.sample_rate,
        transitions=_transitions(df.filter(~same), examples),
        reason_only=_reason_only(df.filter(same & (pl.col("o_reason") != pl.col("n_reason"))), examples),
        old_budget=_budget(o, corpus),
        new_budget=_budget(n, corpus),
        budget_per_second=budget_per_second,
        at_risk=_at_risk(df, must, examples),
        per_rule=_per_rule(o, n, old, new, corpus),
        passes=how,
    )


__all__ = ["corpus_diff", "side_decisions"]
