"""Our CustomResourceDefinitions: shape, documentation, printer columns, and what they accept."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hooks.k8s import DURATION_PATTERN
from tests.crd_schema import (
    FORMAT_CHECKER,
    SchemaViolation,
    errors_of,
    find_crd,
    flux_crd_files,
    load_crd,
    metacontroller_crd_files,
    object_errors,
    openapi_schema,
    our_crd_files,
    schema_problems,
    to_jsonschema,
    validate_object,
    validator,
)

KINDS = {
    "rollouts.kuberik.com.yaml": ("Rollout", "Namespaced"),
    "rolloutgates.kuberik.com.yaml": ("RolloutGate", "Namespaced"),
    "healthchecks.kuberik.com.yaml": ("HealthCheck", "Namespaced"),
    "rolloutschedules.kuberik.com.yaml": ("RolloutSchedule", "Namespaced"),
    "clusterrolloutschedules.kuberik.com.yaml": ("ClusterRolloutSchedule", "Cluster"),
}
PRINTER_COLUMNS = {
    "Rollout": ["Version", "Bake", "Ready", "Blocked", "Suspended", "Message", "Age"],
    "RolloutGate": ["Rollout", "Passing", "Allowed", "Age"],
    "HealthCheck": ["Class", "Status", "Message", "Age"],
    "RolloutSchedule": ["Action", "Active", "Next", "Age"],
    "ClusterRolloutSchedule": ["Action", "Active", "Next", "Age"],
}
# The contract with the hooks: Metacontroller replaces the whole status, so each field they
# return must be declared, and nothing else should be.
STATUS_FIELDS = {
    "Rollout": {
        "observedGeneration",
        "conditions",
        "availableReleases",
        "releaseCandidates",
        "gatedReleaseCandidates",
        "gates",
        "history",
        "targets",
        "acknowledgedAnnotations",
        "hold",
        "promotion",
    },
    "RolloutGate": {"passing", "allowedVersions"},
    "HealthCheck": {
        "observedGeneration",
        "status",
        "message",
        "lastErrorTime",
        "lastChangeTime",
        "failingSince",
        "queryErrorSince",
    },
    "RolloutSchedule": {
        "observedGeneration",
        "active",
        "activeRules",
        "nextTransition",
        "managedGates",
        "matchingRollouts",
        "conditions",
    },
}
STATUS_FIELDS["ClusterRolloutSchedule"] = STATUS_FIELDS["RolloutSchedule"]

T0 = "2025-03-01T10:00:00Z"


def _schema(kind: str) -> dict:
    return openapi_schema(find_crd(kind, "kuberik.com"))


def _at(schema: dict, dotted: str) -> dict:
    node = schema
    for name in dotted.split("."):
        node = node["items"] if name == "[]" else node["properties"][name]
    return node


def _rollout(**spec: Any) -> dict:
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "app", "namespace": "team"},
        "spec": {"releasesImagePolicy": {"name": "app"}, **spec},
    }


def _schedule(kind: str = "RolloutSchedule", **spec: Any) -> dict:
    meta = {"name": "office"} if kind.startswith("Cluster") else {"name": "office", "namespace": "team"}
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": kind,
        "metadata": meta,
        "spec": {"rolloutSelector": {}, "rules": [{"name": "r"}], **spec},
    }


# --- file and CRD shape ----------------------------------------------------------------------


def test_one_file_per_kind() -> None:
    assert sorted(p.name for p in our_crd_files()) == sorted(KINDS)


@pytest.mark.parametrize("filename", sorted(KINDS))
def test_crd_shape(filename: str) -> None:
    path = Path(__file__).resolve().parents[1] / "crds" / filename
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert len(docs) == 1
    crd = docs[0]
    kind, scope = KINDS[filename]
    names = crd["spec"]["names"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["spec"]["group"] == "kuberik.com"
    assert crd["metadata"]["name"] == f"{names['plural']}.kuberik.com" == filename.removesuffix(".yaml")
    assert names["kind"] == kind
    assert names["listKind"] == f"{kind}List"
    assert names["singular"] == kind.lower()
    assert names["plural"] == kind.lower() + "s"
    assert names["categories"] == ["kuberik"]
    assert crd["spec"]["scope"] == scope
    [version] = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    assert version["served"] is True
    assert version["storage"] is True
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("filename", sorted(KINDS))
def test_schema_is_structural_and_documented(filename: str) -> None:
    schema = openapi_schema(load_crd(Path(__file__).resolve().parents[1] / "crds" / filename))
    assert schema_problems(schema) == []
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}


def test_short_names_are_unique() -> None:
    short = [s for p in our_crd_files() for s in load_crd(p)["spec"]["names"].get("shortNames", [])]
    assert len(short) == len(set(short))
    assert {"hc", "rgate", "rsched", "crsched"} <= set(short)


@pytest.mark.parametrize("kind", sorted(STATUS_FIELDS))
def test_status_fields_are_the_hook_contract(kind: str) -> None:
    assert set(_schema(kind)["properties"]["status"]["properties"]) == STATUS_FIELDS[kind]


# --- printer columns -----------------------------------------------------------------------------

_PRINTER_TYPES = {"string": {"string", "array"}, "boolean": {"boolean"}, "integer": {"integer"}}


def _resolve_json_path(schema: dict, json_path: str) -> dict:
    """Follow a printer column's simple JSONPath ('.a.b[0].c', '.a[?(@.type=="X")].b') in a schema."""
    node = schema
    for token in re.findall(r"\.([A-Za-z0-9_]+)|\[[^\]]*\]", json_path):
        node = node["items"] if token == "" else node["properties"][token]
    return node


@pytest.mark.parametrize("filename", sorted(KINDS))
def test_printer_columns(filename: str) -> None:
    crd = load_crd(Path(__file__).resolve().parents[1] / "crds" / filename)
    kind = crd["spec"]["names"]["kind"]
    [version] = crd["spec"]["versions"]
    columns = version["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == PRINTER_COLUMNS[kind]
    assert columns[-1] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    schema = version["schema"]["openAPIV3Schema"]
    for column in columns[:-1]:
        assert column["description"]
        target = _resolve_json_path(schema, column["jsonPath"])
        assert target["type"] in _PRINTER_TYPES[column["type"]], column


def test_rollout_printer_paths() -> None:
    [version] = find_crd("Rollout")["spec"]["versions"]
    paths = {c["name"]: (c["jsonPath"], c.get("priority", 0)) for c in version["additionalPrinterColumns"]}
    assert paths["Version"] == (".status.history[0].version.tag", 0)
    assert paths["Bake"] == (".status.history[0].bakeStatus", 0)
    assert paths["Ready"] == ('.status.conditions[?(@.type=="Ready")].status', 0)
    assert paths["Message"] == ('.status.conditions[?(@.type=="Ready")].message', 1)


def test_schedule_next_column_is_a_plain_timestamp() -> None:
    # kubectl shows a future instant in a `date` column as "<invalid>"; a string shows the time.
    [version] = find_crd("RolloutSchedule")["spec"]["versions"]
    [next_column] = [c for c in version["additionalPrinterColumns"] if c["name"] == "Next"]
    assert next_column["type"] == "string"


# --- Rollout spec ----------------------------------------------------------------------------------


def test_duration_pattern_is_the_one_the_hooks_parse() -> None:
    spec = _schema("Rollout")["properties"]["spec"]["properties"]
    for field in ("releaseUpdateInterval", "bakeTime", "deployTimeout"):
        assert spec[field]["pattern"] == DURATION_PATTERN
        assert spec[field]["type"] == "string"


@pytest.mark.parametrize("field", ["releaseUpdateInterval", "bakeTime", "deployTimeout"])
@pytest.mark.parametrize("value", ["90s", "10m", "1h30m", "500ms", "1.5h", "2h45m30s"])
def test_durations_accepted(field: str, value: str) -> None:
    assert object_errors(_rollout(**{field: value})) == []


@pytest.mark.parametrize("field", ["releaseUpdateInterval", "bakeTime", "deployTimeout"])
@pytest.mark.parametrize("value", ["10", "1d", "abc", "", "-5m", "5 m", "m", "1h 30m", "5M"])
def test_durations_rejected(field: str, value: str) -> None:
    errors = object_errors(_rollout(**{field: value}))
    assert errors and errors[0].startswith(f"spec.{field}:")


def test_rollout_spec_required_fields() -> None:
    """releasesImagePolicy is optional when promotion.from is set: a CEL rule (the hook checks too)."""
    promotion_only = _rollout(promotion={"from": [{"name": "staging"}]})
    del promotion_only["spec"]["releasesImagePolicy"]
    assert object_errors(promotion_only) == []
    [rule] = _schema("Rollout")["properties"]["spec"]["x-kubernetes-validations"]
    assert " ".join(rule["rule"].split()) == (
        "has(self.releasesImagePolicy) || (has(self.promotion) && has(self.promotion.from) && "
        "size(self.promotion.from) > 0)"
    )
    assert rule["message"] == "set releasesImagePolicy, promotion.from, or both"
    assert object_errors(_rollout(releasesImagePolicy={})) != []
    assert object_errors(_rollout(releasesImagePolicy={"name": ""})) != []


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("versionHistoryLimit", [1, 10, 100], [0, 101, -1, "10"]),
        ("availableReleasesRetentionDays", [1, 7, 365], [0, -7, 1.5]),
        ("availableReleasesMinCount", [1, 30, 1000], [0, True]),
        ("wantedVersion", ["6.7.1", "latest"], [671, None]),
    ],
)
def test_rollout_spec_field_ranges(field: str, good: list, bad: list) -> None:
    for value in good:
        assert object_errors(_rollout(**{field: value})) == [], value
    for value in bad:
        assert object_errors(_rollout(**{field: value})) != [], value


def test_unknown_fields_are_reported() -> None:
    assert object_errors(_rollout(bakeTimeout="5m")) == [
        "spec: Additional properties are not allowed ('bakeTimeout' was unexpected)"
    ]


@pytest.mark.parametrize(
    ("kind", "field", "default"),
    [
        ("Rollout", "versionHistoryLimit", 10),
        ("Rollout", "releaseUpdateInterval", "5m"),
        ("Rollout", "availableReleasesRetentionDays", 7),
        ("Rollout", "availableReleasesMinCount", 30),
        ("RolloutSchedule", "timezone", "UTC"),
        ("RolloutSchedule", "action", "Deny"),
        ("ClusterRolloutSchedule", "timezone", "UTC"),
        ("ClusterRolloutSchedule", "action", "Deny"),
    ],
)
def test_defaults(kind: str, field: str, default: Any) -> None:
    prop = _schema(kind)["properties"]["spec"]["properties"][field]
    assert prop["default"] == default
    # The API server rejects a CRD whose default does not validate against its own schema.
    assert errors_of(validator(kind, part=f"spec.{field}"), default) == []


def test_only_the_intended_fields_have_defaults() -> None:
    found: list[str] = []

    def walk(node: dict, where: str) -> None:
        if "default" in node:
            found.append(where)
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{where}.{name}")
        if "items" in node:
            walk(node["items"], f"{where}[]")

    for path in our_crd_files():
        crd = load_crd(path)
        walk(openapi_schema(crd), crd["spec"]["names"]["kind"])
    # RolloutGate.spec.passing defaults to true in the controller, not in the schema: a stored
    # default would hide the legacy status.passing of gates written by older tooling.
    assert sorted(found) == sorted(
        [
            "Rollout.spec.versionHistoryLimit",
            "Rollout.spec.releaseUpdateInterval",
            "Rollout.spec.availableReleasesRetentionDays",
            "Rollout.spec.availableReleasesMinCount",
            "Rollout.spec.onBakeFailure",
            "Rollout.spec.suspend",
            "RolloutSchedule.spec.timezone",
            "RolloutSchedule.spec.action",
            "ClusterRolloutSchedule.spec.timezone",
            "ClusterRolloutSchedule.spec.action",
        ]
    )


# --- promotion ----------------------------------------------------------------------------------


def test_rollout_promotion_fields() -> None:
    full = {
        "from": [{"name": "staging", "namespace": "staging"}, {"name": "canary"}],
        "availability": "All",
        "soakTime": "1h30m",
        "exportTo": {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
    }
    assert object_errors(_rollout(promotion=full)) == []
    from hooks.rollout.promotion import MAX_SOURCES, REPORTED_VERIFIED

    spec = _schema("Rollout")["properties"]["spec"]["properties"]["promotion"]["properties"]
    sources = _schema("Rollout")["properties"]["status"]["properties"]["promotion"]["properties"]["sources"]
    assert spec["from"]["maxItems"] == sources["maxItems"] == MAX_SOURCES
    assert sources["items"]["properties"]["verified"]["maxItems"] == REPORTED_VERIFIED
    for bad in (
        {"from": [{}]},
        {"from": [{"name": ""}]},
        {"availability": "Any"},
        {"soakTime": "1 day"},
        {"exportTo": {"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Near"}]}}},
    ):
        assert object_errors(_rollout(promotion=bad)) != [], bad


# --- healthCheckSelector ------------------------------------------------------------------------


def test_health_check_selector_cel_rule() -> None:
    selector = _schema("Rollout")["properties"]["spec"]["properties"]["healthCheckSelector"]
    [rule] = selector["x-kubernetes-validations"]
    assert rule["message"] == (
        "healthCheckSelector: use either matchLabels/matchExpressions or selector/namespaceSelector, not both"
    )
    text = " ".join(rule["rule"].split())
    assert text == (
        "!((has(self.matchLabels) || has(self.matchExpressions)) && "
        "(has(self.selector) || has(self.namespaceSelector)))"
    )


LABEL_SELECTOR = {
    "matchLabels": {"app": "web"},
    "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "canary", "operator": "DoesNotExist"},
    ],
}


@pytest.mark.parametrize(
    "selector",
    [
        {},
        {"matchLabels": {"app": "web"}},
        LABEL_SELECTOR,
        {"selector": LABEL_SELECTOR},
        {"selector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"matchLabels": {"env": "prod"}}},
        {"selector": {}, "namespaceSelector": {}},
        {"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Exists"}]}},
    ],
)
def test_health_check_selector_shapes_accepted(selector: dict) -> None:
    assert object_errors(_rollout(healthCheckSelector=selector)) == []


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"app": 1}},
        {"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["x"]}]},
        {"matchExpressions": [{"operator": "Exists"}]},
        {"selector": {"labels": {"app": "web"}}},
        {"namespaceSelector": {"matchNames": ["prod"]}},
        {"names": ["web"]},
    ],
)
def test_health_check_selector_malformed(selector: dict) -> None:
    assert object_errors(_rollout(healthCheckSelector=selector)) != []


# --- Rollout status --------------------------------------------------------------------------------


def _condition(type_: str, status: str = "True", reason: str = "Fine") -> dict:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": "ok",
        "lastTransitionTime": T0,
        "observedGeneration": 3,
    }


FULL_ROLLOUT_STATUS: dict[str, Any] = {
    "observedGeneration": 3,
    "conditions": [
        _condition("Ready", reason="Deployed"),
        _condition("ReleasesUpdated", reason="ReleasesUpdated"),
        _condition("GatesPassing", reason="AllGatesPassing"),
        _condition("DeploymentBlocked", "False", "HealthChecksHealthy"),
        _condition("BakeFailureDisabled", "False", "Normal"),
        _condition("TargetsSynced", "False", "TargetsFailing"),
    ],
    "availableReleases": [
        {"tag": "1.0.0", "digest": "sha256:aa", "discoveredAt": T0},
        {"tag": "1.1.0", "discoveredAt": T0},
        {"tag": "1.2.0"},
    ],
    "releaseCandidates": ["1.2.0"],
    "gatedReleaseCandidates": [],
    "gates": [
        {"name": "a", "passing": True, "message": "Gate is passing", "bypassGates": False},
        {"name": "b", "passing": True, "allowedVersions": ["1.0.0"], "message": "x", "bypassGates": False},
    ],
    "history": [
        {
            "id": 2,
            "version": {"tag": "1.1.0", "discoveredAt": T0},
            "timestamp": T0,
            "message": "Automatic deployment",
            "triggeredBy": {"kind": "System", "name": "rollout-controller"},
            "bakeStatus": "Failed",
            "bakeStatusMessage": "A HealthCheck reported an error after bake started.",
            "bakeStartTime": "2025-03-01T10:05:00Z",
            "bakeEndTime": "2025-03-01T10:07:00Z",
            "lastRetryTimestamp": "2025-03-01T10:01:00Z",
            "failedHealthChecks": [{"name": "web", "namespace": "team", "message": "boom"}],
        },
        {
            "id": 1,
            "version": {"tag": "1.0.0", "digest": "sha256:aa", "discoveredAt": T0},
            "timestamp": T0,
            "message": "Manual deployment, with force deploy",
            "triggeredBy": {"kind": "User", "name": "alice"},
            "bakeStatus": "Cancelled",
        },
    ],
    "targets": [
        {
            "kind": "Kustomization",
            "name": "web",
            "field": "spec.postBuild.substitute.VERSION",
            "desired": "1.1.0",
            "observed": "1.0.0",
            "state": "Error",
            "message": "forbidden",
            "errorSince": T0,
        },
        {
            "kind": "OCIRepository",
            "name": "web",
            "field": "spec.ref.tag",
            "desired": "1.1.0",
            "state": "Blocked",
        },
    ],
    "acknowledgedAnnotations": {"rollout.kuberik.com/retry": "1"},
}


def test_full_rollout_status_validates() -> None:
    assert errors_of(validator("Rollout", part="status"), FULL_ROLLOUT_STATUS) == []
    assert object_errors({**_rollout(), "status": FULL_ROLLOUT_STATUS}) == []


def _status_with(path: list, value: Any) -> dict:
    status = copy.deepcopy(FULL_ROLLOUT_STATUS)
    node: Any = status
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return status


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["history", 0, "bakeStatus"], "Baking"),
        (["history", 0, "triggeredBy", "kind"], "Robot"),
        (["history", 0, "timestamp"], "yesterday"),
        (["history", 0, "bakeEndTime"], "2025-13-01T00:00:00Z"),
        (["history", 0, "version"], {"digest": "sha256:aa"}),
        (["history", 0, "id"], "2"),
        (["targets", 0, "state"], "Unknown"),
        (["targets", 0, "kind"], "GitRepository"),
        (["targets", 0, "errorSince"], "2025-03-01 10:00:00"),
        (["conditions", 0, "status"], "true"),
        (["conditions", 0, "reason"], "not a reason"),
        (["conditions", 1, "type"], "Ready"),
        (["conditions", 0, "lastTransitionTime"], None),
        (["availableReleases", 0, "discoveredAt"], "2025-02-30T00:00:00Z"),
        (["gates", 0, "passing"], "yes"),
        (["acknowledgedAnnotations", "rollout.kuberik.com/retry"], 1),
        (["observedGeneration"], 1.5),
        (["releaseCandidates"], ["1.2.0", 2]),
        (["history", 0, "bakeProgress"], "50%"),
    ],
)
def test_rollout_status_violations(path: list, value: Any) -> None:
    assert errors_of(validator("Rollout", part="status"), _status_with(path, value)) != []


def test_rollout_status_bounds() -> None:
    check = validator("Rollout", part="status")
    entry = FULL_ROLLOUT_STATUS["history"][1]
    assert errors_of(check, {"history": [entry] * 100}) == []
    assert errors_of(check, {"history": [entry] * 101}) != []
    releases = [{"tag": f"1.0.{i}"} for i in range(1001)]
    assert errors_of(check, {"availableReleases": releases[:1000]}) == []
    assert errors_of(check, {"availableReleases": releases}) != []


def test_part_paths_reach_nested_schemas() -> None:
    entry = validator("Rollout", part="status.history[]")
    assert errors_of(entry, FULL_ROLLOUT_STATUS["history"][0]) == []
    assert errors_of(entry, {"version": {"tag": "1"}, "bakeStatus": "Nope"}) != []
    with pytest.raises(LookupError):
        validator("Rollout", part="status.nothing")


# --- RolloutGate and HealthCheck ---------------------------------------------------------------------


def test_rollout_gate() -> None:
    gate = {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "RolloutGate",
        "metadata": {"name": "g", "namespace": "team"},
        "spec": {"rolloutRef": {"name": "app"}, "passing": False, "allowedVersions": ["1.0.0"]},
    }
    assert object_errors(gate) == []
    legacy = copy.deepcopy(gate)
    legacy["spec"] = {"rolloutRef": {"name": "app"}}
    legacy["status"] = {"passing": False, "allowedVersions": ["1.0.0"]}
    assert object_errors(legacy) == []
    for spec in ({}, {"rolloutRef": {}}, {"rolloutRef": {"name": "app"}, "passing": "false"}):
        assert object_errors({**gate, "spec": spec}) != [], spec


def test_health_check() -> None:
    check = {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "HealthCheck",
        "metadata": {"name": "web", "namespace": "team"},
        "spec": {"class": "kustomization"},
        "status": {
            "observedGeneration": 1,
            "status": "Unhealthy",
            "message": "Kustomization team/web not found",
            "lastErrorTime": T0,
            "lastChangeTime": T0,
        },
    }
    assert object_errors(check) == []
    assert object_errors({**check, "spec": {}}) == []
    assert object_errors({**check, "status": {"status": "Degraded"}}) != []
    assert object_errors({**check, "status": {"lastChangeTime": "now"}}) != []
    description = _schema("HealthCheck")["properties"]["spec"]["properties"]["class"]["description"]
    assert "healthcheck.kuberik.com/kustomization" in description


# --- schedules --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["RolloutSchedule", "ClusterRolloutSchedule"])
def test_schedule_spec(kind: str) -> None:
    full_rule = {
        "name": "weekdays",
        "timeRange": {"start": "22:00", "end": "06:30"},
        "daysOfWeek": ["Monday", "Sunday"],
        "dateRange": {"start": "2025-12-20", "end": "2026-01-04"},
    }
    assert (
        object_errors(_schedule(kind, rules=[full_rule], timezone="Europe/Amsterdam", action="Allow")) == []
    )
    bad_specs = [
        {"rules": []},
        {"rules": [{"name": ""}]},
        {"rules": [{"timeRange": {"start": "09:00", "end": "17:00"}}]},
        {"rules": [{"name": "a"}, {"name": "a"}]},
        {"rules": [{"name": "a", "timeRange": {"start": "24:00", "end": "06:00"}}]},
        {"rules": [{"name": "a", "timeRange": {"start": "9:00", "end": "17:00"}}]},
        {"rules": [{"name": "a", "timeRange": {"start": "09:60", "end": "17:00"}}]},
        {"rules": [{"name": "a", "timeRange": {"start": "09:00"}}]},
        {"rules": [{"name": "a", "daysOfWeek": ["monday"]}]},
        {"rules": [{"name": "a", "daysOfWeek": ["Monday", "Monday"]}]},
        {"rules": [{"name": "a", "dateRange": {"start": "2025-1-1", "end": "2025-01-02"}}]},
        {"action": "Maybe"},
        {"timezone": 1},
    ]
    for spec in bad_specs:
        assert object_errors(_schedule(kind, **spec)) != [], spec
    missing = _schedule(kind)
    del missing["spec"]["rolloutSelector"]
    assert object_errors(missing) != []


def test_only_the_cluster_schedule_selects_namespaces() -> None:
    ns = {"namespaceSelector": {"matchLabels": {"environment": "production"}}}
    assert object_errors(_schedule("ClusterRolloutSchedule", **ns)) == []
    assert object_errors(_schedule("RolloutSchedule", **ns)) != []


@pytest.mark.parametrize("kind", ["RolloutSchedule", "ClusterRolloutSchedule"])
def test_schedule_status(kind: str) -> None:
    status = {
        "observedGeneration": 2,
        "active": True,
        "activeRules": ["weekdays"],
        "nextTransition": "2025-03-01T17:00:00Z",
        "managedGates": ["team/office-app"],
        "matchingRollouts": 1,
        "conditions": [_condition("Ready", "False", "InvalidSchedule")],
    }
    check = validator(kind, part="status")
    assert errors_of(check, status) == []
    assert errors_of(check, {**status, "matchingRollouts": -1}) != []
    assert errors_of(check, {**status, "nextTransition": "17:00"}) != []
    assert errors_of(check, {**status, "active": "yes"}) != []


# --- the helper itself --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", flux_crd_files() + metacontroller_crd_files(), ids=lambda p: p.name)
def test_upstream_crds_are_structural(path: Path) -> None:
    # Upstream schemas are generated and structural: the checker must not flag them.
    for version in load_crd(path)["spec"]["versions"]:
        assert schema_problems(version["schema"]["openAPIV3Schema"], descriptions=False) == []


def test_schema_problems_finds_defects() -> None:
    schema = {
        "type": "object",
        "description": "root",
        "properties": {
            "untyped": {"description": "no type here"},
            "undocumented": {"type": "string"},
            "list": {"type": "array", "description": "no items"},
            "both": {
                "type": "object",
                "description": "d",
                "properties": {},
                "additionalProperties": {"type": "string"},
            },
            "junction": {
                "type": "string",
                "description": "d",
                "anyOf": [{"type": "string", "pattern": "a"}],
            },
            "open": {"description": "fine", "x-kubernetes-preserve-unknown-fields": True},
            "port": {
                "description": "fine",
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            },
        },
    }
    assert schema_problems(schema) == [
        "untyped: no type",
        "undocumented: no description",
        "list: array without items",
        "both: properties and additionalProperties together",
        "junction.anyOf[0]: type is not allowed inside allOf/anyOf/oneOf/not",
    ]
    assert "undocumented: no description" not in schema_problems(schema, descriptions=False)


def test_translation_of_kubernetes_extensions() -> None:
    schema = to_jsonschema(
        {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "maybe": {"type": "string", "nullable": True, "enum": ["a"]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "closed": {"type": "object"},
                "set": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            },
        },
        root=False,
    )
    from tests.crd_schema import KubernetesValidator

    check = KubernetesValidator(schema, format_checker=FORMAT_CHECKER)
    good = {"port": 80, "maybe": None, "free": {"x": {"y": 1}}, "closed": {}, "set": ["a", "b"]}
    assert errors_of(check, good) == []
    assert errors_of(check, {**good, "port": "http"}) == []
    assert errors_of(check, {"port": 1.5}) != []
    assert errors_of(check, {"maybe": "b"}) != []
    assert errors_of(check, {"closed": {"x": 1}}) != []
    assert errors_of(check, {"set": ["a", "a"]}) != []
    assert errors_of(check, {"other": 1}) != []


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2025-03-01T10:00:00Z", True),
        ("2025-03-01T10:00:00.123456789+02:00", True),
        ("2024-02-29t23:59:59z", True),
        ("2025-03-01 10:00:00Z", False),
        ("2025-02-29T00:00:00Z", False),
        ("2025-03-01T25:00:00Z", False),
        ("2025-03-01T10:00:00", False),
        ("", False),
    ],
)
def test_date_time_format(value: str, ok: bool) -> None:
    assert FORMAT_CHECKER.conforms(value, "date-time") is ok


def test_integer_and_duration_formats() -> None:
    assert FORMAT_CHECKER.conforms(2**31 - 1, "int32")
    assert not FORMAT_CHECKER.conforms(2**31, "int32")
    assert not FORMAT_CHECKER.conforms(2**63, "int64")
    assert FORMAT_CHECKER.conforms("1h0m0s", "duration")
    assert FORMAT_CHECKER.conforms("0", "duration")
    assert not FORMAT_CHECKER.conforms("1d", "duration")


def test_object_metadata_is_checked() -> None:
    bad_name = _rollout()
    bad_name["metadata"]["name"] = "My_App"
    assert any(e.startswith("metadata.name:") for e in object_errors(bad_name))
    bad_annotation = _rollout()
    bad_annotation["metadata"]["annotations"] = {"rollout.kuberik.com/": "x"}
    assert object_errors(bad_annotation) != []
    fine = _rollout()
    fine["metadata"].update(
        annotations={"rollout.kuberik.com/substitute.IMAGE_TAG.from": "app"},
        labels={"app.kubernetes.io/name": "app"},
        creationTimestamp=None,
        generation=4,
    )
    assert object_errors(fine) == []


def test_validate_object_picks_the_crd() -> None:
    ocirepo = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "web", "namespace": "team"},
        "spec": {"interval": "1m", "url": "oci://ghcr.io/x/y", "ref": {"tag": "1.0.0"}},
    }
    validate_object(ocirepo)
    with pytest.raises(SchemaViolation) as caught:
        validate_object({**ocirepo, "spec": {"url": "oci://ghcr.io/x/y"}})
    assert caught.value.errors == ["spec: 'interval' is a required property"]
    with pytest.raises(LookupError):
        object_errors({**ocirepo, "apiVersion": "source.toolkit.fluxcd.io/v1beta2"})
    with pytest.raises(LookupError):
        object_errors({"apiVersion": "v1", "kind": "ConfigMap"})
    controller = {
        "apiVersion": "metacontroller.k8s.io/v1alpha1",
        "kind": "CompositeController",
        "metadata": {"name": "rollouts"},
        "spec": {"parentResource": {"apiVersion": "kuberik.com/v1alpha1", "resource": "rollouts"}},
    }
    assert object_errors(controller) == []
