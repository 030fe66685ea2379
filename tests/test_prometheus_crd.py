"""The CRD's spec.prometheus and its status fields agree with what the hook reads and writes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hooks.healthcheck import prometheus
from hooks.k8s import DURATION_PATTERN
from tests.crd_schema import object_errors
from tests.healthcheck_objects import CRD, healthcheck


def _spec_schema() -> dict:
    crd = yaml.safe_load(CRD.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]


def check(**spec: Any) -> dict:
    obj = healthcheck(cls="prometheus", target=None)
    obj["spec"]["prometheus"] = {"address": "http://prometheus.monitoring:9090", "query": "up", **spec}
    return obj


def test_patterns_are_the_ones_the_hook_checks() -> None:
    props = _spec_schema()["prometheus"]["properties"]
    assert props["address"]["pattern"] == prometheus.ADDRESS_PATTERN
    for field in ("interval", "for", "queryErrorTolerance"):
        assert props[field]["pattern"] == DURATION_PATTERN
    assert props["noData"]["enum"] == list(prometheus.NO_DATA_VERDICTS)
    assert _spec_schema()["prometheus"]["required"] == ["address", "query"]


def test_every_field_is_documented() -> None:
    def walk(node: dict, where: str) -> None:
        assert node.get("description"), where
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{where}.{name}")

    walk(_spec_schema()["prometheus"], "spec.prometheus")


def test_a_full_spec_is_accepted() -> None:
    full = check(
        thresholdRange={"min": 0, "max": 0.01},
        noData="Healthy",
        interval="1m",
        queryErrorTolerance="10m",
        headers={"X-Scope-OrgID": "team-a"},
        **{"for": "2m30s"},
    )
    assert object_errors(full) == []
    prometheus.parse_spec(full)  # and the hook reads it


@pytest.mark.parametrize(
    ("spec", "where", "hook_refuses"),
    [
        ({"address": "http://user:pw@prom:9090"}, "address", True),
        ({"address": "ftp://prom"}, "address", True),
        ({"address": "http://prom:9090/?x=1"}, "address", True),
        ({"address": "http://prom:9090/#top"}, "address", True),
        ({"query": ""}, "query", True),
        ({"noData": "Maybe"}, "noData", True),
        ({"interval": "30"}, "interval", True),
        ({"for": "2 m"}, "for", True),
        ({"queryErrorTolerance": "-1m"}, "queryErrorTolerance", True),
        ({"thresholdRange": {"max": "0.01"}}, "max", True),
        ({"headers": {"X-Scope-OrgID": 1}}, "X-Scope-OrgID", True),
        # Unknown fields: the API server prunes them, the hook ignores them.
        ({"thresholdRange": {"maximum": 1}}, "maximum", False),
        ({"token": "x"}, "token", False),
    ],
)
def test_schema_rejects(spec: dict, where: str, hook_refuses: bool) -> None:
    errors = object_errors(check(**spec))
    assert errors and any(where in e for e in errors), errors
    if hook_refuses:  # in case the installed CRD is older than the hook
        with pytest.raises(prometheus.InvalidSpec):
            prometheus.parse_spec(check(**spec))
    else:
        prometheus.parse_spec(check(**spec))


def test_cel_rules_are_declared() -> None:
    """CEL rules are not evaluated offline; they mirror the hook's own checks (tested there)."""
    props = _spec_schema()["prometheus"]["properties"]
    rules = {
        name: [r["rule"] for r in props[name].get("x-kubernetes-validations", [])]
        for name in ("query", "thresholdRange", "headers")
    }
    assert "'${version}'" in rules["query"][0] and ".contains('${')" in rules["query"][0]
    assert "self.min <= self.max" in rules["thresholdRange"][0]
    assert "'authorization'" in rules["headers"][0]
    assert set(prometheus.FORBIDDEN_HEADERS) == {"authorization", "proxy-authorization", "cookie", "host"}


def test_status_fields() -> None:
    crd = yaml.safe_load(CRD.read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    for field in prometheus.OWN_FIELDS:
        assert status[field]["format"] == "date-time"
        assert status[field]["description"]
