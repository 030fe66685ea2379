"""The sample hook requests in examples/hook-requests/ (used by the README's quick start) work."""

from __future__ import annotations

import json
from pathlib import Path

from hooks.app import create_app
from tests.crd_schema import errors_of, object_errors, validator
from tests.rollout_world import T0, RecordingActuator

REQUESTS = Path(__file__).resolve().parents[1] / "examples" / "hook-requests"


def client():
    return create_app(clock=lambda: T0, actuator=RecordingActuator()).test_client()


def test_sample_sync_request_adopts_what_the_targets_already_run():
    # A new Rollout in front of a running podinfo records 6.7.0 (docs rollout.md) instead of deploying
    # 6.7.1 through gates and health; the next syncs deploy 6.7.1 as an ordinary automatic decision.
    body = json.loads((REQUESTS / "rollout-sync.json").read_text())
    response = client().post("/rollout/sync", json=body)
    assert response.status_code == 200
    status = response.get_json()["status"]
    assert errors_of(validator("Rollout", part="status"), status) == []
    [entry] = status["history"]
    assert (entry["version"]["tag"], entry["trigger"], entry["adopted"]) == ("6.7.0", "Adoption", True)
    assert entry["bakeStatus"] == "Deploying"
    assert status["releaseCandidates"] == ["6.7.1"]
    assert response.get_json()["resyncAfterSeconds"] > 0
    assert {t["kind"] for t in status["targets"]} == {"OCIRepository", "Kustomization"}


def test_sample_customize_request():
    body = json.loads((REQUESTS / "rollout-customize.json").read_text())
    response = client().post("/rollout/customize", json=body)
    assert response.status_code == 200
    resources = [r["resource"] for r in response.get_json()["relatedResources"]]
    assert resources[:4] == ["imagepolicies", "ocirepositories", "kustomizations", "rolloutgates"]


def test_sample_related_objects_are_shaped_as_flux_and_the_hooks_write_them():
    """Every related object validates against its CRD, and every Flux object carries a status for
    its generation (a Flux object without a status is a world that does not exist)."""
    body = json.loads((REQUESTS / "rollout-sync.json").read_text())
    for group, objects in body["related"].items():
        for key, obj in objects.items():
            assert object_errors(obj) == [], (group, key)
            if "toolkit.fluxcd.io" in obj["apiVersion"]:
                status = obj["status"]
                assert status["observedGeneration"] == obj["metadata"]["generation"], key
                ready = next(c for c in status["conditions"] if c["type"] == "Ready")
                assert ready["observedGeneration"] == obj["metadata"]["generation"], key
