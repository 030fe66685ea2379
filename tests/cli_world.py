"""Shared builders for the CLI tests: a Rollout world synced by the real hook, served by the fake API.

Flux objects carry the status Flux writes (observedGeneration, Ready with its own
observedGeneration, artifact and applied revisions `<tag>@sha256:...`), never none.
"""

from __future__ import annotations

import copy
import io
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from hooks.cli import main as cli
from tests.fakekube import FakeKube
from tests.rollout_world import NS, World, ts

DIGEST = "sha256:" + "ab" * 32


def flux_ready(obj: dict, revision: str | None, now: datetime) -> dict:
    """The status source-/kustomize-controller write after a successful reconcile of `revision`."""
    obj = copy.deepcopy(obj)
    generation = obj["metadata"].setdefault("generation", 1)
    ready = {
        "type": "Ready",
        "status": "True",
        "observedGeneration": generation,
        "lastTransitionTime": ts(now),
    }
    status: dict = {"observedGeneration": generation, "conditions": [ready]}
    if obj["kind"] == "OCIRepository":
        ready.update(reason="Succeeded", message=f"stored artifact for digest '{revision}@{DIGEST}'")
        status["artifact"] = {
            "revision": f"{revision}@{DIGEST}",
            "digest": DIGEST,
            "path": f"ocirepository/{NS}/{obj['metadata']['name']}/{DIGEST[7:]}.tar.gz",
            "url": f"http://source-controller.flux-system.svc.cluster.local./ocirepository/{NS}/x.tar.gz",
            "lastUpdateTime": ts(now),
        }
    else:
        ready.update(reason="ReconciliationSucceeded", message=f"Applied revision: {revision}@{DIGEST}")
        status["lastAppliedRevision"] = f"{revision}@{DIGEST}"
        status["lastAttemptedRevision"] = f"{revision}@{DIGEST}"
    obj["status"] = status
    return obj


def policy_status(world: World, tag: str) -> None:
    """The ImagePolicy as image-reflector-controller reports a resolved latest tag."""
    world.release(tag, DIGEST)
    assert world.policy is not None
    world.policy["metadata"]["generation"] = 1
    world.policy["status"].update(
        observedGeneration=1,
        conditions=[
            {
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": f"Latest image tag for ghcr.io/acme/app resolved to {tag}",
                "observedGeneration": 1,
                "lastTransitionTime": ts(world.now),
            }
        ],
    )


def serve(fake: FakeKube, world: World, extra: Sequence[dict] = ()) -> None:
    """Put every object of the world (the Rollout with its persisted status) into the fake API."""
    fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"env": "prod"}}})
    fake.put(world.rollout())
    for obj in [
        *([world.policy] if world.policy else []),
        *world.gates.values(),
        *world.checks.values(),
        *world.ocirepos.values(),
        *world.kustomizations.values(),
        *extra,
    ]:
        fake.put(obj)


def run(argv: Sequence[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


GOLDEN = Path(__file__).parent / "cli_golden"


def golden(name: str, text: str) -> None:
    """Compare with tests/cli_golden/<name>; UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path} (run with UPDATE_GOLDEN=1 once, then review it)"
    assert text == path.read_text()


def baking_world() -> World:
    """1.0.0 deployed and baking (InProgress, 10m bake), 1.1.0 announced, a manual gate closed."""
    world = World(
        spec={
            "releasesImagePolicy": {"name": "app"},
            "bakeTime": "10m",
            "deployTimeout": "15m",
            "healthCheckSelector": {"matchLabels": {"app": "app"}},
        }
    )
    policy_status(world, "1.0.0")
    world.ocirepo("manifests", "1.0.0")
    world.ocirepos["manifests"] = flux_ready(world.ocirepos["manifests"], "1.0.0", world.now)
    world.check("web", "Healthy", changed=world.now)
    world.sync()
    world.advance(minutes=1)
    policy_status(world, "1.1.0")
    world.gate("freeze", passing=False)
    world.sync()
    return world


def schedule_gate(world: World, passing: bool, until: str) -> dict:
    """A RolloutGate as the schedule hook writes it (labels, annotations with the next transition)."""
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "RolloutGate",
        "metadata": {
            "name": "office-hours-app-1a2b3c4d",
            "namespace": NS,
            "labels": {"rollout.kuberik.com/schedule": "office-hours"},
            "annotations": {
                "rollout.kuberik.com/schedule-kind": "RolloutSchedule",
                "rollout.kuberik.com/schedule-name": "office-hours",
                "rollout.kuberik.com/next-transition": until,
            },
        },
        "spec": {"rolloutRef": {"name": world.name}, "passing": passing},
    }
