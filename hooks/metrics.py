"""Prometheus metrics of the hook service.

Under gunicorn every worker is a separate process, so the metrics use prometheus_client's
multiprocess mode when `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn.conf.py sets it before
any worker imports this module): each process writes its values to files in that
directory and `/metrics` aggregates them. Without it, one in-process registry is used.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

#: Read once, like prometheus_client itself does when it picks its value storage.
MULTIPROC_DIR: str | None = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

HOOK_REQUESTS = Counter(
    "rollout_hook_requests",
    "Hook requests by hook route and outcome (ok, bad_request, error, unauthorized, too_large).",
    ["hook", "outcome"],
)
HOOK_LATENCY = Histogram(
    "rollout_hook_request_duration_seconds",
    "Time to answer a hook request, by hook route.",
    ["hook"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DECISIONS = Counter(
    "rollout_decisions",
    "Outcomes of successful Rollout syncs (deployed, up-to-date, blocked-gates, ...).",
    ["decision"],
)
DEPLOYS = Counter("rollout_deploys", "Deployments recorded by Rollout syncs (automatic and manual).")
BAKE_RESULTS = Counter("rollout_bake_results", "Bake results reached by Rollout syncs.", ["result"])
PATCHES = Counter(
    "rollout_actuation_patches",
    "JSON Patches sent to Flux objects and Rollouts, by result (applied, conflict, error, dry-run).",
    ["result"],
)
# 'mostrecent': for each label set the value written last by any process wins, also after
# that process exited. A superseded version is therefore written as 0 (see deployed_version).
DEPLOYED_VERSION = Gauge(
    "rollout_deployed_version_info",
    "1 for the version each Rollout has deployed (0 for versions it deployed before, multiprocess).",
    ["namespace", "rollout", "version"],
    multiprocess_mode="mostrecent",
)


def hook_request(hook: str, outcome: str, seconds: float) -> None:
    HOOK_REQUESTS.labels(hook, outcome).inc()
    HOOK_LATENCY.labels(hook).observe(seconds)


def rollout_synced(decision: str | None, bakes: Iterable[str]) -> None:
    """Count one successful Rollout sync: its decision and the bake results it reached."""
    if decision:
        DECISIONS.labels(decision).inc()
        if decision == "deployed":
            DEPLOYS.inc()
    for result in bakes:
        BAKE_RESULTS.labels(str(result)).inc()


def patches(results: Iterable[str]) -> None:
    for result in results:
        PATCHES.labels(str(result)).inc()


def deployed_version(namespace: str, rollout: str, version: str | None, previous: str | None) -> None:
    """Publish the Rollout's deployed version; retire the one it had in the persisted status.

    Single process: the previous series is removed. Multiprocess: a series cannot be
    removed from the other workers' files, so the previous version is set to 0; with the
    'mostrecent' mode that write outranks the 1 another worker wrote earlier. Query with
    `rollout_deployed_version_info == 1`.
    """
    if previous and previous != version:
        if MULTIPROC_DIR:
            DEPLOYED_VERSION.labels(namespace, rollout, previous).set(0)
        else:
            with contextlib.suppress(KeyError):
                DEPLOYED_VERSION.remove(namespace, rollout, previous)
    if version:
        DEPLOYED_VERSION.labels(namespace, rollout, version).set(1)


def render(multiproc_dir: str | None = None) -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type (aggregated over processes)."""
    directory = multiproc_dir or MULTIPROC_DIR
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
