"""Nectar's benchmark suite: prove, ingest and the compile/explain workflow at 1M and 10M spans, each beside a
hand-written floor. Run ``python -m benchmarks --help``; results are in ``benchmarks/RESULTS.md``."""
