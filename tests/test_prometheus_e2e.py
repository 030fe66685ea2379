"""End to end: the Rollout hook and a `class: prometheus` HealthCheck, chained through the routes.

The in-memory cluster of test_e2e_healthcheck plays Metacontroller and Flux; a fake Prometheus
on 127.0.0.1 plays the app's metrics, scoped to the deployed version by the query.

deploy -> reset -> no data for the new version (Pending) -> Flux applies it -> in range
(Healthy) -> bake starts -> the error rate rises for `for` -> Unhealthy -> the bake fails
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from hooks.app import create_app
from hooks.healthcheck.promclient import Querier
from tests.healthcheck_objects import at, condition, kustomization, namespace
from tests.prometheus_fake import FakePrometheus, raw, vector
from tests.test_e2e_healthcheck import Clock, Cluster, deploy_head, flux_reconciles, ran_0_9_0, rollout_sync
from tests.test_prometheus import ERROR_RATIO


@pytest.fixture
def prom() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    try:
        yield server
    finally:
        server.stop()


def world(prom: FakePrometheus) -> tuple[Cluster, Clock, object]:
    clock = Clock()
    check = {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "HealthCheck",
        "metadata": {"name": "error-rate", "namespace": "team", "generation": 1, "labels": {"app": "web"}},
        "spec": {
            "class": "prometheus",
            "prometheus": {
                "address": prom.address,
                "query": ERROR_RATIO,
                "thresholdRange": {"max": 0.01},
                "for": "1m",
                "interval": "30s",
                "queryErrorTolerance": "2m",
            },
        },
        "status": {"status": "Healthy", "message": "within range (max 0.01)", "lastChangeTime": at(-600)},
    }
    cluster = Cluster(
        namespace("team"),
        kustomization(
            generation=1,
            observed=1,
            substitute={"VERSION": "0.9.0"},
            annotations={"rollout.kuberik.com/substitute.VERSION.from": "web"},
            conditions=[
                condition(
                    "Ready", "True", "ReconciliationSucceeded", "Applied revision: main@sha1:0.9.0", at(-600)
                )
            ],
        ),
        check,
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"imageRepositoryRef": {"name": "web"}, "policy": {"semver": {"range": ">=0.0.0"}}},
            "status": {"latestRef": {"name": "ghcr.io/acme/web", "tag": "1.0.0"}},
        },
        {
            "apiVersion": "kuberik.com/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "team", "generation": 1},
            "spec": {
                "releasesImagePolicy": {"name": "web"},
                "bakeTime": "10m",
                "healthCheckSelector": {"matchLabels": {"app": "web"}},
            },
            "status": ran_0_9_0(),  # 0.9.0 runs and was deployed by this Rollout (not an adoption)
        },
    )
    client = create_app(
        clock=clock, actuator=cluster, querier=Querier(cache_ttl=0, outage_backoff=0)
    ).test_client()
    return cluster, clock, client


def healthcheck_sync(client, cluster: Cluster) -> dict:
    check = cluster.get("HealthCheck", "error-rate")
    body = {
        "controller": {"kind": "DecoratorController"},
        "parent": copy.deepcopy(check),
        "related": cluster.related("Rollout", "Namespace"),
    }
    response = client.post("/healthcheck/sync", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    check["status"] = response.get_json()["status"]
    body["parent"]["status"] = copy.deepcopy(check["status"])
    assert client.post("/healthcheck/sync", json=body).get_json()["status"] == check["status"]
    return check["status"]


def deploy_and_start_the_bake(prom, cluster, clock, client) -> None:
    rollout_sync(client, cluster)
    assert deploy_head(cluster)["version"]["tag"] == "1.0.0"

    # The check resets; no pod of 1.0.0 serves yet, so the version-scoped query has no data.
    clock.advance(seconds=5)
    prom.reply = vector()
    status = healthcheck_sync(client, cluster)
    assert (status["status"], status["message"]) == ("Pending", "query returned no data")
    assert 'version="1.0.0"' in prom.queries()[-1]

    # The Rollout writes 1.0.0 into the Kustomization; Flux applies it; pods report.
    clock.advance(seconds=5)
    rollout_sync(client, cluster)
    assert cluster.patches == [("Kustomization", "app")]
    clock.advance(seconds=30)
    flux_reconciles(cluster, clock, "1.0.0")
    prom.reply = vector("0.001", "0.002")
    assert healthcheck_sync(client, cluster)["status"] == "Healthy"

    clock.advance(seconds=5)
    rollout_sync(client, cluster)
    assert deploy_head(cluster)["bakeStatus"] == "InProgress"


def test_a_bake_fails_on_the_error_rate(prom):
    cluster, clock, client = world(prom)
    deploy_and_start_the_bake(prom, cluster, clock, client)

    # The error rate of 1.0.0 rises: failing, but not for 1m yet - the bake goes on.
    clock.advance(minutes=2)
    prom.reply = vector("0.08", "0.002")
    status = healthcheck_sync(client, cluster)
    assert status["status"] == "Healthy" and status["failingSince"] == at(minutes=2, seconds=45)
    rollout_sync(client, cluster)
    assert deploy_head(cluster)["bakeStatus"] == "InProgress"

    clock.advance(minutes=1)
    status = healthcheck_sync(client, cluster)
    assert status["status"] == "Unhealthy"
    assert status["message"] == "out of range (max 0.01) for 1m"
    rollout_sync(client, cluster)
    head = deploy_head(cluster)
    assert head["bakeStatus"] == "Failed"
    assert head["failedHealthChecks"][0]["name"] == "error-rate"


def test_a_bake_succeeds_while_the_error_rate_stays_in_range(prom):
    cluster, clock, client = world(prom)
    deploy_and_start_the_bake(prom, cluster, clock, client)
    for value in ("0.003", "0.009", "0.0", "0.01"):  # moving, always in range
        clock.advance(minutes=2, seconds=30)
        prom.reply = vector(value)
        assert healthcheck_sync(client, cluster)["status"] == "Healthy"
        rollout_sync(client, cluster)
    assert deploy_head(cluster)["bakeStatus"] == "Succeeded"


def test_a_prometheus_outage_longer_than_the_tolerance_fails_the_bake(prom):
    cluster, clock, client = world(prom)
    deploy_and_start_the_bake(prom, cluster, clock, client)
    prom.reply = raw(503, b"service unavailable")
    clock.advance(minutes=1)
    assert healthcheck_sync(client, cluster)["status"] == "Healthy"  # within the tolerance
    rollout_sync(client, cluster)
    assert deploy_head(cluster)["bakeStatus"] == "InProgress"
    clock.advance(minutes=2, seconds=1)
    status = healthcheck_sync(client, cluster)
    assert status["message"] == "Prometheus query failing for longer than 2m: Prometheus answered HTTP 503"
    rollout_sync(client, cluster)
    assert deploy_head(cluster)["bakeStatus"] == "Failed"
