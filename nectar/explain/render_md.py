"""The waggle report as GitHub-flavoured Markdown, for pull requests: a policy change is reviewed as a report.

User text is escaped: in prose, Markdown's active characters get a backslash; in code spans, the fence is longer
than any backtick run in the text (CommonMark code spans), so a match expression is shown exactly as written.
"""

from __future__ import annotations

import re

from nectar.explain.model import (
    KEEP_LABELS,
    KEEP_ORDER,
    ORDER_NOTE,
    Caveat,
    Explanation,
    RuleView,
    check_examples,
    check_label,
    corpus_phrase,
    fmt_num,
    fmt_pct,
    kept_line,
    summary_lines,
    traces_spans,
)

_ACTIVE = re.compile(r"[\\`*\[\]|~]|<(?=[A-Za-z/!?])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_text(text: str) -> str:
    """Prose with Markdown's active characters escaped (``_`` only where it could start or end emphasis, ``<`` only
    where it could start an HTML tag)."""
    return _ACTIVE.sub(lambda m: "\\" + m.group(0), text).replace("\n", " ")


def md_code(text: str, in_table: bool = False) -> str:
    """An inline code span that shows ``text`` exactly. In a table cell a pipe is written ``\\|`` (GFM removes the
    backslash before it parses the cell's code span)."""
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    body = text.replace("|", "\\|") if in_table else text
    return f"{fence}{pad}{body}{pad}{fence}"


def _caveats(items: tuple[Caveat, ...]) -> list[str]:
    out = []
    for c in items:
        hint = f" (hint: {md_text(c.hint)})" if c.hint else ""
        out.append(f"- **{c.severity} {c.code}**: {md_text(c.message)}{hint}")
    return out


def _rule(ex: Explanation, r: RuleView) -> list[str]:
    out = [f"### {r.position}. {md_text(r.name)}: {md_code(r.action)}, priority {r.priority}", ""]
    if r.description:
        out += [f"> {md_text(r.description)}", ""]
    out += [f"**{md_text(r.sentence)}**", ""]
    out.append(f"- match: {md_code(r.match)}")
    out += [f"- note: {md_text(n)}" for n in r.notes]
    outcome = ", ".join(f"{r.by_keep[k]:,} {KEEP_LABELS[k]}" for k in KEEP_ORDER)
    out.append(f"- decided: {traces_spans(r.decided_traces, r.decided_spans)}: {outcome}")
    for c in r.clauses:
        prefix = f"{md_code(c.name)} " if len(r.clauses) > 1 else ""
        out.append(f"- matched: {prefix}{traces_spans(c.matched_traces, c.matched_spans)}")
    out.append(f"- kept: {kept_line(ex, r)}")
    if r.examples:
        out.append("- example traces: " + ", ".join(md_code(t) for t in r.examples))
    out += _caveats(r.caveats)
    out.append("")
    if r.refinery_yaml:
        fence = "```" + "`" * max((len(x) for x in re.findall(r"`{3,}", r.refinery_yaml)), default=0)
        out += [
            "<details><summary>Refinery form (rules.yaml)</summary>",
            "",
            f"{fence}yaml",
            r.refinery_yaml.rstrip("\n"),
            fence,
            "",
            "</details>",
            "",
        ]
    else:
        out += ["No Refinery rule: the match is false, so the rule is left out.", ""]
    return out


def _rules_table(ex: Explanation) -> list[str]:
    head = ["rule", "action", "matched", "decided", *[KEEP_LABELS[k] for k in KEEP_ORDER]]
    budget = ex.budget_per_second is not None
    head += ["kept ev/s", "% of kept", *(["% of budget"] if budget else [])]
    out = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for r in ex.rules:
        cells = [
            f"{r.position}. {md_text(r.name)}",
            md_code(r.action, in_table=True),
            fmt_num(r.matched_traces),
            fmt_num(r.decided_traces),
            *[fmt_num(r.by_keep[k]) for k in KEEP_ORDER],
            fmt_num(r.kept_events_per_sec),
            fmt_pct(r.kept_share),
            *([fmt_pct(r.budget_share)] if budget else []),
        ]
        out.append("| " + " | ".join(cells) + " |")
    if ex.unmatched_traces:
        n = fmt_num(ex.unmatched_traces)
        out.append(f"| (no rule) | `keep` | - | {n} | {n} | 0 | 0 | - | - |" + (" - |" if budget else ""))
    return out


def render_md(ex: Explanation) -> str:
    """The whole report as Markdown (deterministic: same explanation, same bytes)."""
    verdict = md_text(ex.verdict) if ex.passed else f"**{md_text(ex.verdict)}**"
    out = [
        f"## Waggle report: {md_text(ex.policy_name)} ({verdict})",
        "",
        f"Policy {md_code(ex.policy_path)} on corpus {md_code(ex.corpus_path)}: {md_text(corpus_phrase(ex))}.",
        "",
    ]
    if ex.policy_description:
        out += [f"> {md_text(ex.policy_description)}", ""]
    out += ["### The policy as a whole", ""]
    out += [f"- {md_text(s)}" for s in summary_lines(ex)]
    out += ["", "| check | verdict | summary |", "|---|---|---|"]
    for c in ex.checks:
        examples = "".join(f"<br>{md_code(x, in_table=True)}" for x in check_examples(c))
        out.append(f"| {c.name} | **{check_label(c)}** | {md_text(c.summary)}{examples} |")
    out.append("")
    if ex.policy_caveats:
        out += ["Caveats:", "", *_caveats(ex.policy_caveats), ""]
    if ex.against is not None:
        from nectar.diff.render_md import sections  # the diff's own Markdown, one heading level down

        out += [f"### Changes against {md_code(ex.against.old_label)}", "", *sections(ex.against, level=4)]
    out += ["### Rules, in evaluation order", "", md_text(ORDER_NOTE), ""]
    out += _rules_table(ex)
    out.append("")
    for r in ex.rules:
        out += _rule(ex, r)
    out.append("Made by `nectar explain --format md`; `--format html` draws the charts.")
    return "\n".join(out).rstrip("\n") + "\n"


__all__ = ["md_code", "md_text", "render_md"]
