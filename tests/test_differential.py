"""Differential tests: the Polars, DuckDB and reference evaluators agree on every trace.

Corpora: a small generated one full of typing traps (mixed-type fields across part files, nulls, NaN, -0.0,
1e6, "500", "<nil>", unicode, JSON objects, traces without a root and with several roots, log events), and all
of ../shared/realtraces ingested. Rule sets: hypothesis draws them over the fields present, covering every
operator, datatype, scope, Fields lists, root. fields, ?.NUM_DESCENDANTS, has-root-span and rule outcomes.

The reference evaluator is always one of the engines (the oracle the others are compared with); a broken
``nectar.engine.reference`` fails the suite. ``NECTAR_DIFF_ENGINES`` picks the others (default ``polars,duckdb``).

Each run draws a fresh hypothesis seed, printed at the end of the run and at the start of every failure message;
``NECTAR_DIFF_SEED=<seed> pytest tests/test_differential.py`` replays that run. ``NECTAR_DIFF_EXAMPLES`` and
``NECTAR_DIFF_REAL_EXAMPLES`` set the example counts (tricky corpus, real traces).
"""

from __future__ import annotations

import math
import os
import random
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import nectar.engine.reference  # noqa: F401  (mandatory: an import error here is a collection error, not a skip)
from nectar.corpus.layout import Corpus
from nectar.corpus.store import create_corpus, tables_from_records
from nectar.engine.api import evaluate
from nectar.refinery.model import Condition, Datatype, Operator, Rule, RulesBasedSampler, Sampler
from tests.conftest import run_seed, shared_path

SEED = run_seed("NECTAR_DIFF_SEED")
REPLAY = f"[NECTAR_DIFF_SEED={SEED}]"  # the start of every failure message: the run's seed, to replay it
_OTHERS = [e.strip() for e in os.environ.get("NECTAR_DIFF_ENGINES", "polars,duckdb").split(",") if e.strip()]
ENGINES = ["reference", *[e for e in dict.fromkeys(_OTHERS) if e != "reference"]]
assert len(ENGINES) >= 2, f"NECTAR_DIFF_ENGINES={os.environ.get('NECTAR_DIFF_ENGINES')!r}: name polars and/or duckdb"

FIELD_VALUES: dict[str, list[Any]] = {
    "http.status_code": [500, 200, 404, "500", "200", "+500", " 500", 500.7, 1e6, float("nan"), None, 503.0],
    "duration_ms": [0.1, 1e6, 1e-05, 100.0, 2000.5, -0.0, 0.0, float("inf"), 2000, 1234567.0, "2000", "1e3"],
    "error": [True, False, "true", "yes", "True", 1, 0, None, "1"],
    "service.name": ["api", "payments", "<nil>", "服务", "", "batch-worker", "api-gw", 42],
    "http.route": ["/healthz", "/api/v1/admin/users", "/api/v2/orders", "/checkout", "/", "/api/v10/x"],
    "obj": [{"code": 5, "name": "x"}, {"code": "5"}, [1, "a"], {"a": {"b": True}}],
    "flag": [True, False],
    "root.like": ["x"],
    "http.headers": [{"ua": "curl/8", "n": 1.5}, {"ua": None}, "flat", {"v": float("nan")}],
}
NAMES = list(FIELD_VALUES)


def _tricky_records(seed: int, traces: int) -> list[list[dict[str, Any]]]:
    """Two batches (two part files, so a field's types differ across files) of span records."""
    rnd = random.Random(seed)
    batches: list[list[dict[str, Any]]] = [[], []]
    ts = 1_700_000_000_000_000
    for t in range(traces):
        tid = f"{t:04x}{rnd.getrandbits(64):016x}"
        n = rnd.choice([1, 1, 2, 3, 5, 8])
        shape = rnd.choice(["root", "root", "noroot", "tworoots", "log"])
        for s in range(n):
            fields: dict[str, Any] = {}
            for name in NAMES:
                if rnd.random() < 0.45:
                    fields[name] = rnd.choice(FIELD_VALUES[name])
            parent: str | None = "p0"
            if s == 0 and shape in ("root", "tworoots"):
                parent = None
            if s == n - 1 and shape == "tworoots":
                parent = ""
            if shape == "log" and s == 0:
                fields["meta.signal_type"] = "log"
                parent = None
            elif rnd.random() < 0.3:
                fields["meta.signal_type"] = "trace"
            rec = {"trace_id": tid, "span_id": f"s{s}", "parent_id": parent, "timestamp": ts, "fields": fields}
            batches[rnd.random() < 0.5].append(rec)
            ts += 1000
    return batches


@pytest.fixture(scope="module")
def tricky_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    out = tmp_path_factory.mktemp("tricky") / "corpus"
    create_corpus(out, tables_from_records(_tricky_records(11, 120), 0), [{"format": "test"}], {})
    return Corpus.open(out)


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    from nectar.corpus.ingest import ingest_paths

    src = shared_path("realtraces")
    out = tmp_path_factory.mktemp("real") / "corpus"
    ingest_paths([str(src)], out)
    return Corpus.open(out)


# ---------------------------------------------------------------------------------------------------------------
# Rule strategies

SCALARS = st.sampled_from(
    [500, 200, 0, 1, -1, 2**63, 500.0, 0.1, 1e6, 2000.0, float("nan"), "500", "true", "<nil>", "api", "nil", "",
     "/api/", "health", True, False, "服务", "^/api/v[0-9]+/", "(", "[0-9]+$", r"\d", "5", "x"]
)  # fmt: skip
LISTS = st.sampled_from(
    [("500", "200"), (500, 503), (0.1, 1e6, 500.7), (True, False), ("api", "payments", "<nil>"), ("1e3", "2000")]
)


def _field_names(real: bool) -> st.SearchStrategy[str]:
    base = ["http.status_code", "service.name", "http.route", "error", "duration_ms", "name", "missing.field"]
    if not real:
        base += ["obj", "obj.code", "obj.a.b", "flag", "meta.signal_type", "obj.#", "ob*.code", "o?j.name",
                 "http\\.headers.ua", "http\\.headers", "http.headers.ua", "obj.0", "*.code"]  # fmt: skip
    else:
        base += ["http.response.status_code", "span.kind", "status_code", "db.system"]
    extra = ["meta.refinery.root"]
    return st.sampled_from(base + extra + ["root." + b for b in base])


def conditions(real: bool) -> st.SearchStrategy[Condition]:
    names = _field_names(real)

    @st.composite
    def build(draw: Any) -> Condition:
        op = draw(st.sampled_from([*list(Operator), None]))
        kind = draw(st.sampled_from(["field", "field", "fields", "nd"]))
        if kind == "nd":
            fields: tuple[str, ...] = ("?.NUM_DESCENDANTS",)
            single = draw(st.booleans())
        elif kind == "fields":
            fields = tuple(draw(st.lists(names, min_size=1, max_size=3)))
            single = False
        else:
            fields, single = (draw(names),), True
        value = draw(st.one_of(st.none(), SCALARS, SCALARS, LISTS))
        dt = draw(st.sampled_from([None, None, *list(Datatype)]))
        return Condition(fields=fields, operator=op, value=value, datatype=dt, single_field=single)

    return build()


def rules(real: bool) -> st.SearchStrategy[RulesBasedSampler]:
    @st.composite
    def build(draw: Any) -> RulesBasedSampler:
        out = []
        for i in range(draw(st.integers(1, 4))):
            conds = draw(st.one_of(st.none(), st.lists(conditions(real), min_size=0, max_size=3)))
            samplers: tuple[Sampler, ...] = ()
            pick = draw(st.integers(0, 9))
            if pick == 0:
                samplers = (Sampler("DeterministicSampler", {"SampleRate": draw(st.sampled_from([1, 3, 10]))}),)
            elif pick == 1:
                samplers = (Sampler("EMADynamicSampler", {"GoalSampleRate": 5, "FieldList": ["service.name"]}),)
            out.append(
                Rule(
                    name=f"rule{i}",
                    conditions=tuple(conds) if conds is not None else None,
                    scope=draw(st.sampled_from([None, "trace", "span", "span", "bogus"])),
                    sample_rate=draw(st.sampled_from([0, 1, 2, 10, -1])),
                    drop=draw(st.booleans()),
                    samplers=samplers,
                )
            )
        return RulesBasedSampler(rules=tuple(out), check_nested_fields=draw(st.booleans()))

    return build()


def _agree(sampler: Any, corpus: Corpus) -> None:
    """Every engine decides (and matches) exactly as the reference does; any failure names the run's seed."""
    try:
        results = {e: evaluate(sampler, corpus, engine=e, with_matches=True) for e in ENGINES}
    except Exception as exc:  # an engine that raises is a failure too: say which seed drew the rules
        raise AssertionError(f"{REPLAY} {type(exc).__name__}: {exc}\non {sampler}") from exc
    first = results[ENGINES[0]]
    for e in ENGINES[1:]:
        other = results[e]
        diff = first.decisions.join(other.decisions, on="trace_id", how="full", suffix="_other").filter(
            pl.any_horizontal(
                [pl.col(c).ne_missing(pl.col(c + "_other")) for c in first.decisions.columns if c != "trace_id"]
            )
        )
        assert diff.height == 0, f"{REPLAY} {ENGINES[0]} vs {e} on {sampler}:\n{diff}"
        assert (first.matches is None) == (other.matches is None), f"{REPLAY} matches missing, {ENGINES[0]} vs {e}"
        if first.matches is not None and other.matches is not None:
            assert first.matches.equals(other.matches), f"{REPLAY} matches differ {ENGINES[0]} vs {e} on {sampler}"


def _settings(examples_var: str, default: int) -> settings:
    """A few hundred examples per run, a new seed each run (``@seed(SEED)``), no example database: the seed alone
    replays a run."""
    return settings(
        max_examples=int(os.environ.get(examples_var, str(default))),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=False,
        database=None,
        print_blob=False,
    )


@seed(SEED)
@_settings("NECTAR_DIFF_EXAMPLES", 300)
@given(sampler=rules(real=False))
def test_engines_agree_on_tricky_corpus(tricky_corpus: Corpus, sampler: RulesBasedSampler) -> None:
    _agree(sampler, tricky_corpus)


@seed(SEED)
@_settings("NECTAR_DIFF_REAL_EXAMPLES", 35)
@given(sampler=rules(real=True))
def test_engines_agree_on_realtraces(real_corpus: Corpus, sampler: RulesBasedSampler) -> None:
    _agree(sampler, real_corpus)


def test_example_rules_agree(real_corpus: Corpus, tricky_corpus: Corpus) -> None:
    from nectar.refinery.loader import load_rules

    rf = load_rules(shared_path("refinery", "example_rules.yaml"))
    for env in rf.samplers:
        for corpus in (real_corpus, tricky_corpus):
            _agree(rf.sampler_for(env), corpus)


def test_tricky_corpus_has_the_traps(tricky_corpus: Corpus) -> None:
    fc = tricky_corpus.field_columns
    assert len(fc["http.status_code"]) >= 4  # int, float, str, null
    assert "json" in {t.value for t in fc["obj"]}
    df = tricky_corpus.scan().select("duration_ms::float").collect()
    assert any(isinstance(v, float) and math.isinf(v) for v in df.to_series().to_list())
