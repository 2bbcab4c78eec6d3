"""The report's charts as inline SVG, drawn with matplotlib (object API, no pyplot state, no GUI backend).

Same inputs, same bytes: every chart is drawn inside an ``rc_context`` that fixes what matplotlib would otherwise
take from the environment or the clock: ``svg.hashsalt`` (the ids of clip paths and markers are hashes salted with
it; a per-chart salt also keeps ids unique when several SVGs share one HTML page), ``svg.fonttype = "none"`` (text
stays text, so no glyph outlines from whichever font file is found), the font family, and ``metadata={"Date":
None}`` (no timestamp). The SVG has no external references, so the page works offline.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # never a GUI backend; savefig(format="svg") uses the SVG backend anyway

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nectar.explain.model import KEEP_LABELS, KEEP_ORDER, Explanation, fmt_num, fmt_pct, plural

COLORS = {"true": "#2e7d32", "sampled": "#f2a900", "false": "#9e9e9e"}
ALL_COLOR = "#5c7c99"
KEPT_COLOR = "#2e7d32"
BUDGET_COLOR = "#c62828"
WIDTH_IN = 6.0

_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "path.simplify": True,
}


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: a stable ``name`` (HTML id), a title, alt text for readers without the image, and the SVG."""

    name: str
    title: str
    alt: str
    svg: str


def _svg(name: str, draw: Callable[[Figure], None], height: float) -> str:
    rc: Any = {**_RC, "svg.hashsalt": f"nectar-explain-{name}", "svg.id": f"chart-{name}"}
    with rc_context(rc):
        fig = Figure(figsize=(WIDTH_IN, height))
        draw(fig)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    start = text.index("<svg")  # drop the XML declaration and DOCTYPE: the SVG is inlined in HTML
    return text[start:].strip() + "\n"


def _rule_labels(ex: Explanation) -> list[str]:
    return [f"{r.position}. {r.name}" for r in ex.rules]


def _hbar_layout(ax: Axes, labels: list[str]) -> None:
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.tick_params(axis="y", length=0)


def kept_volume_chart(ex: Explanation) -> Chart:
    """Expected kept events/s per rule (kept spans on the corpus when the window is 0 s)."""
    labels = _rule_labels(ex)
    per_sec = all(r.kept_events_per_sec is not None for r in ex.rules)
    values = [(r.kept_events_per_sec or 0.0) if per_sec else r.expected_kept_spans for r in ex.rules]
    unit = "kept events/s (expected)" if per_sec else "kept spans on the corpus (expected)"

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.barh(range(len(values)), values, color=KEPT_COLOR, height=0.6)
        _hbar_layout(ax, labels)
        ax.set_xlabel(unit)
        top = max(values, default=0.0) or 1.0
        ax.set_xlim(0, top * 1.3)
        for i, (v, r) in enumerate(zip(values, ex.rules, strict=True)):
            ax.text(v + top * 0.01, i, f" {fmt_num(v)} ({fmt_pct(r.kept_share)})", va="center", fontsize=8)
        ax.set_title("Kept volume per rule")

    alt = "; ".join(f"{lab}: {fmt_num(v)}" for lab, v in zip(labels, values, strict=True))
    return Chart("kept-volume", "Kept volume per rule", f"{unit}: {alt}", _svg("kept-volume", draw, _h(len(labels))))


def before_after_chart(ex: Explanation) -> Chart | None:
    """``--against OLD``: expected kept events/s per rule before (OLD) and after (this policy), side by side (kept
    spans on the corpus when the window is 0 s); a rule on one side only has no bar on the other."""
    d = ex.against
    if d is None or d.corpus is None:
        return None
    rows = d.corpus.per_rule
    labels = [r.label for r in rows]
    per_sec = d.corpus.window_seconds > 0
    before = [(r.old_per_second if per_sec else r.old_kept_spans) for r in rows]
    after = [(r.new_per_second if per_sec else r.new_kept_spans) for r in rows]
    unit = "kept events/s (expected)" if per_sec else "kept spans on the corpus (expected)"

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ys = range(len(labels))
        ax.barh([y - 0.2 for y in ys], [v or 0.0 for v in before], height=0.38, color=ALL_COLOR, label="before")
        ax.barh([y + 0.2 for y in ys], [v or 0.0 for v in after], height=0.38, color=KEPT_COLOR, label="after")
        _hbar_layout(ax, labels)
        top = max([v or 0.0 for v in [*before, *after]], default=0.0) or 1.0
        ax.set_xlim(0, top * 1.35)
        for y, b, a in zip(ys, before, after, strict=True):
            ax.text((b or 0.0) + top * 0.01, y - 0.2, f" {fmt_num(b)}", va="center", fontsize=7)
            ax.text((a or 0.0) + top * 0.01, y + 0.2, f" {fmt_num(a)}", va="center", fontsize=7)
        ax.set_xlabel(unit)
        ax.legend(frameon=False, ncols=2, loc="lower center", bbox_to_anchor=(0.4, 1.0))
        ax.set_title("Kept volume per rule, before and after", pad=22)

    alt = f"{unit}, before ({d.old_label}) and after: " + "; ".join(
        f"{lab}: {fmt_num(b)} -> {fmt_num(a)}" for lab, b, a in zip(labels, before, after, strict=True)
    )
    name = "before-after"
    return Chart(name, "Kept volume per rule, before and after", alt, _svg(name, draw, _h(2 * len(labels)) + 0.3))


def budget_chart(ex: Explanation) -> Chart:
    """Expected kept events/s and its 95% upper bound against the budget (log scale when they differ a lot)."""
    rows: list[tuple[str, float, str]] = []
    if ex.expected_per_second is not None:
        rows.append(("expected", ex.expected_per_second, KEPT_COLOR))
        rows.append(("95% upper bound", ex.upper95_per_second or 0.0, "#81c784"))
    if ex.budget_per_second is not None:
        rows.append(("budget", ex.budget_per_second, BUDGET_COLOR))
    positive = [v for _, v, _ in rows if v > 0]
    log = len(positive) >= 2 and max(positive) / min(positive) > 100

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        if not rows:
            ax.text(0.5, 0.5, "no rate: the corpus time window is 0 s", ha="center", va="center")
            ax.set_axis_off()
            return
        vals = [v for _, v, _ in rows]
        ax.barh(range(len(rows)), vals, color=[c for _, _, c in rows], height=0.6)
        _hbar_layout(ax, [n for n, _, _ in rows])
        if log:
            ax.set_xscale("log")
            ax.set_xlim(min(positive) / 3, max(positive) * 20)
        else:
            ax.set_xlim(0, (max(vals) or 1.0) * 1.35)
        for i, v in enumerate(vals):
            ax.text(v, i, f"  {fmt_num(v)}/s", va="center", fontsize=8)
        if ex.budget_per_second is not None:
            ax.axvline(ex.budget_per_second, color=BUDGET_COLOR, linestyle="--", linewidth=1)
        scale = " (log scale)" if log else ""
        ax.set_xlabel(f"events per second{scale}")
        ax.set_title("Budget use")

    if ex.budget_per_second is not None and ex.expected_per_second is not None:
        alt = (
            f"expected {fmt_num(ex.expected_per_second)}/s, 95% upper bound {fmt_num(ex.upper95_per_second)}/s, "
            f"budget {fmt_num(ex.budget_per_second)}/s"
        )
    elif ex.expected_per_second is None:
        alt = "no rate: the corpus time window is 0 s"
    else:
        alt = f"expected {fmt_num(ex.expected_per_second)}/s; no budget set"
    return Chart("budget", "Budget use", alt, _svg("budget", draw, _h(max(len(rows), 1))))


def latency_chart(ex: Explanation) -> Chart | None:
    """Root-span duration histograms: all traces, and kept traces weighted by their keep probability."""
    h = ex.latency
    if h is None:
        return None

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        edges = list(h.edges)
        ax.stairs(h.all_traces, edges, color=ALL_COLOR, linewidth=1.5, fill=True, alpha=0.25, label="all traces")
        ax.stairs(h.all_traces, edges, color=ALL_COLOR, linewidth=1.5)
        ax.stairs(h.kept, edges, color=KEPT_COLOR, linewidth=1.8, label="kept (expected)")
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(0, max(max(h.all_traces, default=1), 1) * 2)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel("root span duration (ms, log scale)")
        ax.set_ylabel("traces per bin (log scale)")
        ax.legend(frameon=False, loc="upper right")
        ax.set_title("Latency: kept traces against all traces")

    alt = (
        f"root span durations of {plural(h.traces, 'trace')}; expected kept {fmt_num(math.fsum(h.kept))}; "
        f"{plural(h.without_root, 'trace')} without a root span are not shown"
    )
    return Chart("latency", "Latency of kept traces against all traces", alt, _svg("latency", draw, 3.2))


def decisions_chart(ex: Explanation) -> Chart:
    """Per rule, its decided traces split into always kept, sampled and always dropped (100% stacked)."""
    labels = _rule_labels(ex)

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        left = [0.0] * len(ex.rules)
        for k in KEEP_ORDER:
            shares = [(r.by_keep[k] / r.decided_traces) if r.decided_traces else 0.0 for r in ex.rules]
            ax.barh(range(len(shares)), shares, left=left, color=COLORS[k], height=0.6, label=KEEP_LABELS[k])
            left = [a + b for a, b in zip(left, shares, strict=True)]
        _hbar_layout(ax, labels)
        ax.set_xlim(0, 1.3)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
        for i, r in enumerate(ex.rules):
            ax.text(1.01, i, f"{plural(r.decided_traces, 'trace')}", va="center", fontsize=8)
        ax.set_xlabel("share of the traces the rule decided")
        ax.legend(frameon=False, ncols=3, loc="lower center", bbox_to_anchor=(0.4, 1.0))
        ax.set_title("Decisions by rule", pad=22)

    alt = "; ".join(
        f"{lab}: " + ", ".join(f"{r.by_keep[k]:,} {KEEP_LABELS[k]}" for k in KEEP_ORDER)
        for lab, r in zip(labels, ex.rules, strict=True)
    )
    return Chart("decisions", "Decisions by rule", alt, _svg("decisions", draw, _h(len(labels)) + 0.3))


def sampler_charts(ex: Explanation) -> list[Chart]:
    """Per simulated stateful sampler, the rate its replay gave its busiest keys over the corpus window."""
    charts = []
    for i, run in enumerate(ex.samplers):
        if not run.top_keys:
            continue
        name = f"sampler-{i}"

        def draw(fig: Figure, run: Any = run) -> None:
            ax = fig.add_subplot()
            for j, key in enumerate(run.top_keys):
                xs = [p[0] for p in key.points]
                ys = [p[1] for p in key.points]
                label = key.key if len(key.key) <= 40 else key.key[:39] + "\u2026"
                ax.step(xs, ys, where="post", linewidth=1.4, label=label or "(empty key)", color=f"C{j}")
            ax.set_ylim(bottom=0)
            ax.set_xlabel(f"seconds since the corpus start (buckets of {run.bucket_s:g} s)")
            ax.set_ylabel("simulated sample rate (1 in N)")
            ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2)
            who = ", ".join(run.rules) or "top level"
            ax.set_title(f"{run.kind} ({who}): rate of its busiest keys")

        alt = f"{run.note}. " + "; ".join(
            f"key {k.key!r}: {plural(k.traces, 'trace')}, rate from {fmt_num(min(r for _, r in k.points))} to "
            f"{fmt_num(max(r for _, r in k.points))}"
            for k in run.top_keys
            if k.points
        )
        who = ", ".join(run.rules) or "top level"
        charts.append(Chart(name, f"Simulated rates: {run.kind} ({who})", alt, _svg(name, draw, 3.8)))
    return charts


def _h(rows: int) -> float:
    return 1.0 + 0.42 * max(rows, 1)


def all_charts(ex: Explanation) -> list[Chart]:
    """Every chart of the report, in page order (the latency chart only when the corpus has root durations, the
    before/after chart only with ``--against``)."""
    charts = [kept_volume_chart(ex)]
    diff = before_after_chart(ex)
    if diff is not None:
        charts.append(diff)
    charts.append(budget_chart(ex))
    lat = latency_chart(ex)
    if lat is not None:
        charts.append(lat)
    charts.append(decisions_chart(ex))
    charts.extend(sampler_charts(ex))
    return charts


__all__ = [
    "Chart",
    "all_charts",
    "before_after_chart",
    "budget_chart",
    "decisions_chart",
    "kept_volume_chart",
    "latency_chart",
    "sampler_charts",
]
