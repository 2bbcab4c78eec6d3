"""`nectar explain`: golden files for the three forms on a small fixed corpus (ingested for real from flat JSON
lines), the same bytes across runs and hash seeds, the figures against the prover's, and the CLI.

Regenerate the golden files with ``NECTAR_UPDATE_GOLDEN=1 pytest tests/test_explain.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from nectar.cli import main
from nectar.config import Config
from nectar.corpus.ingest import ingest_paths
from nectar.corpus.layout import Corpus
from nectar.explain import Explanation, explain_policy, render
from nectar.explain.model import KEEP_ORDER
from nectar.policy.load import load_policy
from nectar.prove import prove_policy
from nectar.prove.core import rules_table
from tests.conftest import update_golden

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "explain"
POLICY = GOLDEN / "policy.toon"
UPDATE = update_golden()


def _span(trace: str, sid: str, parent: str | None, t: int, service: str, ms: float, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "trace.trace_id": trace,
        "trace.span_id": sid,
        "timestamp": f"2026-11-01T12:{t // 60:02d}:{t % 60:02d}Z",
        "duration_ms": ms,
        "service.name": service,
    }
    if parent:
        event["trace.parent_id"] = parent
    event.update(fields)
    return event


def golden_events() -> list[dict[str, Any]]:
    """80 traces over 790 s, ten kinds (by trace number mod 10), each kind aimed at a rule or a trap."""
    events: list[dict[str, Any]] = []
    for i in range(80):
        tid, t, kind = f"{i * 2654435761 % 2**32:08x}{i:024x}", i * 10, i % 10
        ms = 5.0 + (i * 37) % 400
        root = {"http.route": "/home"}
        if kind == 0:  # a probe: one span
            events.append(_span(tid, "r", None, t, "web", 1.0 + i % 3, **{"http.route": "/healthz"}))
            continue
        if kind in (2, 3):
            root = {"http.route": "/checkout"}
            ms = 3500.0 + i if kind == 2 else 120.0 + i
        if kind == 6:
            events.append(_span(tid, "r", None, t, "api", ms, **{"http.route": "/api/items"}))
            events.append(_span(tid, "c", "r", t, "api", ms / 2))
            continue
        events.append(_span(tid, "r", None, t, "web", ms, **root))
        if kind == 1:  # an error on a child span, under the older attribute name
            events.append(_span(tid, "c", "r", t, "web", ms / 2, **{"http.status_code": 503}))
        elif kind == 4:  # a Redis error on one span
            events.append(_span(tid, "c", "r", t, "web", ms / 3, **{"db.system": "redis", "error": True}))
        elif kind == 5:  # Redis and an error, but on two different spans: not one span
            events.append(_span(tid, "c", "r", t, "web", ms / 3, **{"db.system": "redis"}))
            events.append(_span(tid, "d", "r", t, "web", ms / 4, error=True))
        elif kind == 7:  # a big trace
            events += [_span(tid, f"c{k}", "r", t, "web", ms / 5) for k in range(5)]
        else:
            events.append(_span(tid, "c", "r", t, "web", ms / 2))
    return events


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``policy.toon`` and ``corpus/`` (so reports show relative paths)."""
    root = tmp_path_factory.mktemp("explain")
    src = root / "spans.jsonl"
    src.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in golden_events()), encoding="utf-8")
    ingest_paths([str(src)], root / "corpus")
    ids = ["96af9a3d00000000000000000000004d  # kind 7: a big trace", "not-in-the-corpus"]
    (root / "corpus" / "must-keep.txt").write_text("# must keep\n" + "\n".join(ids) + "\n", encoding="utf-8")
    shutil.copy(POLICY, root / "policy.toon")
    return root


@pytest.fixture(scope="module")
def explanation(workdir: Path) -> Explanation:
    policy = load_policy(workdir / "policy.toon", Config().aliases)
    ex = explain_policy(policy, Corpus.open(workdir / "corpus"), Config())
    return dataclasses.replace(ex, policy_path="policy.toon", corpus_path="corpus")


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with NECTAR_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden file"


_SVG = re.compile(r"<svg.*?</svg>", re.S)
_GENERATOR = re.compile(r'<meta name="generator" content="nectar explain; matplotlib ([^"]+)">')


def _mask_charts(html: str) -> str:
    return _GENERATOR.sub("", _SVG.sub("<svg/>", html))


def test_golden_text(explanation: Explanation) -> None:
    _golden("report.txt", render(explanation, "text"))


def test_golden_markdown(explanation: Explanation) -> None:
    _golden("report.md", render(explanation, "md"))


def test_golden_html(explanation: Explanation) -> None:
    """Full bytes when the golden file was made with this matplotlib; otherwise the page with the charts masked
    (a new matplotlib may lay SVG out differently; determinism is checked below on any version)."""
    html = render(explanation, "html")
    path = GOLDEN / "report.html"
    if UPDATE:
        path.write_text(html, encoding="utf-8")
    want = path.read_text(encoding="utf-8")
    made_with = _GENERATOR.search(want)
    assert made_with is not None
    if made_with.group(1) == matplotlib.__version__:
        assert html == want
    else:
        assert _mask_charts(html) == _mask_charts(want)


_RENDER_ALL = """
import dataclasses, hashlib, sys
from pathlib import Path
from nectar.config import Config
from nectar.corpus.layout import Corpus
from nectar.explain import explain_policy, render
from nectar.policy.load import load_policy
root = Path(sys.argv[1])
ex = explain_policy(load_policy(root / "policy.toon", Config().aliases), Corpus.open(root / "corpus"), Config())
ex = dataclasses.replace(ex, policy_path="policy.toon", corpus_path="corpus")
for form in ("text", "md", "html"):
    print(form, hashlib.sha256(render(ex, form).encode()).hexdigest())
"""


def test_same_bytes_across_processes_and_hash_seeds(workdir: Path, explanation: Explanation) -> None:
    import hashlib

    here = {f: hashlib.sha256(render(explanation, f).encode()).hexdigest() for f in ("text", "md", "html")}
    expected = "".join(f"{f} {h}\n" for f, h in here.items())
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _RENDER_ALL, str(workdir)], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout == expected


def test_figures_agree_with_the_prover(workdir: Path, explanation: Explanation) -> None:
    policy = load_policy(workdir / "policy.toon", Config().aliases)
    report = prove_policy(policy, Corpus.open(workdir / "corpus"), Config())
    table = rules_table(report)
    ex = explanation
    assert [r.name for r in ex.rules] == [r.name for r in policy.ordered_rules()]
    assert sum(r.decided_traces for r in ex.rules) + ex.unmatched_traces == ex.total_traces == 80
    for r in ex.rules:
        rows = [t for t in table if t["policy_rule"] == r.name]
        assert r.decided_traces == sum(t["decided_traces"] for t in rows)
        assert sum(r.by_keep[k] for k in KEEP_ORDER) == r.decided_traces
    assert sum(r.kept_share or 0.0 for r in ex.rules) == pytest.approx(1.0)
    assert ex.expected_kept_spans == pytest.approx(report.budget.expected_kept_spans)
    assert [c.status for c in ex.checks] == [c.status for c in report.checks]
    by_name = {r.name: r for r in ex.rules}
    # the split Redis trace (kind 5) is not one span with both: only kind 4 traces are decided by redis-errors
    assert by_name["redis-errors"].decided_traces == 8
    assert by_name["drop-probes"].by_keep == {"true": 0, "sampled": 0, "false": 8}
    assert {c.code for c in by_name["vip"].caveats} >= {"N001", "N003"}
    assert len(by_name["sample-api"].clauses) == 2
    assert by_name["keep-errors"].examples == tuple(sorted(by_name["keep-errors"].examples))
    assert ex.check("must_keep") is not None and ex.check("must_keep").status == "fail"  # type: ignore[union-attr]
    assert ex.latency is not None and sum(ex.latency.all_traces) == ex.latency.traces == 80


def test_engines_give_the_same_report(workdir: Path, explanation: Explanation) -> None:
    policy = load_policy(workdir / "policy.toon", Config().aliases)
    ex = explain_policy(policy, Corpus.open(workdir / "corpus"), Config(), engine="polars")  # the default: duckdb
    ex = dataclasses.replace(ex, policy_path="policy.toon", corpus_path="corpus", engine="duckdb")
    assert render(ex, "md") == render(explanation, "md")


def test_html_is_self_contained(explanation: Explanation) -> None:
    html = render(explanation, "html")
    assert html.count("<svg") == 4
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "@import" not in html and "<script" not in html
    assert all(ref.startswith("#") for ref in re.findall(r"url\((.*?)\)", html))  # only in-page clip paths
    assert "<link" not in html


def test_cli_writes_each_form(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workdir)
    assert main(["explain", "policy.toon", "--corpus", "corpus"]) == 0  # exit 0 although a check fails
    assert capsys.readouterr().out == (GOLDEN / "report.txt").read_text(encoding="utf-8")
    assert main(["explain", "policy.toon", "--corpus", "corpus", "--format", "md", "-o", "out/waggle.md"]) == 0
    assert (workdir / "out" / "waggle.md").read_text(encoding="utf-8") == (GOLDEN / "report.md").read_text("utf-8")
    assert main(["explain", "policy.toon", "--corpus", "corpus", "--format", "html", "-o", "waggle.html"]) == 0
    html = (workdir / "waggle.html").read_text(encoding="utf-8")
    assert _mask_charts(html) == _mask_charts((GOLDEN / "report.html").read_text(encoding="utf-8"))
    assert "wrote waggle.html" in capsys.readouterr().err


def test_cli_bad_input_exits_2(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workdir)
    assert main(["explain", "policy.toon", "--corpus", "nowhere"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["explain", "policy.toon", "--corpus", "corpus", "--format", "pdf"]) == 2
    assert main(["explain", "--help"]) == 0
    assert "nectar explain --format html -o waggle.html" in capsys.readouterr().out


def test_sample_corpus_quick_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick start's last steps on the bundled 50k-span sample corpus."""
    monkeypatch.chdir(tmp_path)
    assert main(["init", "demo"]) == 0
    monkeypatch.chdir(tmp_path / "demo")
    assert main(["explain", "-o", "waggle.txt"]) == 0
    text = (tmp_path / "demo" / "waggle.txt").read_text(encoding="utf-8")
    assert "Keeps every trace in which any span has error equal to true" in text
    assert main(["explain", "--format", "html", "-o", "waggle.html"]) == 0
    assert (tmp_path / "demo" / "waggle.html").read_text(encoding="utf-8").count("<svg") == 4


EDGE_POLICY = """nectar_policy{version,name,rules}:
  1
  edge
  rules[4]{name,description,match,action,priority}:
    dyn,adaptive,"service.name == \\"api\\"","dynamic(rate=10, keys=(service.name))",10
    thr,capped,error == true,"throughput(per_second=5, keys=(service.name))",5
    never,off,false,keep,3
    det,hashed,exists(x),deterministic(rate=4),1
"""


@pytest.fixture(scope="module")
def edge_explanations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Explanation]:
    """A policy with stateful samplers, a `false` rule, no catch-all and no budget, on an empty corpus and on a
    corpus of one span (time window 0 s)."""
    from nectar.corpus.synth import synth_corpus
    from nectar.policy import parse_policy

    root = tmp_path_factory.mktemp("explain-edge")
    synth_corpus(root / "empty", spans=0, seed=1)
    src = root / "one.jsonl"
    src.write_text(json.dumps(_span("t1", "a", None, 0, "api", 5.0)) + "\n", encoding="utf-8")
    ingest_paths([str(src)], root / "one")
    policy = parse_policy(EDGE_POLICY, "edge.toon")
    return {name: explain_policy(policy, Corpus.open(root / name), Config()) for name in ("empty", "one")}


@pytest.mark.parametrize("corpus", ["empty", "one"])
def test_edge_cases_render_in_every_form(edge_explanations: dict[str, Explanation], corpus: str) -> None:
    ex = edge_explanations[corpus]
    text, md, html = (render(ex, f) for f in ("text", "md", "html"))
    assert "Never applies: its match is false" in text and "Never applies: its match is false" in md
    assert "% of budget" not in text and "% of budget" not in md  # the policy sets no budget
    assert "Sampler EMADynamicSampler" in text and "EMADynamicSampler" in md and "EMADynamicSampler" in html
    if corpus == "empty":
        assert "The corpus holds no traces" in text
        assert ex.latency is None and html.count("<svg") == 3
    else:
        assert "Unmatched traffic" not in text  # dyn decides the one trace
        assert "the corpus time window is 0 s" in text
        # latency, and the dyn sampler's simulated rates (it decides the one trace)
        assert ex.latency is not None and html.count("<svg") == 5
        assert '<figure id="sampler-0"' in html and "EMADynamicSampler (dyn)" in html
