"""The proof report as data (``to_json``, a stable documented schema), text and JUnit XML: built once, rendered once."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nectar.prove.checks import CheckResult
from nectar.prove.core import ProofReport, rules_table

SCHEMA = "nectar-proof/1"


def to_json(report: ProofReport) -> dict[str, Any]:
    """The report as plain data. Schema ``nectar-proof/1`` (README "nectar prove")."""
    m = report.corpus.manifest
    b = report.budget
    return {
        "schema": SCHEMA,
        "passed": report.passed,
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
        "rules": rules_table(report),
        "budget": {
            "budget_per_second": report.policy.budget_per_second,
            "expected_per_second": _r(b.expected_per_second),
            "upper95_per_second": _r(b.upper95_per_second),
            "expected_kept_spans": _r(b.expected_kept_spans),
        },
        "totals": report.replay["totals"],
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


def _status_text(c: CheckResult, color: bool) -> str:
    label = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[c.status]
    if not color:
        return label
    style = {"pass": "green", "fail": "bold red", "skip": "yellow"}[c.status]
    return f"[{style}]{label}[/{style}]"


def render_text(report: ProofReport, color: bool = False, width: int = 120) -> str:
    """A readable report: checks, counterexamples, the per-rule table, lints. Colour only when asked (TTY)."""
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
    con.print()
    for c in report.checks:
        con.print(f"  {_status_text(c, color)}  {c.name:<10} ", end="")
        con.print(c.summary, markup=False)
        for ce in c.counterexamples:
            con.print(
                f"          trace {ce.trace_id}: decided by {ce.rule or 'no rule'} "
                f"({ce.reason}; keep={ce.keep}, rate={ce.rate}), {ce.spans} spans",
                markup=False,
            )
            for v in ce.values:
                fields = ", ".join(f"{k}={json.dumps(val)}" for k, val in v.items() if k != "span_id")
                con.print(f"            span {v['span_id']}: {fields}", markup=False)
            con.print(f"            {ce.sql}", markup=False)
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
    if report.lints:
        con.print("\nLints:", markup=False)
        for lint in report.lints:
            where = f" [{lint.rule}]" if lint.rule else ""
            con.print(f"  {lint.severity} {lint.code}{where}: {lint.message}", markup=False)
            if lint.hint:
                con.print(f"      hint: {lint.hint}", markup=False)
    verdict = "all checks passed" if report.passed else "the policy FAILS its checks"
    if report.strict and all(c.passed for c in report.checks) and not report.passed:
        verdict = "checks passed, but --strict turns the lints above into failures"
    con.print(f"\nResult: {verdict}", markup=False)
    return buf.getvalue()


def render_junit(report: ProofReport) -> str:
    """JUnit XML: one test case per check, failures carrying the counterexamples; lints as a test case too."""
    suite = ET.Element("testsuite", name=f"nectar prove {report.policy.name}")
    failures = skipped = 0
    for c in report.checks:
        case = ET.SubElement(suite, "testcase", classname="nectar.prove", name=c.name)
        if c.status == "fail":
            failures += 1
            fail = ET.SubElement(case, "failure", message=c.summary)
            fail.text = (
                "\n".join(f"{ce.trace_id} decided by {ce.rule} ({ce.reason}); {ce.sql}" for ce in c.counterexamples)
                or c.summary
            )
        elif c.status == "skip":
            skipped += 1
            ET.SubElement(case, "skipped", message=c.summary)
        else:
            ET.SubElement(case, "system-out").text = c.summary
    case = ET.SubElement(suite, "testcase", classname="nectar.prove", name="lints")
    if report.strict and report.lints:
        failures += 1
        ET.SubElement(case, "failure", message=f"{len(report.lints)} lints (--strict)").text = "\n".join(
            f"{lint.code} {lint.rule}: {lint.message}" for lint in report.lints
        )
    else:
        ET.SubElement(case, "system-out").text = "\n".join(
            f"{lint.code} {lint.rule}: {lint.message}" for lint in report.lints
        )
    suite.set("tests", str(len(report.checks) + 1))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
