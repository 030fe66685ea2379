"""HealthCheck decorator hook through the HTTP routes, as Metacontroller calls it (see
docs/spec/v1alpha1/healthcheck.md).

Every sync is checked to be a fixed point: the request carrying the returned status
gets the same status back (or null: nothing more to change).
"""

from __future__ import annotations

import jsonschema
import pytest

from hooks.app import create_app
from hooks.k8s import parse_time
from tests.healthcheck_objects import (
    NOW,
    READY,
    at,
    healthcheck,
    kustomization,
    namespace,
    oci_repository,
    request,
    rollout,
    status_schema,
    with_status,
)

SCHEMA = status_schema()


@pytest.fixture
def client():
    return create_app(clock=lambda: NOW, actuator=object()).test_client()


def post(client, route: str, body: dict) -> dict:
    response = client.post(route, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def sync(client, body: dict) -> dict | None:
    """POST a sync, check the response and the fixed point; return the new status (or None)."""
    answer = post(client, "/healthcheck/sync", body)
    assert set(answer) <= {"status", "attachments", "resyncAfterSeconds"}
    assert answer.get("resyncAfterSeconds", 0) == 0
    assert answer["attachments"] == []
    status = answer["status"]
    if status is not None:
        jsonschema.validate(status, SCHEMA)
        for key in ("lastChangeTime", "lastErrorTime"):
            if key in status:
                assert parse_time(status[key]) is not None
    effective = status if status is not None else body.get("parent", body.get("object")).get("status")
    again = post(client, "/healthcheck/sync", with_status(body, status))["status"]
    assert again is None or again == effective, "status is not a fixed point"
    if status is not None:
        # the hook writes observedGeneration (docs/spec/v1alpha1/healthcheck.md);
        # the tests below compare the rest
        status = dict(status)
        assert (
            status.pop("observedGeneration")
            == body.get("parent", body.get("object"))["metadata"]["generation"]
        )
    return status


HEALTHY_OLD = {"status": "Healthy", "message": "ok", "lastChangeTime": at(-60), "lastErrorTime": at(-30)}


# --- reset ---------------------------------------------------------------------------------


def test_reset_after_deployment(client):
    check = healthcheck(cls="external", target=None, status={**HEALTHY_OLD, "observedGeneration": 1})
    status = sync(client, request(check, rollout(timestamp=at(-10))))
    assert status == {
        "status": "Pending",
        "message": "Health check reset due to new deployment",
        "lastChangeTime": at(0),
    }


def test_reset_after_retry(client):
    check = healthcheck(cls="external", target=None, status={**HEALTHY_OLD, "lastChangeTime": at(-20)})
    status = sync(client, request(check, rollout(timestamp=at(-40), retry=at(-1))))
    assert status["status"] == "Pending"
    assert status["lastChangeTime"] == at(0)
    assert "lastErrorTime" not in status


@pytest.mark.parametrize("last_change", [at(-10), at(-5)])
def test_no_reset_when_changed_at_or_after_the_deployment(client, last_change):
    check = healthcheck(cls="external", target=None, status={**HEALTHY_OLD, "lastChangeTime": last_change})
    assert sync(client, request(check, rollout(timestamp=at(-10), retry=None))) is None


def test_deployment_recorded_ahead_of_our_clock_does_not_loop(client):
    check = healthcheck(cls="external", target=None, status=dict(HEALTHY_OLD))
    status = sync(client, request(check, rollout(timestamp=at(2))))
    assert status["lastChangeTime"] == at(2)
    ks_status = sync(
        client, request(healthcheck(status=dict(HEALTHY_OLD)), rollout(timestamp=at(2)), kustomization())
    )
    assert ks_status["lastChangeTime"] == at(2)


@pytest.mark.parametrize("last_change", [None, "yesterday", ""])
def test_reset_when_last_change_missing_or_unparsable(client, last_change):
    old = {"status": "Healthy", "message": "ok"}
    if last_change is not None:
        old["lastChangeTime"] = last_change
    status = sync(client, request(healthcheck(cls="external", target=None, status=old), rollout()))
    assert status["status"] == "Pending"
    assert status["lastChangeTime"] == at(0)


def test_rollout_without_history_or_with_unparsable_times_does_not_reset(client):
    check = healthcheck(cls="external", target=None, status={"status": "Healthy"})
    assert sync(client, request(check, rollout(tag=None))) is None
    assert sync(client, request(check, rollout(timestamp="not-a-time"))) is None


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"app": "other"}},
        {},
        {"namespaceSelector": {}},
        {"selector": {}, "namespaceSelector": {}},
        {"matchLabels": {"app": "web"}, "selector": {"matchLabels": {"app": "web"}}},
        {"matchExpressions": [{"key": "app", "operator": "Bogus"}]},
        "not-a-selector",
    ],
)
def test_rollouts_that_do_not_select_the_check_do_not_reset_it(client, selector):
    check = healthcheck(cls="external", target=None, status=dict(HEALTHY_OLD))
    assert sync(client, request(check, rollout(selector=selector))) is None


def test_malformed_rollouts_are_ignored(client):
    broken = rollout()
    broken["spec"] = "oops"
    odd_history = rollout()
    odd_history["status"] = {"history": "oops"}
    check = healthcheck(cls="external", target=None, status=dict(HEALTHY_OLD))
    assert sync(client, request(check, broken, odd_history)) is None


def test_external_classes_are_left_alone(client):
    for cls in ("external", None):
        check = healthcheck(cls=cls, target=None, status={"status": "Unhealthy", "message": "x"})
        assert sync(client, request(check)) is None
    assert sync(client, request(healthcheck(cls="external", target=None))) is None


# --- cross-namespace selection ------------------------------------------------------------

CROSS = {"selector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"matchLabels": {"env": "prod"}}}
#: the check's namespace opted in to Rollouts of other namespaces (docs/tenancy.md; tests/test_tenancy.py)
SHARED = {"rollout.kuberik.com/shared-health-checks": "true"}


def test_rollout_in_another_namespace_selects_by_namespace_selector(client):
    check = healthcheck(cls="external", target=None, status=dict(HEALTHY_OLD))
    other = rollout(namespace="deploy", selector=CROSS, cross_namespace=True)
    body = request(check, other, namespace("team", {"env": "prod", **SHARED}))
    assert sync(client, body)["message"] == "Health check reset due to new deployment"


def test_rollout_in_another_namespace_not_selecting_when_labels_differ(client):
    check = healthcheck(cls="external", target=None, status=dict(HEALTHY_OLD))
    other = rollout(namespace="deploy", selector=CROSS, cross_namespace=True)
    body = request(check, other, namespace("team", {"env": "dev", **SHARED}))
    assert sync(client, body) is None


def test_plain_selector_only_selects_in_the_rollouts_namespace(client):
    check = healthcheck(cls="external", target=None, status=dict(HEALTHY_OLD))
    assert sync(client, request(check, rollout(namespace="deploy"), namespace("team"))) is None


def test_namespace_selector_can_match_the_automatic_name_label(client):
    selector = {
        "selector": {"matchLabels": {"app": "web"}},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team"}},
    }
    check = healthcheck(cls="external", target=None, status=dict(HEALTHY_OLD))
    body = request(
        check, rollout(namespace="deploy", selector=selector, cross_namespace=True), namespace("team", SHARED)
    )
    assert sync(client, body)["status"] == "Pending"


# --- kustomization class -------------------------------------------------------------------

FRESH_PENDING = {"status": "Pending", "message": "waiting", "lastChangeTime": at(-2)}


def test_healthy_for_the_deployed_revision(client):
    check = healthcheck(status=dict(FRESH_PENDING))
    status = sync(client, request(check, rollout(), kustomization()))
    assert status == {"status": "Healthy", "message": READY["message"], "lastChangeTime": at(0)}


def test_healthy_status_kept_with_its_change_time(client):
    old = {"status": "Healthy", "message": READY["message"], "lastChangeTime": at(-3)}
    status = sync(client, request(healthcheck(status=old), rollout(), kustomization()))
    assert status == old


def test_still_ready_old_revision_stays_pending_substitute(client):
    check = healthcheck(status=dict(FRESH_PENDING))
    status = sync(client, request(check, rollout(), kustomization(substitute={"VERSION": "v1"})))
    assert status["status"] == "Pending"
    assert status["message"] == "waiting for v2 to be applied"
    assert status["lastChangeTime"] == at(-2)


@pytest.mark.parametrize(
    ("applied", "expected"),
    [
        ("v1@sha256:111", "Pending"),
        ("v20@sha256:222", "Pending"),
        (None, "Pending"),
        ("v2@sha256:abc", "Healthy"),
    ],
)
def test_oci_repository_applied_revision(client, applied, expected):
    ks = kustomization(annotations={}, substitute={}, source="app-repo", applied=applied)
    body = request(healthcheck(status=dict(FRESH_PENDING)), rollout(), ks, oci_repository())
    status = sync(client, body)
    assert status["status"] == expected
    if expected == "Pending":
        assert status["message"] == "waiting for v2 to be applied"


def test_oci_repository_not_driven_by_the_rollout_is_not_checked(client):
    ks = kustomization(annotations={}, substitute={}, source="app-repo", applied="v1@sha256:111")
    body = request(
        healthcheck(status=dict(FRESH_PENDING)), rollout(), ks, oci_repository(rollout_name="other")
    )
    assert sync(client, body)["status"] == "Healthy"


def test_substitute_from_annotations_with_several_rollouts(client):
    annotations = {
        "rollout.kuberik.com/substitute.VERSION.from": "web",
        "rollout.kuberik.com/substitute.API_VERSION.from": "api",
    }
    ks = kustomization(annotations=annotations, substitute={"VERSION": "v2", "API_VERSION": "a1"})
    web, api = rollout(), rollout(name="api", tag="a2")
    status = sync(client, request(healthcheck(status=dict(FRESH_PENDING)), web, api, ks))
    assert status["message"] == "waiting for a2 to be applied"
    ks["spec"]["postBuild"]["substitute"]["API_VERSION"] = "a2"
    assert sync(client, request(healthcheck(status=dict(FRESH_PENDING)), web, api, ks))["status"] == "Healthy"


def test_rollouts_not_selecting_the_check_do_not_hold_it_back(client):
    annotations = {
        "rollout.kuberik.com/substitute.VERSION.from": "web",
        "rollout.kuberik.com/substitute.OTHER.from": "other",
    }
    ks = kustomization(annotations=annotations, substitute={"VERSION": "v2", "OTHER": "o1"})
    check = healthcheck(status=dict(FRESH_PENDING))
    other = rollout(name="other", selector={"matchLabels": {"app": "other"}}, tag="o9")
    assert sync(client, request(check, rollout(), other, ks))["status"] == "Healthy"
    selecting_other = rollout(name="other", tag="o9")
    assert (
        sync(client, request(check, rollout(), selecting_other, ks))["message"]
        == "waiting for o9 to be applied"
    )


def test_rollout_of_another_namespace_does_not_drive_the_kustomization(client):
    cross = rollout(namespace="deploy", selector=CROSS, tag="v7", timestamp=at(-30))
    body = request(
        healthcheck(status=dict(FRESH_PENDING)), cross, kustomization(), namespace("team", {"env": "prod"})
    )
    assert sync(client, body)["status"] == "Healthy"


# The rules of docs/spec/v1alpha1/healthcheck.md against Kustomizations shaped as
# kustomize-controller writes them are in tests/test_healthcheck_flux.py.


def test_error_time_kept_when_healthy_again(client):
    old = {"status": "Unhealthy", "message": "boom", "lastChangeTime": at(-9), "lastErrorTime": at(-6)}
    status = sync(client, request(healthcheck(status=old), kustomization()))
    assert status == {
        "status": "Healthy",
        "message": READY["message"],
        "lastChangeTime": at(0),
        "lastErrorTime": at(-6),
    }


def test_missing_kustomization_is_unhealthy(client):
    check = healthcheck(target="other/gone", status=dict(FRESH_PENDING))
    status = sync(client, request(check, kustomization(), namespace("other", SHARED)))
    assert status == {
        "status": "Unhealthy",
        "message": "Kustomization other/gone not found",
        "lastChangeTime": at(0),
    }


def test_kustomization_in_another_namespace(client):
    ks = kustomization(namespace="apps", annotations={})
    status = sync(client, request(healthcheck(target="apps/app"), ks, namespace("apps", SHARED)))
    assert status["status"] == "Healthy"


def test_kustomization_being_deleted_is_pending(client):
    ks = kustomization()
    ks["metadata"]["deletionTimestamp"] = at(-1)
    assert sync(client, request(healthcheck(), ks))["message"] == "Kustomization team/app is being deleted"


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (None, "is not set"),
        ("", "is empty"),
        ("a/b/c", "is invalid"),
        ("/app", "is invalid"),
        ("Bad_Name", "is invalid"),
    ],
)
def test_malformed_annotation_is_unhealthy(client, target, words):
    status = sync(client, request(healthcheck(target=target), kustomization()))
    assert status["status"] == "Unhealthy"
    assert "healthcheck.kuberik.com/kustomization" in status["message"]
    assert words in status["message"]


def test_reset_and_assessment_in_one_sync_old_revision(client):
    old = {"status": "Unhealthy", "message": "x", "lastChangeTime": at(-60), "lastErrorTime": at(-50)}
    ks = kustomization(substitute={"VERSION": "v1"})
    status = sync(client, request(healthcheck(status=old), rollout(timestamp=at(-1)), ks))
    assert status == {"status": "Pending", "message": "waiting for v2 to be applied", "lastChangeTime": at(0)}


def test_reset_and_assessment_in_one_sync_already_applied(client):
    old = {"status": "Healthy", "message": "x", "lastChangeTime": at(-60), "lastErrorTime": at(-50)}
    status = sync(client, request(healthcheck(status=old), rollout(timestamp=at(-1)), kustomization()))
    assert status == {"status": "Healthy", "message": READY["message"], "lastChangeTime": at(0)}


def test_unknown_status_fields_are_dropped(client):
    old = {
        **FRESH_PENDING,
        "status": "Healthy",
        "lastChangeTime": at(-3),
        "extra": 1,
        "observedGeneration": 4,
    }
    status = sync(client, request(healthcheck(status=old), kustomization()))
    assert status == {
        "status": "Healthy",
        "message": READY["message"],
        "lastChangeTime": at(-3),
    }


# --- envelopes and customize -----------------------------------------------------------------


def test_v1_envelope_is_accepted(client):
    body = request(
        healthcheck(cls="external", target=None, status=dict(HEALTHY_OLD)), rollout(), envelope="object"
    )
    assert sync(client, body)["status"] == "Pending"
    assert sync(client, request(healthcheck(), kustomization(), envelope="object"))["status"] == "Healthy"


def test_not_a_request_is_400(client):
    assert client.post("/healthcheck/sync", json=[1, 2]).status_code == 400
    assert client.post("/healthcheck/sync", json={"parent": {"metadata": {}}}).status_code == 400
    assert client.post("/healthcheck/customize", json={"foo": 1}).status_code == 400


def customize(client, check: dict) -> list[dict]:
    answer = post(client, "/healthcheck/customize", {"controller": {}, "parent": check})
    assert set(answer) == {"relatedResources"}
    rules = answer["relatedResources"]
    for rule in rules:
        assert not (rule.get("names") and ("labelSelector" in rule or "namespaceSelector" in rule))
        assert not ("namespace" in rule and "namespaceSelector" in rule)
    return rules


# Rollouts of the check's namespace, and those anywhere that carry the cross-namespace label
# (never every Rollout of the cluster: docs/scale.md)
ROLLOUT_RULES = [
    {"apiVersion": "kuberik.com/v1alpha1", "resource": "rollouts", "namespace": "team"},
    {
        "apiVersion": "kuberik.com/v1alpha1",
        "resource": "rollouts",
        "labelSelector": {"matchLabels": {"rollout.kuberik.com/cross-namespace-health": "true"}},
    },
]
NAMESPACE_RULE = {"apiVersion": "v1", "resource": "namespaces", "names": ["team"]}


def test_customize_external_class(client):
    assert customize(client, healthcheck(cls="external", target="ignored")) == [
        *ROLLOUT_RULES,
        NAMESPACE_RULE,
    ]


@pytest.mark.parametrize(("target", "ks_namespace"), [("app", "team"), ("apps/app", "apps")])
def test_customize_kustomization_class(client, target, ks_namespace):
    names = sorted({"team", ks_namespace}, key=lambda ns: ns != "team")
    assert customize(client, healthcheck(target=target)) == [
        *ROLLOUT_RULES,
        {**NAMESPACE_RULE, "names": names},
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "resource": "kustomizations",
            "namespace": ks_namespace,
            "names": ["app"],
        },
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "resource": "ocirepositories",
            "namespace": ks_namespace,
        },
    ]


@pytest.mark.parametrize("target", [None, "", "a/b/c"])
def test_customize_with_a_malformed_annotation(client, target):
    assert customize(client, healthcheck(target=target)) == [*ROLLOUT_RULES, NAMESPACE_RULE]
