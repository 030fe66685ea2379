"""The bake state machine (docs rollout.md): one row per rule, the reference sentence in its name."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from hooks.k8s import format_time
from hooks.rollout import bake
from hooks.rollout.health import Check

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


def check(status: str, changed: float | None = 1, error: float | None = None) -> Check:
    return Check(
        "smoke",
        "shop",
        status,
        "boom" if status == "Unhealthy" else "",
        None if error is None else at(error),
        None if changed is None else at(changed),
    )


def deploying(**extra: str) -> dict:
    return {
        "id": 1,
        "version": {"tag": "1.0.0"},
        "timestamp": format_time(T),
        "bakeStatus": "Deploying",
        "bakeStatusMessage": bake.MSG_WAITING,
        **extra,
    }


def baking(started: float) -> dict:
    return deploying(
        bakeStatus="InProgress", bakeStatusMessage=bake.MSG_STARTED, bakeStartTime=format_time(at(started))
    )


@dataclass(frozen=True)
class Row:
    name: str
    entry: dict
    now: float
    want_status: str
    want_message: str
    checks: tuple[Check, ...] = (check("Healthy"),)
    synced: bool = True
    failed_target: str | None = None
    bake_time: float | None = 10
    deploy_timeout: float | None = 30
    configured: bool = True
    selector_set: bool = True
    recovery: bool = False
    want: dict = field(default_factory=dict)


ROWS = [
    Row(
        "start: every target Synced and every check freshly Healthy => InProgress",
        deploying(),
        2,
        "InProgress",
        bake.MSG_STARTED,
        want={"bakeStartTime": format_time(at(2))},
    ),
    Row(
        "start: never before Flux applied the version (a target not Synced)",
        deploying(),
        2,
        "Deploying",
        bake.MSG_WAITING,
        synced=False,
    ),
    Row(
        "start: a check Healthy before the cutoff is not fresh",
        deploying(),
        2,
        "Deploying",
        bake.MSG_WAITING,
        checks=(check("Healthy", changed=-5),),
    ),
    Row(
        "start: bakeStartTime = max(now, cutoff) when the clock is behind the retry",
        deploying(lastRetryTimestamp=format_time(at(3))),
        2,
        "InProgress",
        bake.MSG_STARTED,
        checks=(check("Healthy", changed=4),),
        want={"bakeStartTime": format_time(at(3))},
    ),
    Row(
        "start: a selector that selects nothing keeps the entry Deploying",
        deploying(),
        2,
        "Deploying",
        bake.MSG_NO_CHECKS,
        checks=(),
    ),
    Row(
        "start: zero checks start the bake when no selector is set",
        deploying(),
        2,
        "InProgress",
        bake.MSG_STARTED,
        checks=(),
        selector_set=False,
    ),
    Row(
        "start: a Failed target is named and the bake never starts on it",
        deploying(),
        2,
        "Deploying",
        bake.MSG_TARGET_FAILED + "OCIRepository/m spec.ref.tag: BuildFailed: x",
        synced=False,
        failed_target="OCIRepository/m spec.ref.tag: BuildFailed: x",
    ),
    Row(
        "error: a check error after the cutoff fails the entry before bake start",
        deploying(),
        2,
        "Failed",
        bake.MSG_ERROR_BEFORE,
        checks=(check("Unhealthy", error=1),),
    ),
    Row(
        "error: an error before the cutoff does not count",
        deploying(),
        2,
        "Deploying",
        bake.MSG_WAITING,
        checks=(check("Unhealthy", error=-1),),
    ),
    Row(
        "error: after the bake started",
        baking(2),
        5,
        "Failed",
        bake.MSG_ERROR_AFTER,
        checks=(check("Healthy", error=4),),
    ),
    Row(
        "recovery: errors before the bake starts are ignored",
        deploying(),
        2,
        "Deploying",
        bake.MSG_WAITING,
        checks=(check("Unhealthy", error=1),),
        recovery=True,
    ),
    Row(
        "recovery: errors after the bake starts count",
        baking(2),
        5,
        "Failed",
        bake.MSG_ERROR_AFTER,
        checks=(check("Healthy", error=4),),
        recovery=True,
    ),
    Row(
        "timeout: not started and now > cutoff + deployTimeout",
        deploying(),
        31,
        "Failed",
        bake.MSG_TIMEOUT,
        checks=(check("Pending"),),
    ),
    Row(
        "timeout: with a Failed target it fails with that reason",
        deploying(),
        31,
        "Failed",
        bake.MSG_TIMEOUT_TARGET + "Kustomization/a: BuildFailed: y",
        synced=False,
        failed_target="Kustomization/a: BuildFailed: y",
    ),
    Row(
        "timeout: with a selector that selects nothing",
        deploying(),
        31,
        "Failed",
        bake.MSG_TIMEOUT_PREFIX + bake.MSG_NO_CHECKS,
        checks=(),
    ),
    Row(
        "timeout: exactly at the deadline is not yet past it",
        deploying(),
        30,
        "Deploying",
        bake.MSG_WAITING,
        checks=(check("Pending"),),
    ),
    Row(
        "finish: started and now >= bakeStartTime + bakeTime => Succeeded",
        baking(2),
        12,
        "Succeeded",
        bake.MSG_SUCCEEDED,
        want={"bakeEndTime": format_time(at(12))},
    ),
    Row("finish: not before bakeTime", baking(2), 11, "InProgress", bake.MSG_STARTED),
    Row(
        "finish: without bakeTime the bake succeeds as it starts",
        deploying(),
        2,
        "Succeeded",
        bake.MSG_SUCCEEDED,
        bake_time=None,
    ),
    Row(
        "no bake configuration: Succeeded once every target is Synced",
        deploying(bakeStatusMessage=bake.MSG_WAITING_FLUX),
        2,
        "Succeeded",
        bake.MSG_NO_BAKE,
        checks=(),
        configured=False,
        selector_set=False,
    ),
    Row(
        "no bake configuration: Deploying until Flux applied the version",
        deploying(bakeStatusMessage=bake.MSG_WAITING_FLUX),
        2,
        "Deploying",
        bake.MSG_WAITING_FLUX,
        checks=(),
        configured=False,
        selector_set=False,
        synced=False,
    ),
    Row(
        "a slow clock: bakeEndTime is never before the entry's own timestamp",
        deploying(),
        -3,
        "Succeeded",
        bake.MSG_NO_BAKE,
        checks=(),
        configured=False,
        selector_set=False,
        want={"bakeEndTime": format_time(T)},
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_bake_step(row: Row) -> None:
    inputs = bake.Inputs(
        checks=row.checks,
        synced=row.synced,
        failed_target=row.failed_target,
        bake_time=None if row.bake_time is None else timedelta(minutes=row.bake_time),
        deploy_timeout=None if row.deploy_timeout is None else timedelta(minutes=row.deploy_timeout),
        configured=row.configured,
        selector_set=row.selector_set,
        recovery=row.recovery,
    )
    got = bake.advance(dict(row.entry), inputs, at(row.now))
    assert (got["bakeStatus"], got["bakeStatusMessage"]) == (row.want_status, row.want_message)
    for key, value in row.want.items():
        assert got[key] == value, key
    assert bake.advance(got, inputs, at(row.now)) == got, "applying the same step again changes nothing"


def test_retry_and_cancel_never_date_before_the_entry() -> None:
    failed = deploying(bakeStatus="Failed", bakeEndTime=format_time(at(5)), failedHealthChecks=[])
    retried = bake.retry(failed, at(-1))
    assert retried["lastRetryTimestamp"] == format_time(T)
    assert "failedHealthChecks" not in retried and "bakeEndTime" not in retried
    assert bake.cancel(deploying(), at(-1))["bakeEndTime"] == format_time(T)
