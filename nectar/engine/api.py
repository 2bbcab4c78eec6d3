"""The engine facade: decide every trace of a corpus with a Refinery sampler, on the engine of your choice.

>>> from nectar.engine.api import evaluate
>>> result = evaluate(rules_file, Corpus.open("corpus"), engine="duckdb", env="production")  # doctest: +SKIP
>>> result.decisions  # one row per trace, sorted by trace_id (see nectar.engine.decision)  # doctest: +SKIP

All three engines give the same decisions (the differential tests hold them to it):

* ``reference``: the trace-at-a-time Python evaluator, a direct transcription of Refinery's Go code;
* ``polars``: lazy, vectorized, streaming over the Parquet files (the default);
* ``duckdb``: one SQL query over the Parquet files.
"""

from __future__ import annotations

from typing import Literal

from nectar.corpus.layout import Corpus
from nectar.engine.decision import EvalResult
from nectar.errors import NectarError
from nectar.refinery.model import RulesBasedSampler, RulesFile, Sampler, SamplerConfig

Engine = Literal["polars", "duckdb", "reference"]
ENGINES: tuple[str, ...] = ("polars", "duckdb", "reference")
AnySampler = RulesFile | SamplerConfig | RulesBasedSampler | Sampler


def select_sampler(sampler: AnySampler, env: str | None = None) -> SamplerConfig | RulesBasedSampler | Sampler:
    """The sampler that decides: for a whole rules file, Refinery's lookup of ``env`` (exact name, else
    ``__default__``); any other sampler as given."""
    if isinstance(sampler, RulesFile):
        return sampler.sampler_for(env)
    return sampler


def evaluate(
    sampler: AnySampler,
    corpus: Corpus,
    engine: str = "polars",
    with_matches: bool = False,
    env: str | None = None,
) -> EvalResult:
    """Decide every trace of ``corpus``.

    ``sampler`` is a :class:`RulesFile` (then ``env`` picks the environment), one ``Samplers`` entry, a
    :class:`RulesBasedSampler` or a plain :class:`Sampler`. ``with_matches`` adds, per trace, which rules'
    conditions matched (columns ``m0``, ``m1``...). Raises :class:`NectarError` for an unknown engine.
    """
    chosen = select_sampler(sampler, env)
    if engine == "polars":
        from nectar.engine import polars_engine

        return polars_engine.evaluate(chosen, corpus, with_matches)
    if engine == "duckdb":
        from nectar.engine import duckdb_engine

        return duckdb_engine.evaluate(chosen, corpus, with_matches)
    if engine == "reference":
        import importlib

        reference = importlib.import_module("nectar.engine.reference")
        result: EvalResult = reference.decide_corpus(chosen, corpus, with_matches)
        return result
    raise NectarError(f"unknown engine {engine!r}", hint=f"choose one of: {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "evaluate", "select_sampler"]
