"""Namespaces as tenants (docs/tenancy.md).

A Rollout reads and affects only its own namespace, except HealthChecks in a Namespace labelled
`rollout.kuberik.com/shared-health-checks: "true"`. Nothing of a namespace that did not opt in is
reset, read or copied into another namespace's status, whatever Metacontroller delivered.
"""

from __future__ import annotations

import copy

import pytest

from hooks.app import create_app
from hooks.healthcheck.hook import related_rules as healthcheck_rules
from hooks.rollout.customize import related_rules as rollout_rules
from hooks.rollout.health import cross_namespace_label_note
from tests import healthcheck_objects as hc
from tests.metacontroller_select import Cluster, related
from tests.rollout_world import NS, World

SHARED = {"rollout.kuberik.com/shared-health-checks": "true"}
CROSS = {"rollout.kuberik.com/cross-namespace-health": "true"}
SECRET = "db password rotation failed for tenant-b"  # what must never leak across namespaces
EVERY_NAMESPACE = {"selector": {"matchLabels": {"app": "app"}}, "namespaceSelector": {}}


def namespace(name: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


# --- the Rollout side ----------------------------------------------------------------------


def rollout_world() -> World:
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "healthCheckSelector": EVERY_NAMESPACE})
    world.extra_related = {
        "Namespace.v1": {
            NS: namespace(NS),
            "private": namespace("private"),
            "shared": namespace("shared", SHARED),
        }
    }
    # a check of its own namespace: a selector that selects nothing never bakes green (docs rollout.md)
    world.check("smoke", "Healthy", changed=world.now)
    world.release("1.0.0")
    world.sync()
    return world


def test_a_rollout_never_reads_checks_of_a_namespace_that_did_not_opt_in():
    world = rollout_world()
    # delivered anyway (a hand-made request, an older customize answer): still not read
    world.check("db", "Unhealthy", namespace="private", message=SECRET)
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.1.0"  # the private check does not block
    assert SECRET not in str(world.status)


def test_a_rollout_reads_checks_of_an_opted_in_namespace():
    world = rollout_world()
    world.check("edge", "Unhealthy", namespace="shared", message="edge down")
    world.release("1.1.0")
    world.sync()
    assert world.deployed == "1.0.0"
    assert (
        world.message("DeploymentBlocked")
        == "HealthCheck 'edge' in namespace 'shared' is not healthy: edge down"
    )


def test_the_customize_rule_asks_only_for_opted_in_namespaces():
    cluster = Cluster()
    cluster.add(namespace(NS), namespace("private"), namespace("shared", SHARED))
    for ns in (NS, "private", "shared"):
        cluster.add(hc.healthcheck(name="check", namespace=ns, labels={"app": "app"}))
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "healthCheckSelector": EVERY_NAMESPACE})
    got = related(cluster, rollout_rules(world.rollout()))
    assert sorted(got["HealthCheck.kuberik.com/v1alpha1"]) == sorted([f"{NS}/check", "shared/check"])
    assert sorted(got["Namespace.v1"]) == sorted([NS, "shared"])


def test_a_rollout_with_a_namespace_selector_but_without_the_label_is_told():
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "healthCheckSelector": EVERY_NAMESPACE})
    note = cross_namespace_label_note(world.rollout())
    assert note and "rollout.kuberik.com/cross-namespace-health" in note
    labelled = world.rollout()
    labelled["metadata"]["labels"] = dict(CROSS)
    assert cross_namespace_label_note(labelled) is None
    for selector in (
        {"matchLabels": {"app": "app"}},
        None,
        {"selector": {"matchLabels": {"a b": "c"}}, "namespaceSelector": {}},
    ):
        plain = World(spec={"releasesImagePolicy": {"name": "app"}, "healthCheckSelector": selector})
        assert cross_namespace_label_note(plain.rollout()) is None


# --- the HealthCheck side ------------------------------------------------------------------


@pytest.fixture
def client():
    return create_app(clock=lambda: hc.NOW, actuator=object()).test_client()


def sync(client, body: dict) -> dict | None:
    response = client.post("/healthcheck/sync", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["status"]


HEALTHY = {"status": "Healthy", "message": "ok", "lastChangeTime": hc.at(-60), "lastErrorTime": hc.at(-30)}


def foreign_rollout() -> dict:
    return hc.rollout(
        namespace="tenant-a",
        selector={"selector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {}},
        cross_namespace=True,
    )


def test_a_check_of_a_namespace_that_did_not_opt_in_is_not_reset_by_other_namespaces(client):
    check = hc.healthcheck(namespace="tenant-b", cls="external", target=None, status=dict(HEALTHY))
    body = hc.request(check, foreign_rollout(), hc.namespace("tenant-b"))
    assert sync(client, body) is None  # lastErrorTime kept, not Pending


def test_a_check_of_an_opted_in_namespace_is_reset_by_other_namespaces(client):
    check = hc.healthcheck(namespace="tenant-b", cls="external", target=None, status=dict(HEALTHY))
    body = hc.request(check, foreign_rollout(), hc.namespace("tenant-b", SHARED))
    status = sync(client, body)
    assert status is not None and status["status"] == "Pending" and "lastErrorTime" not in status


def test_an_unlabelled_rollout_of_another_namespace_does_not_reset_even_an_opted_in_check(client):
    other = foreign_rollout()
    other["metadata"]["labels"] = {}
    check = hc.healthcheck(namespace="tenant-b", cls="external", target=None, status=dict(HEALTHY))
    assert sync(client, hc.request(check, other, hc.namespace("tenant-b", SHARED))) is None


def test_its_own_namespace_always_resets(client):
    check = hc.healthcheck(namespace="tenant-b", cls="external", target=None, status=dict(HEALTHY))
    mine = hc.rollout(namespace="tenant-b")
    assert sync(client, hc.request(check, mine, hc.namespace("tenant-b")))["status"] == "Pending"


def failing_kustomization(ns: str) -> dict:
    failed = hc.condition("Ready", "False", "HealthCheckFailed", SECRET, when=hc.at(-1))
    return hc.kustomization(namespace=ns, annotations={}, conditions=[failed])


def test_a_kustomization_of_a_namespace_that_did_not_opt_in_is_not_read(client):
    check = hc.healthcheck(
        namespace="tenant-a",
        target="tenant-b/app",
        status={"status": "Pending", "message": "x", "lastChangeTime": hc.at(-2)},
    )
    body = hc.request(check, failing_kustomization("tenant-b"), hc.namespace("tenant-b"))
    status = sync(client, body)
    assert status["status"] == "Unhealthy"
    assert SECRET not in str(status) and "lastErrorTime" not in status
    assert "tenant-b does not share health checks" in status["message"]


def test_a_kustomization_of_an_opted_in_namespace_is_read(client):
    check = hc.healthcheck(
        namespace="tenant-a",
        target="tenant-b/app",
        status={"status": "Pending", "message": "x", "lastChangeTime": hc.at(-2)},
    )
    body = hc.request(check, failing_kustomization("tenant-b"), hc.namespace("tenant-b", SHARED))
    status = sync(client, body)
    assert (status["status"], status["message"]) == ("Unhealthy", SECRET)


def test_the_decorator_asks_for_the_namespaces_it_must_check():
    check = hc.healthcheck(namespace="tenant-b", target="tenant-c/app")
    rules = healthcheck_rules(check)
    assert {"apiVersion": "v1", "resource": "namespaces", "names": ["tenant-b", "tenant-c"]} in rules
    cluster = Cluster()
    cluster.add(hc.namespace("tenant-a"), hc.namespace("tenant-b"), hc.namespace("tenant-c"))
    cluster.add(
        copy.deepcopy(foreign_rollout()),
        hc.rollout(namespace="tenant-c"),
        hc.rollout(name="mine", namespace="tenant-b"),
    )
    got = related(cluster, rules)
    # its own namespace, and the labelled Rollout: the unlabelled one of tenant-c is not sent
    assert sorted(got["Rollout.kuberik.com/v1alpha1"]) == ["tenant-a/web", "tenant-b/mine"]
    assert sorted(got["Namespace.v1"]) == ["tenant-b", "tenant-c"]


def test_the_ready_message_tells_a_rollout_without_the_label():
    """The note reaches the Rollout's Ready message (and never changes its reason)."""
    world = World(spec={"releasesImagePolicy": {"name": "app"}, "healthCheckSelector": EVERY_NAMESPACE})
    world.release("1.0.0")
    world.sync()
    ready = next(c for c in world.status["conditions"] if c["type"] == "Ready")
    assert "lacks the label rollout.kuberik.com/cross-namespace-health" in ready["message"]
    assert ready["reason"] != "InvalidSpec"  # world.sync() also checked the fixed point
