"""``nectar.toml``: project defaults for every command.

Found by looking in the current folder and then its parents (like git). Paths in it are relative to the folder
that holds it. Every command also works without one, given explicit paths.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nectar.errors import NectarError, Span
from nectar.refinery.model import PARENT_ID_KEYS, REFINERY_VERSION, TRACE_ID_KEYS
from nectar.util import decode_utf8

CONFIG_NAME = "nectar.toml"

# Default field aliases. Refinery's `Fields` takes the first name present on a span, so an alias becomes a
# `Fields` list in the compiled rule (SEMANTICS.md 2.4).
DEFAULT_ALIASES: dict[str, tuple[str, ...]] = {
    "http.status": ("http.response.status_code", "http.status_code"),
    "http.method": ("http.request.method", "http.method"),
    "http.route": ("http.route",),
    "duration": ("duration_ms",),
    "service": ("service.name",),
}

# What counts as an error trace for the prover (any span matching it), and for explain and propose: OpenTelemetry's
# ERROR status (Refinery's OTLP receiver sets `error: true`) or an HTTP 5xx in either status field (the alias).
DEFAULT_ERROR_DEFINITION = "error == true or http.status >= 500"
DEFAULT_REFINERY_VERSION = REFINERY_VERSION


@dataclass(frozen=True, slots=True)
class Config:
    """Settings from ``nectar.toml`` (or the defaults when there is none)."""

    path: Path | None = None  # the nectar.toml file, if one was found
    policy: Path | None = None
    corpus: Path | None = None
    rules: Path | None = None
    lock: Path | None = None
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ALIASES))
    # How much of real traffic the corpus represents (10 = one span in ten); None: use the corpus manifest's.
    corpus_sample_rate: float | None = None
    error_definition: str = DEFAULT_ERROR_DEFINITION
    environments: tuple[str, ...] = ("__default__",)
    propose_model: str | None = None  # [propose] model: the Claude model `nectar propose` uses
    # [refinery]: the deployment the rules run in
    cluster_size: int = 1  # Refinery peers (UseClusterSize divides throughput goals by it)
    trace_id_fields: tuple[str, ...] = TRACE_ID_KEYS  # Refinery's IDFieldNames
    parent_id_fields: tuple[str, ...] = PARENT_ID_KEYS  # Refinery's ParentIdFieldNames
    refinery_version: str = DEFAULT_REFINERY_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


def find_config(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def _err(path: Path, text: str, message: str, key: str | None = None, hint: str | None = None) -> NectarError:
    """An error about ``nectar.toml``, pointing at the line that sets ``key`` when it can be found."""
    span = None
    if key is not None:
        leaf = key.rsplit(".", 1)[-1]
        for i, line in enumerate(text.splitlines(), 1):
            m = re.match(rf"\s*(\"?{re.escape(leaf)}\"?)\s*=", line)
            if m:
                span = Span(str(path), i, m.start(1) + 1, len(m.group(1)), text)
                break
    return NectarError(message, span, hint)


def load_config(start: Path | None = None, explicit: Path | None = None) -> Config:
    """Load ``nectar.toml`` (``explicit`` if given, else the nearest one); defaults if there is none."""
    path = explicit or find_config(start)
    if path is None:
        return Config()
    try:
        text = decode_utf8(path.read_bytes(), str(path))
    except OSError as exc:
        raise NectarError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        span = Span(str(path), int(m.group(1)), int(m.group(2)), 1, text) if m else None
        raise NectarError(_TOML_POS.sub("", msg).strip(), span) from exc
    return parse_config(path, text, data)


def parse_config(path: Path, text: str, data: Mapping[str, Any]) -> Config:
    base = path.parent
    known = {"project", "aliases", "budget", "prove", "compile", "propose", "refinery"}
    for key in data:
        if key not in known:
            raise _err(path, text, f"unknown section [{key}]", None, f"known sections: {', '.join(sorted(known))}")

    def section(name: str) -> Mapping[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise _err(path, text, f"[{name}] must be a table", name)
        return value

    def opt_path(sec: Mapping[str, Any], key: str, where: str) -> Path | None:
        v = sec.get(key)
        if v is None:
            return None
        if not isinstance(v, str) or not v:
            raise _err(path, text, f"{where}.{key} must be a path (a non-empty string)", key)
        return (base / v).resolve() if not Path(v).is_absolute() else Path(v)

    project = section("project")
    for key in project:
        if key not in {"policy", "corpus", "rules", "lock"}:
            raise _err(path, text, f"unknown key project.{key}", key, "known keys: policy, corpus, rules, lock")

    aliases: dict[str, tuple[str, ...]] = dict(DEFAULT_ALIASES)
    for name, targets in section("aliases").items():
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise _err(path, text, f"alias {name!r} must name a field or a list of fields", name)
        aliases[name] = tuple(targets)

    budget = section("budget")
    rate = budget.get("corpus_sample_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 1):
        raise _err(
            path,
            text,
            "budget.corpus_sample_rate must be a number >= 1 (10 means the corpus is 1 in 10)",
            "corpus_sample_rate",
        )

    prove = section("prove")
    err_def = prove.get("error_definition", DEFAULT_ERROR_DEFINITION)
    if not isinstance(err_def, str) or not err_def.strip():
        raise _err(path, text, "prove.error_definition must be a match expression (a string)", "error_definition")

    comp = section("compile")
    envs = comp.get("environments", ["__default__"])
    if not isinstance(envs, list) or not envs or not all(isinstance(e, str) and e for e in envs):
        raise _err(path, text, "compile.environments must be a non-empty list of names", "environments")

    propose = section("propose")
    for key in propose:
        if key != "model":
            raise _err(path, text, f"unknown key propose.{key}", key, "known keys: model")
    model = propose.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise _err(path, text, "propose.model must be a model id (a non-empty string)", "model")

    refinery = section("refinery")
    refinery_keys = ("cluster_size", "trace_id_fields", "parent_id_fields", "version")
    for key in refinery:
        if key not in refinery_keys:
            raise _err(path, text, f"unknown key refinery.{key}", key, "known keys: " + ", ".join(refinery_keys))
    cluster = refinery.get("cluster_size", 1)
    if isinstance(cluster, bool) or not isinstance(cluster, int) or cluster < 1:
        raise _err(path, text, "refinery.cluster_size must be a whole number >= 1 (Refinery peers)", "cluster_size")

    def names(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        v = refinery.get(key)
        if v is None:
            return default
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
            raise _err(path, text, f"refinery.{key} must be a non-empty list of field names", key)
        return tuple(v)

    version = refinery.get("version", DEFAULT_REFINERY_VERSION)
    if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise _err(path, text, 'refinery.version must be a version like "3.2.2"', "version")

    return Config(
        path=path,
        policy=opt_path(project, "policy", "project"),
        corpus=opt_path(project, "corpus", "project"),
        rules=opt_path(project, "rules", "project"),
        lock=opt_path(project, "lock", "project"),
        aliases=aliases,
        corpus_sample_rate=float(rate) if rate is not None else None,
        error_definition=err_def,
        environments=tuple(envs),
        propose_model=model,
        cluster_size=cluster,
        trace_id_fields=names("trace_id_fields", TRACE_ID_KEYS),
        parent_id_fields=names("parent_id_fields", PARENT_ID_KEYS),
        refinery_version=version,
        extra={k: v for k, v in data.items() if k not in known},
    )
