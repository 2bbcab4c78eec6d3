"""Helpers for the engine tests: conformance vectors as corpora and samplers (real ingest path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nectar.corpus.ingest import ingest_paths
from nectar.corpus.layout import Corpus
from nectar.refinery.model import Condition, Datatype, Operator, Rule, RulesBasedSampler, Sampler
from tests.conftest import shared_path


def load_conformance() -> list[dict[str, Any]]:
    return list(json.loads(shared_path("refinery", "conformance.json").read_text())["vectors"])


def corpus_from_spans(spans: list[dict[str, Any]], tmp: Path, name: str = "c") -> Corpus:
    src = tmp / f"{name}.jsonl"
    src.write_text("".join(json.dumps(s) + "\n" for s in spans))
    ingest_paths([str(src)], tmp / name)
    return Corpus.open(tmp / name)


def _value(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def condition_from_dict(d: dict[str, Any]) -> Condition:
    single = "Fields" not in d
    fields = tuple(d["Fields"]) if not single else ((d["Field"],) if d.get("Field") else ())
    op = d.get("Operator")
    return Condition(
        fields=fields,
        operator=Operator(op) if op in {o.value for o in Operator} else None,
        value=_value(d.get("Value")),
        datatype=Datatype(d["Datatype"]) if d.get("Datatype") else None,
        single_field=single,
        operator_text=op,
    )


def rule_from_dict(d: dict[str, Any]) -> Rule:
    conds = d.get("Conditions")
    samplers = tuple(Sampler(k, dict(v)) for k, v in (d.get("Sampler") or {}).items())
    return Rule(
        name=d.get("Name", ""),
        conditions=None if conds is None else tuple(condition_from_dict(c) for c in conds),
        scope=d.get("Scope"),
        sample_rate=int(d.get("SampleRate", 0)),
        drop=bool(d.get("Drop", False)),
        samplers=samplers,
    )


def sampler_from_vector(v: dict[str, Any]) -> RulesBasedSampler:
    return RulesBasedSampler(
        rules=tuple(rule_from_dict(r) for r in v["rules"]), check_nested_fields=bool(v.get("check_nested_fields"))
    )


def load_conformance_or_empty() -> list[dict[str, Any]]:
    """The vectors, or [] when ../shared is absent (the test then skips)."""
    from tests.conftest import SHARED

    p = SHARED / "refinery" / "conformance.json"
    return list(json.loads(p.read_text())["vectors"]) if p.exists() else []
