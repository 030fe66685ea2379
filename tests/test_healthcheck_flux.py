"""HealthCheck `class: kustomization` (docs/spec/v1alpha1/healthcheck.md) against Kustomizations shaped as
kustomize-controller writes them (tests/flux_objects.py), through /healthcheck/sync.

Every sync is checked for the CRD status schema and the fixed point.
"""

from __future__ import annotations

import jsonschema
import pytest

from hooks.app import create_app
from tests import flux_objects as flux
from tests.flux_objects import NS, at, ts
from tests.healthcheck_objects import healthcheck, request, rollout, status_schema, with_status

SCHEMA = status_schema()
NOW = at(30)
DEPLOYED_AT = at(20)  # the selecting Rollout deployed 1.1.0 ten minutes before NOW
REF = f"Kustomization {NS}/app"


@pytest.fixture
def client():
    return create_app(clock=lambda: NOW, actuator=object()).test_client()


def sync(client, body: dict) -> dict:
    response = client.post("/healthcheck/sync", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    status = response.get_json()["status"]
    assert status is not None
    jsonschema.validate(status, SCHEMA)
    again = client.post("/healthcheck/sync", json=with_status(body, status)).get_json()["status"]
    assert again in (None, status), "status is not a fixed point"
    # the hook writes observedGeneration (docs/spec/v1alpha1/healthcheck.md); the tests below compare the rest
    status = dict(status)
    parent = body.get("parent", body.get("object"))
    assert status.pop("observedGeneration") == parent["metadata"]["generation"]
    return status


def web(tag: str = "1.1.0", when=DEPLOYED_AT) -> dict:
    """The Rollout `web` selecting the check (labels app=web), with `tag` deployed at `when`."""
    return rollout("web", NS, tag=tag, timestamp=ts(when))


def check(status: dict | None = None) -> dict:
    """A check of the Kustomization `app`, already past the reset for DEPLOYED_AT."""
    if status is None:
        status = {
            "status": "Pending",
            "message": "Health check reset due to new deployment",
            "lastChangeTime": ts(DEPLOYED_AT),
        }
    return healthcheck(namespace=NS, target="app", status=status)


def app(generation: int = 5) -> dict:
    """The Kustomization `app`, not driven by `web` (so only its own health counts)."""
    return flux.kustomization("app", generation=generation, source="platform")


def assess(client, ks: dict | None, *related: dict, status: dict | None = None) -> dict:
    objects = [o for o in (web(), ks, *related) if o is not None]
    return sync(client, request(check(status), *objects))


# --- what Flux reports --------------------------------------------------------------------------


def test_missing_is_unhealthy(client):
    status = assess(client, None)
    assert (status["status"], status["message"]) == ("Unhealthy", f"{REF} not found")


def test_being_deleted_is_pending(client):
    status = assess(client, flux.deleting(flux.ready(app(), "1.1.0", at(10))))
    assert (status["status"], status["message"]) == ("Pending", f"{REF} is being deleted")


def test_suspended_is_pending_although_ready(client):
    ks = flux.suspended(flux.ready(app(), "1.1.0", at(10)))
    assert ks["status"]["observedGeneration"] == ks["metadata"]["generation"], "Flux still records it"
    status = assess(client, ks)
    assert (status["status"], status["message"]) == ("Pending", f"{REF} is suspended")


def test_stalled_is_unhealthy_with_flux_message_and_time(client):
    message = "invalid CEL expression: undeclared reference to 'statuss'"
    status = assess(client, flux.stalled(app(), "InvalidCELExpression", message, at(25)))
    assert status == {
        "status": "Unhealthy",
        "message": message,
        "lastChangeTime": ts(NOW),
        "lastErrorTime": ts(at(25)),
    }


def test_never_reconciled_is_pending(client):
    status = assess(client, app())
    assert status["status"] == "Pending"
    assert status["message"] == f"waiting for {REF} to reconcile generation 5"


def test_after_a_spec_change_a_ready_of_the_old_generation_does_not_count(client):
    ks = flux.patched(flux.ready(app(), "1.1.0", at(10)), "spec", "postBuild", {"substitute": {"X": "y"}})
    status = assess(client, ks)
    assert (status["status"], status["message"]) == (
        "Pending",
        f"waiting for {REF} to reconcile generation 6",
    )


def test_reconciling_is_pending_with_flux_message(client):
    ks = flux.reconciling(flux.attempted(flux.ready(app(4), "1.0.0", at(1)), "1.1.0"), at(25))
    ks = flux.patched(ks, "spec", "timeout", "6m")
    ks = flux.reconciling(
        ks, at(26), "Running health checks for revision main@sha1:3f2a9c1d with a timeout of 6m0s"
    )
    status = assess(client, ks)
    assert status["status"] == "Pending"
    assert status["message"] == (
        f"waiting for {REF} to reconcile generation 5: "
        "Running health checks for revision main@sha1:3f2a9c1d with a timeout of 6m0s"
    )


def test_ready_for_the_current_generation_is_healthy_with_flux_message(client):
    ks = flux.ready(app(), "1.1.0", at(25), applied="main@sha1:3f2a9c1d")
    status = assess(client, ks)
    assert status == {
        "status": "Healthy",
        "message": "Applied revision: main@sha1:3f2a9c1d",
        "lastChangeTime": ts(NOW),
    }


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        (
            "HealthCheckFailed",
            "health check failed after 5m0s: timeout waiting for: [Deployment/shop/web status: 'InProgress']",
        ),
        ("ReconciliationFailed", "Deployment/shop/web dry-run failed: spec.replicas: Invalid value: -1"),
        ("BuildFailed", "kustomize build failed: accumulating resources: 'deploy/missing.yaml' not found"),
        ("PruneFailed", 'failed to delete ConfigMap/shop/old: configmaps "old" is forbidden'),
    ],
)
def test_failures_of_this_generation_are_unhealthy(client, reason, message):
    """Flux leaves observedGeneration at the last success; Ready=False for this generation with
    Reconciling=ProgressingWithRetry is a finished, failed attempt."""
    ks = flux.failed(
        flux.reconciling(flux.patched(flux.ready(app(4), "1.0.0", at(1)), "spec", "force", True), at(24)),
        reason,
        message,
        at(25),
    )
    assert ks["status"]["observedGeneration"] == 4
    status = assess(client, ks)
    assert status == {
        "status": "Unhealthy",
        "message": message,
        "lastChangeTime": ts(NOW),
        "lastErrorTime": ts(at(25)),
    }


def test_artifact_failed_is_unhealthy_only_once_flux_retried(client):
    message = "Source artifact not found, retrying in 30s"
    first = flux.failed(app(), "ArtifactFailed", message, at(25), retried=False)
    status = assess(client, first)
    assert (status["status"], status["message"]) == (
        "Pending",
        f"waiting for {REF} to reconcile generation 5: {message}",
    )
    status = assess(client, flux.failed(first, "ArtifactFailed", message, at(26)), status=status)
    assert (status["status"], status["lastErrorTime"]) == ("Unhealthy", ts(at(25))), (
        "Ready kept its transition"
    )


def test_dependency_not_ready_is_pending_with_flux_message(client):
    ks = flux.dependency_not_ready(app(), "infra", at(25))
    status = assess(client, ks)
    assert (status["status"], status["message"]) == (
        "Pending",
        f"waiting for {REF} to reconcile generation 5: dependency '{NS}/infra' is not ready",
    )


def test_a_pending_check_names_the_source_failure():
    """Waiting for 1.1.0 to be applied while the driven OCIRepository cannot fetch it."""
    client = create_app(clock=lambda: NOW, actuator=object()).test_client()
    repo = flux.ready(flux.ocirepository("manifests", "1.0.0", rollout="web", generation=2), "1.0.0", at(-60))
    repo = flux.patched(repo, "spec", "ref", "tag", "1.1.0")
    repo = flux.failed(
        repo, "OCIArtifactPullFailed", "failed to determine artifact digest: MANIFEST_UNKNOWN", at(22)
    )
    ks = flux.ready(flux.kustomization("app", generation=3), "1.0.0", at(-59))  # still on 1.0.0
    status = sync(client, request(check(), web(), ks, repo))
    assert status["status"] == "Pending"
    assert status["message"] == (
        f"waiting for 1.1.0 to be applied; OCIRepository {NS}/manifests failed: "
        "OCIArtifactPullFailed: failed to determine artifact digest: MANIFEST_UNKNOWN"
    )
    # fetched and applied: Healthy
    repo = flux.ready(repo, "1.1.0", at(28))
    ks = flux.ready(ks, "1.1.0", at(29))
    status = sync(client, request(check(status), web(), ks, repo))
    assert status["status"] == "Healthy"


def test_healthy_only_for_the_deployed_revision(client):
    repo = flux.ready(flux.ocirepository("manifests", "1.1.0", rollout="web"), "1.1.0", at(21))
    ks = flux.ready(flux.kustomization("app", generation=3), "1.0.0", at(-59))
    status = sync(client, request(check(), web(), ks, repo))
    assert (status["status"], status["message"]) == ("Pending", "waiting for 1.1.0 to be applied")


# --- times --------------------------------------------------------------------------------------


def test_last_change_time_moves_only_when_the_status_changes(client):
    healthy = {"status": "Healthy", "message": "Applied revision: old", "lastChangeTime": ts(at(22))}
    ks = flux.ready(app(), "1.1.0", at(25), applied="main@sha1:3f2a9c1d")
    status = assess(client, ks, status=healthy)
    assert status == {
        "status": "Healthy",
        "message": "Applied revision: main@sha1:3f2a9c1d",
        "lastChangeTime": ts(at(22)),
    }


def test_last_error_time_never_moves_backwards(client):
    old = {
        "status": "Unhealthy",
        "message": "boom",
        "lastChangeTime": ts(at(24)),
        "lastErrorTime": ts(at(27)),
    }
    ks = flux.failed(app(), "HealthCheckFailed", "boom", at(25))
    assert assess(client, ks, status=old)["lastErrorTime"] == ts(at(27))


def test_a_failure_that_outlives_a_deploy_is_a_failure_of_that_deploy():
    """Flux keeps Ready's lastTransitionTime while the failure continues: after the reset the check
    turns Unhealthy with lastErrorTime at least the reset time, so the new bake sees it."""
    client = create_app(clock=lambda: NOW, actuator=object()).test_client()
    ks = flux.failed(
        flux.reconciling(app(), at(1)),
        "HealthCheckFailed",
        "timeout waiting for: [Deployment/shop/web]",
        at(2),
    )
    before = {
        "status": "Unhealthy",
        "message": "old",
        "lastChangeTime": ts(at(2)),
        "lastErrorTime": ts(at(2)),
    }
    status = sync(client, request(healthcheck(namespace=NS, target="app", status=before), web(), ks))
    assert status == {
        "status": "Unhealthy",
        "message": "timeout waiting for: [Deployment/shop/web]",
        "lastChangeTime": ts(NOW),
        "lastErrorTime": ts(DEPLOYED_AT),
    }


def test_reset_with_a_clock_behind_the_deployment_stamps_the_cutoff():
    slow = create_app(clock=lambda: at(15), actuator=object()).test_client()
    before = {
        "status": "Unhealthy",
        "message": "out of range",
        "lastChangeTime": ts(at(2)),
        "lastErrorTime": ts(at(2)),
        "failingSince": ts(at(1)),
        "queryErrorSince": ts(at(1)),
    }
    hc = healthcheck(namespace=NS, cls="external", target=None, status=before)
    response = slow.post("/healthcheck/sync", json=request(hc, web()))
    status = response.get_json()["status"]
    assert status["status"] == "Pending"
    assert status["lastChangeTime"] == ts(DEPLOYED_AT), "max(now, cutoff)"
    assert not {"lastErrorTime", "failingSince", "queryErrorSince"} & set(status)
