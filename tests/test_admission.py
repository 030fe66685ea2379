"""The served service under load (docs/service.md): admission, deadlines, probes, slow connections.

gunicorn with the project's gunicorn.conf.py on 127.0.0.1 serves tests/slow_app.py, whose
`/test/sleep` hook sleeps as long as asked. Assertions are about order and outcome (which
request was computed, which answer came first), never about how fast this machine is.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hooks.limits import MAX_BODY_BYTES

REPO = Path(__file__).resolve().parents[1]
TOKEN = "admission-token-71d0"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class Server:
    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log

    def computed(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []

    def request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        headers: dict | None = None,
        timeout: float = 30,
    ) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers=headers if headers is not None else AUTH)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def wait_until_computing(self, request_id: str) -> None:
        deadline = time.monotonic() + 30
        while request_id not in self.computed():
            assert time.monotonic() < deadline, f"{request_id} never started"
            time.sleep(0.02)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOK_", "PROMETHEUS_", "KUBERNETES_"))}
    env.update(
        WEB_CONCURRENCY="1",
        HOOK_TOKEN=TOKEN,
        HOOK_QUEUE_TIMEOUT="1",
        HOOK_DEADLINE="2.5",
        ROLLOUT_ACTUATION="dry-run",
        SLOW_APP_LOG=str(tmp_path / "computed"),
        HOME=str(tmp_path),
        LOG_LEVEL="warning",
    )
    stderr = (tmp_path / "gunicorn.log").open("wb")
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    process = subprocess.Popen(
        [gunicorn, "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "tests.slow_app:app"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    running = Server(port, tmp_path / "computed")
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if running.request("GET", "/healthz", headers={}, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stderr.close()


def in_background(func: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append((func(*args), time.monotonic())), daemon=True)
    thread.start()
    return thread, out


def metric(server: Server, name: str, **labels: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def test_queue_timeout_deadline_and_probes(server: Server) -> None:
    slow, slow_out = in_background(server.request, "POST", "/test/sleep", {"id": "slow", "seconds": 5})
    server.wait_until_computing("slow")
    # Queued behind the slow one for longer than HOOK_QUEUE_TIMEOUT: 503, never computed.
    queued, queued_out = in_background(server.request, "POST", "/test/sleep", {"id": "queued"})
    # Probes are answered by the front while the only compute thread is busy.
    probes = [server.request("GET", path, headers={}) for path in ("/healthz", "/readyz")]
    probes_done = time.monotonic()
    assert [code for code, _ in probes] == [200, 200]
    queued.join(30)
    slow.join(30)
    (code, body), slow_answered = slow_out[0]
    # Past HOOK_DEADLINE the front answers 500 itself, while the hook still sleeps.
    assert code == 500 and body == {"error": "internal error: deadline exceeded"}
    assert probes_done < slow_answered
    assert queued_out[0][0][0] == 503 and "overloaded" in queued_out[0][0][1]["error"]
    server.wait_until_computing("slow")
    time.sleep(3)  # the abandoned computation ends; the queued request must still not run
    assert server.computed() == ["slow"]
    assert metric(server, "rollout_hook_requests_total", hook="test/sleep", outcome="overloaded") == 1
    assert metric(server, "rollout_hook_requests_total", hook="test/sleep", outcome="error") == 1
    # The worker serves on normally afterwards.
    assert server.request("POST", "/test/sleep", {"id": "after"}) == (
        200,
        {"status": {"id": "after"}, "children": []},
    )


def test_slow_and_idle_connections_delay_neither_probes_nor_hooks(server: Server) -> None:
    sockets = []
    try:
        for n in range(64):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            if n % 2:
                sock.sendall(b"POST /test/sleep HTTP/1.1\r\nHost: hooks\r\nX-Slow: 1\r\n")  # never finished
            sockets.append(sock)  # the even ones stay idle
        for n in range(3):
            for sock in sockets[1::2]:
                sock.sendall(f"X-More-{n}: x\r\n".encode())
            assert server.request("GET", "/healthz", headers={})[0] == 200
            assert server.request("POST", "/test/sleep", {"id": f"fast-{n}"})[0] == 200
    finally:
        for sock in sockets:
            sock.close()
    assert server.computed() == ["fast-0", "fast-1", "fast-2"]


def test_a_forged_or_oversized_request_is_refused_before_its_body_is_read(server: Server) -> None:
    assert server.request(
        "POST", "/test/sleep", {"id": "forged"}, headers={"Authorization": "Bearer no"}
    ) == (
        401,
        {"error": "missing or invalid bearer token"},
    )
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("POST", "/test/sleep")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and response.getheader("Connection") == "close"
    conn.close()
    assert server.computed() == []
    assert metric(server, "rollout_hook_requests_total", hook="test/sleep", outcome="unauthorized") == 1
