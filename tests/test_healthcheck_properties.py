"""Property tests of the HealthCheck sync on arbitrary (well-typed, often odd) observed state.

Whatever the inputs: no exception, a schema-valid status, and a fixed point.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from hooks.healthcheck.hook import sync
from tests.healthcheck_objects import (
    NOW,
    at,
    condition,
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

times = st.one_of(st.none(), st.just("garbage"), st.integers(-90, 30).map(at))
tags = st.sampled_from(["v1", "v2", "v20"])
statuses = st.sampled_from(["True", "False", "Unknown"])
reasons = st.sampled_from(
    ["ReconciliationSucceeded", "HealthCheckFailed", "BuildFailed", "Progressing", "Other"]
)


@st.composite
def conditions(draw):
    chosen = []
    for type_ in draw(st.lists(st.sampled_from(["Ready", "Reconciling", "Stalled"]), unique=True)):
        when = draw(st.one_of(st.just("garbage"), st.integers(-90, 0).map(at)))
        chosen.append(
            condition(type_, draw(statuses), draw(reasons), draw(st.sampled_from(["", "msg"])), when)
        )
    return chosen


@st.composite
def old_statuses(draw):
    old = {}
    if draw(st.booleans()):
        old["status"] = draw(st.sampled_from(["Healthy", "Unhealthy", "Pending"]))
    if draw(st.booleans()):
        old["message"] = "old"
    for key in ("lastChangeTime", "lastErrorTime"):
        value = draw(times)
        if value is not None:
            old[key] = value
    return old


@st.composite
def requests(draw):
    check = healthcheck(
        cls=draw(st.sampled_from(["kustomization", "external", None])),
        target=draw(st.sampled_from(["app", "team/app", "other/app", "a/b/c", "", None])),
        status=draw(old_statuses()),
    )
    related = [namespace("team", draw(st.sampled_from([{}, {"env": "prod"}])))]
    for name in draw(st.lists(st.sampled_from(["web", "api"]), unique=True)):
        selector = draw(
            st.sampled_from(
                [
                    None,
                    {},
                    {
                        "selector": {"matchLabels": {"app": "web"}},
                        "namespaceSelector": {"matchLabels": {"env": "prod"}},
                    },
                    {"matchExpressions": [{"key": "app", "operator": "Bogus"}]},
                ]
            )
        )
        related.append(
            rollout(
                name=name,
                namespace=draw(st.sampled_from(["team", "deploy"])),
                selector=selector,
                tag=draw(st.one_of(st.none(), tags)),
                timestamp=draw(times) or at(-10),
                retry=draw(times),
            )
        )
    if draw(st.booleans()):
        ks = kustomization(
            generation=3,
            observed=draw(st.sampled_from([3, 2, None])),
            conditions=draw(conditions()),
            substitute={"VERSION": draw(tags)},
            applied=draw(st.one_of(st.none(), tags.map(lambda t: f"{t}@sha256:1"))),
            source=draw(st.sampled_from([None, "app-repo"])),
        )
        if draw(st.booleans()):
            ks["metadata"]["deletionTimestamp"] = at(-1)
        related.append(ks)
        related.append(oci_repository())
    return request(check, *related)


@settings(max_examples=300, deadline=None)
@given(requests())
def test_sync_is_a_schema_valid_fixed_point(body):
    ctx = SimpleNamespace(now=NOW, log={})
    status = sync(body, ctx)["status"]
    if status is None:
        return
    jsonschema.validate(status, SCHEMA)
    for later in (NOW, NOW + timedelta(hours=1)):  # nothing changes with time alone
        again = sync(with_status(body, status), SimpleNamespace(now=later, log={}))["status"]
        assert again is None or again == status
