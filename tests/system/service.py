"""The real hook service under gunicorn on 127.0.0.1, started and stopped by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: How long the service may take to start, and to stop after SIGTERM (gunicorn's graceful_timeout).
START_SECONDS = 30
STOP_SECONDS = 25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    process: subprocess.Popen
    url: str
    log: Path

    @classmethod
    def start(cls, tmp: Path, *, kubeconfig: Path, token: str) -> Service:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("KUBERNETES_", "PROMETHEUS_", "HOOK_", "GUNICORN_", "ROLLOUT_"))
            and key.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        }
        env.update(
            HOME=str(tmp),
            KUBECONFIG=str(kubeconfig),
            HOOK_TOKEN=token,
            ROLLOUT_ACTUATION="apply",
            WEB_CONCURRENCY="2",
            LOG_LEVEL="info",
        )
        port = free_port()
        log = tmp / "gunicorn.log"
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",  # the command line wins over the config file's 0.0.0.0
            "hooks.app:app",
        ]
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )
        service = cls(process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                raise AssertionError("gunicorn exited at start:\n" + log.read_text())
            try:
                with urllib.request.urlopen(service.url + "/readyz", timeout=1) as response:
                    if response.status == 200:
                        return service
            except OSError:
                pass
            if time.monotonic() > deadline:
                service.stop()
                raise AssertionError(f"gunicorn not ready within {START_SECONDS} s:\n" + log.read_text())
            time.sleep(0.1)

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=10)
