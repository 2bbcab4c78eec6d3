"""Load a Refinery rules file: decode like yaml.v3, validate like Refinery v3.2.2, build the IR.

``load_rules(source, filename)`` returns a :class:`~nectar.refinery.model.RulesFile` or raises an
:class:`~nectar.errors.ErrorGroup` of positioned :class:`~nectar.errors.NectarError` s whose messages are exactly
Refinery's (``config/validate.go`` ``Metadata.ValidateRules`` + ``Metadata.Validate`` against
``config/metadata/rulesMeta.yaml``, SEMANTICS.md section 3), e.g. ``Within sampler __default__: Within field
RulesBasedSampler.Rules[0]: field Rules.Drop must be a bool``. Each error points at the offending key.

Validation is structural only, as in Refinery: a file that validates may still be wrong at runtime (missing
Operator, bad regex, ...); :mod:`nectar.refinery.lints` reports those.

One deliberate switch: Refinery v3.2.2's validator rejects a downstream ``DeterministicSampler`` (issue #1857,
fixed by PR #1856 after 3.2.2) although the runtime supports it. ``accept_downstream_deterministic=True`` accepts
it (lint R019 then warns).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nectar.errors import ErrorGroup, NectarError, Span
from nectar.refinery import gostr
from nectar.refinery.model import (
    Condition,
    Datatype,
    Operator,
    Rule,
    RulesBasedSampler,
    RulesFile,
    Sampler,
    SamplerConfig,
    SamplerKind,
)
from nectar.refinery.yamlv3 import NO_POS, Pos, YList, YMap, go_sharp_v, go_type, go_v, is_string_map, loads
from nectar.util import edit_distance

# ---------------------------------------------------------------------------------------------------------------
# rulesMeta.yaml (v3.2.2), as data: group -> fields (name, type, validations). Validations are (kind, arg).

_DOWNSTREAM = ("DynamicSampler", "EMADynamicSampler", "EMAThroughputSampler", "WindowedThroughputSampler",
               "TotalThroughputSampler")  # fmt: skip
OPERATOR_CHOICES = tuple(op.value for op in Operator)
DATATYPE_CHOICES = tuple(d.value for d in Datatype)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    type: str
    validations: tuple[tuple[str, Any], ...] = ()
    choices: tuple[str, ...] = ()


_REQ = ("requiredInGroup", None)
_UNIT = (("minimum", 0), ("maximum", 1))
_FIELD_LIST = _Field("FieldList", "stringarray", (_REQ, ("notempty", None)))
_MAX_KEYS = _Field("MaxKeys", "int")
_TRACE_LEN = _Field("UseTraceLength", "bool")
_GOAL_TPS = _Field("GoalThroughputPerSec", "int", (_REQ, ("minimum", 1)))

GROUPS: dict[str, tuple[_Field, ...]] = {
    "Samplers": (),
    "DeterministicSampler": (_Field("SampleRate", "int", (_REQ,)),),
    "DynamicSampler": (
        _Field("SampleRate", "int", (_REQ,)),
        _Field("ClearFrequency", "duration"),
        _FIELD_LIST,
        _MAX_KEYS,
        _TRACE_LEN,
    ),
    "EMADynamicSampler": (
        _Field("GoalSampleRate", "int", (_REQ,)),
        _Field("AdjustmentInterval", "duration"),
        _Field("Weight", "float", _UNIT),
        _Field("AgeOutValue", "float", _UNIT),
        _Field("BurstMultiple", "float"),
        _Field("BurstDetectionDelay", "int"),
        _FIELD_LIST,
        _MAX_KEYS,
        _TRACE_LEN,
    ),
    "EMAThroughputSampler": (
        _GOAL_TPS,
        _Field("UseClusterSize", "bool"),
        _Field("InitialSampleRate", "int"),
        _Field("AdjustmentInterval", "duration"),
        _Field("Weight", "float", _UNIT),
        _Field("AgeOutValue", "float", _UNIT),
        _Field("BurstMultiple", "float"),
        _Field("BurstDetectionDelay", "int"),
        _FIELD_LIST,
        _MAX_KEYS,
        _TRACE_LEN,
    ),
    "WindowedThroughputSampler": (
        _GOAL_TPS,
        _Field("UseClusterSize", "bool"),
        _Field("UpdateFrequency", "duration"),
        _Field("LookbackFrequency", "duration"),
        _FIELD_LIST,
        _MAX_KEYS,
        _TRACE_LEN,
    ),
    "TotalThroughputSampler": (
        _GOAL_TPS,
        _Field("UseClusterSize", "bool"),
        _Field("ClearFrequency", "duration"),
        _FIELD_LIST,
        _MAX_KEYS,
        _TRACE_LEN,
    ),
    "RulesBasedSampler": (_Field("Rules", "objectarray"), _Field("CheckNestedFields", "bool")),
    "Rules": (
        _Field("Name", "string"),
        _Field("Sampler", "object", (("validChildren", _DOWNSTREAM),)),
        _Field("Drop", "bool"),
        _Field("SampleRate", "int"),
        _Field("Conditions", "objectarray"),
        _Field("Scope", "string", (("choice", None),), ("trace", "span")),
    ),
    "Conditions": (
        _Field("Field", "string", (("conflictsWith", "Fields"),)),
        _Field("Fields", "stringarray", (("elementType", "string"), ("conflictsWith", "Field"))),
        _Field("Operator", "string", (("choice", None),), OPERATOR_CHOICES),
        _Field("Value", "sliceorscalar"),
        _Field("Datatype", "string", (("choice", None),), DATATYPE_CHOICES),
    ),
}
SAMPLER_KINDS = frozenset(SamplerKind.TOP_LEVEL_ORDER)


def _get_field(key: str) -> _Field | None:
    parts = key.split(".")
    if len(parts) != 2:
        return None
    for f in GROUPS.get(parts[0], ()):
        if f.name == parts[1]:
            return f
    return None


def closest_names(word: str) -> list[str]:
    """``Metadata.ClosestNamesTo``: group and field names at the smallest edit distance from the last dotted part.

    Kept exact, quirk included: only repeats of the first name are dropped, so a field defined in several groups
    can be suggested several times ("did you mean FieldList or MaxKeys or MaxKeys?").
    """
    word = word.split(".")[-1]
    words: list[tuple[int, str]] = []
    for g, fields in GROUPS.items():
        words.append((edit_distance(g, word), g))
        words.extend((edit_distance(f.name, word), f.name) for f in fields)
    words.sort()
    out = [words[0][1]]
    for d, name in words[1:]:
        if d != words[0][0]:
            break
        if name != words[0][1]:
            out.append(name)
    return out


# ---------------------------------------------------------------------------------------------------------------
# The validator (Metadata.Validate / ValidateRules)


@dataclass(frozen=True, slots=True)
class Issue:
    """One validation message (Refinery's text) and the position of the key it is about."""

    message: str
    pos: Pos
    downstream_deterministic: bool = False

    def within(self, prefix: str) -> Issue:
        return Issue(prefix + self.message, self.pos, self.downstream_deterministic)


def _validate_datatype(k: str, v: Any, typ: str) -> str:
    if v is None:
        return f"field {k} must not be nil"
    scalar = isinstance(v, (str, int, float, bool)) and go_type(v) != "uint64"
    if typ == "object" and not is_string_map(v):
        return f"field {k} must be an object"
    if typ == "objectarray" and not isinstance(v, list):
        return f"field {k} must be an array of objects"
    if typ == "sliceorscalar":
        if isinstance(v, list):
            if len(v) > 1:
                first = go_type(v[0])
                for i, a in enumerate(v):
                    if go_type(a) != first:
                        return f"field {k} must be a slice of all the same type, but element {i} is {go_type(a)}"
        elif not scalar:
            return f"field {k} must be a list of string, int, float, or bool"
    if typ == "string" and not isinstance(v, str):
        return f"field {k} must be a string but {go_v(v)} is {go_type(v)}"
    if typ == "int" and go_type(v) != "int":
        return f"field {k} must be an int"
    if typ == "bool" and not isinstance(v, bool):
        return f"field {k} must be a bool"
    if typ == "float" and go_type(v) not in ("float64", "int"):
        return f"field {k} must be a float but {go_v(v)} is {go_type(v)}"
    if typ == "stringarray":
        if not isinstance(v, list):
            return f"field {k} must be a string array but {go_v(v)} is {go_type(v)}"
        for a in v:
            if not isinstance(a, str):
                return f"field {k} must be a string array but contains non-string {go_sharp_v(a)}"
    if typ == "duration" and not (isinstance(v, str) and gostr.parse_duration(v) is not None):
        return f"field {k} ({go_v(v)}) must be a valid duration like '3m30s' or '100ms'"
    return ""


def _flatten(data: YMap) -> Iterator[tuple[str, Any, Pos]]:
    for k, v in data.items():
        kt = _key(k)
        if is_string_map(v):
            for kk, vv in v.items():
                yield f"{kt}.{kk}", vv, v.key_pos.get(kk, v.pos)
        else:
            yield kt, v, data.key_pos.get(k, data.pos)


def _key(k: Any) -> str:
    return k if isinstance(k, str) else go_v(k)


def _as_float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        d = gostr.parse_duration(v)
        return None if d is None else float(d // 1_000_000)
    return None


def _validate(data: YMap) -> list[Issue]:
    """``Metadata.Validate`` on one map of groups (a sampler entry, ``{Rules: rule}``, ``{Conditions: cond}``)."""
    errors: list[Issue] = []
    for k in data:
        if _key(k) not in GROUPS:
            guesses = " or ".join(closest_names(_key(k)))
            errors.append(Issue(f"unknown group {_key(k)}; did you mean {guesses}?", data.key_pos.get(k, data.pos)))
    flat = list(_flatten(data))
    for k, v, pos in flat:
        fld = _get_field(k)
        if fld is None:
            if k not in GROUPS:
                errors.append(Issue(f"unknown field {k}; did you mean {' or '.join(closest_names(k))}?", pos))
            continue
        e = _validate_datatype(k, v, fld.type)
        if e:
            errors.append(Issue(e, pos))
            continue
        if fld.type == "object" and is_string_map(v):
            errors += [i.within(f"Within field {k}: ") for i in _validate(v)]
        elif fld.type == "objectarray" and isinstance(v, YList):
            sub_name = k.split(".")[1]
            for i, a in enumerate(v):
                sub = YMap(v.item_pos[i])
                sub[sub_name] = a
                sub.key_pos[sub_name] = sub.value_pos[sub_name] = v.item_pos[i]
                errors += [e2.within(f"Within field {k}[{i}]: ") for e2 in _validate(sub)]
        for kind, arg in fld.validations:
            if kind == "choice" and not (isinstance(v, str) and v in fld.choices):
                errors.append(Issue(f"field {k} ({go_v(v)}) must be one of [{' '.join(fld.choices)}]", pos))
            elif kind in ("minimum", "maximum"):
                fv = _as_float(v)
                if fv is None:
                    errors.append(Issue(f"{go_sharp_v(v)} ({go_type(v)}) cannot be interpreted as a quantity", pos))
                elif (kind == "minimum" and fv < arg) or (kind == "maximum" and fv > arg):
                    word = "at least" if kind == "minimum" else "at most"
                    errors.append(Issue(f"field {k} ({go_v(v)}) must be {word} {arg}", pos))
            elif kind == "notempty" and v == "":
                errors.append(Issue(f"field {k} must not be empty", pos))
            elif kind == "validChildren" and is_string_map(v):
                for kk in v:
                    if kk not in arg:
                        errors.append(
                            Issue(
                                f"field {k} contains unknown key {kk}",
                                v.key_pos.get(kk, pos),
                                downstream_deterministic=kk == SamplerKind.DETERMINISTIC,
                            )
                        )
    flat_pos = {k: pos for k, _, pos in flat}
    for gname, fields in GROUPS.items():
        for fld in fields:
            for kind, arg in fld.validations:
                here = f"{gname}.{fld.name}"
                if kind == "requiredInGroup" and gname in data and here not in flat_pos:
                    msg = f"the group {gname} is missing its required field {fld.name}"
                    errors.append(Issue(msg, data.key_pos.get(gname, data.pos)))
                elif kind == "conflictsWith" and f"{gname}.{arg}" in flat_pos and here in flat_pos:
                    msg = f"the group {gname} includes {arg}, which conflicts with {fld.name}"
                    errors.append(Issue(msg, flat_pos[here]))
    return errors


def validate_data(data: Any) -> list[Issue]:
    """``Metadata.ValidateRules``: Refinery v3.2.2's verdict on a decoded rules file (empty list = valid)."""
    if not is_string_map(data):
        return [Issue(f"a rules file must be a mapping, but {go_v(data)} is {go_type(data)}", NO_POS)]
    errors: list[Issue] = []
    for k, v in data.items():
        pos = data.key_pos.get(k, data.pos)
        if k == "RulesVersion":
            if go_type(v) != "int":
                errors.append(Issue(f"RulesVersion must be an int, but {go_v(v)} is {go_type(v)}", pos))
            elif v != 2:
                errors.append(Issue(f"RulesVersion must be 2, but it is {v}", pos))
        elif k == "Samplers":
            if not is_string_map(v):
                errors.append(Issue(f"Samplers must be a collection of samplers, but {go_v(v)} is {go_type(v)}", pos))
            else:
                for sk, sv in v.items():
                    if not is_string_map(sv):
                        msg = f"Sampler {_key(sk)} must be a map, but {go_v(sv)} is {go_type(sv)}"
                        errors.append(Issue(msg, v.key_pos.get(sk, pos)))
                if "__default__" not in v:
                    errors.append(Issue("Samplers must include a __default__ sampler", pos))
        else:
            errors.append(Issue(f"unknown top-level key {_key(k)}", pos))
    if "RulesVersion" not in data:
        errors.append(Issue("RulesVersion is required", data.pos))
    if "Samplers" not in data:
        errors.append(Issue("Samplers is required", data.pos))
    if errors:
        return errors
    for sk, sv in data["Samplers"].items():
        errors += [i.within(f"Within sampler {_key(sk)}: ") for i in _validate(sv)]
    return errors


# ---------------------------------------------------------------------------------------------------------------
# Positions of IR parts (for lints and later errors)


@dataclass(slots=True)
class RulesPositions:
    """Where each sampler, rule, condition and key sits in the source. Keys are tuples:
    ``(env,)``, ``(env, rule)``, ``(env, rule, key)``, ``(env, rule, cond)``, ``(env, rule, cond, key)`` with
    ``rule``/``cond`` ints and ``key`` a string."""

    filename: str
    source: str | None
    at: dict[tuple[Any, ...], Pos] = field(default_factory=dict)

    def span(self, *key: Any) -> Span | None:
        """The span of the most specific known prefix of ``key``."""
        for n in range(len(key), 0, -1):
            p = self.at.get(tuple(key[:n]))
            if p is not None:
                return p.span(self.filename, self.source)
        return None


# ---------------------------------------------------------------------------------------------------------------
# IR


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


class _IRBuilder:
    def __init__(self, positions: RulesPositions) -> None:
        self.positions = positions

    def fail(self, message: str, pos: Pos) -> NectarError:
        return NectarError(message, span=pos.span(self.positions.filename, self.positions.source))

    def samplers(self, data: YMap) -> RulesFile:
        samplers = data["Samplers"]
        assert isinstance(samplers, YMap)
        out: dict[str, SamplerConfig] = {}
        for env, body in samplers.items():
            key = _key(env)
            self.positions.at[(key,)] = samplers.key_pos.get(env, samplers.pos)
            out[key] = self.sampler_config(key, body)
        return RulesFile(samplers=out, rules_version=2)

    def sampler_config(self, env: str, body: YMap) -> SamplerConfig:
        rules_based = None
        others: list[Sampler] = []
        for kind, cfg in body.items():
            if kind not in SAMPLER_KINDS or not is_string_map(cfg):
                continue  # stray groups (Rules:, Conditions:) validate but mean nothing; nil kinds are not chosen
            if kind == SamplerKind.RULES_BASED:
                rules_based = self.rules_based(env, cfg)
            else:
                others.append(Sampler(kind=kind, params=_plain(cfg)))
        return SamplerConfig(rules_based=rules_based, others=tuple(others))

    def rules_based(self, env: str, cfg: YMap) -> RulesBasedSampler:
        rules = cfg.get("Rules")
        out: list[Rule] = []
        if not isinstance(rules, YList):
            rules = YList(cfg.pos)
        for i, r in enumerate(rules):
            pos = rules.item_pos[i]
            if not is_string_map(r):
                raise self.fail(
                    f"Within sampler {env}: rule {i} is {go_v(r)}, not a mapping; Refinery cannot load it", pos
                )
            self.positions.at[(env, i)] = pos
            for k in r:
                self.positions.at[(env, i, _key(k))] = r.key_pos[k]
            out.append(self.rule(env, i, r))
        return RulesBasedSampler(rules=tuple(out), check_nested_fields=cfg.get("CheckNestedFields") is True)

    def rule(self, env: str, i: int, r: YMap) -> Rule:
        conds = r.get("Conditions")
        conditions: tuple[Condition, ...] | None = None
        if isinstance(conds, YList):
            built: list[Condition] = []
            for j, c in enumerate(conds):
                pos = conds.item_pos[j]
                if not is_string_map(c):
                    msg = f"Within sampler {env}: rule {i} condition {j} is {go_v(c)}, not a mapping"
                    raise self.fail(msg + "; Refinery cannot load it", pos)
                self.positions.at[(env, i, j)] = pos
                for k in c:
                    self.positions.at[(env, i, j, _key(k))] = c.key_pos[k]
                built.append(self.condition(c))
            conditions = tuple(built)
        samplers: list[Sampler] = []
        smap = r.get("Sampler")
        if isinstance(smap, YMap) and smap.string_keys:
            samplers = [Sampler(kind=k, params=_plain(v) if is_string_map(v) else {}) for k, v in smap.items()]
        scope = r.get("Scope")
        rate = r.get("SampleRate", 0)
        name = r.get("Name")
        return Rule(
            name=name if isinstance(name, str) else "",
            conditions=conditions,
            scope=scope if isinstance(scope, str) else None,
            sample_rate=rate if isinstance(rate, int) and not isinstance(rate, bool) else 0,
            drop=r.get("Drop") is True,
            samplers=tuple(samplers),
        )

    @staticmethod
    def condition(c: YMap) -> Condition:
        if "Fields" in c and isinstance(c["Fields"], list):
            fields, single = tuple(str(f) for f in c["Fields"]), False
        elif isinstance(c.get("Field"), str):
            fields, single = (c["Field"],), True
        else:
            fields, single = (), True
        op_text = c.get("Operator")
        operator = Operator(op_text) if isinstance(op_text, str) and op_text in OPERATOR_CHOICES else None
        value: Any = None
        if "Value" in c:
            raw = c["Value"]
            value = tuple(_plain(x) for x in raw) if isinstance(raw, list) else _plain(raw)
        dt = c.get("Datatype")
        return Condition(
            fields=fields,
            operator=operator,
            value=value,
            datatype=Datatype(dt) if isinstance(dt, str) and dt in DATATYPE_CHOICES else None,
            single_field=single,
            operator_text=op_text if isinstance(op_text, str) and operator is None else None,
        )


# ---------------------------------------------------------------------------------------------------------------
# Entry points


def _json_as_refinery(obj: Any, pos: Pos = NO_POS) -> Any:
    """A JSON rules file as Refinery decodes it: every number is a float64 (so validation fails, as in Refinery)."""
    if isinstance(obj, dict):
        m = YMap(pos)
        for k, v in obj.items():
            m[k] = _json_as_refinery(v)
            m.key_pos[k] = m.value_pos[k] = pos
        return m
    if isinstance(obj, list):
        lst = YList(pos)
        for v in obj:
            lst.append(_json_as_refinery(v))
            lst.item_pos.append(pos)
        return lst
    if isinstance(obj, int) and not isinstance(obj, bool):
        return float(obj)
    return obj


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # not a usable path (too long, NUL byte...): it is rules text
        return False


def _read(source: str | Path, filename: str | None) -> tuple[str, str]:
    if isinstance(source, Path) or (
        "\n" not in source and (source.endswith((".yaml", ".yml", ".json", ".toml")) or _is_file(source))
    ):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NectarError(f"cannot read rules file {str(path)!r}: {exc}") from exc
        return text, filename or str(path)
    return source, filename or "<rules>"


def decode_rules(text: str, filename: str = "<rules>") -> Any:
    """The rules file decoded as Refinery decodes it (yaml.v3 for YAML, float64 numbers for ``.json``)."""
    if filename.endswith(".toml"):
        raise NectarError("TOML rules files are not supported: write YAML (Refinery validates only YAML correctly)")
    if filename.endswith(".json"):
        try:
            return _json_as_refinery(json.loads(text))
        except json.JSONDecodeError as exc:
            raise NectarError(f"invalid JSON: {exc.msg}", span=Span(filename, exc.lineno, exc.colno, 1, text)) from None
    data = loads(text, filename)
    return YMap(NO_POS) if data is None else data


def validate_rules(
    source: str | Path, filename: str | None = None, *, accept_downstream_deterministic: bool = False
) -> list[NectarError]:
    """Refinery v3.2.2's validation messages for a rules file, as positioned errors (empty: valid).

    A YAML syntax error is returned as the only error.
    """
    text, fname = _read(source, filename)
    try:
        data = decode_rules(text, fname)
    except NectarError as exc:
        return [exc]
    return _validation_errors(data, text, fname, accept_downstream_deterministic)


def _validation_errors(data: Any, text: str, fname: str, accept_downstream_deterministic: bool) -> list[NectarError]:
    issues = validate_data(data)
    if accept_downstream_deterministic:
        issues = [i for i in issues if not i.downstream_deterministic]
    hint = "Refinery v3.2.2 rejects this file at startup (config/validate.go); `refinery --validate` reports it too"
    return [NectarError(i.message, span=i.pos.span(fname, text), hint=hint) for i in issues]


def load_rules_with_positions(
    source: str | Path,
    filename: str | None = None,
    *,
    accept_downstream_deterministic: bool = False,
    validate: bool = True,
) -> tuple[RulesFile, RulesPositions]:
    """Like :func:`load_rules`, also returning where each sampler, rule and condition is in the source."""
    text, fname = _read(source, filename)
    try:
        data = decode_rules(text, fname)  # once: validation reads the same decoded document
    except NectarError as exc:
        if validate:
            raise ErrorGroup([exc]) from None  # as validate_rules reports it
        raise
    if validate:
        errors = _validation_errors(data, text, fname, accept_downstream_deterministic)
        if errors:
            raise ErrorGroup(errors)
    if not (
        is_string_map(data)
        and is_string_map(data.get("Samplers"))
        and all(is_string_map(v) for v in data["Samplers"].values())
    ):
        raise NectarError(
            "not a rules file: expected RulesVersion and a Samplers map of sampler maps",
            span=Span(fname, 1, 1, 1, text),
        )
    positions = RulesPositions(fname, text)
    return _IRBuilder(positions).samplers(data), positions


def load_rules(
    source: str | Path,
    filename: str | None = None,
    *,
    accept_downstream_deterministic: bool = False,
    validate: bool = True,
) -> RulesFile:
    """Load and validate a rules file into the IR.

    ``source`` is a :class:`~pathlib.Path`, a path string ending in ``.yaml``/``.yml``/``.json``, or the YAML
    text itself (then ``filename`` names it in messages). Raises :class:`~nectar.errors.ErrorGroup` with every
    Refinery validation message, positioned at the offending key, or a positioned :class:`NectarError` for a
    YAML syntax error. Never raises anything else on bad input. ``validate=False`` skips Refinery's validation
    (to evaluate what Refinery would run with ``--no-validate``); the file must still have the rules-file shape.
    """
    return load_rules_with_positions(
        source, filename, accept_downstream_deterministic=accept_downstream_deterministic, validate=validate
    )[0]
