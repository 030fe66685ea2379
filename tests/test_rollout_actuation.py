"""The Rollout sync with the real actuator against the in-process fake Kubernetes API.

The Flux objects and the Rollout live in the fake API server; every sync reads them back
from it (as Metacontroller's informers would) and the actuator patches them there.
"""

from __future__ import annotations

import os

import pytest

from hooks.actuator import Actuator
from tests import flux_objects as flux
from tests.fakekube import FakeKube, path_for
from tests.rollout_world import NS, World

GIT_REVISION = "main@sha1:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"


class ClusterWorld(World):
    """A World whose Flux objects and Rollout annotations come from the fake API server.

    Its Flux objects carry a status as Flux writes it (tests/flux_objects.py); `flux_reconciles`
    plays source-controller and kustomize-controller finishing the generation they hold."""

    kube: FakeKube

    def ocirepo(self, name: str, tag: str | None = "0.0.1", rollout: str = "app", **ref: str) -> None:
        obj = flux.ocirepository(name, tag, rollout=rollout, **ref)
        self.ocirepos[name] = flux.ready(obj, tag, self.now) if tag else obj

    def kustomization(self, name: str, annotations: dict, substitute: dict | None = None) -> None:
        obj = flux.kustomization(name, annotations=annotations, substitute=substitute)
        obj["spec"]["sourceRef"] = {"kind": "GitRepository", "name": "platform"}
        self.kustomizations[name] = flux.ready(obj, "", self.now, applied=GIT_REVISION)

    def flux_reconciles(self) -> None:
        for kind, store in (("OCIRepository", self.ocirepos), ("Kustomization", self.kustomizations)):
            for name in store:
                obj = self.kube.get(kind, NS, name)
                assert obj is not None
                tag = obj["spec"].get("ref", {}).get("tag", "")
                self.kube.put(flux.ready(obj, tag, self.now, applied=GIT_REVISION))

    def publish(self) -> None:
        for store in (self.ocirepos, self.kustomizations):
            for obj in store.values():
                self.kube.put(obj)
        self.kube.put(self.rollout())

    def observe(self) -> None:
        """Refresh the related objects and the Rollout's annotations from the API server."""
        for kind, store in (("OCIRepository", self.ocirepos), ("Kustomization", self.kustomizations)):
            for name in store:
                store[name] = self.kube.get(kind, NS, name)
        rollout = self.kube.get("Rollout", NS, self.name)
        self.annotations = dict(rollout["metadata"].get("annotations") or {})

    def once(self) -> dict:
        """One sync as Metacontroller would send it, without the replay."""
        self.observe()
        return super().sync(check_fixed_point=False)

    def sync(self, check_fixed_point: bool = True) -> dict:
        status = self.once()
        if check_fixed_point:
            # the replay runs with the status now persisted: it may patch, but the status
            # must not change while the patch is in flight
            again = self.post(self.request()).get_json()
            assert again["status"] == status
        return status


def cluster_world(fake_kube: FakeKube, env: dict | None = None, **kwargs) -> ClusterWorld:
    world = ClusterWorld(**kwargs)
    world.kube = fake_kube
    world.actuator = Actuator.from_env({**os.environ, **(env or {})})
    return world


def field_value(fake: FakeKube, kind: str, name: str, *path: str):
    node = fake.get(kind, NS, name)
    for part in path:
        node = node[part]
    return node


def test_patch_waits_until_the_decision_is_persisted(fake_kube):
    world = cluster_world(fake_kube)
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.0.0")
    world.publish()
    world.sync()  # first deploy of 1.0.0: already carried
    world.release("1.1.0")

    status = world.once()
    assert world.deployed == "1.1.0"
    assert fake_kube.patches() == [], "no Flux object changes before the decision is persisted"
    assert status["targets"][0]["state"] == "Pending"

    world.sync()  # the next sync sees the decision persisted and changes the object
    patches = fake_kube.patches()
    assert len(patches) >= 1
    first = patches[0]
    assert first.path == path_for("OCIRepository", NS, "manifests")
    assert first.content_type == "application/json-patch+json"
    assert first.body == [
        {"op": "test", "path": "/spec/ref/tag", "value": "1.0.0"},
        {"op": "replace", "path": "/spec/ref/tag", "value": "1.1.0"},
    ]
    assert field_value(fake_kube, "OCIRepository", "manifests", "spec", "ref", "tag") == "1.1.0"
    world.sync()
    assert world.condition("TargetsSynced") == ("False", "TargetsPending"), "Flux has not fetched it yet"
    world.flux_reconciles()
    world.sync()
    assert world.condition("TargetsSynced") == ("True", "AllTargetsSynced")


def test_only_the_annotated_fields_of_this_rollouts_objects_change(fake_kube):
    world = cluster_world(fake_kube)
    world.kustomization(
        "app",
        {"rollout.kuberik.com/rollout": "app", "rollout.kuberik.com/substitute": "VERSION"},
        {"VERSION": "0.1.0", "REPLICAS": "3"},
    )
    world.kustomization(
        "canary",
        {
            "rollout.kuberik.com/substitute.APP_TAG.from": "app",
            "rollout.kuberik.com/substitute.SIDECAR_TAG.from": "sidecar",
            "rollout.kuberik.com/substitute.CANARY_TAG.from": "app",
        },
        {"SIDECAR_TAG": "7.0.0"},
    )
    world.kustomization(
        "theirs",
        {"rollout.kuberik.com/rollout": "other", "rollout.kuberik.com/substitute": "VERSION"},
        {"VERSION": "0.1.0"},
    )
    world.ocirepo("their-source", tag="5.0.0", rollout="other")
    world.publish()
    before = {path: dict(obj) for path, obj in fake_kube.objects.items()}
    world.release("1.0.0")
    world.sync()
    world.sync()

    app = fake_kube.get("Kustomization", NS, "app")
    assert app["spec"]["postBuild"]["substitute"] == {"VERSION": "1.0.0", "REPLICAS": "3"}
    canary = fake_kube.get("Kustomization", NS, "canary")
    assert canary["spec"]["postBuild"]["substitute"] == {
        "SIDECAR_TAG": "7.0.0",
        "APP_TAG": "1.0.0",
        "CANARY_TAG": "1.0.0",
    }
    # everything else of those objects, and the other Rollout's objects, is untouched
    for path, old in before.items():
        new = fake_kube.objects[path]
        if path.endswith(("/kustomizations/app", "/kustomizations/canary")):
            assert {k: v for k, v in new["spec"].items() if k != "postBuild"} == {
                k: v for k, v in old["spec"].items() if k != "postBuild"
            }
            server_owned = ("generation", "resourceVersion")
            assert {k: v for k, v in new["metadata"].items() if k not in server_owned} == {
                k: v for k, v in old["metadata"].items() if k not in server_owned
            }
        elif "/rollouts/" not in path:
            assert new == old, path
    canary_patches = [r for r in fake_kube.patches() if r.path.endswith("/kustomizations/canary")]
    assert len(canary_patches) == 1, "several variables of one object go in one patch"
    assert [op["op"] for op in canary_patches[0].body] == ["test", "add", "test", "add"]
    world.sync()
    assert [t["state"] for t in world.status["targets"]] == ["Applying"] * 3
    world.flux_reconciles()
    world.sync()
    assert [t["state"] for t in world.status["targets"]] == ["Synced"] * 3


def test_conflict_is_replanned_without_overwriting(fake_kube):
    world = cluster_world(fake_kube)
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.0.0")
    world.publish()
    world.sync()
    world.release("1.1.0")
    world.sync()  # decided; persisted with the replay
    assert world.deployed == "1.1.0"
    # someone else changed the tag after Metacontroller's view was taken
    fake_kube.objects[path_for("OCIRepository", NS, "manifests")]["spec"]["ref"]["tag"] = "hand-edit"
    stale = world.request()  # still shows 1.0.0
    fake_kube.requests.clear()
    response = world.post(stale).get_json()
    assert fake_kube.patches()[0].body[0] == {"op": "test", "path": "/spec/ref/tag", "value": "1.0.0"}
    assert field_value(fake_kube, "OCIRepository", "manifests", "spec", "ref", "tag") == "hand-edit"
    target = response["status"]["targets"][0]
    assert target["state"] == "Pending"
    # the next sync observes the new value and plans against it
    world.sync()
    assert field_value(fake_kube, "OCIRepository", "manifests", "spec", "ref", "tag") == "1.1.0"


def test_api_errors_are_reported_retried_with_backoff_and_recover(fake_kube):
    world = cluster_world(fake_kube)
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.0.0")
    world.publish()
    world.sync()
    history_before = list(world.history)
    fake_kube.fail(403, path=path_for("OCIRepository", NS, "manifests"), message="RBAC says no")
    world.release("1.1.0")
    world.once()  # decided and persisted
    world.sync()  # the patch fails, and fails the same way on the replay: a fixed point again
    target = world.status["targets"][0]
    assert target["state"] == "Error"
    assert "forbidden" in target["message"].lower()
    since = target["errorSince"]
    assert world.condition("Ready") == ("False", "TargetsFailing")
    assert world.condition("TargetsSynced") == ("False", "TargetsFailing")
    assert world.last["resyncAfterSeconds"] == 10
    assert world.history[1:] == history_before, "history is kept"
    delays = []
    for _ in range(6):
        world.advance(seconds=world.last["resyncAfterSeconds"])
        world.sync()
        assert world.status["targets"][0]["errorSince"] == since
        delays.append(world.last["resyncAfterSeconds"])
    assert delays == [10, 20, 40, 80, 160, 300]
    fake_kube.clear_faults()
    world.advance(seconds=300)
    world.sync()
    assert field_value(fake_kube, "OCIRepository", "manifests", "spec", "ref", "tag") == "1.1.0"
    world.sync()
    assert world.status["targets"][0]["state"] == "Applying"
    world.flux_reconciles()
    world.sync()
    assert world.status["targets"][0]["state"] == "Synced"
    assert "errorSince" not in world.status["targets"][0]
    assert world.condition("Ready") == ("True", "Deployed")


def test_acknowledged_annotations_stay_and_the_rollout_is_never_written(fake_kube):
    # docs/operations.md (revised): the controller never removes an annotation; the acknowledgement
    # in status is the record, so a value kept in Git does not act again.
    world = cluster_world(fake_kube, spec={"releasesImagePolicy": {"name": "app"}, "bakeTime": "1h"})
    world.release("1.0.0")
    world.publish()
    world.sync()
    world.release("1.1.0")
    world.sync()  # known, but waiting for the bake of 1.0.0
    rollout = fake_kube.objects[path_for("Rollout", NS, "app")]
    rollout["metadata"]["annotations"] = {"rollout.kuberik.com/force-deploy": "1.1.0", "team": "shop"}
    fake_kube.requests.clear()
    world.once()
    assert world.deployed == "1.1.0"
    for _ in range(3):
        world.sync()
    assert not [r for r in fake_kube.requests if "/rollouts/" in r.path], "the Rollout is never written"
    assert world.annotations == {"rollout.kuberik.com/force-deploy": "1.1.0", "team": "shop"}
    assert world.status["acknowledgedAnnotations"] == {"rollout.kuberik.com/force-deploy": "1.1.0"}
    assert [h["version"]["tag"] for h in world.history] == ["1.1.0", "1.0.0"]


def test_dry_run_sends_nothing(fake_kube):
    world = cluster_world(fake_kube, env={"ROLLOUT_ACTUATION": "dry-run"})
    world.ocirepo("manifests", tag="0.9.0")
    world.release("1.0.0")
    world.publish()
    fake_kube.requests.clear()
    world.sync()
    world.sync()
    assert fake_kube.requests == []
    assert world.status["targets"][0]["state"] == "Pending"
    assert world.status["targets"][0]["message"] == "dry-run"


@pytest.mark.parametrize("override", ["semver", "digest"])
def test_oci_repository_pinned_by_semver_or_digest_is_blocked(fake_kube, override):
    world = cluster_world(fake_kube)
    world.ocirepo("manifests", tag="0.9.0", **{override: ">=1.0.0" if override == "semver" else "sha256:abc"})
    world.release("1.0.0")
    world.publish()
    world.sync()
    world.sync()
    assert fake_kube.patches() == []
    assert world.status["targets"][0]["state"] == "Blocked"
    assert world.condition("Ready") == ("False", "TargetsFailing")


def test_history_survives_every_actuation_failure(fake_kube):
    world = cluster_world(fake_kube)
    world.ocirepo("manifests", tag="1.0.0")
    world.release("1.0.0")
    world.publish()
    world.sync()
    failed_test = {
        "causes": [
            {
                "reason": "UnexpectedServerResponse",
                "message": "testing value /spec/ref/tag failed: test failed",
            }
        ]
    }
    cases = [(401, None), (404, None), (409, None), (422, failed_test), (422, None), (429, None), (500, None)]
    for i, (code, details) in enumerate(cases):
        fake_kube.clear_faults()
        fake_kube.fail(code, path=path_for("OCIRepository", NS, "manifests"), details=details)
        world.release(f"1.{i + 1}.0")
        # the previous version never reached Flux, so it is still Deploying (docs rollout.md, revised):
        # automation waits; an operator forces the next one
        world.annotations = {"rollout.kuberik.com/force-deploy": f"1.{i + 1}.0"}
        fake_kube.put(world.rollout())
        world.once()  # the decision is recorded first
        world.sync()  # then the patch fails, the same way on the replay
        conflict = code == 409 or details is not None  # someone else changed it: re-plan
        assert world.status["targets"][0]["state"] == ("Pending" if conflict else "Error"), (code, details)
        world.advance(minutes=1)
    assert [h["version"]["tag"] for h in world.history][:3] == ["1.7.0", "1.6.0", "1.5.0"]
    assert len(world.history) == 8
    assert [h["id"] for h in world.history] == [8, 7, 6, 5, 4, 3, 2, 1]
