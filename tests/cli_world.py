"""Shared builders for the CLI tests: a Rollout world synced by the real hook, served by the fake API.

Flux objects carry the status Flux writes (observedGeneration, Ready with its own
observedGeneration, artifact and applied revisions `<tag>@sha256:...`), never none.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from datetime import datetime

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
