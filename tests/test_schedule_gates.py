"""Schedule gate names are injective (docs/spec/v1alpha1/rolloutschedule.md;
docs/scale.md "Schedule gates").

Metacontroller swallows `AlreadyExists` when it creates a child (manage_children.go), so two
schedules computing one gate name would leave one of them without its gate, silently.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from hooks.schedule.gates import gate_name, schedule_label_value
from tests.schedule_objects import (
    GATES_KEY,
    Hooks,
    expected_gate,
    gate_hash,
    observed_gate,
    request,
    rollout,
    rule,
    schedule,
    utc,
)

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,60}[a-z0-9])?", fullmatch=True).filter(
    lambda n: ".." not in n and ".-" not in n and "-." not in n
)


def gates_of(response: dict) -> set[tuple[str, str]]:
    return {(g["metadata"]["namespace"], g["metadata"]["name"]) for g in response["children"]}


def test_schedule_and_rollout_names_that_join_alike_get_different_gates():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    a = hooks.sync(request(schedule(rule("r"), name="a"), rollouts=[rollout("b-c")]))
    ab = hooks.sync(request(schedule(rule("r"), name="a-b"), rollouts=[rollout("c")]))
    assert gates_of(a).isdisjoint(gates_of(ab))
    assert [g["metadata"]["name"] for g in a["children"]] == [expected_gate("a", "b-c")]
    assert [g["metadata"]["name"] for g in ab["children"]] == [expected_gate("a-b", "c")]


def test_a_rollout_schedule_and_a_cluster_schedule_of_one_name_get_different_gates():
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    namespaced = hooks.sync(request(schedule(rule("r"), name="freeze"), rollouts=[rollout("web")]))
    cluster = hooks.sync(
        request(schedule(rule("r"), name="freeze", namespace=None), rollouts=[rollout("web")])
    )
    assert gates_of(namespaced).isdisjoint(gates_of(cluster))
    [gate] = cluster["children"]
    assert gate["metadata"]["name"] == expected_gate("freeze", "web", cluster=True)
    annotations = gate["metadata"]["annotations"]
    assert annotations["rollout.kuberik.com/schedule-kind"] == "ClusterRolloutSchedule"
    assert "rollout.kuberik.com/schedule-namespace" not in annotations
    assert (
        namespaced["children"][0]["metadata"]["annotations"]["rollout.kuberik.com/schedule-namespace"]
        == "team"
    )


def test_rollout_schedules_of_one_name_in_two_namespaces_get_different_gate_names():
    assert gate_name("RolloutSchedule", "a", "s", "web") != gate_name("RolloutSchedule", "b", "s", "web")


def test_the_name_format():
    name = gate_name("RolloutSchedule", "team", "office-hours", "web")
    assert name == "office-hours-web-" + gate_hash("RolloutSchedule", "team", "office-hours", "web")
    assert re.fullmatch(r"office-hours-web-[0-9a-f]{8}", name)


@given(
    kind=st.sampled_from(["RolloutSchedule", "ClusterRolloutSchedule"]),
    ns=NAMES,
    s1=NAMES,
    r1=NAMES,
    s2=NAMES,
    r2=NAMES,
)
def test_names_differ_whenever_the_inputs_differ(kind, ns, s1, r1, s2, r2):
    first, second = gate_name(kind, ns, s1, r1), gate_name(kind, ns, s2, r2)
    assert (first == second) == ((s1, r1) == (s2, r2))


@given(schedule_name=NAMES, rollout_name=NAMES, pad=st.integers(min_value=0, max_value=190))
def test_long_names_fit_and_stay_valid(schedule_name, rollout_name, pad):
    long_schedule = (schedule_name + "-" + "x" * pad).strip("-")
    name = gate_name("ClusterRolloutSchedule", "", long_schedule, rollout_name * 3)
    assert len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name)
    label = schedule_label_value(long_schedule)
    assert len(label) <= 63 and LABEL_VALUE.fullmatch(label)
    assert (label == long_schedule) == (len(long_schedule) <= 63)


def test_a_long_schedule_name_is_cut_with_a_hash_in_the_label():
    one, two = "s" * 70 + "a", "s" * 70 + "b"
    assert schedule_label_value(one) != schedule_label_value(two)
    assert len(schedule_label_value(one)) == 63


def test_managed_gates_lists_only_the_gates_really_owned():
    """A gate whose create collided (the name is taken) never appears among the children, so
    managedGates does not claim it while the gate is still returned for creation."""
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    parent = schedule(rule("r"), name="freeze")
    first = hooks.sync(request(parent, rollouts=[rollout("web"), rollout("api")]))
    assert first["status"]["managedGates"] == []  # nothing exists yet
    created = [g for g in first["children"] if g["spec"]["rolloutRef"]["name"] == "web"]
    body = request(
        parent, rollouts=[rollout("web"), rollout("api")], gates=[observed_gate(g) for g in created]
    )
    body["parent"]["status"] = first["status"]
    second = hooks.sync(body)
    assert second["status"]["managedGates"] == [expected_gate("freeze", "web")]
    assert len(second["children"]) == 2  # the other one is still asked for
    assert GATES_KEY in body["children"]


def test_an_upgrade_keeps_the_old_gate_until_the_new_one_exists():
    """Metacontroller deletes children before it creates new ones: the old `<schedule>-<rollout>`
    gate stays (with the current content) until the renamed gate exists, so a Rollout never sees
    no gate in a freeze."""
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    parent = schedule(rule("r", start="09:00", end="17:00"), name="freeze")  # Deny, active now
    [new] = hooks.sync(request(parent, rollouts=[rollout("web")]))["children"]
    old = observed_gate(
        {
            **new,
            "metadata": {**new["metadata"], "name": "freeze-web"},
            "spec": {"rolloutRef": {"name": "web"}, "passing": True},
        }
    )
    during = hooks.sync(request(parent, rollouts=[rollout("web")], gates=[old]))
    names = sorted(g["metadata"]["name"] for g in during["children"])
    assert names == sorted(["freeze-web", expected_gate("freeze", "web")])
    assert all(g["spec"] == {"rolloutRef": {"name": "web"}, "passing": False} for g in during["children"])
    assert during["status"]["managedGates"] == ["freeze-web"]
    both = [observed_gate(g) for g in during["children"]]
    after = hooks.sync(request(parent, rollouts=[rollout("web")], gates=both))
    assert [g["metadata"]["name"] for g in after["children"]] == [expected_gate("freeze", "web")]
