"""HealthChecks selected by a Rollout and the health verdict (SPEC §3.5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hooks.k8s import dig, labels_of, meta, parse_time, selector_matches
from hooks.rollout.spec import HealthSelector


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
    """Checks matching the selector, in namespace/name order.

    Without a namespaceSelector only the Rollout's namespace counts. With one, Metacontroller
    already limited the related objects; when Namespace objects are present we check too.
    """
    if selector.selects_nothing:
        return []
    allowed_ns: set[str] | None = {namespace}
    if selector.namespace_selector is not None:
        allowed_ns = None
        if namespaces:
            allowed_ns = {
                str(meta(ns).get("name"))
                for ns in namespaces
                if selector_matches(selector.namespace_selector, labels_of(ns))
            }
    checks = []
    for obj in objects:
        md = meta(obj)
        ns = str(md.get("namespace", namespace))
        if allowed_ns is not None and ns not in allowed_ns:
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


def unhealthy_message(checks: list[Check]) -> str | None:
    """The verdict: None when healthy, else the message naming the first unhealthy check."""
    for check in checks:
        if check.status == "Unhealthy":
            text = f"HealthCheck '{check.name}' in namespace '{check.namespace}' is not healthy"
            return f"{text}: {check.message}" if check.message else text
    return None
