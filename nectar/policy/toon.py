"""A TOON reader that keeps positions, and the TOON string quoting rules for the writer.

TOON (Token-Oriented Object Notation) is indentation-based: ``key: value``, nested ``key:`` objects, inline arrays
``key[N]: a,b``, tables ``key[N]{f1,f2}:`` with one row per line, and list arrays ``key[N]:`` with ``- item`` lines.
This reader supports that subset, plus one extension the Nectar README has always used: an object header that
lists its fields, followed by one value per line in field order::

    nectar_policy{version,name,budget_per_second,rules}:
      1
      production-sampling
      10000
      rules[3]{name,description,match,action,priority}:
        ...

Every node carries a :class:`~nectar.errors.Span`, and every decoded string knows the file column of each of its
characters (``cols``), so an error inside a match expression in a quoted cell points at the right column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nectar.errors import NectarError, Span
from nectar.policy.ir import MAX_NESTING

NUMBER_RE = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_HEADER_RE = re.compile(
    r"""^(?P<key>"(?:\\.|[^"\\])*"|[^\s:\[{"][^:\[{]*?)\s*
        (?:\[(?P<len>\d*)(?P<delim>[\t|]?)\])?
        (?:\{(?P<fields>[^}]*)\})?
        :(?P<rest>.*)$""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class TPrim:
    """A primitive: ``value`` is str, int, float, bool or None. For strings, ``cols[i]`` is the file column of
    character ``i`` (so positions inside the string map back to the file)."""

    value: str | int | float | bool | None
    raw: str
    span: Span
    quoted: bool = False
    cols: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TArray:
    items: tuple[TNode, ...]
    span: Span
    fields: tuple[str, ...] | None = None  # for tables


@dataclass(frozen=True, slots=True)
class TObject:
    entries: tuple[tuple[str, Span, TNode], ...]
    span: Span
    header_fields: tuple[str, ...] | None = None  # set for the `key{f,...}:` extension
    spelling: str = "standard"  # "standard" or "header" (the extension)

    def get(self, key: str) -> TNode | None:
        for k, _, v in self.entries:
            if k == key:
                return v
        return None

    def keys(self) -> list[str]:
        return [k for k, _, _ in self.entries]

    def key_span(self, key: str) -> Span | None:
        for k, s, _ in self.entries:
            if k == key:
                return s
        return None


TNode = TPrim | TArray | TObject


@dataclass(slots=True)
class _Line:
    no: int  # 1-based
    indent: int
    text: str  # without indentation and trailing whitespace


@dataclass(slots=True)
class _Reader:
    file: str
    source: str
    lines: list[_Line] = field(default_factory=list)
    pos: int = 0
    depth: int = 0  # entries being read, one inside the other (bounded: the reader recurses)

    # -------------------------------------------------------------- positions
    def span(self, line: int, col: int, length: int = 1) -> Span:
        return Span(self.file, line, col, max(1, length), self.source)

    def err(self, message: str, line: int, col: int, length: int = 1, hint: str | None = None) -> NectarError:
        return NectarError(message, self.span(line, col, length), hint)

    # -------------------------------------------------------------- primitives
    def primitive(self, text: str, line: int, col: int) -> TPrim:
        """Decode one primitive written at ``col`` (1-based) of ``line``; ``text`` is already trimmed."""
        if text.startswith('"'):
            value, cols, end = self.quoted(text, line, col)
            if text[end:].strip():
                raise self.err(
                    "unexpected characters after the closing quote",
                    line,
                    col + end,
                    len(text) - end,
                    'quote the whole value, escaping inner quotes as \\"',
                )
            return TPrim(value, text, self.span(line, col, len(text)), True, cols)
        span = self.span(line, col, len(text))
        if text == "null":
            return TPrim(None, text, span)
        if text in ("true", "false"):
            return TPrim(text == "true", text, span)
        if NUMBER_RE.fullmatch(text):
            if re.fullmatch(r"-?\d+", text):
                return TPrim(int(text), text, span)
            f = float(text)
            return TPrim(int(f) if f.is_integer() and "e" not in text.lower() and "." not in text else f, text, span)
        return TPrim(text, text, span, False, tuple(range(col, col + len(text))))

    def quoted(self, text: str, line: int, col: int) -> tuple[str, tuple[int, ...], int]:
        """Decode a quoted string at the start of ``text``: (value, file column of each char, end index)."""
        out: list[str] = []
        cols: list[int] = []
        i = 1
        while i < len(text):
            c = text[i]
            if c == '"':
                return "".join(out), tuple(cols), i + 1
            if c == "\\":
                if i + 1 >= len(text):
                    break
                e = text[i + 1]
                if e not in _ESCAPES:
                    raise self.err(
                        f"invalid escape \\{e} in a quoted string",
                        line,
                        col + i,
                        2,
                        'TOON strings allow \\\\ \\" \\n \\r \\t',
                    )
                out.append(_ESCAPES[e])
                cols.append(col + i)
                i += 2
                continue
            out.append(c)
            cols.append(col + i)
            i += 1
        raise self.err("missing closing quote", line, col, len(text), 'end the string with "')

    def split_cells(self, text: str, line: int, col: int, delim: str) -> list[TPrim]:
        """Split a row (or inline array) into cells, honouring quotes; ``col`` is where ``text`` starts."""
        cells: list[TPrim] = []
        i = 0
        n = len(text)
        while True:
            while i < n and text[i] == " ":
                i += 1
            start = i
            if i < n and text[i] == '"':
                _, _, end = self.quoted(text[i:], line, col + i)
                j = i + end
                k = j
                while k < n and text[k] == " ":
                    k += 1
                if k < n and text[k] != delim:
                    raise self.err(
                        "unexpected characters after the closing quote",
                        line,
                        col + k,
                        1,
                        "a cell that contains the delimiter or quotes must be quoted as a whole, inner quotes "
                        'escaped as \\"',
                    )
                cells.append(self.primitive(text[start:j], line, col + start))
                i = k
            else:
                j = text.find(delim, i)
                j = n if j < 0 else j
                raw = text[start:j].rstrip(" ")
                if not raw:
                    raise self.err("empty cell", line, col + start, 1, 'write "" for an empty string')
                cells.append(self.primitive(raw, line, col + start))
                i = j
            if i >= n:
                return cells
            i += 1  # the delimiter
            if i >= n:
                raise self.err("empty cell after the last delimiter", line, col + i - 1, 1)

    # -------------------------------------------------------------- structure
    def peek(self) -> _Line | None:
        return self.lines[self.pos] if self.pos < len(self.lines) else None

    def children_indent(self, parent: _Line) -> int | None:
        nxt = self.peek()
        if nxt is None or nxt.indent <= parent.indent:
            return None
        return nxt.indent

    def parse_key(self, raw: str, line: int, col: int) -> str:
        raw = raw.strip()
        if raw.startswith('"'):
            value, _, _ = self.quoted(raw, line, col)
            return value
        return raw

    def parse_object_body(self, indent: int, owner_line: _Line | None) -> list[tuple[str, Span, TNode]]:
        entries: list[tuple[str, Span, TNode]] = []
        seen: dict[str, Span] = {}
        while (ln := self.peek()) is not None and ln.indent >= indent:
            if ln.indent > indent:
                raise self.err(
                    "unexpected indentation",
                    ln.no,
                    ln.indent + 1,
                    1,
                    f"this line should be indented by {indent} spaces",
                )
            key, kspan, node = self.parse_entry(ln)
            if key in seen:
                raise NectarError(f"duplicate key {key!r}", kspan, f"first given at line {seen[key].line}")
            seen[key] = kspan
            entries.append((key, kspan, node))
        return entries

    def parse_entry(self, ln: _Line) -> tuple[str, Span, TNode]:
        if self.depth >= MAX_NESTING:
            raise self.err(
                f"the file nests too deeply: this entry is at level {self.depth + 1}, and a policy nests at most "
                f"{MAX_NESTING} levels",
                ln.no,
                ln.indent + 1,
                len(ln.text),
                "a policy nests only a few levels: nectar_policy, its fields, the rows of its tables",
            )
        self.depth += 1
        try:
            return self.parse_entry_body(ln)
        finally:
            self.depth -= 1

    def parse_entry_body(self, ln: _Line) -> tuple[str, Span, TNode]:
        m = _HEADER_RE.match(ln.text)
        col0 = ln.indent + 1
        if not m:
            raise self.err(
                "expected `key: value`", ln.no, col0, len(ln.text), "or a header like `rules[2]{name,match,action}:`"
            )
        self.pos += 1
        key = self.parse_key(m.group("key"), ln.no, col0)
        kspan = self.span(ln.no, col0, len(m.group("key").strip()))
        rest = m.group("rest")
        rest_col = col0 + m.start("rest")
        fields_txt = m.group("fields")
        has_len = m.group("len") is not None
        delim = m.group("delim") or ","
        fields = None
        if fields_txt is not None:
            fields = tuple(f.strip().strip('"') for f in fields_txt.split(delim))
            if any(not f for f in fields):
                raise self.err("empty field name in the header", ln.no, col0 + m.start("fields"), len(fields_txt))
        if has_len:
            declared = int(m.group("len")) if m.group("len") else None
            if declared is None:
                raise self.err("an array header needs its length, like [3]", ln.no, col0 + m.start("len") - 1, 2)
            return key, kspan, self.parse_array(ln, declared, delim, fields, rest, rest_col)
        if fields is not None:
            if rest.strip():
                raise self.err("a field header ends the line", ln.no, rest_col, len(rest))
            return key, kspan, self.parse_header_object(ln, fields)
        if rest.strip():
            text = rest.strip()
            return key, kspan, self.primitive(text, ln.no, rest_col + (len(rest) - len(rest.lstrip())))
        indent = self.children_indent(ln)
        if indent is None:
            return key, kspan, TObject((), self.span(ln.no, col0, len(ln.text)))
        return key, kspan, TObject(tuple(self.parse_object_body(indent, ln)), self.span(ln.no, col0, len(ln.text)))

    def parse_header_object(self, ln: _Line, fields: tuple[str, ...]) -> TObject:
        """The extension: ``key{f1,f2,...}:`` then one value per line, in field order."""
        indent = self.children_indent(ln)
        entries: list[tuple[str, Span, TNode]] = []
        i = 0
        while indent is not None and (child := self.peek()) is not None and child.indent >= indent:
            if child.indent > indent:
                raise self.err("unexpected indentation", child.no, child.indent + 1)
            col0 = child.indent + 1
            m = _HEADER_RE.match(child.text)
            is_keyed = m is not None and (
                m.group("len") is not None or m.group("fields") is not None or not m.group("rest").strip()
            )
            if i >= len(fields):
                raise self.err(
                    f"more values than the {len(fields)} fields the header lists",
                    child.no,
                    col0,
                    len(child.text),
                    f"the header lists: {', '.join(fields)}",
                )
            if is_keyed:
                key, kspan, node = self.parse_entry(child)
                if key != fields[i]:
                    raise NectarError(
                        f"expected the value of {fields[i]!r} here, found {key!r}",
                        kspan,
                        f"values follow the header's order: {', '.join(fields)}",
                    )
                entries.append((key, kspan, node))
            else:
                if m and m.group("rest").strip() and m.group("key").strip() == fields[i]:
                    raise self.err(
                        f"write only the value of {fields[i]!r} here, without `{fields[i]}:`",
                        child.no,
                        col0,
                        len(m.group("key")),
                        "or use the standard spelling `key: value` throughout",
                    )
                self.pos += 1
                prim = self.primitive(child.text, child.no, col0)
                entries.append((fields[i], prim.span, prim))
            i += 1
        if i < len(fields):
            where = self.peek()
            line = where.no if where else ln.no
            raise self.err(
                f"missing value for {fields[i]!r}: the header lists {len(fields)} fields, {i} values follow",
                ln.no,
                ln.indent + 1,
                len(ln.text),
                f"give one value per line, in order: {', '.join(fields)} (next line: {line})",
            )
        return TObject(tuple(entries), self.span(ln.no, ln.indent + 1, len(ln.text)), fields, "header")

    def parse_array(
        self, ln: _Line, declared: int, delim: str, fields: tuple[str, ...] | None, rest: str, rest_col: int
    ) -> TArray:
        col0 = ln.indent + 1
        hspan = self.span(ln.no, col0, len(ln.text))
        if rest.strip():
            if fields is not None:
                raise self.err("a table header ends the line; rows go on the next lines", ln.no, rest_col, len(rest))
            text = rest.strip()
            items: list[TNode] = list(self.split_cells(text, ln.no, rest_col + (len(rest) - len(rest.lstrip())), delim))
            self.check_count(declared, len(items), hspan, "values")
            return TArray(tuple(items), hspan)
        indent = self.children_indent(ln)
        rows: list[TNode] = []
        while indent is not None and (row := self.peek()) is not None and row.indent >= indent:
            if row.indent > indent:
                raise self.err("unexpected indentation", row.no, row.indent + 1)
            rcol = row.indent + 1
            if fields is not None:
                self.pos += 1
                try:
                    cells = self.split_cells(row.text, row.no, rcol, delim)
                except NectarError as exc:
                    naive = len(row.text.split(delim))
                    if naive != len(fields):  # most often: an unquoted cell that contains the delimiter
                        raise self.err(
                            f"this row has {naive} cells but the table has {len(fields)} columns ({', '.join(fields)})",
                            row.no,
                            rcol,
                            len(row.text),
                            _quote_hint(fields),
                        ) from None
                    raise NectarError(exc.message, exc.span, exc.hint or _quote_hint(fields)) from None
                if len(cells) != len(fields):
                    raise self.err(
                        f"this row has {len(cells)} cells but the table has {len(fields)} columns "
                        f"({', '.join(fields)})",
                        row.no,
                        rcol,
                        len(row.text),
                        _quote_hint(fields),
                    )
                entries = tuple((f, c.span, c) for f, c in zip(fields, cells, strict=True))
                rows.append(TObject(entries, self.span(row.no, rcol, len(row.text))))
            else:
                if not row.text.startswith("- ") and row.text != "-":
                    raise self.err("expected a list item `- ...`", row.no, rcol, len(row.text))
                rows.append(self.parse_list_item(row))
        self.check_count(declared, len(rows), hspan, "rows" if fields else "items")
        return TArray(tuple(rows), hspan, fields)

    def parse_list_item(self, row: _Line) -> TNode:
        body = row.text[2:].lstrip() if row.text != "-" else ""
        bcol = row.indent + 1 + (len(row.text) - len(body))
        m = _HEADER_RE.match(body)
        if m and body and not body.startswith('"'):
            # `- key: value` starts an object whose further keys are indented under the item.
            self.lines[self.pos] = _Line(row.no, bcol - 1, body)
            first = self.lines[self.pos]
            return TObject(tuple(self.parse_object_body(first.indent, first)), self.span(row.no, bcol, len(body)))
        self.pos += 1
        if not body:
            raise self.err("empty list item", row.no, row.indent + 1)
        return self.primitive(body, row.no, bcol)

    def check_count(self, declared: int, found: int, span: Span, what: str) -> None:
        if declared != found:
            raise NectarError(
                f"the header declares {declared} {what} but {found} follow",
                span,
                f"change [{declared}] to [{found}]" if found else None,
            )


def _quote_hint(fields: tuple[str, ...]) -> str:
    return (
        'a cell that contains `,` or `"` must be quoted as a whole with inner quotes escaped, e.g. '
        '"http.method in (\\"GET\\",\\"POST\\")"'
    )


def parse_toon(source: str, file: str = "<policy>") -> TObject:
    """Parse a TOON document into positioned nodes. Raises :class:`NectarError` with the position of a problem."""
    reader = _Reader(file, source)
    for no, raw in enumerate(source.splitlines(), 1):
        if not raw.strip():
            continue
        stripped = raw.rstrip()
        body = stripped.lstrip(" ")
        if body.startswith("\t") or "\t" in stripped[: len(stripped) - len(body)]:
            raise reader.err("indent with spaces, not tabs", no, 1)
        reader.lines.append(_Line(no, len(stripped) - len(body), body))
    if not reader.lines:
        raise NectarError("the file is empty", Span(file, 1, 1, 1, source), "start with `nectar_policy:`")
    first = reader.lines[0]
    if first.indent:
        raise reader.err("the first line must not be indented", first.no, 1, first.indent)
    entries = reader.parse_object_body(0, None)
    if reader.pos < len(reader.lines):  # pragma: no cover - parse_object_body consumes all lines at indent >= 0
        ln = reader.lines[reader.pos]
        raise reader.err("unexpected line", ln.no, ln.indent + 1)
    return TObject(tuple(entries), Span(file, 1, 1, 1, source))


# ---------------------------------------------------------------------------------------------------- writing


def needs_quotes(value: str, delim: str = ",") -> bool:
    """Whether TOON requires quotes around ``value`` (so that it reads back as the same string)."""
    if value == "" or value != value.strip():
        return True
    if value in ("true", "false", "null") or NUMBER_RE.fullmatch(value) or re.fullmatch(r"-?\d+(\.\d+)?", value):
        return True
    if re.fullmatch(r"0\d+", value):
        return True
    if any(c in value for c in ':"\\[]{}\n\r\t') or delim in value:
        return True
    return value.startswith("-") or value.startswith("#")


def quote(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + out.replace("\t", "\\t") + '"'


def encode_string(value: str, delim: str = ",") -> str:
    return quote(value) if needs_quotes(value, delim) else value


def encode_number(value: int | float) -> str:
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    text = repr(value)
    if "e" in text or "E" in text:  # TOON writes plain decimals
        text = format(value, "f").rstrip("0")
    return text
