"""``nectar sql``: the views, read-only refusals, the sandbox, error positions, output formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from nectar.cli import main
from nectar.corpus.layout import Corpus
from nectar.corpus.sql import SqlSession, open_session, render_csv, render_table, run_sql
from nectar.corpus.store import create_corpus, tables_from_records
from nectar.corpus.synth import synth_corpus
from nectar.errors import NectarError


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sql") / "c"
    synth_corpus(d, 20_000, 5)
    return d


@pytest.fixture(scope="module")
def session(corpus_dir: Path) -> SqlSession:
    s = open_session(corpus_dir)
    yield s  # type: ignore[misc]
    s.close()


def one(session: SqlSession, q: str) -> list[tuple[object, ...]]:
    (r,) = session.run(q)
    return r.rows


def test_spans_view_is_the_canonical_frame(session: SqlSession, corpus_dir: Path) -> None:
    c = Corpus.open(corpus_dir)
    assert one(session, "SELECT count(*) FROM spans") == [(c.manifest.spans,)]
    cols = [r[0] for r in one(session, "DESCRIBE spans")]
    assert cols == list(c.canonical_schema())
    rows = one(session, 'SELECT "http.route", count(*) FROM spans WHERE "http.route" = \'/healthz\' GROUP BY 1')
    df = c.scan().collect()
    assert rows == [("/healthz", df.filter(pl.col("http.route") == "/healthz").height)]


def test_traces_view_matches_polars(session: SqlSession, corpus_dir: Path) -> None:
    df = Corpus.open(corpus_dir).scan().collect()
    status = pl.max_horizontal("http.response.status_code", "http.status_code")
    errored = pl.col("error").fill_null(False) | (status >= 500).fill_null(False)
    root = pl.col("parent_id").is_null()
    want = (
        df.group_by("trace_id")
        .agg(
            pl.len().alias("span_count"),
            pl.col("service.name").filter(root).first().alias("root_service"),
            pl.col("duration_ms").filter(root).first().alias("root_duration_ms"),
            errored.any().alias("has_error"),
            errored.sum().alias("error_spans"),
            status.max().alias("max_http_status"),
            pl.col("service.name").unique().sort().alias("services"),
        )
        .sort("trace_id")
    )
    got = session.run(
        "SELECT trace_id, span_count, root_service, root_duration_ms, has_error, error_spans, max_http_status, "
        "services FROM traces ORDER BY trace_id"
    )[0]
    assert [tuple(r) for r in got.rows] == [tuple(r) for r in want.iter_rows()]
    assert one(session, "SELECT count(*) FILTER (WHERE NOT has_root) FROM traces") == [(0,)]
    (start, end, ms), *_ = one(session, "SELECT start_time, end_time, root_duration_ms FROM traces LIMIT 1")
    assert abs((end - start).total_seconds() * 1000 - ms) < 0.01  # type: ignore[operator]


def _rec(trace: str, span: str, parent: str | None, ts: int, **fields: object) -> dict[str, object]:
    return {"trace_id": trace, "span_id": span, "parent_id": parent, "timestamp": ts, "fields": fields}


def test_traces_view_edge_cases(tmp_path: Path) -> None:
    """Last root by arrival wins; root-less traces; either status field; error flag; odd types."""
    records = [
        _rec("t1", "a", None, 1_000, **{"service.name": "first", "name": "r1", "duration_ms": 5.0}),
        _rec("t1", "b", "a", 2_000, **{"service.name": "svc", "http.status_code": 503}),
        _rec("t1", "c", "", 3_000, **{"service.name": "second", "name": "r2", "duration_ms": 7}),
        _rec("t2", "d", "zz", 1_000, **{"service.name": "svc", "http.response.status_code": 404}),
        _rec("t3", "e", None, 1_000, **{"service.name": "svc", "error": True, "http.status_code": "500"}),
        _rec("t4", "f", None, 1_000, **{"service.name": "svc", "http.response.status_code": 200}),
    ]
    create_corpus(tmp_path / "c", tables_from_records([records], 0), sources=[], options={})
    rows = run_sql(
        tmp_path / "c",
        "SELECT trace_id, has_root, root_service, root_name, root_duration_ms, has_error, max_http_status "
        "FROM traces ORDER BY 1",
    )[0].rows
    assert rows == [
        ("t1", True, "second", "r2", 7.0, True, 503),
        ("t2", False, None, None, None, False, 404),
        # a string "500" is not a number: only the error flag makes t3 errored
        ("t3", True, "svc", None, None, True, None),
        ("t4", True, "svc", None, None, False, 200),
    ]


REFUSED = [
    ("COPY spans TO '/tmp/nectar-out.csv'", "COPY"),
    ("COPY (SELECT 1) TO 'out.parquet' (FORMAT parquet)", "COPY"),
    ("EXPORT DATABASE '/tmp/nectar-export'", "EXPORT"),
    ("ATTACH '/tmp/other.duckdb' AS o", "ATTACH"),
    ("DETACH o", "DETACH"),
    ("INSTALL httpfs", "INSTALL/LOAD"),
    ("LOAD httpfs", "INSTALL/LOAD"),
    ("CREATE TABLE t AS SELECT 1", "CREATE"),
    ("CREATE MACRO m(x) AS x", "CREATE"),
    ("INSERT INTO spans (trace_id) VALUES ('x')", "INSERT"),
    ("UPDATE spans SET name = 'x'", "UPDATE"),
    ("DELETE FROM spans", "DELETE"),
    ("DROP VIEW spans", "DROP"),
    ("ALTER VIEW spans RENAME TO s", "ALTER"),
    ("SET enable_external_access = true", "SET"),
    ("SET lock_configuration = false", "SET"),
    ("RESET threads", "SET"),
    ("SET VARIABLE x = 1", "SET"),
    ("PRAGMA memory_limit = '1GB'", "SET"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("CALL pragma_version()", "CALL"),
    ("CHECKPOINT", "CALL"),
    ("BEGIN TRANSACTION", "transactions"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/x.csv'", "EXPLAIN"),
    ("EXPLAIN (FORMAT json) COPY (SELECT 1) TO '/tmp/x.csv'", "EXPLAIN"),
    ("EXPLAIN DROP VIEW spans", "EXPLAIN"),
    ("PREPARE p AS SELECT 1", "PREPARE"),
    ("VACUUM", "VACUUM"),
    ("SELECT 1; DROP VIEW traces", "DROP"),
]


@pytest.mark.parametrize(("query", "word"), REFUSED)
def test_refused_statements(session: SqlSession, query: str, word: str) -> None:
    with pytest.raises(NectarError, match=r"refused: .*read-only") as err:
        session.run(query)
    assert word in err.value.message
    assert err.value.span is not None and err.value.exit_code == 2
    # nothing ran: the views are still there
    assert one(session, "SELECT count(*) > 0 FROM traces") == [(True,)]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_parquet('/tmp/*/part-*.parquet')",
        "SELECT * FROM 'https://example.com/x.parquet'",
    ],
)
def test_other_files_cannot_be_read(session: SqlSession, query: str) -> None:
    with pytest.raises(NectarError) as err:
        session.run(query)
    assert err.value.exit_code == 2 and "nectar sql" not in err.value.message


def test_sandbox_holds_even_past_the_statement_check(session: SqlSession, tmp_path: Path) -> None:
    con = session.con  # a crafted statement that got through would still meet the locked configuration
    with pytest.raises(duckdb.Error):
        con.execute(f"COPY (SELECT 1) TO '{tmp_path}/x.csv'")
    with pytest.raises(duckdb.Error):
        con.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error):
        con.execute(f"ATTACH '{tmp_path}/x.duckdb' AS x")
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.duckdb").exists()


def test_read_only_statements_allowed(session: SqlSession) -> None:
    for q in [
        "DESCRIBE traces",
        "SHOW TABLES",
        "SUMMARIZE SELECT span_count FROM traces",
        "EXPLAIN SELECT count(*) FROM spans",
        "PRAGMA table_info('spans')",
        "FROM traces LIMIT 1",
        "WITH x AS (SELECT 1 AS a) SELECT * FROM x",
        "VALUES (1, 'a')",
        "SELECT * FROM pragma_table_info('traces')",
    ]:
        assert session.run(q)[0].columns, q
    names = {r[0] for r in one(session, "SHOW TABLES")}
    assert names == {"spans", "traces"}


def test_error_positions(session: SqlSession) -> None:
    with pytest.raises(NectarError) as err:
        session.run("SELECT nosuch FROM spans")
    assert err.value.span is not None and (err.value.span.line, err.value.span.column) == (1, 8)
    assert err.value.span.length == len("nosuch") and "binder error" in err.value.message
    with pytest.raises(NectarError) as err:
        session.run("SELECT 1;\nSELECT\n  nosuch FROM spans")
    assert err.value.span is not None and (err.value.span.line, err.value.span.column) == (3, 3)
    rendered = err.value.render()
    assert rendered.startswith("<query>:3:3: error:") and "  nosuch FROM spans" in rendered
    with pytest.raises(NectarError) as err:
        session.run("SELEC 1")
    assert "syntax error" in err.value.message and err.value.span is not None
    long = "SELECT " + ", ".join(["trace_id"] * 40) + ", nosuch FROM spans"
    with pytest.raises(NectarError) as err:
        session.run(long)
    assert err.value.span is not None and err.value.span.column == long.index("nosuch") + 1


def test_table_and_csv_rendering(session: SqlSession) -> None:
    (r,) = session.run(
        "SELECT 'a,b' AS s, 1.5 AS x, NULL AS n, [1, 2] AS l, true AS b UNION ALL SELECT 'c', 10, 2, [], false",
    )
    assert render_table(r).splitlines() == [
        "s       x     n  l      b",
        "---  ----  ----  -----  -----",
        "a,b   1.5  NULL  [1,2]  true",
        "c    10.0     2  []     false",
        "(2 rows)",
    ]
    rows = list(csv.reader(io.StringIO(render_csv(r))))
    assert rows == [["s", "x", "n", "l", "b"], ["a,b", "1.5", "", "[1,2]", "true"], ["c", "10.0", "2", "[]", "false"]]


def test_cli_formats(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    q = "SELECT root_service, count(*) AS n FROM traces GROUP BY 1 ORDER BY 1"
    assert main(["sql", "--corpus", str(corpus_dir), "--format", "json", q]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data[0]) == ["root_service", "n"]
    assert sum(d["n"] for d in data) == Corpus.open(corpus_dir).manifest.traces
    assert main(["sql", "--corpus", str(corpus_dir), "--format", "csv", q]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["root_service"], int(r["n"])) for r in rows] == [(d["root_service"], d["n"]) for d in data]
    assert main(["sql", "--corpus", str(corpus_dir), q]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["root_service", "n"] and out[-1] == f"({len(data)} rows)"
    q2 = "SELECT 1 AS a; SELECT 2 AS a, now() > TIMESTAMP '2020-01-01' AS b"
    assert main(["sql", "--corpus", str(corpus_dir), "--format", "json", q2]) == 0
    assert json.loads(capsys.readouterr().out) == [[{"a": 1}], [{"a": 2, "b": True}]]
    assert main(["sql", "--corpus", str(corpus_dir), "SELECT * FROM spans", "--max-rows", "3"]) == 0
    assert "more not shown" in capsys.readouterr().out


def test_cli_refusal_and_error_exit_2(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--corpus", str(corpus_dir), "DROP VIEW spans"]) == 2
    err = capsys.readouterr().err
    assert "refused: DROP" in err and "Traceback" not in err
    assert main(["sql", "--corpus", str(corpus_dir), "SELECT nosuch FROM spans"]) == 2
    assert "<query>:1:8: error: binder error" in capsys.readouterr().err
    assert main(["sql", "--corpus", str(corpus_dir / "missing"), "SELECT 1"]) == 2


def test_cli_interactive(corpus_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    script = "SELECT 40 + 2\n  AS answer;\nSELEC oops;\nSELECT count(*) AS n FROM traces;\n.quit\nSELECT 'never';\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    assert main(["sql", "--corpus", str(corpus_dir), "--format", "csv"]) == 2  # one statement failed
    captured = capsys.readouterr()
    assert captured.out.split("\n")[:2] == ["answer", "42"]
    assert "n\n" in captured.out and "never" not in captured.out
    assert "syntax error" in captured.err
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT 1 AS one"))  # end of input runs the rest
    assert main(["sql", "--corpus", str(corpus_dir), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"one": 1}]


def test_empty_corpus(tmp_path: Path) -> None:
    create_corpus(tmp_path / "c", iter([]), sources=[], options={})
    count, traces = run_sql(tmp_path / "c", "SELECT count(*) FROM spans; SELECT * FROM traces")
    assert count.rows == [(0,)] and traces.rows == [] and traces.columns[0] == "trace_id"
