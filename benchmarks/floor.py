"""The floor queries: what the same work costs when written by hand for one corpus, with no generality.

* ``prove``: ``benchmarks/floor.sql``, one DuckDB query computing per trace the span count, the first matching
  lowered rule of ``benchmarks/policy12.toon`` and the prover's three predicates (see the file's header);
* ``flat``: ``polars.read_ndjson`` of a flat JSON lines file (parsing only, no corpus written);
* ``otlp``: ``pyarrow.json.read_json`` of an OTLP JSON lines file (parsing only, the nested documents as is).

``python -m benchmarks.floor prove CORPUS_DIR`` (or ``flat FILE`` / ``otlp FILE``) runs one and prints the row count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import polars as pl

FLOOR_SQL = Path(__file__).with_name("floor.sql")


def floor_sql(corpus_dir: Path) -> str:
    """The floor query over the part files of ``corpus_dir`` (paths quoted as SQL string literals)."""
    files = sorted(str(p) for p in Path(corpus_dir).glob("*.parquet"))
    listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    return FLOOR_SQL.read_text(encoding="utf-8").replace("{parquet}", listed)


def prove_floor(corpus_dir: Path) -> pl.DataFrame:
    """Per trace: ``trace_id, spans, rule_index, is_error, mk_failed_payments, mk_slow_orders`` (unsorted).

    The connection has the same settings as the DuckDB engine's (3 GB memory limit, no insertion order)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET memory_limit = '3GB'")
        con.execute("SET preserve_insertion_order = false")
        df = pl.from_arrow(con.sql(floor_sql(corpus_dir)).to_arrow_table())
    finally:
        con.close()
    assert isinstance(df, pl.DataFrame)
    return df


def flat_floor(path: Path) -> int:
    """Rows of a flat JSON lines file parsed by Polars."""
    return pl.read_ndjson(path).height


def otlp_floor(path: Path) -> int:
    """Requests (lines) of an OTLP JSON lines file parsed by Arrow's JSON reader."""
    import pyarrow.json as pj

    return pj.read_json(path).num_rows


def main(argv: list[str]) -> int:
    """``prove CORPUS`` | ``flat FILE`` | ``otlp FILE``: run one floor, print its row count."""
    kind, target = argv[0], Path(argv[1])
    if kind == "prove":
        rows = prove_floor(target).height
    elif kind == "flat":
        rows = flat_floor(target)
    elif kind == "otlp":
        rows = otlp_floor(target)
    else:
        raise SystemExit(f"unknown floor {kind!r}: prove, flat or otlp")
    print(rows)
    return 0


def check_floor_agreement(corpus_dir: Path, policy_path: Path, engine: str) -> None:
    """Raise AssertionError unless the floor query and ``prove_policy`` on ``engine`` agree on ``corpus_dir``:
    the same deciding rule and span count for every trace, and the same error and must-keep counts."""
    from nectar.config import Config
    from nectar.corpus.layout import Corpus
    from nectar.policy.load import load_policy
    from nectar.prove import prove_policy

    config = Config()
    report = prove_policy(load_policy(policy_path, config.aliases), Corpus.open(corpus_dir), config, engine=engine)
    floor = prove_floor(corpus_dir).sort("trace_id")
    dec = report.decisions.select("trace_id", "spans", "rule_index").sort("trace_id")
    mine = floor.select("trace_id", pl.col("spans").cast(pl.Int64), pl.col("rule_index").cast(pl.Int32))
    if not mine.equals(dec.select("trace_id", "spans", pl.col("rule_index").cast(pl.Int32))):
        diff = mine.join(dec, on="trace_id", how="full", suffix="_engine").filter(
            (pl.col("rule_index") != pl.col("rule_index_engine")) | pl.col("rule_index_engine").is_null()
        )
        raise AssertionError(f"floor and {engine} decisions differ on {diff.height} traces:\n{diff.head(5)}")
    checks = {c.name: c.figures for c in report.checks}
    expected = {
        "errors": int(floor.get_column("is_error").sum()),
        "failed-payments": int(floor.get_column("mk_failed_payments").sum()),
        "slow-orders": int(floor.get_column("mk_slow_orders").sum()),
    }
    got = {
        "errors": checks["errors"]["declared"],
        "failed-payments": checks["must_keep"]["classes"]["failed-payments"]["declared"],
        "slow-orders": checks["must_keep"]["classes"]["slow-orders"]["declared"],
    }
    if expected != got:
        raise AssertionError(f"floor predicates {expected} differ from the prover's ({engine}) {got}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
