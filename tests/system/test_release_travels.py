"""System test: releases travel end to end over HTTP, the way they would on a cluster.

The real service runs under gunicorn on 127.0.0.1; a Metacontroller emulator drives it from
the controller objects in metacontroller/; a fake API server holds the example's objects and
takes the hooks' JSON Patches; simulated Flux controllers reconcile what is patched.

    ImagePolicy latestRef -> Rollout sync (discovery, decision, write-ahead status) -> JSON Patch
    -> source-controller artifact -> kustomize-controller apply -> HealthCheck Healthy -> bake
    -> Succeeded -> the next release

The assertions are on outcomes only (history, Flux objects, HealthCheck), never on in-between
messages, so the engine may change how it gets there. Every wait is bounded.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hooks.k8s import parse_time
from tests.crd_schema import object_errors
from tests.fakekube import FAKE_TOKEN, write_kubeconfig
from tests.system import world
from tests.system.cluster import Cluster
from tests.system.flux import Flux, condition, ready_for_generation, summary
from tests.system.metacontroller import Metacontroller, load_controllers
from tests.system.service import REPO, Service

HOOK_TOKEN = "system-test-hook-token"
CONTROLLERS = {"rollouts.kuberik.com", "healthchecks.kuberik.com"}
#: Bound of one release's journey (Flux takes about 1 s, the bake 2 s; a loaded CI machine more).
RELEASE_SECONDS = 25
NS = world.NAMESPACE


@dataclass
class System:
    cluster: Cluster
    flux: Flux
    metacontroller: Metacontroller
    service: Service

    def rollout(self) -> dict:
        obj = self.cluster.get("Rollout", NS, world.ROLLOUT)
        assert obj is not None
        return obj

    def history(self) -> list[dict]:
        return list(self.rollout().get("status", {}).get("history") or [])

    def run_until(self, done: Callable[[], bool], seconds: float, what: str) -> None:
        """Drive Metacontroller until `done()`; fail with the whole picture after `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.metacontroller.run_once()
            assert not self.flux.errors, self.flux.errors
            if done():
                return
            time.sleep(0.05)
        raise AssertionError(f"not reached within {seconds} s: {what}\n{self.picture()}")

    def picture(self) -> str:
        """The state a failure message shows: Rollout status, Flux objects, HealthCheck, errors."""
        parts = {
            "rollout.status": self.rollout().get("status"),
            "healthcheck.status": (self.cluster.get("HealthCheck", NS, "podinfo") or {}).get("status"),
            "ocirepository": summary(self.cluster.get("OCIRepository", NS, "podinfo") or {"metadata": {}}),
            "kustomizations": {
                ks["metadata"]["name"]: summary(ks) for ks in self.cluster.list("Kustomization", NS)
            },
            "hook errors": [c.__dict__ for c in self.metacontroller.errors()][-5:],
            "patches": [(r.path, r.body) for r in self.cluster.patches()][-6:],
        }
        return json.dumps(parts, indent=1, default=str)[-12000:]

    def deployed(self, tag: str) -> bool:
        """history[0] is `tag`, Succeeded."""
        history = self.history()
        return (
            bool(history)
            and history[0]["version"]["tag"] == tag
            and history[0].get("bakeStatus") == "Succeeded"
        )


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    cluster = Cluster(token=FAKE_TOKEN).start()
    flux = Flux(cluster)
    service: Service | None = None
    try:
        world.build(cluster, flux)
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", cluster.url)
        service = Service.start(tmp_path, kubeconfig=kubeconfig, token=HOOK_TOKEN)
        controllers = load_controllers(REPO / "metacontroller", CONTROLLERS)
        metacontroller = Metacontroller(cluster, service.url, HOOK_TOKEN, controllers)
        flux.start()
        yield System(cluster, flux, metacontroller, service)
    finally:
        flux.stop()
        if service is not None:
            code = service.stop()
            assert code == 0, f"gunicorn exited with {code}:\n{service.log.read_text()[-4000:]}"
        cluster.stop()


def assert_flux_carries(system: System, tag: str) -> None:
    """Every driven field holds `tag`, and Flux reports it applied, Ready for its generation."""
    repo = system.cluster.get("OCIRepository", NS, "podinfo")
    assert repo is not None
    assert repo["spec"]["ref"]["tag"] == tag
    assert ready_for_generation(repo), summary(repo)
    assert repo["status"]["artifact"]["revision"].startswith(f"{tag}@sha256:")
    substitutes = {"podinfo": ["VERSION"], "podinfo-canary": ["PODINFO_VERSION", "IMAGE_TAG"]}
    for name, variables in substitutes.items():
        ks = system.cluster.get("Kustomization", NS, name)
        assert ks is not None
        for variable in variables:
            assert ks["spec"]["postBuild"]["substitute"][variable] == tag, (name, variable)
        assert ready_for_generation(ks), summary(ks)
        assert ks["status"]["lastAppliedRevision"] == repo["status"]["artifact"]["revision"]


def assert_baked_after_flux_applied(system: System, entry: dict) -> None:
    """Guiding rule: the bake of a version starts only once Flux has applied it everywhere."""
    tag = entry["version"]["tag"]
    applied = {}
    for _namespace, name, revision, substitutes, when in system.flux.kustomize.applied:
        if revision.startswith(f"{tag}@") and tag in substitutes.values() and name not in applied:
            applied[name] = when
    assert set(applied) == {"podinfo", "podinfo-canary"}, f"Flux never applied {tag} to both"
    bake_start = parse_time(entry.get("bakeStartTime"))
    assert bake_start is not None, entry
    last_applied = datetime.fromtimestamp(max(applied.values()), UTC).replace(microsecond=0)
    assert bake_start >= last_applied, (entry, last_applied)


def test_releases_travel_from_image_policy_to_succeeded_bake(system: System) -> None:
    started = time.monotonic()
    # The example's first version, already running: the Rollout takes it over and bakes it.
    system.run_until(
        lambda: system.deployed(world.FIRST_TAG), RELEASE_SECONDS, f"{world.FIRST_TAG} Succeeded"
    )
    assert_flux_carries(system, world.FIRST_TAG)

    for tag in world.RELEASES[1:]:
        system.flux.reflector.publish(NS, "podinfo", tag)  # image-reflector-controller found a new tag
        system.run_until(functools.partial(system.deployed, tag), RELEASE_SECONDS, f"{tag} Succeeded")
        assert_flux_carries(system, tag)

    history = system.history()
    assert [e["version"]["tag"] for e in history] == world.RELEASES[::-1]
    assert all(e["bakeStatus"] == "Succeeded" for e in history), history
    for entry in history[:-1]:
        assert_baked_after_flux_applied(system, entry)
        start, end = parse_time(entry["bakeStartTime"]), parse_time(entry["bakeEndTime"])
        assert start is not None and end is not None, entry
        assert (end - start).total_seconds() >= world.BAKE_SECONDS, entry
    ids = [e["id"] for e in history]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert [v["tag"] for v in system.rollout()["status"]["availableReleases"]] == world.RELEASES

    check = system.cluster.get("HealthCheck", NS, "podinfo")
    assert check is not None and check["status"]["status"] == "Healthy"
    ready = condition(system.rollout(), "Ready")
    assert ready is not None and ready["status"] == "True", ready

    # Flux never went backwards, and pulled each version once: tags in release order.
    assert [tag for _, _, tag in system.flux.source.stored] == world.RELEASES
    # Only guarded JSON Patches of Flux objects in the Rollout's namespace; the Rollout is never written.
    patches = system.cluster.patches()
    assert patches, "the hook never patched a Flux object"
    for request in patches:
        assert request.path.startswith(
            (
                f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{NS}/",
                f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{NS}/",
            )
        ), request.path
        assert request.content_type == "application/json-patch+json"
        assert request.body[0]["op"] == "test", request.body
    # Every object, as the hooks and the simulated Flux left it, matches its CRD schema.
    for kind in ("Rollout", "HealthCheck", "OCIRepository", "Kustomization", "ImagePolicy"):
        for obj in system.cluster.list(kind):
            assert object_errors(obj) == [], (kind, object_errors(obj))
    # The chain ran over HTTP, with stale informer copies along the way, and no hook ever failed.
    assert not system.metacontroller.errors(), system.metacontroller.errors()
    assert any(call.stale for call in system.metacontroller.calls), "no stale copy was ever sent"
    assert time.monotonic() - started < 3 * RELEASE_SECONDS


def test_no_bake_succeeds_while_flux_does_not_apply(system: System) -> None:
    """Break one link on purpose: source-controller stops. The release must not go through."""
    system.run_until(
        lambda: system.deployed(world.FIRST_TAG), RELEASE_SECONDS, f"{world.FIRST_TAG} Succeeded"
    )
    system.flux.source.paused = True
    system.flux.reflector.publish(NS, "podinfo", world.RELEASES[1])

    def patched() -> bool:  # recorded as the deployment, then (write-ahead) patched into Flux
        repo = system.cluster.get("OCIRepository", NS, "podinfo") or {}
        history = system.history()
        return (
            bool(history)
            and history[0]["version"]["tag"] == world.RELEASES[1]
            and repo["spec"]["ref"]["tag"] == world.RELEASES[1]
        )

    system.run_until(patched, RELEASE_SECONDS, f"{world.RELEASES[1]} recorded as the deployment and patched")
    # Far longer than the bake: the entry must stay unbaked while Flux has not applied 6.7.1.
    deadline = time.monotonic() + 3 * world.BAKE_SECONDS + 1
    while time.monotonic() < deadline:
        system.metacontroller.run_once()
        entry = system.history()[0]
        assert entry.get("bakeStatus") != "Succeeded", entry
        assert "bakeStartTime" not in entry or entry.get("bakeStatus") != "InProgress", entry
        time.sleep(0.05)
    # Flux comes back: the same release now goes through.
    system.flux.source.paused = False
    system.run_until(
        lambda: system.deployed(world.RELEASES[1]),
        RELEASE_SECONDS,
        f"{world.RELEASES[1]} Succeeded once Flux applied it",
    )
    assert_flux_carries(system, world.RELEASES[1])
    assert not system.metacontroller.errors(), system.metacontroller.errors()
