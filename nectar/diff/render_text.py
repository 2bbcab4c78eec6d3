"""The diff report as plain text that fits 80 columns: words wrap, numbers never do (each number has its own
right-aligned column, as wide as its widest value)."""

from __future__ import annotations

import textwrap

from nectar.diff.model import DiffReport
from nectar.diff.phrases import (
    REASON_NOTE,
    SYMBOLIC_NOTE,
    at_risk_line,
    budget_note,
    budget_rows,
    change_pct,
    reason_text,
    summary,
    symbolic_line,
    transition_text,
)
from nectar.explain.model import fmt_num, plural

WIDTH = 80
INDENT = "  "


def _wrap(text: str, first: str = INDENT, rest: str | None = None) -> list[str]:
    """``text`` wrapped to 80 columns: the first line after ``first``, the others after ``rest`` (default: as far
    in as ``first``, plus two)."""
    rest = " " * len(first) + "  " if rest is None else rest
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False) or [""]


def table(head: str, num_heads: list[str], rows: list[tuple[str, list[str], list[str]]]) -> list[str]:
    """A table: one text column that wraps, then right-aligned number columns; each row may add detail lines."""
    widths = [max(len(h), *(len(r[1][i]) for r in rows)) for i, h in enumerate(num_heads)]
    room = WIDTH - len(INDENT) - sum(w + 2 for w in widths)
    longest = max([len(head), *(len(r[0]) for r in rows)])
    text_w = max(24, min(room, longest))

    def nums(values: list[str]) -> str:
        return "".join("  " + v.rjust(w) for v, w in zip(values, widths, strict=True))

    out = [(INDENT + head.ljust(text_w) + nums(num_heads)).rstrip()]
    for text, values, details in rows:
        wrapped = textwrap.wrap(text, text_w, subsequent_indent="  ", break_on_hyphens=False) or [""]
        out.append((INDENT + wrapped[0].ljust(text_w) + nums(values)).rstrip())
        out += [INDENT + w for w in wrapped[1:]]
        for d in details:
            out += _wrap(d, INDENT + "    ")
    return out


def sections(r: DiffReport) -> list[str]:
    """The report's body (everything after the title), as lines of at most 80 columns."""
    out = _wrap(summary(r), "", "")
    c = r.corpus
    if c is not None:
        out += ["", "Decision changes on the corpus"]
        if c.transitions:
            rows = [
                (transition_text(t), [fmt_num(t.traces), fmt_num(t.spans)],
                 [f"e.g. {', '.join(t.examples)}"] if t.examples else [])
                for t in c.transitions
            ]  # fmt: skip
            out += table("old rule: outcome -> new rule: outcome", ["traces", "spans"], rows)
        else:
            out += _wrap(f"none: all {c.traces:,} traces are decided as before ({c.passes}; engine {c.engine}).")
        out += ["", "Budget"]
        brows: list[tuple[str, list[str], list[str]]] = [
            (label, [old, new, ch], []) for label, old, new, ch in budget_rows(c)
        ]
        out += table("", ["old", "new", "change"], brows)
        out += _wrap(budget_note(c))
        out += ["", "Kept volume per rule (expected kept events/s)"]
        vrows: list[tuple[str, list[str], list[str]]] = []
        for v in c.per_rule:
            o = v.old_per_second if v.old_per_second is not None else v.old_kept_spans
            n = v.new_per_second if v.new_per_second is not None else v.new_kept_spans
            vrows.append((v.label, [fmt_num(o), fmt_num(n), change_pct(o, n)], []))
        out += table("rule", ["old", "new", "change"], vrows)
        out += ["", "Error and must-keep traces"]
        for a in c.at_risk:
            out += _wrap(at_risk_line(a), INDENT + "- ", INDENT + "  ")
            for e in a.examples:
                out += _wrap(
                    f"trace {e.trace_id} ({plural(e.spans, 'span')}): {e.old.who()}: {e.old.outcome()} -> "
                    f"{e.new.who()}: {e.new.outcome()}",
                    INDENT + "    ",
                )
        if c.reason_only:
            out += ["", "Reason-only changes"]
            out += _wrap(REASON_NOTE)
            rrows = [
                (reason_text(x), [fmt_num(x.traces), fmt_num(x.spans), fmt_num(x.dropped)],
                 [f"e.g. {', '.join(x.examples)}"] if x.examples else [])
                for x in c.reason_only
            ]  # fmt: skip
            out += table("old reason -> new reason", ["traces", "spans", "dropped"], rrows)
    out += ["", "For all traces (symbolic)"]
    out += _wrap(symbolic_line(r))
    s = r.symbolic
    if s is not None and s.witnesses:
        out += _wrap(SYMBOLIC_NOTE)
        for k, w in enumerate(s.witnesses, 1):
            risk = f" At risk: {', '.join(w.at_risk)}." if w.at_risk else ""
            out += _wrap(f"{k}. {w.description()}.{risk}", INDENT, INDENT + "   ")
    return out


def render_text(r: DiffReport) -> str:
    """The whole report (deterministic: same report, same bytes)."""
    env = f" (environment {r.env})" if r.env else ""
    title = _wrap(f"Diff: {r.old_label} -> {r.new_label}{env}", "", "  ")
    return "\n".join([*title, "", *sections(r)]).rstrip("\n") + "\n"


__all__ = ["render_text", "sections", "table"]
