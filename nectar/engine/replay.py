"""Replay an existing Refinery rules file over a corpus: what each rule matches, decides and keeps.

Answers refinery issues #903 (test rules without dry-running the cluster) and #1495 (per-rule dry run):
:func:`build_report` runs one engine with per-rule matches and summarizes, per rule, the traces and spans it
matches (whether or not an earlier rule decided them) and decides, the spans it is expected to keep (spans x keep
probability: 1 for kept, 0 for dropped, 1/rate for a random or stateful sampler, at the rate the stateful sampler's
replay over the corpus gave the trace) and the kept events per second (over the corpus time window, scaled by the
manifest's ``sample_rate``), plus rules that never match, the loader's lints and what each stateful sampler did
(``samplers``: :class:`nectar.engine.stateful.SamplerRun`). :func:`per_trace_lines` gives each trace's decision as
a JSON line, sorted by trace id (the CLI writes them with ``nectar.util``'s checked atomic writer).

The report is plain data (sorted keys when dumped), rendered once as text or JSON by the CLI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl

from nectar.corpus.layout import Corpus
from nectar.engine.api import evaluate, select_sampler
from nectar.engine.decision import EvalResult, keep_probability
from nectar.engine.lowering import plan_sampler
from nectar.refinery.model import RulesBasedSampler, RulesFile, Sampler, SamplerConfig


@dataclass(frozen=True, slots=True)
class ReplayInput:
    rules_file: RulesFile
    rules_path: str
    corpus: Corpus
    env: str | None
    engine: str


def sampler_key(rules_file: RulesFile, env: str | None) -> str:
    """The ``Samplers`` key Refinery uses for ``env``: the exact name if present, else ``__default__``."""
    return env if env is not None and env in rules_file.samplers else "__default__"


def _sig(x: float) -> float:
    """9 significant digits: stable output without float noise, and tiny rates stay visible."""
    return float(f"{x:.9g}")


def _share(part: float, whole: int) -> float:
    return _sig(part / whole) if whole else 0.0


def _per_second(kept: float, window: float, sample_rate: float) -> float | None:
    return _sig(kept * sample_rate / window) if window > 0 else None


def build_report(
    inp: ReplayInput, lints: list[dict[str, Any]] | None = None, result: EvalResult | None = None
) -> dict[str, Any]:
    """Evaluate (unless ``result``, from ``evaluate(..., with_matches=True)``, is given) and summarize (see the
    module docstring). ``lints`` are the loader's findings as dicts."""
    key = sampler_key(inp.rules_file, inp.env)
    sampler = select_sampler(inp.rules_file, inp.env)
    if result is None:
        result = evaluate(sampler, inp.corpus, engine=inp.engine, with_matches=True)
    dec = result.decisions.with_columns(keep_probability().alias("p_keep"))
    dec = dec.with_columns((pl.col("spans").cast(pl.Float64) * pl.col("p_keep")).alias("kept_spans"))
    m = inp.corpus.manifest
    window, srate = m.window_seconds, m.sample_rate
    total_traces = dec.height
    total_spans = int(dec.get_column("spans").sum() or 0)
    total_kept = float(dec.get_column("kept_spans").sum() or 0.0)

    decided = (
        dec.group_by("rule_index")
        .agg(
            pl.len().alias("traces"),
            pl.col("spans").sum().alias("spans"),
            pl.col("kept_spans").sum().alias("kept"),
        )
        .to_dicts()
    )
    by_index = {d["rule_index"]: d for d in decided}
    plan = plan_sampler(sampler)
    choice = sampler.choice if isinstance(sampler, SamplerConfig) else sampler
    src_rules = choice.rules if isinstance(choice, RulesBasedSampler) else ()
    rules_out: list[dict[str, Any]] = []
    matched = _match_counts(dec.get_column("spans"), result.matches)
    for rule in plan.rules:
        d = by_index.get(rule.index, {"traces": 0, "spans": 0, "kept": 0.0})
        mt, ms = matched.get(f"m{rule.index}", (d["traces"], d["spans"]))
        rules_out.append(
            {
                "index": rule.index,
                "name": rule.name,
                "scope": rule.scope,
                "keep": rule.outcome.keep if rule.outcome.keep != "deterministic" else "deterministic",
                "rate": rule.outcome.rate,
                "sampler": rule.outcome.sampler,
                # Stateful samplers: the kept figures use the rates their replay over the corpus gave each trace
                # ("samplers" below); "rate" is the configured goal rate.
                "stateful": bool(rule.outcome.sampler and rule.outcome.keep == "sampled"),
                "goal_throughput_per_sec": _goal(src_rules[rule.index].sampler) if src_rules else None,
                "matched": {"traces": mt, "spans": ms},
                "decided": {"traces": d["traces"], "spans": int(d["spans"])},
                "expected_kept_spans": _sig(float(d["kept"])),
                "kept_events_per_sec": _per_second(float(d["kept"]), window, srate),
                "share": {"traces": _share(d["traces"], total_traces), "spans": _share(int(d["spans"]), total_spans)},
            }
        )
    rest = by_index.get(None, {"traces": 0, "spans": 0, "kept": 0.0})
    top = plan.top
    default_row = {
        "name": "no rule matched" if top is None else _sampler_type(sampler),
        "keep": (top.keep if top else "true"),
        "rate": (top.rate if top else 1),
        "decided": {"traces": rest["traces"], "spans": int(rest["spans"])},
        "expected_kept_spans": _sig(float(rest["kept"])),
        "kept_events_per_sec": _per_second(float(rest["kept"]), window, srate),
        "share": {"traces": _share(rest["traces"], total_traces), "spans": _share(int(rest["spans"]), total_spans)},
    }
    keep_counts = dec.group_by("keep").agg(pl.len().alias("traces"), pl.col("spans").sum().alias("spans"))
    by_keep = {r["keep"]: {"traces": r["traces"], "spans": int(r["spans"])} for r in keep_counts.to_dicts()}
    return {
        "rules_file": inp.rules_path,
        "env": inp.env,
        "sampler": key,
        "sampler_type": _sampler_type(sampler),
        "engine": inp.engine,
        "corpus": {
            "path": str(inp.corpus.root),
            "spans": m.spans,
            "traces": m.traces,
            "window_seconds": window,
            "sample_rate": srate,
        },
        "rules": rules_out,
        "default": default_row,
        "never_matching": [r["name"] for r in rules_out if r["matched"]["traces"] == 0],
        "never_deciding": [r["name"] for r in rules_out if r["decided"]["traces"] == 0],
        "lints": lints or [],
        "samplers": [run.to_json() for run in result.samplers],
        "totals": {
            "traces": total_traces,
            "spans": total_spans,
            "expected_kept_spans": _sig(total_kept),
            "kept_events_per_sec": _per_second(total_kept, window, srate),
            "keep_fraction": _share(total_kept, total_spans),
            "by_keep": {k: by_keep[k] for k in sorted(by_keep)},
        },
    }


def _match_counts(spans: pl.Series, matches: pl.DataFrame | None) -> dict[str, tuple[int, int]]:
    """Per match column (``m0``, ``m1``...): the traces it is true for and their spans (rows aligned with
    ``spans``). One pass over the columns: looking each rule's column up by name scans every column name, which
    made the report quadratic in the number of rules."""
    if matches is None:
        return {}
    out: dict[str, tuple[int, int]] = {}
    for col in matches.get_columns():
        if col.name.startswith("m"):
            hit = col.cast(pl.Boolean)
            out[col.name] = (int(hit.sum() or 0), int(spans.filter(hit).sum() or 0))
    return out


def _goal(s: Sampler | None) -> int | None:
    return s.goal_throughput if s is not None else None


def _sampler_type(sampler: SamplerConfig | Any) -> str:
    choice = sampler.choice if isinstance(sampler, SamplerConfig) else sampler
    if choice is None:
        return "none"
    return choice.kind if isinstance(choice, Sampler) else "RulesBasedSampler"


def per_trace_lines(decisions: pl.DataFrame) -> pl.DataFrame:
    """One JSON text per trace (``trace_id, rule, keep, rate, reason``), sorted by trace id."""
    keep = pl.col("keep")
    keep_json = (
        pl.when(keep == "true")
        .then(pl.lit("true"))
        .when(keep == "false")
        .then(pl.lit("false"))
        .otherwise(pl.lit('"sampled"'))
    )

    def js(col: str) -> pl.Expr:  # JSON string literal of a text column (null -> null)
        return pl.col(col).map_elements(json.dumps, return_dtype=pl.String, skip_nulls=True).fill_null("null")

    line = pl.concat_str(
        [
            pl.lit('{"trace_id": '),
            js("trace_id"),
            pl.lit(', "rule": '),
            js("rule"),
            pl.lit(', "keep": '),
            keep_json,
            pl.lit(', "rate": '),
            pl.col("rate").cast(pl.String),
            pl.lit(', "reason": '),
            js("reason"),
            pl.lit("}"),
        ]
    )
    return decisions.sort("trace_id").select(line.alias("line"))


__all__ = ["ReplayInput", "build_report", "per_trace_lines", "sampler_key"]
