"""``python -m benchmarks.reference_run CORPUS POLICY``: the prover on the reference evaluator (trace at a time,
plain Python), for the benchmark's naive baseline. The CLI does not offer this engine for ``prove`` on purpose:
it belongs in the tests, as the oracle the vectorized engines are checked against."""

from __future__ import annotations

import sys
from pathlib import Path

from nectar.config import Config
from nectar.corpus.layout import Corpus
from nectar.policy.load import load_policy
from nectar.prove import prove_policy


def main(argv: list[str]) -> int:
    """Prove POLICY against CORPUS with ``engine="reference"``; print whether it passed."""
    config = Config()
    policy = load_policy(Path(argv[1]), config.aliases)
    report = prove_policy(policy, Corpus.open(Path(argv[0])), config, engine="reference")
    print("passed" if report.passed else "failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
