"""The offline proposer: plain-English sampling intents to a policy, deterministically, grounded in the corpus.

An intent is a list of clauses in priority order, separated by ``;``, ``,`` or ``and``/``then`` before a verb::

    Keep all errors and slow requests over 5 seconds, sample everything else at 1%

Each clause has an action (``keep``/``drop``/``sample``, or a rate alone: ``1 in 20 for the rest``) and a
subject. A subject is a union of items (``errors and slow requests`` = either); the words of one item all hold
(``GET requests to /api/search`` = one span with both, Refinery ``Scope: span``). Words are understood as:

* conventions: errors (an ``error`` flag or an HTTP status >= 500), server/client errors, ``5xx``/``4xx``,
  status codes, rate-limited (429), health checks (the health/readiness routes present), database calls,
  HTTP methods, routes (``/api/...``), latency thresholds with units, span counts;
* anything else through the field catalog: a word (or a few) equal to a field's top value (``payments``,
  ``staging``, ``eu-west-1``), tolerant of case, separators, plurals and small typos; a noun naming a field nearby
  (``the payments *service*``, ``free-*tier* users``) decides between fields holding the same value.

A word it cannot place makes the whole intent fail with a message naming the clause and the word, so a policy is
never silently partial. Every grounding is reported as a :class:`~nectar.propose.common.Note`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from nectar.corpus.stats import FieldCatalog
from nectar.errors import ErrorGroup, NectarError, Span
from nectar.policy import ir
from nectar.policy.format import format_action, format_expr
from nectar.propose.clauses import BUDGET, CONNECTORS, IntentClause, NotUnderstood, Tok, split_clauses
from nectar.propose.common import Note, Proposal, RuleSpec, build_policy, policy_text, slug, unique_names
from nectar.propose.grounding import Grounder
from nectar.propose.subjects import Item, SubjectReader, union

_EXCEPT = ("except", "excluding", "besides", "but not", "other than", "apart from", "save for", "minus")
_OPPOSITE = {"keep": "drop", "drop": "keep"}
_BUDGET_WORDS = {
    "budget", "of", "under", "below", "within", "stay", "staying", "keep", "keeping", "it", "at", "most", "max",
    "maximum", "a", "the", "with", "total", "and", "limit", "limited", "to", "cap", "capped", "we", "can",
    "afford", "no", "more", "than", "over", "in", "all", "overall", "events", "spans", "target", "aim", "for",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Rule:
    spec: RuleSpec
    catch_all: bool
    clause: str


def _strip_connectors(text: str) -> str:
    words = text.split()
    while words and words[0].lower() in CONNECTORS:
        words = words[1:]
    return " ".join(words)


def _dedupe(notes: list[Note]) -> list[Note]:
    """One note per meaning: phrases that meant the same expression are listed together."""
    by_meaning: dict[str, Note] = {}
    for n in notes:
        seen = by_meaning.get(n.meaning)
        if seen is None:
            by_meaning[n.meaning] = n
        elif n.phrase not in seen.phrase.split(" / "):
            by_meaning[n.meaning] = Note(f"{seen.phrase} / {n.phrase}", n.meaning, seen.detail)
    return list(by_meaning.values())


def _fail_error(intent: str, clause: str, f: NotUnderstood) -> NectarError:
    span = Span("<intent>", 1, f.tok.start + 1, len(f.tok.text), intent) if f.tok else None
    return NectarError(f"cannot understand the clause {clause!r}: {f.message}", span, f.hint)


@dataclass(frozen=True, slots=True)
class ParsedIntent:
    """What an intent asks for: rules in priority order, the groundings made, and a budget if one was given."""

    rules: tuple[_Rule, ...]
    notes: tuple[Note, ...]
    budget_per_second: float | None = None


def _budget(c: IntentClause, ctext: str) -> float | None:
    """A budget clause ("stay under 2,000 events per second"): the number, or None when this is not one."""
    m = BUDGET.search(ctext)
    if m is None:
        return None
    value = float(m.group(1).replace(",", "")) * (1000 if m.group(2) else 1)
    rest = (ctext[: m.start()] + " " + ctext[m.end() :]).lower()
    for w in re.findall(r"[a-z']+", rest):
        if w not in _BUDGET_WORDS:
            tok = next((t for t in c.toks if t.low == w), c.toks[0])
            raise NotUnderstood(
                f"{w!r} in a budget clause", tok, "write the budget on its own: `stay under 500 events per second`"
            )
    if value <= 0:
        raise NotUnderstood("a budget must be more than 0 events per second", c.toks[0])
    return value


def _subject_items(reader: SubjectReader, toks: list[Tok]) -> list[Item]:
    items: list[Item] = []
    current: list[Tok] = []
    for t in [*toks, Tok("and", -1)]:
        if t.low in ("and", "or", "&", "plus"):
            if current:
                items.append(reader.item(current))
            current = []
        else:
            current.append(t)
    return items or [Item(catch_all=True)]


def _split_except(toks: list[Tok]) -> tuple[list[Tok], list[Tok], Tok | None]:
    lows = [t.low for t in toks]
    for i in range(len(toks)):
        for phrase in _EXCEPT:
            words = phrase.split()
            if lows[i : i + len(words)] == words:
                return toks[:i], toks[i + len(words) :], toks[i]
    return toks, [], None


def _clause_rules(c: IntentClause, ctext: str, reader: SubjectReader) -> tuple[list[_Rule], list[Note]]:
    if c.rate is not None:
        action, n = c.rate
    elif c.verb == "sample":
        raise NotUnderstood("`sample` needs a rate", c.toks[0], "e.g. `sample ... at 10%` or `1 in 20`")
    elif c.verb is None:
        raise NotUnderstood("no action", c.toks[0], "start the clause with keep, drop or sample, or give a rate")
    else:
        action, n = c.verb, 1
    main, exceptions, except_tok = _split_except(c.subject)
    items = _subject_items(reader, main)
    catch_all = any(i.catch_all for i in items)
    desc = _strip_connectors(ctext)
    desc = desc[:1].upper() + desc[1:200]
    rules: list[_Rule] = []
    notes: list[Note] = []
    if except_tok is not None:
        # "keep everything except health checks": the exception first, with the other action (Refinery: the
        # first matching rule decides, so an earlier rule is how a policy says "but not these").
        if not catch_all or not exceptions:
            raise NotUnderstood(
                f"{except_tok.text!r} is only understood after 'everything'",
                except_tok,
                "write the exception as its own clause first: `drop health checks, keep everything else`",
            )
        ex_items = _subject_items(reader, exceptions)
        if any(i.catch_all for i in ex_items):
            raise NotUnderstood(f"the exception after {except_tok.text!r} names no traces", except_tok)
        other = _OPPOSITE.get(action, "keep")
        rules.append(
            _Rule(RuleSpec(slug("-".join(i.name() for i in ex_items)), union(ex_items), other, desc), False, ctext)
        )
        notes += [p.note for i in ex_items for p in i.preds if p.note is not None]
        notes.append(Note(except_tok.text, other, f"the exception gets the other action ({other}), in a rule before"))
    match = "true" if catch_all else union(items)
    # One rule per item ("errors and slow requests": two rules, same action), unless they merged into one
    # `in (...)` list; the same decisions either way (`or` is consecutive rules), clearer per-rule figures.
    groups = [items] if catch_all or " in (" in match or len(items) == 1 else [[i] for i in items]
    for g in groups:
        m = "true" if catch_all else union(g)
        name = "rest" if catch_all else slug("-".join(i.name() for i in g))
        rules.append(_Rule(RuleSpec(name, m, action, desc), catch_all, ctext))
    notes += [p.note for i in items for p in i.preds if p.note is not None]
    if c.rate is not None:
        kept = "keep every trace" if action == "keep" else "drop them" if action == "drop" else f"keep 1 in {n}"
        notes.append(Note(c.rate_words, action, kept))
    return rules, notes


def parse_intent(
    intent: str,
    catalog: FieldCatalog,
    aliases: Mapping[str, tuple[str, ...]],
    error_definition: str | None = None,
) -> ParsedIntent:
    """The rules an intent asks for, in priority order, and the groundings made. Raises on any clause not understood
    (all of them, each naming its clause and pointing at the word). ``error_definition`` (the project's, when not
    the default) is added to what "errors" means."""
    reader = SubjectReader(Grounder(catalog, aliases), error_definition)
    rules: list[_Rule] = []
    notes: list[Note] = []
    errors: list[NectarError] = []
    budget: float | None = None
    try:
        clauses = split_clauses(intent)
    except NotUnderstood as f:
        raise _fail_error(intent, intent, f) from None
    if not clauses:
        raise NectarError("the intent is empty", hint='e.g. nectar propose "keep errors, sample the rest at 1%"')
    for c in clauses:
        ctext = c.text(intent)
        try:
            b = _budget(c, ctext)
            if b is not None:
                budget = b
                notes.append(Note(ctext, f"budget_per_second {b:g}", "checked by the prover's budget check"))
                continue
            got, more = _clause_rules(c, ctext, reader)
            rules += got
            notes += more
        except NotUnderstood as f:
            errors.append(_fail_error(intent, ctext, f))
    if errors:
        raise errors[0] if len(errors) == 1 else ErrorGroup(errors)
    for k, r in enumerate(rules[:-1]):
        if r.catch_all:
            later = rules[k + 1].clause
            raise NectarError(
                f"the clause {later!r} comes after {r.clause!r}, which already decides every remaining trace",
                hint="clauses are in priority order: put the catch-all ('the rest', 'everything else') last",
            )
    return ParsedIntent(tuple(rules), tuple(_dedupe(notes)), budget)


def propose_offline(
    intent: str,
    catalog: FieldCatalog,
    aliases: Mapping[str, tuple[str, ...]],
    base: ir.Policy | None = None,
    error_definition: str | None = None,
) -> Proposal:
    """Turn ``intent`` into a validated policy grounded in ``catalog``; with ``base``, refine that policy.

    Refining keeps the base policy's rules in their order, inserts the new rules before its catch-all, and lets a
    new catch-all ("sample the rest at 5%") replace the old one.
    """
    parsed = parse_intent(intent, catalog, aliases, error_definition)
    rules, notes = parsed.rules, parsed.notes
    assumptions: list[str] = []
    new = [r.spec for r in rules if not r.catch_all]
    new_rest = [r.spec for r in rules if r.catch_all]
    if base is not None:
        old = list(base.ordered_rules())
        old_rest = [r for r in old if isinstance(r.match, ir.Const) and r.match.value]
        old_specs = [_spec(r) for r in old if r not in old_rest]
        rest = new_rest or [_spec(r) for r in old_rest[:1]]
        specs = old_specs + new + rest
        name, description = base.name, base.description
        assumptions.append(
            f"refined {base.name!r}: new rules go after its {len(old_specs)} rule(s), before its catch-all"
        )
    else:
        specs = new + new_rest
        name = slug(" ".join(re.findall(r"[A-Za-z0-9]+", intent)[:6]), 48)
        description = intent if len(intent) <= 200 else intent[:197] + "..."
    if not (specs and specs[-1].match == "true"):
        specs.append(RuleSpec("rest", "true", "keep", "traces no clause names"))
        assumptions.append(
            "traces no clause names are kept (Refinery's default); say 'sample the rest at N%' to change"
        )
    names = unique_names([s.name for s in specs])
    specs = [RuleSpec(n, s.match, s.action, s.description) for n, s in zip(names, specs, strict=True)]
    budget = parsed.budget_per_second if parsed.budget_per_second is not None else (base and base.budget_per_second)
    text = policy_text(name, specs, description, budget or None)
    try:
        policy, canonical = build_policy(text, aliases)
    except NectarError as exc:  # pragma: no cover - a proposer bug, reported rather than written
        raise NectarError(f"the offline proposer built an invalid policy: {exc.message}", hint=text) from None
    return Proposal(policy, canonical, "offline", notes, tuple(assumptions))


def _spec(r: ir.PolicyRule) -> RuleSpec:
    return RuleSpec(r.name, format_expr(r.match), format_action(r.action), r.description)


__all__ = ["ParsedIntent", "parse_intent", "propose_offline", "split_clauses"]
