"""Health of a `class: kustomization` HealthCheck, read from a Flux Kustomization (SPEC §5.2).

Flux computes the health of what a Kustomization applied when `spec.wait: true` or
`spec.healthChecks` is set; this module only translates its conditions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from hooks.healthcheck.revision import awaited_tag
from hooks.healthcheck.selection import object_key
from hooks.k8s import annotations_of, dig, get_condition, meta, parse_time

CLASS = "kustomization"
ANNOTATION = "healthcheck.kuberik.com/kustomization"
FAILED_READY_REASONS = frozenset(
    {"HealthCheckFailed", "ReconciliationFailed", "BuildFailed", "ArtifactFailed"}
)

#: Reason of `Reconciling=True` that Flux leaves after a failed attempt, until the retry starts.
RETRY_REASON = "ProgressingWithRetry"

HEALTHY, UNHEALTHY, PENDING = "Healthy", "Unhealthy", "Pending"

_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class BadReference(ValueError):
    """The HealthCheck does not name a Kustomization usably; the message says why."""


@dataclass(frozen=True)
class Verdict:
    """What the Kustomization says: status, message, and when the failure began (Unhealthy)."""

    status: str
    message: str
    error_time: datetime | None = None


def kustomization_ref(check: Mapping) -> tuple[str, str]:
    """(namespace, name) from the annotation; `<name>` means the check's own namespace."""
    value = annotations_of(check).get(ANNOTATION)
    if value is None:
        raise BadReference(f"annotation {ANNOTATION} is not set")
    if not isinstance(value, str) or not value.strip():
        raise BadReference(f"annotation {ANNOTATION} is empty")
    parts = value.split("/")
    if len(parts) == 1:
        parts = [object_key(check)[0], parts[0]]
    if len(parts) != 2 or not all(_DNS_NAME.match(part) for part in parts):
        raise BadReference(
            f"annotation {ANNOTATION}={value!r} is invalid: expected <name> or <namespace>/<name>"
        )
    return parts[0], parts[1]


def find(objects: Iterable[Mapping], namespace: str, name: str) -> Mapping | None:
    for obj in objects:
        if object_key(obj) == (namespace, name):
            return obj
    return None


def _message(condition: Mapping, fallback: str) -> str:
    text = condition.get("message")
    return text if isinstance(text, str) and text.strip() else fallback


def _failed_attempt(conditions: object, generation: object, observed: object) -> bool:
    """Flux finished an attempt at the current generation, and it failed.

    kustomize-controller advances `status.observedGeneration` only on success and, after a
    failure, keeps `Reconciling=True` with reason `ProgressingWithRetry` next to
    `Ready=False/<failure>`; the Ready condition's own `observedGeneration` names the generation
    that failed. Read literally, "generation lag or Reconciling ⇒ Pending" would never let a
    failed new revision become Unhealthy, and its bake would never fail on the error.
    """
    ready = get_condition(conditions, "Ready")
    if ready is None or ready.get("status") != "False" or ready.get("reason") not in FAILED_READY_REASONS:
        return False
    reconciling = get_condition(conditions, "Reconciling")
    if (
        reconciling is not None
        and reconciling.get("status") == "True"
        and reconciling.get("reason") != RETRY_REASON
    ):
        return False  # a new attempt is in flight
    if not isinstance(generation, int):
        return True
    tried = ready.get("observedGeneration")
    return tried == generation if isinstance(tried, int) else observed == generation


def assess(kustomization: Mapping | None, namespace: str, name: str) -> Verdict:
    """The Kustomization's health, in SPEC order; never raises on malformed objects."""
    ref = f"Kustomization {namespace}/{name}"
    if kustomization is None:
        return Verdict(UNHEALTHY, f"{ref} not found")
    if meta(kustomization).get("deletionTimestamp"):
        return Verdict(PENDING, f"{ref} is being deleted")
    generation = meta(kustomization).get("generation")
    observed = dig(kustomization, "status", "observedGeneration")
    conditions = dig(kustomization, "status", "conditions")
    reconciling = get_condition(conditions, "Reconciling")
    failed = _failed_attempt(conditions, generation, observed)
    if isinstance(generation, int) and observed != generation and not failed:
        return Verdict(
            PENDING, f"{ref} has not reconciled generation {generation} yet (observed: {observed})"
        )
    if reconciling is not None and reconciling.get("status") == "True" and not failed:
        return Verdict(PENDING, _message(reconciling, f"{ref} is reconciling"))
    stalled = get_condition(conditions, "Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return Verdict(
            UNHEALTHY,
            _message(stalled, f"{ref} is stalled ({stalled.get('reason')})"),
            parse_time(stalled.get("lastTransitionTime")),
        )
    ready = get_condition(conditions, "Ready")
    if ready is None:
        return Verdict(PENDING, f"{ref} has no Ready condition yet")
    if ready.get("status") == "True":
        return Verdict(HEALTHY, _message(ready, f"{ref} is ready"))
    if ready.get("status") == "False" and ready.get("reason") in FAILED_READY_REASONS:
        return Verdict(
            UNHEALTHY,
            _message(ready, f"{ref} failed ({ready.get('reason')})"),
            parse_time(ready.get("lastTransitionTime")),
        )
    return Verdict(PENDING, _message(ready, f"{ref} is not ready yet"))


def health(
    check: Mapping,
    kustomizations: Iterable[Mapping],
    repositories: Iterable[Mapping],
    rollouts: Iterable[Mapping],
) -> Verdict:
    """The verdict for a `class: kustomization` check, including the deployed-revision rule."""
    try:
        namespace, name = kustomization_ref(check)
    except BadReference as exc:
        return Verdict(UNHEALTHY, str(exc))
    kustomization = find(kustomizations, namespace, name)
    verdict = assess(kustomization, namespace, name)
    if verdict.status == HEALTHY and kustomization is not None:
        tag = awaited_tag(kustomization, repositories, rollouts)
        if tag is not None:
            return Verdict(PENDING, f"waiting for {tag} to be applied")
    return verdict
