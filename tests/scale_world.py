"""A simulated cluster for request-size tests: 2,000 Rollouts in 200 namespaces (docs/scale.md).

Objects look like what the API server returns to Metacontroller's informers: Rollouts applied by
Flux (server-side apply, so `managedFields` for kustomize-controller and for Metacontroller's
status writes), with a status as the controller writes it after months of use (10 history
entries, 30 available releases, every condition, gates and targets).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from hooks.k8s import format_time
from tests.metacontroller_select import Cluster

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
API = "kuberik.com/v1alpha1"
NAMESPACES = 200
ROLLOUTS_PER_NAMESPACE = 10
SHARED_NAMESPACE = "platform"
SHARED = {"rollout.kuberik.com/shared-health-checks": "true"}
CROSS = {"rollout.kuberik.com/cross-namespace-health": "true"}


def ts(minutes: float) -> str:
    return format_time(NOW + timedelta(minutes=minutes))


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def namespace(name: str, labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": hashlib.md5(name.encode()).hexdigest(),
            "resourceVersion": "1234",
            "creationTimestamp": ts(-90 * 24 * 60),
            "labels": {"kubernetes.io/metadata.name": name, **(labels or {})},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _condition(type_: str, status: str, reason: str, message: str, generation: int) -> dict:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": ts(-30),
        "observedGeneration": generation,
    }


def rollout(
    name: str, ns: str, *, selector: dict | None = None, labels: dict[str, str] | None = None
) -> dict:
    """A Rollout with the status a busy one carries."""
    generation = 7
    releases = [
        {"tag": f"1.{i}.0", "digest": digest(f"{ns}/{name}:{i}"), "discoveredAt": ts(-60 * (30 - i))}
        for i in range(30)
    ]
    history = [
        {
            "id": 40 - i,
            "version": releases[29 - i],
            "timestamp": ts(-60 * i - 5),
            "message": "Automatic deployment",
            "trigger": "Automatic",
            "triggeredBy": {"kind": "System", "name": "rollout-controller"},
            "bakeStatus": "Succeeded" if i else "InProgress",
            "bakeStatusMessage": "Bake completed successfully."
            if i
            else "Bake started, monitoring for errors.",
            "bakeStartTime": ts(-60 * i),
            **({"bakeEndTime": ts(-60 * i + 10)} if i else {}),
        }
        for i in range(10)
    ]
    conditions = [
        _condition("Ready", "True", "Deployed", "Release 1.29.0 deployed. Bake in progress.", generation),
        _condition("ReleasesUpdated", "True", "ReleasesUpdated", "Latest release 1.29.0", generation),
        _condition("GatesPassing", "True", "AllGatesPassing", "All gates are passing", generation),
        _condition(
            "DeploymentBlocked",
            "False",
            "HealthChecksHealthy",
            "No selected HealthCheck is unhealthy",
            generation,
        ),
        _condition("BakeFailureDisabled", "False", "Normal", "Normal bake", generation),
        _condition("TargetsSynced", "True", "AllTargetsSynced", "All targets carry 1.29.0", generation),
        _condition("Reconciling", "True", "Progressing", "Bake started, monitoring for errors.", generation),
        _condition("Stalled", "False", "Normal", "", generation),
    ]
    spec: dict[str, Any] = {
        "releasesImagePolicy": {"name": name},
        "versionHistoryLimit": 10,
        "releaseUpdateInterval": "5m",
        "bakeTime": "10m",
        "deployTimeout": "30m",
        "healthCheckSelector": selector or {"matchLabels": {"app": name}},
        "availableReleasesRetentionDays": 7,
        "availableReleasesMinCount": 30,
    }
    return {
        "apiVersion": API,
        "kind": "Rollout",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": hashlib.md5(f"{ns}/{name}".encode()).hexdigest(),
            "resourceVersion": "987654",
            "generation": generation,
            "creationTimestamp": ts(-60 * 24 * 60),
            "labels": {
                "app.kubernetes.io/name": name,
                "kustomize.toolkit.fluxcd.io/name": "apps",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                **(labels or {}),
            },
            "managedFields": [
                {
                    "manager": "kustomize-controller",
                    "operation": "Apply",
                    "apiVersion": API,
                    "time": ts(-600),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:kustomize.toolkit.fluxcd.io/name": {}}},
                        "f:spec": {f"f:{key}": {} for key in spec},
                    },
                },
                {
                    "manager": "metacontroller",
                    "operation": "Update",
                    "apiVersion": API,
                    "time": ts(-1),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:status": {".": {}, "f:history": {}, "f:conditions": {}}},
                    "subresource": "status",
                },
            ],
        },
        "spec": spec,
        "status": {
            "observedGeneration": generation,
            "conditions": conditions,
            "availableReleases": releases,
            "releaseCandidates": [],
            "gatedReleaseCandidates": [],
            "gates": [
                {"name": f"{name}-manual", "passing": True, "message": "Gate is passing"},
                {"name": f"office-hours-{name}-1a2b3c4d", "passing": True, "message": "Gate is passing"},
            ],
            "history": history,
            "targets": [
                {
                    "kind": "OCIRepository",
                    "name": f"{name}-manifests",
                    "field": "spec.ref.tag",
                    "desired": "1.29.0",
                    "observed": "1.29.0",
                    "state": "Synced",
                    "message": "stored artifact for revision '1.29.0@" + digest(name) + "'",
                },
                {
                    "kind": "Kustomization",
                    "name": name,
                    "field": "spec.postBuild.substitute.VERSION",
                    "desired": "1.29.0",
                    "observed": "1.29.0",
                    "state": "Synced",
                    "message": "Applied revision: 1.29.0@" + digest(name),
                },
            ],
            "acknowledgedAnnotations": {"rollout.kuberik.com/retry": "2026-11-01T10:00:00Z"},
        },
    }


def healthcheck(name: str, ns: str, labels: dict[str, str], cls: str = "kustomization") -> dict:
    return {
        "apiVersion": API,
        "kind": "HealthCheck",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": hashlib.md5(f"{ns}/{name}".encode()).hexdigest(),
            "generation": 1,
            "labels": labels,
            "annotations": {"healthcheck.kuberik.com/kustomization": name},
        },
        "spec": {"class": cls},
        "status": {
            "status": "Healthy",
            "message": "Applied revision: 1.29.0@" + digest(name),
            "lastChangeTime": ts(-20),
            "observedGeneration": 1,
        },
    }


def world(cross_namespace_rollouts: int = 20) -> Cluster:
    """200 namespaces of 10 Rollouts and 2 HealthChecks each, plus the shared namespace `platform`
    (opted in) whose check `edge` is selected by `cross_namespace_rollouts` Rollouts elsewhere."""
    cluster = Cluster()
    cluster.add(namespace(SHARED_NAMESPACE, SHARED))
    cluster.add(healthcheck("edge", SHARED_NAMESPACE, {"tier": "edge"}, cls="external"))
    crossing = 0
    for n in range(NAMESPACES):
        ns = f"team-{n:03d}"
        cluster.add(namespace(ns, {"env": "prod" if n % 4 == 0 else "dev"}))
        for r in range(ROLLOUTS_PER_NAMESPACE):
            name = f"app-{r}"
            if r == 0 and crossing < cross_namespace_rollouts:
                crossing += 1
                selector = {
                    "selector": {"matchLabels": {"tier": "edge"}},
                    "namespaceSelector": {"matchLabels": SHARED},
                }
                cluster.add(rollout(name, ns, selector=selector, labels=CROSS))
            else:
                cluster.add(rollout(name, ns))
        cluster.add(healthcheck("app-0", ns, {"app": "app-0"}), healthcheck("app-1", ns, {"app": "app-1"}))
    return cluster


def _flux_conditions(generation: int, message: str) -> list[dict]:
    return [
        _condition("Ready", "True", "ReconciliationSucceeded", message, generation),
    ]


def oci_repository(name: str, ns: str, *, driven_by: str | None = None, labelled: bool = False) -> dict:
    """An OCIRepository as source-controller reports it (artifact, Ready for its generation)."""
    revision = "1.29.0@" + digest(f"{ns}/{name}")
    labels = {
        "kustomize.toolkit.fluxcd.io/name": "flux-system",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    if labelled:
        labels["rollout.kuberik.com/driven"] = "true"
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": hashlib.md5(f"oci/{ns}/{name}".encode()).hexdigest(),
            "generation": 4,
            "resourceVersion": "55501",
            "labels": labels,
            "annotations": {"rollout.kuberik.com/rollout": driven_by} if driven_by else {},
        },
        "spec": {
            "interval": "5m",
            "url": f"oci://ghcr.io/example/{name}",
            "ref": {"tag": "1.29.0"},
            "provider": "generic",
            "timeout": "60s",
        },
        "status": {
            "observedGeneration": 4,
            "conditions": _flux_conditions(4, f"stored artifact for digest '{revision}'"),
            "artifact": {
                "digest": digest(name),
                "lastUpdateTime": ts(-30),
                "path": f"ocirepository/{ns}/{name}/{digest(name)}.tar.gz",
                "revision": revision,
                "size": 1843,
                "url": f"http://source-controller.flux-system.svc.cluster.local./ocirepository/{ns}/{name}.tar.gz",
            },
            "url": f"http://source-controller.flux-system.svc.cluster.local./ocirepository/{ns}/{name}/latest.tar.gz",
        },
    }


def flux_kustomization(name: str, ns: str, *, source: str, labelled: bool = False) -> dict:
    """A Kustomization as kustomize-controller reports it (inventory, applied revision)."""
    revision = "1.29.0@" + digest(f"{ns}/{source}")
    labels = {
        "kustomize.toolkit.fluxcd.io/name": "flux-system",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    if labelled:
        labels["rollout.kuberik.com/driven"] = "true"
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": hashlib.md5(f"ks/{ns}/{name}".encode()).hexdigest(),
            "generation": 3,
            "resourceVersion": "55502",
            "labels": labels,
        },
        "spec": {
            "interval": "10m",
            "path": "./",
            "prune": True,
            "wait": True,
            "sourceRef": {"kind": "OCIRepository", "name": source},
            "postBuild": {"substitute": {"CLUSTER": "prod-eu-1"}},
        },
        "status": {
            "observedGeneration": 3,
            "conditions": _flux_conditions(3, f"Applied revision: {revision}"),
            "lastAppliedRevision": revision,
            "lastAttemptedRevision": revision,
            "inventory": {
                "entries": [
                    {"id": f"{ns}_{name}_apps_Deployment", "v": "v1"},
                    {"id": f"{ns}_{name}__Service", "v": "v1"},
                    {"id": f"{ns}_{name}__ConfigMap", "v": "v1"},
                ]
            },
        },
    }


def flux_namespace(cluster: Cluster, ns: str, *, pairs: int, driven: str) -> None:
    """`pairs` OCIRepository + Kustomization pairs in `ns`; the first pair is driven by Rollout
    `driven` and labelled `rollout.kuberik.com/driven: "true"`."""
    for i in range(pairs):
        first = i == 0
        repo = f"component-{i}"
        cluster.add(
            oci_repository(repo, ns, driven_by=driven if first else None, labelled=first),
            flux_kustomization(repo, ns, source=repo, labelled=first),
        )
