"""The Flux fixtures (tests/flux_objects.py) fit the real Flux CRD schemas, status included."""

from __future__ import annotations

import pytest

from tests import flux_objects as flux
from tests.crd_schema import object_errors

REPO = flux.ocirepository("manifests", "1.0.0", generation=2)
APP = flux.kustomization("app", substitute={"APP_VERSION": "1.0.0"}, depends_on=["infra"])
PULL = "failed to determine artifact digest: MANIFEST_UNKNOWN"

SHAPES = {
    "oci never reconciled": REPO,
    "oci ready": flux.ready(REPO, "1.0.0"),
    "oci after the patch": flux.patched(flux.ready(REPO, "1.0.0"), "spec", "ref", "tag", "1.1.0"),
    "oci reconciling": flux.reconciling(flux.ready(REPO, "1.0.0")),
    "oci failed": flux.failed(flux.ready(REPO, "1.0.0"), "OCIArtifactPullFailed", PULL),
    "oci suspended": flux.suspended(flux.ready(REPO, "1.0.0")),
    "ks never reconciled": APP,
    "ks ready": flux.ready(APP, "1.0.0"),
    "ks reconciling": flux.reconciling(flux.attempted(flux.ready(APP, "1.0.0"), "1.1.0")),
    "ks failed": flux.failed(
        flux.ready(APP, "1.0.0"), "HealthCheckFailed", "timeout waiting for: [Deployment/shop/web]"
    ),
    "ks stalled": flux.stalled(APP, "InvalidCELExpression", "invalid CEL expression"),
    "ks dependency not ready": flux.dependency_not_ready(APP, "infra"),
    "ks suspended": flux.suspended(flux.ready(APP, "1.0.0")),
    "ks deleting": flux.deleting(flux.ready(APP, "1.0.0")),
    "image policy": flux.image_policy("1.1.0"),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_fits_the_flux_crd(name):
    assert object_errors(SHAPES[name]) == []


def test_transitions_follow_flux():
    ready = flux.ready(REPO, "1.0.0")
    assert ready["status"]["observedGeneration"] == 2
    assert ready["status"]["artifact"]["revision"] == flux.revision("1.0.0")
    assert flux.revision("1.0.0").startswith("1.0.0@sha256:") and len(flux.revision("1.0.0")) == 6 + 7 + 64
    patched = flux.patched(ready, "spec", "ref", "tag", "1.1.0")
    assert (patched["metadata"]["generation"], patched["status"]["observedGeneration"]) == (3, 2)
    failed = flux.failed(patched, "OCIArtifactPullFailed", PULL)
    assert failed["status"]["observedGeneration"] == 2, "a failure does not advance observedGeneration"
    conditions = {c["type"]: c for c in failed["status"]["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Ready"]["observedGeneration"]) == ("False", 3)
    assert conditions["Reconciling"]["reason"] == "ProgressingWithRetry"
    assert flux.ready(failed, "1.1.0")["status"]["observedGeneration"] == 3
    assert "Reconciling" not in {c["type"] for c in flux.ready(failed, "1.1.0")["status"]["conditions"]}
    assert ready == flux.ready(REPO, "1.0.0"), "transitions return new objects"
