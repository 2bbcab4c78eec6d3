"""``results.json`` (merged across runs) and ``RESULTS.md`` rendered from it.

``results.json`` format ``nectar-bench/1``: ``machine`` (the latest run's), ``entries`` (one per case, size and
variant: ``runs`` with ``wall_s``/``peak_rss_mb``/``rc``, ``wall_s`` and ``peak_rss_mb`` as median/min/max,
``spans_per_s`` median/best, ``floor`` (the variant it is compared with), ``load_1min``, ``commit``, ``date``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

FORMAT = "nectar-bench/1"
PROVE_TARGET = 1.5  # x the floor's wall time, at 10M spans
PROVE_RSS_TARGET_MB = 4096
INGEST_TARGET = 1 / 3  # of the parser floor's speed

# What the floors compute, what limits each case, and the profile's before/after: kept as Markdown beside the code.
NOTES_FILE = Path(__file__).with_name("notes.md")


def machine() -> dict[str, Any]:
    """Cores, RAM, CPU model, OS, Python and library versions."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    libs: dict[str, str | None] = {}
    for name in ("polars", "duckdb", "pyarrow", "numpy"):
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": libs,
    }


def commit() -> str:
    """The short commit, with ``+dirty`` when the working tree has changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True)  # fmt: skip
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def merge(path: Path, entries: list[dict[str, Any]], started: float) -> dict[str, Any]:
    """The results file's content with ``entries`` replacing earlier ones of the same (case, size, variant)."""
    old: dict[str, Any] = {}
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
    if old.get("format") != FORMAT:
        old = {}
    stamp = {"commit": commit(), "date": datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    keyed = {(e["case"], e["size"], e["variant"]): e for e in old.get("entries", [])}
    for e in entries:
        keyed[(e["case"], e["size"], e["variant"])] = {**e, **stamp}
    ordered = sorted(keyed.values(), key=lambda e: (_case_order(e["case"]), e["size"], e["variant"]))
    return {"format": FORMAT, "machine": machine(), "entries": ordered}


def _case_order(case: str) -> int:
    return {"prove": 0, "compile_explain": 2, "many_rules": 3}.get(case, 1)


def write(out: Path, results: dict[str, Any]) -> None:
    """Write ``results.json`` and ``RESULTS.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / "RESULTS.md").write_text(render(results), encoding="utf-8")


def _size(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1_000}k" if n % 1_000 == 0 else str(n)


def _floor_of(e: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next(
        (f for f in entries if f["case"] == e["case"] and f["size"] == e["size"] and f["variant"] == e["floor"]), None
    )


def ratios(e: dict[str, Any], entries: list[dict[str, Any]]) -> tuple[float, float] | None:
    """(best run / floor's best run, median / floor's median) of wall time, or None without a floor."""
    f = _floor_of(e, entries) if e.get("floor") else None
    if f is None:
        return None
    return e["wall_s"]["min"] / f["wall_s"]["min"], e["wall_s"]["median"] / f["wall_s"]["median"]


def _row(e: dict[str, Any], entries: list[dict[str, Any]], speed: bool) -> str:
    w, m = e["wall_s"], e["peak_rss_mb"]
    r = ratios(e, entries)
    ratio = "" if r is None else f"{r[0]:.2f}x / {r[1]:.2f}x"
    speed_col = ""
    if speed:
        speed_col = " |" if r is None else f" {1 / r[0]:.2f} / {1 / r[1]:.2f} |"
    n = len(e["runs"])
    wall = f"{w['median']:.2f} ({w['min']:.2f}-{w['max']:.2f})"
    if e.get("extrapolated_from"):
        wall += f" [from {_size(e['extrapolated_from'])}]"
    return (
        f"| {_size(e['size'])} | {e['variant']} | {wall} | {m['median']:.0f} ({m['min']:.0f}-{m['max']:.0f}) | "
        f"{e['spans_per_s']['best']:,} | {ratio} |{speed_col} {n} | {e['load_1min']['before']:.1f}-"
        f"{e['load_1min']['after']:.1f} |"
    )


def _targets(entries: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | measured (best run; median) | met |", "|---|---|---|"]
    largest = max((e["size"] for e in entries if e["case"] == "prove"), default=0)
    for e in entries:
        r = ratios(e, entries)
        if e["case"] == "prove" and e["variant"].startswith("nectar prove") and r is not None and e["size"] == largest:
            ok = r[0] <= PROVE_TARGET and e["peak_rss_mb"]["max"] < PROVE_RSS_TARGET_MB
            lines.append(
                f"| prove {_size(e['size'])}, {e['variant'].split()[-1]}: <= {PROVE_TARGET}x floor, < 4 GB | "
                f"{r[0]:.2f}x; {r[1]:.2f}x, peak {e['peak_rss_mb']['max']:.0f} MB | {'yes' if ok else 'no'} |"
            )
        if e["case"].startswith("ingest") and e["variant"] == "nectar ingest" and r is not None:
            ok = 1 / r[0] >= INGEST_TARGET
            lines.append(
                f"| {e['case']} {_size(e['size'])}: >= 1/3 of the parser floor's speed | {1 / r[0]:.3f}; "
                f"{1 / r[1]:.3f} of the floor's speed | {'yes' if ok else 'no'} |"
            )
    flat = sorted(
        (e for e in entries if e["case"] == "ingest flat JSON lines" and e["variant"] == "nectar ingest"),
        key=lambda e: e["size"],
    )
    if len(flat) >= 2:
        a, b = flat[0], flat[-1]
        grow = b["peak_rss_mb"]["median"] / a["peak_rss_mb"]["median"]
        lines.append(
            f"| ingest memory bounded ({_size(a['size'])} vs {_size(b['size'])} spans of flat JSON) | "
            f"{a['peak_rss_mb']['median']:.0f} MB vs {b['peak_rss_mb']['median']:.0f} MB "
            f"({grow:.2f}x for {b['size'] / a['size']:.0f}x the input) | {'yes' if grow < 1.5 else 'no'} |"
        )
    return lines


def render(results: dict[str, Any]) -> str:
    """RESULTS.md: machine, commits and dates, targets, one table per case, notes."""
    entries: list[dict[str, Any]] = results["entries"]
    mach = results["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in mach["libraries"].items())
    commits = sorted({e["commit"] for e in entries})
    dates = sorted({e["date"] for e in entries})
    loads = [x for e in entries for x in e["load_1min"].values()]
    out = [
        "# Benchmark results",
        "",
        'Made by `python -m benchmarks` (see the README\'s "Benchmarks" section); `results.json` holds the same '
        "figures with every run.",
        "",
        f"* **Machine**: {mach['cpu']}, {mach['cores']} cores, {mach['ram_gb']} GB RAM; {mach['os']}",
        f"* **Software**: Python {mach['python']}; {libs}",
        f"* **Commit**: {', '.join(commits)}; **runs started** {', '.join(dates)}",
        f"* **Load**: 1-minute load average {min(loads, default=0):.1f}-{max(loads, default=0):.1f} during the runs "
        "(the machine was shared with other test runs; ratios use the best run)",
        "",
        "## Targets",
        "",
        *_targets(entries),
        "",
    ]
    header = "| size | variant | wall s, median (min-max) | peak RSS MB, median (min-max) | spans/s (best) |"
    sections = [("prove", "Prove `benchmarks/policy12.toon`", False)]
    sections += [(c, c[0].upper() + c[1:], True) for c in sorted({e["case"] for e in entries if e["case"] != "prove"})
                 if c.startswith("ingest")]  # fmt: skip
    sections.append(("compile_explain", "Compile and explain (the quick-start workflow)", False))
    sections.append(("many_rules", "Many rules: import and replay of a generated rules file (size = rules)", False))
    for case, title, speed in sections:
        rows = [e for e in entries if e["case"] == case]
        if not rows:
            continue
        extra = " speed vs floor (best / median) |" if speed else ""
        out += [f"## {title}", "", header + " time vs floor (best / median) |" + extra + " runs | load |"]
        out.append("|---|---|---|---|---|---|" + ("---|" if speed else "") + "---|---|")
        if case != "compile_explain":
            out += [_row(e, entries, speed) for e in rows]
        else:
            for size in sorted({e["size"] for e in rows}):
                steps = [e for e in rows if e["size"] == size]
                out += [_row(e, entries, speed) for e in steps]
                total = sum(e["wall_s"]["median"] for e in steps)
                best = sum(e["wall_s"]["min"] for e in steps)
                peak = max(e["peak_rss_mb"]["max"] for e in steps)
                out.append(f"| {_size(size)} | **workflow total** | {total:.2f} (best {best:.2f}) | {peak:.0f} (max) "
                           f"| {round(size / best):,} | | | |")  # fmt: skip
        out.append("")
    out.append(NOTES_FILE.read_text(encoding="utf-8"))
    return "\n".join(out)


__all__ = ["FORMAT", "machine", "merge", "ratios", "render", "write"]
