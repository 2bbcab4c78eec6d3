"""The waggle report for the terminal: rich tables and colour on a TTY, the same layout as plain text otherwise.

Plain text (``color=False``) is deterministic: a fixed width, no styles, no terminal probing.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

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

STATUS_STYLE = {"pass": "bold green", "fail": "bold red", "vacuous": "bold yellow", "waived": "cyan", "skip": "yellow"}
OUTCOME_STYLE = {"pass": "bold green", "fail": "bold red", "caveat": "bold yellow"}
SEVERITY_STYLE = {"warning": "red", "info": "yellow"}


def _para(con: Console, text: str | Text, indent: int = 2, style: str = "") -> None:
    body = text if isinstance(text, Text) else Text(text, style=style)
    con.print(Padding(body, (0, 0, 0, indent)))


def _bullet(con: Console, label: str, text: str | Text, indent: int, style: str = "") -> None:
    """``label text`` with wrapped lines hanging under the text, not under the label."""
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text(label, style=style), text)
    con.print(Padding(grid, (0, 0, 0, indent)))


def _caveats(con: Console, items: tuple[Caveat, ...], indent: int) -> None:
    for c in items:
        line = Text(c.message)
        if c.hint:
            line.append(f" (hint: {c.hint})", style="dim")
        _bullet(con, f"{c.severity} {c.code}:", line, indent, SEVERITY_STYLE.get(c.severity, ""))


def _rules_table(ex: Explanation) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    cols = [
        ("rule", "left"),
        ("action", "left"),
        ("matched", "right"),
        ("decided", "right"),
        *[(KEEP_LABELS[k], "right") for k in KEEP_ORDER],
        ("kept ev/s", "right"),
        ("% of kept", "right"),
    ]
    if ex.budget_per_second is not None:
        cols.append(("% of budget", "right"))
    for n, (name, just) in enumerate(cols):
        # numbers and rule names never wrap; a long action (dynamic(...)) folds within its column
        table.add_column(name, justify=just, overflow="fold", no_wrap=n != 1, max_width=26 if n == 1 else None)  # type: ignore[arg-type]
    for r in ex.rules:
        table.add_row(
            f"{r.position}. {r.name}",
            r.action,
            fmt_num(r.matched_traces),
            fmt_num(r.decided_traces),
            *[fmt_num(r.by_keep[k]) for k in KEEP_ORDER],
            fmt_num(r.kept_events_per_sec),
            fmt_pct(r.kept_share),
            *([fmt_pct(r.budget_share)] if ex.budget_per_second is not None else []),
        )
    if ex.unmatched_traces:
        table.add_row("(no rule)", "keep", "-", fmt_num(ex.unmatched_traces), fmt_num(ex.unmatched_traces), "0", "0")
    return table


def _rule(con: Console, ex: Explanation, r: RuleView) -> None:
    head = Text(f"{r.position}. {r.name}", style="bold cyan")
    head.append(f"  [{r.action}, priority {r.priority}]", style="dim")
    if r.description:
        head.append(f"  {r.description}", style="italic")
    con.print(head)
    _para(con, r.sentence, 3, "bold")
    _bullet(con, "match:", r.match, 3, "dim")
    for note in r.notes:
        _bullet(con, "note:", note, 3, "yellow")
    for line in r.refinery_compact or ("(no Refinery rule: the match is false)",):
        _bullet(con, "Refinery:", line, 3, "dim")
    outcome = ", ".join(f"{r.by_keep[k]:,} {KEEP_LABELS[k]}" for k in KEEP_ORDER)
    _bullet(con, "decided:", f"{traces_spans(r.decided_traces, r.decided_spans)}: {outcome}", 3, "dim")
    for c in r.clauses:
        prefix = f"{c.name} " if len(r.clauses) > 1 else ""
        _bullet(
            con,
            "matched:",
            f"{prefix}{traces_spans(c.matched_traces, c.matched_spans)}",
            3,
            "dim",
        )
    _bullet(con, "kept:", kept_line(ex, r), 3, "dim")
    if r.examples:
        _bullet(con, "examples:", ", ".join(r.examples), 3, "dim")
    _caveats(con, r.caveats, 3)
    con.print()


def render_text(ex: Explanation, color: bool = False, width: int = 120) -> str:
    """The report as terminal text; ``color`` (a TTY) adds styles, otherwise plain text of ``width`` columns."""
    buf = io.StringIO()
    con = Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        width=width,
        highlight=False,
        emoji=False,
        markup=False,
    )
    title = Text(f"Waggle report: {ex.policy_name}  ", style="bold")
    title.append(ex.verdict, style=OUTCOME_STYLE[ex.outcome])
    con.print(title)
    con.print(
        Text(
            f"Policy {ex.policy_path} on corpus {ex.corpus_path}: {corpus_phrase(ex)}.",
            style="dim",
        )
    )
    if ex.policy_description:
        con.print(Text(ex.policy_description, style="italic"))
    con.print()
    con.print(Text("The policy as a whole", style="bold underline"))
    for line in summary_lines(ex):
        _bullet(con, "-", line, 2)
    con.print()
    con.print(Text("Checks", style="bold underline"))
    for c in ex.checks:
        check_line = Text(f"{c.name:<10} ", style="bold")
        check_line.append(c.summary)
        for x in check_examples(c):
            check_line.append("\n" + x, style="dim")
        _bullet(con, f"{check_label(c):<7}", check_line, 2, STATUS_STYLE.get(c.status, ""))
    if ex.policy_caveats:
        con.print()
        con.print(Text("Caveats", style="bold underline"))
        _caveats(con, ex.policy_caveats, 2)
    if ex.against is not None:
        from nectar.diff.render_text import sections  # the diff's own text (80 columns), inside the report

        con.print()
        con.print(Text(f"Changes against {ex.against.old_label}", style="bold underline"))
        for line in sections(ex.against):
            con.print(Text(line))
    con.print()
    con.print(Text("Rules, in evaluation order", style="bold underline"))
    con.print(Padding(_rules_table(ex), (0, 0, 0, 2)))
    con.print()
    _para(con, ORDER_NOTE, 0, "dim")
    con.print()
    for r in ex.rules:
        _rule(con, ex, r)
    text = buf.getvalue()
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip("\n") + "\n"


__all__ = ["render_text"]
