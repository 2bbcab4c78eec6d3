"""Policy files: TOON text -> positioned nodes (:mod:`nectar.policy.toon`) -> a typed :class:`~nectar.policy.ir.Policy`.

Both spellings of the top-level object give the same policy: the README's header form
(``nectar_policy{version,name,budget_per_second,rules}:`` then one value per line) and standard TOON
(``nectar_policy:`` then ``version: 1`` ...). Every value is validated here, once, with its position.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
from collections.abc import Mapping
from pathlib import Path

import lark
from lark import Lark, Token, Tree

from nectar.config import DEFAULT_ALIASES
from nectar.errors import ErrorGroup, NectarError, Span
from nectar.policy import ir
from nectar.policy.expr import Origin, grammar_text, parse_expr
from nectar.policy.toon import TArray, TNode, TObject, TPrim, parse_toon
from nectar.refinery import gostr
from nectar.util import decode_utf8, file_kind

ROOT_KEY = "nectar_policy"
POLICY_FIELDS = ("version", "name", "description", "budget_per_second", "rules", "must_keep", "accept")
RULE_COLUMNS = ("name", "description", "match", "action", "priority")
REQUIRED_RULE_COLUMNS = ("name", "match", "action")
MUST_KEEP_COLUMNS = ("name", "match")
ACCEPT_COLUMNS = ("check", "rule", "reason")
SUPPORTED_VERSIONS = (1,)
MAX_POLICY_BYTES = 16 << 20  # a policy is a few KiB; read no more than this (a pipe may never end)


def load_policy(path: str | Path, aliases: Mapping[str, tuple[str, ...]] | None = None) -> ir.Policy:
    """Read and validate a policy file."""
    _, text = read_policy_file(path)
    return parse_policy(text, str(path), aliases)


def read_policy_file(path: str | Path) -> tuple[bytes, str]:
    """A policy file's bytes and its text: the one way every command reads a policy.

    Errors are :class:`NectarError` (exit 2) naming the file: missing, a folder or a device (``/dev/zero`` would
    never end), larger than :data:`MAX_POLICY_BYTES`, unreadable, or not UTF-8 (then positioned at the first bad
    byte: ``file:line:col``, the line and a caret, :func:`nectar.util.decode_utf8`). A pipe is read (``<(...)``).
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            kind = file_kind(os.fstat(fh.fileno()).st_mode)
            if kind is not None and kind != "a named pipe (FIFO)":  # a pipe is fine: `nectar check <(...)`
                raise NectarError(f"{p} is {kind}, not a policy file")
            data = fh.read(MAX_POLICY_BYTES + 1)
    except FileNotFoundError:
        raise NectarError(
            f"policy file {str(p)!r} not found", hint="create one with `nectar init DIR` or `nectar propose`"
        ) from None
    except IsADirectoryError:
        raise NectarError(
            f"{p} is a folder, not a policy file", hint=f"pass the policy file, e.g. {p / 'policy.toon'}"
        ) from None
    except OSError as exc:
        raise NectarError(f"cannot read {p}: {exc.strerror or exc}") from None
    if len(data) > MAX_POLICY_BYTES:
        raise NectarError(f"{p} is larger than {MAX_POLICY_BYTES >> 20} MiB: too large for a policy file")
    return data, decode_utf8(data, str(p))


def parse_policy(text: str, file: str = "<policy>", aliases: Mapping[str, tuple[str, ...]] | None = None) -> ir.Policy:
    """Parse and validate policy text. Raises :class:`NectarError` (or :class:`ErrorGroup`) with positions."""
    doc = parse_toon(text, file)
    return _Loader(file, text, aliases if aliases is not None else DEFAULT_ALIASES).policy(doc)


class _Loader:
    def __init__(self, file: str, source: str, aliases: Mapping[str, tuple[str, ...]]) -> None:
        self.file = file
        self.source = source
        self.aliases = aliases
        self.diagnostics: list[ir.Diagnostic] = []

    def policy(self, doc: TObject) -> ir.Policy:
        keys = doc.keys()
        if ROOT_KEY not in keys:
            span = doc.entries[0][1] if doc.entries else doc.span
            raise NectarError(
                f"expected the top-level key {ROOT_KEY!r}",
                span,
                "a policy starts with `nectar_policy:` (see `nectar init`)",
            )
        for k, kspan, _ in doc.entries:
            if k != ROOT_KEY:
                raise NectarError(f"unexpected top-level key {k!r}", kspan, f"everything goes under {ROOT_KEY!r}")
        body = doc.get(ROOT_KEY)
        if not isinstance(body, TObject):
            raise NectarError(f"{ROOT_KEY!r} must be an object", self.node_span(body))
        for k, kspan, _ in body.entries:
            if k not in POLICY_FIELDS:
                raise NectarError(f"unknown policy field {k!r}", kspan, f"known fields: {', '.join(POLICY_FIELDS)}")
        version = self.required(body, "version")
        if not (isinstance(version, TPrim) and isinstance(version.value, int) and not isinstance(version.value, bool)):
            raise NectarError("version must be a whole number", self.node_span(version))
        if version.value not in SUPPORTED_VERSIONS:
            raise NectarError(
                f"unsupported policy version {version.value}",
                version.span,
                f"this nectar reads version {', '.join(map(str, SUPPORTED_VERSIONS))}",
            )
        name = self.text(self.required(body, "name"), "name")
        if not name.strip():
            raise NectarError("the policy name is empty", self.node_span(body.get("name")))
        description = self.text(body.get("description"), "description") if body.get("description") else ""
        budget = None
        if (bnode := body.get("budget_per_second")) is not None:
            if not (
                isinstance(bnode, TPrim) and isinstance(bnode.value, (int, float)) and not isinstance(bnode.value, bool)
            ):
                raise NectarError("budget_per_second must be a number (events per second)", self.node_span(bnode))
            if not bnode.value > 0 or math.isinf(bnode.value):
                raise NectarError("budget_per_second must be more than 0", bnode.span)
            budget = float(bnode.value)
        rules = self.rules(self.required(body, "rules"))
        mk_node = body.get("must_keep")
        must_keep = self.must_keep(mk_node) if mk_node is not None else ()
        acc_node = body.get("accept")
        accept = self.accept(acc_node, rules, must_keep) if acc_node is not None else ()
        self.check_priorities(rules)
        return ir.Policy(
            version=int(version.value),
            name=name,
            rules=rules,
            budget_per_second=budget,
            description=description,
            must_keep=must_keep,
            accept=accept,
            diagnostics=tuple(self.diagnostics),
            path=self.file,
        )

    # ------------------------------------------------------------------ helpers
    def node_span(self, node: TNode | None) -> Span | None:
        return node.span if node is not None else None

    def required(self, obj: TObject, key: str) -> TNode:
        node = obj.get(key)
        if node is None:
            raise NectarError(f"missing {key!r}", obj.span, f"add `{key}` to {ROOT_KEY}")
        return node

    def text(self, node: TNode | None, what: str) -> str:
        if isinstance(node, TPrim) and node.value is not None:
            # An unquoted cell like 404 decodes as a number; as a name or description it means its text.
            return node.value if isinstance(node.value, str) else node.raw
        raise NectarError(f"{what} must be text", self.node_span(node))

    def table_rows(self, node: TNode, what: str, columns: tuple[str, ...], required: tuple[str, ...]) -> list[TObject]:
        if not isinstance(node, TArray):
            raise NectarError(f"{what} must be a table like `{what}[N]{{{','.join(columns)}}}:`", node.span)
        if node.fields is not None:
            for f in node.fields:
                if f not in columns:
                    raise NectarError(f"unknown {what} column {f!r}", node.span, f"known columns: {', '.join(columns)}")
            for f in required:
                if f not in node.fields:
                    raise NectarError(f"the {what} table needs a {f!r} column", node.span)
        rows: list[TObject] = []
        for item in node.items:
            if not isinstance(item, TObject):
                raise NectarError(f"each entry of {what} must be an object", item.span)
            for k, kspan, _ in item.entries:
                if k not in columns:
                    raise NectarError(f"unknown {what} field {k!r}", kspan, f"known fields: {', '.join(columns)}")
            for f in required:
                if item.get(f) is None:
                    raise NectarError(f"missing {f!r}", item.span)
            rows.append(item)
        return rows

    def expression(self, node: TNode) -> tuple[ir.Expr, str]:
        if isinstance(node, TPrim) and isinstance(node.value, bool):
            return ir.Const(node.value, node.span), node.raw
        if not isinstance(node, TPrim) or not isinstance(node.value, str):
            raise NectarError(
                "match must be an expression",
                self.node_span(node),
                "for example `http.status >= 500`, or `true` for every trace",
            )
        cols = node.cols
        line = node.span.line
        text = node.value

        def locate(offset: int) -> tuple[int, int]:
            if not cols:
                return line, node.span.column
            return line, cols[offset] if offset < len(cols) else cols[-1] + 1

        parsed = parse_expr(text, Origin(self.file, self.source, locate), self.aliases)
        self.diagnostics.extend(parsed.diagnostics)
        return parsed.expr, text

    def rules(self, node: TNode) -> tuple[ir.PolicyRule, ...]:
        rows = self.table_rows(node, "rules", RULE_COLUMNS, REQUIRED_RULE_COLUMNS)
        if not rows:
            raise NectarError("the policy has no rules", node.span, "add at least a catch-all: `rest,...,true,keep,0`")
        out: list[ir.PolicyRule] = []
        errors: list[NectarError] = []
        names: dict[str, Span] = {}
        for row in rows:
            try:
                rule = self.rule(row)
            except NectarError as exc:
                errors.append(exc)
                continue
            if rule.name in names:
                errors.append(
                    NectarError(
                        f"duplicate rule name {rule.name!r}",
                        row.key_span("name"),
                        f"first used at line {names[rule.name].line}",
                    )
                )
                continue
            names[rule.name] = row.key_span("name") or row.span
            out.append(rule)
        if errors:
            raise errors[0] if len(errors) == 1 else ErrorGroup(errors)
        return tuple(out)

    def rule(self, row: TObject) -> ir.PolicyRule:
        name = self.text(row.get("name"), "a rule name").strip()
        if not name:
            raise NectarError("a rule name is empty", row.key_span("name"))
        match_node = row.get("match")
        assert match_node is not None
        match, match_text = self.expression(match_node)
        action_node = row.get("action")
        assert action_node is not None
        action, action_text = self.action(action_node)
        if isinstance(action, ir.SampleAction) and (note := sample_warning(action)):
            self.diagnostics.append(ir.Diagnostic(note, action_node.span, f"write sample(1/{action.rate}) to say so"))
        priority = 0
        if (pnode := row.get("priority")) is not None:
            if not (isinstance(pnode, TPrim) and isinstance(pnode.value, int) and not isinstance(pnode.value, bool)):
                raise NectarError("priority must be a whole number", pnode.span, "higher priorities are tried first")
            priority = pnode.value
        description = ""
        if (dnode := row.get("description")) is not None:
            description = self.text(dnode, "a description")
        return ir.PolicyRule(name, match, match_text, action, action_text, priority, description, row.span)

    def must_keep(self, node: TNode) -> tuple[ir.MustKeep, ...]:
        out = []
        seen: set[str] = set()
        for row in self.table_rows(node, "must_keep", MUST_KEEP_COLUMNS, MUST_KEEP_COLUMNS):
            name = self.text(row.get("name"), "a must_keep name").strip()
            if name in seen:
                raise NectarError(f"duplicate must_keep name {name!r}", row.key_span("name"))
            seen.add(name)
            mnode = row.get("match")
            assert mnode is not None
            expr, text = self.expression(mnode)
            out.append(ir.MustKeep(name, expr, text, row.span))
        return tuple(out)

    def accept(
        self, node: TNode, rules: tuple[ir.PolicyRule, ...], must_keep: tuple[ir.MustKeep, ...]
    ) -> tuple[ir.Accept, ...]:
        """Waivers: each names a check that can be waived and a rule of this policy, with a reason."""
        out: list[ir.Accept] = []
        seen: dict[tuple[str, str], Span] = {}
        rule_names = [r.name for r in rules]
        classes = [m.name for m in must_keep]
        for row in self.table_rows(node, "accept", ACCEPT_COLUMNS, ACCEPT_COLUMNS):
            check = self.waived_check(row, classes)
            rnode = row.get("rule")
            rule = self.text(rnode, "a rule name").strip()
            if rule not in rule_names:
                raise NectarError(
                    f"accept names rule {rule!r}, which is not a rule of this policy",
                    self.node_span(rnode),
                    _did_you_mean(rule, rule_names, "rules"),
                )
            reason = self.text(row.get("reason"), "a reason").strip()
            if not reason:
                raise NectarError(
                    "a waiver needs a reason: why this exception was reviewed and accepted",
                    self.node_span(row.get("reason")),
                )
            if (check, rule) in seen:
                raise NectarError(
                    f"duplicate waiver of check {check!r} for rule {rule!r}",
                    row.span,
                    f"first declared at line {seen[(check, rule)].line}",
                )
            seen[(check, rule)] = row.span
            out.append(ir.Accept(check, rule, reason, row.span))
        return tuple(out)

    def waived_check(self, row: TObject, classes: list[str]) -> str:
        """The ``check`` cell of a waiver: ``errors``, ``must_keep`` or ``must_keep:<class>`` (a declared class)."""
        cnode = row.get("check")
        check = self.text(cnode, "a check name").strip()
        span = self.node_span(cnode)
        base, sep, cls = check.partition(":")
        base, cls = base.strip(), cls.strip()
        choices = [*ir.WAIVABLE_CHECKS, *(f"must_keep:{c}" for c in classes)]
        if base not in ir.WAIVABLE_CHECKS or (sep and base != "must_keep"):
            if base in ("fallback", "budget"):
                raise NectarError(
                    f"the {base} check cannot be waived: its verdict is not about traces a rule decides",
                    span,
                    f"waivable checks: {', '.join(choices)}",
                )
            raise NectarError(f"unknown check {check!r} in accept", span, _did_you_mean(check, choices, "checks"))
        if not sep:
            return base
        if cls not in classes:
            hint = _did_you_mean(cls, classes, "classes") if classes else "the policy declares no must_keep classes"
            raise NectarError(f"accept names must_keep class {cls!r}, which the policy does not declare", span, hint)
        return f"must_keep:{cls}"

    def action(self, node: TNode) -> tuple[ir.Action, str]:
        if not isinstance(node, TPrim) or not isinstance(node.value, str):
            raise NectarError(
                "action must be keep, drop, sample(P), dynamic(...), throughput(...) or deterministic(...)",
                self.node_span(node),
            )
        return parse_action(node.value, node.span, node.cols), node.value

    def check_priorities(self, rules: tuple[ir.PolicyRule, ...]) -> None:
        by_priority: dict[int, list[ir.PolicyRule]] = {}
        for r in rules:
            by_priority.setdefault(r.priority, []).append(r)
        for prio, same in sorted(by_priority.items(), reverse=True):
            if len(same) > 1:
                names = ", ".join(repr(r.name) for r in same)
                self.diagnostics.append(
                    ir.Diagnostic(
                        f"rules {names} share priority {prio}; they are tried in file order",
                        same[1].span,
                        "give each rule its own priority to make the order explicit",
                    )
                )


def _did_you_mean(name: str, choices: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    listed = f"{what}: {', '.join(choices)}"
    return f"did you mean {close[0]!r}? ({listed})" if close else listed


# ------------------------------------------------------------------------------------------------ actions

ACTION_NAMES = ("keep", "drop", "sample", "dynamic", "throughput", "deterministic")


@functools.cache
def _action_parser() -> Lark:
    return Lark(grammar_text("action.lark"), parser="lalr", propagate_positions=True)


def parse_action(text: str, span: Span | None = None, cols: tuple[int, ...] = ()) -> ir.Action:
    """Parse and validate an action. ``span``/``cols`` place it in its file for error positions."""

    def at(start: int, end: int) -> Span | None:
        if span is None:
            return None
        if cols and start < len(cols):
            return Span(span.file, span.line, cols[start], max(1, min(end, len(cols)) - start), span.source)
        return span

    def fail(message: str, start: int = 0, end: int | None = None, hint: str | None = None) -> NectarError:
        return NectarError(message, at(start, end if end is not None else len(text)), hint)

    usage = (
        "keep, drop, sample(0.01), dynamic(rate=10, keys=(service.name)), throughput(per_second=100, "
        "keys=(service.name)) or deterministic(rate=10)"
    )
    try:
        tree = _action_parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        pos = getattr(exc, "pos_in_stream", None) or 0
        if isinstance(exc, lark.exceptions.UnexpectedToken) and exc.token.start_pos is not None:
            pos = exc.token.start_pos
        raise fail(f"cannot read the action {text!r}", pos, pos + 1, f"an action is {usage}") from None
    assert isinstance(tree, Tree)
    name_tok = tree.children[0]
    assert isinstance(name_tok, Token)
    name = name_tok.value
    if name not in ACTION_NAMES:
        raise fail(f"unknown action {name!r}", 0, len(name), f"an action is {usage}")
    args = [c for c in tree.children[1:] if isinstance(c, Tree)]
    if tree.data == "bare":
        if name in ("keep", "drop"):
            return ir.KeepAction(span) if name == "keep" else ir.DropAction(span)
        raise fail(f"{name} needs arguments", 0, len(text), f"an action is {usage}")
    if name in ("keep", "drop"):
        raise fail(f"{name} takes no arguments", 0, len(text))

    positional: list[Tree] = []
    keyword: dict[str, Tree] = {}
    keyword_at: dict[str, tuple[int, int]] = {}  # where each `name=value` is, for errors about the argument
    for a in args:
        if a.data == "posarg":
            positional.append(a.children[0])  # type: ignore[arg-type]
        else:
            k = a.children[0]
            assert isinstance(k, Token)
            if k.value in keyword:
                raise fail(f"{k.value}= given twice", k.start_pos or 0, k.end_pos)
            keyword[k.value] = a.children[1]  # type: ignore[assignment]
            keyword_at[k.value] = (a.meta.start_pos, a.meta.end_pos) if not a.meta.empty else (0, len(text))

    def node_pos(n: Tree) -> tuple[int, int]:
        return (n.meta.start_pos, n.meta.end_pos) if not n.meta.empty else (0, len(text))

    def number(n: Tree, what: str) -> float:
        toks = [t for t in n.children if isinstance(t, Token)]
        if n.data == "number":
            return float(toks[0].value)
        if n.data == "fraction":
            den = float(toks[1].value)
            if den == 0:
                raise fail("division by zero", *node_pos(n))
            return float(toks[0].value) / den
        if n.data == "percent":
            return float(toks[0].value) / 100.0
        raise fail(f"{what} must be a number", *node_pos(n))

    def whole(n: Tree, what: str, minimum: int = 1) -> int:
        v = number(n, what)
        if n.data != "number" or not v.is_integer() or v < minimum:
            raise fail(f"{what} must be a whole number >= {minimum}", *node_pos(n))
        if v > gostr.INT64_MAX:
            raise fail(f"{what} must be at most {gostr.INT64_MAX} (Refinery's settings are 64-bit ints)", *node_pos(n))
        return int(v)

    def keys(n: Tree) -> tuple[str, ...]:
        if n.data != "keys":
            raise fail("keys must be a list in parentheses, like keys=(service.name, http.route)", *node_pos(n))
        out = []
        for k in n.children:
            if isinstance(k, Tree):
                tok = k.children[0]
                assert isinstance(tok, Token)
                out.append(tok.value[1:-1] if k.data == "key_string" else tok.value)
        if not out:
            raise fail("keys must name at least one field (Refinery requires a FieldList)", *node_pos(n))
        return tuple(out)

    def kind_of(action: str) -> ir.SamplerVariant:
        """The ``kind=`` argument (taken out of ``keyword``); the action's first kind when it is not written."""
        kinds = ir.sampler_kinds(action)
        n = keyword.pop("kind", None)
        if n is None:
            return kinds[0]
        toks = [t for t in n.children if isinstance(t, Token)]
        if n.data == "word" and toks[0].value in kinds:
            return ir.SamplerVariant(toks[0].value)
        listed = ", ".join(f"{k} ({ir.SAMPLERS[action, k].refinery}{', the default' if k == kinds[0] else ''})"
                           for k in kinds)  # fmt: skip
        raise fail(f"{action} has no kind {text[slice(*node_pos(n))]!r}", *node_pos(n), hint=f"kinds: {listed}")

    def settings(spec: ir.SamplerSpec) -> tuple[tuple[str, ir.SettingValue], ...]:
        """The optional sampler settings given (taken out of ``keyword``), in the spec's order. A setting of
        another kind of the same action is an error that says which settings this kind takes."""
        for arg in keyword:
            if arg in spec.settings or arg in (spec.goal_arg, "keys"):
                continue
            owners = [o.kind for o in ir.SAMPLERS.values() if o.action == spec.action and arg in o.settings]
            if owners:
                takes = ", ".join(spec.settings) or "no settings"
                where = " or ".join(f"kind={k}" for k in owners)
                raise fail(
                    f"{arg} is not a setting of {spec.label} (Refinery's {spec.refinery})",
                    *keyword_at[arg],
                    hint=f"{spec.label} takes {takes}; {arg} belongs to {spec.action}({where})",
                )
        out: list[tuple[str, ir.SettingValue]] = []
        for arg, (key, kind) in spec.settings.items():
            n = keyword.pop(arg, None)
            if n is None:
                continue
            toks = [t for t in n.children if isinstance(t, Token)]
            value: ir.SettingValue
            if kind == "duration":
                if n.data != "duration" or gostr.parse_duration(toks[0].value) is None:
                    raise fail(f"{arg} must be a duration, like 30s or 1m30s", *node_pos(n))
                value = toks[0].value
            elif kind == "bool":
                if n.data != "word" or toks[0].value not in ("true", "false"):
                    raise fail(f"{arg} must be true or false", *node_pos(n))
                value = toks[0].value == "true"
            elif kind == "int":
                value = whole(n, arg, 0)
            else:
                if n.data != "number":
                    raise fail(f"{arg} must be a number", *node_pos(n))
                value = float(toks[0].value)
                if kind == "unit" and not 0 <= value <= 1:
                    raise fail(f"{arg} must be from 0 to 1 (Refinery's validator)", *node_pos(n))
            out.append((key, value))
        return tuple(out)

    def take(allowed: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Tree]:
        got = dict(keyword)
        for i, p in enumerate(positional):
            if i >= len(allowed):
                raise fail(f"{name} takes at most {len(allowed)} arguments", *node_pos(p))
            if allowed[i] in got:
                raise fail(f"{allowed[i]} given twice", *node_pos(p))
            got[allowed[i]] = p
        for k in got:
            if k not in allowed:
                hint = f"arguments: {', '.join(allowed + optional)}"
                raise fail(f"{name} has no argument {k!r}", *keyword_at.get(k, (0, len(text))), hint=hint)
        return got

    if name == "sample":
        got = take(("p",))
        if "p" not in got:
            raise fail("sample needs the share of traces to keep, like sample(0.01)", 0, len(text))
        p = number(got["p"], "the sample probability")
        if not 0 < p <= 1:
            raise fail(
                f"sample({p:g}) is out of range: the share to keep must be more than 0 and at most 1",
                *node_pos(got["p"]),
                hint="sample(0.01) keeps 1 trace in 100; use drop for none",
            )
        rate = max(1, round(1 / p))
        start, end = node_pos(got["p"])
        return ir.SampleAction(rate, text[start:end].strip(), span)
    if name in ("dynamic", "throughput"):
        spec = ir.SAMPLERS[name, kind_of(name)]
        extra = settings(spec)
        goal_arg = spec.goal_arg
        got = take((goal_arg, "keys"), ("kind", *spec.settings))
        if goal_arg not in got or "keys" not in got:
            like = f"{name}({goal_arg}={10 if name == 'dynamic' else 100}, keys=(service.name))"
            raise fail(f"{name} needs {goal_arg}= and keys=, like {like}", 0, len(text))
        goal, fields = whole(got[goal_arg], goal_arg), keys(got["keys"])
        if name == "dynamic":
            return ir.DynamicAction(goal, fields, span, extra, spec.kind)
        return ir.ThroughputAction(goal, fields, span, extra, spec.kind)
    got = take(("rate",))
    if "rate" not in got:
        raise fail("deterministic needs rate=, like deterministic(rate=10)", 0, len(text))
    return ir.DeterministicAction(whole(got["rate"], "rate"), span)


def sample_warning(action: ir.SampleAction) -> str | None:
    """A note when sample(P) is not close to 1/N: Refinery keeps 1 in a whole number N."""
    try:
        p = eval_probability(action.written)
    except ValueError:
        return None
    exact = 1 / p
    if abs(exact - action.rate) > 1e-6 * exact:
        return (
            f"sample({action.written}) keeps 1 trace in {action.rate} ({100 / action.rate:.3g}%), not exactly "
            f"{p * 100:.3g}%: Refinery's SampleRate is a whole number"
        )
    return None


def eval_probability(written: str) -> float:
    w = written.strip()
    if w.endswith("%"):
        return float(w[:-1]) / 100
    if "/" in w:
        a, b = w.split("/", 1)
        return float(a) / float(b)
    return float(w)
