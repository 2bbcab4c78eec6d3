"""The HTML report in a real headless browser (Debian's ``chromium``): it loads with no console errors and no
network requests, and every chart is drawn (a visible SVG with drawn paths).

Talks to Chromium over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages separated by
NUL bytes, the browser reads fd 3 and writes fd 4), so no port and no extra package are needed. Skips cleanly when
no Chromium binary is found or it cannot start; under ``CI=true`` either is a failure (``tests.conftest.skip_or_fail``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from nectar.explain import Explanation, render
from tests.conftest import skip_or_fail
from tests.test_explain import edge_explanations, explanation, workdir  # noqa: F401  (module fixtures, reused)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",
)
TIMEOUT = 30.0


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    skip_or_fail("no chromium in PATH (CI installs Debian's chromium; apt-get install -y chromium)")


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def remap() -> None:  # in the child: the browser reads commands on fd 3 and writes replies on fd 4
            r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)  # first out of the way of 3 and 4
            w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4, to_browser_r, from_browser_w),  # 3 and 4 are made by remap(), before fds are closed
            preexec_fn=remap,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            e = self._read()
            self.events.append(e)
            if e.get("method") == method:
                return e

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buf:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise TimeoutError("no answer from the browser")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise TimeoutError("the browser closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


CHART_PROBE = """
JSON.stringify(Array.from(document.querySelectorAll('figure')).map(f => {
  const svg = f.querySelector('svg');
  if (!svg) return {id: f.id, svg: false};
  const r = svg.getBoundingClientRect();
  const drawn = Array.from(svg.querySelectorAll('path')).filter(p => {
    const b = p.getBBox();
    return (p.getAttribute('d') || '').length > 0 && (b.width > 0 || b.height > 0);
  });
  return {id: f.id, svg: true, width: r.width, height: r.height, paths: drawn.length,
          texts: svg.querySelectorAll('text').length};
}))
"""


def load_in_chromium(html_path: Path, profile: Path) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Load the page; return the chart probe, console/log errors and requested URLs."""
    binary = _browser()
    dt: DevTools | None = None
    try:
        dt = DevTools(binary, profile)
        target = dt.send("Target.createTarget", {"url": "about:blank"})
    except (OSError, RuntimeError, TimeoutError) as exc:
        if dt is not None:
            dt.close()  # started but did not answer: do not leave it running
        skip_or_fail(f"chromium ({binary}) could not start here: {exc}")
    try:
        session = dt.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            dt.send(f"{domain}.enable", session=session)
        dt.send("Page.navigate", {"url": html_path.resolve().as_uri()}, session=session)
        dt.wait_event("Page.loadEventFired")
        probe = dt.send("Runtime.evaluate", {"expression": CHART_PROBE, "returnByValue": True}, session=session)
        charts = json.loads(probe["result"]["value"])
        errors = []
        urls = []
        for e in dt.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params.get("exceptionDetails", {}))[:300])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(json.dumps(params.get("args", []))[:300])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                errors.append(params["entry"].get("text", "")[:300])
            elif method == "Network.requestWillBeSent":
                urls.append(params.get("request", {}).get("url", ""))
        return charts, errors, urls
    finally:
        dt.close()


def _check_page(html: str, tmp_path: Path, expected: list[str], placeholders: tuple[str, ...] = ()) -> None:
    """``placeholders``: charts that have no data here and show a sentence instead of marks."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    page = tmp_path / "waggle.html"
    page.write_text(html, encoding="utf-8")
    charts, errors, urls = load_in_chromium(page, tmp_path / "profile")
    assert errors == []
    assert [u for u in urls if not u.startswith(("file:", "data:", "about:"))] == []
    assert [c["id"] for c in charts] == expected
    for c in charts:
        assert c["svg"] and c["width"] > 100 and c["height"] > 50, c
        if c["id"] in placeholders:
            assert c["paths"] >= 1 and c["texts"] >= 1, c
        else:
            assert c["paths"] >= 3 and c["texts"] >= 3, c


def test_html_report_renders_in_chromium(explanation: Explanation, tmp_path: Path) -> None:  # noqa: F811
    _check_page(render(explanation, "html"), tmp_path, ["kept-volume", "budget", "latency", "decisions"])


def test_edge_case_pages_render_in_chromium(edge_explanations: dict[str, Explanation], tmp_path: Path) -> None:  # noqa: F811
    """An empty corpus (no latency chart) and a one-span corpus (no rate): still no errors, every chart drawn."""
    empty, one = (render(edge_explanations[k], "html") for k in ("empty", "one"))
    _check_page(empty, tmp_path / "empty", ["kept-volume", "budget", "decisions"], placeholders=("budget",))
    charts = ["kept-volume", "budget", "latency", "decisions", "sampler-0"]  # the dyn rule decides the one trace
    _check_page(one, tmp_path / "one", charts, placeholders=("budget",))
