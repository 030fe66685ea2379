"""Which Rollouts select a HealthCheck (SPEC §1.1 `healthCheckSelector`).

The selector shapes are read by the Rollout's own parser, so both sides of the
Rollout/HealthCheck relation interpret a selector the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hooks.k8s import labels_of, meta, selector_matches
from hooks.rollout.spec import parse_health_selector

#: Kubernetes labels every Namespace with its own name (immutable, since 1.21).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def object_key(obj: Mapping) -> tuple[str, str]:
    """(namespace, name) of an object, "" for what is missing."""
    metadata = meta(obj)
    namespace, name = metadata.get("namespace"), metadata.get("name")
    return (namespace if isinstance(namespace, str) else "", name if isinstance(name, str) else "")


def namespace_labels(namespace: str, namespaces: Iterable[Mapping]) -> dict[str, str]:
    """Labels of the Namespace object named `namespace`.

    When Metacontroller did not deliver it, only the label Kubernetes puts on every
    namespace is known.
    """
    for obj in namespaces:
        if object_key(obj)[1] == namespace:
            labels = labels_of(obj)
            labels.setdefault(NAMESPACE_NAME_LABEL, namespace)
            return labels
    return {NAMESPACE_NAME_LABEL: namespace}


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


def selecting_rollouts(
    rollouts: Iterable[Mapping], check: Mapping, namespaces: Iterable[Mapping]
) -> list[Mapping]:
    """The Rollouts that select the check, in namespace/name order."""
    labels = namespace_labels(object_key(check)[0], namespaces)
    chosen = [r for r in rollouts if isinstance(r, Mapping) and rollout_selects(r, check, labels)]
    return sorted(chosen, key=object_key)
