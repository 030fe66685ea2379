"""The facts a persisted Rollout status records, and their names (docs/events-and-metrics.md), as a table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hooks import facts
from tests.rollout_world import T0, ts

UID = "5f0c6a51-3c1e-4d0b-9a43-2a7e8d1c0b11"


def entry(id_: int, tag: str, at, **fields) -> dict:
    base = {
        "id": id_,
        "version": {"tag": tag, "discoveredAt": ts(at - timedelta(minutes=30))},
        "timestamp": ts(at),
        "message": "Automatic deployment",
        "triggeredBy": {"kind": "System", "name": "rollout-controller"},
        "bakeStatus": "Deploying",
        "bakeStatusMessage": "Waiting for health checks to become healthy before starting bake.",
    }
    base.update(fields)
    return base


def reasons(status: dict) -> list[str]:
    return [f.reason for f in facts.derive(status, "app", UID)]


CASES = [
    ("a deployment waiting for its bake is one fact", {"history": [entry(1, "1.0.0", T0)]}, ["Deployed"]),
    (
        "an adoption is a deployment (trigger Adoption)",
        {
            "history": [
                entry(
                    1, "1.0.0", T0, trigger="Adoption", adopted=True, message="Adopted: the targets already"
                )
            ]
        },
        ["Adopted"],
    ),
    (
        "an entry without trigger whose message says Adopted counts as Adoption",
        {"history": [entry(1, "1.0.0", T0, message="Adopted: the targets already carry 1.0.0")]},
        ["Adopted"],
    ),
    (
        "bake started then succeeded",
        {
            "history": [
                entry(
                    1,
                    "1.0.0",
                    T0,
                    bakeStatus="Succeeded",
                    bakeStartTime=ts(T0 + timedelta(minutes=1)),
                    bakeEndTime=ts(T0 + timedelta(minutes=11)),
                )
            ]
        },
        ["Deployed", "BakeStarted", "BakeSucceeded"],
    ),
    (
        "a failed bake",
        {
            "history": [
                entry(
                    1,
                    "1.0.0",
                    T0,
                    bakeStatus="Failed",
                    bakeStatusMessage="A HealthCheck reported an error after deployment.",
                    bakeEndTime=ts(T0 + timedelta(minutes=2)),
                    failedHealthChecks=[{"name": "errors", "namespace": "shop", "message": "5xx"}],
                )
            ]
        },
        ["Deployed", "BakeFailed"],
    ),
    (
        "a cancelled bake and the manual deploy that cancelled it",
        {
            "history": [
                entry(
                    2, "1.1.0", T0 + timedelta(minutes=5), trigger="ForceDeploy", message="Manual deployment"
                ),
                entry(1, "1.0.0", T0, bakeStatus="Cancelled", bakeEndTime=ts(T0 + timedelta(minutes=5))),
            ]
        },
        ["Deployed", "BakeCancelled", "Deployed"],
    ),
    (
        "an automatic rollback, its hold, and nothing cleared yet",
        {
            "history": [
                entry(3, "1.0.0", T0 + timedelta(minutes=10), trigger="Rollback", rollbackOf=2),
                entry(
                    2,
                    "1.1.0",
                    T0 + timedelta(minutes=5),
                    bakeStatus="Failed",
                    bakeEndTime=ts(T0 + timedelta(minutes=10)),
                ),
            ],
            "hold": {
                "reason": "AutomaticRollback",
                "resumeAfter": "1.1.0",
                "since": ts(T0 + timedelta(minutes=10)),
                "historyId": 3,
                "message": "Automatic rollback from 1.1.0",
            },
        },
        ["Deployed", "BakeFailed", "RolledBack", "HoldSet"],
    ),
    (
        "deployment N after an automatic rollback cleared the hold",
        {
            "history": [
                entry(4, "1.2.0", T0 + timedelta(minutes=20)),
                entry(3, "1.0.0", T0 + timedelta(minutes=10), trigger="Rollback", rollbackOf=2),
            ]
        },
        ["RolledBack", "Deployed", "HoldCleared"],
    ),
    (
        "an entry that records the hold it cleared",
        {
            "history": [
                entry(5, "2.0.0", T0 + timedelta(minutes=20), clearedHold=4),
                entry(4, "1.0.0", T0 + timedelta(minutes=10), trigger="Pin", message="Manual deployment"),
            ]
        },
        ["Deployed", "Deployed", "HoldCleared"],
    ),
    (
        "targets failing",
        {
            "history": [entry(1, "1.0.0", T0)],
            "conditions": [
                {
                    "type": "TargetsSynced",
                    "status": "False",
                    "reason": "TargetsFailing",
                    "message": "OCIRepository/app spec.ref.tag: forbidden: cannot patch",
                    "lastTransitionTime": ts(T0 + timedelta(minutes=1)),
                }
            ],
        },
        ["Deployed", "TargetsFailing"],
    ),
    ("no status", {}, []),
    (
        "malformed entries are ignored, never an exception",
        {"history": [{"id": "x"}, "junk", {"id": 2}], "hold": "junk", "conditions": "junk"},
        [],
    ),
]


@pytest.mark.parametrize(("name", "status", "expected"), CASES, ids=[c[0] for c in CASES])
def test_facts_of_a_status(name, status, expected):
    assert reasons(status) == expected


def test_names_are_derived_from_the_fact_only():
    status = CASES[3][1]
    first = facts.derive(status, "app", UID)
    again = facts.derive(status, "app", UID)
    assert [f.name for f in first] == [f.name for f in again]
    assert len({f.name for f in first}) == len(first)
    other_rollout = facts.derive(status, "app", "another-uid")
    assert not {f.name for f in first} & {f.name for f in other_rollout}
    for fact in first:
        assert fact.name.startswith("app.") and len(fact.name) <= 253


def test_a_retried_bake_is_a_new_fact_with_a_new_name():
    failed = entry(1, "1.0.0", T0, bakeStatus="Failed", bakeEndTime=ts(T0 + timedelta(minutes=2)))
    retried = entry(
        1,
        "1.0.0",
        T0,
        lastRetryTimestamp=ts(T0 + timedelta(minutes=5)),
        bakeStatus="Failed",
        bakeEndTime=ts(T0 + timedelta(minutes=8)),
    )
    before = {f.reason: f.name for f in facts.derive({"history": [failed]}, "app", UID)}
    after = {f.reason: f.name for f in facts.derive({"history": [retried]}, "app", UID)}
    assert before["Deployed"] == after["Deployed"]
    assert before["BakeFailed"] != after["BakeFailed"]
    assert "BakeRetried" in after


def test_facts_older_than_an_hour_are_not_due():
    status = CASES[3][1]  # deployed at T0, bake ended T0+11m
    at = T0 + timedelta(minutes=65)
    assert [f.reason for f in facts.due(facts.derive(status, "app", UID), at)] == ["BakeSucceeded"]
    assert facts.due(facts.derive(status, "app", UID), T0 + timedelta(hours=2)) == []


def test_a_long_name_and_message_stay_within_the_api_limits():
    long_name = "a" * 253
    status = {"history": [entry(1, "1.0.0", T0, message="x" * 5000)]}
    [fact] = facts.derive(status, long_name, UID)
    assert len(fact.name) <= 253 and len(fact.message) <= facts.NOTE_CHARS


def test_delivery_measures_lead_time_and_time_to_recover():
    ok_at = T0 + timedelta(hours=3)
    status = {
        "history": [
            entry(3, "1.2.0", T0 + timedelta(hours=2), bakeStatus="Succeeded", bakeEndTime=ts(ok_at)),
            entry(
                2,
                "1.1.0",
                T0 + timedelta(hours=1),
                bakeStatus="Failed",
                bakeEndTime=ts(T0 + timedelta(hours=1, minutes=10)),
            ),
            entry(1, "1.0.0", T0, bakeStatus="Succeeded", bakeEndTime=ts(T0 + timedelta(minutes=10))),
        ]
    }
    succeeded = [f for f in facts.derive(status, "app", UID) if f.reason == "BakeSucceeded"]
    latest = succeeded[-1]
    # discoveredAt is 30 minutes before the deployment (entry helper)
    assert latest.measures["lead_time"] == timedelta(hours=1, minutes=30).total_seconds()
    assert latest.measures["time_to_recover"] == timedelta(hours=1, minutes=50).total_seconds()
    assert "time_to_recover" not in succeeded[0].measures


@st.composite
def histories(draw) -> list[dict]:
    """Histories as the engine writes them: newest first, each deployment dated at or after the
    previous one, its bake times after its own timestamp and before the next deployment."""
    count = draw(st.integers(0, 12))
    gaps = draw(st.lists(st.integers(0, 90), min_size=count, max_size=count))
    entries, at = [], T0 - timedelta(hours=4)
    for index, gap in enumerate(gaps):
        at += timedelta(minutes=gap)
        state = draw(st.sampled_from(["Deploying", "InProgress", "Succeeded", "Failed", "Cancelled"]))
        fields = {"bakeStatus": state, "trigger": draw(st.sampled_from(["Automatic", "Pin", "Rollback"]))}
        room = gaps[index + 1] if index + 1 < count else 60  # until the next deployment
        start = at + timedelta(minutes=draw(st.integers(0, room)))
        end = start + timedelta(minutes=draw(st.integers(0, room)))
        end = min(end, at + timedelta(minutes=room))
        if state != "Deploying":
            fields["bakeStartTime"] = ts(min(start, end))
        if state in ("Succeeded", "Failed", "Cancelled"):
            fields["bakeEndTime"] = ts(end)
        entries.insert(0, entry(index + 1, f"1.{index}.0", at, **fields))
    return entries


@settings(max_examples=200)
@given(histories(), st.integers(0, 8 * 60))
def test_reading_only_the_last_hour_gives_the_same_due_facts(history, minutes):
    now = T0 - timedelta(hours=4) + timedelta(minutes=minutes)
    rollout = {"metadata": {"name": "app", "namespace": "shop", "uid": UID}, "status": {"history": history}}
    expected = facts.due(facts.derive(rollout["status"], "app", UID), now)
    assert [f.name for f in facts.facts(rollout, now)] == [f.name for f in expected]
