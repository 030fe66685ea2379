"""End to end: the Rollout sync hook and the HealthCheck sync hook, chained through the routes.

A tiny in-memory cluster plays Metacontroller and Flux: each hook's returned status is
persisted and fed into the next request, the actuator's JSON Patches change the stored
Kustomization, and "Flux" reconciles it when the test says so.

deploy -> HealthCheck reset -> Kustomization catches up -> Healthy -> bake starts -> bake succeeds
"""

from __future__ import annotations

import copy
from datetime import timedelta

import jsonpatch

from hooks.app import create_app
from hooks.patchplan import PatchOutcome
from tests import flux_objects as flux
from tests.healthcheck_objects import NOW, at, condition, healthcheck, kustomization, namespace


class Cluster:
    """Objects by (kind, namespace, name); the actuator applies JSON Patches to them."""

    GROUPS = {
        "Rollout": "Rollout.kuberik.com/v1alpha1",
        "HealthCheck": "HealthCheck.kuberik.com/v1alpha1",
        "ImagePolicy": "ImagePolicy.image.toolkit.fluxcd.io/v1",
        "Kustomization": "Kustomization.kustomize.toolkit.fluxcd.io/v1",
        "OCIRepository": "OCIRepository.source.toolkit.fluxcd.io/v1",
        "RolloutGate": "RolloutGate.kuberik.com/v1alpha1",
        "Namespace": "Namespace.v1",
    }

    def __init__(self, *objects: dict) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.patches: list[tuple[str, str]] = []
        for obj in objects:
            self.put(obj)

    def put(self, obj: dict) -> None:
        md = obj["metadata"]
        self.objects[(obj["kind"], md.get("namespace", ""), md["name"])] = copy.deepcopy(obj)

    def get(self, kind: str, name: str, ns: str = "team") -> dict:
        return self.objects[(kind, ns, name)]

    def related(self, *kinds: str) -> dict:
        groups: dict[str, dict] = {self.GROUPS[kind]: {} for kind in kinds}
        for (kind, ns, name), obj in self.objects.items():
            if kind in kinds:
                groups[self.GROUPS[kind]][f"{ns}/{name}" if ns else name] = copy.deepcopy(obj)
        return groups

    # the actuator port of the Rollout hook
    def apply(self, patches) -> list[PatchOutcome]:
        outcomes = []
        for patch in patches:
            key = (patch.kind, patch.namespace, patch.name)
            try:
                patched = jsonpatch.apply_patch(self.objects[key], list(patch.ops))
            except (jsonpatch.JsonPatchTestFailed, KeyError):
                outcomes.append(PatchOutcome("conflict", "test failed"))
                continue
            if patched.get("spec") != self.objects[key].get("spec"):
                patched["metadata"]["generation"] = patched["metadata"].get("generation", 1) + 1
            self.objects[key] = patched
            self.patches.append((patch.kind, patch.name))
            outcomes.append(PatchOutcome("applied"))
        return outcomes


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def rollout_sync(client, cluster: Cluster, ns: str = "team") -> dict:
    rollout = cluster.get("Rollout", "web", ns)
    body = {
        "controller": {"kind": "CompositeController"},
        "parent": copy.deepcopy(rollout),
        "children": {},
        "related": cluster.related(
            "ImagePolicy", "Kustomization", "OCIRepository", "RolloutGate", "HealthCheck", "Namespace"
        ),
    }
    response = client.post("/rollout/sync", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    status = response.get_json()["status"]
    rollout["status"] = status  # Metacontroller persists it
    return status


def healthcheck_sync(client, cluster: Cluster, ns: str = "team") -> dict:
    check = cluster.get("HealthCheck", "app-health", ns)
    body = {
        "controller": {"kind": "DecoratorController"},
        "parent": copy.deepcopy(check),
        "related": cluster.related("Rollout", "Kustomization", "OCIRepository", "Namespace"),
    }
    response = client.post("/healthcheck/sync", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    status = response.get_json()["status"]
    if status is not None:
        check["status"] = status
    # fixed point: the same request with the persisted status changes nothing
    body["parent"]["status"] = check.get("status")
    again = client.post("/healthcheck/sync", json=body).get_json()["status"]
    assert again in (None, check.get("status"))
    return check.get("status")


def flux_reconciles(cluster: Cluster, clock: Clock, tag: str) -> None:
    """kustomize-controller applies the current generation (its source is a GitRepository)."""
    ks = cluster.get("Kustomization", "app")
    cluster.put(flux.ready(ks, tag, clock.now, applied=f"main@sha1:{tag}"))


def ran_0_9_0(tag: str = "0.9.0") -> dict:
    """The Rollout already deployed and baked `tag` (an empty history would adopt it, docs rollout.md)."""
    entry = {
        "id": 1,
        "version": {"tag": tag},
        "timestamp": at(-3600),
        "message": "Automatic deployment",
        "trigger": "Automatic",
        "bakeStatus": "Succeeded",
        "bakeStatusMessage": "Bake completed successfully.",
    }
    return {"availableReleases": [{"tag": tag, "discoveredAt": at(-3600)}], "history": [entry]}


def deploy_head(cluster: Cluster, ns: str = "team") -> dict:
    return cluster.get("Rollout", "web", ns)["status"]["history"][0]


def test_deploy_reset_catch_up_healthy_bake():
    clock = Clock()
    ks = kustomization(
        generation=1,
        observed=1,
        substitute={"VERSION": "0.9.0"},
        annotations={"rollout.kuberik.com/substitute.VERSION.from": "web"},
        conditions=[condition("Ready", "True", "ReconciliationSucceeded", "Applied revision: old", at(-600))],
    )
    old_health = {"status": "Healthy", "message": "Applied revision: old", "lastChangeTime": at(-600)}
    cluster = Cluster(
        namespace("team"),
        ks,
        healthcheck(status=old_health),
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
            "status": ran_0_9_0(),
        },
    )
    client = create_app(clock=clock, actuator=cluster).test_client()

    # 1. The Rollout records the deployment; write-ahead: no Flux object changes yet.
    rollout_sync(client, cluster)
    head = deploy_head(cluster)
    assert (head["version"]["tag"], head["bakeStatus"]) == ("1.0.0", "Deploying")
    assert cluster.patches == []

    # 2. The HealthCheck is reset; the Kustomization is still Ready on the old version.
    clock.advance(seconds=5)
    check = healthcheck_sync(client, cluster)
    assert check == {
        "status": "Pending",
        "message": "waiting for 1.0.0 to be applied",
        "lastChangeTime": at(seconds=5),
        "observedGeneration": 1,  # written by the hook (docs/spec/v1alpha1/healthcheck.md)
    }

    # 3. The Rollout, seeing the deployment persisted, patches the Kustomization.
    clock.advance(seconds=5)
    rollout_sync(client, cluster)
    assert cluster.patches == [("Kustomization", "app")]
    assert cluster.get("Kustomization", "app")["spec"]["postBuild"]["substitute"]["VERSION"] == "1.0.0"
    assert deploy_head(cluster)["bakeStatus"] == "Deploying"

    # 4. Flux has not reconciled the new generation: still Pending, the bake waits.
    clock.advance(seconds=5)
    check = healthcheck_sync(client, cluster)
    assert check["status"] == "Pending"
    assert "generation 2" in check["message"]
    rollout_sync(client, cluster)
    assert deploy_head(cluster)["bakeStatus"] == "Deploying"

    # 5. Flux applies 1.0.0 and reports Ready: the check turns Healthy, fresh.
    clock.advance(seconds=30)
    flux_reconciles(cluster, clock, "1.0.0")
    check = healthcheck_sync(client, cluster)
    assert check["status"] == "Healthy"
    assert check["lastChangeTime"] == at(seconds=45)

    # 6. The bake starts...
    clock.advance(seconds=5)
    rollout_sync(client, cluster)
    head = deploy_head(cluster)
    assert head["bakeStatus"] == "InProgress"
    started = head["bakeStartTime"]

    # ...the HealthCheck stays as it is...
    assert healthcheck_sync(client, cluster) == check

    # 7. ...and succeeds once bakeTime has passed without errors.
    clock.advance(minutes=10)
    rollout_sync(client, cluster)
    head = deploy_head(cluster)
    assert head["bakeStatus"] == "Succeeded"
    assert head["bakeStartTime"] == started
    assert healthcheck_sync(client, cluster) == check


def test_failure_after_deploy_fails_the_bake():
    """The same chain, but Flux reports a failed health check after applying the new version."""
    clock = Clock()
    cluster = Cluster(
        namespace("team"),
        kustomization(
            generation=1,
            observed=1,
            substitute={"VERSION": "0.9.0"},
            annotations={"rollout.kuberik.com/substitute.VERSION.from": "web"},
        ),
        healthcheck(),
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"policy": {"semver": {"range": ">=0.0.0"}}},
            "status": {"latestRef": {"tag": "1.0.0"}},
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
            "status": ran_0_9_0(),
        },
    )
    client = create_app(clock=clock, actuator=cluster).test_client()
    rollout_sync(client, cluster)
    clock.advance(seconds=5)
    rollout_sync(client, cluster)  # patches the Kustomization
    healthcheck_sync(client, cluster)

    clock.advance(seconds=30)
    # kustomize-controller applied generation 2 and its health check failed: Ready=False for
    # generation 2, Reconciling=ProgressingWithRetry, observedGeneration left at 1.
    ks = cluster.get("Kustomization", "app")
    message = "health check failed after 30s: timeout waiting for: [Deployment/team/web status: 'InProgress']"
    cluster.put(flux.failed(flux.reconciling(ks, clock.now), "HealthCheckFailed", message, clock.now))
    assert cluster.get("Kustomization", "app")["status"]["observedGeneration"] == 1
    check = healthcheck_sync(client, cluster)
    assert check["status"] == "Unhealthy"
    assert check["lastErrorTime"] == at(seconds=35)

    clock.advance(seconds=5)
    rollout_sync(client, cluster)
    head = deploy_head(cluster)
    assert head["bakeStatus"] == "Failed"
    assert head["failedHealthChecks"][0]["name"] == "app-health"


def test_a_driven_source_chain_names_flux_failures_and_bakes_only_once_applied():
    """Rollout -> OCIRepository tag -> Kustomization sourced from it -> HealthCheck of that
    Kustomization, all shaped as Flux writes them (tests/flux_objects.py): a missing tag keeps the
    check Pending naming the source's failure and the target Failed; once the tag exists, the bake
    starts only after kustomize-controller applied the new artifact."""
    clock = Clock()
    clock.now = flux.at(0)
    ns = flux.NS
    repo = flux.ready(
        flux.ocirepository("manifests", "1.0.0", rollout="web", generation=3), "1.0.0", flux.at(-60)
    )
    ks = flux.ready(flux.kustomization("app", generation=2), "1.0.0", flux.at(-59))
    rollout_obj = {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": ns, "generation": 1},
        "spec": {
            "releasesImagePolicy": {"name": "web"},
            "bakeTime": "10m",
            "deployTimeout": "30m",
            "healthCheckSelector": {"matchLabels": {"app": "web"}},
        },
        "status": ran_0_9_0("1.0.0"),
    }
    cluster = Cluster(
        namespace(ns),
        repo,
        ks,
        healthcheck(namespace=ns, target="app"),
        flux.image_policy("1.1.0", "web"),
        rollout_obj,
    )
    client = create_app(clock=clock, actuator=cluster).test_client()

    # decided (write-ahead), then the persisted decision is patched: generation 4
    rollout_sync(client, cluster, ns)
    assert deploy_head(cluster, ns)["version"]["tag"] == "1.1.0"
    clock.advance(seconds=5)
    rollout_sync(client, cluster, ns)
    assert cluster.patches == [("OCIRepository", "manifests")]
    repo = cluster.get("OCIRepository", "manifests", ns)
    assert (repo["spec"]["ref"]["tag"], repo["metadata"]["generation"]) == ("1.1.0", 4)

    # the check is reset and waits for 1.1.0; source-controller cannot pull the tag
    clock.advance(seconds=5)
    pull = (
        "failed to determine artifact digest: "
        "GET https://ghcr.io/v2/acme/app-manifests/manifests/1.1.0: MANIFEST_UNKNOWN"
    )
    cluster.put(flux.failed(flux.reconciling(repo, clock.now), "OCIArtifactPullFailed", pull, clock.now))
    check = healthcheck_sync(client, cluster, ns)
    assert check["status"] == "Pending"
    assert check["message"] == (
        f"waiting for 1.1.0 to be applied; OCIRepository {ns}/manifests failed: OCIArtifactPullFailed: {pull}"
    )
    status = rollout_sync(client, cluster, ns)
    tag_entry = next(t for t in status["targets"] if t["field"] == "spec.ref.tag")
    assert (tag_entry["state"], tag_entry["message"]) == ("Failed", f"OCIArtifactPullFailed: {pull}")
    assert deploy_head(cluster, ns)["bakeStatus"] == "Deploying"

    # the tag is pushed: source-controller stores the artifact; the Kustomization still runs 1.0.0
    clock.advance(minutes=2)
    cluster.put(flux.ready(cluster.get("OCIRepository", "manifests", ns), "1.1.0", clock.now))
    check = healthcheck_sync(client, cluster, ns)
    assert (check["status"], check["message"]) == ("Pending", "waiting for 1.1.0 to be applied")
    rollout_sync(client, cluster, ns)
    assert deploy_head(cluster, ns)["bakeStatus"] == "Deploying"

    # kustomize-controller applies the new artifact: Healthy, and the bake starts
    clock.advance(seconds=40)
    cluster.put(flux.ready(cluster.get("Kustomization", "app", ns), "1.1.0", clock.now))
    check = healthcheck_sync(client, cluster, ns)
    assert (check["status"], check["message"]) == ("Healthy", f"Applied revision: {flux.revision('1.1.0')}")
    clock.advance(seconds=5)
    status = rollout_sync(client, cluster, ns)
    assert {t["state"] for t in status["targets"]} == {"Synced"}
    assert deploy_head(cluster, ns)["bakeStatus"] == "InProgress"
    clock.advance(minutes=10)
    rollout_sync(client, cluster, ns)
    assert deploy_head(cluster, ns)["bakeStatus"] == "Succeeded"
