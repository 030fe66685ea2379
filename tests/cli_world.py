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

import yaml

from hooks.cli import main as cli
from hooks.cli import plan
from hooks.k8s import parse_time as _parse_time
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


# --- the examples with the statuses Flux and the hooks write ------------------------------------

EXAMPLES = Path(__file__).parent.parent / "examples"
IMAGE = "ghcr.io/stefanprodan/podinfo"
TUESDAY_MORNING = "2026-12-01T09:30:00Z"  # 10:30 in Amsterdam: business hours, before the freeze
SATURDAY = "2026-12-05T09:30:00Z"
IN_THE_FREEZE = "2026-12-22T09:30:00Z"  # a Tuesday, inside the holiday freeze


def parse_time(text: str) -> datetime:
    moment = _parse_time(text)
    assert moment is not None
    return moment


def _examples() -> list[dict]:
    """Every object of examples/ (not the kustomize.config.k8s.io file that lists them)."""
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs += [
            d
            for d in yaml.safe_load_all(path.read_text())
            if d and not d["apiVersion"].startswith("kustomize.config")
        ]
    return docs


def _ready(obj: dict, revision: str, at: str) -> None:
    obj["metadata"]["generation"] = 1
    ready = {"type": "Ready", "status": "True", "observedGeneration": 1, "lastTransitionTime": at}
    if obj["kind"] == "OCIRepository":
        ready.update(reason="Succeeded", message=f"stored artifact for digest '{revision}@{DIGEST}'")
        obj["status"] = {
            "observedGeneration": 1,
            "conditions": [ready],
            "artifact": {
                "revision": f"{revision}@{DIGEST}",
                "digest": DIGEST,
                "path": f"ocirepository/podinfo/podinfo/{DIGEST[7:]}.tar.gz",
                "url": "http://source-controller.flux-system.svc.cluster.local./ocirepository/podinfo/x.tar.gz",
                "lastUpdateTime": at,
            },
        }
    else:
        ready.update(reason="ReconciliationSucceeded", message=f"Applied revision: {revision}@{DIGEST}")
        obj["status"] = {
            "observedGeneration": 1,
            "conditions": [ready],
            "lastAppliedRevision": f"{revision}@{DIGEST}",
            "lastAttemptedRevision": f"{revision}@{DIGEST}",
        }


def world(tmp: Path, *, announced: str, rollout_status: dict | None, healthy_since: str) -> Path:
    """The examples as `kubectl get -o yaml` would show them, written to `tmp`."""
    docs = _examples()
    at = "2026-11-30T08:55:00Z"  # when Flux last reconciled them
    for obj in docs:
        kind = obj["kind"]
        if kind == "ImagePolicy":
            obj["metadata"]["generation"] = 1
            obj["status"] = {
                "observedGeneration": 1,
                "latestRef": {"name": "ghcr.io/stefanprodan/podinfo", "tag": announced, "digest": DIGEST},
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Succeeded",
                        "message": f"Latest image tag for {IMAGE} resolved to {announced}",
                        "observedGeneration": 1,
                        "lastTransitionTime": at,
                    }
                ],
            }
        elif kind in ("OCIRepository", "Kustomization"):
            _ready(obj, "6.7.0", at)
        elif kind == "HealthCheck":
            obj["status"] = {"status": "Healthy", "message": "Kustomization podinfo/podinfo is ready"}
            obj["status"].update(lastChangeTime=healthy_since, observedGeneration=1)
        elif kind == "Rollout" and rollout_status is not None:
            obj["metadata"]["generation"] = 1
            obj["status"] = copy.deepcopy(rollout_status)
    # One file as a `kind: List`, the way `kubectl get -o yaml` prints several objects.
    (tmp / "cluster.yaml").write_text(
        yaml.safe_dump(
            {"apiVersion": "v1", "kind": "List", "items": docs, "metadata": {"resourceVersion": ""}}
        )
    )
    return tmp


def baked_status(tmp_path: Path) -> dict:
    """The Rollout status after 6.7.0 was deployed on Monday and baked: two plans, persisted."""
    first = world(tmp_path, announced="6.7.0", rollout_status=None, healthy_since="2026-11-30T09:00:00Z")
    deployed = plan.run(plan.load([str(first)]), None, parse_time("2026-11-30T09:00:00Z"))
    status = deployed.rollout["status"]
    assert status["history"][0]["version"]["tag"] == "6.7.0"
    again = world(tmp_path, announced="6.7.0", rollout_status=status, healthy_since="2026-11-30T09:05:00Z")
    settled = plan.run(plan.load([str(again)]), None, parse_time("2026-11-30T10:00:00Z"))
    assert settled.rollout["status"]["history"][0]["bakeStatus"] == "Succeeded"
    return settled.rollout["status"]
