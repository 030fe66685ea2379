"""One registry of the Kubernetes kinds the hooks read or write, with their API coordinates.

Customize rules, the actuator's REST paths and the schedules' children all take their
`apiVersion` and resource name from here, so a Flux API bump is a one-line change
(docs/compatibility.md lists the versions served).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Kind:
    """Where the API server serves one kind."""

    #: The kind as written in objects (`kind:`).
    kind: str
    #: The API group; "" for the core group.
    group: str
    #: The served version we read and write.
    version: str
    #: The REST resource name (plural, lower case).
    plural: str
    #: Whether objects live in a namespace.
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """`apiVersion` as objects and Metacontroller rules spell it (`group/version`, or `v1`)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def coordinates(self) -> tuple[str, str]:
        """(apiVersion, resource) as a Metacontroller rule names the kind."""
        return (self.api_version, self.plural)

    def path(self, namespace: str | None, name: str | None = None) -> str:
        """The REST path of the collection, or of one object when `name` is given."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is required")
            root += f"/namespaces/{namespace}"
        root += f"/{self.plural}"
        return f"{root}/{name}" if name else root


KUBERIK_GROUP: Final = "kuberik.com"
KUBERIK_VERSION: Final = "v1alpha1"

ROLLOUT: Final = Kind("Rollout", KUBERIK_GROUP, KUBERIK_VERSION, "rollouts")
ROLLOUT_GATE: Final = Kind("RolloutGate", KUBERIK_GROUP, KUBERIK_VERSION, "rolloutgates")
HEALTH_CHECK: Final = Kind("HealthCheck", KUBERIK_GROUP, KUBERIK_VERSION, "healthchecks")
ROLLOUT_SCHEDULE: Final = Kind("RolloutSchedule", KUBERIK_GROUP, KUBERIK_VERSION, "rolloutschedules")
CLUSTER_ROLLOUT_SCHEDULE: Final = Kind(
    "ClusterRolloutSchedule", KUBERIK_GROUP, KUBERIK_VERSION, "clusterrolloutschedules", namespaced=False
)
IMAGE_POLICY: Final = Kind("ImagePolicy", "image.toolkit.fluxcd.io", "v1", "imagepolicies")
OCI_REPOSITORY: Final = Kind("OCIRepository", "source.toolkit.fluxcd.io", "v1", "ocirepositories")
KUSTOMIZATION: Final = Kind("Kustomization", "kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
NAMESPACE: Final = Kind("Namespace", "", "v1", "namespaces", namespaced=False)
EVENT: Final = Kind("Event", "events.k8s.io", "v1", "events")

#: Every kind by its `kind:` name.
KINDS: Final[dict[str, Kind]] = {
    k.kind: k
    for k in (
        ROLLOUT,
        ROLLOUT_GATE,
        HEALTH_CHECK,
        ROLLOUT_SCHEDULE,
        CLUSTER_ROLLOUT_SCHEDULE,
        IMAGE_POLICY,
        OCI_REPOSITORY,
        KUSTOMIZATION,
        NAMESPACE,
        EVENT,
    )
}


def by_kind(kind: str) -> Kind:
    """The registry entry of `kind`; KeyError names the kinds known."""
    try:
        return KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}") from None
