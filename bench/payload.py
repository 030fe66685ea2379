"""Synthetic /rollout/sync requests the size of a busy namespace (for bench/run.py).

`rollout_request(objects)` builds a v2 CompositeController request for one Rollout in a
namespace holding `objects` Flux objects (half OCIRepositories, half Kustomizations, with the
metadata, managedFields, status conditions, artifacts and inventories Flux really writes),
a few of them annotated for the Rollout; 300 known releases; 100 HealthChecks; 20 gates; a
full history. The ImagePolicy announces a new release, so the sync has a decision to make.

`worst_case_status_request()` is the largest status the Rollout can be made to carry:
1000 releases with long tags and sha256 digests, the CRD's maximum history (100 entries)
with failed health checks.

Deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NS = "apps"
ROLLOUT = "web"
ANNOTATED = 6  # Flux objects that name the Rollout


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def _sha1(seed: str) -> str:
    return hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()


def _uid(seed: str) -> str:
    h = hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _metadata(kind: str, name: str, i: int, annotations: dict[str, str]) -> dict:
    created = ts(NOW - timedelta(days=90, minutes=i))
    return {
        "name": name,
        "namespace": NS,
        "uid": _uid(kind + name),
        "resourceVersion": str(1_000_000 + i),
        "generation": 3 + i % 5,
        "creationTimestamp": created,
        "labels": {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": f"team-{i % 17}",
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        },
        "annotations": annotations,
        "finalizers": ["finalizers.fluxcd.io"],
        "managedFields": [
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1"
                if kind == "OCIRepository"
                else "kustomize.toolkit.fluxcd.io/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {".": {}, "f:app.kubernetes.io/name": {}}},
                    "f:spec": {".": {}},
                },
                "manager": "kustomize-controller",
                "operation": "Apply",
                "time": created,
            },
            {
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {".": {}, "f:conditions": {}, "f:observedGeneration": {}}},
                "manager": "source-controller" if kind == "OCIRepository" else "kustomize-controller",
                "operation": "Update",
                "subresource": "status",
                "time": ts(NOW - timedelta(minutes=i % 60)),
            },
        ],
    }


def _conditions(i: int, revision: str) -> list[dict]:
    when = ts(NOW - timedelta(minutes=5 + i % 50))
    return [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Succeeded",
            "message": f"stored artifact for digest '{revision}'",
            "lastTransitionTime": when,
            "observedGeneration": 3 + i % 5,
        },
        {
            "type": "ArtifactInStorage",
            "status": "True",
            "reason": "Succeeded",
            "message": f"stored artifact for digest '{revision}'",
            "lastTransitionTime": when,
            "observedGeneration": 3 + i % 5,
        },
        {
            "type": "Healthy",
            "status": "True",
            "reason": "Succeeded",
            "message": "Health check passed in 2.1s",
            "lastTransitionTime": when,
            "observedGeneration": 3 + i % 5,
        },
    ]


def oci_repository(i: int, tag: str, rollout: str | None) -> dict:
    name = f"svc-{i:05d}"
    revision = f"{tag}@{digest(name + tag)}"
    annotations = {"meta.helm.sh/release-name": name}
    if rollout:
        annotations["rollout.kuberik.com/rollout"] = rollout
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": _metadata("OCIRepository", name, i, annotations),
        "spec": {
            "interval": "5m",
            "url": f"oci://ghcr.io/acme/manifests/{name}",
            "ref": {"tag": tag},
            "provider": "generic",
            "timeout": "60s",
            "layerSelector": {
                "mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip",
                "operation": "extract",
            },
        },
        "status": {
            "observedGeneration": 3 + i % 5,
            "url": f"http://source-controller.flux-system.svc.cluster.local./ocirepository/{NS}/{name}/latest.tar.gz",
            "artifact": {
                "path": f"ocirepository/{NS}/{name}/{digest(name)[7:19]}.tar.gz",
                "url": f"http://source-controller.flux-system.svc.cluster.local./ocirepository/{NS}/{name}/a.tar.gz",
                "revision": revision,
                "digest": digest(name + "artifact"),
                "lastUpdateTime": ts(NOW - timedelta(hours=i % 24)),
                "size": 10_000 + i,
                "metadata": {
                    "org.opencontainers.image.created": ts(NOW - timedelta(days=1)),
                    "org.opencontainers.image.revision": f"main@sha1:{_sha1(name)}",
                    "org.opencontainers.image.source": f"https://github.com/acme/{name}",
                },
            },
            "conditions": _conditions(i, revision),
        },
    }


def kustomization(i: int, tag: str, rollout: str | None) -> dict:
    name = f"app-{i:05d}"
    annotations = {"kustomize.toolkit.fluxcd.io/reconcile": "enabled"}
    if rollout:
        annotations[f"rollout.kuberik.com/substitute.APP_VERSION_{i}.from"] = rollout
    revision = f"{tag}@{digest(name + tag)}"
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": _metadata("Kustomization", name, i, annotations),
        "spec": {
            "interval": "10m",
            "retryInterval": "2m",
            "path": "./deploy/production",
            "prune": True,
            "wait": True,
            "timeout": "5m",
            "targetNamespace": NS,
            "sourceRef": {"kind": "OCIRepository", "name": f"svc-{i - 1:05d}"},
            "postBuild": {"substitute": {f"APP_VERSION_{i}": tag, "CLUSTER": "prod-eu-1", "REPLICAS": "3"}},
        },
        "status": {
            "observedGeneration": 3 + i % 5,
            "lastAppliedRevision": revision,
            "lastAttemptedRevision": revision,
            "lastHandledReconcileAt": ts(NOW - timedelta(hours=2)),
            "inventory": {
                "entries": [
                    {"id": f"{NS}_{name}-{kind.lower()}_{group}_{kind}", "v": "v1"}
                    for kind, group in (
                        ("Deployment", "apps"),
                        ("Service", ""),
                        ("ConfigMap", ""),
                        ("HorizontalPodAutoscaler", "autoscaling"),
                        ("ServiceAccount", ""),
                        ("PodDisruptionBudget", "policy"),
                    )
                ]
            },
            "conditions": _conditions(i, revision),
        },
    }


def release_tag(i: int) -> str:
    return f"1.{i // 100}.{i % 100}"


def releases(count: int, *, long_tags: bool = False) -> list[dict]:
    out = []
    for i in range(count):
        tag = release_tag(i)
        if long_tags:
            tag = f"v{tag}-rc.{i}.build-{'x' * 60}+sha.{_sha1(str(i))}"  # 128 characters, the OCI maximum
        out.append({"tag": tag, "digest": digest(tag), "discoveredAt": ts(NOW - timedelta(hours=count - i))})
    return out


def history(known: list[dict], entries: int, *, failed_checks: int = 0) -> list[dict]:
    out = []
    for n in range(min(entries, len(known))):
        release = known[-1 - n]
        failed = n % 2 == 1 and failed_checks > 0
        entry: dict[str, Any] = {
            "id": 1000 - n,
            "version": dict(release),
            "timestamp": release["discoveredAt"],
            "message": "Automatic deployment",
            "triggeredBy": {"kind": "System", "name": "rollout-controller"},
            "bakeStatus": "Failed" if failed else "Succeeded",
            "bakeStatusMessage": (
                "A HealthCheck reported an error after bake started."
                if failed
                else "Bake completed successfully."
            ),
            "bakeStartTime": release["discoveredAt"],
            "bakeEndTime": release["discoveredAt"],
        }
        if failed:
            entry["failedHealthChecks"] = [
                {
                    "name": f"check-{c:03d}",
                    "namespace": NS,
                    "message": f"error rate {c}% above the 1% threshold",
                }
                for c in range(failed_checks)
            ]
        out.append(entry)
    return out


def health_check(i: int) -> dict:
    selected = i % 2 == 0
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "HealthCheck",
        "metadata": {
            "name": f"check-{i:03d}",
            "namespace": NS,
            "labels": {"app": ROLLOUT if selected else f"other-{i}", "tier": "prod"},
            "annotations": {"healthcheck.kuberik.com/kustomization": f"app-{i:05d}"},
            "uid": _uid(f"check-{i}"),
            "resourceVersion": str(5000 + i),
        },
        "spec": {"class": "kustomization"},
        "status": {
            "status": "Healthy",
            "message": "Kustomization is Ready",
            "lastChangeTime": ts(NOW - timedelta(hours=3)),
            "lastErrorTime": ts(NOW - timedelta(days=2)),
        },
    }


def gate(i: int) -> dict:
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "RolloutGate",
        "metadata": {
            "name": f"gate-{i:02d}",
            "namespace": NS,
            "labels": {"rollout.kuberik.com/schedule": f"schedule-{i}"},
        },
        "spec": {
            "rolloutRef": {"name": ROLLOUT if i % 2 == 0 else f"other-{i}"},
            "passing": True,
            **({"allowedVersions": [release_tag(r) for r in range(200, 301)]} if i % 5 == 0 else {}),
        },
    }


def _group(objects: list[dict]) -> dict[str, dict]:
    return {f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": o for o in objects}


#: The label of driven Flux objects that `spec.targetSelection: Labeled` selects by
#: (docs/spec/v1alpha1/rollout.md#annotations).
DRIVEN_LABEL = "rollout.kuberik.com/driven"


def rollout_request(
    objects: int,
    *,
    release_count: int = 300,
    checks: int = 100,
    gates: int = 20,
    history_entries: int = 20,
    labeled: bool = False,
) -> dict:
    """A /rollout/sync request for a namespace of `objects` Flux objects.

    `labeled=True`: the Rollout has `spec.targetSelection: Labeled`, its driven objects carry
    the `rollout.kuberik.com/driven: "true"` label, and the request holds what Metacontroller
    then sends: only the labelled Flux objects (plus the ImagePolicy, gates and checks).
    """
    known = releases(release_count)
    deployed = known[-1]["tag"]
    announced = release_tag(release_count)
    ocis: list[dict] = []
    kss: list[dict] = []
    for i in range(objects):
        mine = ROLLOUT if i < ANNOTATED else None
        if labeled and mine is None:
            continue  # not labelled: Metacontroller's label selector leaves it out
        obj = oci_repository(i, deployed, mine) if i % 2 == 0 else kustomization(i, deployed, mine)
        if labeled:
            obj["metadata"]["labels"][DRIVEN_LABEL] = "true"
        (ocis if i % 2 == 0 else kss).append(obj)
    past = history(known, history_entries)
    status = {
        "observedGeneration": 7,
        "availableReleases": known,
        "releaseCandidates": [],
        "gatedReleaseCandidates": [],
        "gates": [],
        "history": past,
        "acknowledgedAnnotations": {},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "BakeSucceeded",
                "message": f"Release {deployed} deployed. Bake completed successfully.",
                "lastTransitionTime": ts(NOW - timedelta(hours=1)),
                "observedGeneration": 7,
            }
        ],
        "targets": [],
    }
    return {
        "controller": {
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "CompositeController",
            "metadata": {"name": "rollouts.kuberik.com"},
        },
        "parent": {
            "apiVersion": "kuberik.com/v1alpha1",
            "kind": "Rollout",
            "metadata": {
                "name": ROLLOUT,
                "namespace": NS,
                "generation": 7,
                "uid": _uid("rollout"),
                "resourceVersion": "42",
                "annotations": {},
            },
            "spec": {
                "releasesImagePolicy": {"name": ROLLOUT},
                "versionHistoryLimit": history_entries,
                "bakeTime": "10m",
                "deployTimeout": "30m",
                "healthCheckSelector": {"matchLabels": {"app": ROLLOUT}},
                "availableReleasesMinCount": release_count,
                **({"targetSelection": "Labeled"} if labeled else {}),
            },
            "status": status,
        },
        "children": {},
        "related": {
            "ImagePolicy.image.toolkit.fluxcd.io/v1": _group(
                [
                    {
                        "apiVersion": "image.toolkit.fluxcd.io/v1",
                        "kind": "ImagePolicy",
                        "metadata": {"name": ROLLOUT, "namespace": NS},
                        "spec": {
                            "imageRepositoryRef": {"name": ROLLOUT},
                            "policy": {"semver": {"range": ">=1.0.0"}},
                        },
                        "status": {
                            "latestRef": {
                                "name": "ghcr.io/acme/web",
                                "tag": announced,
                                "digest": digest(announced),
                            }
                        },
                    }
                ]
            ),
            "OCIRepository.source.toolkit.fluxcd.io/v1": _group(ocis),
            "Kustomization.kustomize.toolkit.fluxcd.io/v1": _group(kss),
            "HealthCheck.kuberik.com/v1alpha1": _group([health_check(i) for i in range(checks)]),
            "RolloutGate.kuberik.com/v1alpha1": _group([gate(i) for i in range(gates)]),
        },
        "finalizing": False,
    }


def worst_case_status_request() -> dict:
    """The largest status a Rollout can carry: 1000 long releases, 100 history entries with
    failed health checks, every HealthCheck unhealthy with a long message."""
    request = rollout_request(100, release_count=1, checks=100, gates=20, history_entries=1)
    known = releases(1000, long_tags=True)
    parent = request["parent"]
    parent["spec"]["versionHistoryLimit"] = 100
    parent["spec"]["availableReleasesMinCount"] = 1000
    parent["status"]["availableReleases"] = known
    # history holds the oldest releases, so none may be dropped and all are candidates
    # the deployed version is the oldest release: the other 999 are all candidates
    parent["status"]["history"] = history(list(reversed(known[:100])), 100, failed_checks=50)
    for check in request["related"]["HealthCheck.kuberik.com/v1alpha1"].values():
        check["status"].update(status="Unhealthy", message="error rate above threshold " + "!" * 500)
    policy = next(iter(request["related"]["ImagePolicy.image.toolkit.fluxcd.io/v1"].values()))
    policy["status"]["latestRef"]["tag"] = known[-1]["tag"]
    return request
