"""Request sizes at scale (docs/scale.md): 2,000 Rollouts in 200 namespaces.

Each request is built from the hooks' own customize answers, selected the way Metacontroller
selects related objects (tests/metacontroller_select.py), and measured as the JSON body
Metacontroller would POST. The hooks are then called with the biggest of them.
"""

from __future__ import annotations

from typing import Any

import pytest

from hooks.app import MAX_BODY_BYTES, create_app
from hooks.healthcheck import hook as healthcheck_hook
from hooks.rollout import customize as rollout_customize
from tests.metacontroller_select import Cluster, SyncFails, related, request_bytes
from tests.scale_world import (
    NOW,
    SHARED_NAMESPACE,
    flux_namespace,
    namespace,
    rollout,
    world,
)

KIB, MIB = 1024, 1024 * 1024
CROSSING = 20  # Rollouts of other namespaces that select the shared `platform/edge` check


class RecordingActuator:
    mode = "apply"

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def apply(self, patches: list[Any]) -> list[Any]:
        self.sent.extend(patches)
        return []


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return world(cross_namespace_rollouts=CROSSING)


@pytest.fixture(scope="module")
def client():
    return create_app(clock=lambda: NOW, actuator=RecordingActuator()).test_client()


def customize(client, route: str, parent: dict) -> list[dict]:
    response = client.post(route, json={"controller": {}, "parent": parent})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["relatedResources"]


def healthcheck_request(cluster: Cluster, check: dict) -> dict:
    rules = healthcheck_hook.related_rules(check)
    return {"controller": {}, "object": check, "related": related(cluster, rules), "attachments": {}}


def rollouts_in(body: dict) -> list[dict]:
    return list(body["related"].get("Rollout.kuberik.com/v1alpha1", {}).values())


# --- HealthChecks --------------------------------------------------------------------------


def test_every_healthcheck_request_is_well_under_one_mib(cluster):
    checks = cluster.of("kuberik.com/v1alpha1", "HealthCheck")
    assert len(checks) == 401 and len(cluster.of("kuberik.com/v1alpha1", "Rollout")) == 2000
    sizes = {}
    for check in checks:
        body = healthcheck_request(cluster, check)
        own = check["metadata"]["namespace"]
        for obj in rollouts_in(body):
            # its own namespace, or a Rollout that said it looks across namespaces
            labels = obj["metadata"]["labels"]
            assert (
                obj["metadata"]["namespace"] == own
                or labels["rollout.kuberik.com/cross-namespace-health"] == "true"
            )
        sizes[f"{own}/{check['metadata']['name']}"] = request_bytes(body)
    biggest = max(sizes.values())
    # 10 Rollouts of the namespace plus the 20 labelled ones, about 12 KiB each
    assert biggest < 512 * KIB, max(sizes, key=sizes.__getitem__)
    assert len(rollouts_in(healthcheck_request(cluster, checks[-1]))) == 10 + CROSSING


def test_the_previous_cluster_wide_rule_would_send_every_rollout(cluster):
    """The measure can fail: the rule this replaced (every Rollout of the cluster) is far over."""
    check = cluster.of("kuberik.com/v1alpha1", "HealthCheck")[-1]
    old_rules = [
        {
            "apiVersion": "kuberik.com/v1alpha1",
            "resource": "rollouts",
            "labelSelector": {},
            "namespaceSelector": {},
        }
    ]
    body = {"controller": {}, "object": check, "related": related(cluster, old_rules), "attachments": {}}
    assert len(rollouts_in(body)) == 2000
    assert request_bytes(body) > 20 * MIB


def test_the_shared_check_is_reset_by_the_rollouts_that_cross_namespaces(cluster, client):
    [edge] = [c for c in cluster.of("kuberik.com/v1alpha1", "HealthCheck") if c["metadata"]["name"] == "edge"]
    body = healthcheck_request(cluster, edge)
    assert len(rollouts_in(body)) == CROSSING
    answer = client.post("/healthcheck/sync", json=body)
    assert answer.status_code == 200
    # their newest deployment is after the check's last change: reset (docs/spec/v1alpha1/healthcheck.md)
    assert answer.get_json()["status"]["status"] == "Pending"


def test_a_team_check_is_synced_from_its_namespace(cluster, client):
    [check] = [
        c
        for c in cluster.of("kuberik.com/v1alpha1", "HealthCheck")
        if c["metadata"]["namespace"] == "team-150" and c["metadata"]["name"] == "app-1"
    ]
    answer = client.post("/healthcheck/sync", json=healthcheck_request(cluster, check))
    assert answer.status_code == 200
    # reset by its Rollout's deployment, then judged: its Kustomization is not in this world
    assert answer.get_json()["status"]["message"] == "Kustomization team-150/app-1 not found"


# --- Rollouts ------------------------------------------------------------------------------


def test_rollout_requests_never_leave_the_namespace_except_for_shared_checks(cluster):
    for obj in cluster.of("kuberik.com/v1alpha1", "Rollout"):
        own = obj["metadata"]["namespace"]
        rel = related(cluster, rollout_customize.related_rules(obj))
        for group, objects in rel.items():
            for key, item in objects.items():
                ns = item["metadata"].get("namespace")
                if group == "Namespace.v1":
                    continue  # cluster-scoped: the Rollout's own and the opted-in ones
                assert ns == own or (group.startswith("HealthCheck.") and ns == SHARED_NAMESPACE), key


def test_rollout_rules_are_accepted_by_metacontroller(cluster):
    for obj in cluster.of("kuberik.com/v1alpha1", "Rollout")[:50]:
        related(cluster, rollout_customize.related_rules(obj))  # raises SyncFails otherwise


def test_target_selection_labeled_sends_only_labelled_flux_objects(client):
    """In a namespace of 500 Flux objects, Labeled sends the 2 that are labelled.

    docs/spec/v1alpha1/rollout.md (targetSelection).
    """
    flux = Cluster()
    flux.add(namespace("shop"))
    flux_namespace(flux, "shop", pairs=250, driven="web")
    sizes, targets = {}, {}
    for selection in ("All", "Labeled"):
        parent = rollout("web", "shop")
        parent["spec"]["targetSelection"] = selection
        rules = customize(client, "/rollout/customize", parent)
        flux_rules = [r for r in rules if r["resource"] in ("ocirepositories", "kustomizations")]
        for rule in flux_rules:
            assert rule["namespace"] == "shop"
            if selection == "Labeled":
                assert rule["labelSelector"] == {"matchLabels": {"rollout.kuberik.com/driven": "true"}}
            else:
                assert "labelSelector" not in rule
        body = {"controller": {}, "parent": parent, "related": related(flux, rules), "children": {}}
        counts = {group: len(objs) for group, objs in body["related"].items()}
        sizes[selection] = request_bytes(body)
        answer = client.post("/rollout/sync", json=body)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        targets[selection] = answer.get_json()["status"].get("targets")
        if selection == "Labeled":
            assert counts["OCIRepository.source.toolkit.fluxcd.io/v1"] == 1
            assert counts["Kustomization.kustomize.toolkit.fluxcd.io/v1"] == 1
    assert sizes["Labeled"] * 20 < sizes["All"]
    assert targets["Labeled"] == targets["All"]  # the annotations still say what is driven
    assert [(t["kind"], t["name"]) for t in targets["All"] if t["kind"] == "OCIRepository"] == [
        ("OCIRepository", "component-0")
    ]


# --- schedules -----------------------------------------------------------------------------


def schedule_parent(*, cluster_scoped: bool, namespace_selector: dict | None = None) -> dict:
    spec: dict[str, Any] = {
        "rolloutSelector": {},
        "rules": [{"name": "freeze", "dateRange": {"start": "2026-12-20", "end": "2027-01-04"}}],
    }
    metadata: dict[str, Any] = {"name": "freeze", "uid": "u-freeze", "generation": 1}
    if namespace_selector is not None:
        spec["namespaceSelector"] = namespace_selector
    if not cluster_scoped:
        metadata["namespace"] = "team-000"
    kind = "ClusterRolloutSchedule" if cluster_scoped else "RolloutSchedule"
    return {"apiVersion": "kuberik.com/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def schedule_request(client, cluster: Cluster, parent: dict) -> dict:
    route = (
        "/clusterrolloutschedule/customize"
        if parent["kind"] == "ClusterRolloutSchedule"
        else "/rolloutschedule/customize"
    )
    rules = customize(client, route, parent)
    return {"controller": {}, "parent": parent, "related": related(cluster, rules), "children": {}}


def test_a_rollout_schedule_sees_only_its_namespace(cluster, client):
    body = schedule_request(client, cluster, schedule_parent(cluster_scoped=False))
    assert {r["metadata"]["namespace"] for r in rollouts_in(body)} == {"team-000"}
    assert len(rollouts_in(body)) == 10
    assert request_bytes(body) < 256 * KIB
    answer = client.post("/rolloutschedule/sync", json=body).get_json()
    assert answer["status"]["matchingRollouts"] == 10


def test_cluster_schedule_request_grows_with_the_rollouts_it_selects(cluster, client):
    """The documented limit (docs/scale.md): a ClusterRolloutSchedule receives every Rollout it
    selects, so its request is about the size of one Rollout times their number."""
    prod = schedule_request(
        client,
        cluster,
        schedule_parent(cluster_scoped=True, namespace_selector={"matchLabels": {"env": "prod"}}),
    )
    assert len(rollouts_in(prod)) == 500  # 50 prod namespaces
    everything = schedule_request(client, cluster, schedule_parent(cluster_scoped=True))
    assert len(rollouts_in(everything)) == 2000
    per_rollout = request_bytes(everything) / 2000
    assert 8 * KIB < per_rollout < 16 * KIB
    assert request_bytes(everything) < MAX_BODY_BYTES  # 2,000 Rollouts still fit the body limit
    answer = client.post("/clusterrolloutschedule/sync", json=prod)
    assert answer.status_code == 200
    gates = answer.get_json()["children"]
    assert (
        len(gates) == 500 and len({(g["metadata"]["namespace"], g["metadata"]["name"]) for g in gates}) == 500
    )


def test_customize_rules_with_names_and_selectors_are_refused_like_metacontroller():
    """The helper itself: the combinations Metacontroller rejects fail the sync."""
    bad = [
        {"apiVersion": "v1", "resource": "namespaces", "names": ["a"], "labelSelector": {}},
        {
            "apiVersion": "kuberik.com/v1alpha1",
            "resource": "rollouts",
            "namespace": "a",
            "namespaceSelector": {},
        },
        {
            "apiVersion": "kuberik.com/v1alpha1",
            "resource": "rollouts",
            "labelSelector": {"matchLabels": {"a": "b c"}},
        },
        {"apiVersion": "v1", "resource": "namespaces", "namespaceSelector": {}},
        {"apiVersion": "example.com/v1", "resource": "missing"},
    ]
    for rule in bad:
        with pytest.raises(SyncFails):
            related(Cluster(), [rule])
