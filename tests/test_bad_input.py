"""A bad-input matrix over HTTP: every hook route, fed bodies that are not hook requests and
well-formed requests full of odd objects.

Expected answers:

- a body that is not a Metacontroller request (malformed JSON, not an object, no parent, a
  parent without metadata.name, related/children maps of the wrong shape) ⇒ 400 with a JSON
  error; a body over 32 MiB ⇒ 413;
- a well-formed /rollout/sync request, however odd its objects ⇒ 200 with a clear condition
  and every persisted history entry that fits in versionHistoryLimit still present, in order,
  after any new entries (a 500 would also be safe, but none of these cases needs one);
- the other hooks (HealthCheck, schedules, customize) never answer 500 to a well-formed
  request with odd objects.

The number of cases is in the test's name (`test_bad_input_matrix_<N>_cases`) and every case
id carries its number.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from hooks.app import HOOKS, MAX_BODY_BYTES, create_app
from hooks.k8s import get_condition
from hooks.rollout.annotations import ONE_SHOT
from tests.crd_schema import errors_of, validator
from tests.rollout_world import RecordingActuator

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NS = "shop"
ROLLOUT_SYNC = "/rollout/sync"

Mutation = Callable[[dict], None]


@dataclass(frozen=True)
class Case:
    """One row of the matrix: a route, a body, and what must come back."""

    name: str
    path: str
    body: bytes | Mutation  # raw bytes, or a change to the baseline request of the route
    expect: str  # "400" | "413" | "rollout-ok" | "invalid-spec:<field>" | "no-500"


# --- baseline requests ---------------------------------------------------------------------

HISTORY = [
    {
        "id": 3,
        "version": {"tag": "1.2.0", "discoveredAt": "2026-03-01T09:00:00Z"},
        "timestamp": "2026-03-01T10:00:00Z",
        "message": "Automatic deployment",
        "triggeredBy": {"kind": "System", "name": "rollout-controller"},
        "bakeStatus": "Succeeded",
        "bakeStatusMessage": "Bake completed successfully.",
        "bakeStartTime": "2026-03-01T10:00:00Z",
        "bakeEndTime": "2026-03-01T10:10:00Z",
    },
    {
        "id": 2,
        "version": {"tag": "1.1.0", "discoveredAt": "2026-02-28T09:00:00Z"},
        "timestamp": "2026-02-28T10:00:00Z",
        "message": "Rollback for INC-7",
        "triggeredBy": {"kind": "User", "name": "alice"},
        "bakeStatus": "Failed",
        "bakeStatusMessage": "A HealthCheck reported an error after bake started.",
        "failedHealthChecks": [{"name": "smoke", "namespace": NS, "message": "5xx"}],
    },
    {
        "id": 1,
        "version": {"tag": "1.0.0"},
        "timestamp": "2026-02-27T10:00:00Z",
        "message": "Automatic deployment",
        "triggeredBy": {"kind": "System", "name": "rollout-controller"},
        "bakeStatus": "Succeeded",
        "bakeStatusMessage": "No bake configured.",
    },
]


def _obj(api_version: str, kind: str, name: str, **fields: Any) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": NS}, **fields}


def rollout_request() -> dict:
    """A healthy Rollout with three history entries; the ImagePolicy announces 1.3.0."""
    return {
        "controller": {"metadata": {"name": "rollouts.kuberik.com"}},
        "parent": {
            "apiVersion": "kuberik.com/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "app", "namespace": NS, "generation": 4, "annotations": {}},
            "spec": {
                "releasesImagePolicy": {"name": "app"},
                "healthCheckSelector": {"matchLabels": {"app": "app"}},
            },
            "status": {
                "availableReleases": [
                    {"tag": "1.0.0", "discoveredAt": "2026-02-27T09:00:00Z"},
                    {"tag": "1.1.0", "discoveredAt": "2026-02-28T09:00:00Z"},
                    {"tag": "1.2.0", "discoveredAt": "2026-03-01T09:00:00Z"},
                ],
                "history": copy.deepcopy(HISTORY),
                "acknowledgedAnnotations": {},
            },
        },
        "children": {},
        "related": {
            "ImagePolicy.image.toolkit.fluxcd.io/v1": {
                f"{NS}/app": _obj(
                    "image.toolkit.fluxcd.io/v1",
                    "ImagePolicy",
                    "app",
                    spec={"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=0.0.0"}}},
                    status={"latestRef": {"name": "ghcr.io/acme/app", "tag": "1.3.0"}},
                )
            },
            "RolloutGate.kuberik.com/v1alpha1": {
                f"{NS}/open": _obj(
                    "kuberik.com/v1alpha1", "RolloutGate", "open", spec={"rolloutRef": {"name": "app"}}
                )
            },
            "HealthCheck.kuberik.com/v1alpha1": {
                f"{NS}/smoke": {
                    **_obj("kuberik.com/v1alpha1", "HealthCheck", "smoke", spec={"class": "external"}),
                    "status": {"status": "Healthy", "lastChangeTime": "2026-03-01T10:00:00Z"},
                }
            },
            "OCIRepository.source.toolkit.fluxcd.io/v1": {
                f"{NS}/manifests": _obj(
                    "source.toolkit.fluxcd.io/v1",
                    "OCIRepository",
                    "manifests",
                    spec={"interval": "5m", "url": "oci://ghcr.io/acme/app", "ref": {"tag": "1.2.0"}},
                )
            },
            "Kustomization.kustomize.toolkit.fluxcd.io/v1": {
                f"{NS}/app": _obj(
                    "kustomize.toolkit.fluxcd.io/v1",
                    "Kustomization",
                    "app",
                    spec={"interval": "10m", "path": "./", "postBuild": {"substitute": {"APP": "1.2.0"}}},
                )
            },
        },
        "finalizing": False,
    }


def _fix_annotations(req: dict) -> None:
    req["parent"]["metadata"]["annotations"] = {"rollout.kuberik.com/rollout": "app"}


def healthcheck_request() -> dict:
    rollout = rollout_request()["parent"]
    return {
        "controller": {"metadata": {"name": "healthchecks.kuberik.com"}},
        "object": {
            **_obj("kuberik.com/v1alpha1", "HealthCheck", "smoke", spec={"class": "kustomization"}),
            "status": {"status": "Healthy", "lastChangeTime": "2026-03-01T10:00:00Z"},
        },
        "attachments": {},
        "related": {
            "Rollout.kuberik.com/v1alpha1": {f"{NS}/app": rollout},
            "Namespace.v1": {NS: {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}},
        },
    }


def schedule_request(cluster: bool = False) -> dict:
    kind = "ClusterRolloutSchedule" if cluster else "RolloutSchedule"
    metadata: dict[str, Any] = {"name": "freeze"} if cluster else {"name": "freeze", "namespace": NS}
    return {
        "controller": {"metadata": {"name": f"{kind.lower()}s.kuberik.com"}},
        "parent": {
            "apiVersion": "kuberik.com/v1alpha1",
            "kind": kind,
            "metadata": metadata,
            "spec": {
                "rolloutSelector": {"matchLabels": {"app": "app"}},
                "rules": [{"name": "nights", "timeRange": {"start": "22:00", "end": "06:00"}}],
                "timezone": "Europe/Berlin",
                "action": "Deny",
            },
        },
        "children": {},
        "related": {"Rollout.kuberik.com/v1alpha1": {f"{NS}/app": rollout_request()["parent"]}},
    }


BASELINES: dict[str, Callable[[], dict]] = {
    "/rollout/customize": rollout_request,
    "/rollout/sync": rollout_request,
    "/healthcheck/customize": healthcheck_request,
    "/healthcheck/sync": healthcheck_request,
    "/rolloutschedule/customize": schedule_request,
    "/rolloutschedule/sync": schedule_request,
    "/clusterrolloutschedule/customize": lambda: schedule_request(cluster=True),
    "/clusterrolloutschedule/sync": lambda: schedule_request(cluster=True),
}
assert set(BASELINES) == set(HOOKS)


def parent_key(req: dict) -> str:
    return "parent" if "parent" in req else "object"


# --- mutation helpers ----------------------------------------------------------------------


def set_at(path: tuple, value: Any) -> Mutation:
    """Set req[path...] = value, creating dicts on the way (a `...` step means the parent)."""

    def mutate(req: dict) -> None:
        steps = [parent_key(req) if step == "..." else step for step in path]
        node = req
        for step in steps[:-1]:
            if not isinstance(node.get(step), dict):
                node[step] = {}
            node = node[step]
        node[steps[-1]] = value

    return mutate


def drop(path: tuple) -> Mutation:
    def mutate(req: dict) -> None:
        steps = [parent_key(req) if step == "..." else step for step in path]
        node = req
        for step in steps[:-1]:
            node = node[step]
        node.pop(steps[-1], None)

    return mutate


def related_obj(group: str, key: str, *path: str, value: Any = None, remove: bool = False) -> Mutation:
    """Change one field of one related object of the Rollout request."""

    def mutate(req: dict) -> None:
        node = req["related"][group][key]
        for step in path[:-1]:
            if not isinstance(node.get(step), dict):
                node[step] = {}
            node = node[step]
        if remove:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value

    return mutate


def add_related(group: str, key: str, obj: Any) -> Mutation:
    def mutate(req: dict) -> None:
        req.setdefault("related", {}).setdefault(group, {})[key] = obj

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(req: dict) -> None:
        for mutation in mutations:
            mutation(req)

    return mutate


POLICY = "ImagePolicy.image.toolkit.fluxcd.io/v1"
GATES = "RolloutGate.kuberik.com/v1alpha1"
CHECKS = "HealthCheck.kuberik.com/v1alpha1"
OCI = "OCIRepository.source.toolkit.fluxcd.io/v1"
KS = "Kustomization.kustomize.toolkit.fluxcd.io/v1"
ANNOTATED_OCI = both(
    related_obj(
        OCI, f"{NS}/manifests", "metadata", "annotations", value={"rollout.kuberik.com/rollout": "app"}
    )
)


# --- the matrix ----------------------------------------------------------------------------

HUGE = b'{"parent": {"metadata": {"name": "x"}}, "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'

NOT_REQUESTS: list[tuple[str, bytes]] = [
    ("malformed-json-truncated", b'{"parent": '),
    ("malformed-json-empty-body", b""),
    ("malformed-json-text", b"not json at all"),
    ("malformed-json-invalid-utf8", b'{"parent": "\xff\xfe"}'),
    ("malformed-json-two-documents", b'{"a": 1}{"b": 2}'),
    ("malformed-json-nan", b'{"parent": NaN}'),
    ("malformed-json-trailing-comma", b'{"parent": {},}'),
    ("non-object-list", b"[1, 2]"),
    ("non-object-string", b'"text"'),
    ("non-object-number", b"42"),
    ("non-object-null", b"null"),
    ("non-object-bool", b"true"),
    ("missing-parent-empty", b"{}"),
    ("missing-parent-only-children", b'{"children": {}, "related": {}}'),
    ("parent-null", b'{"parent": null}'),
    ("parent-list", b'{"parent": []}'),
    ("parent-string", b'{"parent": "app"}'),
    ("parent-without-metadata", b'{"parent": {"kind": "Rollout"}}'),
    ("parent-metadata-list", b'{"parent": {"metadata": []}}'),
    ("parent-without-name", b'{"parent": {"metadata": {"namespace": "shop"}}}'),
    ("parent-name-number", b'{"parent": {"metadata": {"name": 5}}}'),
    ("parent-name-null", b'{"parent": {"metadata": {"name": null}}}'),
]

WRONG_SHAPES: list[tuple[str, Mutation]] = [
    ("related-list", set_at(("related",), [])),
    ("related-string", set_at(("related",), "objects")),
    (
        "related-group-list",
        set_at(("related", "Rollout.kuberik.com/v1alpha1"), [{"metadata": {"name": "x"}}]),
    ),
    ("related-group-number", set_at(("related", "Namespace.v1"), 5)),
    ("children-list", set_at(("children",), [])),
    ("children-group-string", set_at(("children", "RolloutGate.kuberik.com/v1alpha1"), "gate")),
]


def _generic_cases() -> list[Case]:
    cases = []
    for path in sorted(HOOKS):
        cases += [Case(name, path, body, "400") for name, body in NOT_REQUESTS]
        cases += [Case(name, path, mutation, "400") for name, mutation in WRONG_SHAPES]
        cases.append(Case("huge-body-over-32MiB", path, HUGE, "413"))
        odd = "rollout-ok" if path == ROLLOUT_SYNC else "no-500"
        cases += [
            Case(
                "related-entries-not-objects",
                path,
                add_related("Rollout.kuberik.com/v1alpha1", "x/y", 5),
                odd,
            ),
            Case("related-null-group", path, set_at(("related", "Namespace.v1"), None), odd),
            Case("unknown-top-level-fields", path, set_at(("surprise",), {"a": [1, 2]}), odd),
            Case("finalizing-true", path, set_at(("finalizing",), True), odd),
            Case("parent-spec-null", path, set_at(("...", "spec"), None), "no-500"),
            Case("parent-spec-list", path, set_at(("...", "spec"), [1]), "no-500"),
            Case("parent-status-string", path, set_at(("...", "status"), "broken"), "no-500"),
            Case("parent-annotations-list", path, set_at(("...", "metadata", "annotations"), ["a"]), odd),
            Case("parent-labels-garbage", path, set_at(("...", "metadata", "labels"), {"a": 5}), odd),
            Case("parent-namespace-number", path, set_at(("...", "metadata", "namespace"), 7), "no-500"),
            Case("parent-unicode-name", path, set_at(("...", "metadata", "name"), "ápp-✓"), "no-500"),
        ]
    return cases


# Rollout spec fields, each with several wrong values: Ready=False/InvalidSpec naming the field.
WRONG_SPEC: dict[str, list[Any]] = {
    "spec": [None, [], "app", 5],
    "spec.releasesImagePolicy.name": [None, "app", [], {"name": 5}, {"name": ""}, {}],
    "spec.wantedVersion": [5, [], {"tag": "1.0.0"}, True],
    "spec.versionHistoryLimit": [0, -1, "10", 1.5, True, []],
    "spec.releaseUpdateInterval": ["5 minutes", 5, "", "0s", "-5m", [], "1d"],
    "spec.bakeTime": ["ten minutes", 10, "", "1d", {}, "5m30"],
    "spec.deployTimeout": ["soon", 30, "", "2w", ["5m"]],
    "spec.healthCheckSelector": [
        "app=app",
        [],
        {"matchLabels": "app"},
        {"matchLabels": {"app": 1}},
        {"matchExpressions": {"key": "app", "operator": "Exists"}},
        {"matchExpressions": [{"key": "app", "operator": "Near"}]},
        {"matchExpressions": [{"key": "app", "operator": "In"}]},
        {"matchLabels": {"a": "b"}, "selector": {}},
        {"selector": "app"},
        {"selector": {"matchLabels": {"a": "b"}}, "namespaceSelector": []},
    ],
    "spec.availableReleasesRetentionDays": [0, "7", 1.5, False, -3],
    "spec.availableReleasesMinCount": [0, "30", 2.5, True, -1],
}


def _spec_cases() -> list[Case]:
    cases = []
    for field, values in WRONG_SPEC.items():
        for number, value in enumerate(values):
            if field == "spec":
                mutation = set_at(("parent", "spec"), value)
            elif field == "spec.releasesImagePolicy.name":
                mutation = set_at(("parent", "spec", "releasesImagePolicy"), value)
            else:
                mutation = set_at(("parent", "spec", field.split(".", 1)[1]), value)
            cases.append(Case(f"{field}-wrong-{number}", ROLLOUT_SYNC, mutation, f"invalid-spec:{field}"))
    return cases


LONG = "x" * 100_000


def _annotation_cases() -> list[Case]:
    ann = ("parent", "metadata", "annotations")
    cases = []
    for key in ONE_SHOT:
        short = key.rsplit("/", 1)[1]
        for label, value in (
            ("number", 5),
            ("null", None),
            ("object", {"v": 1}),
            ("list", ["1.3.0"]),
            ("empty", ""),
            ("unicode", "värsion-✓-🚀"),
            ("very-long", LONG),
        ):
            cases.append(
                Case(f"annotation-{short}-{label}", ROLLOUT_SYNC, set_at((*ann, key), value), "rollout-ok")
            )
    cases += [
        Case("annotations-string", ROLLOUT_SYNC, set_at(ann, "force-deploy=1.3.0"), "rollout-ok"),
        Case("annotations-null", ROLLOUT_SYNC, set_at(ann, None), "rollout-ok"),
        Case(
            "annotation-unicode-key", ROLLOUT_SYNC, set_at((*ann, "rollout.kuberik.com/✓"), "x"), "rollout-ok"
        ),
        Case("annotation-empty-key", ROLLOUT_SYNC, set_at((*ann, ""), "x"), "rollout-ok"),
        Case(
            "wanted-version-over-32k",
            ROLLOUT_SYNC,
            set_at(("parent", "spec", "wantedVersion"), "9" * 40_000),
            "rollout-ok",
        ),
    ]
    return cases


def _related_cases() -> list[Case]:
    policy, gate, check = f"{NS}/app", f"{NS}/open", f"{NS}/smoke"
    oci, ks = f"{NS}/manifests", f"{NS}/app"
    rows: list[tuple[str, Mutation]] = [
        ("imagepolicy-without-status", related_obj(POLICY, policy, "status", remove=True)),
        ("imagepolicy-status-null", related_obj(POLICY, policy, "status", value=None)),
        ("imagepolicy-status-list", related_obj(POLICY, policy, "status", value=[])),
        ("imagepolicy-latestref-string", related_obj(POLICY, policy, "status", "latestRef", value="1.3.0")),
        ("imagepolicy-latestref-list", related_obj(POLICY, policy, "status", "latestRef", value=["1.3.0"])),
        ("imagepolicy-latestref-empty", related_obj(POLICY, policy, "status", "latestRef", value={})),
        ("imagepolicy-tag-number", related_obj(POLICY, policy, "status", "latestRef", "tag", value=130)),
        ("imagepolicy-tag-empty", related_obj(POLICY, policy, "status", "latestRef", "tag", value="")),
        ("imagepolicy-digest-number", related_obj(POLICY, policy, "status", "latestRef", "digest", value=7)),
        ("imagepolicy-latestimage-garbage", related_obj(POLICY, policy, "status", value={"latestImage": 5})),
        ("imagepolicy-semver-string", related_obj(POLICY, policy, "spec", "policy", value="semver")),
        ("imagepolicy-without-metadata", related_obj(POLICY, policy, "metadata", remove=True)),
        ("imagepolicy-other-namespace", related_obj(POLICY, policy, "metadata", "namespace", value="other")),
        ("gate-passing-string", related_obj(GATES, gate, "spec", "passing", value="false")),
        ("gate-passing-number", related_obj(GATES, gate, "spec", "passing", value=0)),
        ("gate-passing-null", related_obj(GATES, gate, "spec", "passing", value=None)),
        ("gate-allowed-string", related_obj(GATES, gate, "spec", "allowedVersions", value="1.3.0")),
        ("gate-allowed-numbers", related_obj(GATES, gate, "spec", "allowedVersions", value=[1, 3])),
        ("gate-allowed-object", related_obj(GATES, gate, "spec", "allowedVersions", value={"1.3.0": True})),
        ("gate-rolloutref-string", related_obj(GATES, gate, "spec", "rolloutRef", value="app")),
        ("gate-spec-null", related_obj(GATES, gate, "spec", value=None)),
        ("gate-without-metadata", related_obj(GATES, gate, "metadata", remove=True)),
        ("gate-name-number", related_obj(GATES, gate, "metadata", "name", value=5)),
        (
            "gate-status-garbage",
            related_obj(GATES, gate, "status", value={"passing": "no", "allowedVersions": 5}),
        ),
        ("check-status-garbage", related_obj(CHECKS, check, "status", "status", value="Sort of")),
        ("check-status-number", related_obj(CHECKS, check, "status", "status", value=1)),
        ("check-status-null", related_obj(CHECKS, check, "status", value=None)),
        (
            "check-change-time-words",
            related_obj(CHECKS, check, "status", "lastChangeTime", value="yesterday"),
        ),
        (
            "check-change-time-number",
            related_obj(CHECKS, check, "status", "lastChangeTime", value=1700000000),
        ),
        (
            "check-change-time-impossible",
            related_obj(CHECKS, check, "status", "lastChangeTime", value="2026-13-45T99:00:00Z"),
        ),
        ("check-error-time-garbage", related_obj(CHECKS, check, "status", "lastErrorTime", value="soon")),
        ("check-error-time-list", related_obj(CHECKS, check, "status", "lastErrorTime", value=["x"])),
        (
            "check-error-time-far-future",
            related_obj(CHECKS, check, "status", "lastErrorTime", value="9999-12-31T23:59:59Z"),
        ),
        (
            "check-error-time-offset",
            related_obj(CHECKS, check, "status", "lastErrorTime", value="2026-03-02T10:00:00+01:00"),
        ),
        (
            "check-unhealthy-message-over-32k",
            related_obj(CHECKS, check, "status", value={"status": "Unhealthy", "message": "e" * 40_000}),
        ),
        ("check-message-number", related_obj(CHECKS, check, "status", "message", value=500)),
        ("check-labels-garbage", related_obj(CHECKS, check, "metadata", "labels", value=["app"])),
        ("check-without-metadata", related_obj(CHECKS, check, "metadata", remove=True)),
        (
            "check-unhealthy-unicode",
            related_obj(
                CHECKS,
                check,
                "status",
                value={
                    "status": "Unhealthy",
                    "message": "💥" * 1000,
                    "lastErrorTime": "2026-03-02T09:00:00Z",
                },
            ),
        ),
        ("oci-ref-string", both(ANNOTATED_OCI, related_obj(OCI, oci, "spec", "ref", value="1.2.0"))),
        ("oci-tag-number", both(ANNOTATED_OCI, related_obj(OCI, oci, "spec", "ref", "tag", value=120))),
        ("oci-spec-null", both(ANNOTATED_OCI, related_obj(OCI, oci, "spec", value=None))),
        ("oci-semver-set", both(ANNOTATED_OCI, related_obj(OCI, oci, "spec", "ref", "semver", value=">=1"))),
        ("oci-without-metadata", related_obj(OCI, oci, "metadata", remove=True)),
        (
            "oci-annotation-number",
            related_obj(OCI, oci, "metadata", "annotations", value={"rollout.kuberik.com/rollout": 5}),
        ),
        ("oci-annotations-list", related_obj(OCI, oci, "metadata", "annotations", value=["rollout"])),
        ("oci-name-number", both(ANNOTATED_OCI, related_obj(OCI, oci, "metadata", "name", value=5))),
    ]
    ks_annotations = {"rollout.kuberik.com/substitute.APP.from": "app"}
    annotate_ks = related_obj(KS, ks, "metadata", "annotations", value=ks_annotations)
    for label, value in (
        ("number", 5),
        ("bool", True),
        ("null", None),
        ("object", {"v": "1"}),
        ("list", ["1"]),
    ):
        rows.append(
            (
                f"kustomization-substitute-{label}",
                both(annotate_ks, related_obj(KS, ks, "spec", "postBuild", "substitute", "APP", value=value)),
            )
        )
    rows += [
        (
            "kustomization-substitute-string",
            both(annotate_ks, related_obj(KS, ks, "spec", "postBuild", "substitute", value="APP=1")),
        ),
        (
            "kustomization-postbuild-null",
            both(annotate_ks, related_obj(KS, ks, "spec", "postBuild", value=None)),
        ),
        ("kustomization-spec-list", both(annotate_ks, related_obj(KS, ks, "spec", value=[]))),
        (
            "kustomization-bad-variable",
            related_obj(
                KS, ks, "metadata", "annotations", value={"rollout.kuberik.com/substitute.1-BAD.from": "app"}
            ),
        ),
        (
            "kustomization-legacy-without-variable",
            related_obj(KS, ks, "metadata", "annotations", value={"rollout.kuberik.com/rollout": "app"}),
        ),
        (
            "kustomization-legacy-variable-number",
            related_obj(
                KS,
                ks,
                "metadata",
                "annotations",
                value={"rollout.kuberik.com/rollout": "app", "rollout.kuberik.com/substitute": 5},
            ),
        ),
        ("kustomization-without-metadata", related_obj(KS, ks, "metadata", remove=True)),
        ("kustomization-metadata-string", related_obj(KS, ks, "metadata", value="app")),
        ("namespace-objects-garbage", add_related("Namespace.v1", "x", {"metadata": {"labels": 5}})),
        ("unknown-kind-group", add_related("Widget.example.com/v1", "x", {"kind": 5, "metadata": None})),
        ("object-kind-number", add_related(GATES, "k", {"kind": 5, "metadata": {"name": "k"}, "spec": {}})),
    ]
    return [Case(name, ROLLOUT_SYNC, mutation, "rollout-ok") for name, mutation in rows]


def _status_cases() -> list[Case]:
    status = ("parent", "status")
    valid = copy.deepcopy(HISTORY)
    rows: list[tuple[str, Any]] = [
        ("history", "not a list"),
        ("history", {"0": valid[0]}),
        ("history", [5, "x", None, *valid]),
        ("history", [valid[0], [1], valid[1], {"version": "1.0.0"}, valid[2]]),
        ("history", [{**valid[0], "id": "3"}, *valid[1:]]),
        ("history", [{**valid[0], "id": -4}, *valid[1:]]),
        ("history", [{**valid[0], "version": {"tag": 120}}, *valid[1:]]),
        ("history", [{**valid[0], "version": None}, *valid[1:]]),
        ("history", [{**valid[0], "bakeStatus": "Weird"}, *valid[1:]]),
        ("history", [{**valid[0], "bakeStatus": "InProgress", "bakeStartTime": "garbage"}, *valid[1:]]),
        ("history", [{**valid[0], "bakeStatus": "Deploying", "timestamp": 5}, *valid[1:]]),
        ("history", [{**valid[0], "bakeStatus": "Failed", "failedHealthChecks": "x"}, *valid[1:]]),
        ("history", [{}, *valid]),
        ("history", [{"id": 9, "version": {"tag": "0.1.0"}}, *valid]),
        ("history", [*valid, *valid]),
        ("availableReleases", "x"),
        ("availableReleases", [5, {"tag": 5}, {"no": "tag"}, None, {"tag": "1.2.0"}]),
        ("availableReleases", [{"tag": "1.2.0"}, {"tag": "1.2.0", "digest": "sha256:dup"}]),
        ("availableReleases", [{"tag": "1.2.0", "discoveredAt": "yesterday"}]),
        ("availableReleases", [{"tag": f"0.0.{i}", "discoveredAt": 5} for i in range(1100)]),
        ("conditions", "x"),
        ("conditions", [5, None]),
        ("conditions", [{"type": 5}]),
        ("conditions", [{"type": "Ready", "status": "Maybe", "lastTransitionTime": "garbage"}]),
        ("conditions", [{"type": "BakeFailureDisabled", "status": "True", "reason": 5, "message": None}]),
        ("acknowledgedAnnotations", ["rollout.kuberik.com/retry"]),
        ("acknowledgedAnnotations", "x"),
        ("acknowledgedAnnotations", {"rollout.kuberik.com/force-deploy": 5}),
        ("targets", [5, {"state": "Error", "errorSince": "garbage"}]),
        ("targets", "x"),
        ("gates", {"a": 1}),
        ("releaseCandidates", [5, None]),
    ]
    return [
        Case(f"status-{field}-garbage-{number}", ROLLOUT_SYNC, set_at((*status, field), value), "rollout-ok")
        for number, (field, value) in enumerate(rows)
    ]


def _other_hook_cases() -> list[Case]:
    hc, rs, crs = "/healthcheck/sync", "/rolloutschedule/sync", "/clusterrolloutschedule/sync"
    rows: list[tuple[str, str, Mutation]] = [
        ("healthcheck-class-number", hc, set_at(("object", "spec", "class"), 5)),
        ("healthcheck-status-string", hc, set_at(("object", "status"), "Healthy")),
        ("healthcheck-times-garbage", hc, set_at(("object", "status", "lastChangeTime"), "whenever")),
        (
            "healthcheck-annotation-number",
            hc,
            set_at(("object", "metadata", "annotations"), {"healthcheck.kuberik.com/kustomization": 5}),
        ),
        (
            "healthcheck-annotation-too-many-slashes",
            hc,
            set_at(("object", "metadata", "annotations"), {"healthcheck.kuberik.com/kustomization": "a/b/c"}),
        ),
        (
            "healthcheck-rollout-history-garbage",
            hc,
            set_at(
                ("related", "Rollout.kuberik.com/v1alpha1", f"{NS}/app", "status", "history"),
                [5, {"timestamp": "x"}],
            ),
        ),
        (
            "healthcheck-rollout-selector-garbage",
            hc,
            set_at(
                ("related", "Rollout.kuberik.com/v1alpha1", f"{NS}/app", "spec", "healthCheckSelector"), "all"
            ),
        ),
        (
            "healthcheck-kustomization-garbage",
            hc,
            add_related(
                KS, f"{NS}/app", {"metadata": {"name": "app", "namespace": NS}, "status": {"conditions": "x"}}
            ),
        ),
        ("schedule-rules-string", rs, set_at(("parent", "spec", "rules"), "nights")),
        (
            "schedule-rules-garbage",
            rs,
            set_at(("parent", "spec", "rules"), [5, {"timeRange": "22-06"}, {"daysOfWeek": "Mon"}]),
        ),
        ("schedule-timezone-number", rs, set_at(("parent", "spec", "timezone"), 5)),
        ("schedule-timezone-unknown", rs, set_at(("parent", "spec", "timezone"), "Mars/Olympus")),
        ("schedule-action-odd", rs, set_at(("parent", "spec", "action"), "Maybe")),
        (
            "schedule-time-garbage",
            rs,
            set_at(("parent", "spec", "rules"), [{"timeRange": {"start": "25:99", "end": 6}}]),
        ),
        (
            "schedule-date-garbage",
            rs,
            set_at(("parent", "spec", "rules"), [{"dateRange": {"start": "2026-02-30", "end": None}}]),
        ),
        (
            "schedule-selector-garbage",
            rs,
            set_at(("parent", "spec", "rolloutSelector"), {"matchLabels": "x"}),
        ),
        (
            "schedule-children-garbage",
            rs,
            set_at(("children", "RolloutGate.kuberik.com/v1alpha1"), {"x": {"metadata": 5}}),
        ),
        (
            "schedule-rollouts-garbage",
            rs,
            set_at(("related", "Rollout.kuberik.com/v1alpha1"), {"x": {"metadata": {"labels": 5}}}),
        ),
        (
            "cluster-schedule-namespace-selector-garbage",
            crs,
            set_at(("parent", "spec", "namespaceSelector"), [1]),
        ),
        ("cluster-schedule-rules-null", crs, set_at(("parent", "spec", "rules"), None)),
        (
            "cluster-schedule-status-garbage",
            crs,
            set_at(("parent", "status"), {"managedGates": 5, "conditions": "x"}),
        ),
    ]
    return [Case(name, path, mutation, "no-500") for name, path, mutation in rows]


CASES: list[Case] = [
    *_generic_cases(),
    *_spec_cases(),
    *_annotation_cases(),
    *_related_cases(),
    *_status_cases(),
    *_other_hook_cases(),
]
IDS = [
    f"{number:03d}-{case.path.strip('/').replace('/', '-')}-{case.name}"
    for number, case in enumerate(CASES, 1)
]


# --- the checks ----------------------------------------------------------------------------


def body_of(case: Case) -> tuple[bytes, dict | None]:
    if isinstance(case.body, bytes):
        return case.body, None
    request = BASELINES[case.path]()
    case.body(request)
    return orjson.dumps(request), request


def history_kept(persisted: Any, returned: list, limit: int) -> None:
    """Every persisted entry that fits in the limit is still there, in order, after new ones."""
    persisted = persisted if isinstance(persisted, list) else []

    def identity(entry: Any) -> Any:
        if isinstance(entry, dict):
            return (repr(entry.get("id")), repr(entry.get("version")), repr(entry.get("timestamp")))
        return repr(entry)

    for new in range(len(returned) + 1):
        kept = returned[new:]
        expected = persisted[: max(0, limit - new)]
        if [identity(e) for e in kept] == [identity(e) for e in expected]:
            # beyond the head, persisted entries are returned exactly as they were
            assert kept[1:] == expected[1:], "a persisted history entry changed"
            return
    raise AssertionError(f"persisted history lost: persisted={persisted!r} returned={returned!r}")


@pytest.fixture(scope="module")
def client() -> Any:
    return create_app(clock=lambda: NOW, actuator=RecordingActuator()).test_client()


def _matrix(client: Any, case: Case) -> None:
    data, request = body_of(case)
    response = client.post(case.path, data=data, content_type="application/json")
    answer = response.get_json()
    assert isinstance(answer, dict), response.data[:200]
    if case.expect in ("400", "413"):
        assert response.status_code == int(case.expect), answer
        assert isinstance(answer.get("error"), str) and answer["error"]
        return
    assert response.status_code != 500, answer
    if case.expect == "no-500":
        assert response.status_code in (200, 400), answer
        return
    assert request is not None
    assert response.status_code == 200, answer
    assert set(answer) == {"status", "children", "resyncAfterSeconds"}
    assert answer["resyncAfterSeconds"] > 0
    status = answer["status"]
    parent = request["parent"]
    persisted = parent.get("status") if isinstance(parent.get("status"), dict) else {}
    limit = parent["spec"].get("versionHistoryLimit") if isinstance(parent.get("spec"), dict) else None
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1 else 10
    history_kept(persisted.get("history"), status.get("history", []), limit)
    ready = get_condition(status.get("conditions"), "Ready")
    assert ready is not None and ready["reason"] and ready["message"], "no clear Ready condition"
    if case.expect.startswith("invalid-spec:"):
        field = case.expect.split(":", 1)[1]
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
        assert ready["message"].startswith(field), ready["message"]
        for key, value in persisted.items():
            if key != "conditions":
                assert status.get(key) == value, f"status.{key} changed on an invalid spec"
    elif not case.name.startswith("status-"):
        # well-formed persisted status: the answer is a valid Rollout status
        problems = errors_of(validator("Rollout", part="status"), status)
        assert not problems, problems


_test = pytest.mark.parametrize("case", CASES, ids=IDS)(_matrix)
_test.__name__ = f"test_bad_input_matrix_{len(CASES)}_cases"
globals()[_test.__name__] = _test
