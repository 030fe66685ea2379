"""HealthChecks selected by a Rollout and the health verdict (docs/spec/v1alpha1/rollout.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from hooks import tenancy
from hooks.k8s import dig, labels_of, meta, parse_time, selector_matches
from hooks.rollout.spec import HealthSelector, InvalidSpec, parse_health_selector


@dataclass(frozen=True)
class Check:
    """What the bake needs to know of one HealthCheck."""

    name: str
    namespace: str
    status: str | None
    message: str
    last_error: datetime | None
    last_change: datetime | None

    def summary(self, message: str | None = None) -> dict:
        return {"name": self.name, "namespace": self.namespace, "message": message or self.message}


def select(
    objects: list[dict], selector: HealthSelector, namespace: str, namespaces: list[dict]
) -> list[Check]:
    """Checks matching the selector, in namespace/name order (docs/spec/v1alpha1/rollout.md tenancy).

    A check of the Rollout's namespace counts when the Rollout has no namespaceSelector, or when
    its own Namespace matches it. A check of another namespace counts only when that Namespace
    was delivered, matches the namespaceSelector and opted in with
    `rollout.kuberik.com/shared-health-checks: "true"`: nothing of a namespace that did not opt
    in is read, whatever Metacontroller sent (docs/tenancy.md).
    """
    if selector.selects_nothing:
        return []
    checks = []
    for obj in objects:
        md = meta(obj)
        ns = md.get("namespace")
        ns = ns if isinstance(ns, str) and ns else namespace
        if not _namespace_allowed(ns, selector, namespace, namespaces):
            continue
        if not selector_matches(selector.selector, labels_of(obj)):
            continue
        status = dig(obj, "status", "status")
        message = dig(obj, "status", "message")
        checks.append(
            Check(
                name=str(md.get("name", "")),
                namespace=ns,
                status=status if isinstance(status, str) else None,
                message=message if isinstance(message, str) else "",
                last_error=parse_time(dig(obj, "status", "lastErrorTime")),
                last_change=parse_time(dig(obj, "status", "lastChangeTime")),
            )
        )
    return sorted(checks, key=lambda c: (c.namespace, c.name))


def _namespace_allowed(ns: str, selector: HealthSelector, own: str, namespaces: list[dict]) -> bool:
    if selector.namespace_selector is None:
        return ns == own
    if not selector_matches(selector.namespace_selector, tenancy.namespace_labels(ns, namespaces)):
        return False
    return ns == own or tenancy.shares_health_checks(ns, namespaces)


def cross_namespace_label_note(rollout: Mapping) -> str | None:
    """The Ready note for a Rollout that looks in other namespaces without the opt-in label.

    HealthChecks of other namespaces relate only Rollouts labelled
    `rollout.kuberik.com/cross-namespace-health: "true"` (docs rollout.md), so without it those checks
    are never reset by this Rollout's deployments and cannot become freshly Healthy for them.
    None when nothing needs saying (no namespaceSelector, the label is set, or the selector is
    invalid: the sync reports that as InvalidSpec).
    """
    try:
        selector = parse_health_selector(dig(rollout, "spec", "healthCheckSelector"))
    except InvalidSpec:
        return None
    if selector.selects_nothing or selector.namespace_selector is None or tenancy.is_cross_namespace(rollout):
        return None
    return (
        "healthCheckSelector.namespaceSelector is set but the Rollout lacks the label "
        f'{tenancy.CROSS_NAMESPACE_HEALTH_LABEL}: "true": HealthChecks in other namespaces '
        "do not see this Rollout and are not reset by its deployments"
    )


def unhealthy_message(checks: list[Check]) -> str | None:
    """The verdict: None when healthy, else the message naming the first unhealthy check."""
    for check in checks:
        if check.status == "Unhealthy":
            text = f"HealthCheck '{check.name}' in namespace '{check.namespace}' is not healthy"
            return f"{text}: {check.message}" if check.message else text
    return None
