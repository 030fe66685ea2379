"""The bake state machine of the deployed entry (docs/spec/v1alpha1/rollout.md).

Deploying -> InProgress -> Succeeded | Failed; every time-dependent fact is an absolute
timestamp in the entry, so the same clock always gives the same answer. A bake never starts
before Flux has applied the version (every target Synced), and every time written into an
entry is at least the entry's own timestamp (a hook replica with a slow clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hooks.api.rollout import BakeStatus
from hooks.k8s import format_time, parse_time
from hooks.rollout.bounds import MESSAGE_CHARS, cut, failed_checks
from hooks.rollout.health import Check

DEPLOYING = BakeStatus.DEPLOYING.value
IN_PROGRESS = BakeStatus.IN_PROGRESS.value
SUCCEEDED = BakeStatus.SUCCEEDED.value
FAILED = BakeStatus.FAILED.value
CANCELLED = BakeStatus.CANCELLED.value
ACTIVE = (DEPLOYING, IN_PROGRESS)

MSG_WAITING = "Waiting for health checks to become healthy before starting bake."
MSG_WAITING_FLUX = "Waiting for Flux to apply the version."
MSG_NO_BAKE = "No bake configured."
MSG_NO_CHECKS = "healthCheckSelector selects no HealthCheck"
MSG_STARTED = "Bake started, monitoring for errors."
MSG_SUCCEEDED = "Bake completed successfully."
MSG_CANCELLED = "Bake cancelled due to new deployment."
MSG_ERROR_BEFORE = "A HealthCheck reported an error after deployment."
MSG_ERROR_AFTER = "A HealthCheck reported an error after bake started."
MSG_TIMEOUT = "Deploy timeout reached before bake could start (health checks did not become healthy in time)."
MSG_TIMEOUT_PREFIX = "Deploy timeout reached before bake could start: "
MSG_TIMEOUT_TARGET = MSG_TIMEOUT_PREFIX + "Flux could not apply the version: "
MSG_TARGET_FAILED = "Waiting for Flux, which cannot apply the version: "

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Inputs:
    """What one bake step reads besides the entry and the clock."""

    checks: Sequence[Check]
    synced: bool  # every target Synced (§4.1; in dry-run a due patch counts)
    failed_target: str | None  # message naming the first Failed target
    bake_time: timedelta | None
    deploy_timeout: timedelta | None
    configured: bool  # any of bakeTime, deployTimeout, healthCheckSelector
    selector_set: bool
    recovery: bool  # BakeFailureDisabled: errors before the bake starts do not count


def cutoff(entry: Any) -> datetime:
    """max(timestamp, lastRetryTimestamp): health facts older than this do not count."""
    if not isinstance(entry, dict):
        return _EPOCH
    times = [parse_time(entry.get("timestamp")), parse_time(entry.get("lastRetryTimestamp"))]
    known = [t for t in times if t is not None]
    return max(known) if known else _EPOCH


def _at_least_entry(entry: dict[str, Any], now: datetime) -> str:
    """`now`, or the entry's own latest time if a slow clock is behind it (docs/spec/v1alpha1/rollout.md)."""
    times = [parse_time(entry.get(k)) for k in ("timestamp", "lastRetryTimestamp", "bakeStartTime")]
    return format_time(max([now, *(t for t in times if t is not None)]))


def _not_ready_reason(check: Check) -> str:
    if check.status == "Healthy":
        return "HealthCheck has not reported healthy since the deployment"
    state = check.status or "not reporting a status"
    return f"HealthCheck is {state}: {check.message}" if check.message else f"HealthCheck is {state}"


def _fail(entry: dict[str, Any], message: str, failed: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    entry.update(bakeStatus=FAILED, bakeStatusMessage=message, bakeEndTime=_at_least_entry(entry, now))
    entry["failedHealthChecks"] = failed_checks(failed)
    return entry


def _fresh(check: Check, since: datetime) -> bool:
    return check.status == "Healthy" and check.last_change is not None and check.last_change >= since


def _error_step(entry: dict[str, Any], inp: Inputs, started: datetime | None, now: datetime) -> bool:
    if inp.recovery and started is None:
        return False
    threshold = max(cutoff(entry), started) if (inp.recovery and started) else cutoff(entry)
    errored = [c for c in inp.checks if c.last_error is not None and c.last_error >= threshold]
    if errored:
        _fail(entry, MSG_ERROR_AFTER if started else MSG_ERROR_BEFORE, [c.summary() for c in errored], now)
    return bool(errored)


def _timeout_step(entry: dict[str, Any], inp: Inputs, now: datetime) -> bool:
    since = cutoff(entry)
    if inp.deploy_timeout is None or not now > since + inp.deploy_timeout:
        return False
    if inp.failed_target is not None:
        _fail(entry, cut(MSG_TIMEOUT_TARGET + inp.failed_target, MESSAGE_CHARS), [], now)
    elif inp.selector_set and not inp.checks:
        _fail(entry, MSG_TIMEOUT_PREFIX + MSG_NO_CHECKS, [], now)
    else:
        waiting = [c.summary(_not_ready_reason(c)) for c in inp.checks if not _fresh(c, since)]
        _fail(entry, MSG_TIMEOUT, waiting, now)
    return True


def _start_step(entry: dict[str, Any], inp: Inputs, now: datetime) -> bool:
    """Step 3: every target Synced and every selected check freshly Healthy (and at least one
    when a selector is set) ⇒ InProgress from max(now, cutoff)."""
    since = cutoff(entry)
    waiting = MSG_WAITING
    if inp.failed_target is not None:
        waiting = cut(MSG_TARGET_FAILED + inp.failed_target, MESSAGE_CHARS)
    elif inp.selector_set and not inp.checks:
        waiting = MSG_NO_CHECKS
    if waiting != MSG_WAITING or not inp.synced or not all(_fresh(c, since) for c in inp.checks):
        entry["bakeStatusMessage"] = waiting
        return False
    entry.update(
        bakeStatus=IN_PROGRESS, bakeStatusMessage=MSG_STARTED, bakeStartTime=format_time(max(now, since))
    )
    return True


def _unconfigured(entry: dict[str, Any], inp: Inputs, now: datetime) -> dict[str, Any]:
    """No bake configuration: Succeeded once Flux applied the version (every target Synced)."""
    if entry.get("bakeStatus") == IN_PROGRESS or inp.synced:
        entry.update(
            bakeStatus=SUCCEEDED, bakeStatusMessage=MSG_NO_BAKE, bakeEndTime=_at_least_entry(entry, now)
        )
    elif inp.failed_target is not None:
        entry["bakeStatusMessage"] = cut(MSG_TARGET_FAILED + inp.failed_target, MESSAGE_CHARS)
    else:
        entry["bakeStatusMessage"] = MSG_WAITING_FLUX
    return entry


def advance(raw: Any, inp: Inputs, now: datetime) -> Any:
    """Apply every due step (error, timeout, start, finish) to a Deploying/InProgress entry."""
    if not isinstance(raw, dict) or raw.get("bakeStatus") not in ACTIVE:
        return raw
    entry = dict(raw)
    if not inp.configured:
        return _unconfigured(entry, inp, now)
    started = parse_time(entry.get("bakeStartTime")) if entry.get("bakeStatus") == IN_PROGRESS else None
    if _error_step(entry, inp, started, now):
        return entry
    if started is None:
        if _timeout_step(entry, inp, now) or not _start_step(entry, inp, now):
            return entry
        started = parse_time(entry["bakeStartTime"])
        assert started is not None
    if inp.bake_time is None or now >= started + inp.bake_time:
        entry.update(
            bakeStatus=SUCCEEDED, bakeStatusMessage=MSG_SUCCEEDED, bakeEndTime=_at_least_entry(entry, now)
        )
    return entry


def deadline(entry: Any, bake_time: timedelta | None, deploy_timeout: timedelta | None) -> datetime | None:
    """When this entry's bake next changes by time alone (finish or deploy timeout)."""
    if not isinstance(entry, dict):
        return None
    status = entry.get("bakeStatus")
    if status == IN_PROGRESS and bake_time is not None:
        started = parse_time(entry.get("bakeStartTime"))
        return started + bake_time if started else None
    if status == DEPLOYING and deploy_timeout is not None:
        return cutoff(entry) + deploy_timeout + timedelta(seconds=1)  # "now > deadline"
    return None


def retry(entry: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Back to Deploying with a new cutoff (never before the entry); old failure details cleared."""
    kept = {
        k: v
        for k, v in entry.items()
        if k not in ("bakeStartTime", "bakeEndTime", "failedHealthChecks", "bakeStatusMessage")
    }
    stamp = parse_time(entry.get("timestamp"))
    moment = max(now, stamp) if stamp is not None else now
    kept.update(bakeStatus=DEPLOYING, bakeStatusMessage=MSG_WAITING, lastRetryTimestamp=format_time(moment))
    return kept


def cancel(entry: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        **entry,
        "bakeStatus": CANCELLED,
        "bakeStatusMessage": MSG_CANCELLED,
        "bakeEndTime": _at_least_entry(entry, now),
    }
