"""The waggle report as data: built once from a :class:`~nectar.prove.core.ProofReport`, rendered by each form.

Everything a renderer shows is computed here, so the terminal, Markdown and HTML forms say the same thing with the
same numbers. Sums of keep probabilities are computed from integer counts grouped by (rule, keep, rate) in a fixed
order, so that the figures (and the chart bytes) do not depend on the order a parallel engine adds floats in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from nectar.corpus.layout import ARRIVAL, PARENT_ID, TRACE_ID, Corpus, ValueType
from nectar.engine.decision import keep_probabilities
from nectar.engine.stateful import SamplerRun
from nectar.explain.english import describe_rule
from nectar.explain.fates import Fate, fate_phrase
from nectar.policy.format import format_action, format_expr
from nectar.prove.checks import CheckResult, verdict
from nectar.prove.core import ProofReport
from nectar.refinery.emit import emit_rules, scalar
from nectar.refinery.model import Condition, Operator, Rule, RulesBasedSampler, RulesFile, SamplerConfig

if TYPE_CHECKING:
    from nectar.diff.model import DiffReport

DURATION_FIELD = "duration_ms"
BINS_PER_DECADE = 5
KEEP_ORDER = ("true", "sampled", "false")  # the decisions table's ``keep`` values, in display order
KEEP_LABELS = {"true": "kept", "sampled": "sampled", "false": "dropped"}


@dataclass(frozen=True, slots=True)
class Caveat:
    """A finding of the prover (a corpus lint or a Refinery trap) or a policy warning."""

    code: str
    severity: str
    message: str
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class ClauseView:
    """One Refinery rule lowered from a policy rule (an ``or`` gives several), with its corpus figures."""

    name: str
    matched_traces: int
    matched_spans: int
    decided_traces: int
    decided_spans: int


@dataclass(frozen=True, slots=True)
class RuleView:
    """One policy rule, in evaluation order: what it does, its Refinery form, and what it did on the corpus."""

    position: int  # 1-based evaluation order
    name: str
    description: str  # the author's description
    match: str  # canonical match text
    action: str  # canonical action text
    priority: int
    sentence: str  # plain English (nectar.explain.english)
    notes: tuple[str, ...]
    refinery_yaml: str  # the lowered rules as they appear in rules.yaml (dedented list items)
    refinery_compact: tuple[str, ...]  # the same, one line per Refinery rule
    clauses: tuple[ClauseView, ...]
    decided_traces: int
    decided_spans: int
    by_keep: dict[str, int]  # decided traces per keep outcome ("true", "sampled", "false")
    expected_kept_traces: float
    expected_kept_spans: float
    kept_events_per_sec: float | None
    kept_share: float | None  # of all expected kept spans
    budget_share: float | None  # of budget_per_second
    examples: tuple[str, ...]  # the first decided trace ids
    caveats: tuple[Caveat, ...]

    @property
    def matched_traces(self) -> int:
        """Traces the rule's conditions matched (for several clauses: the largest clause, a lower bound)."""
        return max((c.matched_traces for c in self.clauses), default=0)


@dataclass(frozen=True, slots=True)
class Histogram:
    """Root-span durations (ms) of all traces and of kept traces (weighted by keep probability), log-spaced bins."""

    edges: tuple[float, ...]
    all_traces: tuple[int, ...]
    kept: tuple[float, ...]
    traces: int  # traces with a root span and a duration
    without_root: int  # traces without one (not in the histogram)


@dataclass(frozen=True, slots=True)
class Explanation:
    """The whole report: policy, corpus, rules, totals, budget, checks, error and must-keep outcomes, latency."""

    policy_name: str
    policy_path: str
    policy_description: str
    corpus_path: str
    corpus_spans: int
    corpus_traces: int
    window_seconds: float
    sample_rate: float
    engine: str
    error_definition: str
    passed: bool
    rules: tuple[RuleView, ...]
    total_traces: int
    total_spans: int
    expected_kept_traces: float
    expected_kept_spans: float
    by_keep: dict[str, dict[str, int]]  # keep outcome -> {"traces", "spans"}
    budget_per_second: float | None
    expected_per_second: float | None
    upper95_per_second: float | None
    checks: tuple[CheckResult, ...]
    unmatched_traces: int  # decided by no rule (Refinery keeps them)
    unmatched_spans: int
    catch_all: str | None
    policy_caveats: tuple[Caveat, ...]
    latency: Histogram | None
    fates: tuple[Fate, ...] = ()  # error traces and must-keep classes, by deciding rule
    samplers: tuple[SamplerRun, ...] = ()  # each stateful sampler's replay over the corpus
    against: DiffReport | None = None  # `--against OLD`: what changes from OLD to this policy (nectar.diff)

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def verdict(self) -> str:
        """The prover's verdict in words: never "all checks passed" when a check was vacuous or waived."""
        return verdict(self.checks)

    @property
    def outcome(self) -> str:
        """``pass``, ``fail``, or ``caveat`` when no check failed but one was vacuous or waived."""
        if not self.passed:
            return "fail"
        return "caveat" if any(c.status in ("vacuous", "waived") for c in self.checks) else "pass"


# ------------------------------------------------------------------------------------------------- building


def _refinery_yaml(rules: Iterable[Rule]) -> str:
    """The lowered rules as list items, exactly as ``nectar compile`` writes them (without the file's header)."""
    rules_file = RulesFile({"__default__": SamplerConfig(rules_based=RulesBasedSampler(tuple(rules)))})
    lines = emit_rules(rules_file).splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip() == "Rules:") + 1
    body = lines[start:]
    indent = min(len(ln) - len(ln.lstrip()) for ln in body if ln.strip())
    return "\n".join(ln[indent:] for ln in body) + "\n"


def _compact_condition(c: Condition) -> str:
    fields = c.fields[0] if c.single_field and len(c.fields) == 1 else "[" + ", ".join(c.fields) + "]"
    op = c.operator.value if c.operator is not None else (c.operator_text or "(no operator)")
    if c.value is None:
        value = ""
    elif isinstance(c.value, tuple):
        value = " [" + ", ".join(scalar(v) for v in c.value) + "]"
    else:
        value = " " + scalar(c.value)
    dtype = f" ({c.datatype.value})" if c.datatype is not None else ""
    if c.operator is Operator.HAS_ROOT_SPAN:
        return f"{op} {scalar(c.value)}"
    return f"{fields} {op}{value}{dtype}"


def _param(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(scalar(x) for x in v) + "]"
    return scalar(v) if isinstance(v, (str, int, float, bool)) else str(v)


def compact_rule(rule: Rule) -> str:
    """One Refinery rule on one line: ``name: [scope span:] cond AND cond -> SampleRate N`` (or Drop, Sampler)."""
    conds = " AND ".join(_compact_condition(c) for c in rule.conditions or ()) or "(no conditions: every trace)"
    scope = "Scope span: " if rule.scope == "span" else ""
    if rule.samplers:
        s = rule.samplers[0]
        params = ", ".join(f"{k}={_param(v)}" for k, v in sorted(s.params.items()))
        action = f"Sampler {s.kind}({params})"
    elif rule.drop:
        action = "Drop"
    else:
        action = f"SampleRate {rule.sample_rate}"
    return f"{rule.name}: {scope}{conds} -> {action}"


def _outcomes(decisions: pl.DataFrame) -> dict[int | None, list[tuple[str, int, int, int]]]:
    """Per rule index: (keep, rate, traces, spans) groups, sorted (integer counts: exact and order-free)."""
    groups = (
        decisions.group_by("rule_index", "keep", "rate")
        .agg(pl.len().alias("traces"), pl.col("spans").sum().alias("spans"))
        .sort("rule_index", "keep", "rate", nulls_last=True)
        .to_dicts()
    )
    out: dict[int | None, list[tuple[str, int, int, int]]] = {}
    for g in groups:
        out.setdefault(g["rule_index"], []).append((g["keep"], int(g["rate"]), int(g["traces"]), int(g["spans"])))
    return out


def _expected(groups: list[tuple[str, int, int, int]]) -> tuple[float, float]:
    """Expected kept (traces, spans) of outcome groups, summed in their fixed order."""
    if not groups:
        return 0.0, 0.0
    ps = keep_probabilities([(k, r) for k, r, _, _ in groups])
    traces = math.fsum(t * p for (_, _, t, _), p in zip(groups, ps, strict=True))
    spans = math.fsum(s * p for (_, _, _, s), p in zip(groups, ps, strict=True))
    return traces, spans


def _examples(decisions: pl.DataFrame, indexes: list[int], limit: int) -> tuple[str, ...]:
    if limit <= 0 or not indexes:
        return ()
    ids = decisions.filter(pl.col("rule_index").is_in(indexes)).get_column("trace_id").sort().head(limit)
    return tuple(ids.to_list())


def _caveat(lint: Any) -> Caveat:
    return Caveat(lint.code, lint.severity, lint.message, lint.hint)


def root_durations(corpus: Corpus) -> pl.DataFrame | None:
    """Per trace with a root span: its root span's ``duration_ms`` (the last root to arrive, as Refinery keeps the
    last one it sees). None when the corpus has no ``duration_ms`` field."""
    cols = corpus.field_columns.get(DURATION_FIELD, {})
    numeric = [cols[t] for t in (ValueType.INT, ValueType.FLOAT) if t in cols]
    if not numeric:
        return None
    dur = pl.coalesce([pl.col(c).cast(pl.Float64) for c in numeric]).alias("duration")
    return (
        corpus.scan()
        .filter(pl.col(PARENT_ID).is_null())
        .select(pl.col(TRACE_ID), pl.col(ARRIVAL), dur)
        .sort(ARRIVAL)
        .group_by(TRACE_ID)
        .agg(pl.col("duration").last())
        .filter(pl.col("duration").is_not_null())
        .collect()
    )


def latency_histogram(corpus: Corpus, decisions: pl.DataFrame) -> Histogram | None:
    """Root durations of all traces and of kept traces (each weighted by its keep probability)."""
    roots = root_durations(corpus)
    if roots is None or roots.height == 0:
        return None
    df = decisions.select("trace_id", "keep", "rate").join(roots, on="trace_id", how="inner")
    positive = df.filter(pl.col("duration") > 0).get_column("duration")
    lo_v = float(positive.min()) if positive.len() else 1.0  # type: ignore[arg-type]
    hi_v = float(positive.max()) if positive.len() else 1.0  # type: ignore[arg-type]
    lo = math.floor(math.log10(lo_v))
    hi = max(math.ceil(math.log10(hi_v)), lo + 1)
    if 10.0**hi <= hi_v:  # the maximum sits exactly on a decade: one more decade, so it is inside the last bin
        hi += 1
    nbins = (hi - lo) * BINS_PER_DECADE
    edges = tuple(float(f"{10.0 ** (lo + i / BINS_PER_DECADE):.6g}") for i in range(nbins + 1))
    logd = pl.col("duration").clip(lower_bound=edges[0]).log10()
    binned = df.with_columns(((logd - lo) * BINS_PER_DECADE).floor().cast(pl.Int64).clip(0, nbins - 1).alias("bin"))
    groups = binned.group_by("bin", "keep", "rate").agg(pl.len().alias("n")).sort("bin", "keep", "rate").to_dicts()
    all_counts = [0] * nbins
    kept_terms: list[list[float]] = [[] for _ in range(nbins)]
    ps = keep_probabilities([(g["keep"], int(g["rate"])) for g in groups]) if groups else []
    for g, p in zip(groups, ps, strict=True):
        all_counts[g["bin"]] += int(g["n"])
        kept_terms[g["bin"]].append(int(g["n"]) * p)
    kept = tuple(math.fsum(t) for t in kept_terms)
    return Histogram(edges, tuple(all_counts), kept, df.height, decisions.height - df.height)


def build_explanation(
    report: ProofReport, examples: int = 3, latency: bool = True, fates: tuple[Fate, ...] = ()
) -> Explanation:
    """The report as data (see the module docstring). ``examples``: trace ids shown per rule; ``fates``: from
    :func:`nectar.explain.fates.trace_fates`."""
    policy = report.policy
    lowered = report.lowered
    dec = report.decisions
    outcomes = _outcomes(dec)
    replay_rules = report.replay["rules"]
    budget = policy.budget_per_second
    total_kept_t, total_kept_s = _expected([g for gs in outcomes.values() for g in gs])

    rules: list[RuleView] = []
    ordered = policy.ordered_rules()
    for pos, prule in enumerate(ordered, 1):
        idx = [i for i, o in enumerate(lowered.origins) if o.policy_rule == prule.name]
        groups = sorted(g for i in idx for g in outcomes.get(i, []))
        exp_t, exp_s = _expected(groups)
        by_keep = {k: sum(t for kk, _, t, _ in groups if kk == k) for k in KEEP_ORDER}
        eps_parts = [replay_rules[i]["kept_events_per_sec"] for i in idx]
        eps = None if not idx or any(e is None for e in eps_parts) else math.fsum(eps_parts)
        text = describe_rule(prule, first=pos == 1)
        clauses = tuple(
            ClauseView(
                replay_rules[i]["name"],
                replay_rules[i]["matched"]["traces"],
                replay_rules[i]["matched"]["spans"],
                replay_rules[i]["decided"]["traces"],
                replay_rules[i]["decided"]["spans"],
            )
            for i in idx
        )
        rules.append(
            RuleView(
                position=pos,
                name=prule.name,
                description=prule.description,
                match=format_expr(prule.match),
                action=format_action(prule.action),
                priority=prule.priority,
                sentence=text.sentence,
                notes=text.notes,
                refinery_yaml=_refinery_yaml(lowered.sampler.rules[i] for i in idx) if idx else "",
                refinery_compact=tuple(compact_rule(lowered.sampler.rules[i]) for i in idx),
                clauses=clauses,
                decided_traces=sum(t for _, _, t, _ in groups),
                decided_spans=sum(s for _, _, _, s in groups),
                by_keep=by_keep,
                expected_kept_traces=exp_t,
                expected_kept_spans=exp_s,
                kept_events_per_sec=eps,
                kept_share=(exp_s / total_kept_s) if total_kept_s > 0 else None,
                budget_share=(eps / budget) if eps is not None and budget else None,
                examples=_examples(dec, idx, examples),
                caveats=tuple(_caveat(lint) for lint in report.lints if lint.rule == prule.name),
            )
        )

    by_keep_total: dict[str, dict[str, int]] = {}
    for k in KEEP_ORDER:
        gs = [g for gs in outcomes.values() for g in gs if g[0] == k]
        by_keep_total[k] = {"traces": sum(g[2] for g in gs), "spans": sum(g[3] for g in gs)}
    unmatched = outcomes.get(None, [])
    policy_caveats = [_caveat(lint) for lint in report.lints if lint.rule not in {r.name for r in ordered}]
    policy_caveats += [Caveat("policy", "warning", d.message, d.hint) for d in policy.diagnostics]
    catch = next((lowered.origins[i].policy_rule for i, r in enumerate(lowered.sampler.rules) if r.is_catch_all), None)
    m = report.corpus.manifest
    b = report.budget
    return Explanation(
        policy_name=policy.name,
        policy_path=policy.path or "<policy>",
        policy_description=policy.description,
        corpus_path=str(report.corpus.root),
        corpus_spans=m.spans,
        corpus_traces=m.traces,
        window_seconds=m.window_seconds,
        sample_rate=m.sample_rate,
        engine=report.engine,
        error_definition=report.error_definition,
        passed=report.passed,
        rules=tuple(rules),
        total_traces=dec.height,
        total_spans=int(dec.get_column("spans").sum() or 0),
        expected_kept_traces=total_kept_t,
        expected_kept_spans=total_kept_s,
        by_keep=by_keep_total,
        budget_per_second=budget,
        expected_per_second=_sig(b.expected_per_second),
        upper95_per_second=_sig(b.upper95_per_second),
        checks=tuple(report.checks),
        unmatched_traces=sum(g[2] for g in unmatched),
        unmatched_spans=sum(g[3] for g in unmatched),
        catch_all=catch,
        policy_caveats=tuple(policy_caveats),
        latency=latency_histogram(report.corpus, dec) if latency else None,
        fates=fates,
        samplers=report.samplers,
    )


def _sig(x: float | None) -> float | None:
    """9 significant digits: stable output without float noise (as the replay report)."""
    return None if x is None else float(f"{x:.9g}")


# ------------------------------------------------------------------------------------------------- shared phrasing


def fmt_num(x: float | int | None, digits: int = 4) -> str:
    """A count or a rate for people: thousands separators; ``digits`` significant digits for fractions."""
    if x is None:
        return "-"
    if isinstance(x, int) or (float(x).is_integer() and abs(x) < 1e15):
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:,.{digits}g}"


def plural(n: int, noun: str) -> str:
    """``1 trace``, ``2 traces``."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def traces_spans(traces: int, spans: int) -> str:
    """``8 traces (16 spans)``."""
    return f"{plural(traces, 'trace')} ({plural(spans, 'span')})"


def corpus_phrase(ex: Explanation) -> str:
    """``50,000 spans, 9,257 traces over 3,600 s, the corpus is 1 in 1 of traffic; engine polars``."""
    return (
        f"{plural(ex.corpus_spans, 'span')}, {plural(ex.corpus_traces, 'trace')} over {fmt_num(ex.window_seconds)} s, "
        f"the corpus is 1 in {ex.sample_rate:g} of traffic; engine {ex.engine}"
    )


def fmt_pct(x: float | None) -> str:
    """A share (0..1) as a percentage; tiny non-zero shares are not shown as 0%."""
    if x is None:
        return "-"
    pct = 100 * x
    if pct == 0:
        return "0%"
    if pct < 0.01:
        return "<0.01%"
    if pct < 10:
        return f"{pct:.2f}%"
    return f"{pct:.1f}%"


def summary_lines(ex: Explanation) -> list[str]:
    """The policy as a whole, in sentences: volume, budget, errors, must-keep, unmatched traffic."""
    lines = []
    kept_t = ex.by_keep["true"]["traces"]
    sampled_t = ex.by_keep["sampled"]["traces"]
    dropped_t = ex.by_keep["false"]["traces"]
    if ex.total_traces == 0:
        return ["The corpus holds no traces: there is nothing to decide. Ingest traces with `nectar ingest`."]
    share = ex.expected_kept_spans / ex.total_spans if ex.total_spans else 0.0
    lines.append(
        f"Volume: of {traces_spans(ex.total_traces, ex.total_spans)}, {kept_t:,} are always kept, "
        f"{sampled_t:,} are sampled and {dropped_t:,} are always dropped; expected kept: "
        f"{fmt_num(ex.expected_kept_traces)} traces, {fmt_num(ex.expected_kept_spans)} spans ({fmt_pct(share)} "
        f"of spans), so {fmt_pct(1 - share)} of the event volume is dropped."
    )
    if ex.expected_per_second is None:
        lines.append("Budget: the corpus time window is 0 s, so no rate can be estimated.")
    else:
        rate = (
            f"expected {fmt_num(ex.expected_per_second)} kept events/s (95% upper bound "
            f"{fmt_num(ex.upper95_per_second)}), scaled to traffic with the corpus as 1 in {ex.sample_rate:g}"
        )
        if ex.budget_per_second is None:
            lines.append(f"Budget: {rate}; the policy sets no budget_per_second.")
        else:
            use = (ex.expected_per_second or 0.0) / ex.budget_per_second
            up = (ex.upper95_per_second or 0.0) / ex.budget_per_second
            lines.append(
                f"Budget: {rate}, against a budget of {fmt_num(ex.budget_per_second)}/s: {fmt_pct(use)} of the "
                f"budget ({fmt_pct(up)} at the upper bound)."
            )
    for run in ex.samplers:
        who = ", ".join(run.rules) or "the top-level sampler"
        lines.append(
            f"Stateful sampler {run.kind} ({who}): replayed over the corpus, it gave {plural(run.traces, 'trace')} "
            f"over {plural(run.keys, 'key')} a rate of {fmt_num(run.mean_rate)} on average (weighted by spans); "
            f"{run.note}."
        )
    fates = {f.label: f for f in ex.fates}
    err = ex.check("errors")
    if err is not None:
        f = err.figures
        how = _by_rule(fates.get("error traces"))
        if f.get("declared", 0) == 0:
            lines.append(
                f"Error traces ({ex.error_definition}): none in the corpus, so the errors check is vacuous: "
                "nothing was checked."
            )
        elif err.status == "waived":
            lines.append(
                f"Error traces ({ex.error_definition}): {f['not_always_kept']:,} of {f['declared']:,} are not always "
                f"kept, all by waived rules ({_waived(err)}){how}."
            )
        elif err.status == "pass":
            lines.append(
                f"Error traces ({ex.error_definition}): all {f['declared']:,} are kept with probability 1{how}."
            )
        else:
            waived = f", {f['waived']:,} of them waived ({_waived(err)})" if err.waived else ""
            lines.append(
                f"Error traces ({ex.error_definition}): {f['not_always_kept']:,} of {f['declared']:,} are NOT "
                f"always kept{waived}{how}."
            )
    mk = ex.check("must_keep")
    if mk is not None:
        if mk.status == "skip":
            lines.append("Must-keep traces: none declared (no must_keep classes, no must-keep.txt).")
        else:
            f = mk.figures
            declared, kept = f.get("declared", 0), f.get("kept", 0)
            verdict = "all kept with probability 1" if kept == declared else f"{declared - kept:,} NOT always kept"
            extra = ""
            if "listed_ids" in f:
                missing = f["listed_ids_not_in_corpus"]
                extra = f" ({plural(f['listed_ids'], 'id')} in must-keep.txt, {missing:,} of them not in the corpus)"
            lines.append(f"Must-keep traces: {kept:,} of {declared:,} kept, {verdict}{extra}.")
            for fate in ex.fates:
                if fate.label != "error traces":
                    what = f"{fate.label} ({fate.definition})" if fate.definition else fate.label
                    lines.append(f"Must-keep {what}: {plural(fate.traces, 'trace')}{_by_rule(fate)}.")
    if ex.unmatched_traces:
        lines.append(
            f"Unmatched traffic: {traces_spans(ex.unmatched_traces, ex.unmatched_spans)} match no rule, and "
            "Refinery keeps them all (add a catch-all rule, match `true`, to decide them)."
        )
    else:
        catch = next((r for r in ex.rules if r.name == ex.catch_all), None)
        if catch is not None:
            lines.append(
                f"Unmatched traffic: no trace goes undecided; the catch-all {catch.name!r} decides the "
                f"{traces_spans(catch.decided_traces, catch.decided_spans)} no earlier rule matched."
            )
    return lines


def _waived(c: CheckResult) -> str:
    return "; ".join(f"{w.traces:,} decided by {w.rule}: {w.reason}" for w in c.waived)


def _by_rule(fate: Fate | None) -> str:
    return f"; {fate_phrase(fate)}" if fate is not None and fate.rows else ""


ORDER_NOTE = "Rules are tried in this order; the first rule whose conditions match a trace decides it (as Refinery)."


def check_label(c: CheckResult) -> str:
    return c.status.upper()


def check_examples(c: CheckResult) -> list[str]:
    """One line per waiver the check used, then one per counterexample trace."""
    waived = [f"waived: {w.describe()}" for w in c.waived]
    return waived + [
        f"trace {ce.trace_id}: decided by {ce.rule or 'no rule'} ({ce.reason}; keep={ce.keep}, rate={ce.rate}), "
        f"{plural(ce.spans, 'span')}"
        for ce in c.counterexamples
    ]


def kept_line(ex: Explanation, r: RuleView) -> str:
    """A rule's kept volume in words: expected spans, events/s, its shares of kept volume and of the budget."""
    text = f"{fmt_num(r.expected_kept_spans)} spans expected"
    if r.kept_events_per_sec is not None:
        text += f", {fmt_num(r.kept_events_per_sec)} events/s"
    text += f": {fmt_pct(r.kept_share)} of kept volume"
    if ex.budget_per_second is not None:
        text += f", {fmt_pct(r.budget_share)} of the budget"
    return text


__all__ = [
    "KEEP_LABELS",
    "KEEP_ORDER",
    "ORDER_NOTE",
    "Caveat",
    "ClauseView",
    "Explanation",
    "Histogram",
    "RuleView",
    "build_explanation",
    "check_examples",
    "check_label",
    "compact_rule",
    "corpus_phrase",
    "fmt_num",
    "fmt_pct",
    "kept_line",
    "latency_histogram",
    "plural",
    "root_durations",
    "summary_lines",
    "traces_spans",
]
