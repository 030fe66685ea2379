"""Flux objects shaped as the Flux controllers write them, one clock and one namespace.

Facts the shapes follow (source-controller, kustomize-controller and fluxcd/pkg runtime):
- a fresh object has `status: {observedGeneration: -1}` (the CRDs' status default) and no
  conditions until the controller first reconciles it;
- every condition carries its own `observedGeneration`: the generation it was written for;
- `status.observedGeneration` advances only when an attempt ends Ready=True or Stalled, so a
  failed attempt leaves it at the last success while `Ready=False` names the failed generation;
- an attempt in flight has `Reconciling=True/Progressing` (kustomize-controller also sets
  `Ready=Unknown/Progressing "Reconciliation in progress"`; source-controller leaves a Ready
  that is True or False as it was); after a failure `Reconciling` stays True with reason
  `ProgressingWithRetry`; on success `Reconciling` is removed;
- OCIRepository revisions are `<tag>@sha256:<hex>`; a Kustomization records the source revision
  it applied in `lastAppliedRevision` and the one it tried in `lastAttemptedRevision`;
- a spec change (our patch, `spec.suspend`) bumps `metadata.generation`; while suspended
  kustomize-controller skips the reconcile but, if Ready is True, still records the generation.

Each transition returns a new object; the input is not changed.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

NS = "shop"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROLLOUT = "app"
OCI_URL = "oci://ghcr.io/acme/app-manifests"


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def at(minutes: float = 0) -> datetime:
    """The one clock of the fixtures: T0 shifted by `minutes`."""
    return T0 + timedelta(minutes=minutes)


def digest(tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"ghcr.io/acme/app-manifests:{tag}".encode()).hexdigest()


def revision(tag: str) -> str:
    """The revision source-controller records for an OCI tag: `<tag>@sha256:<hex>`."""
    return f"{tag}@{digest(tag)}"


# --- objects as created (never reconciled) ---------------------------------------------------


def ocirepository(
    name: str = "manifests",
    tag: str | None = "1.0.0",
    *,
    rollout: str | None = ROLLOUT,
    generation: int = 1,
    **ref: str,
) -> dict:
    """An OCIRepository Flux has not reconciled yet (`observedGeneration: -1`)."""
    spec_ref: dict[str, Any] = dict(ref)
    if tag is not None:
        spec_ref["tag"] = tag
    annotations = {"rollout.kuberik.com/rollout": rollout} if rollout else {}
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": name, "namespace": NS, "generation": generation, "annotations": annotations},
        "spec": {"interval": "5m", "url": OCI_URL, "ref": spec_ref},
        "status": {"observedGeneration": -1},
    }


def kustomization(
    name: str = "app",
    *,
    source: str = "manifests",
    annotations: dict | None = None,
    substitute: dict | None = None,
    depends_on: list[str] | None = None,
    generation: int = 1,
    wait: bool = True,
) -> dict:
    """A Kustomization Flux has not reconciled yet (`observedGeneration: -1`)."""
    spec: dict[str, Any] = {
        "interval": "10m",
        "path": "./deploy",
        "prune": True,
        "wait": wait,
        "timeout": "5m",
        "sourceRef": {"kind": "OCIRepository", "name": source},
    }
    if substitute is not None:
        spec["postBuild"] = {"substitute": dict(substitute)}
    if depends_on:
        spec["dependsOn"] = [{"name": dep} for dep in depends_on]
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": name,
            "namespace": NS,
            "generation": generation,
            "annotations": dict(annotations or {}),
        },
        "spec": spec,
        "status": {"observedGeneration": -1},
    }


def image_policy(tag: str, name: str = ROLLOUT, *, ordering: str = "semver") -> dict:
    """An ImagePolicy (image.toolkit.fluxcd.io/v1, Flux 2.7+) that selected `tag`."""
    policy = {"semver": {"range": ">=0.0.0-0"}} if ordering == "semver" else {"alphabetical": {}}
    resolved = f"Latest image tag for ghcr.io/acme/app resolved to {tag}"
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "metadata": {"name": name, "namespace": NS, "generation": 1},
        "spec": {"imageRepositoryRef": {"name": name}, "policy": policy},
        "status": {
            "observedGeneration": 1,
            "latestRef": {"name": "ghcr.io/acme/app", "tag": tag, "digest": digest(f"app:{tag}")},
            "conditions": [_cond("Ready", "True", "Succeeded", resolved, 1, T0)],
        },
    }


# --- transitions -------------------------------------------------------------------------------


def _cond(type_: str, status: str, reason: str, message: str, generation: int, when: datetime) -> dict:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": ts(when),
    }


def _set(obj: dict, cond: dict) -> None:
    """conditions.Set: replace the condition of that type; keep lastTransitionTime if status is equal."""
    conditions = obj["status"].setdefault("conditions", [])
    for i, old in enumerate(conditions):
        if old["type"] == cond["type"]:
            if old["status"] == cond["status"]:
                cond = {**cond, "lastTransitionTime": old["lastTransitionTime"]}
            conditions[i] = cond
            return
    conditions.append(cond)


def _delete(obj: dict, type_: str) -> None:
    obj["status"]["conditions"] = [c for c in obj["status"].get("conditions", []) if c["type"] != type_]


def _copy(obj: dict) -> dict:
    new = copy.deepcopy(obj)
    new.setdefault("status", {"observedGeneration": -1})
    return new


def generation(obj: dict) -> int:
    return int(obj["metadata"]["generation"])


def patched(obj: dict, *path_and_value: Any) -> dict:
    """A spec change as the API server stores it: the field set and `generation` bumped."""
    *path, value = path_and_value
    new = _copy(obj)
    node = new
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    new["metadata"]["generation"] = generation(obj) + 1
    return new


def reconciling(obj: dict, when: datetime = T0, message: str | None = None) -> dict:
    """An attempt at the current generation is in flight."""
    new = _copy(obj)
    gen = generation(new)
    if new["kind"] == "Kustomization":
        tag = source_revision_hint(new)
        text = message or f"Fetching manifests for revision {tag} with a timeout of 5m0s"
        _set(new, _cond("Ready", "Unknown", "Progressing", "Reconciliation in progress", gen, when))
        _set(new, _cond("Reconciling", "True", "Progressing", text, gen, when))
    else:
        text = message or "reconciliation in progress"
        _set(new, _cond("Reconciling", "True", "Progressing", text, gen, when))
        ready = [c for c in new["status"].get("conditions", []) if c["type"] == "Ready"]
        if not ready or ready[0]["status"] == "Unknown":
            _set(new, _cond("Ready", "Unknown", "Progressing", text, gen, when))
    return new


def source_revision_hint(obj: dict) -> str:
    return str(obj["status"].get("lastAttemptedRevision") or obj["status"].get("lastAppliedRevision") or "")


def failed(obj: dict, reason: str, message: str, when: datetime = T0, *, retried: bool = True) -> dict:
    """The attempt at the current generation failed with Flux's `reason`.

    `retried=False` is the moment before Flux finalizes the attempt (no `Reconciling` left, as
    when kustomize-controller finds the source artifact missing before it starts)."""
    new = _copy(obj)
    gen = generation(new)
    _set(new, _cond("Ready", "False", reason, message, gen, when))
    if new["kind"] == "OCIRepository":
        _set(new, _cond("FetchFailed", "True", reason, message, gen, when))
    if retried:
        _set(new, _cond("Reconciling", "True", "ProgressingWithRetry", message, gen, when))
    else:
        _delete(new, "Reconciling")
    return new


def stalled(obj: dict, reason: str, message: str, when: datetime = T0) -> dict:
    """Flux gave up on this generation (it will not retry until the spec changes)."""
    new = _copy(obj)
    gen = generation(new)
    _set(new, _cond("Ready", "False", reason, message, gen, when))
    _set(new, _cond("Stalled", "True", reason, message, gen, when))
    _delete(new, "Reconciling")
    new["status"]["observedGeneration"] = gen
    return new


def dependency_not_ready(obj: dict, dependency: str, when: datetime = T0) -> dict:
    """kustomize-controller waits for a `dependsOn` Kustomization (a waiting reason)."""
    new = _copy(obj)
    message = f"dependency '{NS}/{dependency}' is not ready"
    _set(new, _cond("Ready", "False", "DependencyNotReady", message, generation(new), when))
    return new


def ready(obj: dict, tag: str, when: datetime = T0, *, applied: str | None = None) -> dict:
    """Flux finished the current generation: OCIRepository stored `tag`'s artifact, or a
    Kustomization applied `applied` (default: the OCI revision of `tag`)."""
    new = _copy(obj)
    gen = generation(new)
    _delete(new, "Reconciling")
    _delete(new, "Stalled")
    if new["kind"] == "OCIRepository":
        rev = revision(tag)
        _delete(new, "FetchFailed")
        new["status"]["artifact"] = {
            "revision": rev,
            "digest": digest(tag),
            "path": f"ocirepository/{NS}/{new['metadata']['name']}/{digest(tag).split(':')[1]}.tar.gz",
            "url": f"http://source-controller.flux-system.svc.cluster.local./ocirepository/{NS}/x.tar.gz",
            "lastUpdateTime": ts(when),
            "size": 2048,
        }
        new["status"]["url"] = f"http://source-controller.flux-system.svc.cluster.local./ocirepository/{NS}"
        stored = f"stored artifact for digest '{rev}'"
        _set(new, _cond("ArtifactInStorage", "True", "Succeeded", stored, gen, when))
        _set(new, _cond("Ready", "True", "Succeeded", stored, gen, when))
    else:
        rev = applied or revision(tag)
        new["status"]["lastAppliedRevision"] = rev
        new["status"]["lastAttemptedRevision"] = rev
        if new["spec"].get("wait"):
            _set(new, _cond("Healthy", "True", "Succeeded", "Health check passed in 2.1s", gen, when))
        _set(new, _cond("Ready", "True", "ReconciliationSucceeded", f"Applied revision: {rev}", gen, when))
    new["status"]["observedGeneration"] = gen
    return new


def attempted(obj: dict, tag: str) -> dict:
    """A Kustomization started on `tag`'s revision (`lastAttemptedRevision`)."""
    new = _copy(obj)
    new["status"]["lastAttemptedRevision"] = revision(tag)
    return new


def suspended(obj: dict, value: bool = True) -> dict:
    """`spec.suspend` set (or cleared): a spec change; while Ready is True the generation is recorded."""
    new = patched(obj, "spec", "suspend", value)
    conditions = new["status"].get("conditions", [])
    if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
        new["status"]["observedGeneration"] = generation(new)
    return new


def resumed(obj: dict) -> dict:
    return suspended(obj, False)


def deleting(obj: dict, when: datetime = T0) -> dict:
    new = _copy(obj)
    new["metadata"]["deletionTimestamp"] = ts(when)
    new["metadata"]["finalizers"] = ["finalizers.fluxcd.io"]
    return new
