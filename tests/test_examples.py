"""examples/: every object is valid, the objects fit together, and kustomize builds them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hooks.k8s import annotations_of, labels_of, selector_matches
from tests.crd_schema import object_errors

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMESPACE = "podinfo"


def _manifest_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.yaml") if p.name != "kustomization.yaml")


def _objects() -> list[dict]:
    return [doc for path in _manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def _one(kind: str, name: str | None = None) -> dict:
    found = [o for o in _objects() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _id(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _ids(objects: list[dict]) -> list[str]:
    return [_id(o) for o in objects]


@pytest.mark.parametrize("obj", [o for o in _objects() if o["apiVersion"] != "v1"], ids=_id)
def test_example_matches_its_crd(obj: dict) -> None:
    assert object_errors(obj) == []


def test_every_object_has_a_schema_except_the_namespace() -> None:
    core = [o for o in _objects() if o["apiVersion"] == "v1"]
    assert _ids(core) == [f"Namespace/{NAMESPACE}"]


def test_the_example_is_complete() -> None:
    kinds = sorted(o["kind"] for o in _objects())
    assert kinds == sorted(
        [
            "Namespace",
            "ImageRepository",
            "ImagePolicy",
            "OCIRepository",
            "Kustomization",
            "Kustomization",
            "Rollout",
            "RolloutGate",
            "HealthCheck",
            "RolloutSchedule",
            "ClusterRolloutSchedule",
        ]
    )
    for obj in _objects():
        namespaced = obj["kind"] not in ("Namespace", "ClusterRolloutSchedule")
        assert obj["metadata"].get("namespace") == (NAMESPACE if namespaced else None), obj["kind"]


def test_api_versions() -> None:
    versions = {o["kind"]: o["apiVersion"] for o in _objects()}
    assert versions["ImageRepository"] == versions["ImagePolicy"] == "image.toolkit.fluxcd.io/v1"
    assert versions["OCIRepository"] == "source.toolkit.fluxcd.io/v1"
    assert versions["Kustomization"] == "kustomize.toolkit.fluxcd.io/v1"
    for kind in ("Rollout", "RolloutGate", "HealthCheck", "RolloutSchedule", "ClusterRolloutSchedule"):
        assert versions[kind] == "kuberik.com/v1alpha1"


def test_release_discovery_chain() -> None:
    rollout = _one("Rollout")
    policy = _one("ImagePolicy", rollout["spec"]["releasesImagePolicy"]["name"])
    assert "semver" in policy["spec"]["policy"]
    _one("ImageRepository", policy["spec"]["imageRepositoryRef"]["name"])


def test_rollout_has_bake_configuration() -> None:
    spec = _one("Rollout")["spec"]
    assert {"bakeTime", "deployTimeout", "healthCheckSelector"} <= set(spec)


def test_targets_name_the_rollout_in_both_annotation_formats() -> None:
    rollout = _one("Rollout")["metadata"]["name"]
    ocirepo = _one("OCIRepository")
    assert annotations_of(ocirepo)["rollout.kuberik.com/rollout"] == rollout
    assert "tag" in ocirepo["spec"]["ref"]
    assert not {"semver", "digest"} & set(ocirepo["spec"]["ref"]), "the Rollout could not drive the tag"

    original, newer = [], []
    for kustomization in (o for o in _objects() if o["kind"] == "Kustomization"):
        notes = annotations_of(kustomization)
        substitute = kustomization["spec"]["postBuild"]["substitute"]
        assert kustomization["spec"]["wait"] is True
        assert kustomization["spec"]["sourceRef"] == {
            "kind": "OCIRepository",
            "name": ocirepo["metadata"]["name"],
        }
        if "rollout.kuberik.com/rollout" in notes:
            assert notes["rollout.kuberik.com/rollout"] == rollout
            assert notes["rollout.kuberik.com/substitute"] in substitute
            original.append(kustomization)
        variables = [
            key.removeprefix("rollout.kuberik.com/substitute.").removesuffix(".from")
            for key, value in notes.items()
            if key.startswith("rollout.kuberik.com/substitute.")
            and key.endswith(".from")
            and value == rollout
        ]
        if variables:
            assert set(variables) <= set(substitute)
            newer.append(kustomization)
    assert len(original) == 1
    assert len(newer) == 1


def test_health_check_watches_a_kustomization_the_rollout_selects() -> None:
    check = _one("HealthCheck")
    assert check["spec"]["class"] == "kustomization"
    _one("Kustomization", annotations_of(check)["healthcheck.kuberik.com/kustomization"])
    selector = _one("Rollout")["spec"]["healthCheckSelector"]["selector"]
    assert selector_matches(selector, labels_of(check))


def test_gate_and_schedules_apply_to_the_rollout() -> None:
    rollout = _one("Rollout")
    assert _one("RolloutGate")["spec"]["rolloutRef"]["name"] == rollout["metadata"]["name"]

    schedule = _one("RolloutSchedule")
    assert schedule["spec"]["action"] == "Allow"
    assert selector_matches(schedule["spec"]["rolloutSelector"], labels_of(rollout))

    freeze = _one("ClusterRolloutSchedule")
    assert freeze["spec"]["action"] == "Deny"
    assert selector_matches(freeze["spec"]["rolloutSelector"], labels_of(rollout))
    assert selector_matches(freeze["spec"]["namespaceSelector"], labels_of(_one("Namespace")))


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((EXAMPLES / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == [p.name for p in _manifest_files()]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_builds() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(EXAMPLES)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert sorted(_ids(built)) == sorted(_ids(_objects()))
