"""RolloutSchedule / ClusterRolloutSchedule hooks through the app: status, gates, resync, customize."""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path

import pytest
import yaml

from hooks.schedule.gates import LAST_APPLIED_ANNOTATION, gate_name
from tests.crd_schema import errors_of, object_errors, validator
from tests.schedule_objects import (
    Hooks,
    expected_gate,
    gate_hash,
    namespace_obj,
    observed_gate,
    request,
    rollout,
    rule,
    schedule,
    utc,
)

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
BUSINESS = rule("business-hours", start="09:00", end="17:00", days=WEEKDAYS)
REPO = Path(__file__).resolve().parents[1]
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# 2024-03-04 is a Monday.


def check_schema(response: dict, kind: str = "RolloutSchedule") -> None:
    assert errors_of(validator(kind, part="status"), response["status"]) == []
    for gate in response["children"]:
        assert object_errors(gate) == []
        assert DNS_1123.match(gate["metadata"]["name"]) and len(gate["metadata"]["name"]) <= 253


def gates_by_name(response: dict) -> dict[str, dict]:
    return {f"{g['metadata']['namespace']}/{g['metadata']['name']}": g for g in response["children"]}


def ready(response: dict) -> dict:
    [cond] = [c for c in response["status"]["conditions"] if c["type"] == "Ready"]
    return cond


# --- windows, actions, gates -------------------------------------------------------------


def test_allow_inside_the_window_passes_and_describes_the_gate():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    parent = schedule(BUSINESS, action="Allow", timezone="UTC")
    response = hooks.settle(request(parent, rollouts=[rollout("web"), rollout("db", app="db")]))
    check_schema(response)
    assert set(response) == {"status", "children", "resyncAfterSeconds"}
    [gate] = response["children"]
    assert gate == {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "RolloutGate",
        "metadata": {
            "name": expected_gate("sched", "web"),
            "namespace": "team",
            "labels": {"rollout.kuberik.com/schedule": "sched"},
            "annotations": {
                "rollout.kuberik.com/schedule-kind": "RolloutSchedule",
                "rollout.kuberik.com/schedule-namespace": "team",
                "rollout.kuberik.com/schedule-name": "sched",
                "rollout.kuberik.com/schedule-action": "Allow",
                "rollout.kuberik.com/schedule-timezone": "UTC",
                "rollout.kuberik.com/schedule-rules": "business-hours: Mon,Tue,Wed,Thu,Fri 09:00-17:00",
                "rollout.kuberik.com/next-transition": "2024-03-04T17:00:00Z",
            },
        },
        "spec": {"rolloutRef": {"name": "web"}, "passing": True},
    }
    status = response["status"]
    assert status["active"] is True
    assert status["activeRules"] == ["business-hours"]
    assert status["nextTransition"] == "2024-03-04T17:00:00Z"
    assert status["managedGates"] == [expected_gate("sched", "web")]
    assert status["matchingRollouts"] == 1
    assert ready(response) == {
        "type": "Ready",
        "status": "True",
        "reason": "Scheduled",
        "message": "Allow schedule is active (business-hours); 1 gate(s) passing until 2024-03-04T17:00:00Z",
        "lastTransitionTime": "2024-03-04T10:00:00Z",
        "observedGeneration": 1,
    }
    assert response["resyncAfterSeconds"] == 3600  # seven hours away: capped at the calm period


def test_allow_outside_the_window_blocks_until_the_next_weekday():
    hooks = Hooks(utc(2024, 3, 8, 18, 0))  # Friday evening
    response = hooks.sync(request(schedule(BUSINESS, action="Allow"), rollouts=[rollout("web")]))
    assert response["children"][0]["spec"]["passing"] is False
    assert response["status"]["active"] is False
    assert response["status"]["activeRules"] == []
    assert response["status"]["nextTransition"] == "2024-03-11T09:00:00Z"


@pytest.mark.parametrize(("at", "passing"), [(utc(2024, 3, 4, 10, 0), False), (utc(2024, 3, 4, 18, 0), True)])
def test_deny_is_the_default_and_blocks_inside_the_window(at, passing):
    hooks = Hooks(at)
    response = hooks.sync(request(schedule(BUSINESS), rollouts=[rollout("web")]))
    gate = response["children"][0]
    assert gate["spec"]["passing"] is passing
    assert gate["metadata"]["annotations"]["rollout.kuberik.com/schedule-action"] == "Deny"
    assert response["status"]["active"] is not passing


def test_resync_reaches_the_next_transition():
    hooks = Hooks(utc(2024, 3, 4, 16, 45, 30))
    response = hooks.sync(request(schedule(BUSINESS), rollouts=[rollout("web")]))
    assert response["resyncAfterSeconds"] == 14 * 60 + 30
    after = hooks.sync(request(schedule(BUSINESS), rollouts=[rollout("web")]), at=utc(2024, 3, 4, 17, 0))
    assert after["status"]["active"] is False
    assert after["children"][0]["spec"]["passing"] is True


def test_overlapping_rules_report_the_real_transition_and_resync_at_the_handover():
    parent = schedule(rule("morning", start="09:00", end="12:00"), rule("noon", start="11:00", end="14:00"))
    hooks = Hooks(utc(2024, 3, 4, 10, 30))
    response = hooks.sync(request(parent, rollouts=[rollout("web")]))
    assert response["status"]["activeRules"] == ["morning"]
    assert response["status"]["nextTransition"] == "2024-03-04T14:00:00Z"
    assert response["resyncAfterSeconds"] == 1800  # 11:00, when activeRules changes
    later = hooks.sync(request(parent, rollouts=[rollout("web")]), at=utc(2024, 3, 4, 11, 0))
    assert later["status"]["activeRules"] == ["morning", "noon"]
    assert later["children"] == response["children"]  # the gates do not change at a hand-over


def test_cross_midnight_window_on_the_following_day_uses_the_opening_weekday():
    parent = schedule(
        rule("friday-night", start="22:00", end="06:00", days=["fri"]), timezone="Europe/Berlin"
    )
    hooks = Hooks(utc(2024, 3, 9, 4, 0))  # Saturday 05:00 in Berlin
    response = hooks.sync(request(parent, rollouts=[rollout("web")]))
    assert response["status"]["activeRules"] == ["friday-night"]
    assert response["status"]["nextTransition"] == "2024-03-09T05:00:00Z"
    assert response["resyncAfterSeconds"] == 3600
    saturday_night = hooks.sync(request(parent, rollouts=[rollout("web")]), at=utc(2024, 3, 9, 22, 0))
    assert saturday_night["status"]["active"] is False
    assert saturday_night["status"]["nextTransition"] == "2024-03-15T21:00:00Z"


def test_next_date_range_and_expired_range_without_hot_loop():
    freeze = rule("freeze", dates=("2024-12-20", "2025-01-04"))
    hooks = Hooks(utc(2024, 12, 1))
    before = hooks.sync(request(schedule(freeze, timezone="Europe/Amsterdam"), rollouts=[rollout("web")]))
    assert before["status"]["nextTransition"] == "2024-12-19T23:00:00Z"
    assert before["children"][0]["spec"]["passing"] is True
    after = hooks.sync(
        request(schedule(freeze, timezone="Europe/Amsterdam"), rollouts=[rollout("web")]), at=utc(2025, 2, 1)
    )
    assert "nextTransition" not in after["status"]
    assert "rollout.kuberik.com/next-transition" not in after["children"][0]["metadata"]["annotations"]
    assert after["resyncAfterSeconds"] == 3600
    assert after["children"][0]["spec"]["passing"] is True


def test_always_active_schedule_has_no_transition():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    response = hooks.sync(request(schedule(rule("always")), rollouts=[rollout("web")]))
    assert response["status"]["active"] is True
    assert "nextTransition" not in response["status"]
    assert response["resyncAfterSeconds"] == 3600


def test_dst_days_in_new_york():
    parent = schedule(BUSINESS, timezone="America/New_York", action="Allow")
    hooks = Hooks(utc(2024, 3, 8, 21, 59))  # Friday 16:59 EST
    friday = hooks.sync(request(parent, rollouts=[rollout("web")]))
    assert friday["status"]["nextTransition"] == "2024-03-08T22:00:00Z"
    weekend = hooks.sync(request(parent, rollouts=[rollout("web")]), at=utc(2024, 3, 8, 22, 0))
    assert weekend["status"]["nextTransition"] == "2024-03-11T13:00:00Z"  # Monday 09:00 EDT
    gap = schedule(rule("early", start="02:30", end="04:00"), timezone="America/New_York")
    spring = hooks.sync(request(gap, rollouts=[rollout("web")]), at=utc(2024, 3, 10, 6, 0))
    assert spring["status"]["nextTransition"] == "2024-03-10T07:00:00Z"  # 03:00 EDT, right after the gap
    fall = hooks.sync(request(gap, rollouts=[rollout("web")]), at=utc(2024, 11, 3, 6, 0))  # 01:00 EST
    assert fall["status"]["nextTransition"] == "2024-11-03T07:30:00Z"  # 02:30 EST


def test_timezones_shift_the_window():
    rules = rule("r", start="09:00", end="17:00")
    hooks = Hooks(utc(2024, 3, 4, 7, 0))
    tokyo = hooks.sync(request(schedule(rules, timezone="Asia/Tokyo"), rollouts=[rollout("web")]))
    utc_zone = hooks.sync(request(schedule(rules), rollouts=[rollout("web")]))
    assert tokyo["status"]["active"] is True and utc_zone["status"]["active"] is False
    assert tokyo["status"]["nextTransition"] == "2024-03-04T08:00:00Z"
    assert (
        tokyo["children"][0]["metadata"]["annotations"]["rollout.kuberik.com/schedule-timezone"]
        == "Asia/Tokyo"
    )


# --- invalid schedules keep their gates --------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Europe/Atlantis"}, "spec.timezone"),
        ({"rules": [rule("r", dates=("2024-13-01", "2024-12-31"))]}, "spec.rules[0].dateRange.start"),
        ({"rules": [rule("r", start="9am", end="17:00")]}, "spec.rules[0].timeRange.start"),
        (
            {"rolloutSelector": {"matchExpressions": [{"key": "app", "operator": "Near"}]}},
            "spec.rolloutSelector",
        ),
        ({"rolloutSelector": None}, "spec.rolloutSelector"),
    ],
)
def test_invalid_schedule_keeps_status_and_gates(change, field):
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    good = schedule(BUSINESS, action="Allow")
    first = hooks.settle(request(good, rollouts=[rollout("web"), rollout("api")]))
    observed = [observed_gate(g) for g in first["children"]]
    bad = copy.deepcopy(good)
    bad["spec"].update(change)
    bad["status"] = first["status"]
    bad["metadata"]["generation"] = 2
    response = hooks.sync(request(bad, rollouts=[rollout("web")], gates=observed), at=utc(2024, 3, 4, 18, 0))
    check_schema(response)
    assert response["children"] == first["children"]  # unchanged, none deleted, still passing
    status = response["status"]
    for key in ("active", "activeRules", "managedGates", "matchingRollouts"):
        assert status[key] == first["status"][key]
    assert "nextTransition" not in status  # nothing changes until the spec is fixed (was 17:00, now past)
    cond = ready(response)
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSchedule")
    assert cond["message"].startswith(field)
    assert cond["lastTransitionTime"] == "2024-03-04T18:00:00Z" and cond["observedGeneration"] == 2
    assert response["resyncAfterSeconds"] == 3600
    again = copy.deepcopy(bad)
    again["status"] = status
    assert hooks.sync(request(again, rollouts=[rollout("web")], gates=observed)) == response


def test_invalid_schedule_without_last_applied_returns_the_gate_without_server_fields():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    foreign = {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "RolloutGate",
        "metadata": {
            "name": "sched-web-0badc0de",
            "namespace": "team",
            "uid": "1",
            "resourceVersion": "7",
            "managedFields": [{}],
            "labels": {"rollout.kuberik.com/schedule": "sched"},
            "annotations": {"note": "kept", LAST_APPLIED_ANNOTATION: "not json"},
        },
        "spec": {"rolloutRef": {"name": "web"}, "passing": False},
        "status": {"passing": True},
    }
    bad = schedule(BUSINESS, timezone="Nowhere/Special")
    response = hooks.sync(request(bad, rollouts=[rollout("web")], gates=[foreign]))
    assert response["children"] == [
        {
            "apiVersion": "kuberik.com/v1alpha1",
            "kind": "RolloutGate",
            "metadata": {
                "name": "sched-web-0badc0de",
                "namespace": "team",
                "labels": {"rollout.kuberik.com/schedule": "sched"},
                "annotations": {"note": "kept"},
            },
            "spec": {"rolloutRef": {"name": "web"}, "passing": False},
        }
    ]
    assert set(response["status"]) == {"conditions", "managedGates"}
    assert response["status"]["managedGates"] == ["sched-web-0badc0de"]  # what the children show


# --- matching Rollouts -------------------------------------------------------------------


def test_rollouts_start_and_stop_matching():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    parent = schedule(
        BUSINESS, selector={"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]}
    )
    one = hooks.settle(request(parent, rollouts=[rollout("web", tier="fe"), rollout("db", tier="be")]))
    assert one["status"]["managedGates"] == [expected_gate("sched", "web")]
    parent["status"] = one["status"]
    gates = [observed_gate(g) for g in one["children"]]
    two = hooks.settle(
        request(parent, rollouts=[rollout("web", tier="fe"), rollout("db", tier="fe")], gates=gates)
    )
    assert two["status"]["managedGates"] == sorted(
        [expected_gate("sched", "db"), expected_gate("sched", "web")]
    )
    assert two["status"]["matchingRollouts"] == 2
    assert {g["spec"]["rolloutRef"]["name"] for g in two["children"]} == {"web", "db"}
    parent["status"] = two["status"]
    gates = [observed_gate(g) for g in two["children"]]
    none = hooks.sync(
        request(parent, rollouts=[rollout("web", tier="be"), rollout("db", tier="be")], gates=gates)
    )
    assert none["children"] == []  # Metacontroller deletes the gates no longer returned
    assert none["status"]["matchingRollouts"] == 0
    # still owned until Metacontroller has deleted them; then the next sync lists none
    assert none["status"]["managedGates"] == two["status"]["managedGates"]
    parent["status"] = none["status"]
    gone = hooks.sync(request(parent, rollouts=[rollout("web", tier="be"), rollout("db", tier="be")]))
    assert gone["status"]["managedGates"] == []


def test_namespaced_schedule_ignores_rollouts_of_other_namespaces_and_deleted_ones():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    dying = rollout("old")
    dying["metadata"]["deletionTimestamp"] = "2024-03-04T09:00:00Z"
    response = hooks.sync(
        request(schedule(BUSINESS), rollouts=[rollout("web"), rollout("web", "other"), dying])
    )
    assert [g["metadata"]["namespace"] + "/" + g["metadata"]["name"] for g in response["children"]] == [
        "team/" + expected_gate("sched", "web")
    ]


def test_empty_rollout_selector_selects_every_rollout():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    response = hooks.settle(
        request(schedule(BUSINESS, selector={}), rollouts=[rollout("a", x="1"), rollout("b")])
    )
    assert response["status"]["managedGates"] == sorted(
        [expected_gate("sched", "a"), expected_gate("sched", "b")]
    )


def test_cluster_schedule_without_namespace_selector_covers_every_namespace():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    parent = schedule(BUSINESS, name="freeze", namespace=None)
    rollouts = [rollout("web", "shop"), rollout("web", "blog"), rollout("db", "shop", app="db")]
    response = hooks.settle(request(parent, rollouts=rollouts))
    check_schema(response, "ClusterRolloutSchedule")
    web = expected_gate("freeze", "web", cluster=True)
    assert sorted(gates_by_name(response)) == [f"blog/{web}", f"shop/{web}"]
    assert response["status"]["managedGates"] == [f"blog/{web}", f"shop/{web}"]
    gate = gates_by_name(response)[f"shop/{web}"]
    assert gate["metadata"]["annotations"]["rollout.kuberik.com/schedule-kind"] == "ClusterRolloutSchedule"
    assert gate["metadata"]["labels"] == {"rollout.kuberik.com/schedule": "freeze"}
    assert gate["spec"] == {"rolloutRef": {"name": "web"}, "passing": False}


def test_cluster_schedule_with_namespace_selector():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    parent = schedule(
        BUSINESS, name="freeze", namespace=None, namespace_selector={"matchLabels": {"env": "prod"}}
    )
    rollouts = [rollout("web", "shop"), rollout("web", "blog"), rollout("web", "unknown")]
    namespaces = [namespace_obj("shop", env="prod"), namespace_obj("blog", env="dev")]
    response = hooks.settle(request(parent, rollouts=rollouts, namespaces=namespaces))
    web = expected_gate("freeze", "web", cluster=True)
    assert response["status"]["managedGates"] == [f"shop/{web}"]
    # The blog namespace gets labelled: its Rollout starts to match.
    namespaces[1]["metadata"]["labels"]["env"] = "prod"
    parent["status"] = response["status"]
    gates = [observed_gate(g) for g in response["children"]]
    more = hooks.settle(request(parent, rollouts=rollouts, namespaces=namespaces, gates=gates))
    assert more["status"]["managedGates"] == [f"blog/{web}", f"shop/{web}"]


def test_long_names_are_shortened_to_valid_gate_names_and_label_values():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    long_schedule = "s" * 150
    long_rollout = "r" * 200
    response = hooks.sync(request(schedule(BUSINESS, name=long_schedule), rollouts=[rollout(long_rollout)]))
    check_schema(response)
    [gate] = response["children"]
    name = gate["metadata"]["name"]
    # cut before the suffix so the whole name fits 253 characters
    assert len(name) == 253 and name == gate_name("RolloutSchedule", "team", long_schedule, long_rollout)
    assert name == f"{long_schedule}-{long_rollout}"[:244] + "-" + gate_hash(
        "RolloutSchedule", "team", long_schedule, long_rollout
    )
    assert (
        gate_name("RolloutSchedule", "team", long_schedule, long_rollout + "x") != name
    )  # the hash tells them apart
    label = gate["metadata"]["labels"]["rollout.kuberik.com/schedule"]
    assert len(label) == 63 and label.startswith("s" * 54 + "-")
    assert gate["metadata"]["annotations"]["rollout.kuberik.com/schedule-name"] == long_schedule


# --- fixed point -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parent",
    [
        schedule(BUSINESS, action="Allow", timezone="America/New_York"),
        schedule(rule("freeze", dates=("2020-01-01", "2020-01-02"))),
        schedule(BUSINESS, name="c", namespace=None, namespace_selector={"matchLabels": {"env": "prod"}}),
    ],
)
def test_status_is_a_fixed_point(parent):
    hooks = Hooks(utc(2024, 3, 4, 15, 0))
    rollouts = [rollout("web"), rollout("web", "shop")]
    namespaces = [namespace_obj("shop", env="prod"), namespace_obj("team", env="prod")]
    first = hooks.settle(request(parent, rollouts=rollouts, namespaces=namespaces))
    parent = copy.deepcopy(parent)
    parent["status"] = first["status"]
    gates = [observed_gate(g) for g in first["children"]]
    second = hooks.sync(request(parent, rollouts=rollouts, namespaces=namespaces, gates=gates))
    assert json.dumps(second, sort_keys=True) == json.dumps(first, sort_keys=True)
    # An hour later, still before the transition: nothing changes either.
    later = hooks.sync(
        request(parent, rollouts=rollouts, namespaces=namespaces, gates=gates), at=utc(2024, 3, 4, 16)
    )
    assert later["status"] == first["status"] and later["children"] == first["children"]


def test_observed_generation_is_kept():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    parent = schedule(BUSINESS, status={"observedGeneration": 3})
    assert hooks.sync(request(parent, rollouts=[rollout("web")]))["status"]["observedGeneration"] == 3


# --- customize ---------------------------------------------------------------------------


def test_customize_namespaced_relates_rollouts_by_selector():
    hooks = Hooks(utc(2024, 3, 4))
    body = {"controller": {}, "parent": schedule(BUSINESS)}
    # a v2 rule without `namespace` would send every matching Rollout of the cluster
    assert hooks.post("/rolloutschedule/customize", body) == {
        "relatedResources": [
            {
                "apiVersion": "kuberik.com/v1alpha1",
                "resource": "rollouts",
                "namespace": "team",
                "labelSelector": {"matchLabels": {"app": "web"}},
            }
        ]
    }


def test_customize_cluster_relates_rollouts_and_selected_namespaces():
    hooks = Hooks(utc(2024, 3, 4))
    parent = schedule(BUSINESS, namespace=None, namespace_selector={"matchLabels": {"env": "prod"}})
    rules = hooks.post("/clusterrolloutschedule/customize", {"parent": parent})["relatedResources"]
    assert rules == [
        {
            "apiVersion": "kuberik.com/v1alpha1",
            "resource": "rollouts",
            "labelSelector": {"matchLabels": {"app": "web"}},
            "namespaceSelector": {"matchLabels": {"env": "prod"}},
        },
        {"apiVersion": "v1", "resource": "namespaces", "labelSelector": {"matchLabels": {"env": "prod"}}},
    ]
    for rule_ in rules:
        assert not ("names" in rule_ and ("labelSelector" in rule_ or "namespaceSelector" in rule_))
    no_selector = schedule(BUSINESS, namespace=None, selector={})
    assert hooks.post("/clusterrolloutschedule/customize", {"parent": no_selector})["relatedResources"] == [
        {"apiVersion": "kuberik.com/v1alpha1", "resource": "rollouts", "labelSelector": {}}
    ]


def test_customize_skips_an_invalid_selector_and_rejects_a_non_request():
    hooks = Hooks(utc(2024, 3, 4))
    parent = schedule(BUSINESS, selector={"matchExpressions": [{"key": "a", "operator": "In"}]})
    assert hooks.post("/rolloutschedule/customize", {"parent": parent}) == {"relatedResources": []}
    assert hooks.client.post("/rolloutschedule/sync", json={"nothing": 1}).status_code == 400


# --- examples and logging ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["examples/rolloutschedule.yaml", "examples/clusterrolloutschedule.yaml"])
def test_shipped_examples_are_valid_schedules(path):
    parent = yaml.safe_load((REPO / path).read_text())
    namespace = parent["metadata"].get("namespace", "prod")
    rollouts = [rollout("podinfo", namespace, app="podinfo")]
    namespaces = [namespace_obj(namespace, environment="production")]
    response = Hooks(utc(2026, 12, 24, 12, 0)).sync(request(parent, rollouts=rollouts, namespaces=namespaces))
    check_schema(response, parent["kind"])
    assert ready(response)["reason"] == "Scheduled"
    assert response["status"]["matchingRollouts"] == 1


def test_sync_logs_the_schedule_and_decision(caplog):
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    with caplog.at_level(logging.INFO, logger="hooks.request"):
        hooks.sync(request(schedule(BUSINESS), rollouts=[rollout("web")]))
    [record] = [r for r in caplog.records if r.name == "hooks.request"]
    fields = record.fields
    assert fields["object"] == "team/sched"
    assert (fields["decision"], fields["active"], fields["gates"]) == ("blocking", True, 1)
    assert "active" in fields["changed"] and "conditions" in fields["changed"]
