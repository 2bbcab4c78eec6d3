"""Grounding words in a corpus: which fields and values an English phrase can mean, from the field catalog only.

Nothing here knows this or any corpus's values. Two kinds of knowledge are used:

* the corpus field catalog (:func:`nectar.corpus.stats.field_catalog`): field names, types and top values;
* naming conventions for *fields* (OpenTelemetry semantic conventions: ``http.route``, ``db.system``...) to find
  the field playing a role (the HTTP status, the route, the duration), preferring aliases from ``nectar.toml`` so
  a policy reads ``http.status >= 500`` rather than one spelling of the field.

Value lookup is tolerant of case, separators (``eu west 1`` / ``eu-west-1``), plurals, a prefix of five letters
or more (``postgres`` / ``postgresql``) and one typo (two for long words); every hit says how it matched so the
proposer can report it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from nectar.corpus.layout import ValueType
from nectar.corpus.stats import FieldCatalog, FieldSummary
from nectar.policy.format import format_string
from nectar.util import edit_distance

# Field-name conventions for roles, best first (OpenTelemetry semantic conventions, old and new spellings).
_ROLE_FIELDS: dict[str, tuple[str, ...]] = {
    "status": ("http.response.status_code", "http.status_code", "http.status"),
    "method": ("http.request.method", "http.method"),
    "route": ("http.route", "url.path", "http.target", "http.path", "path", "route"),
    "duration": ("duration_ms", "duration"),
    "service": ("service.name", "service"),
    "db": ("db.system", "db.system.name", "db.name"),
}
# Fields whose values are rarely what an English word means (span names repeat other fields' values).
_LOW_PRIORITY = ("name", "span.name", "db.operation", "db.statement", "span.kind")
# Between fields holding the same value with nothing else to decide, the service is what people name first.
_FIRST = ("service.name",)
_ID_LIKE = re.compile(r"(^|\.)(trace|span|parent)[._]?id$|(^|\.)id$|_id$")

MATCH_QUALITY = {"exact": 0, "case": 1, "separators": 2, "plural": 3, "prefix": 4, "typo": 5}


@dataclass(frozen=True, slots=True)
class ValueHit:
    """A catalog value a word may mean: ``field`` has ``value`` on ``count`` spans; ``how`` it matched."""

    field: str
    value: str | int | float | bool
    count: int
    how: str


def _squash(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def _match_how(word: str, value: str) -> str | None:
    if word == value:
        return "exact"
    lw, lv = word.lower(), value.lower()
    if lw == lv:
        return "case"
    sw, sv = _squash(word), _squash(value)
    if not sw or not sv:
        return None
    if sw == sv:
        return "separators"
    for suffix in ("s", "es"):
        if sw == sv + suffix or sv == sw + suffix:
            return "plural"
    if len(sw) >= 5 and sv.startswith(sw) and len(sv) - len(sw) <= 4:
        return "prefix"
    if len(sw) >= 5 and sv[:1] == sw[:1] and edit_distance(sw, sv) <= (2 if len(sw) >= 9 else 1):
        return "typo"
    return None


class Grounder:
    """Looks words up in a :class:`FieldCatalog`. ``aliases`` are the project's (nectar.toml) field aliases."""

    def __init__(self, catalog: FieldCatalog, aliases: Mapping[str, tuple[str, ...]]) -> None:
        self.catalog = catalog
        self.aliases = aliases
        self._fields = {f.name: f for f in catalog.fields}

    # --- fields -----------------------------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        return name in self._fields

    def summary(self, name: str) -> FieldSummary | None:
        return self._fields.get(name)

    def role(self, role: str) -> str | None:
        """The corpus field playing ``role`` (status, method, route, duration, service, db), if there is one."""
        for name in _ROLE_FIELDS[role]:
            if name in self._fields:
                return name
        return None

    def written(self, field: str) -> str:
        """How to write ``field`` in a match expression: through an alias that reads it, if one does.

        A multi-field alias (``http.status``) that lists the field is preferred: it reads the first of its fields
        present on each span (Refinery ``Fields``), so it covers every spelling of the field in the corpus (the
        old ``http.status_code`` and the new ``http.response.status_code`` often coexist) and stays portable.
        """
        for alias, targets in sorted(self.aliases.items()):
            if field in targets and alias != field and len(targets) > 1:
                return alias
        if re.fullmatch(r"[A-Za-z_@][A-Za-z0-9_@\-]*(\.[A-Za-z0-9_@\-]+)*", field) and field not in (
            "true",
            "false",
            "and",
            "or",
            "not",
            "in",
        ):
            return field
        return "`" + field.replace("\\", "\\\\").replace("`", "\\`") + "`"

    def bool_field(self, word: str) -> str | None:
        """A boolean field named ``word`` (``error``), or else the only boolean field whose name contains it."""
        exact = self._fields.get(word)
        if exact is not None and exact.type_of(ValueType.BOOL) is not None:
            return word
        found = [f.name for f in self.catalog.fields if word in f.name.lower() and f.type_of(ValueType.BOOL)]
        return found[0] if len(found) == 1 else None

    def fields_for_noun(self, noun: str) -> list[str]:
        """Fields with a name segment equal to ``noun`` (or its singular): ``namespace`` -> ``k8s.namespace.name``."""
        n = _squash(noun)
        if len(n) < 3:
            return []
        stems = {n, n[:-1] if n.endswith("s") else n, n[:-2] if n.endswith("es") else n}
        out = []
        for f in self.catalog.fields:
            segments = {_squash(s) for s in re.split(r"[._\-]", f.name) if s}
            if segments & stems:
                out.append(f.name)
        return out

    # --- values -----------------------------------------------------------------------------------------------

    def _priority(self, field: str) -> int:
        if field in _FIRST:
            return 0
        return 2 if field in _LOW_PRIORITY else 1

    def find_values(self, phrase: str, prefer: tuple[str, ...] = ()) -> list[ValueHit]:
        """Catalog string values ``phrase`` may mean, best first.

        Ranking: how well it matched, then fields in ``prefer`` (named by a noun nearby, "the payments
        *service*"), then ordinary fields before span names and free text, then spans with the value.
        Only hits of the best match quality are returned (an exact hit hides typo hits); the first is the choice,
        the others are reported as alternatives.
        """
        hits: list[tuple[tuple[int, int, int, int, str], ValueHit]] = []
        for f in self.catalog.fields:
            if _ID_LIKE.search(f.name):
                continue
            t = f.type_of(ValueType.STR)
            if t is None:
                continue
            for tv in t.top_values:
                if not isinstance(tv.value, str):
                    continue
                how = _match_how(phrase, tv.value)
                if how is None:
                    continue
                key = (MATCH_QUALITY[how], 0 if f.name in prefer else 1, self._priority(f.name), -tv.count, f.name)
                hits.append((key, ValueHit(f.name, tv.value, tv.count, how)))
        hits.sort(key=lambda kv: kv[0])
        if not hits:
            return []
        best = hits[0][0][0]
        return [h for k, h in hits if k[0] == best]

    def values_of(self, field: str) -> list[str]:
        f = self._fields.get(field)
        t = f.type_of(ValueType.STR) if f else None
        return [str(v.value) for v in t.top_values] if t else []

    def int_values(self, field: str) -> list[int]:
        f = self._fields.get(field)
        t = f.type_of(ValueType.INT) if f else None
        return [int(v.value) for v in t.top_values if isinstance(v.value, int)] if t else []

    def closest_values(self, word: str, limit: int = 3) -> list[str]:
        """Catalog values nearest to ``word`` by edit distance (for "did you mean")."""
        scored = []
        sw = _squash(word)
        for f in self.catalog.fields:
            t = f.type_of(ValueType.STR)
            if t is None or _ID_LIKE.search(f.name):
                continue
            for tv in t.top_values:
                if isinstance(tv.value, str) and len(tv.value) <= 40:
                    scored.append((edit_distance(sw, _squash(tv.value)), tv.value, f.name))
        scored.sort()
        return [f"{v} ({fname})" for d, v, fname in scored[:limit] if d <= max(1, len(sw) // 3)]


def quote(value: str) -> str:
    """A string literal for a match expression."""
    return format_string(value)


__all__ = ["Grounder", "ValueHit", "quote"]
