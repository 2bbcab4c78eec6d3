"""``nectar sql``: read-only DuckDB over a corpus, with views ``spans`` and ``traces``.

``spans`` is the canonical frame (:func:`nectar.corpus.duckdb_source.spans_source`, file paths bound as parameters);
``traces`` has one row per trace (see :data:`TRACES_COLUMNS`). Field names with dots are quoted identifiers:
``SELECT "http.route", count(*) FROM spans GROUP BY 1``.

Read-only is enforced twice:

1. every statement is classified by DuckDB's own parser (``extract_statements``) and only ``SELECT`` (which
   includes ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, ``FROM t``, ``VALUES``), ``EXPLAIN`` of a ``SELECT`` and a few
   read-only ``PRAGMA`` calls are run; everything else is refused before anything runs;
2. the connection is sandboxed once the views exist: ``allowed_paths`` holds exactly the corpus's part files,
   ``enable_external_access`` is off (no other file, no extension install/load, no ATTACH, no COPY
   elsewhere) and ``lock_configuration`` is on (no ``SET`` can undo it), so even a query that got past 1
   cannot read ``/etc/passwd`` or write a file.

DuckDB adds its ``temp_directory`` to ``allowed_directories`` when external access is turned off (its default is
``.tmp`` in the working directory, so ``read_text('.tmp/secret.env')`` would read whatever lies there). Each session
therefore gets its own temporary directory, made by :func:`tempfile.mkdtemp` (mode 0700, empty, private to this
user) and removed when the session closes: the only files it can ever hold are DuckDB's own spill files of this
session. It is not put in the corpus folder, which may be read-only or shared and whose other files would then be
readable.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from nectar.corpus.duckdb_source import quote_ident, spans_source
from nectar.corpus.layout import Corpus, ValueType
from nectar.errors import NectarError, Span

QUERY_FILE = "<query>"

# PRAGMA calls that only read (DuckDB also offers each as a table function: SELECT * FROM pragma_table_info('spans')).
READ_ONLY_PRAGMAS = frozenset(
    {"table_info", "show", "show_tables", "show_tables_expanded", "database_size", "version", "functions", "platform"}
)

TRACES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trace_id", "the trace id"),
    ("span_count", "spans in the trace"),
    ("has_root", "a span with a null/empty parent id exists"),
    ("root_service", "service.name of the root span (the last root by arrival wins, as in Refinery)"),
    ("root_name", "name of the root span"),
    ("root_duration_ms", "duration_ms of the root span"),
    ("has_error", "some span has error = true, or an HTTP status >= 500 in either status field"),
    ("error_spans", "spans counted by has_error"),
    ("max_http_status", "highest http.response.status_code / http.status_code in the trace"),
    ("start_time", "earliest span start"),
    ("end_time", "latest span end (start + duration_ms)"),
    ("services", "distinct service.name values, sorted"),
)

HTTP_STATUS_FIELDS = ("http.response.status_code", "http.status_code")
_NUMBERS = (ValueType.INT, ValueType.FLOAT)


@dataclass(frozen=True, slots=True)
class SqlResult:
    """One statement's result: column names, DuckDB type names, rows (Python values), and the statement."""

    statement: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool = False  # more rows existed than were fetched (``max_rows``)


def _cols(corpus: Corpus, fname: str, *types: ValueType) -> list[str]:
    by_type = corpus.field_columns.get(fname, {})
    return [quote_ident(by_type[t]) for t in types if t in by_type]


def _one_or_null(cols: list[str], sql_type: str) -> str:
    if not cols:
        return f"CAST(NULL AS {sql_type})"
    casts = [f"CAST({c} AS {sql_type})" for c in cols]
    return casts[0] if len(casts) == 1 else f"coalesce({', '.join(casts)})"


def traces_view_sql(corpus: Corpus) -> str:
    """The ``traces`` view, from the corpus's field columns (quoted identifiers only; no user text)."""
    service = _one_or_null(_cols(corpus, "service.name", ValueType.STR), "VARCHAR")
    name = _one_or_null(_cols(corpus, "name", ValueType.STR), "VARCHAR")
    duration = _one_or_null(_cols(corpus, "duration_ms", ValueType.FLOAT, ValueType.INT), "DOUBLE")
    error = _one_or_null(_cols(corpus, "error", ValueType.BOOL), "BOOLEAN")
    # Numbers only: Refinery compares the string "500" with 500 as unequal types (SEMANTICS.md 2.6).
    statuses = [f"TRY_CAST({c} AS BIGINT)" for f in HTTP_STATUS_FIELDS for c in _cols(corpus, f, *_NUMBERS)]
    status = f"greatest({', '.join(statuses)})" if statuses else "CAST(NULL AS BIGINT)"  # greatest skips NULLs
    return f"""
CREATE VIEW traces AS
WITH s AS (
    SELECT trace_id, arrival, "timestamp",
           (parent_id IS NULL OR parent_id = '') AS is_root,
           {service} AS service, {name} AS span_name, {duration} AS duration,
           {status} AS http_status, {error} AS error_flag
    FROM spans
), e AS (
    SELECT *, (coalesce(error_flag, false) OR coalesce(http_status >= 500, false)) AS errored
    FROM s
)
SELECT
    trace_id,
    count(*) AS span_count,
    bool_or(is_root) AS has_root,
    arg_max_null(service, arrival) FILTER (WHERE is_root) AS root_service,
    arg_max_null(span_name, arrival) FILTER (WHERE is_root) AS root_name,
    arg_max_null(duration, arrival) FILTER (WHERE is_root) AS root_duration_ms,
    bool_or(errored) AS has_error,
    count(*) FILTER (WHERE errored) AS error_spans,
    max(http_status) AS max_http_status,
    min("timestamp") AS start_time,
    max("timestamp" + to_microseconds(CAST(round(coalesce(duration, 0) * 1000) AS BIGINT))) AS end_time,
    list_sort(list_distinct(list(service))) AS services
FROM e
GROUP BY trace_id
"""


class SqlSession:
    """A sandboxed, read-only DuckDB connection with the ``spans`` and ``traces`` views of one corpus."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        root = corpus.root.resolve()
        paths: list[str] = []
        for part in corpus.manifest.files:
            p = (corpus.root / part.path).resolve()
            if not p.is_relative_to(root):
                raise NectarError(f"corpus manifest lists a part file outside the corpus folder: {part.path!r}")
            paths.append(str(p))
        # A fresh private directory for DuckDB's spill files (see the module docstring); removed by close(), or at
        # garbage collection / interpreter exit if close() is never called.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="nectar-sql-")).resolve()
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.temp_dir, ignore_errors=True)
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            sql = spans_source(corpus).text
            # The view is made from a relation with the file paths bound as parameters (no path pasted into SQL).
            self._spans_rel = con.sql(sql, params=paths) if paths else con.sql(sql)
            self._spans_rel.create_view("spans")
            con.execute(traces_view_sql(corpus))
            # Before external access goes off: DuckDB then allows this directory, and only it, besides the paths.
            con.execute("SET temp_directory = ?", [str(self.temp_dir)])
            con.execute("SET allowed_paths = ?", [paths])
            con.execute("SET enable_external_access = false")
            con.execute("SET autoinstall_known_extensions = false")
            con.execute("SET autoload_known_extensions = false")
            con.execute("SET lock_configuration = true")
            _check_sandbox(con, self.temp_dir)
        except BaseException:
            con.close()
            self._cleanup()
            raise
        self.con = con

    def close(self) -> None:
        self.con.close()
        self._cleanup()

    def __enter__(self) -> SqlSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def statements(self, query: str) -> list[tuple[str, int]]:
        """The statements of ``query`` with their offsets, each checked to be read-only (else NectarError)."""
        try:
            parsed = self.con.extract_statements(query)
        except duckdb.Error as exc:
            raise _sql_error(exc, query, 0) from None
        out: list[tuple[str, int]] = []
        pos = 0
        for st in parsed:
            text = st.query
            at = query.find(text, pos)
            offset = at if at >= 0 else pos
            pos = offset + len(text)
            _check_read_only(self.con, st.type, text, query, offset)
            out.append((text, offset))
        return out

    def run(self, query: str, max_rows: int | None = None) -> list[SqlResult]:
        """Run every statement of ``query`` (all are checked first); one :class:`SqlResult` per statement."""
        results = []
        for text, offset in self.statements(query):
            try:
                cur = self.con.execute(text)
                desc = cur.description or []
                if max_rows is None:
                    rows = cur.fetchall()
                    truncated = False
                else:
                    rows = cur.fetchmany(max_rows + 1)
                    truncated = len(rows) > max_rows
                    rows = rows[:max_rows]
            except duckdb.Error as exc:
                raise _sql_error(exc, query, offset) from None
            results.append(
                SqlResult(
                    statement=text.strip(),
                    columns=_unique_names([d[0] for d in desc]),
                    types=tuple(str(d[1]) for d in desc),
                    rows=rows,
                    truncated=truncated,
                )
            )
        return results


def _check_sandbox(con: duckdb.DuckDBPyConnection, temp_dir: Path) -> None:
    """Refuse to run if DuckDB allows any directory but the session's own temporary one (a new DuckDB default)."""
    row = con.execute(
        "SELECT current_setting('allowed_directories'), current_setting('enable_external_access'),"
        " current_setting('lock_configuration')"
    ).fetchone()
    dirs, external, locked = row if row else ([], True, False)
    extra = [d for d in dirs if Path(d).resolve() != temp_dir]
    if extra or external or not locked:
        raise NectarError(
            f"the DuckDB sandbox is not as expected (allowed directories {extra}, external access {external},"
            f" configuration locked {locked}); refusing to run SQL"
        )


def open_session(corpus: Corpus | str | Path) -> SqlSession:
    """A :class:`SqlSession` over a corpus (or a corpus folder)."""
    return SqlSession(corpus if isinstance(corpus, Corpus) else Corpus.open(corpus))


def run_sql(corpus: Corpus | str | Path, query: str, max_rows: int | None = None) -> list[SqlResult]:
    """Run a read-only query over a corpus and return the results (see :class:`SqlSession`)."""
    with open_session(corpus) as session:
        return session.run(query, max_rows)


# --- the read-only check ----------------------------------------------------------------------------------------

_EXPLAIN = re.compile(r"\s*explain(\s+analyze)?\s+(?P<rest>.*)\Z", re.IGNORECASE | re.DOTALL)
_PRAGMA = re.compile(r"\s*pragma\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)

_REFUSALS: dict[str, str] = {
    "COPY": "COPY reads or writes files",
    "EXPORT": "EXPORT writes files",
    "ATTACH": "ATTACH opens another database",
    "DETACH": "DETACH changes the attached databases",
    "LOAD": "INSTALL/LOAD add extensions",
    "SET": "SET/RESET/USE change the session",
    "VARIABLE_SET": "SET VARIABLE changes the session",
    "CREATE": "CREATE makes objects",
    "INSERT": "INSERT writes data",
    "UPDATE": "UPDATE writes data",
    "DELETE": "DELETE writes data",
    "DROP": "DROP removes objects",
    "ALTER": "ALTER changes objects",
    "CALL": "CALL runs a procedure",
    "TRANSACTION": "transactions are not needed for reading",
    "PREPARE": "PREPARE stores a statement",
    "EXECUTE": "EXECUTE runs a stored statement",
    "VACUUM": "VACUUM changes storage",
    "MULTI": "this statement runs several (PIVOT without IN creates a type: write PIVOT ... ON x IN (...))",
}


def _refuse(why: str, stmt: str, query: str, offset: int) -> NectarError:
    lead = len(stmt) - len(stmt.lstrip())
    span = _span_at(query, offset + lead, len(stmt.strip().rstrip(";")))
    return NectarError(
        f"refused: {why}; `nectar sql` is read-only",
        span=span,
        hint="only SELECT (with DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) over the views `spans` and `traces` is allowed",
    )


def _check_read_only(con: duckdb.DuckDBPyConnection, stype: Any, text: str, query: str, offset: int) -> None:
    kind = getattr(stype, "name", str(stype)).upper()
    if kind == "SELECT":
        return
    if kind == "EXPLAIN":
        m = _EXPLAIN.match(text)
        try:
            inner = con.extract_statements(m.group("rest")) if m else []
        except duckdb.Error:
            inner = []  # e.g. EXPLAIN (FORMAT json) ...: not checked, so not run
        if len(inner) == 1 and getattr(inner[0].type, "name", "") == "SELECT":
            return
        raise _refuse("EXPLAIN is only allowed on a SELECT", text, query, offset)
    if kind == "PRAGMA":
        pm = _PRAGMA.match(text)
        if pm and pm.group("name").lower() in READ_ONLY_PRAGMAS:
            return
        raise _refuse(
            "this PRAGMA can change state (read-only ones: table_info, show_tables, ...)", text, query, offset
        )
    raise _refuse(_REFUSALS.get(kind, f"{kind} statements are not allowed"), text, query, offset)


# --- errors with positions --------------------------------------------------------------------------------------

_LINE = re.compile(r"\n*LINE (?P<line>\d+): (?P<text>.*)\n(?P<pad> *)(?P<carets>\^+)\s*\Z", re.DOTALL)


def _span_at(query: str, offset: int, length: int) -> Span:
    before = query[:offset]
    line = before.count("\n") + 1
    col = offset - (before.rfind("\n") + 1) + 1
    return Span(QUERY_FILE, line, col, max(1, length), query)


def _sql_error(exc: duckdb.Error, query: str, offset: int) -> NectarError:
    """A DuckDB error as a NectarError, positioned in the whole query when DuckDB points at a place."""
    msg = str(exc).strip()
    m = _LINE.search(msg)
    span = None
    if m:
        msg = msg[: m.start()].strip()
        stmt_lines = query[offset:].split("\n")
        line_no = int(m.group("line"))
        shown = m.group("text")
        caret_col = len(m.group("pad")) - len(f"LINE {line_no}: ")
        if 1 <= line_no <= len(stmt_lines):
            actual = stmt_lines[line_no - 1]
            if shown.startswith("..."):  # DuckDB elides the start of long lines
                core = shown[3:].removesuffix("...")
                found = actual.find(core)
                caret_col = caret_col - 3 + (found if found >= 0 else 0)
            at = offset + sum(len(x) + 1 for x in stmt_lines[: line_no - 1]) + max(caret_col, 0)
            span = _span_at(query, at, len(m.group("carets")))
    first, _, rest = msg.partition("\n")
    kind, sep, text = first.partition(": ")
    message = f"{kind.lower()}: {text}" if sep else first
    hint = rest.strip() or None
    if "file system operations are disabled" in message:
        hint = "`nectar sql` only reads the corpus's own files; query the views `spans` and `traces`"
    return NectarError(message, span=span, hint=hint)


def _unique_names(names: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}_{seen[n]}")
        else:
            seen[n] = 1
            out.append(n)
    return tuple(out)


# --- output -----------------------------------------------------------------------------------------------------


def plain_value(v: Any) -> Any:
    """A result value as plain JSON data (timestamps as ISO 8601, decimals as numbers, non-finite as text)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, Decimal):
        return float(v) if v == v.to_integral_value() or abs(v) < Decimal(10**15) else str(v)
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, (date, time)):
        return v.isoformat()
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): plain_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain_value(x) for x in v]
    return str(v)


def _cell(v: Any) -> str:
    p = plain_value(v)
    if p is None:
        return "NULL"
    if isinstance(p, bool):
        return "true" if p else "false"
    if isinstance(p, (list, dict)):
        return json.dumps(p, ensure_ascii=False, separators=(",", ":"))
    return str(p)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def render_table(r: SqlResult) -> str:
    """Aligned plain text: a header, a rule, rows (numbers right-aligned), and a row count."""
    if not r.columns:
        return "OK"
    cells = [[_cell(v) for v in row] for row in r.rows]
    numeric = [all(_is_number(row[i]) for row in r.rows if row[i] is not None) for i in range(len(r.columns))]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(r.columns)]

    def fmt(vals: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric, strict=True))

    lines = [fmt(r.columns).rstrip(), "  ".join("-" * w for w in widths)]
    lines += [fmt(row).rstrip() for row in cells]
    n = len(r.rows)
    note = f"({n:,} row{'s' if n != 1 else ''}"
    note += ", more not shown: raise --max-rows or use --format csv)" if r.truncated else ")"
    lines.append(note)
    return "\n".join(lines)


def render_csv(r: SqlResult) -> str:
    """CSV with a header row; NULL is an empty field, lists and structs are JSON text."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(r.columns)
    for row in r.rows:
        w.writerow(["" if v is None else _cell(v) for v in row])
    return buf.getvalue()


def result_json(r: SqlResult) -> list[dict[str, Any]]:
    """The rows as a list of objects, keys in column order."""
    return [{c: plain_value(v) for c, v in zip(r.columns, row, strict=True)} for row in r.rows]


def render_json(results: Sequence[SqlResult]) -> str:
    """One statement: a list of objects. Several: a list of such lists, one per statement."""
    data: Any = [result_json(r) for r in results]
    if len(results) == 1:
        data = data[0]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


__all__ = [
    "READ_ONLY_PRAGMAS",
    "TRACES_COLUMNS",
    "SqlResult",
    "SqlSession",
    "open_session",
    "plain_value",
    "render_csv",
    "render_json",
    "render_table",
    "result_json",
    "run_sql",
    "traces_view_sql",
]
