"""Health of a `class: kustomization` HealthCheck, read from a Flux Kustomization.

The rules: docs/spec/v1alpha1/healthcheck.md.

Flux computes the health of what a Kustomization applied when `spec.wait: true` or
`spec.healthChecks` is set; this module only translates its conditions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from hooks import fluxstatus
from hooks.healthcheck.revision import awaited_tag, source_ref
from hooks.healthcheck.selection import object_key
from hooks.k8s import annotations_of, meta, parse_time

CLASS = "kustomization"
ANNOTATION = "healthcheck.kuberik.com/kustomization"
#: Ready=False reasons that fail the check at once; ArtifactFailed only once Flux retried.
FAILED_READY_REASONS = frozenset({"HealthCheckFailed", "ReconciliationFailed", "BuildFailed", "PruneFailed"})
ARTIFACT_FAILED = fluxstatus.ARTIFACT_FAILED
#: Flux messages in a check's status are cut to this many characters (docs/service.md).
MESSAGE_CHARS = 512

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


def _flux_text(cond: Mapping | None) -> str:
    """Flux's own words from a condition (its message, else its reason), bounded."""
    if cond is None:
        return ""
    return fluxstatus.bounded(cond.get("message") or cond.get("reason") or "", MESSAGE_CHARS)


def _with(prefix: str, flux_text: str) -> str:
    return f"{prefix}: {flux_text}" if flux_text else prefix


def _failed_this_generation(kustomization: Mapping) -> bool:
    """Flux finished an attempt at the current generation, and it failed.

    kustomize-controller advances `status.observedGeneration` only on success and, after a
    failure, keeps `Reconciling=True` with reason `ProgressingWithRetry` next to `Ready=False`
    for the generation that failed. Without this, "generation lag or Reconciling => Pending"
    would never let a failed new revision become Unhealthy."""
    ready = fluxstatus.condition(kustomization, "Ready")
    return (
        ready is not None
        and ready.get("status") == "False"
        and fluxstatus.for_current(kustomization, ready)
        and fluxstatus.retried(kustomization)
    )


def assess(kustomization: Mapping | None, namespace: str, name: str) -> Verdict:
    """The Kustomization's health in the order docs/targets.md gives; never raises on malformed objects."""
    ref = f"Kustomization {namespace}/{name}"
    if kustomization is None:
        return Verdict(UNHEALTHY, f"{ref} not found")
    if meta(kustomization).get("deletionTimestamp"):
        return Verdict(PENDING, f"{ref} is being deleted")
    if fluxstatus.suspended(kustomization):
        return Verdict(PENDING, f"{ref} is suspended")
    stalled = fluxstatus.condition(kustomization, "Stalled")
    if fluxstatus.is_true(stalled) and stalled is not None:
        since = parse_time(stalled.get("lastTransitionTime"))
        return Verdict(UNHEALTHY, _flux_text(stalled) or f"{ref} is stalled", since)
    generation = fluxstatus.generation(kustomization)
    reconciling = fluxstatus.condition(kustomization, "Reconciling")
    ready = fluxstatus.condition(kustomization, "Ready")
    lagging = generation is not None and fluxstatus.observed_generation(kustomization) != generation
    if (lagging or fluxstatus.is_true(reconciling)) and not _failed_this_generation(kustomization):
        waiting = f"waiting for {ref} to reconcile generation {generation if generation is not None else '?'}"
        now_doing = reconciling if fluxstatus.is_true(reconciling) else ready
        if now_doing is ready and not (ready is not None and fluxstatus.for_current(kustomization, ready)):
            now_doing = None  # a Ready of an older generation says nothing about this one
        return Verdict(PENDING, _with(waiting, _flux_text(now_doing)))
    if ready is None:
        return Verdict(PENDING, f"waiting for {ref} to report Ready")
    if ready.get("status") == "True" and fluxstatus.for_current(kustomization, ready):
        return Verdict(HEALTHY, _flux_text(ready) or f"{ref} is ready")
    reason = ready.get("reason")
    failed_time = parse_time(ready.get("lastTransitionTime"))
    if ready.get("status") == "False" and (
        reason in FAILED_READY_REASONS or (reason == ARTIFACT_FAILED and fluxstatus.retried(kustomization))
    ):
        return Verdict(UNHEALTHY, _flux_text(ready) or f"{ref} failed ({reason})", failed_time)
    return Verdict(PENDING, _with(f"waiting for {ref} to become ready", _flux_text(ready)))


def source_failure(kustomization: Mapping, repositories: Iterable[Mapping]) -> str | None:
    """What the Kustomization's OCIRepository source reports, when it reports a failure."""
    source = source_ref(kustomization)
    if source is None:
        return None
    repository = find(repositories, *source)
    if repository is None:
        return None
    label = f"OCIRepository {source[0]}/{source[1]}"
    if fluxstatus.suspended(repository):
        return f"{label} is suspended"
    failure = fluxstatus.failure(repository)
    return f"{label} failed: {failure.text}" if failure is not None else None


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
    if kustomization is None:
        return verdict
    repositories = list(repositories)
    if verdict.status == HEALTHY:
        tag = awaited_tag(kustomization, repositories, rollouts)
        if tag is not None:
            verdict = Verdict(PENDING, f"waiting for {tag} to be applied")
    if verdict.status == PENDING:
        failure = source_failure(kustomization, repositories)
        if failure is not None:  # waiting for a source that cannot deliver: say why
            verdict = Verdict(PENDING, fluxstatus.bounded(f"{verdict.message}; {failure}", MESSAGE_CHARS))
    return verdict
