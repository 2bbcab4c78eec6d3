"""Samplers with very many rules: evaluated in chunks of consecutive rules, so that no query grows with the rules.

An engine renders one query per sampler with an expression per condition and per rule (DuckDB: a column each;
Polars: a ``pl.Expr`` each). Such a query costs more than linearly in its width (DuckDB 2.0.1 on the sample corpus:
12 s for 5,000 rules, 205 s for 20,000, most of it in the optimizer's ``projection_placement`` and in executing the
wide rows; Polars: 4 s and 22 s), so a rules file with 20,000 rules took minutes. With more than
:data:`CHUNK_RULES` rules an engine runs the usual single query once per chunk of consecutive rules
(:func:`split`), each over the whole corpus, and :func:`merge` puts the results side by side.

The decisions are those of a single query: whether a rule matches a trace depends only on that rule's conditions and
the trace, never on the other rules, and the chunks are in rule order, so the first matching rule of the first chunk
with one is the first matching rule of the sampler (Refinery's first match). Probes (``decide``: only the first
``decide`` rules decide) keep their meaning chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from nectar.corpus.layout import TRACE_ID
from nectar.engine.lowering import SamplerPlan

# Rules per query. Measured on the sample corpus: chunks of 500 to 2,000 rules cost about the same (20,000 rules:
# 43-45 s of CPU with DuckDB, 15-20 s with Polars), beyond that each query's planning grows; a chunk re-reads the
# corpus, which is cheap next to evaluating 1,000 rules on it.
CHUNK_RULES = 1000


def split(plan: SamplerPlan, decide: int | None, size: int | None = None) -> list[tuple[int, SamplerPlan, int]]:
    """``(offset, plan of rules [offset, offset + size), decide within it)`` per chunk, in rule order; one chunk
    (the plan itself) when it has at most ``size`` (default :data:`CHUNK_RULES`) rules."""
    size = size or CHUNK_RULES
    n = len(plan.rules)
    decide_n = n if decide is None else decide
    if n <= size:
        return [(0, plan, decide_n)]
    return [
        (start, SamplerPlan(rules=plan.rules[start : start + size]), max(0, min(decide_n - start, size)))
        for start in range(0, n, size)
    ]


def evaluate(
    plan: SamplerPlan, decide: int | None, run: Callable[[SamplerPlan, int], pl.DataFrame], size: int | None = None
) -> pl.DataFrame:
    """``run(chunk, decide)`` for each chunk of :func:`split`, merged (:func:`merge`)."""
    return merge([(offset, run(sub, sub_decide)) for offset, sub, sub_decide in split(plan, decide, size)])


def merge(parts: Sequence[tuple[int, pl.DataFrame]]) -> pl.DataFrame:
    """One per-trace frame from the chunks' (``offset``, frame): each has ``trace_id, spans, rule_index``, ``m<i>``
    (``i`` within the chunk) and maybe ``det_hash``, one row per trace, sorted by trace id. ``rule_index`` is the
    first chunk's that is not null, plus its offset; ``m<i>`` becomes ``m<offset + i>``."""
    if len(parts) == 1 and parts[0][0] == 0:
        return parts[0][1]
    first = parts[0][1]
    ids = first.get_column(TRACE_ID)
    for _, df in parts[1:]:
        if not df.get_column(TRACE_ID).equals(ids):  # every chunk reads every trace, sorted the same way
            raise AssertionError("chunks of rules disagree on the traces")
    shifted = [
        (df.get_column("rule_index").cast(pl.Int32) + offset).alias(f"c{k}") for k, (offset, df) in enumerate(parts)
    ]
    firsts = pl.DataFrame(shifted)
    rule_index = firsts.select(pl.coalesce(firsts.columns).alias("rule_index")).to_series()
    columns: list[pl.Series] = [ids, first.get_column("spans"), rule_index]
    for offset, df in parts:
        columns += [df.get_column(c).alias(f"m{offset + int(c[1:])}") for c in df.columns if _is_match(c)]
    det = next((df.get_column("det_hash") for _, df in parts if "det_hash" in df.columns), None)
    return pl.DataFrame(columns if det is None else [*columns, det])


def _is_match(name: str) -> bool:
    return name.startswith("m") and name[1:].isdigit()


__all__ = ["CHUNK_RULES", "evaluate", "merge", "split"]
