"""examples/prometheus/: the error-rate check, the label trick and the credentials sample fit together."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jsonpatch
import pytest
import yaml

from hooks.healthcheck import prometheus
from hooks.healthcheck.promclient import parse_credentials
from hooks.k8s import annotations_of, labels_of, selector_matches
from tests.crd_schema import object_errors
from tests.healthcheck_objects import NOW, rollout

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HERE = EXAMPLES / "prometheus"


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def one(path: Path, kind: str, name: str | None = None) -> dict:
    [found] = [o for o in load(path) if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return found


def podinfo_deployment() -> dict:
    """The podinfo Deployment as kustomize builds it from the podinfo manifests (trimmed)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": "podinfo"},
        "spec": {
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo"}},
                "spec": {
                    "containers": [
                        {
                            "name": "podinfod",
                            "image": "ghcr.io/stefanprodan/podinfo:6.7.0",
                            "ports": [
                                {"name": "http", "containerPort": 9898},
                                {"name": "http-metrics", "containerPort": 9797},
                            ],
                        }
                    ]
                },
            },
        },
    }


def flux_build(kustomization: dict, deployment: dict, variables: dict[str, str]) -> dict:
    """What kustomize-controller does: spec.patches during the build, then postBuild substitution."""
    built = deployment
    for entry in kustomization["spec"].get("patches", []):
        target = entry["target"]
        if (target["kind"], target["name"]) == (built["kind"], built["metadata"]["name"]):
            built = jsonpatch.apply_patch(built, yaml.safe_load(entry["patch"]))
    text = yaml.safe_dump(built)
    text = re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), m.group(0)), text)
    return yaml.safe_load(text)


def test_the_check_matches_its_crd_and_is_selected_by_the_rollout() -> None:
    check = one(HERE / "healthcheck-error-rate.yaml", "HealthCheck")
    assert object_errors(check) == []
    spec = prometheus.parse_spec(check)
    assert (spec.max, spec.for_text, spec.no_data) == (0.01, "2m", "Pending")
    selector = one(EXAMPLES / "rollout.yaml", "Rollout")["spec"]["healthCheckSelector"]["selector"]
    assert selector_matches(selector, labels_of(check))


def test_label_trick_scopes_the_query_to_the_deployed_version() -> None:
    ks = one(EXAMPLES / "flux-kustomizations.yaml", "Kustomization", "podinfo")
    # The variable that carries the label is the one the Rollout drives.
    assert annotations_of(ks)["rollout.kuberik.com/substitute"] == "VERSION"
    deployed = "6.7.1"
    built = flux_build(ks, podinfo_deployment(), {"VERSION": deployed})
    pod_labels = built["spec"]["template"]["metadata"]["labels"]
    assert pod_labels == {"app": "podinfo", "app.kubernetes.io/version": deployed}

    # The PodMonitor scrapes these pods and copies the label onto every series...
    monitor = one(HERE / "podmonitor.yaml", "PodMonitor")
    assert selector_matches(monitor["spec"]["selector"], pod_labels)
    assert "app.kubernetes.io/version" in monitor["spec"]["podTargetLabels"]
    ports = {p["name"] for p in built["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports

    # ...as Prometheus names it, which is what the rendered query asks for.
    check = one(HERE / "healthcheck-error-rate.yaml", "HealthCheck")
    query = prometheus.render(
        prometheus.parse_spec(check).query, "podinfo", [rollout(tag=deployed)], NOW, NOW
    )
    series_label = re.sub(r"[^A-Za-z0-9_]", "_", "app.kubernetes.io/version")
    assert f'{series_label}="{deployed}"' in query
    assert 'namespace="podinfo"' in query and "[1m]" in query
    assert "${" not in query


def test_credentials_sample_is_a_valid_credentials_file() -> None:
    credentials = parse_credentials(yaml.safe_load((HERE / "credentials.yaml").read_text()))
    assert {c.prefix for c in credentials} == {
        "https://mimir.example.com/prometheus",
        "https://thanos.example.com",
    }


def test_the_hook_deployment_mounts_the_credentials_secret() -> None:
    deployment = one(EXAMPLES.parent / "metacontroller" / "deployment.yaml", "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    path = Path(env["PROMETHEUS_CREDENTIALS_FILE"])
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent)]
    assert mount["readOnly"] is True
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "rollout-hooks-prometheus"
    assert volume["secret"]["optional"] is True  # absent: queries go without authentication
    assert path.name == "credentials.yaml"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_builds() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(HERE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc)
    assert kinds == ["HealthCheck", "PodMonitor"]
