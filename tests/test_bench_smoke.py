"""The bench code keeps working: a tiny payload, one in-process sync, the report (no timings asserted)."""

from __future__ import annotations

import orjson

from bench import run
from bench.payload import ANNOTATED, DRIVEN_LABEL, NOW, rollout_request, worst_case_status_request
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
    assert set(row) == {
        "objects",
        "labeled",
        "body_bytes",
        "response_bytes",
        "floor_ms",
        "direct_ms",
        "flask_ms",
        "flask_over_floor",
    }
    labeled = run.in_process(12, repeat=1, labeled=True)
    assert labeled["labeled"] and labeled["body_bytes"] < run.in_process(12, repeat=1)["body_bytes"]
    checks = run.budgets({4: row, 1000: row}, status_bytes=size, rss=1, labeled=labeled)
    assert [name for name, _, _ in checks][2].startswith("with label selection")
    assert [ok for _, _, ok in checks][3:] == [size < 256 * 1024, True]
    table = run.markdown({4: row}, {}, checks, labeled)
    assert table.count("\n| ") >= 5 and ("PASS" in table or "FAIL" in table)


def test_labeled_request_is_what_metacontroller_sends_for_label_selection():
    """targetSelection: Labeled: only the driven objects, each labelled, plus policy, gates, checks."""
    full, narrow = rollout_request(40), rollout_request(40, labeled=True)
    assert narrow["parent"]["spec"]["targetSelection"] == "Labeled"
    flux = ("OCIRepository.source.toolkit.fluxcd.io/v1", "Kustomization.kustomize.toolkit.fluxcd.io/v1")
    sent = [obj for group in flux for obj in narrow["related"][group].values()]
    assert len(sent) == ANNOTATED
    assert all(obj["metadata"]["labels"][DRIVEN_LABEL] == "true" for obj in sent)
    for group in set(full["related"]) - set(flux):
        assert narrow["related"][group] == full["related"][group]
    answers = [sync(request, HookContext(now=NOW, actuator=run.NullActuator())) for request in (full, narrow)]
    assert answers[0]["status"]["targets"] == answers[1]["status"]["targets"]


def test_overload_bench_reads_the_deployment_it_budgets_against():
    from bench import overload

    assert overload.deployment_memory_limit() >= 512 * 1024 * 1024
    assert overload.workers_of_deployment() >= 1
    run_ = {
        "baseline": {"probe_max_ms": 10.0, "late_answers": 0, "goodput_rps": 4.0},
        "overload": {"probe_max_ms": 2500.0, "late_answers": 1, "goodput_rps": 2.0},
        "body_limit": {"probe_max_ms": 5.0, "late_answers": 0, "goodput_rps": 1.0},
        "pod_peak_rss_bytes": 100,
    }
    assert [ok for _, _, ok in overload.budgets(run_, limit=200)] == [False, False, False, True]


def test_collector_effect_reports_both_modes():
    row = run.collector_effect(4, repeat=1)
    assert set(row) == {"objects", "collector_on_ms", "collector_paused_ms"}
    assert gc_enabled_after()


def gc_enabled_after() -> bool:
    import gc

    return gc.isenabled()
