"""Which Rollouts select a HealthCheck (`healthCheckSelector`, docs/spec/v1alpha1/rollout.md).

The selector shapes are read by the Rollout's own parser, so both sides of the
Rollout/HealthCheck relation interpret a selector the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hooks import tenancy
from hooks.k8s import labels_of, meta, selector_matches
from hooks.rollout.spec import parse_health_selector


def object_key(obj: Mapping) -> tuple[str, str]:
    """(namespace, name) of an object, "" for what is missing."""
    metadata = meta(obj)
    namespace, name = metadata.get("namespace"), metadata.get("name")
    return (namespace if isinstance(namespace, str) else "", name if isinstance(name, str) else "")


def rollout_selects(rollout: Mapping, check: Mapping, check_namespace_labels: Mapping[str, str]) -> bool:
    """True when the Rollout's healthCheckSelector selects the HealthCheck.

    An invalid selector, or one that selects nothing, selects nothing (never raises).
    """
    spec = rollout.get("spec")
    if not isinstance(spec, Mapping):
        return False
    try:
        health = parse_health_selector(spec.get("healthCheckSelector"))
    except ValueError:
        return False
    if health.selects_nothing:
        return False
    rollout_namespace = object_key(rollout)[0]
    check_namespace = object_key(check)[0]
    try:
        if health.namespace_selector is None:
            if check_namespace != rollout_namespace:
                return False
        elif not selector_matches(health.namespace_selector, check_namespace_labels):
            return False
        return selector_matches(health.selector, labels_of(check))
    except ValueError:
        return False


def may_select(rollout: Mapping, check: Mapping, namespaces: Iterable[Mapping]) -> bool:
    """Tenancy (docs/tenancy.md): a Rollout of another namespace counts only when the check's Namespace
    opted in and the Rollout carries the cross-namespace label it is related by (docs/tenancy.md)."""
    check_namespace = object_key(check)[0]
    if object_key(rollout)[0] == check_namespace:
        return True
    return tenancy.is_cross_namespace(rollout) and tenancy.shares_health_checks(check_namespace, namespaces)


def selecting_rollouts(
    rollouts: Iterable[Mapping], check: Mapping, namespaces: Iterable[Mapping]
) -> list[Mapping]:
    """The Rollouts that select the check and may act on it, in namespace/name order."""
    namespaces = [ns for ns in namespaces if isinstance(ns, Mapping)]
    labels = tenancy.namespace_labels(object_key(check)[0], namespaces)
    chosen = [
        r
        for r in rollouts
        if isinstance(r, Mapping) and may_select(r, check, namespaces) and rollout_selects(r, check, labels)
    ]
    return sorted(chosen, key=object_key)


def foreign_namespace_refused(namespace: str, check: Mapping, namespaces: Iterable[Mapping]) -> str | None:
    """Why the check may not read objects of `namespace` (None when it may): another namespace
    is readable only when it opted in with `rollout.kuberik.com/shared-health-checks: "true"`."""
    if namespace == object_key(check)[0] or tenancy.shares_health_checks(namespace, namespaces):
        return None
    return (
        f"namespace {namespace} does not share health checks: it needs the label "
        f'{tenancy.SHARED_HEALTH_CHECKS_LABEL}: "true" before a HealthCheck of another namespace may read it'
    )
