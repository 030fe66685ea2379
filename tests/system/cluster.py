"""The object store of the system test: the fake API server, holding every kind of the example.

`tests.fakekube.FakeKube` serves the REST paths the actuator patches (GET, guarded JSON Patch,
generation bumped on a spec change). This subclass stores the other kinds too (Namespaces,
Rollouts, HealthChecks, ImagePolicies, ...) under their real REST paths, and gives the
simulated controllers what the API server gives real ones: a list per kind, a status update
that fails on a stale resourceVersion (`UpdateStatus`), and an atomic read-modify-write.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

from tests.fakekube import FakeKube

#: kind -> (apiVersion, plural, namespaced): the kinds the example and the hooks use.
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("v1", "namespaces", False),
    "Rollout": ("kuberik.com/v1alpha1", "rollouts", True),
    "RolloutGate": ("kuberik.com/v1alpha1", "rolloutgates", True),
    "HealthCheck": ("kuberik.com/v1alpha1", "healthchecks", True),
    "RolloutSchedule": ("kuberik.com/v1alpha1", "rolloutschedules", True),
    "ClusterRolloutSchedule": ("kuberik.com/v1alpha1", "clusterrolloutschedules", False),
    "ImageRepository": ("image.toolkit.fluxcd.io/v1", "imagerepositories", True),
    "ImagePolicy": ("image.toolkit.fluxcd.io/v1", "imagepolicies", True),
    "OCIRepository": ("source.toolkit.fluxcd.io/v1", "ocirepositories", True),
    "Kustomization": ("kustomize.toolkit.fluxcd.io/v1", "kustomizations", True),
}


def kind_of(api_version: str, resource: str) -> str:
    """The kind served at apiVersion/resource (what Metacontroller's discovery answers)."""
    for kind, (version, plural, _) in KINDS.items():
        if (version, plural) == (api_version, resource):
            return kind
    raise KeyError(f"no kind served at {api_version} {resource}")


def rest_path(kind: str, namespace: str | None, name: str) -> str:
    api_version, plural, namespaced = KINDS[kind]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespaced:
        return f"{prefix}/namespaces/{namespace}/{plural}/{name}"
    return f"{prefix}/{plural}/{name}"


def key_of(obj: dict) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace") or "", meta["name"]


class Conflict(Exception):
    """409: the object changed since the copy an update was computed from."""


class Cluster(FakeKube):
    """FakeKube for every kind of the example; all access goes through the server's lock."""

    def put(self, obj: dict) -> str:
        kind, namespace, name = key_of(obj)
        stored = copy.deepcopy(obj)
        meta = stored["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("resourceVersion", "1")
        if "spec" in stored:
            meta.setdefault("generation", 1)
        path = rest_path(kind, namespace or None, name)
        with self._lock:
            self.objects[path] = stored
        return path

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        with self._lock:
            obj = self.objects.get(rest_path(kind, namespace, name))
            return copy.deepcopy(obj)

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        with self._lock:
            found = [copy.deepcopy(o) for o in self.objects.values() if o.get("kind") == kind]
        if namespace is not None:
            found = [o for o in found if o["metadata"].get("namespace") == namespace]
        return sorted(found, key=key_of)

    def start(self) -> Cluster:
        super().start()
        return self

    def versions(self) -> dict[str, str]:
        """REST path -> resourceVersion of every object (what a watch would announce)."""
        with self._lock:
            return {path: str(obj["metadata"].get("resourceVersion")) for path, obj in self.objects.items()}

    def mutate(self, kind: str, namespace: str | None, name: str, change: Callable[[dict], Any]) -> dict:
        """Read, change in place, write back (one atomic step); bumps resourceVersion if it changed."""
        path = rest_path(kind, namespace, name)
        with self._lock:
            current = self.objects[path]
            updated = copy.deepcopy(current)
            change(updated)
            if updated != current:
                self._bump(updated, spec_changed=updated.get("spec") != current.get("spec"))
                self.objects[path] = updated
            return copy.deepcopy(updated)

    def update_status(self, obj: dict, status: dict) -> bool:
        """`UpdateStatus` with the copy's resourceVersion: Conflict if the object moved on.

        Returns whether anything changed. Only the status is written (the status subresource).
        """
        kind, namespace, name = key_of(obj)
        path = rest_path(kind, namespace or None, name)
        with self._lock:
            current = self.objects[path]
            if current["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                raise Conflict(path)
            if current.get("status") == status:
                return False
            updated = copy.deepcopy(current)
            updated["status"] = copy.deepcopy(status)
            self._bump(updated, spec_changed=False)
            self.objects[path] = updated
            return True

    @staticmethod
    def _bump(obj: dict, *, spec_changed: bool) -> None:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(int(meta.get("resourceVersion") or 0) + 1)
        if spec_changed:
            meta["generation"] = int(meta.get("generation") or 0) + 1
