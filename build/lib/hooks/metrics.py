"""Prometheus metrics of the hook service.

Under gunicorn every worker is a separate process, so the metrics use prometheus_client's
multiprocess mode when `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn.conf.py sets it before
any worker imports this module): each process writes its values to files in that
directory and `/metrics` aggregates them. Without it, one in-process registry is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
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
ANNOUNCEMENTS = Counter(
    "rollout_announcements",
    "Facts announced, by destination (kubernetes, flux) and result "
    "(created, exists, delivered, error, skipped).",
    ["destination", "result"],
)
# Delivery metrics (DORA-style), counted when a fact's Kubernetes Event is created: once per
# fact across replicas and retries. Labels are bounded: namespace and trigger, never a version.
DELIVERY_DEPLOYMENTS = Counter(
    "rollout_delivery_deployments",
    "Deployments announced, by namespace and trigger (Automatic, Pin, ForceDeploy, Rollback, Adoption).",
    ["namespace", "trigger"],
)
DELIVERY_CHANGE_FAILURES = Counter(
    "rollout_delivery_change_failures",
    "Deployments whose bake Failed (a failed retry of the same deployment is not counted again).",
    ["namespace"],
)
_DELIVERY_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800)
DELIVERY_LEAD_TIME = Histogram(
    "rollout_delivery_lead_time_seconds",
    "From a release's discoveredAt to its bake Succeeded, by namespace.",
    ["namespace"],
    buckets=_DELIVERY_BUCKETS,
)
DELIVERY_TIME_TO_RECOVER = Histogram(
    "rollout_delivery_time_to_recover_seconds",
    "From a bake Failed to the next bake Succeeded of the same Rollout, by namespace.",
    ["namespace"],
    buckets=_DELIVERY_BUCKETS,
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


def announcement(destination: str, result: str) -> None:
    ANNOUNCEMENTS.labels(destination, result).inc()


def delivery(namespace: str, fact: Any) -> None:
    """Delivery metrics of one newly announced fact (hooks.facts.Fact)."""
    if fact.action == "Deploy":
        DELIVERY_DEPLOYMENTS.labels(namespace, fact.trigger or "Unknown").inc()
    elif fact.reason == "BakeFailed" and "change_failure" in fact.measures:
        DELIVERY_CHANGE_FAILURES.labels(namespace).inc()
    elif fact.reason == "BakeSucceeded":
        if "lead_time" in fact.measures:
            DELIVERY_LEAD_TIME.labels(namespace).observe(fact.measures["lead_time"])
        if "time_to_recover" in fact.measures:
            DELIVERY_TIME_TO_RECOVER.labels(namespace).observe(fact.measures["time_to_recover"])


def render(multiproc_dir: str | None = None) -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type (aggregated over processes)."""
    directory = multiproc_dir or MULTIPROC_DIR
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
