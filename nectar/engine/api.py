"""The engine facade: decide every trace of a corpus with a Refinery sampler, on the engine of your choice.

>>> from nectar.engine.api import evaluate
>>> result = evaluate(rules_file, Corpus.open("corpus"), engine="duckdb", env="production")  # doctest: +SKIP
>>> result.decisions  # one row per trace, sorted by trace_id (see nectar.engine.decision)  # doctest: +SKIP

All three engines give the same decisions (the differential tests hold them to it):

* ``reference``: the trace-at-a-time Python evaluator, a direct transcription of Refinery's Go code;
* ``polars``: lazy, vectorized, streaming over the Parquet files;
* ``duckdb``: one SQL query over the Parquet files (the default, :data:`DEFAULT_ENGINE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import polars as pl

from nectar.corpus.layout import Corpus
from nectar.engine.decision import EvalResult
from nectar.errors import NectarError
from nectar.refinery.model import Rule, RulesBasedSampler, RulesFile, Sampler, SamplerConfig

Engine = Literal["polars", "duckdb", "reference"]
DEFAULT_ENGINE = "duckdb"  # the CLIs' and the prover's default: at 10M spans the faster, in half the memory
# (benchmarks/RESULTS.md); change it here only
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
    engine: str = DEFAULT_ENGINE,
    with_matches: bool = False,
    env: str | None = None,
    cluster_size: int = 1,
) -> EvalResult:
    """Decide every trace of ``corpus``.

    ``sampler`` is a :class:`RulesFile` (then ``env`` picks the environment), one ``Samplers`` entry, a
    :class:`RulesBasedSampler` or a plain :class:`Sampler`. ``with_matches`` adds, per trace, which rules'
    conditions matched (columns ``m0``, ``m1``...). Traces a stateful sampler decides get the rate its replay over
    the corpus gives (:mod:`nectar.engine.stateful`; ``cluster_size``: Refinery peers, for ``UseClusterSize``).
    Raises :class:`NectarError` for an unknown engine.
    """
    chosen = select_sampler(sampler, env)
    return replay_stateful(_decide(chosen, corpus, engine, with_matches), chosen, corpus, engine, cluster_size)


def _decide(
    chosen: SamplerConfig | RulesBasedSampler | Sampler, corpus: Corpus, engine: str, with_matches: bool
) -> EvalResult:
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


def replay_stateful(
    result: EvalResult,
    chosen: SamplerConfig | RulesBasedSampler | Sampler,
    corpus: Corpus,
    engine: str,
    cluster_size: int,
) -> EvalResult:
    """The stateful samplers' simulated rates (the reference engine builds its trace keys trace by trace)."""
    from nectar.engine import stateful

    if not stateful.instances(chosen, cluster_size):
        return result
    if engine == "reference":
        from nectar.engine import reference

        return stateful.replay(result, chosen, corpus, cluster_size, reference.trace_keys)
    return stateful.replay(result, chosen, corpus, cluster_size)


def evaluate_with_probes(
    sampler: RulesBasedSampler,
    probes: Sequence[Rule],
    corpus: Corpus,
    engine: str = DEFAULT_ENGINE,
    cluster_size: int = 1,
) -> tuple[EvalResult, pl.DataFrame]:
    """Decide every trace with ``sampler`` (with per-rule matches) and, in the same pass over the corpus, whether
    each of ``probes`` matches it: rules that never decide, only report a match (``p0``, ``p1``... per trace, in the
    decisions' row order). The prover's error definition and must-keep classes are such probes.

    The vectorized engines evaluate the probes as extra rules after the sampler's, with only the sampler's rules
    deciding; the reference engine makes two passes.
    """
    n = len(sampler.rules)
    names = {f"m{n + k}": f"p{k}" for k in range(len(probes))}
    if engine == "reference" or not probes:
        result = evaluate(sampler, corpus, engine=engine, with_matches=True, cluster_size=cluster_size)
        if not probes:
            assert result.matches is not None
            return result, result.matches.select("trace_id")
        extra = _decide(RulesBasedSampler(tuple(probes), sampler.check_nested_fields), corpus, engine, True)
        assert extra.matches is not None
        renamed = {f"m{k}": f"p{k}" for k in range(len(probes))}
        return result, extra.matches.rename(renamed)
    combined = RulesBasedSampler(sampler.rules + tuple(probes), sampler.check_nested_fields)
    if engine == "polars":
        from nectar.engine import polars_engine

        both = polars_engine.evaluate(combined, corpus, True, decide=n)
    elif engine == "duckdb":
        from nectar.engine import duckdb_engine

        both = duckdb_engine.evaluate(combined, corpus, True, decide=n)
    else:
        raise NectarError(f"unknown engine {engine!r}", hint=f"choose one of: {', '.join(ENGINES)}")
    assert both.matches is not None
    policy_matches = both.matches.select(["trace_id", *[f"m{i}" for i in range(n)]])
    probe_matches = both.matches.select(["trace_id", *names]).rename(names)
    decided = replay_stateful(EvalResult(both.decisions, policy_matches), sampler, corpus, engine, cluster_size)
    return decided, probe_matches


__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "Engine",
    "evaluate",
    "evaluate_with_probes",
    "replay_stateful",
    "select_sampler",
]
