"""The waggle report as one self-contained HTML page: inline CSS, inline SVG charts, no script, no fetches.

Works offline and from an e-mail attachment: nothing is loaded from the network (no CDN, no web fonts, no images
by URL). Every piece of user text (policy, rule names, match expressions, trace ids) is HTML-escaped.
"""

from __future__ import annotations

from html import escape

import matplotlib

from nectar.diff.phrases import (
    REASON_NOTE,
    SYMBOLIC_NOTE,
    at_risk_line,
    budget_note,
    budget_rows,
    reason_text,
    summary,
    symbolic_line,
)
from nectar.explain.charts import all_charts
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
    summary_lines,
)

CSS = """
:root { --ink: #1f2933; --muted: #5f6b7a; --line: #d9dee5; --pass: #2e7d32; --fail: #c62828; --skip: #8d6e00;
        --bg: #ffffff; --card: #f7f9fb; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; color: var(--ink); background: var(--bg);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 12px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 17px; margin: 0 0 6px; }
code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
pre { background: #eef1f5; padding: 10px 12px; border-radius: 6px; overflow-x: auto; margin: 6px 0; }
.meta { color: var(--muted); margin: 0 0 8px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff; font-weight: 600; }
.verdict.pass { background: var(--pass); } .verdict.fail { background: var(--fail); }
.verdict.caveat { background: var(--skip); }
.status { font-weight: 700; } .status.pass { color: var(--pass); } .status.fail { color: var(--fail); }
.status.skip, .status.vacuous { color: var(--skip); } .status.waived { color: var(--muted); }
ul.summary { padding-left: 20px; } ul.summary li { margin: 4px 0; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
figure svg { width: 100%; max-width: 680px; height: auto; display: block; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.rule { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
        margin: 12px 0; }
.rule .sentence { font-size: 16px; font-weight: 600; margin: 6px 0; }
.rule .author { color: var(--muted); font-style: italic; margin: 0; }
.tag { display: inline-block; font-size: 12px; padding: 1px 8px; border-radius: 10px; background: #e3e8ee;
       margin-left: 6px; vertical-align: middle; font-weight: 500; }
.notes li, .caveats li { margin: 3px 0; }
.caveats .warning { color: var(--fail); font-weight: 600; } .caveats .info { color: var(--skip); font-weight: 600; }
details summary { cursor: pointer; color: var(--muted); }
footer { color: var(--muted); font-size: 13px; margin-top: 40px; }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _caveats(items: tuple[Caveat, ...]) -> str:
    if not items:
        return ""
    rows = []
    for c in items:
        hint = f"<br><small>hint: {_e(c.hint)}</small>" if c.hint else ""
        label = f"{c.severity} {c.code}"
        rows.append(f'<li><span class="{_e(c.severity)}">{_e(label)}</span> {_e(c.message)}{hint}</li>')
    return '<ul class="caveats">' + "".join(rows) + "</ul>"


def _rule(ex: Explanation, r: RuleView) -> str:
    out = [f'<section class="rule" id="rule-{r.position}">']
    out.append(
        f"<h3>{r.position}. {_e(r.name)}<span class='tag'>{_e(r.action)}</span>"
        f"<span class='tag'>priority {r.priority}</span></h3>"
    )
    if r.description:
        out.append(f'<p class="author">{_e(r.description)}</p>')
    out.append(f'<p class="sentence">{_e(r.sentence)}</p>')
    out.append(f"<p>Match: <code>{_e(r.match)}</code></p>")
    for line in r.refinery_compact:
        out.append(f"<p>Refinery: <code>{_e(line)}</code></p>")
    if r.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in r.notes) + "</ul>")
    figures = [
        ("traces decided", fmt_num(r.decided_traces)),
        ("spans decided", fmt_num(r.decided_spans)),
        *[(f"traces {KEEP_LABELS[k]}", fmt_num(r.by_keep[k])) for k in KEEP_ORDER],
        ("expected kept spans", fmt_num(r.expected_kept_spans)),
        ("kept events/s", fmt_num(r.kept_events_per_sec)),
        ("share of kept volume", fmt_pct(r.kept_share)),
    ]
    if ex.budget_per_second is not None:
        figures.append(("share of the budget", fmt_pct(r.budget_share)))
    out.append("<table><tr>" + "".join(f'<th class="num">{_e(k)}</th>' for k, _ in figures) + "</tr>")
    out.append("<tr>" + "".join(f'<td class="num">{_e(v)}</td>' for _, v in figures) + "</tr></table>")
    if r.clauses:
        out.append("<table><tr><th>Refinery rule</th><th class='num'>matched traces</th>")
        out.append("<th class='num'>matched spans</th><th class='num'>decided traces</th></tr>")
        for c in r.clauses:
            out.append(
                f"<tr><td><code>{_e(c.name)}</code></td><td class='num'>{fmt_num(c.matched_traces)}</td>"
                f"<td class='num'>{fmt_num(c.matched_spans)}</td><td class='num'>{fmt_num(c.decided_traces)}</td></tr>"
            )
        out.append("</table>")
    if r.examples:
        out.append("<p>Example traces: " + ", ".join(f"<code>{_e(t)}</code>" for t in r.examples) + "</p>")
    out.append(_caveats(r.caveats))
    if r.refinery_yaml:
        out.append(f"<details><summary>Refinery form (rules.yaml)</summary><pre>{_e(r.refinery_yaml)}</pre></details>")
    else:
        out.append("<p><em>No Refinery rule: the match is false, so the rule is left out.</em></p>")
    out.append("</section>")
    return "\n".join(x for x in out if x)


def _checks(ex: Explanation) -> str:
    rows = ["<table><tr><th>check</th><th>verdict</th><th>summary</th></tr>"]
    for c in ex.checks:
        examples = "".join(f"<br><small><code>{_e(x)}</code></small>" for x in check_examples(c))
        rows.append(
            f"<tr><td>{_e(c.name)}</td><td class='status {_e(c.status)}'>{check_label(c)}</td>"
            f"<td>{_e(c.summary)}{examples}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _table(head: list[str], rows: list[list[str]], numeric_from: int) -> str:
    """A table of escaped cells; columns from ``numeric_from`` on are numbers (right-aligned)."""

    def cls(i: int) -> str:
        return " class='num'" if i >= numeric_from else ""

    out = ["<table><tr>" + "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(head)) + "</tr>"]
    out += ["<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows]
    return "\n".join(out) + "</table>"


def _against(ex: Explanation) -> str:
    """``--against OLD``: the diff from OLD to this policy (the before/after chart is with the other charts)."""
    d = ex.against
    if d is None:
        return ""
    parts = [f"<h2 id='against'>Changes against <code>{_e(d.old_label)}</code></h2>", f"<p>{_e(summary(d))}</p>"]
    c = d.corpus
    if c is not None:
        parts.append("<h3>Decision changes on the corpus</h3>")
        if c.transitions:
            rows = [
                [f"<code>{_e(t.old.who())}</code>", _e(t.old.outcome()), f"<code>{_e(t.new.who())}</code>",
                 _e(t.new.outcome()), fmt_num(t.traces), fmt_num(t.spans)]
                for t in c.transitions
            ]  # fmt: skip
            parts.append(_table(["old rule", "old outcome", "new rule", "new outcome", "traces", "spans"], rows, 4))
        else:
            parts.append(f"<p>None: all {c.traces:,} traces are decided as before.</p>")
        parts.append("<h3>Budget</h3>")
        parts.append(_table(["", "old", "new", "change"], [[_e(x) for x in r] for r in budget_rows(c)], 1))
        parts.append(f"<p class='meta'>{_e(budget_note(c))}</p>")
        parts.append("<h3>Error and must-keep traces</h3>")
        parts.append('<ul class="summary">' + "".join(f"<li>{_e(at_risk_line(a))}</li>" for a in c.at_risk) + "</ul>")
        if c.reason_only:
            rows = [[f"<code>{_e(reason_text(x))}</code>", fmt_num(x.traces), fmt_num(x.spans)] for x in c.reason_only]
            parts.append(
                f"<details><summary>Reason-only changes: {c.reason_only_traces:,} traces</summary>"
                f"<p>{_e(REASON_NOTE)}</p>{_table(['old reason -> new reason', 'traces', 'spans'], rows, 1)}</details>"
            )
    parts.append("<h3>For all traces (symbolic)</h3>")
    parts.append(f"<p>{_e(symbolic_line(d))}</p>")
    if d.symbolic is not None and d.symbolic.witnesses:
        parts.append(f"<p class='meta'>{_e(SYMBOLIC_NOTE)}</p><ol>")
        for w in d.symbolic.witnesses:
            risk = f" <strong>At risk: {_e(', '.join(w.at_risk))}.</strong>" if w.at_risk else ""
            shape = w.shape(lambda text: f"<code>{_e(text)}</code>")
            parts.append(f"<li>{shape}{_e(w.change())}.{risk}</li>")
        parts.append("</ol>")
    return "\n".join(parts)


def render_html(ex: Explanation) -> str:
    """The whole page (deterministic: same explanation, same bytes)."""
    verdict, verdict_text = ex.outcome, ex.verdict
    charts = all_charts(ex)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="nectar explain; matplotlib {_e(matplotlib.__version__)}">',
        f"<title>Waggle report: {_e(ex.policy_name)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body><main>",
        f"<h1>Waggle report: {_e(ex.policy_name)} <span class='verdict {verdict}'>{verdict_text}</span></h1>",
        f'<p class="meta">Policy <code>{_e(ex.policy_path)}</code> on corpus <code>{_e(ex.corpus_path)}</code>: '
        f"{_e(corpus_phrase(ex))}.</p>",
    ]
    if ex.policy_description:
        parts.append(f'<p class="author">{_e(ex.policy_description)}</p>')
    parts.append("<h2>The policy as a whole</h2>")
    parts.append('<ul class="summary">' + "".join(f"<li>{_e(s)}</li>" for s in summary_lines(ex)) + "</ul>")
    parts.append(_checks(ex))
    parts.append(_caveats(ex.policy_caveats))
    parts.append(_against(ex))
    parts.append("<h2>Charts</h2>")
    parts.append('<div class="charts">')
    for ch in charts:
        parts.append(
            f'<figure id="{_e(ch.name)}" role="img" aria-label="{_e(ch.alt)}">\n{ch.svg}'
            f"<figcaption>{_e(ch.alt)}</figcaption></figure>"
        )
    parts.append("</div>")
    parts.append("<h2>Rules, in evaluation order</h2>")
    parts.append(f"<p>{_e(ORDER_NOTE)}</p>")
    parts.extend(_rule(ex, r) for r in ex.rules)
    parts.append(
        "<footer>Made by <code>nectar explain --format html</code>. Figures are Refinery's decisions replayed on the "
        "corpus; sampled traces count with their keep probability (1/rate).</footer>"
    )
    parts.append("</main></body></html>")
    return "\n".join(p for p in parts if p) + "\n"


__all__ = ["CSS", "render_html"]
