"""``prove_policy``: lower the policy, decide every trace of the corpus with a vectorized engine, check, explain.

One engine pass over the corpus: the policy's lowered rules decide (with per-rule matches), and every predicate
(the error definition and each must-keep class, lowered the same way: a predicate is true for a trace exactly when
one of its keep-rules matches) rides along as probe rules that only report matches
(:func:`nectar.engine.api.evaluate_with_probes`). Everything after that is small per-trace tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from nectar.config import DEFAULT_ERROR_DEFINITION, Config
from nectar.corpus.layout import TRACE_ID, Corpus, ValueType
from nectar.engine.api import DEFAULT_ENGINE, evaluate_with_probes
from nectar.engine.decision import keep_probability
from nectar.engine.replay import ReplayInput, build_report
from nectar.errors import NectarError, Span
from nectar.policy import ir
from nectar.policy.expr import parse_expr, standalone_origin
from nectar.policy.format import format_expr
from nectar.policy.lower import LoweredPolicy, lower_policy, lower_predicate
from nectar.prove.checks import (
    BUDGET_NOT_SYMBOLIC,
    BudgetFigures,
    CheckResult,
    Counterexample,
    ProofWarning,
    SymbolicResult,
    WaiverUse,
    budget_figures,
)
from nectar.prove.lints import CorpusLint, corpus_lints
from nectar.prove.waivers import Waivers
from nectar.refinery.model import Condition, Rule

if TYPE_CHECKING:  # z3 loads only when the symbolic pass runs
    from nectar.engine.stateful import SamplerRun
    from nectar.prove.symbolic import SymbolicReport

MUST_KEEP_FILE = "must-keep.txt"


@dataclass(frozen=True, slots=True)
class Predicate:
    """A named trace predicate the prover checks (error definition, a must-keep class)."""

    name: str  # errors | must_keep:<class>
    expr: ir.Expr
    text: str

    @property
    def waiver_checks(self) -> tuple[str, ...]:
        """The ``accept`` checks that waive this predicate's violations."""
        return (self.name,) if self.name == "errors" else ("must_keep", self.name)


@dataclass(slots=True)
class ProofReport:
    """Everything the prover found. ``decisions`` (one row per trace) is kept for ``explain``."""

    policy: ir.Policy
    lowered: LoweredPolicy
    corpus: Corpus
    engine: str
    checks: list[CheckResult]
    lints: list[CorpusLint]
    replay: dict[str, Any]
    budget: BudgetFigures
    error_definition: str
    decisions: pl.DataFrame = field(repr=False)
    strict: bool = False
    # Per predicate (the error definition, then each must-keep class in policy order): whether it matches each
    # trace, in the decisions' row order. ``explain`` reads them instead of evaluating the predicates again.
    predicate_hits: tuple[pl.Series, ...] = field(default=(), repr=False)

    waivers: tuple[WaiverUse, ...] = ()  # every waiver of the policy, with the traces it waived
    warnings: tuple[ProofWarning, ...] = ()
    # The symbolic pass (when it ran): per Refinery rule, whether some possible trace reaches it (proved, with a
    # trace it decides), none does (refuted: shadowed, or matching nothing) or unknown; every witness as JSON lines.
    symbolic_rules: dict[str, SymbolicResult] = field(default_factory=dict)
    witnesses: tuple[str, ...] = ()
    # What each stateful sampler's replay over the corpus did (its rates are in ``decisions``).
    samplers: tuple[SamplerRun, ...] = ()

    @property
    def passed(self) -> bool:
        """No check fails (and, with ``strict``, none is vacuous and there is no warning or lint warning)."""
        if any(not c.passed for c in self.checks):
            return False
        return not (self.strict and self.strict_failures())

    @property
    def vacuous(self) -> list[str]:
        """The checks that had nothing to check."""
        return [c.name for c in self.checks if c.status == "vacuous"]

    @property
    def error_definition_is_default(self) -> bool:
        return self.error_definition == DEFAULT_ERROR_DEFINITION

    def strict_failures(self) -> list[str]:
        """What ``--strict`` fails on, in words (empty: nothing)."""
        out = []
        if self.vacuous:
            out.append(f"vacuous checks (nothing to check): {', '.join(self.vacuous)}")
        if self.warnings:
            out.append(f"{len(self.warnings)} warning(s)")
        if any(lint.severity in ("warning", "error") for lint in self.lints):
            out.append("lint warnings")
        unknown = [c.name for c in self.checks if c.symbolic.status == "unknown"]
        if unknown:
            out.append(f"unknown for all traces: {', '.join(unknown)}")
        unreachable = [name for name, v in self.symbolic_rules.items() if v.status == "refuted"]
        if unreachable:
            out.append(f"rules no possible trace reaches: {', '.join(unreachable)}")
        return out

    def summary(self) -> dict[str, Any]:
        """Per check: name, status and figures (stable, JSON-able; what the lockfile records)."""
        return {c.name: {"status": c.status, "summary": c.summary, "figures": c.figures} for c in self.checks}


def _sql_for(trace_id: str) -> str:
    tid = trace_id.replace("'", "''")
    return f"nectar sql \"SELECT * FROM spans WHERE trace_id = '{tid}' ORDER BY arrival\""


def predicate_probes(preds: list[Predicate]) -> tuple[tuple[Rule, ...], list[list[int]]]:
    """All predicates as probe rules (a predicate is true for a trace when any of its rules matches): the rules,
    and which rule indexes belong to which predicate."""
    rules: list[Rule] = []
    groups: list[list[int]] = []
    for k, pred in enumerate(preds):
        sub = lower_predicate(pred.expr, f"p{k}")
        idx = []
        for r in sub.rules[:-1]:  # without the final catch-all drop
            idx.append(len(rules))
            rules.append(r)
        groups.append(idx)
    return tuple(rules), groups


def _conditions_fields(conds: tuple[Condition, ...] | None) -> list[str]:
    out: list[str] = []
    for c in conds or ():
        for f in c.fields:
            base = f.removeprefix("root.")
            if not base.startswith("?.") and base not in out:
                out.append(base)
    return out


def _expr_fields(expr: ir.Expr) -> list[str]:
    fields: list[str] = []
    for rule in lower_predicate(expr).rules:
        for f in _conditions_fields(rule.conditions):
            if f not in fields:
                fields.append(f)
    return fields


class _Examples:
    """Builds counterexamples: the deciding rule and the relevant field values of each trace's spans."""

    def __init__(self, corpus: Corpus, decisions: pl.DataFrame, lowered: LoweredPolicy, limit: int) -> None:
        self.corpus = corpus
        self.decisions = decisions
        self.lowered = lowered
        self.limit = limit

    def build(self, trace_ids: list[str], extra_fields: list[str]) -> tuple[Counterexample, ...]:
        chosen = sorted(trace_ids)[: self.limit]  # deterministic: the first N by trace id
        if not chosen:
            return ()
        rows = self.decisions.filter(pl.col("trace_id").is_in(chosen)).sort("trace_id").to_dicts()
        fields = list(extra_fields)
        for r in rows:
            if r["rule_index"] is not None:
                for f in _conditions_fields(self.lowered.sampler.rules[r["rule_index"]].conditions):
                    if f not in fields:
                        fields.append(f)
        values = self._values(chosen, fields)
        out = []
        for r in rows:
            idx = r["rule_index"]
            origin = self.lowered.origins[idx].policy_rule if idx is not None else None
            out.append(
                Counterexample(
                    trace_id=r["trace_id"],
                    rule=r["rule"],
                    policy_rule=origin,
                    keep=r["keep"],
                    rate=int(r["rate"]),
                    reason=r["reason"],
                    spans=int(r["spans"]),
                    values=tuple(values.get(r["trace_id"], [])),
                    sql=_sql_for(r["trace_id"]),
                )
            )
        return tuple(out)

    def _values(self, trace_ids: list[str], fields: list[str]) -> dict[str, list[dict[str, Any]]]:
        cols = [(f, t, c) for f in fields for t, c in self.corpus.field_columns.get(f, {}).items()]
        lf = self.corpus.scan().filter(pl.col(TRACE_ID).is_in(trace_ids))
        df = lf.select([TRACE_ID, "span_id", "arrival", *sorted({c for _, _, c in cols})]).collect().sort("arrival")
        out: dict[str, list[dict[str, Any]]] = {}
        for row in df.to_dicts():
            vals: dict[str, Any] = {}
            for f, t, c in cols:
                v = row.get(c)
                if v is None:
                    continue
                vals[f] = None if t is ValueType.NULL else v
            if vals:
                spans = out.setdefault(row[TRACE_ID], [])
                if len(spans) < 5:
                    spans.append({"span_id": row["span_id"], **vals})
        return out


def _corpus_with_rate(corpus: Corpus, config: Config) -> Corpus:
    if config.corpus_sample_rate is None:
        return corpus
    manifest = dataclasses.replace(corpus.manifest, sample_rate=config.corpus_sample_rate)
    return Corpus(corpus.root, manifest)


def read_must_keep_ids(corpus: Corpus) -> list[str] | None:
    """Trace ids listed in ``must-keep.txt`` in the corpus folder (one per line, ``#`` comments), or None."""
    path = corpus.root / MUST_KEEP_FILE
    if not path.exists():
        return None
    try:
        raw = path.read_bytes()
        content = raw.decode("utf-8")
    except OSError as exc:
        raise NectarError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        lineno = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        shown = raw.decode("utf-8", errors="replace")
        raise NectarError(
            f"{MUST_KEEP_FILE} is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
            Span(str(path), lineno, col, 1, shown),
            "write one trace id per line, as UTF-8",
        ) from None
    ids = []
    for line in content.splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            ids.append(text)
    return ids


def prove_policy(
    policy: ir.Policy,
    corpus: Corpus,
    config: Config,
    engine: str = DEFAULT_ENGINE,
    max_examples: int = 5,
    strict: bool = False,
    solver_timeout_ms: int | None = None,
) -> ProofReport:
    """Prove ``policy`` against ``corpus``: see :mod:`nectar.prove.checks` for the checks and their arithmetic.

    With ``solver_timeout_ms`` the symbolic checker (:mod:`nectar.prove.symbolic`) also proves each check over every
    possible trace, each solver query bounded by that timeout; without it the symbolic verdicts read "skipped"."""
    corpus = _corpus_with_rate(corpus, config)
    lowered = lower_policy(policy)
    rules_file = lowered.rules_file()
    err_text = config.error_definition
    try:
        err_expr = parse_expr(
            err_text, standalone_origin(err_text, "nectar.toml prove.error_definition"), config.aliases
        ).expr
    except NectarError as exc:
        raise NectarError(f"prove.error_definition: {exc.message}", exc.span, exc.hint) from None
    preds = [Predicate("errors", err_expr, err_text)] + [
        Predicate(f"must_keep:{m.name}", m.match, m.match_text) for m in policy.must_keep
    ]
    probes, groups = predicate_probes(preds)
    # One engine pass: the policy's rules decide, the predicates' rules only report whether they match.
    result, pm = evaluate_with_probes(lowered.sampler, probes, corpus, engine=engine, cluster_size=config.cluster_size)
    dec = result.decisions
    replay = build_report(ReplayInput(rules_file, policy.path or "<policy>", corpus, None, engine), None, result)
    if pm.height != dec.height:  # the same engine frame, sorted by trace id: only the count can differ
        raise AssertionError("engine returned different traces for the policy and its predicates")  # pragma: no cover
    hits = []
    for g in groups:
        hit = pl.Series([False] * dec.height) if not g else pm.select(pl.any_horizontal([f"p{i}" for i in g]))
        hits.append(hit.to_series() if isinstance(hit, pl.DataFrame) else hit)

    p = dec.select(keep_probability()).to_series()
    # Kept for sure: only an always-keep decision. A stateful sampler's trace is sampled even where its replayed
    # rate is 1: that rate depends on traffic, so it promises nothing.
    always = dec.get_column("keep") == "true"
    examples = _Examples(corpus, dec, lowered, max_examples)
    origins = pl.Series([o.policy_rule for o in lowered.origins], dtype=pl.String)
    waivers = Waivers(policy.accept, origins.gather(dec.get_column("rule_index")))
    checks = [
        _check_fallback(lowered, dec, examples),
        _check_errors(err_text, dec, always, hits[0], examples, _expr_fields(err_expr), waivers),
        _check_must_keep(policy, corpus, dec, always, hits[1:], examples, waivers),
    ]
    budget = budget_figures(dec, p, corpus.manifest.window_seconds, corpus.manifest.sample_rate)
    checks.append(_check_budget(policy, budget, dec.height))
    # The one place where each check's verdict over all possible traces joins its corpus verdict, by check name.
    symbolic: dict[str, SymbolicResult] = {}
    sym = None
    if solver_timeout_ms is not None:
        # A rule that decides a corpus trace is reachable: that trace, decided by the engine, is the proof.
        first = dec.filter(pl.col("rule_index").is_not_null()).group_by("rule_index").agg(pl.col("trace_id").min())
        decided_by = {int(i): str(t) for i, t in first.iter_rows()}
        sym = _prove_symbolic(lowered, waivers, preds, probes, groups, solver_timeout_ms, decided_by)
        symbolic = sym.checks
    checks = [dataclasses.replace(c, symbolic=symbolic[c.name]) if c.name in symbolic else c for c in checks]
    lints = corpus_lints(policy, lowered, corpus, replay)
    return ProofReport(
        policy, lowered, corpus, engine, checks, lints, replay, budget, err_text, dec, strict, tuple(hits),
        waivers=waivers.uses(), warnings=tuple(waivers.warnings()),
        symbolic_rules=sym.rules if sym else {}, witnesses=tuple(sym.witness_lines()) if sym else (),
        samplers=result.samplers,
    )  # fmt: skip


def _prove_symbolic(
    lowered: LoweredPolicy,
    waivers: Waivers,
    preds: list[Predicate],
    probes: tuple[Rule, ...],
    groups: list[list[int]],
    timeout_ms: int,
    decided_by: Mapping[int, str] | None = None,
) -> SymbolicReport:
    """The checks over every possible trace, on the same compiled rules and predicate probes as the corpus pass. A
    waiver (``accept``) takes its rule's violations out of the search, as it takes them out of the corpus check."""
    from nectar.prove.symbolic import Probe, prove_symbolic  # z3 loads only when the symbolic pass runs

    names = [r.name for r in lowered.sampler.rules]
    origins = [o.policy_rule for o in lowered.origins]

    def made(pred: Predicate, group: list[int]) -> Probe:
        accepted = set(waivers.rules_for(pred.waiver_checks))
        waived = frozenset(n for n, o in zip(names, origins, strict=True) if o in accepted)
        label = pred.name.removeprefix("must_keep:")
        return Probe(label, tuple(probes[i] for i in group), waived)

    made_probes = [made(p, g) for p, g in zip(preds, groups, strict=True)]
    return prove_symbolic(lowered.sampler, made_probes[0], made_probes[1:], timeout_ms, decided_by)


def _check_fallback(lowered: LoweredPolicy, dec: pl.DataFrame, examples: _Examples) -> CheckResult:
    """A property of the rules (is there a catch-all, and is it last), so never vacuous: it holds or not whatever
    traces come; the corpus only supplies the undecided traces as examples."""
    rules = lowered.sampler.rules
    catch = [i for i, r in enumerate(rules) if r.is_catch_all]
    undecided = dec.filter(pl.col("rule_index").is_null()).get_column("trace_id").to_list()
    figures = {"catch_all": rules[catch[0]].name if catch else None, "undecided_traces": len(undecided)}
    if not catch:
        return CheckResult(
            "fallback",
            "fail",
            f"no catch-all rule: {len(undecided)} traces match no rule and Refinery keeps them at rate 1; "
            "end the policy with a rule whose match is `true`",
            figures,
            examples.build(undecided, []),
            brief=f"no catch-all, {len(undecided):,} undecided",
        )
    if catch[0] != len(rules) - 1:
        after = [r.name for r in rules[catch[0] + 1 :]]
        return CheckResult(
            "fallback",
            "fail",
            f"rules after the catch-all {rules[catch[0]].name!r} are unreachable: {', '.join(after)}",
            {**figures, "unreachable": after},
            brief=f"{len(after)} rules unreachable",
        )
    return CheckResult(
        "fallback",
        "pass",
        f"catch-all {rules[catch[0]].name!r} decides every remaining trace",
        figures,
        brief="catch-all comes last",
    )


def _waived_text(uses: tuple[WaiverUse, ...]) -> str:
    return ", ".join(f"{u.traces} by {u.rule}" for u in uses)


def _check_errors(
    err_text: str,
    dec: pl.DataFrame,
    always: pl.Series,
    hit: pl.Series,
    examples: _Examples,
    fields: list[str],
    waivers: Waivers,
) -> CheckResult:
    declared = int(hit.sum())
    lost_mask = hit & ~always
    waived_mask, uses = waivers.split(lost_mask, [(("errors",), hit)])
    failing = dec.filter(lost_mask & ~waived_mask).get_column("trace_id").to_list()
    n_lost, n_waived = int(lost_mask.sum()), int(waived_mask.sum())
    figures = {"declared": declared, "kept": declared - n_lost, "not_always_kept": n_lost, "waived": n_waived}
    brief = f"{declared - n_lost:,}/{declared:,} kept"
    what = f"error traces ({err_text})"
    if dec.height == 0:
        return CheckResult(
            "errors", "vacuous", "the corpus has no traces: nothing was checked", figures, brief="no traces"
        )
    if declared == 0:
        return CheckResult(
            "errors",
            "vacuous",
            f"no error trace in the corpus (no trace has a span matching {err_text}): nothing was checked",
            figures,
            brief="no error traces",
        )
    if failing:
        also = f" ({n_waived} more waived: {_waived_text(uses)})" if uses else ""
        return CheckResult(
            "errors",
            "fail",
            f"{len(failing)} of {declared} {what} are not always kept{also}",
            figures,
            examples.build(failing, fields),
            brief=brief,
            waived=uses,
        )
    if uses:
        return CheckResult(
            "errors",
            "waived",
            f"{n_waived} of {declared} {what} are not always kept, all decided by waived rules: {_waived_text(uses)}",
            figures,
            brief=brief,
            waived=uses,
        )
    return CheckResult("errors", "pass", f"all {declared} {what} are kept with probability 1", figures, brief=brief)


def _check_must_keep(
    policy: ir.Policy,
    corpus: Corpus,
    dec: pl.DataFrame,
    always: pl.Series,
    hits: list[pl.Series],
    examples: _Examples,
    waivers: Waivers,
) -> CheckResult:
    ids = read_must_keep_ids(corpus)
    if not policy.must_keep and ids is None:
        return CheckResult(
            "must_keep",
            "skip",
            "no must_keep classes in the policy and no must-keep.txt in the corpus",
            brief="nothing declared",
        )
    parts: list[tuple[tuple[str, ...], pl.Series]] = [
        (("must_keep", f"must_keep:{m.name}"), h) for m, h in zip(policy.must_keep, hits, strict=True)
    ]
    missing_ids: list[str] = []
    if ids is not None:
        present = dec.get_column("trace_id").is_in(ids)
        parts.append((("must_keep",), present))
        missing_ids = sorted(set(ids) - set(dec.filter(present).get_column("trace_id").to_list()))
    declared = pl.Series([False] * dec.height, dtype=pl.Boolean)
    for _, h in parts:
        declared = declared | h
    fields = [f for m in policy.must_keep for f in _expr_fields(m.match)]
    n_declared = int(declared.sum())
    lost_mask = declared & ~always
    waived_mask, uses = waivers.split(lost_mask, parts)
    failing = dec.filter(lost_mask & ~waived_mask).get_column("trace_id").to_list()
    n_lost, n_waived = int(lost_mask.sum()), int(waived_mask.sum())
    per_class = {
        m.name: {"declared": int(h.sum()), "kept": int((h & always).sum())}
        for m, h in zip(policy.must_keep, hits, strict=True)
    }
    empty = [m.name for m in policy.must_keep if per_class[m.name]["declared"] == 0]
    figures: dict[str, Any] = {
        "declared": n_declared,
        "kept": n_declared - n_lost,
        "waived": n_waived,
        "classes": per_class,
        "classes_matching_no_trace": empty,
    }
    if ids is not None:
        figures["listed_ids"] = len(ids)
        figures["listed_ids_not_in_corpus"] = len(missing_ids)
    coverage = f"must-keep coverage {n_declared - n_lost}/{n_declared}"
    brief = f"{n_declared - n_lost:,}/{n_declared:,} kept"
    if failing:
        also = f" ({n_waived} more waived: {_waived_text(uses)})" if uses else ""
        return CheckResult(
            "must_keep",
            "fail",
            f"{coverage}: {len(failing)} traces not always kept{also}",
            figures,
            examples.build(failing, fields),
            brief=brief,
            waived=uses,
        )
    if dec.height == 0:
        return CheckResult(
            "must_keep", "vacuous", "the corpus has no traces: nothing was checked", figures, brief="no traces"
        )
    unchecked = _unchecked_must_keep(empty, ids, missing_ids)
    if unchecked:
        also = f"; {n_waived} traces waived: {_waived_text(uses)}" if uses else ""
        vbrief = f"{len(empty)} {'class' if len(empty) == 1 else 'classes'} unmatched"
        return CheckResult(
            "must_keep",
            "vacuous",
            f"{coverage}, but {'; '.join(unchecked)}: that part was not checked{also}",
            figures,
            brief=vbrief if empty else "no listed id in the corpus",
            waived=uses,
        )
    note = f"{len(missing_ids)} listed ids are not in the corpus" if missing_ids else ""
    if uses:
        return CheckResult(
            "must_keep",
            "waived",
            f"{coverage}: {n_waived} traces not always kept, all decided by waived rules: {_waived_text(uses)}",
            figures,
            brief=brief,
            note=note,
            waived=uses,
        )
    return CheckResult("must_keep", "pass", coverage + (f" ({note})" if note else ""), figures, brief=brief, note=note)


def _unchecked_must_keep(empty: list[str], ids: list[str] | None, missing_ids: list[str]) -> list[str]:
    """The parts of the must-keep check that had nothing to check, in words."""
    out = []
    if empty:
        names = ", ".join(map(repr, empty))
        out.append(f"class {names} matches no trace" if len(empty) == 1 else f"classes {names} match no trace")
    if ids is not None and not ids:
        out.append(f"{MUST_KEEP_FILE} lists no trace id")
    elif ids is not None and len(missing_ids) == len(ids):
        out.append(f"none of the {len(ids)} trace ids in {MUST_KEEP_FILE} is in the corpus")
    return out


def _check_budget(policy: ir.Policy, b: BudgetFigures, traces: int) -> CheckResult:
    figures = {
        "budget_per_second": policy.budget_per_second,
        "expected_per_second": _r(b.expected_per_second),
        "upper95_per_second": _r(b.upper95_per_second),
        "window_seconds": b.window_seconds,
        "corpus_sample_rate": b.sample_rate,
    }

    def result(status: str, summary: str, brief: str, note: str = "") -> CheckResult:
        return CheckResult("budget", status, summary, figures, brief=brief, note=note, symbolic=BUDGET_NOT_SYMBOLIC)

    if policy.budget_per_second is None:
        return result("skip", "the policy sets no budget_per_second", "no budget set")
    if traces == 0:
        return result("vacuous", "the corpus has no traces: nothing was checked", "no traces")
    if b.expected_per_second is None:
        return result(
            "vacuous", "the corpus time window is 0 s, so no rate can be estimated: nothing was checked", "0 s window"
        )
    budget = policy.budget_per_second
    exp, up = b.expected_per_second, b.upper95_per_second or 0.0
    text = f"expected {exp:,.4g} events/s (95% upper bound {up:,.4g}) against a budget of {budget:,.6g}/s"
    brief = f"{exp:,.4g}/s of {budget:,.6g}/s"
    if exp > budget:
        return result("fail", "over budget: " + text, brief)
    if up > budget:
        note = f"the 95% upper bound {up:,.4g} events/s exceeds the budget"
        return result("pass", text + "; the upper bound exceeds the budget", brief, note)
    return result("pass", text, brief)


def _r(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")


def rules_table(report: ProofReport) -> list[dict[str, Any]]:
    """Per Refinery rule: policy rule, matched and decided traces, kept events/s, share of the budget."""
    budget = report.policy.budget_per_second
    rows = []
    for r, origin in zip(report.replay["rules"], report.lowered.origins, strict=True):
        eps = r["kept_events_per_sec"]
        rows.append({
            "rule": r["name"],
            "policy_rule": origin.policy_rule,
            "match": format_expr(_policy_rule(report.policy, origin.policy_rule).match),
            "matched_traces": r["matched"]["traces"],
            "decided_traces": r["decided"]["traces"],
            "decided_spans": r["decided"]["spans"],
            "kept_events_per_sec": eps,
            "budget_share": (float(f"{eps / budget:.6g}") if eps is not None and budget else None),
        })  # fmt: skip
    return rows


def _policy_rule(policy: ir.Policy, name: str) -> ir.PolicyRule:
    return next(r for r in policy.rules if r.name == name)
