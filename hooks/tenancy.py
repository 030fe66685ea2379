"""Namespaces as tenants (docs/tenancy.md): the opt-in labels and the checks on them.

A Rollout reads and affects only its own namespace, except HealthChecks (and the Kustomizations
of `class: kustomization` checks) in a Namespace labelled `shared-health-checks: "true"`.
Both the Rollout hook and the HealthCheck decorator decide with these functions, so the two
sides of the relation never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hooks.k8s import labels_of, meta

#: On a Namespace: its HealthChecks may be selected, read and reset by Rollouts of other namespaces.
SHARED_HEALTH_CHECKS_LABEL = "rollout.kuberik.com/shared-health-checks"
#: On a Rollout: it selects HealthChecks in other namespaces, so their decorator relates it.
CROSS_NAMESPACE_HEALTH_LABEL = "rollout.kuberik.com/cross-namespace-health"
#: Kubernetes labels every Namespace with its own name (immutable, since 1.21).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
OPT_IN_VALUE = "true"

#: The requirement added to a namespaceSelector so Metacontroller only lists opted-in namespaces.
SHARED_REQUIREMENT = {"key": SHARED_HEALTH_CHECKS_LABEL, "operator": "In", "values": [OPT_IN_VALUE]}


def find_namespace(name: str, namespaces: Iterable[Mapping]) -> Mapping | None:
    """The Namespace object called `name` among related objects, None when not delivered."""
    for obj in namespaces:
        if isinstance(obj, Mapping) and meta(obj).get("name") == name:
            return obj
    return None


def namespace_labels(name: str, namespaces: Iterable[Mapping]) -> dict[str, str]:
    """Labels of the Namespace `name`; only the name label Kubernetes sets when it was not delivered."""
    obj = find_namespace(name, namespaces)
    labels = labels_of(obj) if obj is not None else {}
    labels.setdefault(NAMESPACE_NAME_LABEL, name)
    return labels


def shares_health_checks(name: str, namespaces: Iterable[Mapping]) -> bool:
    """True only when the Namespace was delivered and opted in (fails closed when it is missing)."""
    obj = find_namespace(name, namespaces)
    return obj is not None and labels_of(obj).get(SHARED_HEALTH_CHECKS_LABEL) == OPT_IN_VALUE


def with_shared_requirement(namespace_selector: Mapping) -> dict:
    """`namespace_selector` narrowed to namespaces that opted in (an AND of both)."""
    narrowed = dict(namespace_selector)
    expressions = namespace_selector.get("matchExpressions")
    kept = expressions if isinstance(expressions, list) else []
    narrowed["matchExpressions"] = [*kept, SHARED_REQUIREMENT]
    return narrowed


def is_cross_namespace(rollout: Mapping) -> bool:
    """The Rollout carries `cross-namespace-health: "true"`."""
    return labels_of(rollout).get(CROSS_NAMESPACE_HEALTH_LABEL) == OPT_IN_VALUE
