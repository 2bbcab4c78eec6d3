"""The corpus as DuckDB SQL: the canonical span frame over the part files, and SQL built as pieces.

The storage contract (:mod:`nectar.corpus.layout`) says which physical column of which part file holds which
(field, type); this module says it in DuckDB's SQL, for the DuckDB engine and ``nectar sql``. SQL is built from
:class:`Sql` pieces: text written by Nectar (keywords, quoted identifiers) plus bound parameters, rendered once;
no user text and no file path is ever pasted into a statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from nectar.corpus.layout import Corpus


@dataclass(frozen=True, slots=True)
class Sql:
    """A piece of SQL: text written by Nectar (keywords, quoted identifiers) and its bound parameters."""

    text: str
    params: tuple[Any, ...] = ()


def cat(*parts: Sql | str) -> Sql:
    """Concatenate pieces; ``str`` parts are SQL text written here, never user input."""
    text: list[str] = []
    params: list[Any] = []
    for p in parts:
        if isinstance(p, str):
            text.append(p)
        else:
            text.append(p.text)
            params.extend(p.params)
    return Sql("".join(text), tuple(params))


def join(sep: str, parts: Iterable[Sql | str]) -> Sql:
    items = list(parts)
    out: list[Sql | str] = []
    for i, p in enumerate(items):
        if i:
            out.append(sep)
        out.append(p)
    return cat(*out)


def quote_ident(name: str) -> str:
    """A DuckDB/SQL identifier, double-quoted with embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def ident(name: str) -> Sql:
    return Sql(quote_ident(name))


def param(value: Any, sql_type: str) -> Sql:
    return Sql(f"CAST(? AS {sql_type})", (value,))


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB type of a corpus column's Arrow type."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    raise TypeError(f"no DuckDB type for {t}")


def spans_source(corpus: Corpus) -> Sql:
    """A query giving the canonical frame (every canonical column, absent ones as typed NULLs) over all part
    files, the file paths bound as parameters."""
    schema = corpus.canonical_schema()
    parts: list[Sql] = []
    for part in corpus.manifest.files:
        present = {canon: phys for phys, canon, _ in corpus.canonical_selects(part)}
        items = []
        for canon, atype in schema.items():
            if canon in present:
                items.append(f"{quote_ident(present[canon])} AS {quote_ident(canon)}")
            else:
                items.append(f"CAST(NULL AS {duckdb_type(atype)}) AS {quote_ident(canon)}")
        parts.append(Sql(f"SELECT {', '.join(items)} FROM read_parquet(?)", (str(corpus.root / part.path),)))
    if not parts:
        items = [f"CAST(NULL AS {duckdb_type(t)}) AS {quote_ident(c)}" for c, t in schema.items()]
        return Sql(f"SELECT {', '.join(items)} WHERE false")
    return join("\nUNION ALL\n", parts)


__all__ = ["Sql", "cat", "duckdb_type", "ident", "join", "param", "quote_ident", "spans_source"]
