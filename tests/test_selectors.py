"""Label selectors checked by the Kubernetes rules (apimachinery `LabelSelectorAsSelector`).

Metacontroller converts every customize rule's selector before it calls the sync hook and fails
the whole sync on an invalid one, so an invalid selector must never leave customize: the rule
is left out and the sync reports it (`InvalidSpec`, `InvalidSchedule`). One table, the
Kubernetes rule in each row's name; the CRD column says whether the CRD's patterns already
refuse it (matchLabels keys and the In/NotIn value rule are checked by the hook and CEL only).
"""

from __future__ import annotations

from typing import Any

import pytest

from hooks.app import create_app
from hooks.k8s import selector_error, selector_matches
from hooks.rollout.customize import related_rules
from tests.crd_schema import errors_of, validator
from tests.metacontroller_select import Cluster, related
from tests.rollout_world import World
from tests.schedule_objects import Hooks, request, rollout, rule, schedule, utc


def expr(key: str = "app", operator: str = "In", values: Any = ("web",)) -> dict:
    out: dict[str, Any] = {"key": key, "operator": operator}
    if values is not None:
        out["values"] = list(values)
    return out


VALID: list[tuple[str, dict]] = [
    ("empty selector selects everything", {}),
    ("plain key and value", {"matchLabels": {"app": "web"}}),
    ("prefixed key", {"matchLabels": {"app.kubernetes.io/name": "web"}}),
    ("empty value", {"matchLabels": {"tier": ""}}),
    ("name part with _ . - and capitals", {"matchLabels": {"example.com/My_app.v-1": "A_b.c-D"}}),
    ("63-character name and value", {"matchLabels": {"k" * 63: "v" * 63}}),
    ("253-character prefix", {"matchLabels": {"p" * 253 + "/k": "v"}}),
    ("In with values", {"matchExpressions": [expr()]}),
    ("NotIn with values", {"matchExpressions": [expr(operator="NotIn")]}),
    ("Exists without values", {"matchExpressions": [expr(operator="Exists", values=None)]}),
    ("DoesNotExist with an empty list", {"matchExpressions": [expr(operator="DoesNotExist", values=[])]}),
]

# (name, selector, refused by the CRD's schema as well)
INVALID: list[tuple[str, dict, bool]] = [
    ("value with a space", {"matchLabels": {"app": "web app"}}, True),
    ("value starting with -", {"matchLabels": {"app": "-web"}}, True),
    ("value ending with .", {"matchLabels": {"app": "web."}}, True),
    ("value of 64 characters", {"matchLabels": {"app": "v" * 64}}, True),
    ("value with a slash", {"matchLabels": {"app": "a/b"}}, True),
    ("value not ASCII", {"matchLabels": {"app": "wéb"}}, True),
    ("key with a space", {"matchLabels": {"my app": "web"}}, False),
    ("empty key", {"matchLabels": {"": "web"}}, False),
    ("key with two slashes", {"matchLabels": {"a/b/c": "web"}}, False),
    ("empty prefix", {"matchLabels": {"/app": "web"}}, False),
    ("empty name after the prefix", {"matchLabels": {"example.com/": "web"}}, False),
    ("capital letters in the prefix", {"matchLabels": {"Example.com/app": "web"}}, False),
    ("prefix of 254 characters", {"matchLabels": {"p" * 254 + "/k": "v"}}, False),
    ("name of 64 characters", {"matchLabels": {"k" * 64: "v"}}, False),
    ("expression key with a space", {"matchExpressions": [expr(key="my app")]}, True),
    ("expression key ending with -", {"matchExpressions": [expr(key="app-")]}, True),
    ("expression value with a space", {"matchExpressions": [expr(values=["web app"])]}, True),
    ("In without values", {"matchExpressions": [expr(values=None)]}, False),
    ("In with an empty list", {"matchExpressions": [expr(values=[])]}, False),
    ("NotIn without values", {"matchExpressions": [expr(operator="NotIn", values=None)]}, False),
    ("Exists with values", {"matchExpressions": [expr(operator="Exists")]}, False),
    ("DoesNotExist with values", {"matchExpressions": [expr(operator="DoesNotExist")]}, False),
    (
        "operator Gt is not a LabelSelector operator",
        {"matchExpressions": [expr(operator="Gt", values=["1"])]},
        True,
    ),
    ("operators are case-sensitive", {"matchExpressions": [expr(operator="in")]}, True),
    ("matchLabels not an object", {"matchLabels": ["app=web"]}, True),
    ("matchExpressions not a list", {"matchExpressions": {"key": "app"}}, True),
    ("value not a string", {"matchLabels": {"app": 1}}, True),
]


@pytest.mark.parametrize(("name", "selector"), VALID, ids=[row[0] for row in VALID])
def test_valid_selectors(name, selector):
    assert selector_error(selector) is None
    selector_matches(selector, {"app": "web"})  # does not raise
    assert errors_of(validator("RolloutSchedule", part="spec.rolloutSelector"), selector) == []


@pytest.mark.parametrize(("name", "selector", "crd"), INVALID, ids=[row[0] for row in INVALID])
def test_invalid_selectors_are_named(name, selector, crd):
    reason = selector_error(selector)
    assert reason
    with pytest.raises(ValueError) as raised:
        selector_matches(selector, {})
    assert str(raised.value) == reason
    crd_errors = errors_of(validator("RolloutSchedule", part="spec.rolloutSelector"), selector)
    assert bool(crd_errors) is crd, crd_errors


@pytest.mark.parametrize(("name", "selector", "crd"), INVALID, ids=[row[0] for row in INVALID])
def test_rollout_customize_leaves_an_invalid_rule_out_and_sync_reports_invalid_spec(name, selector, crd):
    for shape in (selector, {"selector": selector}, {"selector": {}, "namespaceSelector": selector}):
        world = World(spec={"releasesImagePolicy": {"name": "app"}, "healthCheckSelector": shape})
        rules = related_rules(world.rollout())
        assert "healthchecks" not in [r["resource"] for r in rules]
        related(Cluster(), rules)  # Metacontroller accepts every rule that is returned
        world.sync()
        ready = next(c for c in world.status["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
        assert "spec.healthCheckSelector" in ready["message"]


@pytest.mark.parametrize(("name", "selector", "crd"), INVALID, ids=[row[0] for row in INVALID])
def test_schedule_customize_leaves_an_invalid_rule_out_and_sync_reports_invalid_schedule(name, selector, crd):
    hooks = Hooks(utc(2024, 3, 4, 10, 0))
    for parent, route in (
        (schedule(rule("r"), selector=selector), "/rolloutschedule/customize"),
        (schedule(rule("r"), namespace=None, selector=selector), "/clusterrolloutschedule/customize"),
        (
            schedule(rule("r"), namespace=None, selector={}, namespace_selector=selector),
            "/clusterrolloutschedule/customize",
        ),
    ):
        rules = hooks.post(route, {"controller": {}, "parent": parent})["relatedResources"]
        related(Cluster(), rules)
        assert all(
            r.get("labelSelector") != selector and r.get("namespaceSelector") != selector for r in rules
        )
        status = hooks.sync(request(parent, rollouts=[rollout("web")]))["status"]
        [ready] = status["conditions"]
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSchedule")


def test_a_valid_selector_keeps_its_rule():
    client = create_app(actuator=object()).test_client()
    world = World(
        spec={"releasesImagePolicy": {"name": "app"}, "healthCheckSelector": {"matchLabels": {"app": "web"}}}
    )
    body = {"controller": {}, "parent": world.rollout()}
    rules = client.post("/rollout/customize", json=body).get_json()["relatedResources"]
    [health] = [r for r in rules if r["resource"] == "healthchecks"]
    assert (
        health["labelSelector"] == {"matchLabels": {"app": "web"}}
        and health["namespace"] == world.rollout()["metadata"]["namespace"]
    )
