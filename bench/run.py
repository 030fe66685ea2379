"""Benchmark of /rollout/sync: in-process and over HTTP through gunicorn, against the JSON floor.

    .venv/bin/python bench/run.py          (or: make bench)
    .venv/bin/python bench/run.py --quick  (smaller counts, for a quick look)

Measures, for namespaces of 100 / 1,000 / 5,000 Flux objects (bench/payload.py), and for a
5,000-object namespace with `spec.targetSelection: Labeled` (only the 6 driven, labelled Flux
objects are sent, as Metacontroller would):
- floor: orjson.loads(body) + orjson.dumps(response), the least any JSON hook must spend;
- direct: orjson.loads(body) + the handler + orjson.dumps(response);
- flask: a POST through the Flask test client (the whole app, in-process, the body handed over
  the way hooks.worker does);
- http: gunicorn with gunicorn.conf.py (2 workers) on 127.0.0.1, driven by a small bounded load
  generator (threads + http.client): latency p50/p90/p99 and throughput.
In-process samples are medians of CPU time (time.process_time), each taken after a
gc.collect() with the collector paused during the sample, as the hook worker serves requests.

Budgets (PASS/FAIL each; the exit code is non-zero when one fails):
1. at 5,000 objects the in-process sync (flask) costs at most 1.3x the JSON floor (median over
   rounds of the ratio within a round);
2. linear: the marginal CPU cost per added object (1,000 -> 5,000) is at most 1.5x the JSON
   floor's marginal cost per object (a quadratic step shows as a growing margin; the
   collector and CPU caches affect both sides of the pair alike);
3. with label selection, a sync of a 5,000-object namespace costs under 10 ms;
4. the returned status stays under 256 KiB in the worst case (payload.worst_case_status_request);
5. a worker's peak RSS, syncing the largest payload, stays under 200 MiB.

Results go to bench/results/ (JSON and Markdown).
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench import server  # noqa: E402
from bench.payload import NOW, rollout_request, worst_case_status_request  # noqa: E402

SIZES = (100, 1000, 5000)
RESULTS = ROOT / "bench" / "results"
KIB, MIB = 1024, 1024 * 1024


class NullActuator:
    """The bench measures the decision, not the API: nothing to patch is ever sent anywhere."""

    mode = "dry-run"

    def apply(self, patches: list) -> list:
        from hooks.patchplan import PatchOutcome

        return [PatchOutcome("dry-run", "dry-run") for _ in patches]


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def _paired(funcs: dict[str, Any], repeat: int) -> dict[str, list[float]]:
    """CPU seconds of each function, `repeat` rounds; in a round the functions run back to back,
    each after a full collection and with the collector paused (as hooks.worker serves), so a
    round's samples share the machine's state and their ratio cancels most of its noise."""
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeat):
        for name, func in funcs.items():
            gc.collect()
            gc.disable()
            try:
                started = time.process_time()
                func()
                samples[name].append(time.process_time() - started)
            finally:
                gc.enable()
    return samples


def in_process(size: int, repeat: int, *, labeled: bool = False) -> dict:
    from hooks.app import HookContext, create_app
    from hooks.limits import BODY
    from hooks.rollout.sync import sync

    body = orjson.dumps(rollout_request(size, labeled=labeled))
    actuator = NullActuator()
    response = sync(orjson.loads(body), HookContext(now=NOW, actuator=actuator))
    client = create_app(
        clock=lambda: NOW, actuator=actuator, environ={"HOOK_AUTH_DISABLED": "true"}
    ).test_client()
    check = client.post("/rollout/sync", data=body, content_type="application/json")
    assert check.status_code == 200, check.get_data(as_text=True)[:500]
    assert check.get_json() == response

    def floor() -> None:
        orjson.loads(body)
        orjson.dumps(response)

    def direct() -> None:
        answer = sync(orjson.loads(body), HookContext(now=NOW, actuator=actuator))
        orjson.dumps(answer)

    def flask() -> None:
        client.post("/rollout/sync", content_type="application/json", environ_overrides={BODY: body})

    samples = _paired({"floor": floor, "direct": direct, "flask": flask}, repeat)
    return {
        "objects": size,
        "labeled": labeled,
        "body_bytes": len(body),
        "response_bytes": len(orjson.dumps(response)),
        "floor_ms": _median_ms(samples["floor"]),
        "direct_ms": _median_ms(samples["direct"]),
        "flask_ms": _median_ms(samples["flask"]),
        # Median over rounds of the sync/floor ratio of the same round.
        "flask_over_floor": round(
            statistics.median(s / f for s, f in zip(samples["flask"], samples["floor"], strict=True)), 3
        ),
    }


def collector_effect(size: int, repeat: int) -> dict:
    """CPU per request through the app with the collector on (default thresholds, as a plain
    threaded server runs) and paused during the request (collected between requests, as
    hooks.worker does): requests back to back, medians."""
    from hooks.app import create_app

    body = orjson.dumps(rollout_request(size))
    client = create_app(
        clock=lambda: NOW, actuator=NullActuator(), environ={"HOOK_AUTH_DISABLED": "true"}
    ).test_client()

    def one() -> float:
        started = time.process_time()
        client.post("/rollout/sync", data=body, content_type="application/json")
        return time.process_time() - started

    one()
    on = [one() for _ in range(repeat)]
    paused = []
    for _ in range(repeat):
        gc.disable()
        try:
            paused.append(one())
        finally:
            gc.enable()
        gc.collect()
    return {"objects": size, "collector_on_ms": _median_ms(on), "collector_paused_ms": _median_ms(paused)}


# --- over HTTP through gunicorn ----------------------------------------------------------------


def start_gunicorn(port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        ROLLOUT_ACTUATION="dry-run",
        LOG_LEVEL="warning",
        WEB_CONCURRENCY="2",
        HOOK_AUTH_DISABLED="true",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return server.start(port, env, ["--workers", "2"], ready_seconds=20)


def load(port: int, body: bytes, *, requests: int, threads: int, max_seconds: float) -> dict:
    """Fire at most `requests` POSTs from `threads` threads, stopping after `max_seconds`."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    remaining = [requests]
    stop_at = time.monotonic() + max_seconds

    def worker() -> None:
        nonlocal failures
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if remaining[0] <= 0 or time.monotonic() > stop_at:
                    break
                remaining[0] -= 1
            started = time.perf_counter()
            try:
                conn.request("POST", "/rollout/sync", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    failures += 1
        conn.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else 0.0
        )

    return {
        "requests": len(latencies),
        "failures": failures,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "throughput_rps": round(len(latencies) / wall, 1) if wall else 0.0,
    }


def over_http(sizes: tuple[int, ...], quick: bool) -> dict[int, dict]:
    port = server.free_port()
    process = start_gunicorn(port)
    try:
        out = {}
        for size in sizes:
            body = orjson.dumps(rollout_request(size))
            count = {100: 400, 1000: 150, 5000: 40}.get(size, 40) // (4 if quick else 1)
            load(port, body, requests=4, threads=2, max_seconds=10)  # warm both workers
            out[size] = load(port, body, requests=count, threads=4, max_seconds=20)
        return out
    finally:
        server.stop(process, grace_seconds=25)


# --- status size and memory ----------------------------------------------------------------


def worst_case_status() -> tuple[int, dict[str, int]]:
    """Size of the worst-case returned status, in total and per field."""
    from hooks.app import HookContext
    from hooks.rollout.sync import sync

    status = sync(worst_case_status_request(), HookContext(now=NOW, actuator=NullActuator()))["status"]
    return len(orjson.dumps(status)), {k: len(orjson.dumps(v)) for k, v in status.items()}


_MEMORY_PROBE = """
import resource, sys
sys.path.insert(0, sys.argv[2])
from bench.payload import NOW
from bench.run import NullActuator
from hooks.app import create_app
body = open(sys.argv[1], "rb").read()
env = {"HOOK_AUTH_DISABLED": "true"}
client = create_app(clock=lambda: NOW, actuator=NullActuator(), environ=env).test_client()
for _ in range(3):
    assert client.post("/rollout/sync", data=body, content_type="application/json").status_code == 200
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def worker_peak_rss(size: int) -> int:
    """Peak RSS (bytes) of a fresh process that loads the app and syncs the payload three times."""
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        handle.write(orjson.dumps(rollout_request(size)))
        handle.flush()
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_PROBE, handle.name, str(ROOT)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, ROLLOUT_ACTUATION="dry-run"),
        )
    return int(out.stdout.strip().splitlines()[-1]) * KIB  # ru_maxrss is in KiB on Linux


# --- report --------------------------------------------------------------------------------


def budgets(
    rows: dict[int, dict], status_bytes: int, rss: int, labeled: dict | None = None
) -> list[tuple[str, str, bool]]:
    big, mid = rows[max(rows)], rows[1000] if 1000 in rows else rows[min(rows)]
    ratio = big["flask_over_floor"]
    added = big["objects"] - mid["objects"]
    sync_margin = (big["flask_ms"] - mid["flask_ms"]) / added if added else 0.0
    floor_margin = (big["floor_ms"] - mid["floor_ms"]) / added if added else 0.0
    growth = sync_margin / floor_margin if floor_margin > 0 else float("inf")
    checks = [
        (
            f"in-process sync at {big['objects']} objects <= 1.3x JSON floor",
            f"{big['flask_ms']} ms vs floor {big['floor_ms']} ms; paired ratio {ratio:.2f}x",
            ratio <= 1.3,
        ),
        (
            f"linear: marginal CPU per object ({mid['objects']} -> {big['objects']}) <= 1.5x the floor's",
            f"{sync_margin * 1000:.2f} us vs floor {floor_margin * 1000:.2f} us = {growth:.2f}x",
            growth <= 1.5,
        ),
    ]
    if labeled is not None:
        checks.append(
            (
                f"with label selection, a sync of a {labeled['objects']}-object namespace < 10 ms",
                f"{labeled['flask_ms']} ms ({labeled['body_bytes'] / KIB:.0f} KiB request)",
                labeled["flask_ms"] < 10,
            )
        )
    checks += [
        ("worst-case status < 256 KiB", f"{status_bytes / KIB:.1f} KiB", status_bytes < 256 * KIB),
        (f"worker peak RSS at {max(rows)} objects < 200 MiB", f"{rss / MIB:.1f} MiB", rss < 200 * MIB),
    ]
    return checks


def markdown(
    rows: dict[int, dict],
    web: dict[int, dict],
    checks: list[tuple[str, str, bool]],
    labeled: dict | None = None,
) -> str:
    lines = [
        "| objects | request | floor (loads+dumps) | direct handler | Flask in-process "
        "| HTTP p50 | HTTP p90 | HTTP p99 | HTTP throughput |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, row in sorted(rows.items()):
        h = web.get(size, {})
        lines.append(
            f"| {size:,} | {row['body_bytes'] / MIB:.1f} MiB | {row['floor_ms']} ms | {row['direct_ms']} ms "
            f"| {row['flask_ms']} ms | {h.get('p50_ms', '-')} ms | {h.get('p90_ms', '-')} ms "
            f"| {h.get('p99_ms', '-')} ms | {h.get('throughput_rps', '-')} req/s |"
        )
    if labeled is not None:
        request_size = f"{labeled['body_bytes'] / KIB:.0f} KiB"
        lines.append(
            f"| {labeled['objects']:,}, Labeled | {request_size} | {labeled['floor_ms']} ms "
            f"| {labeled['direct_ms']} ms | {labeled['flask_ms']} ms | - | - | - | - |"
        )
    lines += ["", "| budget | measured | result |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'PASS' if ok else 'FAIL'} |" for name, value, ok in checks]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and requests")
    parser.add_argument("--no-http", action="store_true", help="skip the gunicorn measurement")
    args = parser.parse_args(argv)
    repeat = {100: 41, 1000: 21, 5000: 9} if not args.quick else {100: 9, 1000: 5, 5000: 3}

    rows = {size: in_process(size, repeat[size]) for size in SIZES}
    labeled = in_process(max(SIZES), repeat[100], labeled=True)
    collector = collector_effect(max(SIZES), repeat[max(SIZES)])
    web = {} if args.no_http else over_http(SIZES, args.quick)
    status_bytes, status_fields = worst_case_status()
    rss = worker_peak_rss(max(SIZES))
    checks = budgets(rows, status_bytes, rss, labeled)
    table = markdown(rows, web, checks, labeled)
    print(table)
    largest = sorted(status_fields.items(), key=lambda kv: -kv[1])[:4]
    print(
        f"\ncollector at {collector['objects']} objects: on {collector['collector_on_ms']} ms, "
        f"paused {collector['collector_paused_ms']} ms per request"
    )
    print("\nworst-case status by field: " + ", ".join(f"{k} {v / KIB:.1f} KiB" for k, v in largest))

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "when": stamp,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "in_process": rows,
        "in_process_labeled": labeled,
        "collector": collector,
        "http": web,
        "worst_case_status_bytes": status_bytes,
        "worst_case_status_field_bytes": status_fields,
        "worker_peak_rss_bytes": rss,
        "self_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB,
        "budgets": [{"budget": n, "measured": v, "pass": ok} for n, v, ok in checks],
    }
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / f"bench-{stamp}.md").write_text(table + "\n")
    print(f"\nresults written to {RESULTS.relative_to(ROOT)}/bench-{stamp}.{{json,md}}")
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
