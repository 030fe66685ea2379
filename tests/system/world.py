"""The starting world of the system test: the repository's example, as a cluster would hold it.

The objects come from examples/ (the same files `hack/e2e.sh` applies to a kind cluster), with
the two changes a test needs: seconds instead of minutes for the bake, and no schedules (their
business-hours window would make the outcome depend on the wall clock; schedules have their
own hook tests). Flux then reconciles them, so every Flux object starts with the status Flux
would have written, never without one.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.system.cluster import Cluster
from tests.system.flux import Flux

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
NAMESPACE = "podinfo"
ROLLOUT = "podinfo"
#: The releases the scenario walks through, shared with hack/e2e.sh.
RELEASES = [
    line.strip()
    for line in (REPO / "hack" / "e2e-releases").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
FIRST_TAG = RELEASES[0]
BAKE_SECONDS = 2
#: Kinds no controller of the system test serves.
LEFT_OUT = {"RolloutSchedule", "ClusterRolloutSchedule"}


def example_objects() -> list[dict]:
    index = yaml.safe_load((EXAMPLES / "kustomization.yaml").read_text())
    objects = []
    for resource in index["resources"]:
        for obj in yaml.safe_load_all((EXAMPLES / resource).read_text()):
            if obj and obj["kind"] not in LEFT_OUT:
                objects.append(obj)
    return objects


def for_test(obj: dict) -> dict:
    """The example's Rollout with a bake of seconds (the e2e script applies the same patch)."""
    if obj["kind"] == "Rollout":
        obj["spec"]["bakeTime"] = f"{BAKE_SECONDS}s"
        obj["spec"]["deployTimeout"] = "1m"
    return obj


def build(cluster: Cluster, flux: Flux) -> None:
    for obj in example_objects():
        cluster.put(for_test(obj))
    flux.reflector.publish(NAMESPACE, "podinfo", FIRST_TAG)
    flux.settle()
