"""Audit of the HealthCheck and schedule hooks against docs/spec/v1alpha1/healthcheck.md and
rolloutschedule.md, and real Flux/Metacontroller.

Each test pins a behaviour a real user depends on: Flux's own way of reporting a failed
reconciliation, what Metacontroller (v4.16+, hook version v2) accepts in customize and sync
answers, and the schedule status invariants (`nextTransition` always in the future, gates
valid and stable between syncs).
"""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from hooks.app import create_app
from hooks.k8s import parse_time
from tests.crd_schema import errors_of, object_errors, validator
from tests.healthcheck_objects import (
    NOW,
    at,
    condition,
    healthcheck,
    kustomization,
    namespace,
    oci_repository,
    rollout,
    with_status,
)
from tests.healthcheck_objects import request as hc_request
from tests.schedule_objects import Hooks, expected_gate, namespace_obj, observed_gate, rule, schedule, utc
from tests.schedule_objects import request as sched_request
from tests.schedule_objects import rollout as sched_rollout


@pytest.fixture
def client():
    return create_app(clock=lambda: NOW, actuator=object()).test_client()


def hc_sync(client, body: dict) -> dict | None:
    """POST a HealthCheck sync; check the v2 decorator response shape and the fixed point."""
    response = client.post("/healthcheck/sync", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    # DecoratorHookResponse (v2): labels, annotations, status, attachments, resyncAfterSeconds.
    assert set(answer) <= {"labels", "annotations", "status", "attachments", "resyncAfterSeconds"}
    status = answer["status"]
    effective = status if status is not None else body["parent"].get("status")
    again = client.post("/healthcheck/sync", json=with_status(body, status)).get_json()["status"]
    assert again is None or again == effective, "status is not a fixed point"
    return status


def metacontroller_rule_problems(rule_: dict) -> list[str]:
    """Metacontroller's determineSelectionType (customize/manager.go) rejects these combinations."""
    problems = []
    if rule_.get("names") and ("labelSelector" in rule_ or "namespaceSelector" in rule_):
        problems.append("names combined with a selector")
    if rule_.get("namespace") and "namespaceSelector" in rule_:
        problems.append("namespace combined with namespaceSelector")
    if not rule_.get("apiVersion") or not rule_.get("resource"):
        problems.append("apiVersion and resource are required")
    return problems


# --- HealthCheck: Flux's failed reconciliation ---------------------------------------------------
#
# kustomize-controller's finalizeStatus, after a failed attempt: Ready=False (reason
# HealthCheckFailed, ...; the condition's observedGeneration is the object's generation, set by
# fluxcd/pkg/runtime/conditions.Set), the Reconciling condition is kept with reason
# ProgressingWithRetry, and status.observedGeneration is only advanced on success. A failed new
# revision therefore never satisfies "observedGeneration == generation and not Reconciling".

FAILING_NOW = condition("Ready", "False", "HealthCheckFailed", "deployment/web not ready", when=at(-1))
RETRYING = condition("Reconciling", "True", "ProgressingWithRetry", "retrying", when=at(-4))


def failing_kustomization(*, generation: int, observed: int) -> dict:
    ready = dict(FAILING_NOW, observedGeneration=generation)
    return kustomization(generation=generation, observed=observed, conditions=[RETRYING, ready])


@pytest.mark.parametrize(
    ("generation", "observed"),
    [
        (4, 3),  # substitute patched (generation bump), new revision failed its health checks
        (3, 3),  # new OCI artifact (no generation bump), failed its health checks
    ],
)
def test_failed_flux_reconciliation_is_unhealthy(client, generation, observed):
    check = healthcheck(status={"status": "Pending", "message": "x", "lastChangeTime": at(-2)})
    ks = failing_kustomization(generation=generation, observed=observed)
    status = hc_sync(client, hc_request(check, rollout(timestamp=at(-10)), ks))
    assert status["status"] == "Unhealthy"
    assert status["message"] == "deployment/web not ready"
    assert status["lastErrorTime"] == at(-1)  # after the deployment: fails the bake (§3.7)


def test_reconciliation_in_flight_stays_pending(client):
    in_flight = condition("Reconciling", "True", "Progressing", "Applying revision", when=at(-1))
    ks = kustomization(
        generation=4,
        observed=3,
        conditions=[in_flight, condition("Ready", "Unknown", "Progressing", "Reconciliation in progress")],
    )
    check = healthcheck(status={"status": "Pending", "message": "x", "lastChangeTime": at(-2)})
    assert hc_sync(client, hc_request(check, rollout(), ks))["status"] == "Pending"


def test_failure_of_an_older_generation_stays_pending(client):
    # The failure was reported for generation 3; generation 4 (the new version) is not tried yet.
    stale = dict(FAILING_NOW, observedGeneration=3)
    ks = kustomization(generation=4, observed=2, conditions=[RETRYING, stale])
    check = healthcheck(status={"status": "Pending", "message": "x", "lastChangeTime": at(-2)})
    assert hc_sync(client, hc_request(check, rollout(), ks))["status"] == "Pending"


# --- HealthCheck: reset -------------------------------------------------------------------------


def test_reset_cutoff_is_the_later_of_timestamp_and_retry_and_is_a_fixed_point(client):
    old = {"status": "Healthy", "message": "ok", "lastChangeTime": at(-5), "lastErrorTime": at(-6)}
    check = healthcheck(cls="external", target=None, status=old)
    # deployed before the last change, retried after it: reset
    status = hc_sync(client, hc_request(check, rollout(timestamp=at(-30), retry=at(-1))))
    assert status["status"] == "Pending" and "lastErrorTime" not in status
    # the reset status does not reset again, and the external tool's next verdict sticks
    healthy = {"status": "Healthy", "message": "ok", "lastChangeTime": at(0)}
    checked = healthcheck(cls="external", target=None, status=healthy)
    assert hc_sync(client, hc_request(checked, rollout(timestamp=at(-30), retry=at(-1)))) is None


# --- HealthCheck: deployed revision ------------------------------------------------------------


@pytest.mark.parametrize(
    ("applied", "expected"),
    [
        ("v2@sha256:" + "a" * 64, "Healthy"),  # what source-controller v1 writes for a tag
        ("v1@sha256:" + "b" * 64, "Pending"),
        ("sha256:" + "c" * 64, "Pending"),  # a digest-only revision does not prove the tag
    ],
)
def test_oci_revision_formats_flux_writes(client, applied, expected):
    ks = kustomization(annotations={}, substitute={}, source="app-repo", applied=applied)
    check = healthcheck(status={"status": "Pending", "message": "x", "lastChangeTime": at(-2)})
    status = hc_sync(client, hc_request(check, rollout(), ks, oci_repository()))
    assert status["status"] == expected


#: the check's namespace opted in to Rollouts of other namespaces (docs/tenancy.md)
SHARED = {"rollout.kuberik.com/shared-health-checks": "true"}


def test_cross_namespace_oci_source_driven_by_the_selecting_rollout(client):
    ks = kustomization(annotations={}, substitute={}, source="app-repo", applied="v1@sha256:" + "b" * 64)
    ks["spec"]["sourceRef"]["namespace"] = "deploy"
    cross = rollout(
        namespace="deploy",
        selector={"selector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {}},
        cross_namespace=True,
    )
    check = healthcheck(status={"status": "Pending", "message": "x", "lastChangeTime": at(-2)})
    body = hc_request(check, cross, ks, oci_repository(namespace="deploy"), namespace("team", SHARED))
    assert hc_sync(client, body)["status"] == "Pending"


def test_cross_namespace_oci_source_known_from_the_rollouts_targets(client):
    """Customize cannot deliver a source in another namespace; the Rollout's status.targets say it."""
    ks = kustomization(annotations={}, substitute={}, source="app-repo", applied="v1@sha256:" + "b" * 64)
    ks["spec"]["sourceRef"]["namespace"] = "deploy"
    cross = rollout(
        namespace="deploy",
        selector={"selector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {}},
        cross_namespace=True,
    )
    cross["status"]["targets"] = [
        {"kind": "OCIRepository", "name": "app-repo", "field": "spec.ref.tag", "state": "Synced"}
    ]
    check = healthcheck(status={"status": "Pending", "message": "x", "lastChangeTime": at(-2)})
    assert hc_sync(client, hc_request(check, cross, ks, namespace("team", SHARED)))["status"] == "Pending"
    ks["status"]["lastAppliedRevision"] = "v2@sha256:" + "c" * 64
    assert hc_sync(client, hc_request(check, cross, ks, namespace("team", SHARED)))["status"] == "Healthy"


# --- HealthCheck: customize answers valid for Metacontroller -------------------------------------


@pytest.mark.parametrize("target", ["app", "other/app", None, "a/b/c"])
@pytest.mark.parametrize("cls", ["kustomization", "prometheus", None])
def test_healthcheck_customize_rules_are_accepted_by_metacontroller(client, target, cls):
    body = {"controller": {}, "parent": healthcheck(cls=cls, target=target)}
    answer = client.post("/healthcheck/customize", json=body).get_json()
    assert set(answer) == {"relatedResources"}
    for rule_ in answer["relatedResources"]:
        assert metacontroller_rule_problems(rule_) == []
    resources = {r["resource"] for r in answer["relatedResources"]}
    assert {"rollouts", "namespaces"} <= resources


# --- Schedules -----------------------------------------------------------------------------------


def test_invalid_schedule_does_not_report_a_transition_in_the_past():
    hooks = Hooks(utc(2024, 3, 4, 8, 0))  # a Monday
    good = schedule(rule("w", start="09:00", end="17:00"), action="Allow")
    first = hooks.sync(sched_request(good, rollouts=[sched_rollout("web")]))
    assert first["status"]["nextTransition"] == "2024-03-04T09:00:00Z"
    bad = copy.deepcopy(good)
    bad["spec"]["timezone"] = "Mars/Olympus"
    bad["status"] = first["status"]
    gates = [observed_gate(g) for g in first["children"]]
    later = utc(2024, 3, 4, 12, 0)
    response = hooks.sync(sched_request(bad, rollouts=[sched_rollout("web")], gates=gates), at=later)
    assert response["children"] == first["children"]  # gates keep their last state
    transition = response["status"].get("nextTransition")
    assert transition is None or parse_time(transition) > later


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York"])
def test_walking_the_resyncs_hits_every_transition_without_hot_loops(tz):
    """Follow resyncAfterSeconds for three days across the 2024-03-10 US DST change."""
    parent = schedule(
        rule("night", start="22:00", end="02:00"),
        rule("lunch", start="12:00", end="13:00", days=["Saturday", "Sunday"]),
        timezone=tz,
    )
    now = utc(2024, 3, 8, 0, 0)
    hooks = Hooks(now)
    body = sched_request(parent, rollouts=[sched_rollout("web")])
    previous_active = None
    syncs = 0
    while now < utc(2024, 3, 11, 0, 0):
        response = hooks.sync(body, at=now)
        syncs += 1
        status = response["status"]
        assert errors_of(validator("RolloutSchedule", part="status"), status) == []
        if previous_active is not None and "nextTransition" in body["parent"].get("status", {}):
            due = parse_time(body["parent"]["status"]["nextTransition"])
            if now >= due:  # a transition was due: it really happened
                assert status["active"] != previous_active
        if "nextTransition" in status:
            assert parse_time(status["nextTransition"]) > now
        resync = response["resyncAfterSeconds"]
        assert resync >= 1
        previous_active = status["active"]
        body = copy.deepcopy(body)
        body["parent"]["status"] = status
        body["children"] = {
            "RolloutGate.kuberik.com/v1alpha1": {
                f"{g['metadata']['namespace']}/{g['metadata']['name']}": observed_gate(g)
                for g in response["children"]
            }
        }
        now = now + timedelta(seconds=resync)
    assert syncs < 3 * 24 + 20  # calm resyncs plus one per change, no hot loop


def test_gates_are_valid_and_do_not_churn_between_transitions():
    parent = schedule(rule("w", start="09:00", end="17:00", days=["Monday"]), action="Allow")
    hooks = Hooks(utc(2024, 3, 4, 9, 30))
    body = sched_request(parent, rollouts=[sched_rollout("web"), sched_rollout("api")])
    first = hooks.sync(body)
    for gate in first["children"]:
        assert object_errors(gate) == []
    body["parent"]["status"] = first["status"]
    body["children"] = {
        "RolloutGate.kuberik.com/v1alpha1": {
            f"team/{g['metadata']['name']}": observed_gate(g) for g in first["children"]
        }
    }
    second = hooks.sync(body, at=utc(2024, 3, 4, 16, 59))
    assert second["children"] == first["children"]
    # managedGates lists the gates the children show are owned
    # (docs/spec/v1alpha1/rolloutschedule.md): there are some now
    assert second["status"]["managedGates"] == sorted(g["metadata"]["name"] for g in first["children"])
    assert {**second["status"], "managedGates": []} == first["status"]


def test_cluster_schedule_without_namespace_selector_relates_and_gates_every_namespace():
    parent = schedule(rule("w", start="09:00", end="17:00"), namespace=None)
    answer = (
        create_app(clock=lambda: NOW, actuator=object())
        .test_client()
        .post("/clusterrolloutschedule/customize", json={"controller": {}, "parent": parent})
        .get_json()
    )
    for rule_ in answer["relatedResources"]:
        assert metacontroller_rule_problems(rule_) == []
    assert [r["resource"] for r in answer["relatedResources"]] == ["rollouts"]
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    rollouts = [sched_rollout("web", namespace="a"), sched_rollout("web", namespace="b")]
    response = hooks.settle(sched_request(parent, rollouts=rollouts, namespaces=[namespace_obj("a")]))
    web = expected_gate("sched", "web", cluster=True)
    assert sorted(response["status"]["managedGates"]) == [f"a/{web}", f"b/{web}"]
    for gate in response["children"]:
        assert object_errors(gate) == []
