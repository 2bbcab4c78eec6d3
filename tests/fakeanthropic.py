"""A fake Anthropic Messages API on 127.0.0.1 for tests: scripted replies, every request recorded.

The real ``anthropic`` SDK is pointed at it with ``base_url``. Each POST to ``/v1/messages`` takes the next
scripted :class:`Reply` (the last one repeats). Bounded: a reply's ``delay`` is capped, the server runs in a
daemon thread and :meth:`FakeAnthropic.close` (or leaving the ``with`` block) stops it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_DELAY = 3.0


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn", model: str = "claude-test") -> dict:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }


def tool_reply(tool_input: dict[str, Any], tool_id: str = "toolu_1") -> Reply:
    """A 200 answer calling ``submit_policy`` with ``tool_input``."""
    block = {"type": "tool_use", "id": tool_id, "name": "submit_policy", "input": tool_input}
    return Reply(200, message([block], "tool_use"))


def text_reply(text: str) -> Reply:
    """A 200 answer with one text block."""
    return Reply(200, message([{"type": "text", "text": text}]))


def error_reply(status: int, kind: str, msg: str, delay: float = 0.0) -> Reply:
    body = {"type": "error", "error": {"type": kind, "message": msg}}
    return Reply(status, body, delay, {"retry-after-ms": "10"})


class FakeAnthropic:
    """``with FakeAnthropic([reply, ...]) as fake: Anthropic(base_url=fake.url, ...)``; ``fake.requests`` after."""

    def __init__(self, replies: list[Reply]) -> None:
        assert replies
        self.replies = list(replies)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with fake._lock:
                    fake.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    reply = fake.replies.pop(0) if len(fake.replies) > 1 else fake.replies[0]
                if reply.delay:
                    time.sleep(min(reply.delay, MAX_DELAY))
                data = json.dumps(reply.body).encode("utf-8")
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.send_header("request-id", "req_fake")
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropic:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
