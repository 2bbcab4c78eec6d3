"""The diff report as a pull-request comment (GitHub-flavoured Markdown): a summary line, the transition table, the
budget delta, error and must-keep traces at risk, the witnesses for all traces; the reason-only changes folded."""

from __future__ import annotations

import json

from nectar.diff.model import DiffReport
from nectar.diff.phrases import (
    REASON_NOTE,
    SYMBOLIC_NOTE,
    at_risk_line,
    budget_note,
    budget_rows,
    change_pct,
    summary,
    symbolic_line,
)
from nectar.explain.model import fmt_num, plural
from nectar.explain.render_md import md_code, md_text


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def sections(r: DiffReport, level: int = 3) -> list[str]:
    """The report's body as Markdown lines; headings at ``level``."""
    h = "#" * level
    lead = f"**{md_text(summary(r))}**" if _notable(r) else md_text(summary(r))
    out = [lead, ""]
    c = r.corpus
    if c is not None:
        out += [f"{h} Decision changes on the corpus", ""]
        if c.transitions:
            out += [_row(["old rule", "old outcome", "new rule", "new outcome", "traces", "spans", "e.g."]),
                    "|---|---|---|---|---:|---:|---|"]  # fmt: skip
            for t in c.transitions:
                out.append(
                    _row(
                        [
                            md_code(t.old.who(), in_table=True),
                            md_text(t.old.outcome()),
                            md_code(t.new.who(), in_table=True),
                            md_text(t.new.outcome()),
                            fmt_num(t.traces),
                            fmt_num(t.spans),
                            md_code(t.examples[0], in_table=True) if t.examples else "",
                        ]
                    )
                )
        else:
            out.append(md_text(f"None: all {c.traces:,} traces are decided as before ({c.passes}; engine {c.engine})."))
        out += ["", f"{h} Budget", "", _row(["", "old", "new", "change"]), "|---|---:|---:|---:|"]
        out += [_row([md_text(a), b, n, md_text(ch)]) for a, b, n, ch in budget_rows(c)]
        out += ["", md_text(budget_note(c)), ""]
        out += [f"{h} Error and must-keep traces", ""]
        for a in c.at_risk:
            line = md_text(at_risk_line(a))
            out.append(f"- **{line}**" if a.traces else f"- {line}")
            for e in a.examples:
                out.append(
                    f"  - {md_code(e.trace_id)} ({plural(e.spans, 'span')}): {md_code(e.old.who())} "
                    f"{md_text(e.old.outcome())} -> {md_code(e.new.who())} {md_text(e.new.outcome())}"
                )
        out += ["", "<details><summary>Kept volume per rule (expected kept events/s)</summary>", ""]
        out += [_row(["rule", "old", "new", "change"]), "|---|---:|---:|---:|"]
        for v in c.per_rule:
            o = v.old_per_second if v.old_per_second is not None else v.old_kept_spans
            n = v.new_per_second if v.new_per_second is not None else v.new_kept_spans
            out.append(_row([md_code(v.label, in_table=True), fmt_num(o), fmt_num(n), md_text(change_pct(o, n))]))
        out += ["", "</details>", ""]
        if c.reason_only:
            out += [f"<details><summary>Reason-only changes: {c.reason_only_traces:,} traces</summary>", ""]
            out += [md_text(REASON_NOTE), ""]
            out += [_row(["old reason", "new reason", "traces", "spans", "dropped"]), "|---|---|---:|---:|---:|"]
            for x in c.reason_only:
                out.append(
                    _row([md_code(x.old_reason, in_table=True), md_code(x.new_reason, in_table=True),
                          fmt_num(x.traces), fmt_num(x.spans), fmt_num(x.dropped)])
                )  # fmt: skip
            out += ["", "</details>", ""]
    out += [f"{h} For all traces (symbolic)", "", md_text(symbolic_line(r)), ""]
    s = r.symbolic
    if s is not None and s.witnesses:
        out += [md_text(SYMBOLIC_NOTE), ""]
        for k, w in enumerate(s.witnesses, 1):
            risk = f" **At risk: {md_text(', '.join(w.at_risk))}.**" if w.at_risk else ""
            out.append(f"{k}. {w.shape(md_code)}{md_text(w.change())}.{risk}")
        out += ["", "<details><summary>Witness traces (JSON lines: `nectar ingest` them to replay)</summary>", ""]
        fence = "```"
        lines = [json.dumps(span, sort_keys=True, ensure_ascii=False) for w in s.witnesses for span in w.spans]
        while fence in "\n".join(lines):
            fence += "`"
        out += [fence + "json", *lines, fence, "", "</details>", ""]
    return out


def _notable(r: DiffReport) -> bool:
    c = r.corpus
    if c is not None and (c.changed_traces or any(a.traces for a in c.at_risk)):
        return True
    return r.symbolic is not None and r.symbolic.status == "different"


def render_md(r: DiffReport) -> str:
    """The whole comment (deterministic: same report, same bytes)."""
    env = f" (environment {md_code(r.env)})" if r.env else ""
    out = [f"## Sampling change: {md_code(r.old_label)} → {md_code(r.new_label)}{env}", "", *sections(r)]
    out.append("Made by `nectar diff --format md`.")
    return "\n".join(out).rstrip("\n") + "\n"


__all__ = ["render_md", "sections"]
