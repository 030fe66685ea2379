"""`class: prometheus` HealthChecks (docs/prometheus.md) through the /healthcheck/sync route.

Scenarios run against a fake Prometheus on 127.0.0.1 and step the clock. Every sync is checked
to be a fixed point (the request carrying the returned status, at the same clock, gets the
same status back) and every status write is counted: a moving metric must not write.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jsonschema
import pytest

from hooks.app import create_app
from hooks.healthcheck import prometheus
from hooks.healthcheck.promclient import Answer, Querier, QueryError
from hooks.k8s import format_time
from tests.healthcheck_objects import NOW, at, healthcheck, namespace, request, rollout, status_schema
from tests.prometheus_fake import FakePrometheus, error, matrix, raw, scalar, vector

SCHEMA = status_schema()
ERROR_RATIO = (
    'sum(rate(http_requests_total{namespace="${namespace}",version="${version}",code=~"5.."}[${window}]))'
    ' / sum(rate(http_requests_total{namespace="${namespace}",version="${version}"}[${window}]))'
)


@pytest.fixture
def prom() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    try:
        yield server
    finally:
        server.stop()


def prom_check(url: str, status: dict | None = None, **spec: Any) -> dict:
    check = healthcheck(name="error-rate", cls="prometheus", target=None, status=status)
    check["spec"]["prometheus"] = {"address": url, "query": ERROR_RATIO, "thresholdRange": {"max": 0.01}}
    check["spec"]["prometheus"].update(spec)
    return check


class World:
    """One HealthCheck, the Rollouts selecting it, a clock, and the hook service."""

    def __init__(self, prom: FakePrometheus, status: dict | None = None, **spec: Any) -> None:
        self.prom = prom
        self.now = NOW
        self.check = prom_check(prom.address, status, **spec)
        self.rollouts = [rollout(tag="1.0.0", timestamp=at(-10))]
        self.writes = 0
        querier = Querier(cache_ttl=0, outage_backoff=0)  # every sync really asks the fake
        self.client = create_app(clock=lambda: self.now, actuator=object(), querier=querier).test_client()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def post(self) -> dict:
        body = request(self.check, *self.rollouts, namespace("team"))
        response = self.client.post("/healthcheck/sync", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        answer = response.get_json()
        assert set(answer) <= {"status", "attachments", "resyncAfterSeconds"}
        return answer

    def sync(self) -> tuple[dict, float]:
        """One sync: Metacontroller persists the status; then the fixed-point check."""
        answer = self.post()
        status = answer["status"]
        jsonschema.validate(status, SCHEMA)
        if status != self.check.get("status"):
            self.writes += 1
            self.check["status"] = copy.deepcopy(status)
        again = self.post()
        assert again["status"] == status, "status is not a fixed point"
        assert again.get("resyncAfterSeconds") == answer.get("resyncAfterSeconds")
        return status, answer.get("resyncAfterSeconds", 0)


# --- rendering and the query --------------------------------------------------------------


def test_query_is_rendered_and_run_as_an_instant_query(prom):
    world = World(prom)
    world.sync()
    seen = prom.requests[0]
    assert seen.path == "/api/v1/query"
    assert seen.params["query"] == (
        'sum(rate(http_requests_total{namespace="team",version="1.0.0",code=~"5.."}[10m]))'
        ' / sum(rate(http_requests_total{namespace="team",version="1.0.0"}[10m]))'
    )
    assert float(seen.params["time"]) == NOW.timestamp()
    assert seen.params["timeout"] == "3s"
    assert "authorization" not in seen.headers


@pytest.mark.parametrize(
    ("deployed", "window"),
    [
        (timedelta(seconds=10), "1m"),  # clamped up
        (timedelta(seconds=119), "1m"),  # rounded down
        (timedelta(minutes=2), "2m"),
        (timedelta(minutes=59, seconds=59), "59m"),
        (timedelta(hours=3), "60m"),  # clamped down
    ],
)
def test_window_is_whole_minutes_since_the_newest_cutoff(prom, deployed, window):
    world = World(prom, query="x[${window}]")
    world.rollouts = [
        rollout(tag="1.0.0", timestamp=format_time(NOW - timedelta(hours=5))),
        rollout(name="api", tag="1.0.0", timestamp=at(-360), retry=format_time(NOW - deployed)),
    ]
    world.sync()
    assert prom.queries()[0] == f"x[{window}]"


def test_tenant_headers_are_sent(prom):
    world = World(prom, headers={"X-Scope-OrgID": "team-a"})
    world.sync()
    assert prom.requests[0].headers["x-scope-orgid"] == "team-a"


def test_address_with_a_path_prefix(prom):
    world = World(prom)
    world.check["spec"]["prometheus"]["address"] = prom.address + "/prometheus/"
    prom.reply = vector(0)
    world.sync()
    assert prom.requests[0].path == "/prometheus/api/v1/query"


@pytest.mark.parametrize(
    ("rollouts", "message"),
    [
        ([], "no Rollout selects this check"),
        ([rollout(tag=None)], "no Rollout selects this check"),
        ([rollout(selector={"matchLabels": {"app": "other"}})], "no Rollout selects this check"),
        (
            [rollout(tag="1.0.0"), rollout(name="api", tag="1.1.0")],
            "the Rollouts selecting this check deployed different versions: team/api=1.1.0, team/web=1.0.0",
        ),
    ],
)
def test_pending_without_a_version_to_scope_the_query_to(prom, rollouts, message):
    world = World(prom, status={"status": "Unhealthy", "message": "old", "failingSince": at(-1)})
    world.rollouts = rollouts
    status, resync = world.sync()
    assert (status["status"], status["message"]) == ("Pending", message)
    assert "failingSince" not in status
    assert resync == 30
    assert prom.requests == []  # nothing to ask


def test_rollouts_that_disagree_do_not_matter_when_the_query_has_no_version(prom):
    world = World(prom, query='up{job="web"}', thresholdRange={"min": 1})
    world.rollouts = [rollout(tag="1.0.0"), rollout(name="api", tag="1.1.0")]
    prom.reply = vector(1)
    assert world.sync()[0]["status"] == "Healthy"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"query": "rate(x{v='${version}'}[${foo}])"},
            "query uses the unknown variable ${foo} (known: ${version}, ${namespace}, ${window})",
        ),
        ({"query": "rate(x[${window)"}, "query has a ${ without a closing }"),
        ({"address": "http://user:pw@prometheus:9090"}, "address must be an http:// or https:// URL"),
        ({"address": "prometheus:9090"}, "address must be an http:// or https:// URL"),
        ({"address": "http://prometheus:port"}, "address has an invalid port"),
        ({"headers": {"Authorization": "Bearer x"}}, "headers: Authorization may not be set"),
        ({"thresholdRange": {"min": 2, "max": 1}}, "thresholdRange.min is greater than thresholdRange.max"),
        ({"noData": "Maybe"}, "noData must be one of Pending, Healthy, Unhealthy"),
        ({"for": "2 minutes"}, "for: invalid duration '2 minutes'"),
    ],
)
def test_invalid_spec_is_unhealthy_with_a_clear_message(prom, spec, message):
    world = World(prom, **spec)
    status, resync = world.sync()
    assert status["status"] == "Unhealthy"
    assert status["message"].startswith("invalid spec.prometheus: " + message)
    assert status["lastErrorTime"] == at(0)
    assert "Bearer x" not in str(status)
    assert resync == 0  # a spec change syncs again by itself
    assert prom.requests == []


# --- thresholds, for, noData --------------------------------------------------------------


@pytest.mark.parametrize(
    ("thresholds", "values", "verdict"),
    [
        ({"max": 0.01}, ["0.01"], "Healthy"),  # the bound itself is in range
        ({"max": 0.01}, ["0.0100001"], "Unhealthy"),
        ({"min": 0.99}, ["0.99", "1"], "Healthy"),
        ({"min": 0.99}, ["1", "0.5"], "Unhealthy"),  # any series out of range
        ({"min": 1, "max": 2}, ["1.5", "+Inf"], "Unhealthy"),
        ({"min": 1, "max": 2}, ["1.5", "NaN"], "Healthy"),  # a NaN series is no data, ignored
        ({}, ["-Inf", "1e300"], "Healthy"),  # no bounds
    ],
)
def test_thresholds(prom, thresholds, values, verdict):
    world = World(prom, thresholdRange=thresholds)
    prom.reply = vector(*values)
    assert world.sync()[0]["status"] == verdict


def test_scalar_answer(prom):
    world = World(prom, query="scalar(x)", thresholdRange={"max": 1})
    prom.reply = scalar("2")
    assert world.sync()[0]["status"] == "Unhealthy"


@pytest.mark.parametrize("no_data", ["Pending", "Healthy", "Unhealthy", None])
@pytest.mark.parametrize(
    "reply", [vector(), vector("NaN", "NaN"), scalar("NaN")], ids=["empty", "nan", "scalar"]
)
def test_no_data(prom, no_data, reply):
    spec = {} if no_data is None else {"noData": no_data}
    world = World(prom, **spec)
    prom.reply = reply
    status, resync = world.sync()
    assert (status["status"], status["message"]) == (no_data or "Pending", "query returned no data")
    assert ("lastErrorTime" in status) == (no_data == "Unhealthy")
    assert resync == 30


def test_for_holds_the_verdict_until_the_failure_lasted(prom):
    world = World(prom, **{"for": "2m", "interval": "1m"})
    prom.reply = vector("0.001")
    status, _ = world.sync()
    assert status["status"] == "Healthy" and status["message"] == "within range (max 0.01)"
    healthy_since = status["lastChangeTime"]

    world.advance(seconds=20)
    prom.reply = vector("0.2")
    status, resync = world.sync()
    assert status == {
        "status": "Healthy",
        "message": "within range (max 0.01)",
        "lastChangeTime": healthy_since,
        "failingSince": at(seconds=20),
        "observedGeneration": 1,
    }
    assert resync == 60  # interval (1m) before the for deadline (2m)

    world.advance(seconds=60)
    prom.reply = vector("0.3")
    status, resync = world.sync()
    assert status["status"] == "Healthy"
    assert status["failingSince"] == at(seconds=20)  # written once
    assert resync == 60  # the deadline: failingSince + 2m

    world.advance(seconds=59)
    assert world.sync()[0]["status"] == "Healthy"
    world.advance(seconds=1)
    status, resync = world.sync()
    assert status == {
        "status": "Unhealthy",
        "message": "out of range (max 0.01) for 2m",
        "lastChangeTime": at(minutes=2, seconds=20),
        "lastErrorTime": at(minutes=2, seconds=20),
        "failingSince": at(seconds=20),
        "observedGeneration": 1,
    }
    assert resync == 60

    world.advance(minutes=5)
    prom.reply = vector("0.004")
    status, _ = world.sync()
    assert status["status"] == "Healthy"
    assert "failingSince" not in status
    assert status["lastErrorTime"] == at(minutes=2, seconds=20)  # the last error is remembered


def test_a_short_spike_never_turns_unhealthy(prom):
    world = World(prom, **{"for": "1m"})
    prom.reply = vector("0")
    world.sync()
    prom.reply = vector("0.5")
    world.advance(seconds=30)
    assert world.sync()[0]["failingSince"] == at(seconds=30)
    prom.reply = vector("0")
    world.advance(seconds=29)
    status, _ = world.sync()
    assert status["status"] == "Healthy" and "failingSince" not in status
    prom.reply = vector("0.5")
    world.advance(seconds=31)
    status, _ = world.sync()
    assert status["status"] == "Healthy"
    assert status["failingSince"] == at(seconds=90)  # a new streak


def test_a_moving_metric_writes_nothing(prom):
    world = World(prom)
    for value in ("0.001", "0.002", "0.0099", "0", "0.005"):
        prom.reply = vector(value)
        world.sync()
        world.advance(seconds=30)
    assert world.writes == 1  # the first verdict only
    for value in ("0.5", "0.7", "1", "0.02"):
        prom.reply = vector(value)
        world.sync()
        world.advance(seconds=30)
    assert world.writes == 2  # turning Unhealthy (for: 0)
    assert world.check["status"]["message"] == "out of range (max 0.01)"


def test_interval_is_the_resync(prom):
    world = World(prom, interval="45s")
    prom.reply = vector("0")
    assert world.sync()[1] == 45


# --- Prometheus failing -------------------------------------------------------------------


def test_outage_within_the_tolerance_changes_nothing_then_fails_closed(prom):
    world = World(prom, interval="1m", queryErrorTolerance="5m")
    prom.reply = vector("0")
    healthy, _ = world.sync()

    world.advance(minutes=1)
    prom.reply = error(503, "unavailable", "the TSDB is starting, try again at 12:01:07")
    status, resync = world.sync()
    assert status == {**healthy, "queryErrorSince": at(minutes=1)}
    assert resync == 60

    world.advance(minutes=4, seconds=30)
    status, resync = world.sync()
    assert status == {**healthy, "queryErrorSince": at(minutes=1)}
    assert resync == 31  # just past the tolerance

    world.advance(seconds=30)  # exactly 5m: not longer than the tolerance yet
    assert world.sync()[0]["status"] == "Healthy"
    world.advance(seconds=1)
    status, _ = world.sync()
    assert status == {
        "status": "Unhealthy",
        "message": "Prometheus query failing for longer than 5m: Prometheus answered HTTP 503 (unavailable)",
        "lastChangeTime": at(minutes=6, seconds=1),
        "lastErrorTime": at(minutes=6, seconds=1),
        "queryErrorSince": at(minutes=1),
        "observedGeneration": 1,
    }
    writes = world.writes

    # Another kind of failure while down: still the same status (nothing volatile is copied).
    world.advance(minutes=1)
    prom.reply = raw(502, b"<html>bad gateway</html>")
    assert world.sync()[0] == status
    assert world.writes == writes

    world.advance(minutes=1)
    prom.reply = vector("0")
    status, _ = world.sync()
    assert status["status"] == "Healthy"
    assert "queryErrorSince" not in status


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            error(400, "bad_data", '1:6: parse error: unexpected "}"'),
            'Prometheus rejected the query (bad_data): 1:6: parse error: unexpected "}"',
        ),
        (
            error(422, "execution", "expanding series: context deadline exceeded"),
            "Prometheus answered HTTP 422 (execution)",
        ),
        (raw(500, b"oops"), "Prometheus answered HTTP 500"),
        (
            raw(401, b"Unauthorized"),
            "Prometheus answered HTTP 401 (no credentials configured for this address)",
        ),
        (raw(302, b""), "Prometheus answered HTTP 302"),
        (raw(200, b"<html>"), "malformed answer from Prometheus: not a JSON object"),
        (
            raw(
                200, b'{"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, 2]}]}}'
            ),
            "malformed answer from Prometheus: a sample is not a number",
        ),
        (
            raw(200, b'{"status": "success", "data": {"resultType": "scalar", "result": [1, "high"]}}'),
            "malformed answer from Prometheus: a sample is not a number",
        ),
        (raw(200, b'{"status": "success"}'), "malformed answer from Prometheus: no data"),
        (matrix(), "the query returns a matrix, not an instant vector or a scalar"),
    ],
    ids=[
        "bad-query",
        "execution",
        "500",
        "401",
        "redirect",
        "not-json",
        "bad-sample",
        "bad-scalar",
        "no-data-field",
        "matrix",
    ],
)
def test_query_errors_have_fixed_reasons(prom, reply, reason):
    world = World(prom, queryErrorTolerance="0s")
    prom.reply = reply
    status, _ = world.sync()  # the reset sync: the error starts
    assert status["status"] == "Pending" and status["queryErrorSince"] == at(0)
    world.advance(seconds=1)
    status, _ = world.sync()
    assert status["status"] == "Unhealthy"
    assert status["message"].startswith("Prometheus query failing for longer than 0s: " + reason)


def test_unreachable_prometheus(prom):
    world = World(prom, queryErrorTolerance="10s")
    prom.stop()  # nothing listens on the port any more
    world.sync()
    world.advance(seconds=11)
    status, _ = world.sync()
    assert status["message"] == "Prometheus query failing for longer than 10s: cannot reach Prometheus"


def test_a_slow_prometheus_is_a_query_error_after_3s(prom):
    world = World(prom)
    prom.reply = vector("0")
    prom.slow_once = 3.5
    answer = world.post()["status"]
    assert answer["status"] == "Pending"  # the reset; the timeout does not change the verdict
    assert answer["queryErrorSince"] == at(0)
    world.check["status"] = answer
    status, _ = world.sync()  # answers fast again
    assert status["status"] == "Healthy" and "queryErrorSince" not in status


def test_many_series_are_all_judged(prom):
    world = World(prom)
    prom.reply = vector(*(["0"] * 500 + ["0.5"]))
    assert world.sync()[0]["status"] == "Unhealthy"


def test_an_oversized_answer_is_a_query_error(prom):
    world = World(prom, queryErrorTolerance="0s")
    prom.reply = raw(200, b'{"status":"success","data":{"resultType":"vector","result":[' + b" " * 5_000_000)
    world.sync()
    world.advance(seconds=1)
    assert world.sync()[0]["message"] == (
        "Prometheus query failing for longer than 0s: the answer is larger than 4 MiB "
        "(too many series: aggregate them, for example with max or sum)"
    )


# --- reset on a new deployment ------------------------------------------------------------


def test_reset_clears_failure_state_and_judges_at_once(prom):
    before = {
        "status": "Unhealthy",
        "message": "out of range (max 0.01) for 2m",
        "lastChangeTime": at(-20),
        "lastErrorTime": at(-20),
        "failingSince": at(-22),
        "queryErrorSince": at(-15),
        "observedGeneration": 1,
    }
    world = World(prom, status=before, **{"for": "2m"})
    world.rollouts = [rollout(tag="1.0.1", timestamp=at(-1))]  # deployed after the last change
    prom.reply = vector("0.001")
    status, _ = world.sync()
    assert status == {
        "status": "Healthy",
        "message": "within range (max 0.01)",
        "lastChangeTime": at(0),
        "observedGeneration": 1,
    }


def test_reset_then_failing_starts_a_fresh_streak(prom):
    before = {"status": "Unhealthy", "message": "x", "lastChangeTime": at(-20), "failingSince": at(-22)}
    world = World(prom, status=before, **{"for": "2m"})
    world.rollouts = [rollout(tag="1.0.1", timestamp=at(-1))]
    prom.reply = vector("0.5")
    status, resync = world.sync()
    assert status["status"] == "Pending"
    assert status["message"] == "Health check reset due to new deployment"
    assert status["failingSince"] == at(0)
    assert "lastErrorTime" not in status
    assert resync == 30


def test_deployment_ahead_of_the_clock(prom):
    world = World(prom)
    world.rollouts = [rollout(tag="1.0.1", timestamp=at(seconds=30))]
    prom.reply = vector("0")
    status, _ = world.sync()
    assert status["lastChangeTime"] == at(seconds=30)  # never before the deployment
    assert world.sync()[0] == status


# --- the pure verdict, row by row ---------------------------------------------------------

SPEC = prometheus.parse_spec(prom_check("http://prom:9090", **{"for": "1m", "queryErrorTolerance": "2m"}))


@pytest.mark.parametrize(
    ("name", "before", "outcome", "after", "resync"),
    [
        (
            "healthy stays healthy",
            {"status": "Healthy", "message": "within range (max 0.01)", "lastChangeTime": at(-1)},
            Answer((0.0,)),
            {"status": "Healthy"},
            30,
        ),
        (
            "failure starts: failingSince, verdict held",
            {"status": "Healthy", "lastChangeTime": at(-1)},
            Answer((1.0,)),
            {"status": "Healthy", "failingSince": at(0)},
            30,
        ),
        (
            "failure lasted for: Unhealthy",
            {"status": "Healthy", "lastChangeTime": at(-5), "failingSince": at(-1)},
            Answer((1.0,)),
            {"status": "Unhealthy", "lastErrorTime": at(0)},
            30,
        ),
        (
            "Unhealthy stays Unhealthy when failing again",
            {"status": "Unhealthy", "lastChangeTime": at(-5), "message": "query returned no data"},
            Answer((1.0,)),
            {"status": "Unhealthy", "message": "out of range (max 0.01) for 1m"},
            30,
        ),
        (
            "error starts",
            {"status": "Healthy", "lastChangeTime": at(-5)},
            QueryError("down"),
            {"status": "Healthy", "queryErrorSince": at(0)},
            30,
        ),
        (
            "error near the tolerance: resync at the deadline",
            {"status": "Healthy", "lastChangeTime": at(-5), "queryErrorSince": at(minutes=-1, seconds=-50)},
            QueryError("down"),
            {"status": "Healthy"},
            11,
        ),
        (
            "error past the tolerance",
            {"status": "Healthy", "lastChangeTime": at(-5), "queryErrorSince": at(-3)},
            QueryError("down"),
            {"status": "Unhealthy", "message": "Prometheus query failing for longer than 2m: down"},
            30,
        ),
        (
            "failing held during an outage",
            {"status": "Healthy", "lastChangeTime": at(-5), "failingSince": at(-0.5)},
            QueryError("down"),
            {"status": "Healthy", "failingSince": at(-0.5)},
            30,
        ),
    ],
)
def test_judge(name, before, outcome, after, resync):
    status, seconds = prometheus.judge(before, SPEC, outcome, NOW)
    assert {key: status.get(key) for key in after} == after, name
    assert seconds == resync, name


def test_range_texts():
    def text(**bounds: float) -> str:
        check = prom_check("http://prom:9090", thresholdRange=bounds)
        return prometheus.parse_spec(check).range_text()

    assert text(max=0.01) == "(max 0.01)"
    assert text(min=1, max=2.5) == "(min 1, max 2.5)"
    assert text() == "(no bounds)"
    assert text(min=-1e-9) == "(min -1e-09)"
