"""A fake Prometheus HTTP API on 127.0.0.1 for `class: prometheus` tests.

It answers `GET /api/v1/query` with what the test set in `reply` (Prometheus' own JSON
shapes: `{"status": "success", "data": {"resultType": "vector", "result": [...]}}`), records
every request (path, parameters, headers), and can be made slow for one request.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson


@dataclass
class Reply:
    code: int
    body: bytes
    content_type: str = "application/json"


def vector(*values: str | float, metric: dict | None = None) -> Reply:
    """An instant-vector answer, one series per value (values as Prometheus writes them)."""
    result = [
        {
            "metric": {**(metric or {"__name__": "ratio"}), "pod": f"web-{i}"},
            "value": [1714564800.0, v if isinstance(v, str) else repr(float(v))],
        }
        for i, v in enumerate(values)
    ]
    return Reply(200, orjson.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}))


def scalar(value: str) -> Reply:
    data = {"resultType": "scalar", "result": [1714564800.0, value]}
    return Reply(200, orjson.dumps({"status": "success", "data": data}))


def matrix() -> Reply:
    result = [{"metric": {"pod": "web-0"}, "values": [[1714564800.0, "1"], [1714564815.0, "2"]]}]
    return Reply(200, orjson.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}))


def error(code: int, error_type: str, message: str) -> Reply:
    """Prometheus' error answer (400 bad_data, 422 execution, 503 unavailable, ...)."""
    return Reply(code, orjson.dumps({"status": "error", "errorType": error_type, "error": message}))


def raw(code: int, body: bytes, content_type: str = "text/plain") -> Reply:
    return Reply(code, body, content_type)


@dataclass
class Seen:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakePrometheus:
    reply: Reply = field(default_factory=lambda: vector(0))
    requests: list[Seen] = field(default_factory=list)
    #: Seconds the next request waits before answering (then reset to 0).
    slow_once: float = 0.0

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.requests.append(
                    Seen(parts.path, params, {k.lower(): v for k, v in self.headers.items()})
                )
                delay, fake.slow_once = fake.slow_once, 0.0
                if delay:
                    time.sleep(delay)
                reply = fake.reply if parts.path == "/api/v1/query" else error(404, "not_found", "no route")
                self.send_response(reply.code)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(reply.body)  # the client may have given up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def queries(self) -> list[str]:
        return [seen.params.get("query", "") for seen in self.requests]
