"""The HealthCheck status document: only the fields of the CRD's status schema.

`lastChangeTime` moves only when `status` changes; `lastErrorTime` never moves
backwards. Both make the status a fixed point: syncing again changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hooks.healthcheck.kustomization import UNHEALTHY, Verdict
from hooks.k8s import format_time, parse_time

FIELDS = ("status", "message", "lastErrorTime", "lastChangeTime", "observedGeneration")


def current(status: Any) -> dict:
    """The persisted status reduced to the schema's fields ({} when absent or malformed)."""
    if not isinstance(status, Mapping):
        return {}
    return {key: status[key] for key in FIELDS if key in status and status[key] is not None}


def apply_verdict(status: Mapping, verdict: Verdict, now: datetime, cutoff: datetime | None = None) -> dict:
    """The new status for a verdict, given the current one.

    `lastErrorTime` is the failing condition's lastTransitionTime, never moving backwards, and at
    least `cutoff` (the newest deployment of a selecting Rollout): Flux keeps lastTransitionTime
    while a failure continues, and a failure that outlives a deploy is a failure of that deploy."""
    new: dict[str, Any] = {"status": verdict.status, "message": verdict.message}
    last_change = parse_time(status.get("lastChangeTime"))
    if status.get("status") != verdict.status or last_change is None:
        last_change = now
    new["lastChangeTime"] = format_time(last_change)
    last_error = parse_time(status.get("lastErrorTime"))
    if verdict.status == UNHEALTHY and verdict.error_time is not None:
        error_time = verdict.error_time
        if cutoff is not None and error_time < cutoff:
            error_time = cutoff
        last_error = error_time if last_error is None else max(last_error, error_time)
    if last_error is not None:
        new["lastErrorTime"] = format_time(last_error)
    if "observedGeneration" in status:
        new["observedGeneration"] = status["observedGeneration"]
    return new
