"""Conformance vectors (../shared/refinery/conformance.json) as test inputs, through the real code paths.

Stable API, shared by the engine tests:

* :func:`load_vectors` -- the 58 decision vectors (skips the test when ../shared is absent);
* :func:`load_validation_vectors` -- the validator vectors;
* :func:`corpus_from_vector` -- the vector's trace written as flat JSON lines and ingested with
  ``nectar.corpus.ingest.ingest_paths`` (the real ingest path), opened as a :class:`Corpus`;
* :func:`rules_sampler` -- the vector's rules (+ ``check_nested_fields``) written as a YAML rules file and loaded
  through ``nectar.refinery.loader`` (so the loader is exercised too), as a :class:`RulesBasedSampler`;
* :func:`rules_yaml` -- that YAML text; :func:`vector_trace_id`, :func:`expected` -- helpers for assertions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nectar.corpus.layout import Corpus
from nectar.refinery.loader import load_rules
from nectar.refinery.model import RulesBasedSampler
from tests.conftest import shared_path


def _conformance() -> dict[str, Any]:
    return dict(json.loads(shared_path("refinery", "conformance.json").read_text(encoding="utf-8")))


def load_vectors() -> list[dict[str, Any]]:
    """The decision vectors (``id``, ``rules``, ``trace``, ``expect``, optional ``check_nested_fields``)."""
    return list(_conformance()["vectors"])


def load_validation_vectors() -> list[dict[str, Any]]:
    """The validator vectors (``id``, ``yaml``, ``expect_valid``, ``messages``)."""
    return list(_conformance()["validation_vectors"])


def vector_trace_id(vector: dict[str, Any]) -> str:
    for span in vector["trace"]:
        for key in ("trace.trace_id", "traceId"):
            if isinstance(span.get(key), str) and span[key]:
                return str(span[key])
    raise ValueError(f"vector {vector['id']} has no trace id")


def expected(vector: dict[str, Any]) -> tuple[str | None, str, int, str]:
    """(rule, keep as the Decision's keep text, rate, reason)."""
    e = vector["expect"]
    keep = {True: "true", False: "false"}.get(e["keep"], e["keep"])
    return e["rule"], keep, e["rate"], e["reason"]


def corpus_from_vector(vector: dict[str, Any], tmp_path: Path) -> Corpus:
    """Ingest the vector's trace (one JSON object per line) into a fresh corpus under ``tmp_path``."""
    from nectar.corpus.ingest import ingest_paths

    src = tmp_path / f"{vector['id']}.jsonl"
    src.write_text("".join(json.dumps(s) + "\n" for s in vector["trace"]), encoding="utf-8")
    out = tmp_path / f"{vector['id']}-corpus"
    ingest_paths([str(src)], out)
    return Corpus.open(out)


def _yaml_scalar(v: Any) -> str:
    # JSON scalars are valid YAML 1.2 scalars with the same type for yaml.v3: quoted strings stay strings,
    # 5 is an int, 5.0 a float, true a bool.
    return json.dumps(v, ensure_ascii=False)


def _yaml_block(v: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                lines.append(f"{pad}{_yaml_scalar(k)}:")
                lines += _yaml_block(x, indent + 2)
            else:
                lines.append(f"{pad}{_yaml_scalar(k)}: {_yaml_flow(x)}")
    else:
        for x in v:
            if isinstance(x, dict) and x:
                sub = _yaml_block(x, indent + 2)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines += sub[1:]
            else:
                lines.append(f"{pad}- {_yaml_flow(x)}")
    return lines


def _yaml_flow(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_flow(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_yaml_scalar(k)}: {_yaml_flow(x)}" for k, x in v.items()) + "}"
    return _yaml_scalar(v)


def rules_yaml(vector: dict[str, Any]) -> str:
    """A complete rules file (block YAML) holding the vector's rules under ``__default__``."""
    rbs: dict[str, Any] = {"Rules": vector["rules"]}
    if vector.get("check_nested_fields"):
        rbs["CheckNestedFields"] = True
    doc = {"RulesVersion": 2, "Samplers": {"__default__": {"RulesBasedSampler": rbs}}}
    return "\n".join(_yaml_block(doc, 0)) + "\n"


# Vectors whose rules Refinery v3.2.2's validator rejects although they describe runtime behaviour: a mixed
# int/float Value list ("must be a slice of all the same type"). They are loaded with validation off.
RUNTIME_ONLY_VECTORS = frozenset({"in-float-datatype"})


def rules_sampler(vector: dict[str, Any]) -> RulesBasedSampler:
    """The vector's RulesBasedSampler, loaded from YAML text through the real loader and validator.

    A downstream DeterministicSampler is accepted (the v3.2.2 validator rejects it, the runtime runs it); the
    vectors in :data:`RUNTIME_ONLY_VECTORS` are loaded without validation.
    """
    rf = load_rules(
        rules_yaml(vector),
        f"{vector['id']}.yaml",
        accept_downstream_deterministic=True,
        validate=vector["id"] not in RUNTIME_ONLY_VECTORS,
    )
    rbs = rf.samplers["__default__"].rules_based
    assert rbs is not None
    return rbs


def vector_params(kind: str = "vectors") -> list[Any]:
    """``pytest.param`` per vector (id = vector id) for parametrize; a single skipped param when ../shared is absent.

    ``kind`` is ``vectors`` or ``validation_vectors``.
    """
    import pytest

    from tests.conftest import SHARED

    path = SHARED / "refinery" / "conformance.json"
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{path} not present"), id="no-shared")]
    data = json.loads(path.read_text(encoding="utf-8"))[kind]
    return [pytest.param(v, id=v["id"]) for v in data]
