"""A Refinery rules file with many rules, for the ``many_rules`` benchmark case and the scaling tests.

``python -m benchmarks.many_rules N OUT.yaml [--seed S]`` writes one ``__default__`` RulesBasedSampler with ``N``
rules (the last a catch-all) over the fields of the synthetic corpus (``nectar corpus synth``). The rules vary the
field, operator, ``Datatype``, ``Scope``, action and number of conditions, and every third rule is part of a
``name#1``/``name#2`` pair, so that replay, the lints and import's grouping all see realistic variety; most
thresholds and values are distinct per rule (as in a file with one rule per customer or route), so no per-value
work can be shared. Every rule is one Refinery accepts and ``nectar import`` lifts.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

SERVICES = ("payments", "catalog", "frontend", "search", "api", "checkout")
ROUTES = ("/healthz", "/catalog/products", "/api/search", "/products/{id}", "/checkout/cart/items", "/api/cart/items")
TIERS = ("free", "pro", "enterprise")
NAMESPACES = ("catalog", "commerce", "api", "web")


def _q(v: str) -> str:
    return json.dumps(v)


def _conditions(rng: random.Random, i: int) -> tuple[list[list[str]], bool]:
    """One to three conditions (each a list of YAML lines) and whether the rule must be ``Scope: span``."""
    templates: list[Callable[[], tuple[list[str], bool]]] = [
        lambda: (["Field: service.name", "Operator: =", f"Value: {_q(rng.choice(SERVICES))}",
                  "Datatype: string"], False),
        lambda: (["Field: user.id", "Operator: =", f"Value: {_q(f'user-{i:06d}')}"], False),
        lambda: (["Field: http.status_code", "Operator: '>='", f"Value: {400 + i % 200}", "Datatype: int"], False),
        lambda: (["Field: duration_ms", "Operator: '>'", f"Value: {50 + (i * 7) % 5000}.5", "Datatype: float"],
                 False),
        lambda: (["Field: http.route", "Operator: starts-with", f"Value: {_q(rng.choice(ROUTES)[:6 + i % 5])}"],
                 False),
        lambda: (["Field: name", "Operator: contains", f"Value: {_q(f'op{i % 997}')}"], False),
        lambda: (["Field: user.tier", "Operator: in", f"Value: [{_q(rng.choice(TIERS))}, {_q(f'tier-{i}')}]"],
                 False),
        lambda: (["Field: db.system", "Operator: exists"], False),
        lambda: (["Field: k8s.namespace.name", "Operator: '!='", f"Value: {_q(rng.choice(NAMESPACES))}"], True),
        lambda: (["Field: http.target", "Operator: matches", f"Value: {_q(f'^/api/v{i % 50}/.*')}"], False),
        lambda: (["Field: error", "Operator: =", "Value: true", "Datatype: bool"], False),
        lambda: (["Field: root.service.name", "Operator: =", f"Value: {_q(rng.choice(SERVICES))}"], False),
        lambda: (["Field: ?.NUM_DESCENDANTS", "Operator: '>='", f"Value: {20 + i % 400}", "Datatype: int"], False),
        lambda: (["Field: db.statement", "Operator: not-exists"], True),
    ]  # fmt: skip
    out: list[list[str]] = []
    span_scope = False
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        lines, span = rng.choice(templates)()
        out.append(lines)
        span_scope = span_scope or span
    return out, span_scope


def rules_yaml(n: int, seed: int = 7) -> str:
    """The text of a rules file with ``n`` rules (``n >= 1``; the last is the catch-all)."""
    rng = random.Random(seed)
    out = ["RulesVersion: 2", "Samplers:", "  __default__:", "    RulesBasedSampler:", "      Rules:"]
    i = 0
    while i < n - 1:
        first = i
        pair = i % 3 == 0 and i + 1 < n - 1
        action = rng.choice(("SampleRate: 1", "SampleRate: 5", "SampleRate: 20", "Drop: true"))
        for part in (1, 2) if pair else (0,):
            conditions, span = _conditions(rng, i)
            name = f"rule {i:06d}" if not part else f"pair {first:06d}#{part}"
            out += [f"        - Name: {_q(name)}", f"          {action}"]
            if span:
                out.append("          Scope: span")
            out.append("          Conditions:")
            for c in conditions:
                out.append(f"            - {c[0]}")
                out += [f"              {line}" for line in c[1:]]
            i += 1
    out += ["        - Name: rest", "          SampleRate: 10"]
    return "\n".join(out) + "\n"


def write_rules(n: int, path: Path, seed: int = 7) -> Path:
    """Write :func:`rules_yaml` to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rules_yaml(n, seed), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m benchmarks.many_rules N OUT.yaml [--seed S]``."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.many_rules", description=__doc__.split("\n\n")[0])
    ap.add_argument("rules", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    write_rules(args.rules, args.out, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
