"""Overload benchmark: the service as deployed (gunicorn.conf.py) on 127.0.0.1, pushed past its capacity.

    .venv/bin/python bench/overload.py            (or: make bench-overload)
    .venv/bin/python bench/overload.py --runs 3   (repeat; medians and spread are reported)

Each run starts gunicorn with the project's gunicorn.conf.py (WEB_CONCURRENCY workers, a bearer
token, dry-run actuation) and measures, with 5,000-object /rollout/sync requests (13 MiB):
1. baseline: 4 clients for --seconds; goodput = answers 200 within 10 s per second; a client
   retries a failed request after an exponential, jittered backoff (0.25 s doubling to 4 s),
   as Metacontroller requeues a failed sync;
2. overload: --clients clients (many more than workers) plus 64 slow-header connections (one
   header line a second, never finishing; re-opened when closed) for --seconds, with a prober
   opening a new connection to /healthz and /readyz every 0.25 s, like the kubelet;
3. body limit: one client per worker plus two, each sending a request just under the body
   limit (12,000 objects, 31 MiB), for --seconds / 2.
Throughout, the pod's memory (the sum of the RSS of gunicorn's master and workers) is sampled
every 0.1 s. Every client waits at most 12 s for an answer, so the run stops by itself.

Budgets (PASS/FAIL; exit code 1 when one fails): every probe answered under 2 s; no answer
later than 10 s (Metacontroller's hook timeout); goodput under overload >= 70 % of the
baseline's; pod memory under the Deployment's memory limit (metacontroller/deployment.yaml).
Results go to bench/results/ (JSON and Markdown).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import yaml  # noqa: E402

from bench import server  # noqa: E402
from bench.payload import rollout_request  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MIB = 1024 * 1024
HOOK_TIMEOUT_S = 10.0  # Metacontroller's
CLIENT_TIMEOUT_S = 12.0
TOKEN = "bench-token-0f3c"
SLOW_CONNECTIONS = 64


def deployment_memory_limit() -> int:
    """The hook container's memory limit in bytes, from metacontroller/deployment.yaml."""
    doc = yaml.safe_load((ROOT / "metacontroller" / "deployment.yaml").read_text())
    [container] = [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "hooks"]
    raw = str(container["resources"]["limits"]["memory"])
    units = {"Ki": 1024, "Mi": MIB, "Gi": 1024 * MIB}
    for suffix, factor in units.items():
        if raw.endswith(suffix):
            return int(float(raw[: -len(suffix)]) * factor)
    return int(raw)


def workers_of_deployment() -> int:
    doc = yaml.safe_load((ROOT / "metacontroller" / "deployment.yaml").read_text())
    [container] = [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "hooks"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    return int(env.get("WEB_CONCURRENCY") or 2)


# --- the server and its memory -------------------------------------------------------------------


def start_server(
    port: int, workers: int, worker_class: str | None = None, threads: int = 1
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOK_", "PROMETHEUS_", "KUBERNETES_"))}
    env.update(
        ROLLOUT_ACTUATION="dry-run",
        LOG_LEVEL="error",
        WEB_CONCURRENCY=str(workers),
        HOOK_TOKEN=TOKEN,
        PORT=str(port),
    )
    # For comparisons only (docs/performance.md): another gunicorn worker class than the config's.
    other = ["--worker-class", worker_class, "--threads", str(threads)] if worker_class else []
    return server.start(port, env, other)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class MemorySampler(threading.Thread):
    """Peak of the sum of RSS over the server process and its children (the pod's memory)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.peak_worker = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            workers = [_rss(p) for p in _children(self.pid)]
            self.peak = max(self.peak, _rss(self.pid) + sum(workers))
            self.peak_worker = max([self.peak_worker, *workers])
            time.sleep(0.1)

    def stop(self) -> int:
        self.running = False
        self.join(timeout=2)
        return self.peak


# --- load ------------------------------------------------------------------------------------


@dataclass
class Tally:
    good: int = 0  # 200 within HOOK_TIMEOUT_S
    late: int = 0  # any answer (or none) after HOOK_TIMEOUT_S
    by_status: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: str, elapsed: float) -> None:
        with self.lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1
            if elapsed > HOOK_TIMEOUT_S:
                self.late += 1
            elif status == "200":
                self.good += 1


def hook_clients(
    port: int, body: bytes, clients: int, seconds: float, tally: Tally
) -> list[threading.Thread]:
    stop_at = time.monotonic() + seconds
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    def client(seed: int) -> None:
        jitter = random.Random(seed)
        failures = 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                conn.request("POST", "/rollout/sync", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = str(response.status)
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                status = "timeout" if isinstance(exc, TimeoutError) else "connection-error"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
            tally.add(status, time.monotonic() - started)
            # Like Metacontroller's rate-limited requeue: a failed sync is retried after an
            # exponentially growing delay (here 0.25 s doubling to 4 s, jittered), reset on success.
            failures = 0 if status == "200" else failures + 1
            if failures:
                time.sleep(min(4.0, 0.25 * 2 ** (failures - 1)) * jitter.uniform(0.5, 1.0))
        conn.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def slow_headers(port: int, seconds: float) -> list[threading.Thread]:
    """SLOW_CONNECTIONS connections, each sending one header line a second and never finishing."""
    stop_at = time.monotonic() + seconds

    def slow() -> None:
        sock: socket.socket | None = None
        line = 0
        while time.monotonic() < stop_at:
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
                    sock.sendall(b"POST /rollout/sync HTTP/1.1\r\nHost: hooks\r\n")
                    line = 0
                sock.sendall(f"X-Slow-{line}: {'x' * 20}\r\n".encode())
                line += 1
            except OSError:
                if sock is not None:
                    sock.close()
                sock = None
            time.sleep(1.0)
        if sock is not None:
            sock.close()

    threads = [threading.Thread(target=slow, daemon=True) for _ in range(SLOW_CONNECTIONS)]
    for thread in threads:
        thread.start()
    return threads


_PROBER = """
import http.client, json, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
stop_at, out, n = time.monotonic() + seconds, [], 0
while time.monotonic() < stop_at:
    started = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", ("/healthz", "/readyz")[n % 2])
        response = conn.getresponse()
        response.read()
        conn.close()
        out.append(time.monotonic() - started if response.status == 200 else 99.0)
    except (OSError, http.client.HTTPException):
        out.append(99.0)  # no answer counts as a failed probe
    n += 1
    time.sleep(0.25)
print(json.dumps(out))
"""


def prober(port: int, seconds: float) -> subprocess.Popen:
    """A separate process opening a new connection to /healthz or /readyz every 0.25 s, like the
    kubelet: its latencies are the server's, not the load generator's own GIL contention."""
    return subprocess.Popen(
        [sys.executable, "-c", _PROBER, str(port), str(seconds)], stdout=subprocess.PIPE, text=True
    )


def phase(port: int, body: bytes, clients: int, seconds: float, *, slow: bool) -> dict[str, Any]:
    tally = Tally()
    started = time.monotonic()
    probe_process = prober(port, seconds)
    threads = hook_clients(port, body, clients, seconds, tally)
    if slow:
        threads += slow_headers(port, seconds)
    for thread in threads:
        thread.join(timeout=seconds + CLIENT_TIMEOUT_S + 5)
    wall = time.monotonic() - started
    out, _ = probe_process.communicate(timeout=30)
    probes: list[float] = json.loads(out)
    return {
        "clients": clients,
        "slow_connections": SLOW_CONNECTIONS if slow else 0,
        "seconds": round(wall, 1),
        "goodput_rps": round(tally.good / wall, 2),
        "answers": dict(sorted(tally.by_status.items())),
        "late_answers": tally.late,
        "probes": len(probes),
        "probe_max_ms": round(max(probes) * 1000, 1) if probes else None,
        "probe_p99_ms": round(sorted(probes)[int(0.99 * (len(probes) - 1))] * 1000, 1) if probes else None,
    }


def body_limit_request() -> bytes:
    """The largest request of the bench's shape under the body limit (12,000 objects, 31 MiB)."""
    from hooks.limits import MAX_BODY_BYTES

    body = orjson.dumps(rollout_request(12000))
    assert len(body) <= MAX_BODY_BYTES, len(body)
    return body


def one_run(args: argparse.Namespace, body: bytes, big: bytes) -> dict[str, Any]:
    port = server.free_port()
    process = start_server(port, args.workers, args.worker_class, args.threads)
    sampler = MemorySampler(process.pid)
    sampler.start()
    try:
        baseline = phase(port, body, 4, args.seconds, slow=False)
        overload = phase(port, body, args.clients, args.seconds, slow=True)
        limit = phase(port, big, args.workers + 2, args.seconds / 2, slow=False)
    finally:
        peak = sampler.stop()
        server.stop(process)
    return {
        "baseline": baseline,
        "overload": overload,
        "body_limit": limit,
        "pod_peak_rss_bytes": peak,
        "worker_peak_rss_bytes": sampler.peak_worker,
    }


def budgets(run: dict[str, Any], limit: int) -> list[tuple[str, str, bool]]:
    base, over, big = run["baseline"], run["overload"], run["body_limit"]
    probe_max = max(p["probe_max_ms"] or 0 for p in (base, over, big))
    late = sum(p["late_answers"] for p in (base, over, big))
    ratio = over["goodput_rps"] / base["goodput_rps"] if base["goodput_rps"] else 0.0
    peak = run["pod_peak_rss_bytes"]
    return [
        ("every probe answered under 2 s", f"max {probe_max:.0f} ms", probe_max < 2000),
        ("no answer later than 10 s", f"{late} late", late == 0),
        (
            "goodput under overload >= 70% of 4-client goodput",
            f"{over['goodput_rps']} vs {base['goodput_rps']} req/s = {ratio:.0%}",
            ratio >= 0.7,
        ),
        (
            "pod memory under the Deployment's limit",
            f"{peak / MIB:.0f} MiB vs {limit / MIB:.0f} MiB",
            peak < limit,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each load phase")
    parser.add_argument("--clients", type=int, default=32, help="hook clients during the overload phase")
    parser.add_argument("--workers", type=int, default=workers_of_deployment())
    parser.add_argument("--worker-class", help="compare with another gunicorn worker class (e.g. gthread)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker for --worker-class")
    args = parser.parse_args(argv)
    # Stopped from outside: still stop the server (one_run's finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    limit = deployment_memory_limit()
    body = orjson.dumps(rollout_request(5000))
    big = body_limit_request()
    runs = []
    for n in range(args.runs):
        run = one_run(args, body, big)
        run["budgets"] = [{"budget": b, "measured": m, "pass": ok} for b, m, ok in budgets(run, limit)]
        runs.append(run)
        print(f"run {n + 1}: " + json.dumps(run))
    lines = [
        f"worker class {args.worker_class or 'hooks.worker.HookWorker'} x{args.threads}, "
        f"workers {args.workers}, overload clients {args.clients}, {SLOW_CONNECTIONS} slow-header "
        f"connections, {args.seconds:g} s phases, {len(body) / MIB:.1f} MiB requests, {args.runs} run(s)",
        "",
        "| measure | median | min | max |",
        "|---|---:|---:|---:|",
    ]

    def row(name: str, values: list[float], unit: str) -> None:
        lines.append(
            f"| {name} | {statistics.median(values):.2f} {unit} | {min(values):.2f} {unit} "
            f"| {max(values):.2f} {unit} |"
        )

    row("goodput, 4 clients", [r["baseline"]["goodput_rps"] for r in runs], "req/s")
    row(f"goodput, {args.clients} clients + slow", [r["overload"]["goodput_rps"] for r in runs], "req/s")
    row("probe max, overload", [r["overload"]["probe_max_ms"] or 0 for r in runs], "ms")
    row(
        "probe max, all phases",
        [max(r[p]["probe_max_ms"] or 0 for p in ("baseline", "overload", "body_limit")) for r in runs],
        "ms",
    )
    row(
        "answers later than 10 s",
        [sum(r[p]["late_answers"] for p in ("baseline", "overload", "body_limit")) for r in runs],
        "",
    )
    row("pod peak RSS", [r["pod_peak_rss_bytes"] / MIB for r in runs], "MiB")
    row("worker peak RSS", [r["worker_peak_rss_bytes"] / MIB for r in runs], "MiB")
    lines += ["", "| budget | measured (median run) | result (all runs) |", "|---|---|---|"]
    for i, (name, _, _) in enumerate(budgets(runs[0], limit)):
        ok = all(r["budgets"][i]["pass"] for r in runs)
        measured = sorted(r["budgets"][i]["measured"] for r in runs)[len(runs) // 2]
        lines.append(f"| {name} | {measured} | {'PASS' if ok else 'FAIL'} |")
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"overload-{stamp}.json").write_text(json.dumps({"args": vars(args), "runs": runs}, indent=2))
    (RESULTS / f"overload-{stamp}.md").write_text(table + "\n")
    return 0 if all(b["pass"] for r in runs for b in r["budgets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
