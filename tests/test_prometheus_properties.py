"""Properties of the `class: prometheus` verdict over random measurement sequences (docs/prometheus.md).

A sequence of (seconds later, outcome) steps is fed through `prometheus.judge`, each step
starting from the status the previous one returned, as Metacontroller persists it.
"""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from hooks.healthcheck import prometheus
from hooks.healthcheck.promclient import Answer, QueryError
from hooks.k8s import format_time, parse_time
from tests.healthcheck_objects import NOW
from tests.test_prometheus import prom_check

REASONS = ("cannot reach Prometheus", "Prometheus answered HTTP 503")
values = st.one_of(
    st.floats(min_value=0, max_value=0.02),  # around the bound
    st.just(float("nan")),
    st.just(float("inf")),
)
outcomes = st.one_of(
    st.lists(values, max_size=3).map(lambda vs: Answer(tuple(vs))),
    st.sampled_from(REASONS).map(QueryError),
)
steps = st.lists(st.tuples(st.integers(min_value=0, max_value=200), outcomes), min_size=1, max_size=30)
specs = st.builds(
    lambda for_, tolerance, no_data: prometheus.parse_spec(
        prom_check(
            "http://prom:9090",
            thresholdRange={"max": 0.01},
            noData=no_data,
            queryErrorTolerance=f"{tolerance}s",
            **{"for": f"{for_}s"},
        )
    ),
    st.sampled_from([0, 30, 120]),
    st.sampled_from([0, 60, 300]),
    st.sampled_from(prometheus.NO_DATA_VERDICTS),
)
START = {
    "status": "Pending",
    "message": "Health check reset due to new deployment",
    "lastChangeTime": format_time(NOW),
}


def kind(spec: prometheus.Spec, outcome: Answer | QueryError) -> str:
    if isinstance(outcome, QueryError):
        return "error"
    measured = prometheus.measure(spec, outcome)
    return "failing" if measured.failing else "no-data" if measured.no_data else "ok"


def run(spec, sequence):
    """Yield (now, outcome, before, after, resync) for every step."""
    status, now = dict(START), NOW
    for seconds, outcome in sequence:
        now += timedelta(seconds=seconds)
        after, resync = prometheus.judge(status, spec, outcome, now)
        yield now, outcome, status, after, resync
        status = after


@given(specs, steps)
def test_fixed_point(spec, sequence):
    for now, outcome, _, after, resync in run(spec, sequence):
        assert prometheus.judge(after, spec, outcome, now) == (after, resync)


@given(specs, steps)
def test_never_unhealthy_before_for_elapsed(spec, sequence):
    streak_start = None  # when the current run of failing answers began
    for now, outcome, before, after, _ in run(spec, sequence):
        k = kind(spec, outcome)
        if k == "failing":
            streak_start = streak_start or now
        elif k != "error":
            streak_start = None
        if k == "failing" and before["status"] != "Unhealthy":
            assert (after["status"] == "Unhealthy") == (now - streak_start >= spec.for_)
        if after["status"] == "Unhealthy" and before["status"] != "Unhealthy" and k == "failing":
            assert parse_time(after["failingSince"]) == streak_start


@given(specs, steps)
def test_status_changes_only_with_the_verdict(spec, sequence):
    """Only a change of kind (ok, no data, failing, error) or a deadline moves status or message;
    within a settled kind a moving metric never writes anything."""
    previous_kind = None
    for now, outcome, before, after, _ in run(spec, sequence):
        k = kind(spec, outcome)
        if k == previous_kind and k in ("ok", "no-data"):
            assert after == before
        if (after["status"], after["message"]) != (before["status"], before["message"]):
            assert k != previous_kind or k in ("failing", "error")  # a deadline passed
        if after.get("status") != before.get("status"):
            assert after["lastChangeTime"] == format_time(now)
        else:
            assert after["lastChangeTime"] == before["lastChangeTime"]
        previous_kind = k


@given(specs, steps)
def test_messages_are_fixed_texts(spec, sequence):
    allowed = {
        START["message"],
        prometheus.MSG_NO_DATA,
        f"within range {spec.range_text()}",
        prometheus.out_of_range_message(spec),
        *(f"{prometheus.MSG_QUERY_FAILING}{spec.tolerance_text}: {reason}" for reason in REASONS),
    }
    for _, _, _, after, _ in run(spec, sequence):
        assert after["message"] in allowed


@given(specs, steps)
def test_timestamps_are_written_once_and_never_move_back(spec, sequence):
    for now, outcome, before, after, resync in run(spec, sequence):
        for key in ("failingSince", "queryErrorSince"):
            if key in before and key in after:
                assert after[key] == before[key]
        if "lastErrorTime" in before:
            assert parse_time(after["lastErrorTime"]) >= parse_time(before["lastErrorTime"])
        if after["status"] == "Unhealthy" and before["status"] != "Unhealthy":
            assert after["lastErrorTime"] == format_time(now)
        k = kind(spec, outcome)
        assert ("queryErrorSince" in after) == (k == "error")
        assert ("failingSince" in after) == (k == "failing" or (k == "error" and "failingSince" in before))
        assert 1 <= resync <= math.ceil(spec.interval.total_seconds())


@given(specs, steps)
def test_outage_fails_closed_only_after_the_tolerance(spec, sequence):
    for now, outcome, before, after, _ in run(spec, sequence):
        if isinstance(outcome, QueryError):
            since = parse_time(after["queryErrorSince"])
            if now - since > spec.tolerance:
                assert after["status"] == "Unhealthy"
            else:
                assert {k: after.get(k) for k in ("status", "message", "lastChangeTime")} == {
                    k: before.get(k) for k in ("status", "message", "lastChangeTime")
                }
