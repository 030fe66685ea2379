"""The Rollout's conditions (docs/spec/v1alpha1/rollout.md): one setter, one reporter per condition type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hooks.api.rollout import Condition, ConditionType, Reason
from hooks.k8s import make_condition
from hooks.rollout import bake
from hooks.rollout.bounds import CONDITION_MESSAGE_CHARS, cut

ORDER = tuple(ConditionType)


@dataclass
class Conditions:
    """The conditions being written, against the persisted ones (for lastTransitionTime)."""

    previous: Any
    generation: int | None
    now: datetime
    ours: dict[str, Condition] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)

    def set(self, type_: ConditionType, status: bool, reason: str, message: str) -> None:
        """The one setter: lastTransitionTime moves only when status does; messages bounded."""
        text = cut(message, CONDITION_MESSAGE_CHARS)
        self.ours[type_.value] = make_condition(  # type: ignore[assignment]
            self.previous, type_.value, status, str(reason), text, self.now, self.generation
        )

    def drop(self, type_: ConditionType) -> None:
        """A condition of ours that no longer applies (UpstreamVerified without spec.promotion)."""
        self.ours.pop(type_.value, None)
        self.dropped.add(type_.value)

    def merged(self) -> list[dict[str, Any]]:
        """Ours in a fixed order, then foreign ones kept as they were."""
        out: list[dict[str, Any]] = [dict(self.ours[t]) for t in ORDER if t in self.ours]
        for cond in self.previous if isinstance(self.previous, list) else []:
            if (
                isinstance(cond, dict)
                and cond.get("type") not in self.ours
                and cond.get("type") not in self.dropped
            ):
                out.append(cond)
        return out


# --- reporters ------------------------------------------------------------------------------


def releases_updated(c: Conditions, reason: str, message: str) -> None:
    c.set(ConditionType.RELEASES_UPDATED, reason == Reason.RELEASES_UPDATED, reason, message)


def gates_passing(c: Conditions, status: bool, reason: str, message: str) -> None:
    c.set(ConditionType.GATES_PASSING, status, reason, message)


@dataclass(frozen=True)
class Blocking:
    """What stops automatic deploys now, in the order DeploymentBlocked reports it (§3.5)."""

    manual: bool
    suspended: bool
    bake_failed: bool  # the deployed bake Failed without a fresh unblock-failed
    held: str | None  # the hold's message, when it keeps a candidate out
    unhealthy: str | None  # the verdict, when its exceptions do not apply
    unhealthy_ignored: str | None  # the verdict and why it is ignored


def deployment_blocked(c: Conditions, b: Blocking) -> None:
    t = ConditionType.DEPLOYMENT_BLOCKED
    if b.manual:
        c.set(t, False, Reason.MANUAL_DEPLOYMENT, "Manual deployment requested")
    elif b.suspended:
        c.set(t, True, Reason.SUSPENDED, "spec.suspend is true: no automatic deploys")
    elif b.bake_failed:
        c.set(
            t,
            True,
            Reason.BAKE_FAILED,
            "The deployed version's bake failed; set unblock-failed, retry or deploy by hand",
        )
    elif b.held is not None:
        c.set(t, True, Reason.HELD, b.held)
    elif b.unhealthy is not None:
        c.set(t, True, Reason.UNHEALTHY_HEALTH_CHECKS, b.unhealthy)
    else:
        c.set(
            t,
            False,
            Reason.HEALTH_CHECKS_HEALTHY,
            b.unhealthy_ignored or "No selected HealthCheck is unhealthy",
        )


def bake_failure_disabled(c: Conditions, status: bool, reason: str, message: str) -> None:
    c.set(ConditionType.BAKE_FAILURE_DISABLED, status, reason, message)


def reconciling(c: Conditions, head: Any) -> None:
    """kstatus: True/Progressing while the deployed entry bakes, message = its bake message."""
    state = head.get("bakeStatus") if isinstance(head, dict) else None
    if state in bake.ACTIVE:
        message = head.get("bakeStatusMessage") or state
        c.set(ConditionType.RECONCILING, True, Reason.PROGRESSING, str(message))
    else:
        c.set(ConditionType.RECONCILING, False, Reason.SUCCEEDED, "Nothing in progress")


def stalled(c: Conditions, reason: str | None, message: str) -> None:
    """kstatus: True with the reason while an operator must act (BakeFailed, RollbackFailed,
    InvalidSpec), whatever Ready's reason."""
    if reason is None:
        c.set(ConditionType.STALLED, False, Reason.NORMAL, "No operator action needed")
    else:
        c.set(ConditionType.STALLED, True, reason, message)


@dataclass(frozen=True)
class ReadyFacts:
    """Everything Ready may say, before the precedence picks one (§3.12)."""

    invalid: str | None = None
    rollback_failed: str | None = None
    bake_failed: str | None = None
    targets_failing: str | None = None
    force_unknown: str | None = None
    no_releases: bool = False
    releases_known: bool = False  # some release is known (nothing could be deployed yet)
    deployed: str | None = None
    bake_message: str = ""
    bake_succeeded: bool = False
    notes: Sequence[str] = ()


def ready_reason(f: ReadyFacts) -> tuple[bool, str, str]:
    """The first that applies: InvalidSpec, RollbackFailed, BakeFailed, TargetsFailing,
    ForceDeployVersionUnknown, NoReleasesAvailable, BakeSucceeded, Deployed."""
    summary = f"Release {f.deployed} deployed. {f.bake_message}".strip() if f.deployed else ""
    if f.invalid is not None:
        return False, Reason.INVALID_SPEC, f.invalid
    if f.rollback_failed is not None:
        return False, Reason.ROLLBACK_FAILED, f.rollback_failed
    if f.bake_failed is not None:
        return False, Reason.BAKE_FAILED, f.bake_failed
    if f.targets_failing is not None:
        return False, Reason.TARGETS_FAILING, f.targets_failing
    if f.force_unknown is not None:
        return (
            False,
            Reason.FORCE_DEPLOY_VERSION_UNKNOWN,
            f"force-deploy version {f.force_unknown} is not a known release",
        )
    if f.no_releases:
        if f.releases_known and not f.deployed:  # known, but none may be deployed yet
            text = (
                "No release has been deployed yet: GatesPassing, DeploymentBlocked and "
                "UpstreamVerified say what holds the known releases back."
            )
        else:
            text = " ".join(p for p in ("No releases are known yet.", summary) if p)
        return False, Reason.NO_RELEASES_AVAILABLE, text
    if f.bake_succeeded:
        return True, Reason.BAKE_SUCCEEDED, summary
    return True, Reason.DEPLOYED, summary


def ready(c: Conditions, f: ReadyFacts) -> str:
    """Ready with the notes appended (they never change its reason); returns the reason."""
    status, reason, message = ready_reason(f)
    notes = [n for n in f.notes if n]
    if notes:
        message = f"{message} ({'; '.join(notes)})" if message else "; ".join(notes)
    c.set(ConditionType.READY, status, reason, message)
    return reason


def upstream_verified(c: Conditions, verdict: tuple[bool, str, str] | None) -> None:
    """docs/promotion.md: set while spec.promotion.from names upstreams, removed otherwise."""
    if verdict is None:
        c.drop(ConditionType.UPSTREAM_VERIFIED)
    else:
        c.set(ConditionType.UPSTREAM_VERIFIED, *verdict)


def targets_synced(c: Conditions, status: bool, reason: str, message: str) -> None:
    c.set(ConditionType.TARGETS_SYNCED, status, reason, message)
