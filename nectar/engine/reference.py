"""The reference evaluator: Refinery's rules-based decision, one trace at a time, in plain Python.

Written for clarity straight from SEMANTICS.md section 2 (``sample/rules.go``, ``config/sampler_config.go``): it
is the oracle the vectorized Polars and DuckDB engines are tested against, so it favours obviousness over speed
(about 100k spans in a few seconds).

Entry points:

* :func:`decide_trace` ``(sampler, trace_id, spans) -> Decision``, where ``spans`` are raw events as Refinery
  receives them: dicts of field -> value (``int`` = int64, ``float`` = float64, ``bool``, ``str``, ``None`` =
  present with null, ``dict``/``list`` = nested), in arrival order and key order, including the id keys.
  Refinery consumes the string trace-id and parent-id values it is configured to read (default
  ``trace.trace_id``/``traceId``, ``trace.parent_id``/``parentId``; :func:`nectar.refinery.ids.consume_ids`):
  they are invisible to rules, and the parent ids find the root. ``trace.span_id``, a ``null`` id or a second
  trace-id key stay ordinary fields;
* :func:`rule_matches` -- which rules' conditions match a trace (whether or not an earlier rule decided);
* :func:`decide_corpus` ``(sampler, corpus, with_matches=False) -> EvalResult`` for a whole corpus.

Conventions shared with the other engines (``nectar.engine.decision``): ``keep`` is ``true``/``false`` when
Refinery's answer is certain, ``sampled`` when it draws at random (``SampleRate`` N > 1, ``math/rand``) or a
stateful sampler decides. The DeterministicSampler is exact (trace-id hash). A trace decision alone gives stateful
samplers their nominal rate (``SampleRate``, ``GoalSampleRate``; 1 for throughput samplers); over a corpus,
:func:`nectar.engine.api.evaluate` then replays them (:mod:`nectar.engine.stateful`, with :func:`trace_key` below
building their keys) and each trace gets its simulated rate.
An entry naming no sampler type (Refinery exits on its first trace) is reported as "no rule matched", keep, rate 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from nectar.corpus.layout import ARRIVAL, PARENT_ID, TRACE_ID, Corpus, ValueType
from nectar.engine.decision import Decision, EvalResult, Keep, decisions_frame
from nectar.refinery import gostr
from nectar.refinery.ids import DEFAULT_ID_FIELDS, IdFields, consume_ids
from nectar.refinery.model import (
    COMPARISON_OPERATORS,
    META_ROOT,
    NUM_DESCENDANTS,
    ROOT_PREFIX,
    SIGNAL_TYPE,
    UINT64_MASK,
    Condition,
    Datatype,
    Operator,
    Rule,
    RulesBasedSampler,
    Sampler,
    SamplerConfig,
    SamplerKind,
)

_STATEFUL_REASON = {
    SamplerKind.DYNAMIC: "dynamic",
    SamplerKind.EMA_DYNAMIC: "emadynamic",
    SamplerKind.EMA_THROUGHPUT: "emathroughput",
    SamplerKind.WINDOWED_THROUGHPUT: "windowedthroughput",
    SamplerKind.TOTAL_THROUGHPUT: "totalthroughput",
}


# ---------------------------------------------------------------------------------------------------------------
# Traces as Refinery holds them


@dataclass(slots=True)
class EvalSpan:
    """One span as rules see it: its visible fields (plus the virtual ``meta.refinery.root``) and whether it
    qualifies as a root (no parent id holding a non-empty string, and not a log event)."""

    fields: dict[str, Any]
    is_root: bool
    marshal_fields: dict[str, Any] | None = None  # the fields json.Marshal sees (without virtual ones)


def make_span(fields: dict[str, Any], has_parent: bool) -> EvalSpan:
    """An :class:`EvalSpan` from visible fields and whether a parent id was present (types/payload.go)."""
    is_log = fields.get(SIGNAL_TYPE) == "log"
    is_root = not has_parent and not is_log
    visible = dict(fields)
    if not is_log:
        # Refinery sets the bool metadata slot meta.refinery.root on every non-log span (route.go / payload.go).
        visible[META_ROOT] = is_root
    return EvalSpan(visible, is_root, fields)


def span_from_event(event: Mapping[str, Any], ids: IdFields = DEFAULT_ID_FIELDS) -> EvalSpan:
    """A raw event -> :class:`EvalSpan`: the id keys Refinery consumes are invisible to rules (SEMANTICS.md 2.1);
    ``ids`` names its trace-id and parent-id fields."""
    consumed = consume_ids(event, ids)
    fields = {k: v for k, v in event.items() if k not in consumed.keys}
    return make_span(fields, consumed.parent_key is not None)


@dataclass(slots=True)
class EvalTrace:
    """A trace at decision time: its id and spans in arrival order."""

    trace_id: str
    spans: list[EvalSpan]
    root: EvalSpan | None = field(init=False)

    def __post_init__(self) -> None:
        # processSpan sets trace.RootSpan for every arriving root span: the last one wins.
        roots = [s for s in self.spans if s.is_root]
        self.root = roots[-1] if roots else None


# ---------------------------------------------------------------------------------------------------------------
# Conditions: value lookup (extractValueFromSpan) and matching (setMatchesFunction / conditionMatchesValue)

Match = Callable[[Any, bool], bool]


def _compare_holds(op: Operator, c: int) -> bool:
    return {
        Operator.EQ: c == 0,
        Operator.NE: c != 0,
        Operator.GT: c > 0,
        Operator.GE: c >= 0,
        Operator.LT: c < 0,
        Operator.LE: c <= 0,
    }[op]


def _ordered(op: Operator, a: Any, b: Any) -> bool:
    """Go's ``a <op> b`` on two values of one type (IEEE semantics for floats: NaN compares false except !=)."""
    if op is Operator.EQ:
        return bool(a == b)
    if op is Operator.NE:
        return bool(a != b)
    if op is Operator.GT:
        return bool(a > b)
    if op is Operator.GE:
        return bool(a >= b)
    if op is Operator.LT:
        return bool(a < b)
    return bool(a <= b)


def _typed_compare(op: Operator, dt: Datatype | None, value: Any) -> Match | None:
    """``setCompareOperators``; None when Refinery leaves ``Matches`` nil (then the untyped fallback runs)."""
    if dt is Datatype.STRING:
        cv = gostr.go_v(value)
        return lambda v, exists: _ordered(op, gostr.go_v(v), cv)  # a missing field compares as "<nil>"
    if dt is Datatype.INT or dt is Datatype.FLOAT:
        conv = gostr.to_int if dt is Datatype.INT else gostr.to_float
        cvn = conv(value)
        if cvn is None:
            return None  # Init error "could not convert": silently untyped
        return lambda v, exists: exists and (n := conv(v)) is not None and _ordered(op, n, cvn)
    if dt is Datatype.BOOL and op in (Operator.EQ, Operator.NE):
        cvb = gostr.to_bool(value)
        return lambda v, exists: exists and _ordered(op, gostr.to_bool(v), cvb)
    return None  # no Datatype, or bool with > < >= <=: untyped


def _in_set(op: Operator, dt: Datatype | None, value: Any) -> Match | None:
    """``setInBasedOperators``: a set of stringified / int / float values; None on an Init error."""
    if isinstance(value, (tuple, list)):
        items: list[Any] = list(value)
    elif isinstance(value, (str, float)) or (type(value) is int and gostr.INT64_MIN <= value <= gostr.INT64_MAX):
        items = [value]
    else:
        return None  # a bool or missing Value: "value must be a list of scalars"
    test: Match
    if dt is None or dt is Datatype.STRING:
        sset = {gostr.go_v(x) for x in items}
        test = lambda v, exists: gostr.go_v(v) in sset  # noqa: E731
    elif dt is Datatype.INT:
        iset = {n for x in items if (n := gostr.to_int(x)) is not None}
        test = lambda v, exists: (n := gostr.to_int(v)) is not None and n in iset  # noqa: E731
    elif dt is Datatype.FLOAT:
        fset = {f for x in items if (f := gostr.to_float(x)) is not None and f == f}  # Go: NaN is in no set
        test = lambda v, exists: (f := gostr.to_float(v)) is not None and f in fset  # noqa: E731
    else:
        return None  # "cannot use in operator with boolean datatype"
    if op is Operator.IN:
        return test
    return lambda v, exists: not test(v, exists)


def _regex(value: Any) -> Match | None:
    import re2

    options = re2.Options()
    options.log_errors = False
    try:
        rx = re2.compile(gostr.go_v(value), options)
    except Exception:  # invalid RE2 pattern: Init error, the condition never matches
        return None

    def match(v: Any, exists: bool) -> bool:
        try:
            return rx.search(gostr.go_v(v)) is not None
        except Exception:  # text that is not valid UTF-8 (lone surrogates)
            return False

    return match


def build_matcher(cond: Condition) -> Match | None:
    """Go's ``condition.Matches`` for a condition, or None where ``Init()`` leaves it nil."""
    op, dt, value = cond.operator, cond.datatype, cond.value
    if op is Operator.EXISTS:
        return lambda v, exists: exists
    if op is Operator.NOT_EXISTS:
        return lambda v, exists: not exists
    if op in COMPARISON_OPERATORS:
        assert op is not None
        return _typed_compare(op, dt, value)
    if op in (Operator.STARTS_WITH, Operator.CONTAINS, Operator.DOES_NOT_CONTAIN):
        cv = gostr.go_v(value)
        if op is Operator.STARTS_WITH:
            return lambda v, exists: gostr.go_v(v).startswith(cv)
        if op is Operator.CONTAINS:
            return lambda v, exists: cv in gostr.go_v(v)
        return lambda v, exists: cv not in gostr.go_v(v)
    if op in (Operator.IN, Operator.NOT_IN):
        return _in_set(op, dt, value)
    if op is Operator.MATCHES:
        return _regex(value)
    return None  # has-root-span (handled by the trace loop) and a missing Operator


def fallback_match(cond: Condition, value: Any, exists: bool) -> bool:
    """``conditionMatchesValue``: used when ``Matches`` is nil; knows exists, not-exists and untyped compares."""
    if not exists:
        return cond.operator is Operator.NOT_EXISTS
    if cond.operator is Operator.EXISTS:
        return True
    if cond.operator in COMPARISON_OPERATORS:
        assert cond.operator is not None
        c = gostr.compare(value, list(cond.value) if isinstance(cond.value, (tuple, list)) else cond.value)
        return c is not None and _compare_holds(cond.operator, c)
    return False


@dataclass(slots=True)
class CompiledCondition:
    """A condition with its matcher built once (regexes compiled, sets built)."""

    cond: Condition
    matcher: Match | None
    check_nested: bool

    def matches(self, value: Any, exists: bool) -> bool:
        if self.matcher is None:
            return fallback_match(self.cond, value, exists)
        return self.matcher(value, exists)

    def extract(self, trace: EvalTrace, span: EvalSpan) -> tuple[Any, bool]:
        """``extractValueFromSpan`` (SEMANTICS.md 2.4)."""
        cond = self.cond
        if cond.single_field and cond.fields and cond.fields[0] == NUM_DESCENDANTS:
            # Trace.DescendantCount: every span, span event and link held, root included.
            return len(trace.spans), True
        selected = span
        for name in cond.fields:
            selected = span
            key = name
            if name.startswith(ROOT_PREFIX):
                if trace.root is None:
                    continue  # no root yet: skip this name
                selected, key = trace.root, name[len(ROOT_PREFIX) :]
            if key in selected.fields:
                return selected.fields[key], True  # the first name present wins, even if the test then fails
        if self.check_nested:
            # gjson on json.Marshal(span.Data) of whichever span the loop selected last; names are NOT stripped.
            doc = selected.marshal_fields if selected.marshal_fields is not None else selected.fields
            for name in cond.fields:
                try:
                    found = gostr.gjson_get(doc, name)
                except gostr.NotMarshalable:
                    break
                if found is not None:
                    return found, True  # nested values are always strings
        return None, False

    def holds_on(self, trace: EvalTrace, span: EvalSpan) -> bool:
        value, exists = self.extract(trace, span)
        return self.matches(value, exists)


def compile_condition(cond: Condition, check_nested: bool) -> CompiledCondition:
    return CompiledCondition(cond, build_matcher(cond), check_nested)


# ---------------------------------------------------------------------------------------------------------------
# Rules and samplers


@dataclass(slots=True)
class CompiledRule:
    rule: Rule
    conditions: list[CompiledCondition] | None

    def matches(self, trace: EvalTrace) -> bool:
        """Whether the rule matches (scope-aware; an invalid scope matches everything)."""
        scope = self.rule.effective_scope
        if scope == "invalid":
            return True  # GetSampleRate's default branch: logged, treated as matched
        if self.conditions is None:
            return True  # `rule.Conditions == nil`
        if scope == "span":
            return self._span_scope(trace)
        return self._trace_scope(trace)

    def _trace_scope(self, trace: EvalTrace) -> bool:
        # ruleMatchesTrace: each condition may be satisfied by a different span.
        assert self.conditions is not None
        for cc in self.conditions:
            if cc.cond.operator is Operator.HAS_ROOT_SPAN:
                if (trace.root is not None) != gostr.to_bool(cc.cond.value):
                    return False
                continue
            if not any(cc.holds_on(trace, s) for s in trace.spans):
                return False
        return True

    def _span_scope(self, trace: EvalTrace) -> bool:
        # ruleMatchesSpanInTrace: one span must satisfy every condition. has-root-span gets no special case here
        # (no field: "missing", and Matches is nil), so it never holds.
        assert self.conditions is not None
        return any(all(cc.holds_on(trace, s) for cc in self.conditions) for s in trace.spans)


def sampler_result(s: Sampler | None, trace_id: str) -> tuple[Keep, int, str]:
    """A non-rules sampler's (keep, rate, reason) for one trace."""
    if s is None:
        return Keep.TRUE, 1, "bad_rule"
    if s.kind == SamplerKind.DETERMINISTIC:
        rate = s.params.get("SampleRate")
        rate = rate if type(rate) is int else 0
        if rate <= 1:
            return Keep.TRUE, 1, "deterministic/always"
        keep = gostr.deterministic_keep(trace_id, rate)
        return (Keep.TRUE if keep else Keep.FALSE), rate, "deterministic/chance"
    # Stateful samplers: nominal rate (throughput samplers: 1, see the module docstring).
    rate = s.nominal_rate if s.kind in (SamplerKind.DYNAMIC, SamplerKind.EMA_DYNAMIC) else None
    return Keep.SAMPLED, (rate if rate is not None else 1) & UINT64_MASK, _STATEFUL_REASON.get(s.kind, s.kind)


class CompiledSampler:
    """A sampler entry ready to decide traces."""

    def __init__(self, sampler: SamplerConfig | RulesBasedSampler | Sampler) -> None:
        choice = sampler.choice if isinstance(sampler, SamplerConfig) else sampler
        self.choice = choice
        self.rules: list[CompiledRule] = []
        if isinstance(choice, RulesBasedSampler):
            nested = choice.check_nested_fields
            for r in choice.rules:
                conds = None if r.conditions is None else [compile_condition(c, nested) for c in r.conditions]
                self.rules.append(CompiledRule(r, conds))

    def decide(self, trace: EvalTrace) -> Decision:
        """``RulesBasedSampler.GetSampleRate`` (SEMANTICS.md 2.2), or the top-level sampler's answer."""
        n = len(trace.spans)
        if self.choice is None:
            return Decision(trace.trace_id, n, None, None, Keep.TRUE, 1, "no rule matched")
        if isinstance(self.choice, Sampler):
            keep, rate, reason = sampler_result(self.choice, trace.trace_id)
            return Decision(trace.trace_id, n, None, None, keep, rate, reason, self.choice.kind)
        for i, cr in enumerate(self.rules):
            if cr.matches(trace):
                return self._outcome(i, cr.rule, trace)
        return Decision(trace.trace_id, n, None, None, Keep.TRUE, 1, "no rule matched")

    def matches(self, trace: EvalTrace) -> list[bool]:
        return [cr.matches(trace) for cr in self.rules]

    @staticmethod
    def _outcome(i: int, rule: Rule, trace: EvalTrace) -> Decision:
        scope = rule.effective_scope
        prefix = {"trace": "rules/trace/", "span": "rules/span/"}.get(scope, "rules/invalid scope/")
        n = len(trace.spans)
        if rule.samplers:
            ds = rule.sampler
            if ds is None:  # no downstream sampler could be built
                return Decision(trace.trace_id, n, i, rule.name, Keep.TRUE, 1, prefix + "bad_rule:" + rule.name)
            keep, rate, reason = sampler_result(ds, trace.trace_id)
            return Decision(trace.trace_id, n, i, rule.name, keep, rate, f"{prefix}{rule.name}:{reason}", ds.kind)
        # Keep.SAMPLED: rand.Intn(SampleRate) == 0
        return Decision(trace.trace_id, n, i, rule.name, Keep(rule.plain_keep), rule.reported_rate, prefix + rule.name)


def decide_trace(
    sampler: SamplerConfig | RulesBasedSampler | Sampler,
    trace_id: str,
    spans: Sequence[Mapping[str, Any]],
    ids: IdFields = DEFAULT_ID_FIELDS,
) -> Decision:
    """Decide one trace from its raw events (arrival order). See the module docstring."""
    return CompiledSampler(sampler).decide(EvalTrace(trace_id, [span_from_event(e, ids) for e in spans]))


def rule_matches(
    sampler: SamplerConfig | RulesBasedSampler | Sampler,
    trace_id: str,
    spans: Sequence[Mapping[str, Any]],
    ids: IdFields = DEFAULT_ID_FIELDS,
) -> list[bool]:
    """For each rule, whether its conditions match the trace (regardless of earlier rules)."""
    return CompiledSampler(sampler).matches(EvalTrace(trace_id, [span_from_event(e, ids) for e in spans]))


# ---------------------------------------------------------------------------------------------------------------
# Corpora

_MISSING = object()


def corpus_traces(corpus: Corpus) -> list[EvalTrace]:
    """Every trace of a corpus rebuilt as typed spans (a field's value is whichever typed column is non-null; the
    NULL marker means present with null; JSON columns are decoded), spans in arrival order."""
    df = corpus.scan().collect().sort([TRACE_ID, ARRIVAL])
    n = df.height
    columns: list[tuple[str, list[Any]]] = []
    for fname, by_type in corpus.field_columns.items():
        values: list[Any] = [_MISSING] * n
        for vtype, col in by_type.items():
            data = df.get_column(col).to_list()
            for i, v in enumerate(data):
                if v is None:
                    continue
                if vtype is ValueType.NULL:
                    values[i] = None
                elif vtype is ValueType.JSON:
                    values[i] = json.loads(v)
                else:
                    values[i] = v
        columns.append((fname, values))
    trace_ids = df.get_column(TRACE_ID).to_list()
    parents = df.get_column(PARENT_ID).to_list()
    traces: list[EvalTrace] = []
    cur_id: str | None = None
    cur: list[EvalSpan] = []
    for i in range(n):
        fields = {f: vals[i] for f, vals in columns if vals[i] is not _MISSING}
        span = make_span(fields, has_parent=bool(parents[i]))
        if trace_ids[i] != cur_id:
            if cur_id is not None:
                traces.append(EvalTrace(cur_id, cur))
            cur_id, cur = trace_ids[i], []
        cur.append(span)
    if cur_id is not None:
        traces.append(EvalTrace(cur_id, cur))
    return traces


def trace_key(trace: EvalTrace, fields: Sequence[str], use_trace_length: bool) -> str:
    """Refinery's ``traceKey.build`` for one trace (``sample/trace_key.go``), transcribed: sorted fields; per
    non-root field the distinct values over the spans in arrival order (at most 99 stored over all fields: the
    100th distinct value is counted, not stored, and collection stops), written sorted with a bullet after each
    (an empty string never: ``prevStr`` starts empty) and a comma after the field; then ``%v,`` of each ``root.``
    field on the root span; then the span count with ``UseTraceLength``."""
    ordered = sorted(fields)
    span_fields = [f for f in ordered if not f.startswith(ROOT_PREFIX)]
    root_fields = [f[len(ROOT_PREFIX) :] for f in ordered if f.startswith(ROOT_PREFIX)]
    values: list[dict[str, None]] = [{} for _ in span_fields]
    unique = 0
    done = False
    for i, name in enumerate(span_fields):
        for span in trace.spans:
            if name not in span.fields:
                continue
            if unique >= 100:
                done = True
                break
            text = gostr.key_string(span.fields[name])
            if text not in values[i]:
                unique += 1
                if unique < 100:
                    values[i][text] = None
        if done:
            break
    out: list[str] = []
    for vals in values:
        if not vals:
            continue
        prev = ""
        for text in sorted(vals):
            if text != prev:
                out.append(text + "\u2022")
            prev = text
        out.append(",")
    if trace.root is not None:
        for name in root_fields:
            if name in trace.root.fields:
                out.append(gostr.go_v(trace.root.fields[name]) + ",")
    if use_trace_length:
        out.append(str(len(trace.spans)))
    return "".join(out)


def trace_keys(corpus: Corpus, ids: pl.Series, fields: Sequence[str], use_trace_length: bool) -> pl.DataFrame:
    """:func:`trace_key` of each trace of ``ids`` (the reference engine's key builder for stateful samplers)."""
    wanted = set(ids.to_list())
    rows = [(t.trace_id, trace_key(t, fields, use_trace_length)) for t in corpus_traces(corpus) if t.trace_id in wanted]
    return pl.DataFrame(rows, schema={"trace_id": pl.String, "key": pl.String}, orient="row")


def decide_corpus(
    sampler: SamplerConfig | RulesBasedSampler | Sampler, corpus: Corpus, with_matches: bool = False
) -> EvalResult:
    """Decide every trace of ``corpus``; with ``with_matches`` also the per-rule match columns ``m0``..."""
    compiled = CompiledSampler(sampler)
    traces = corpus_traces(corpus)
    decisions = decisions_frame([compiled.decide(t) for t in traces])
    matches = None
    if with_matches:
        rows = {t.trace_id: compiled.matches(t) for t in traces}
        ids = decisions.get_column("trace_id").to_list()
        data: dict[str, Any] = {"trace_id": ids}
        for j in range(len(compiled.rules)):
            data[f"m{j}"] = [rows[t][j] for t in ids]
        schema: dict[str, Any] = {"trace_id": pl.String, **{f"m{j}": pl.Boolean for j in range(len(compiled.rules))}}
        matches = pl.DataFrame(data, schema=schema)
    return EvalResult(decisions=decisions, matches=matches)
