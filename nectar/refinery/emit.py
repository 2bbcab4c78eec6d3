"""Serialize the Refinery rules IR (:mod:`nectar.refinery.model`) to YAML text, deterministically and defensively.

A small hand-written emitter rather than a YAML library's dumper, so that every byte is decided here (SEMANTICS.md
1.7, 3.3: Refinery decodes rules with ``gopkg.in/yaml.v3`` and validates them against ``rulesMeta.yaml``):

* every string is double-quoted with YAML escapes (names, operators, fields, values, environment names), so that
  YAML can never turn ``"500"``, ``"true"``, ``"yes"``, ``"2026-01-01"``, ``"017"`` or ``"null"`` into another type;
* ints are written as decimal ints; floats always carry a ``.`` or an exponent (``5000.0``, ``1e+16``), so that
  yaml.v3 reads a float64 and not an int; ``.inf``/``.nan`` in YAML spelling;
* key order is fixed (rulesMeta.yaml's group order), indentation is two spaces, lists of scalars are flow lists;
* nothing depends on dict iteration of user data except the order the IR already fixes (environments, rules).

``load_rules(emit_rules(x)) == x`` for every rules file the IR can hold (checked by the tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nectar.refinery.loader import GROUPS
from nectar.refinery.model import Condition, Rule, RulesBasedSampler, RulesFile, Sampler, SamplerConfig, SamplerKind

INDENT = "  "

# Characters yaml.v3 (and the YAML spec) need escaped inside a double-quoted scalar.
_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\0": "\\0",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
    "\x85": "\\N",
    "\xa0": "\\_",
    "\u2028": "\\L",
    "\u2029": "\\P",
}


def quote(text: str) -> str:
    """A YAML double-quoted scalar for ``text``: printable characters as they are, everything else escaped."""
    out: list[str] = []
    for ch in text:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable() and ch != "\ufeff":
            out.append(ch)
        else:
            cp = ord(ch)
            out.append(f"\\x{cp:02X}" if cp <= 0xFF else f"\\u{cp:04X}" if cp <= 0xFFFF else f"\\U{cp:08X}")
    return '"' + "".join(out) + '"'


def scalar(value: Any) -> str:
    """One YAML scalar that yaml.v3 decodes to exactly ``value``'s Go type (bool, int, float64, string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)  # shortest round-trip digits; always has "." or "e" ("5000.0", "1e+16", "5e-324")
        return text if ("." in text or "e" in text) else text + ".0"
    if isinstance(value, str):
        return quote(value)
    raise TypeError(f"cannot write {type(value).__name__} as a YAML scalar")  # pragma: no cover


def _flow(values: Iterable[Any]) -> str:
    return "[" + ", ".join(scalar(v) for v in values) + "]"


def _value_lines(key: str, value: Any, indent: str) -> list[str]:
    """``key: value`` at ``indent``; maps nest, lists of scalars are flow lists."""
    if isinstance(value, Mapping):
        lines = [f"{indent}{key}:"]
        for k in _param_order(value, None):
            lines += _value_lines(k, value[k], indent + INDENT)
        if len(lines) == 1:
            return [f"{indent}{key}: {{}}"]
        return lines
    if isinstance(value, (list, tuple)):
        return [f"{indent}{key}: {_flow(value)}"]  # sampler settings hold only lists of scalars (FieldList)
    if value is None:
        return [f"{indent}{key}: null"]
    return [f"{indent}{key}: {scalar(value)}"]


def _param_order(params: Mapping[str, Any], kind: str | None) -> list[str]:
    """Sampler settings in rulesMeta.yaml's order for the group, then any others sorted."""
    known = [f.name for f in GROUPS.get(kind, ())] if kind else []
    first = [k for k in known if k in params]
    return first + sorted(k for k in params if k not in first)


def _sampler_lines(sampler: Sampler, indent: str) -> list[str]:
    lines = [f"{indent}{sampler.kind}:"]
    for k in _param_order(sampler.params, sampler.kind):
        lines += _value_lines(k, sampler.params[k], indent + INDENT)
    if len(lines) == 1:
        return [f"{indent}{sampler.kind}: {{}}"]
    return lines


def _condition_lines(cond: Condition, indent: str) -> list[str]:
    """One condition as list-item lines (the first starts with ``- ``)."""
    body: list[str] = []
    if cond.single_field and len(cond.fields) == 1:
        body.append(f"Field: {quote(cond.fields[0])}")
    elif cond.fields or not cond.single_field:
        body.append(f"Fields: {_flow(cond.fields)}")
    if cond.operator is not None:
        body.append(f"Operator: {quote(cond.operator.value)}")
    elif cond.operator_text is not None:
        body.append(f"Operator: {quote(cond.operator_text)}")
    if cond.value is not None:
        v = cond.value
        body.append(f"Value: {_flow(v) if isinstance(v, tuple) else scalar(v)}")
    if cond.datatype is not None:
        body.append(f"Datatype: {quote(cond.datatype.value)}")
    if not body:
        return [f"{indent}- {{}}"]
    return [f"{indent}- {body[0]}"] + [f"{indent}  {b}" for b in body[1:]]


def _rule_lines(rule: Rule, indent: str) -> list[str]:
    """One rule as list-item lines. Every rule states what it does: ``SampleRate``, ``Drop: true`` or a ``Sampler``
    (a rule with none of them silently drops, SEMANTICS.md 2.8; here a missing rate is written out as 0)."""
    inner = indent + INDENT
    lines = [f"{indent}- Name: {quote(rule.name)}"]
    if rule.scope is not None:
        lines.append(f"{inner}Scope: {quote(rule.scope)}")
    if rule.conditions is not None:
        if not rule.conditions:
            lines.append(f"{inner}Conditions: []")
        else:
            lines.append(f"{inner}Conditions:")
            for c in rule.conditions:
                lines += _condition_lines(c, inner + INDENT)
    if rule.drop:
        lines.append(f"{inner}Drop: true")
    if rule.sample_rate != 0 or not (rule.drop or rule.samplers):
        lines.append(f"{inner}SampleRate: {rule.sample_rate}")
    if rule.samplers:
        lines.append(f"{inner}Sampler:")
        for s in rule.samplers:
            lines += _sampler_lines(s, inner + INDENT)
    return lines


def _rules_based_lines(rbs: RulesBasedSampler, indent: str) -> list[str]:
    lines = [f"{indent}{SamplerKind.RULES_BASED}:"]
    inner = indent + INDENT
    if rbs.check_nested_fields:
        lines.append(f"{inner}CheckNestedFields: true")
    if rbs.rules:
        lines.append(f"{inner}Rules:")
        for r in rbs.rules:
            lines += _rule_lines(r, inner + INDENT)
    else:
        lines.append(f"{inner}Rules: []")
    return lines


def _sampler_config_lines(cfg: SamplerConfig, indent: str) -> list[str]:
    lines: list[str] = []
    for kind in SamplerKind.TOP_LEVEL_ORDER:
        if kind == SamplerKind.RULES_BASED:
            if cfg.rules_based is not None:
                lines += _rules_based_lines(cfg.rules_based, indent)
            continue
        for s in cfg.others:
            if s.kind == kind:
                lines += _sampler_lines(s, indent)
    return lines


def emit_rules(rules: RulesFile, header: Sequence[str] = ()) -> str:
    """The rules file as YAML text (ends with a newline). ``header`` lines become ``# `` comments at the top.

    Environments are written in the IR's order with ``__default__`` first; rules in their order.
    """
    lines = [("# " + part).rstrip() for h in header for part in (h.splitlines() or [""])]
    lines.append(f"RulesVersion: {rules.rules_version}")
    lines.append("Samplers:")
    envs = sorted(rules.samplers, key=lambda e: e != "__default__")  # stable: keeps the IR's order otherwise
    for env in envs:
        lines.append(f"{INDENT}{quote(env)}:")
        body = _sampler_config_lines(rules.samplers[env], INDENT * 2)
        if not body:
            lines[-1] += " {}"
        lines += body
    return "\n".join(lines) + "\n"


__all__ = ["emit_rules", "quote", "scalar"]
