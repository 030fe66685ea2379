"""Reading what a Flux controller wrote into an object's status (pure; docs/targets.md).

Facts about Flux that the rules rely on:
- every condition carries its own `observedGeneration` (the generation it was written for);
- kustomize-controller and source-controller advance `status.observedGeneration` only when an
  attempt ends Ready=True (or Stalled), so after a failure it stays at the last success while
  `Ready=False` names the generation that failed;
- after a failed attempt Flux leaves `Reconciling=True` with reason `ProgressingWithRetry`
  until the retry starts; a running attempt has `Reconciling=True/Progressing` and
  `Ready=Unknown`;
- a fresh object has `status.observedGeneration: -1` (the CRDs' default) and no conditions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hooks.k8s import dig, get_condition, meta, parse_time

#: Flux messages copied into our status are cut to this many characters (docs/service.md).
MESSAGE_CHARS = 256

PROGRESSING_WITH_RETRY = "ProgressingWithRetry"
ARTIFACT_FAILED = "ArtifactFailed"
#: Ready=False reasons that mean "not done yet" rather than "failed" (docs/targets.md).
WAITING_REASONS = frozenset({"Progressing", "DependencyNotReady", "HealthCheckCanceled"})

CONTROLLERS = {"OCIRepository": "source-controller", "Kustomization": "kustomize-controller"}


def bounded(text: Any, limit: int = MESSAGE_CHARS) -> str:
    """An outside text on one line, at most `limit` characters (a pure function of the text)."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def generation(obj: Mapping) -> int | None:
    value = meta(obj).get("generation")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def observed_generation(obj: Mapping) -> int | None:
    value = dig(obj, "status", "observedGeneration")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def condition(obj: Mapping, type_: str) -> dict | None:
    return get_condition(dig(obj, "status", "conditions"), type_)


def is_true(cond: Mapping | None) -> bool:
    return cond is not None and cond.get("status") == "True"


def for_current(obj: Mapping, cond: Mapping | None) -> bool:
    """Whether `cond` was written for the object's current generation.

    Flux always sets the condition's own observedGeneration; without it, fall back to the
    status' observedGeneration (older writers)."""
    if cond is None:
        return False
    gen = generation(obj)
    if gen is None:
        return True
    written = cond.get("observedGeneration")
    if isinstance(written, int) and not isinstance(written, bool):
        return written == gen
    return observed_generation(obj) == gen


def retried(obj: Mapping) -> bool:
    """Flux finished a failed attempt and will retry (`Reconciling=True/ProgressingWithRetry`)."""
    reconciling = condition(obj, "Reconciling")
    return (
        is_true(reconciling)
        and reconciling is not None
        and reconciling.get("reason") == PROGRESSING_WITH_RETRY
    )


def suspended(obj: Mapping) -> bool:
    return dig(obj, "spec", "suspend") is True


@dataclass(frozen=True)
class Failure:
    """A failure Flux reports for the object's current generation."""

    reason: str
    message: str
    since: datetime | None  # the failing condition's lastTransitionTime

    @property
    def text(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason


def failure(obj: Mapping) -> Failure | None:
    """`Stalled=True`, or `Ready=False` for the current generation with a failing reason.

    `ArtifactFailed` counts only once Flux retried: before that the source may still be fetching
    the artifact (docs/targets.md, docs/spec/v1alpha1/healthcheck.md)."""
    stalled = condition(obj, "Stalled")
    if is_true(stalled) and stalled is not None and for_current(obj, stalled):
        return _failure_of(stalled)
    ready = condition(obj, "Ready")
    if ready is None or ready.get("status") != "False" or not for_current(obj, ready):
        return None
    reason = str(ready.get("reason") or "")
    if reason in WAITING_REASONS:
        return None
    if reason == ARTIFACT_FAILED and not retried(obj):
        return None
    return _failure_of(ready)


def _failure_of(cond: Mapping) -> Failure:
    return Failure(
        bounded(cond.get("reason") or "Failed", 64),
        bounded(cond.get("message")),
        parse_time(cond.get("lastTransitionTime")),
    )


def progress_message(obj: Mapping, kind: str) -> str:
    """What Flux is doing now, as `<reason>: <message>`, or that it has not got to it yet."""
    reconciling = condition(obj, "Reconciling")
    if is_true(reconciling) and reconciling is not None and reconciling.get("message"):
        return bounded(f"{reconciling.get('reason') or 'Reconciling'}: {reconciling.get('message')}")
    ready = condition(obj, "Ready")
    if (
        ready is not None
        and ready.get("status") != "True"
        and for_current(obj, ready)
        and ready.get("message")
    ):
        return bounded(f"{ready.get('reason') or 'NotReady'}: {ready.get('message')}")
    return waiting_for_generation(obj, kind)


def waiting_for_generation(obj: Mapping, kind: str) -> str:
    gen = generation(obj)
    controller = CONTROLLERS.get(kind, "Flux")
    return f"waiting for {controller} to reconcile generation {gen if gen is not None else '?'}"


def reconciled(obj: Mapping) -> bool:
    """Flux finished the current generation successfully: observed, not reconciling, Ready=True for it."""
    gen = generation(obj)
    if gen is not None and observed_generation(obj) != gen:
        return False
    if is_true(condition(obj, "Reconciling")):
        return False
    ready = condition(obj, "Ready")
    return is_true(ready) and for_current(obj, ready)


def revision_is(revision: Any, tag: str) -> bool:
    """`<tag>@<digest>`: the revision format of OCIRepository artifacts and what Kustomizations applied."""
    return isinstance(revision, str) and revision.startswith(f"{tag}@")
