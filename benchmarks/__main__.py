"""``python -m benchmarks``: run the benchmark suite (see :mod:`benchmarks.runner`)."""

from benchmarks.runner import main

raise SystemExit(main())
