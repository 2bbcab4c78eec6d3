"""The benchmark runner: ``python -m benchmarks [--sizes 1m,10m] [--cases prove,ingest,compile_explain] ...``.

Every measured run is a fresh process started through :mod:`benchmarks.measure` (wall time and that run's own
peak RSS). Corpora come from ``nectar corpus synth`` (seed 7) and are cached under ``--cache``; the ingest inputs
are exported from them (:mod:`benchmarks.export`) and cached too. Results are merged into ``results.json``
(entries keyed by case, size and variant, so a partial run updates only what it ran) and ``RESULTS.md`` is
rendered from that file (:mod:`benchmarks.report`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.export import write_flat_jsonl, write_otlp_jsonl
from benchmarks.floor import check_floor_agreement
from benchmarks.many_rules import write_rules

ROOT = Path(__file__).resolve().parent
POLICY = ROOT / "policy12.toon"
SEED = 7
FLOOR = "floor (DuckDB, hand-written)"
CASES = ("prove", "ingest", "compile_explain", "many_rules")
DEFAULT_CASES = ("prove", "ingest", "compile_explain")  # many_rules takes minutes on its own: ask for it
SAMPLE_CORPUS = ROOT.parent / "corpus"
# many_rules: a step fails when it is slower than this (seconds, for a file of N rules: base + per_1k * N / 1000).
# Generous (about twice the time measured on the project's 2-core machine), so only a return of super-linear work
# trips it: before the fix, replay of 20,000 rules took over 400 s and import over 50 s.
MANY_RULES_BOUNDS = {"import": (20.0, 3.0), "replay": (20.0, 6.0)}
NECTAR = [sys.executable, "-m", "nectar"]


def parse_size(text: str) -> int:
    """``10k``, ``1m``, ``2.5m`` or a plain number of spans."""
    t = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def size_label(n: int) -> str:
    """The short spelling of a span count: ``1M``, ``100k``, ``10M``."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


@dataclass(slots=True)
class Run:
    """One measured process: wall seconds, peak resident set in MB, exit code."""

    wall_s: float
    peak_rss_mb: float
    rc: int


@dataclass(slots=True)
class Entry:
    """All runs of one (case, size, variant), with what the row reports."""

    case: str
    size: int
    variant: str
    spans: int
    runs: list[Run] = field(default_factory=list)
    floor: str | None = None  # the variant this one is compared with
    extrapolated_from: int | None = None  # reference evaluator: measured on this many spans, scaled linearly
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after
    note: str = ""

    def summary(self) -> dict[str, Any]:
        walls = [r.wall_s for r in self.runs]
        rss = [r.peak_rss_mb for r in self.runs]
        scale = self.spans / self.extrapolated_from if self.extrapolated_from else 1.0
        wall = {"median": statistics.median(walls) * scale, "min": min(walls) * scale, "max": max(walls) * scale}
        return {
            "case": self.case,
            "size": self.size,
            "variant": self.variant,
            "spans": self.spans,
            "runs": [{"wall_s": r.wall_s, "peak_rss_mb": r.peak_rss_mb, "rc": r.rc} for r in self.runs],
            "wall_s": {k: round(v, 4) for k, v in wall.items()},
            "peak_rss_mb": {"median": statistics.median(rss), "min": min(rss), "max": max(rss)},
            "spans_per_s": {"median": round(self.spans / wall["median"]), "best": round(self.spans / wall["min"])},
            "floor": self.floor,
            "extrapolated_from": self.extrapolated_from,
            "load_1min": {"before": self.load[0], "after": self.load[1]},
            "note": self.note,
        }


class Bench:
    """Runs the cases; ``say`` reports progress on stderr."""

    def __init__(self, cache: Path, repeat: int, say: Callable[[str], None]) -> None:
        self.cache = cache
        self.repeat = repeat
        self.say = say
        self.entries: list[Entry] = []
        cache.mkdir(parents=True, exist_ok=True)

    # --- inputs ---------------------------------------------------------------------------------------------

    def corpus(self, spans: int) -> Path:
        """The cached synthetic corpus of ``spans`` spans (made on first use)."""
        out = self.cache / f"corpus-{spans}"
        if not (out / "manifest.json").exists():
            self.say(f"synth {size_label(spans)} spans -> {out}")
            cmd = [*NECTAR, "corpus", "synth", "--spans", str(spans), "--seed", str(SEED), "--out", str(out)]
            subprocess.run([*cmd, "--overwrite"], check=True, stdout=subprocess.DEVNULL)
        return out

    def export(self, spans: int, kind: str) -> Path:
        """The cached ingest input (``flat`` or ``otlp`` JSON lines) of ``spans`` spans."""
        out = self.cache / f"{kind}-{spans}.jsonl"
        if not out.exists():
            self.say(f"export {size_label(spans)} spans as {kind} JSON lines -> {out}")
            tmp = out.with_suffix(".tmp")
            writer = write_flat_jsonl if kind == "flat" else write_otlp_jsonl
            writer(self.corpus(spans), tmp)
            tmp.replace(out)
        return out

    # --- measuring ------------------------------------------------------------------------------------------

    def measure(self, entry: Entry, cmd: Sequence[str], ok: Sequence[int] = (0,), cwd: Path | None = None) -> Entry:
        """Run ``cmd`` ``repeat`` times, each in a fresh process; fail loudly on an unexpected exit code."""
        before = os.getloadavg()[0]
        for i in range(self.repeat):
            self._prepare(cwd)
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.measure", "--", *cmd],
                capture_output=True,
                text=True,
                cwd=cwd,
                env={**os.environ, "PYTHONPATH": str(ROOT.parent)},
                check=False,
            )
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            if got["rc"] not in ok:
                raise RuntimeError(f"{' '.join(cmd)} exited {got['rc']}:\n{proc.stderr[-3000:]}")
            entry.runs.append(Run(got["wall_s"], got["peak_rss_mb"], got["rc"]))
            self.say(
                f"  {entry.case} {size_label(entry.size)} {entry.variant} run {i + 1}/{self.repeat}: "
                f"{got['wall_s']:.2f} s, {got['peak_rss_mb']:.0f} MB"
            )
        entry.load = (round(before, 2), round(os.getloadavg()[0], 2))
        self.entries.append(entry)
        return entry

    @staticmethod
    def _prepare(cwd: Path | None) -> None:
        """Each run starts from an empty working folder (no corpus, rules or lockfile from the previous run)."""
        if cwd is not None:
            shutil.rmtree(cwd, ignore_errors=True)
            cwd.mkdir(parents=True)

    # --- cases ----------------------------------------------------------------------------------------------

    def prove(self, size: int, reference_spans: int) -> None:
        """The floor query, ``nectar prove`` with each engine, and the reference evaluator on a slice."""
        corpus = self.corpus(size)
        self.measure(Entry("prove", size, FLOOR, size), _py("benchmarks.floor", "prove", corpus))
        for engine in ("polars", "duckdb"):
            # The corpus pass against its floor: the symbolic pass does not depend on the corpus size.
            cmd = [*NECTAR, "prove", str(POLICY), "--corpus", str(corpus), "--engine", engine, "--format", "json"]
            cmd += ["--symbolic", "off"]
            entry = Entry("prove", size, f"nectar prove --engine {engine}", size, floor=FLOOR)
            self.measure(entry, cmd, ok=(0, 1))
        ref = min(reference_spans, size)
        entry = Entry(
            "prove",
            size,
            "reference evaluator (extrapolated)",
            size,
            floor=FLOOR,
            extrapolated_from=ref,
            note=f"measured on a {size_label(ref)}-span corpus, scaled by {size / ref:g}",
        )
        self.measure(entry, _py("benchmarks.reference_run", str(self.corpus(ref)), str(POLICY)))

    def ingest(self, size: int, formats: Sequence[str]) -> None:
        """``nectar ingest`` of flat and OTLP JSON lines into a fresh corpus, against the parser floors."""
        work = self.cache / "ingest-work"
        for kind in formats:
            path = self.export(size, kind)
            floor = "polars.read_ndjson" if kind == "flat" else "pyarrow.json.read_json"
            label = {"flat": "flat JSON lines", "otlp": "OTLP JSON lines"}[kind]
            self.measure(Entry(f"ingest {label}", size, f"floor ({floor})", size), _py("benchmarks.floor", kind, path))
            fmt = "jsonl" if kind == "flat" else "otlp-json"
            cmd = [*NECTAR, "ingest", str(path), "--corpus", str(work / "corpus"), "--format", fmt]
            self.measure(Entry(f"ingest {label}", size, "nectar ingest", size, floor=f"floor ({floor})"), cmd, cwd=work)
        shutil.rmtree(work, ignore_errors=True)

    def compile_explain(self, size: int) -> None:
        """The quick-start workflow at scale: prove, compile, explain (text and html), each step measured."""
        corpus = self.corpus(size)
        work = self.cache / "workflow-work"
        c = ["--corpus", str(corpus)]
        steps = {
            "1. nectar prove": [*NECTAR, "prove", str(POLICY), *c],
            "2. nectar compile": [*NECTAR, "compile", str(POLICY), *c, "-o", "rules.yaml", "--lock", "nectar.lock"],
            "3. nectar explain (text)": [*NECTAR, "explain", str(POLICY), *c, "-o", "x.txt"],
            "4. nectar explain (html)": [*NECTAR, "explain", str(POLICY), *c, "--format", "html", "-o", "x.htm"],
        }
        for name, cmd in steps.items():
            self.measure(Entry("compile_explain", size, name, size), cmd, ok=(0, 1), cwd=work)
        shutil.rmtree(work, ignore_errors=True)

    def many_rules(self, rules: int) -> None:
        """``nectar import`` and ``nectar replay`` (DuckDB and Polars) of a generated file of ``rules`` rules
        (:mod:`benchmarks.many_rules`) over the bundled sample corpus, each held to :data:`MANY_RULES_BOUNDS`."""
        path = self.cache / f"rules-{rules}.yaml"
        if not path.exists():
            self.say(f"write {rules:,} rules -> {path}")
            write_rules(rules, path)
        work = self.cache / "many-rules-work"
        spans = json.loads((SAMPLE_CORPUS / "manifest.json").read_text(encoding="utf-8"))["spans"]
        replay = [*NECTAR, "replay", str(path), "--corpus", str(SAMPLE_CORPUS), "--format", "json"]
        steps = {
            "nectar import": ("import", [*NECTAR, "import", str(path), "-o", "policy.toon"]),
            "nectar replay --engine duckdb": ("replay", [*replay, "--engine", "duckdb"]),
            "nectar replay --engine polars": ("replay", [*replay, "--engine", "polars"]),
        }
        for name, (kind, cmd) in steps.items():
            entry = self.measure(Entry("many_rules", rules, name, spans), cmd, cwd=work)
            base, per_1k = MANY_RULES_BOUNDS[kind]
            bound = base + per_1k * rules / 1000
            worst = max(r.wall_s for r in entry.runs)
            entry.note = f"bound {bound:.0f} s"
            if worst > bound:
                raise RuntimeError(f"{name} of {rules:,} rules took {worst:.1f} s, over its bound of {bound:.0f} s")
        shutil.rmtree(work, ignore_errors=True)


def _py(module: str, *args: str | Path) -> list[str]:
    return [sys.executable, "-m", module, *[str(a) for a in args]]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; see ``python -m benchmarks --help``."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1m,10m", help="corpus sizes for prove and compile_explain (default 1m,10m)")
    ap.add_argument(
        "--cases",
        default=",".join(DEFAULT_CASES),
        help=f"which of {','.join(CASES)} (default {','.join(DEFAULT_CASES)})",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement, each a fresh process (default 3)")
    ap.add_argument("--out", type=Path, default=ROOT, help="where results.json and RESULTS.md go (default benchmarks/)")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache", help="corpus and input cache")
    ap.add_argument("--ingest-sizes", default="1m,3m", help="ingest sizes: flat JSON at each, OTLP at the first")
    ap.add_argument("--explain-sizes", default="1m,10m", help="compile_explain sizes (default 1m,10m)")
    ap.add_argument("--reference-spans", default="100k", help="slice the reference evaluator runs on (default 100k)")
    ap.add_argument("--rules", default="20k", help="many_rules: rules in the generated file(s) (default 20k)")
    ap.add_argument("--no-check", action="store_true", help="skip the floor/engine agreement check")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    ingest_sizes = [parse_size(s) for s in args.ingest_sizes.split(",") if s.strip()]
    explain_sizes = [parse_size(s) for s in args.explain_sizes.split(",") if s.strip()]

    def say(msg: str) -> None:
        if not args.quiet:
            print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    bench = Bench(args.cache, args.repeat, say)
    started = time.time()
    if "prove" in cases:
        if not args.no_check:
            small = bench.corpus(min(sizes))
            say(f"checking the floor query against both engines on {small}")
            for engine in ("polars", "duckdb"):
                check_floor_agreement(small, POLICY, engine)
        for size in sizes:
            bench.prove(size, parse_size(args.reference_spans))
    if "ingest" in cases:
        for i, size in enumerate(ingest_sizes):
            bench.ingest(size, ("flat", "otlp") if i == 0 else ("flat",))
    if "compile_explain" in cases:
        for size in explain_sizes:
            bench.compile_explain(size)
    if "many_rules" in cases:
        for rules in [parse_size(s) for s in args.rules.split(",") if s.strip()]:
            bench.many_rules(rules)
    results = report.merge(args.out / "results.json", [e.summary() for e in bench.entries], started)
    report.write(args.out, results)
    say(f"wrote {args.out / 'results.json'} and {args.out / 'RESULTS.md'}")
    return 0
