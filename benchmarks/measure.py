"""Run one command in a fresh process and report its wall time and peak memory as one JSON line.

``python -m benchmarks.measure -- CMD...`` runs CMD (its stdout and stderr go to this process's stderr, so the
JSON line is the only stdout), waits, and prints ``{"wall_s", "peak_rss_mb", "rc"}``. The peak is
``getrusage(RUSAGE_CHILDREN).ru_maxrss``: this wrapper has exactly one child, so it is that run's own peak
resident set (the largest of the command and anything it waited for), not a maximum over earlier runs.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    """Entry point: ``argv`` is ``["--", *cmd]``."""
    cmd = argv[1:] if argv and argv[0] == "--" else argv
    start = time.perf_counter()
    rc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, check=False).returncode
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    sys.stdout.write(json.dumps({"wall_s": round(wall, 4), "peak_rss_mb": round(peak_kb / 1024, 1), "rc": rc}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
