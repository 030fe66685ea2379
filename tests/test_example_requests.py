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


def test_sample_sync_request_deploys_the_announced_release():
    body = json.loads((REQUESTS / "rollout-sync.json").read_text())
    response = client().post("/rollout/sync", json=body)
    assert response.status_code == 200
    status = response.get_json()["status"]
    assert errors_of(validator("Rollout", part="status"), status) == []
    assert status["history"][0]["version"]["tag"] == "6.7.1"
    assert status["history"][0]["bakeStatus"] == "Deploying"
    assert {t["kind"] for t in status["targets"]} == {"OCIRepository", "Kustomization"}


def test_sample_customize_request():
    body = json.loads((REQUESTS / "rollout-customize.json").read_text())
    response = client().post("/rollout/customize", json=body)
    assert response.status_code == 200
    resources = [r["resource"] for r in response.get_json()["relatedResources"]]
    assert resources[:4] == ["imagepolicies", "ocirepositories", "kustomizations", "rolloutgates"]
