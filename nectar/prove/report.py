"""The proof report as data (``to_json``, a stable documented schema), text and JUnit XML: built once, rendered once."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from nectar.prove.checks import CheckResult, verdict
from nectar.prove.core import ProofReport, rules_table

SCHEMA = "nectar-proof/2"
CHECK_INDENT = 13  # detail lines under a check line start below its verdict


def to_json(report: ProofReport) -> dict[str, Any]:
    """The report as plain data. Schema ``nectar-proof/2`` (README "nectar prove"): per check its corpus verdict
    (``corpus``: status, figures, counterexamples, waived) and its verdict over all traces (``symbolic``)."""
    m = report.corpus.manifest
    b = report.budget
    return {
        "schema": SCHEMA,
        "passed": report.passed,
        "verdict": result_line(report),
        "strict": report.strict,
        "policy": {"name": report.policy.name, "file": report.policy.path},
        "corpus": {
            "path": str(report.corpus.root),
            "spans": m.spans,
            "traces": m.traces,
            "window_seconds": m.window_seconds,
            "sample_rate": m.sample_rate,
        },
        "engine": report.engine,
        "error_definition": report.error_definition,
        "checks": [c.to_json() for c in report.checks],
        "symbolic_rules": {name: v.to_json() for name, v in report.symbolic_rules.items()},
        "vacuous": report.vacuous,
        "waivers": [w.to_json() for w in report.waivers],
        "warnings": [w.to_json() for w in report.warnings],
        "rules": rules_table(report),
        "budget": {
            "budget_per_second": report.policy.budget_per_second,
            "expected_per_second": _r(b.expected_per_second),
            "upper95_per_second": _r(b.upper95_per_second),
            "expected_kept_spans": _r(b.expected_kept_spans),
        },
        "totals": report.replay["totals"],
        "samplers": [run.to_json() for run in report.samplers],
        "lints": [lint.to_json() for lint in report.lints],
    }


def _r(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")


def _fmt_num(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.1f}" if abs(x) >= 1 or x == 0 else f"{x:.3g}"
    return f"{x:,}"


_LABELS = {"pass": "PASS", "fail": "FAIL", "vacuous": "VACUOUS", "waived": "WAIVED", "skip": "SKIP"}
_STYLES = {"pass": "green", "fail": "bold red", "vacuous": "bold yellow", "waived": "cyan", "skip": "yellow"}


def check_line(c: CheckResult, color: bool = False) -> str:
    """A check's one line: its corpus verdict with its figures in brief, then its symbolic verdict, e.g.
    ``errors     PASS on the corpus (32/32 kept) · symbolic: skipped`` (Rich markup when ``color``)."""
    label, name, brief = _LABELS[c.status], c.name, f" ({c.brief})" if c.brief else ""
    if color:
        label = f"[{_STYLES[c.status]}]{label}[/{_STYLES[c.status]}]"
        name, brief = escape(name), escape(brief)
    sym = c.symbolic.status if c.symbolic.status == "skipped" else c.symbolic.status.upper()
    return f"{name:<10} {label} on the corpus{brief} · symbolic: {sym}"


def result_line(report: ProofReport) -> str:
    """The run's verdict in words (the last line of the text report)."""
    if report.passed or any(not c.passed for c in report.checks):
        return verdict(report.checks)
    return "no check failed, but --strict fails on " + "; ".join(report.strict_failures())


def _check_details(con: Console, c: CheckResult) -> None:
    pad = " " * CHECK_INDENT
    if c.status not in ("pass", "skip"):
        con.print(pad + c.summary, markup=False)
    if c.note:
        con.print(pad + c.note, markup=False)
    for w in c.waived:
        con.print(f"{pad}waived: {w.describe()}", markup=False)
    for ce in c.counterexamples:
        con.print(
            f"{pad}trace {ce.trace_id}: decided by {ce.rule or 'no rule'} "
            f"({ce.reason}; keep={ce.keep}, rate={ce.rate}), {ce.spans} spans",
            markup=False,
        )
        for v in ce.values:
            fields = ", ".join(f"{k}={json.dumps(val)}" for k, val in v.items() if k != "span_id")
            con.print(f"{pad}  span {v['span_id']}: {fields}", markup=False)
        con.print(f"{pad}  {ce.sql}", markup=False)
    if c.symbolic.status != "skipped":
        con.print(f"{pad}symbolic: {c.symbolic.reason}", markup=False)
        for i, sp in enumerate(c.symbolic.witness):
            con.print(f"{pad}  witness span {i}: {json.dumps(sp, sort_keys=True)}", markup=False)


def render_text(report: ProofReport, color: bool = False, width: int = 120) -> str:
    """A readable report: one line per check (corpus and symbolic verdicts) with its details, the per-rule table,
    lints and warnings. Colour only when asked (TTY)."""
    buf = io.StringIO()
    con = Console(
        file=buf, force_terminal=color, no_color=not color, width=width, highlight=False, soft_wrap=True, emoji=False
    )
    m = report.corpus.manifest
    con.print(
        f"Proving {report.policy.name!r} ({report.policy.path}) against {report.corpus.root} "
        f"({m.spans:,} spans, {m.traces:,} traces, {m.window_seconds:,.0f} s, corpus = 1 in "
        f"{m.sample_rate:g} of traffic; engine {report.engine})",
        markup=False,
    )
    source = "the default" if report.error_definition_is_default else "from nectar.toml"
    con.print(
        f"Error traces: any span matching {report.error_definition} (prove.error_definition, {source})", markup=False
    )
    con.print()
    for c in report.checks:
        con.print("  " + check_line(c, color), markup=color)
        _check_details(con, c)
    for name, v in report.symbolic_rules.items():  # reachability: only what needs a look
        if v.status != "proved":
            con.print(f"  {'rule':<10} {name}: symbolic {v.status.upper()}: {v.reason}", markup=False)
    con.print()
    table = Table(title=None, show_lines=False, box=None, pad_edge=False)
    for col, just in (
        ("rule", "left"),
        ("match", "left"),
        ("matched", "right"),
        ("decided", "right"),
        ("kept ev/s", "right"),
        ("budget %", "right"),
    ):
        table.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for row in rules_table(report):
        share = row["budget_share"]
        table.add_row(
            Text(row["rule"]),  # plain text: a regex's [a-z] is not Rich markup
            Text(row["match"]),
            _fmt_num(row["matched_traces"]),
            _fmt_num(row["decided_traces"]),
            _fmt_num(row["kept_events_per_sec"]),
            "-" if share is None else f"{100 * share:.1f}%",
        )
    con.print(table)
    totals = report.replay["totals"]
    con.print(
        f"\nTotal: {_fmt_num(totals['kept_events_per_sec'])} kept events/s expected "
        f"({100 * totals['keep_fraction']:.2f}% of spans)",
        markup=False,
    )
    for run in report.samplers:  # the rates of stateful samplers are replayed, and where they started matters
        con.print(f"  {run.note}", markup=False)
    if report.lints:
        con.print("\nLints:", markup=False)
        for lint in report.lints:
            where = f" [{lint.rule}]" if lint.rule else ""
            con.print(f"  {lint.severity} {lint.code}{where}: {lint.message}", markup=False)
            if lint.hint:
                con.print(f"      hint: {lint.hint}", markup=False)
    if report.warnings:
        con.print("\nWarnings:", markup=False)
        for w in report.warnings:
            con.print(f"  warning {w.code}: {w.message}", markup=False)
    con.print(f"\nResult: {result_line(report)}", markup=False)
    return buf.getvalue()


def render_junit(report: ProofReport) -> str:
    """JUnit XML: one test case per check, failures carrying the counterexamples; lints as a test case too."""
    suite = ET.Element("testsuite", name=f"nectar prove {report.policy.name}")
    failures = skipped = 0
    for c in report.checks:
        case = ET.SubElement(suite, "testcase", classname="nectar.prove", name=c.name)
        if c.status == "fail" or (c.status == "vacuous" and report.strict):
            failures += 1
            message = c.summary if c.status == "fail" else f"vacuous (--strict): {c.summary}"
            fail = ET.SubElement(case, "failure", message=message)
            fail.text = (
                "\n".join(f"{ce.trace_id} decided by {ce.rule} ({ce.reason}); {ce.sql}" for ce in c.counterexamples)
                or c.summary
            )
        elif c.symbolic.status == "refuted":
            failures += 1
            fail = ET.SubElement(case, "failure", message=f"refuted for all traces: {c.symbolic.reason}")
            fail.text = "\n".join(json.dumps(sp, sort_keys=True) for sp in c.symbolic.witness)
        elif c.status in ("skip", "vacuous"):
            skipped += 1
            ET.SubElement(case, "skipped", message=f"{c.status}: {c.summary}")
        else:
            waived = [f"waived: {w.describe()}" for w in c.waived]
            ET.SubElement(case, "system-out").text = "\n".join([c.summary, *waived])
    case = ET.SubElement(suite, "testcase", classname="nectar.prove", name="lints")
    notes = [f"{lint.code} {lint.rule}: {lint.message}" for lint in report.lints]
    notes += [f"{w.code}: {w.message}" for w in report.warnings]
    if report.strict and notes:
        failures += 1
        ET.SubElement(case, "failure", message=f"{len(notes)} lints and warnings (--strict)").text = "\n".join(notes)
    else:
        ET.SubElement(case, "system-out").text = "\n".join(notes)
    suite.set("tests", str(len(report.checks) + 1))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
