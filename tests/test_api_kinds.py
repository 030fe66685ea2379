"""The kinds registry agrees with the CRDs that define those kinds (ours and Flux's)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hooks.api import kinds

REPO = Path(__file__).resolve().parents[1]
CRD_FILES = [*sorted((REPO / "crds").glob("*.yaml")), *sorted((REPO / "tests/schemas/flux").glob("*.yaml"))]


def _crds() -> dict[str, dict]:
    found = {}
    for path in CRD_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                found[doc["spec"]["names"]["kind"]] = doc
    return found


CRDS = _crds()
CUSTOM = [k for k in kinds.KINDS.values() if k.group not in ("", "events.k8s.io")]


@pytest.mark.parametrize("kind", CUSTOM, ids=lambda k: k.kind)
def test_registry_matches_the_crd(kind: kinds.Kind) -> None:
    crd = CRDS[kind.kind]["spec"]
    assert crd["group"] == kind.group
    assert crd["names"]["plural"] == kind.plural
    assert (crd["scope"] == "Namespaced") is kind.namespaced
    served = [v["name"] for v in crd["versions"] if v.get("served")]
    assert kind.version in served, f"{kind.kind} {kind.version} is not served by its CRD ({served})"


@pytest.mark.parametrize(
    ("kind", "namespace", "name", "path"),
    [
        (
            kinds.OCI_REPOSITORY,
            "apps",
            "web",
            "/apis/source.toolkit.fluxcd.io/v1/namespaces/apps/ocirepositories/web",
        ),
        (
            kinds.KUSTOMIZATION,
            "apps",
            None,
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/apps/kustomizations",
        ),
        (kinds.EVENT, "apps", None, "/apis/events.k8s.io/v1/namespaces/apps/events"),
        (kinds.NAMESPACE, None, "apps", "/api/v1/namespaces/apps"),
        (kinds.CLUSTER_ROLLOUT_SCHEDULE, None, "f", "/apis/kuberik.com/v1alpha1/clusterrolloutschedules/f"),
    ],
)
def test_rest_paths(kind: kinds.Kind, namespace: str | None, name: str | None, path: str) -> None:
    assert kind.path(namespace, name) == path


def test_api_versions_as_objects_spell_them() -> None:
    assert kinds.NAMESPACE.api_version == "v1"
    assert kinds.ROLLOUT.api_version == "kuberik.com/v1alpha1"
    assert kinds.IMAGE_POLICY.api_version == "image.toolkit.fluxcd.io/v1"


def test_namespaced_kind_needs_a_namespace() -> None:
    with pytest.raises(ValueError, match="namespaced"):
        kinds.ROLLOUT.path(None, "x")


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="Rollout"):
        kinds.by_kind("Deployment")
