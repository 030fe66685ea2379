"""Builders for HealthCheck hook tests: objects and requests shaped as Metacontroller sends them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from hooks.k8s import format_time
from tests import flux_objects

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CRD = Path(__file__).resolve().parent.parent / "crds" / "healthchecks.kuberik.com.yaml"

GROUP_KEYS = {
    "Rollout": "Rollout.kuberik.com/v1alpha1",
    "Kustomization": "Kustomization.kustomize.toolkit.fluxcd.io/v1",
    "Namespace": "Namespace.v1",
    "OCIRepository": "OCIRepository.source.toolkit.fluxcd.io/v1",
}
API_VERSIONS = {
    "Rollout": "kuberik.com/v1alpha1",
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
    "Namespace": "v1",
    "OCIRepository": "source.toolkit.fluxcd.io/v1",
}


def at(minutes: float = 0, seconds: float = 0) -> str:
    """NOW shifted by `minutes` (and `seconds`), as a status timestamp."""
    return format_time(NOW + timedelta(minutes=minutes, seconds=seconds))


def healthcheck(
    name: str = "app-health",
    namespace: str = "team",
    cls: str | None = "kustomization",
    target: str | None = "app",
    labels: dict | None = None,
    status: dict | None = None,
) -> dict:
    annotations = {} if target is None else {"healthcheck.kuberik.com/kustomization": target}
    obj: dict[str, Any] = {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "HealthCheck",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 1,
            "labels": {"app": "web"} if labels is None else labels,
            "annotations": annotations,
        },
        "spec": {} if cls is None else {"class": cls},
    }
    if status is not None:
        obj["status"] = status
    return obj


def rollout(
    name: str = "web",
    namespace: str = "team",
    selector: Any = None,
    tag: str | None = "v2",
    timestamp: str | None = None,
    retry: str | None = None,
    cross_namespace: bool = False,
) -> dict:
    """A Rollout as a HealthCheck sync sees it.

    `cross_namespace` adds the label the HealthCheck relates by (docs/tenancy.md).
    """
    spec: dict[str, Any] = {"releasesImagePolicy": {"name": name}}
    spec["healthCheckSelector"] = {"matchLabels": {"app": "web"}} if selector is None else selector
    history = []
    if tag is not None:
        entry: dict[str, Any] = {
            "id": 2,
            "version": {"tag": tag},
            "timestamp": timestamp or at(-10),
            "bakeStatus": "Deploying",
        }
        if retry is not None:
            entry["lastRetryTimestamp"] = retry
        history.append(entry)
    labels = {"rollout.kuberik.com/cross-namespace-health": "true"} if cross_namespace else {}
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace, "generation": 1, "labels": labels},
        "spec": spec,
        "status": {"history": history},
    }


def condition(type_: str, status: str, reason: str, message: str = "", when: str | None = None) -> dict:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": when or at(-5),
    }


READY = condition("Ready", "True", "ReconciliationSucceeded", "Applied revision: v2@sha256:abc")


def kustomization(
    name: str = "app",
    namespace: str = "team",
    generation: int = 3,
    observed: int | None = 3,
    conditions: list | None = None,
    substitute: dict | None = None,
    annotations: dict | None = None,
    applied: str | None = None,
    source: str | None = None,
) -> dict:
    spec: dict[str, Any] = {"interval": "5m", "path": "./", "prune": True, "wait": True}
    spec["postBuild"] = {"substitute": {"VERSION": "v2"} if substitute is None else substitute}
    spec["sourceRef"] = {"kind": "OCIRepository" if source else "GitRepository", "name": source or "repo"}
    written = observed if isinstance(observed, int) and observed > 0 else generation
    conditions = [READY] if conditions is None else conditions
    # Flux writes each condition's own observedGeneration: the generation it was written for.
    conditions = [{"observedGeneration": written, **c} for c in conditions]
    status: dict[str, Any] = {"conditions": conditions}
    if observed is not None:
        status["observedGeneration"] = observed
    if applied is not None:
        status["lastAppliedRevision"] = applied
    if annotations is None:
        annotations = {"rollout.kuberik.com/rollout": "web", "rollout.kuberik.com/substitute": "VERSION"}
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": generation,
            "annotations": annotations,
        },
        "spec": spec,
        "status": status,
    }


def oci_repository(name: str = "app-repo", namespace: str = "team", rollout_name: str | None = "web") -> dict:
    """An OCIRepository source-controller reconciled: Ready for v2 (tests/flux_objects.py)."""
    obj = flux_objects.ocirepository(name, "v2", rollout=rollout_name)
    obj["metadata"]["namespace"] = namespace
    return flux_objects.ready(obj, "v2")


def namespace(name: str = "team", labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def request(check: dict, *related: dict, envelope: str = "parent") -> dict:
    """A v2 DecoratorController sync request (`envelope="object"` for the v1 key)."""
    groups: dict[str, dict] = {key: {} for key in GROUP_KEYS.values()}
    for obj in related:
        md = obj["metadata"]
        key = f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"]
        groups[GROUP_KEYS[obj["kind"]]][key] = obj
    return {
        "controller": {"kind": "DecoratorController", "metadata": {"name": "healthchecks"}},
        envelope: copy.deepcopy(check),
        "related": groups,
        "attachments": {},
    }


def with_status(body: dict, status: dict | None) -> dict:
    """The same request after Metacontroller persisted `status` (None leaves it as it was)."""
    body = copy.deepcopy(body)
    if status is not None:
        body["parent" if "parent" in body else "object"]["status"] = status
    return body


def status_schema() -> dict:
    """The CRD's status schema, closed: a field outside it is an error."""
    crd = yaml.safe_load(CRD.read_text())
    schema = copy.deepcopy(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"])
    schema["additionalProperties"] = False
    return schema
