"""The bake state machine of the deployed entry (SPEC §3.7).

Deploying -> InProgress -> Succeeded | Failed; every time-dependent fact is an absolute
timestamp in the entry, so the same clock always gives the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hooks.k8s import format_time, parse_time
from hooks.rollout.bounds import MESSAGE_CHARS, cut, failed_checks
from hooks.rollout.health import Check

DEPLOYING = "Deploying"
IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CANCELLED = "Cancelled"
ACTIVE = (DEPLOYING, IN_PROGRESS)

MSG_WAITING = "Waiting for health checks to become healthy before starting bake."
MSG_NO_BAKE = "No bake configured."
MSG_STARTED = "Bake started, monitoring for errors."
MSG_SUCCEEDED = "Bake completed successfully."
MSG_CANCELLED = "Bake cancelled due to new deployment."
MSG_ERROR_BEFORE = "A HealthCheck reported an error after deployment."
MSG_ERROR_AFTER = "A HealthCheck reported an error after bake started."
MSG_TIMEOUT = "Deploy timeout reached before bake could start (health checks did not become healthy in time)."
MSG_TIMEOUT_TARGET = "Deploy timeout reached before bake could start: Flux could not apply the version:"
MSG_TARGET_FAILED = "Waiting for Flux, which cannot apply the version:"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cutoff(entry: dict) -> datetime:
    """max(timestamp, lastRetryTimestamp): health facts older than this do not count."""
    times = [parse_time(entry.get("timestamp")), parse_time(entry.get("lastRetryTimestamp"))]
    known = [t for t in times if t is not None]
    return max(known) if known else _EPOCH


def _not_ready_reason(check: Check, since: datetime) -> str:
    if check.status == "Healthy":
        return "HealthCheck has not reported healthy since the deployment"
    state = check.status or "not reporting a status"
    return f"HealthCheck is {state}: {check.message}" if check.message else f"HealthCheck is {state}"


def _fail(entry: dict, message: str, failed: list[dict], now: datetime) -> dict:
    entry.update(bakeStatus=FAILED, bakeStatusMessage=message, bakeEndTime=format_time(now))
    entry["failedHealthChecks"] = failed_checks(failed)
    return entry


def advance(
    entry: dict,
    checks: Sequence[Check],
    targets_synced: bool,
    bake_time: timedelta | None,
    deploy_timeout: timedelta | None,
    recovery: bool,
    now: datetime,
    target_failure: str | None = None,
) -> dict:
    """Apply every due step (error, timeout, start, finish) to a Deploying/InProgress entry.

    `target_failure` names a target Flux failed to apply: the bake does not start on it, the
    entry's message names it, and a deploy timeout fails the entry with that reason."""
    if entry.get("bakeStatus") not in ACTIVE:
        return entry
    entry = dict(entry)
    since = cutoff(entry)
    started = parse_time(entry.get("bakeStartTime")) if entry.get("bakeStatus") == IN_PROGRESS else None

    # 1. errors; in recovery mode errors before the bake started do not count
    threshold = since if not (recovery and started) else max(since, started)
    if not (recovery and started is None):
        errored = [c for c in checks if c.last_error is not None and c.last_error >= threshold]
        if errored:
            message = MSG_ERROR_AFTER if started else MSG_ERROR_BEFORE
            return _fail(entry, message, [c.summary() for c in errored], now)

    if started is None:
        # 2. deploy timeout
        if deploy_timeout is not None and now > since + deploy_timeout:
            waiting = [
                c.summary(_not_ready_reason(c, since))
                for c in checks
                if not (c.status == "Healthy" and c.last_change is not None and c.last_change >= since)
            ]
            message = MSG_TIMEOUT
            if target_failure is not None:
                message = cut(f"{MSG_TIMEOUT_TARGET} {target_failure}", MESSAGE_CHARS)
            return _fail(entry, message, waiting, now)
        if target_failure is not None:
            entry["bakeStatusMessage"] = cut(f"{MSG_TARGET_FAILED} {target_failure}", MESSAGE_CHARS)
            return entry
        if str(entry.get("bakeStatusMessage", "")).startswith(MSG_TARGET_FAILED):
            entry["bakeStatusMessage"] = MSG_WAITING  # Flux recovered
        # 3. start
        fresh = all(
            c.status == "Healthy" and c.last_change is not None and c.last_change >= since for c in checks
        )
        if not (targets_synced and fresh):
            return entry
        started = now
        entry.update(bakeStatus=IN_PROGRESS, bakeStatusMessage=MSG_STARTED, bakeStartTime=format_time(now))

    # 4. finish
    if bake_time is None or now >= started + bake_time:
        entry.update(bakeStatus=SUCCEEDED, bakeStatusMessage=MSG_SUCCEEDED, bakeEndTime=format_time(now))
    return entry


def deadline(entry: dict, bake_time: timedelta | None, deploy_timeout: timedelta | None) -> datetime | None:
    """When this entry's bake next changes by time alone (finish or deploy timeout)."""
    status = entry.get("bakeStatus")
    if status == IN_PROGRESS and bake_time is not None:
        started = parse_time(entry.get("bakeStartTime"))
        return started + bake_time if started else None
    if status == DEPLOYING and deploy_timeout is not None:
        return cutoff(entry) + deploy_timeout + timedelta(seconds=1)  # "now > deadline"
    return None


def retry(entry: dict, now: datetime) -> dict:
    """Back to Deploying with a new cutoff; the old failure details are cleared."""
    entry = {
        k: v
        for k, v in entry.items()
        if k not in ("bakeStartTime", "bakeEndTime", "failedHealthChecks", "bakeStatusMessage")
    }
    entry.update(bakeStatus=DEPLOYING, bakeStatusMessage=MSG_WAITING, lastRetryTimestamp=format_time(now))
    return entry


def cancel(entry: dict, now: datetime) -> dict:
    return {
        **entry,
        "bakeStatus": CANCELLED,
        "bakeStatusMessage": MSG_CANCELLED,
        "bakeEndTime": format_time(now),
    }
