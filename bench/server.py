"""The hook service under gunicorn on 127.0.0.1, for the benchmarks: start it, wait until it is
ready, stop it. Only loopback addresses are ever bound or called."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    port: int, env: Mapping[str, str], extra: Sequence[str] = (), ready_seconds: float = 30
) -> subprocess.Popen[bytes]:
    """gunicorn with the project's config bound to 127.0.0.1:`port`; returns once /readyz is 200."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            *extra,
            "hooks.app:app",
        ],
        cwd=ROOT,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"gunicorn did not become ready within {ready_seconds:g} s")


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 30) -> None:
    """SIGTERM (gunicorn's graceful shutdown), then SIGKILL if it does not exit in time."""
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
