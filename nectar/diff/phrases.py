"""The diff report's sentences and table cells, shared by every form (text, Markdown, the explain page), so that they
say the same thing with the same numbers."""

from __future__ import annotations

from nectar.diff.model import AtRisk, CorpusDiff, DiffReport, ReasonChange, Transition
from nectar.explain.model import fmt_num, fmt_pct, plural, traces_spans

REASON_NOTE = (
    "Same decision, new reason: Refinery writes the reason (meta.refinery.reason) into every kept event, so queries "
    "and boards that group by it see the change."
)
SYMBOLIC_NOTE = (
    "Every possible trace, not only the corpus: one witness trace per kind of change (a pair of deciding rules), "
    "confirmed by the reference engine on both sides (--witness-out FILE writes them as JSON lines for nectar ingest)."
)


def signed(x: float) -> str:
    """``+0.048``, ``-12``, ``0``."""
    if x == 0:
        return "0"
    return ("+" if x > 0 else "-") + fmt_num(abs(x))


def change_pct(old: float | None, new: float | None) -> str:
    """``+10.4%`` (relative change), ``new`` from nothing, or ``-``."""
    if old is None or new is None:
        return "-"
    if old == 0:
        return "0" if new == 0 else "new"
    pct = 100 * (new - old) / old
    return "0%" if pct == 0 else f"{pct:+.3g}%"


def transition_text(t: Transition) -> str:
    """``keep-errors#1: keep -> drop-livez: drop``."""
    return f"{t.old.who()}: {t.old.outcome()} -> {t.new.who()}: {t.new.outcome()}"


def reason_text(r: ReasonChange) -> str:
    return f"{r.old_reason} -> {r.new_reason}"


def at_risk_line(a: AtRisk) -> str:
    """``errors (error == true ...): 3 of 194 traces lose keep probability`` or ``none of 194 ...``."""
    what = f"{a.name} ({a.definition})"
    if a.declared == 0:
        return f"{what}: no such trace in the corpus"
    if a.traces == 0:
        return f"{what}: none of {plural(a.declared, 'trace')} loses keep probability"
    return f"{what}: {a.traces:,} of {plural(a.declared, 'trace')} ({plural(a.spans, 'span')}) lose keep probability"


def budget_rows(c: CorpusDiff) -> list[tuple[str, str, str, str]]:
    """(figure, old, new, change) rows."""
    o, n = c.old_budget, c.new_budget
    rows = []
    if o.expected_per_second is not None and n.expected_per_second is not None:
        rows.append(
            (
                "expected kept events/s",
                fmt_num(o.expected_per_second),
                fmt_num(n.expected_per_second),
                f"{signed(n.expected_per_second - o.expected_per_second)} "
                f"({change_pct(o.expected_per_second, n.expected_per_second)})",
            )
        )
        rows.append(
            ("95% upper bound", fmt_num(o.upper95_per_second), fmt_num(n.upper95_per_second),
             change_pct(o.upper95_per_second, n.upper95_per_second))
        )  # fmt: skip
    rows.append(
        ("expected kept spans", fmt_num(o.expected_kept_spans), fmt_num(n.expected_kept_spans),
         change_pct(o.expected_kept_spans, n.expected_kept_spans))
    )  # fmt: skip
    rows.append(("kept share of spans", fmt_pct(o.kept_share), fmt_pct(n.kept_share), ""))
    return rows


def budget_note(c: CorpusDiff) -> str:
    """What the budget is, against the new expected rate."""
    base = f"corpus: {plural(c.traces, 'trace')} over {fmt_num(c.window_seconds)} s, 1 in {c.sample_rate:g} of traffic"
    if c.budget_per_second is None:
        return f"no budget_per_second set; {base}"
    new = c.new_budget.expected_per_second
    use = f" ({fmt_pct(new / c.budget_per_second)} of it)" if new is not None and c.budget_per_second else ""
    return f"budget_per_second {fmt_num(c.budget_per_second)}{use}; {base}"


def symbolic_line(r: DiffReport) -> str:
    s = r.symbolic
    if s is None:
        return "skipped (--symbolic off)"
    return f"{s.status}: {s.reason}"


def summary(r: DiffReport) -> str:
    """One sentence: what changes on the corpus, the budget, what is newly at risk, the verdict for all traces."""
    parts = []
    c = r.corpus
    if c is None:
        parts.append("no corpus (pass --corpus DIR)")
    else:
        parts.append(
            f"{traces_spans(c.changed_traces, c.changed_spans)} of {c.traces:,} change decision"
            if c.changed_traces
            else f"no decision changes on {plural(c.traces, 'trace')}"
        )
        if c.reason_only_traces:
            parts.append(f"{c.reason_only_traces:,} change only their reason")
        o, n = c.old_budget.expected_per_second, c.new_budget.expected_per_second
        if o is not None and n is not None:
            parts.append(f"expected kept events/s {fmt_num(o)} -> {fmt_num(n)} ({change_pct(o, n)})")
        risky = [a for a in c.at_risk if a.traces]
        if risky:
            parts.append("newly at risk: " + ", ".join(f"{a.traces:,} {a.name}" for a in risky))
        else:
            parts.append("no error or must-keep trace newly at risk")
    s = r.symbolic
    if s is not None:
        kinds = len({(w.old, w.new) for w in s.witnesses})
        what = {"different": f"different ({plural(kinds, 'kind')} of change)"}.get(s.status, s.status)
        parts.append(f"for all traces: {what}")
    return "; ".join(parts) + "."


__all__ = [
    "REASON_NOTE",
    "SYMBOLIC_NOTE",
    "at_risk_line",
    "budget_note",
    "budget_rows",
    "change_pct",
    "reason_text",
    "signed",
    "summary",
    "symbolic_line",
    "transition_text",
]
