"""The bench code keeps working: a tiny payload, one in-process sync, the report (no timings asserted)."""

from __future__ import annotations

import orjson

from bench import run
from bench.payload import ANNOTATED, NOW, rollout_request, worst_case_status_request
from hooks.app import HookContext, create_app
from hooks.rollout.sync import sync
from tests.crd_schema import errors_of, validator


def test_tiny_payload_syncs_in_process_and_over_the_test_client():
    request = rollout_request(10, release_count=5, checks=4, gates=0, history_entries=3)
    related = request["related"]
    assert len(related["OCIRepository.source.toolkit.fluxcd.io/v1"]) == 5
    assert len(related["Kustomization.kustomize.toolkit.fluxcd.io/v1"]) == 5
    assert len(request["parent"]["status"]["availableReleases"]) == 5
    answer = sync(orjson.loads(orjson.dumps(request)), HookContext(now=NOW, actuator=run.NullActuator()))
    status = answer["status"]
    assert not errors_of(validator("Rollout", part="status"), status)
    assert status["history"][0]["version"]["tag"] == "1.0.5", "the announced release is deployed"
    driven = [t for t in status["targets"] if t["field"] != "status.lastAppliedRevision"]  # not read-only
    assert len(driven) == ANNOTATED
    client = create_app(clock=lambda: NOW, actuator=run.NullActuator()).test_client()
    response = client.post("/rollout/sync", data=orjson.dumps(request), content_type="application/json")
    assert response.status_code == 200
    assert response.get_json()["status"] == status


def test_default_payload_has_a_decision_to_make():
    answer = sync(rollout_request(4), HookContext(now=NOW, actuator=run.NullActuator()))
    assert answer["status"]["history"][0]["version"]["tag"] == "1.3.0"
    assert answer["status"]["history"][0]["bakeStatus"] == "Deploying"


def test_payload_is_deterministic():
    assert orjson.dumps(rollout_request(6, release_count=3)) == orjson.dumps(
        rollout_request(6, release_count=3)
    )


def test_worst_case_payload_and_report_helpers():
    request = worst_case_status_request()
    assert len(request["parent"]["status"]["availableReleases"]) == 1000
    assert len(request["parent"]["status"]["history"]) == 100
    size, fields = run.worst_case_status()
    assert size > sum(fields.values()) and {"availableReleases", "history"} <= set(fields)
    row = run.in_process(4, repeat=1)
    assert set(row) == {"objects", "body_bytes", "response_bytes", "floor_ms", "direct_ms", "flask_ms"}
    checks = run.budgets({4: row, 1000: row}, status_bytes=size, rss=1)
    assert [ok for _, _, ok in checks][2:] == [size < 256 * 1024, True]
    table = run.markdown({4: row}, {}, checks)
    assert table.count("\n| ") >= 4 and ("PASS" in table or "FAIL" in table)
