"""The sample hook requests in examples/hook-requests/ (used by the README's quick start) work."""

from __future__ import annotations

import json
from pathlib import Path

from hooks.app import create_app
from tests.crd_schema import errors_of, validator
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
