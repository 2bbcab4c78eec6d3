"""Waivers: the reviewed exceptions a policy declares (``accept[N]{check,rule,reason}``), applied to a check's
violations.

A violating trace of a check is waived when the rule that decided it is waived for that check. A trace that
belongs to several parts of a check (two must-keep classes, a class and ``must-keep.txt``) is waived only when
every part it belongs to is waived for its deciding rule: a waiver never hides a violation it does not name.
``must_keep`` waives every part of the must-keep check; ``must_keep:<class>`` only that class.
"""

from __future__ import annotations

import functools
import operator

import polars as pl

from nectar.policy import ir
from nectar.prove.checks import ProofWarning, WaiverUse


class Waivers:
    """The policy's waivers over one corpus: ``decided_by`` is each trace's deciding policy rule (null: no rule),
    in the decisions' row order. Counts what each waiver waived across the checks, for the report and the lock."""

    def __init__(self, accept: tuple[ir.Accept, ...], decided_by: pl.Series) -> None:
        self.accept = accept
        self.decided_by = decided_by
        self.counts = [0] * len(accept)

    def rules_for(self, checks: tuple[str, ...]) -> list[str]:
        """The policy rules waived for any of ``checks`` (e.g. ``("must_keep", "must_keep:checkouts")``)."""
        return [a.rule for a in self.accept if a.check in checks]

    def split(
        self, lost: pl.Series, parts: list[tuple[tuple[str, ...], pl.Series]]
    ) -> tuple[pl.Series, tuple[WaiverUse, ...]]:
        """Which of the ``lost`` traces are waived, and by which waivers. ``parts``: per part of the check, the
        waiver checks that cover it (``("must_keep", "must_keep:checkouts")``) and which traces belong to it."""
        member = pl.Series([False] * len(lost), dtype=pl.Boolean)
        waived = lost
        for checks, belongs in parts:
            member = member | belongs
            rules = self.rules_for(checks)
            waived = waived & (~belongs | self.decided_by.is_in(rules).fill_null(False))
        waived = waived & member
        uses = []
        for i, a in enumerate(self.accept):
            cover = [belongs for checks, belongs in parts if a.check in checks]
            if not cover:
                continue
            mine = waived & (self.decided_by == a.rule).fill_null(False) & functools.reduce(operator.or_, cover)
            n = int(mine.sum())
            self.counts[i] += n
            if n:
                uses.append(WaiverUse(a.check, a.rule, a.reason, n))
        return waived, tuple(uses)

    def uses(self) -> tuple[WaiverUse, ...]:
        """Every waiver of the policy, in policy order, with the traces it waived (0 when unused)."""
        return tuple(WaiverUse(a.check, a.rule, a.reason, n) for a, n in zip(self.accept, self.counts, strict=True))

    def warnings(self) -> list[ProofWarning]:
        """One warning per waiver that waived nothing: no violating trace of its check was decided by its rule."""
        return [
            ProofWarning(
                "unused-waiver",
                f"the waiver of {u.check} for rule {u.rule!r} is unused: no violating trace of that check is "
                f"decided by {u.rule!r} in this corpus; remove it, or keep it knowingly",
                u.check,
                u.rule,
            )
            for u in self.uses()
            if u.traces == 0
        ]
