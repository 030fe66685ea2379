"""The monitoring artifacts in metacontroller/monitoring/: the kube-state-metrics
configuration has the documented CustomResourceStateMetrics shape and yields the Rollout
series the alerts and the dashboard use; every PrometheusRule and dashboard expression parses
(promql-parser) and names only series that exist, with labels they carry."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

import hooks.metrics  # noqa: F401  (registers the hook's metrics)

REPO = Path(__file__).resolve().parent.parent
MONITORING = REPO / "metacontroller" / "monitoring"

# --- kube-state-metrics custom-resource-state configuration -----------------------------------

_PATH = {"type": "array", "items": {"type": "string"}, "minItems": 1}
_LABELS = {"type": "object", "additionalProperties": _PATH}
#: The configuration's documented shape (kube-state-metrics docs, "Custom Resource State
#: Metrics": resources, groupVersionKind, labelsFromPath, metricNamePrefix, errorLogV, metrics
#: with each.type Gauge | StateSet | Info and the type's own block).
KSM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "spec"],
    "additionalProperties": False,
    "properties": {
        "kind": {"const": "CustomResourceStateMetrics"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["resources"],
            "properties": {
                "resources": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["groupVersionKind", "metrics"],
                        "properties": {
                            "groupVersionKind": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["group", "version", "kind"],
                                "properties": {k: {"type": "string"} for k in ("group", "version", "kind")},
                            },
                            "metricNamePrefix": {"type": "string"},
                            "labelsFromPath": _LABELS,
                            "commonLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "errorLogV": {"type": "integer"},
                            "metrics": {"type": "array", "items": {"$ref": "#/$defs/metric"}},
                        },
                    },
                }
            },
        },
    },
    "$defs": {
        "metric": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "help", "each"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
                "help": {"type": "string"},
                "errorLogV": {"type": "integer"},
                "commonLabels": {"type": "object"},
                "labelsFromPath": _LABELS,
                "each": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type"],
                    "properties": {
                        "type": {"enum": ["Gauge", "StateSet", "Info"]},
                        "gauge": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["path"],
                            "properties": {
                                "path": _PATH,
                                "valueFrom": _PATH,
                                "labelsFromPath": _LABELS,
                                "labelFromKey": {"type": "string"},
                                "nilIsZero": {"type": "boolean"},
                            },
                        },
                        "stateSet": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["path", "labelName", "list"],
                            "properties": {
                                "path": _PATH,
                                "valueFrom": _PATH,
                                "labelName": {"type": "string"},
                                "list": {"type": "array", "items": {"type": "string"}},
                                "labelsFromPath": _LABELS,
                            },
                        },
                        "info": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "path": _PATH,
                                "labelsFromPath": _LABELS,
                                "labelFromKey": {"type": "string"},
                            },
                        },
                    },
                    "allOf": [
                        {"if": {"properties": {"type": {"const": t}}}, "then": {"required": [block]}}
                        for t, block in (("Gauge", "gauge"), ("StateSet", "stateSet"), ("Info", "info"))
                    ],
                },
            },
        }
    },
}

#: A Rollout as the revised engine writes it (docs/spec/v1alpha1/rollout.md): deployed 1.2.0
#: baking, a hold, Ready, DeploymentBlocked and Stalled conditions.
ROLLOUT = {
    "apiVersion": "kuberik.com/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"releasesImagePolicy": {"name": "web"}, "suspend": False},
    "status": {
        "history": [
            {
                "id": 4,
                "version": {"tag": "1.2.0", "discoveredAt": "2026-03-02T08:00:00Z"},
                "timestamp": "2026-03-02T09:00:00Z",
                "trigger": "Pin",
                "bakeStatus": "Deploying",
            }
        ],
        "hold": {
            "reason": "ManualRollback",
            "resumeAfter": "1.3.0",
            "since": "2026-03-02T09:00:00Z",
            "historyId": 4,
        },
        "conditions": [
            {"type": t, "status": s, "reason": r, "lastTransitionTime": "2026-03-02T09:00:00Z"}
            for t, s, r in (
                ("Ready", "True", "Deployed"),
                ("DeploymentBlocked", "True", "Held"),
                ("Stalled", "False", "Normal"),
                ("Reconciling", "True", "Progressing"),
            )
        ],
    },
}


def _resolve(node: Any, path: list[str]) -> Any:
    """kube-state-metrics' path lookup: map keys, list indexes, `[key=value]` list matches."""
    for part in path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit():
            node = node[int(part)] if int(part) < len(node) else None
        elif isinstance(node, list) and part.startswith("[") and "=" in part:
            key, _, value = part[1:-1].partition("=")
            node = next((e for e in node if isinstance(e, dict) and str(e.get(key)) == value), None)
        else:
            return None
    return node


def _gauge_value(value: Any) -> float:
    """kube-state-metrics' documented conversions for gauge values."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "yes"):
            return 1.0
        if lowered in ("false", "no", "unknown"):
            return 0.0
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return float(value)
    raise AssertionError(f"kube-state-metrics cannot convert {value!r}")


def _labels(node: Any, spec: dict | None) -> dict[str, str]:
    return {name: str(_resolve(node, path)) for name, path in (spec or {}).items()}


def ksm_series(config: dict, obj: dict) -> Iterator[tuple[str, dict[str, str], float]]:
    """The series kube-state-metrics would publish for `obj` (name, labels, value)."""
    for resource in config["spec"]["resources"]:
        base = _labels(obj, resource.get("labelsFromPath"))
        prefix = resource.get("metricNamePrefix", "kube_customresource")
        base |= {"customresource_group": resource["groupVersionKind"]["group"]}
        for metric in resource["metrics"]:
            name = f"{prefix}_{metric['name']}" if prefix else metric["name"]
            each = metric["each"]
            if each["type"] == "Info":
                info = each["info"]
                node = _resolve(obj, info["path"]) if "path" in info else obj
                if node is not None:
                    yield name, base | _labels(node, info.get("labelsFromPath")), 1.0
            elif each["type"] == "StateSet":
                state = _resolve(obj, each["stateSet"]["path"])
                if state is not None:
                    for item in each["stateSet"]["list"]:
                        yield name, base | {each["stateSet"]["labelName"]: item}, float(state == item)
            else:
                gauge = each["gauge"]
                node = _resolve(obj, gauge["path"])
                if node is None and gauge.get("nilIsZero"):
                    yield name, base, 0.0
                    continue
                for element in node if isinstance(node, list) else ([] if node is None else [node]):
                    value = _resolve(element, gauge["valueFrom"]) if "valueFrom" in gauge else element
                    yield name, base | _labels(element, gauge.get("labelsFromPath")), _gauge_value(value)


def _ksm_config() -> dict:
    return yaml.safe_load((MONITORING / "rollout-state-metrics.yaml").read_text())


def test_ksm_config_has_the_documented_shape_for_our_crd():
    config = _ksm_config()
    jsonschema.validate(config, KSM_SCHEMA)
    crd = yaml.safe_load((REPO / "crds" / "rollouts.kuberik.com.yaml").read_text())
    [resource] = config["spec"]["resources"]
    served = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
    assert resource["groupVersionKind"] == {
        "group": crd["spec"]["group"],
        "version": served[0],
        "kind": crd["spec"]["names"]["kind"],
    }


def test_ksm_config_yields_the_rollout_state_series():
    series = {
        (name, tuple(sorted(labels.items()))): v for name, labels, v in ksm_series(_ksm_config(), ROLLOUT)
    }

    def value(metric: str, **labels: str) -> float:
        matches = [v for (n, ls), v in series.items() if n == metric and labels.items() <= dict(ls).items()]
        assert len(matches) == 1, (metric, labels, matches)
        return matches[0]

    common = {"namespace": "shop", "name": "web"}
    assert (
        value("kuberik_rollout_info", version="1.2.0", bake_status="Deploying", trigger="Pin", **common) == 1
    )
    assert value("kuberik_rollout_bake_status", bake_status="Deploying", **common) == 1
    assert value("kuberik_rollout_bake_status", bake_status="Failed", **common) == 0
    assert value("kuberik_rollout_condition", type="DeploymentBlocked", reason="Held", **common) == 1
    assert value("kuberik_rollout_condition", type="Stalled", reason="Normal", **common) == 0
    assert value("kuberik_rollout_condition", type="Ready", reason="Deployed", **common) == 1
    assert value("kuberik_rollout_hold", reason="ManualRollback", resume_after="1.3.0", **common) == 1
    assert value("kuberik_rollout_suspended", **common) == 0
    t0 = datetime.fromisoformat("2026-03-02T09:00:00+00:00").timestamp()
    assert value("kuberik_rollout_deployed_timestamp_seconds", **common) == t0
    assert value("kuberik_rollout_condition_last_transition_time_seconds", type="Stalled", **common) == t0
    # no version in the labels of anything but the info series (bounded label sets)
    assert all("version" not in dict(ls) for (n, ls) in series if n != "kuberik_rollout_info")


# --- the series that exist ------------------------------------------------------------------

#: Labels Prometheus adds to every scraped series (PodMonitor; kube-state-metrics' own target).
TARGET_LABELS = {"job", "instance", "pod", "namespace", "container", "endpoint", "service"}


def known_series() -> dict[str, set[str]]:
    """Series name -> label names: the hook's own metrics and kube-state-metrics' as configured."""
    known: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            known.setdefault(sample.name, set()).update(sample.labels)
    for collector in list(REGISTRY._names_to_collectors.values()):  # label names of unused families
        names = getattr(collector, "_labelnames", ())
        kind = getattr(collector, "_type", "")
        base = getattr(collector, "_name", "")
        for suffix in {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(kind, [""]):
            known.setdefault(base + suffix, set()).update(names)
            if suffix == "_bucket":
                known[base + suffix].add("le")
    for name, labels, _ in ksm_series(_ksm_config(), ROLLOUT):
        known.setdefault(name, set()).update(labels, {"customresource_kind", "customresource_version"})
    for labels in known.values():
        labels |= TARGET_LABELS
    return known


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, matcher label names) of every vector selector of a PromQL expression."""
    found: list[tuple[str, set[str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, {m.name for m in node.matchers.matchers}))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def assert_refers_to_existing_series(expr: str, known: dict[str, set[str]]) -> None:
    used = selectors(expr)
    assert used, f"{expr!r} selects no series"
    for name, labels in used:
        assert name in known, f"{expr!r}: no series {name!r}"
        assert labels <= known[name], f"{expr!r}: {name} has no label {labels - known[name]}"


def test_hook_metrics_have_no_series_per_version_or_rollout():
    for name, labels in known_series().items():
        if name.startswith("rollout_"):
            assert not labels & {"version", "rollout", "name", "tag"}, (name, labels)


def test_a_wrong_series_or_label_is_caught():
    known = known_series()
    with pytest.raises(AssertionError):
        assert_refers_to_existing_series('kuberik_rollout_bake_state{bake_status="Failed"} == 1', known)
    with pytest.raises(AssertionError):
        assert_refers_to_existing_series('rollout_hook_requests_total{result="error"}', known)
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(rollout_hook_requests_total[5m])")


# --- PrometheusRule ---------------------------------------------------------------------------


def _rules() -> list[dict]:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_prometheus_rule_expressions_parse_and_use_existing_series():
    known = known_series()
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    assert {
        "RolloutBakeFailed",
        "RolloutDeployingTooLong",
        "RolloutAutomationBlocked",
        "RolloutHookErrors",
        "RolloutHookLatencyHigh",
    } <= set(names)
    for rule in rules:
        assert_refers_to_existing_series(rule["expr"], known)
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
        assert rule["annotations"]["summary"]
        if "for" in rule:
            assert promql_parser.parse_duration(rule["for"]).total_seconds() > 0


def test_the_deploying_alert_defaults_to_one_hour():
    rule = _rules()[1]  # docs/events-and-metrics.md patches /spec/groups/0/rules/1
    assert rule["alert"] == "RolloutDeployingTooLong"
    assert "> 3600" in rule["expr"] and 'bake_status="Deploying"' in rule["expr"]


# --- Grafana dashboard ------------------------------------------------------------------------


def _grafana(expr: str) -> str:
    """Grafana's template variables replaced by what they expand to."""
    return expr.replace("$__rate_interval", "5m").replace("$namespace", "shop|default")


def test_dashboard_queries_parse_and_use_existing_series():
    dashboard = json.loads((MONITORING / "rollouts-dashboard.json").read_text())
    known = known_series()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        assert_refers_to_existing_series(_grafana(expr), known)
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "namespace"]
    assert variable["query"]["query"] == "label_values(kuberik_rollout_info, namespace)"
    assert "namespace" in known["kuberik_rollout_info"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_monitoring_kustomization_builds():
    out = subprocess.run(
        ["kubectl", "kustomize", str(MONITORING)], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(out)}
    assert set(objects) == {
        ("PodMonitor", "rollout-hooks"),
        ("PrometheusRule", "kuberik-rollouts"),
        ("ClusterRole", "kuberik-rollout-state-metrics"),
        ("ConfigMap", "kuberik-rollout-dashboard"),
        ("ConfigMap", "kuberik-rollout-state-metrics"),
    }
    dashboard = objects[("ConfigMap", "kuberik-rollout-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    json.loads(dashboard["data"]["rollouts-dashboard.json"])
    monitor = objects[("PodMonitor", "rollout-hooks")]["spec"]
    deployment = yaml.safe_load((REPO / "metacontroller" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]
    assert monitor["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    assert monitor["podMetricsEndpoints"][0]["port"] in ports
