"""What the Rollout sync hook writes: the status and its parts, typed (docs/spec/v1alpha1/rollout.md).

TypedDicts are plain dicts at run time, so reading and writing them costs nothing on the hot path.
Each field's comment is the CRD description (crds/rollouts.kuberik.com.yaml); a test checks the
keys equal the CRD status properties.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypedDict


class BakeStatus(StrEnum):
    """Where a deployment's bake is (history[].bakeStatus)."""

    DEPLOYING = "Deploying"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class TargetState(StrEnum):
    """What Flux reports for one driven field (targets[].state, docs/targets.md)."""

    PENDING = "Pending"
    APPLYING = "Applying"
    SYNCED = "Synced"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    ERROR = "Error"
    BLOCKED = "Blocked"


class Trigger(StrEnum):
    """What made a deployment happen (history[].trigger)."""

    AUTOMATIC = "Automatic"
    PIN = "Pin"
    FORCE_DEPLOY = "ForceDeploy"
    ROLLBACK = "Rollback"
    ADOPTION = "Adoption"


_TRIGGERS = frozenset(t.value for t in Trigger)

#: Triggers an operator asked for: automation may move a Flux object back for these.
MANUAL_TRIGGERS = frozenset({Trigger.PIN, Trigger.FORCE_DEPLOY})


class HoldReason(StrEnum):
    """Why automatic deploys wait (hold.reason)."""

    MANUAL_ROLLBACK = "ManualRollback"
    AUTOMATIC_ROLLBACK = "AutomaticRollback"


class Reason(StrEnum):
    """Condition reasons the Rollout hook writes."""

    # Ready
    DEPLOYED = "Deployed"
    BAKE_SUCCEEDED = "BakeSucceeded"
    BAKE_FAILED = "BakeFailed"
    ROLLBACK_FAILED = "RollbackFailed"
    NO_RELEASES_AVAILABLE = "NoReleasesAvailable"
    INVALID_SPEC = "InvalidSpec"
    FORCE_DEPLOY_VERSION_UNKNOWN = "ForceDeployVersionUnknown"
    TARGETS_FAILING = "TargetsFailing"
    # ReleasesUpdated
    RELEASES_UPDATED = "ReleasesUpdated"
    IMAGE_POLICY_NOT_FOUND = "ImagePolicyNotFound"
    IMAGE_POLICY_NOT_READY = "ImagePolicyNotReady"
    NO_LATEST_REF = "NoLatestRef"
    UNSUPPORTED_FILTER = "UnsupportedFilter"
    # GatesPassing
    GATES_BYPASSED = "GatesBypassed"
    SOME_GATES_BLOCKING = "SomeGatesBlocking"
    NO_ALLOWED_VERSIONS = "NoAllowedVersions"
    ALL_GATES_PASSING = "AllGatesPassing"
    # DeploymentBlocked
    MANUAL_DEPLOYMENT = "ManualDeployment"
    SUSPENDED = "Suspended"
    HELD = "Held"
    UNHEALTHY_HEALTH_CHECKS = "UnhealthyHealthChecks"
    HEALTH_CHECKS_HEALTHY = "HealthChecksHealthy"
    # BakeFailureDisabled
    PREVIOUS_BAKE_FAILED = "PreviousBakeFailed"
    DEPLOYED_WITH_UNHEALTHY_HEALTH_CHECKS = "DeployedWithUnhealthyHealthChecks"
    NORMAL = "Normal"
    # TargetsSynced
    ALL_TARGETS_SYNCED = "AllTargetsSynced"
    TARGETS_PENDING = "TargetsPending"
    TARGETS_SUSPENDED = "TargetsSuspended"
    NO_TARGETS = "NoTargets"
    # Reconciling
    PROGRESSING = "Progressing"
    SUCCEEDED = "Succeeded"
    # UpstreamVerified (docs/promotion.md)
    VERIFIED = "Verified"
    WAITING_FOR_UPSTREAM = "WaitingForUpstream"
    UPSTREAM_NOT_FOUND = "UpstreamNotFound"
    UPSTREAM_NOT_EXPORTED = "UpstreamNotExported"


class ConditionType(StrEnum):
    READY = "Ready"
    RELEASES_UPDATED = "ReleasesUpdated"
    GATES_PASSING = "GatesPassing"
    DEPLOYMENT_BLOCKED = "DeploymentBlocked"
    BAKE_FAILURE_DISABLED = "BakeFailureDisabled"
    TARGETS_SYNCED = "TargetsSynced"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    UPSTREAM_VERIFIED = "UpstreamVerified"


class Condition(TypedDict, total=False):
    """One condition (metav1.Condition)."""

    #: Type of the condition, in CamelCase.
    type: str
    #: Status of the condition - True, False or Unknown.
    status: str
    #: A programmatic identifier, in CamelCase, for the condition's last transition.
    reason: str
    #: A human-readable message with details about the condition.
    message: str
    #: When the condition's status last changed.
    lastTransitionTime: str
    #: The metadata.generation the condition was computed for.
    observedGeneration: int


class VersionInfo(TypedDict, total=False):
    """A release."""

    #: The image tag of the release.
    tag: str
    #: The image digest the ImagePolicy reported with the tag, if any.
    digest: str
    #: When the controller first saw the tag.
    discoveredAt: str


class GateSummary(TypedDict, total=False):
    """The evaluation of one RolloutGate."""

    #: Name of the RolloutGate.
    name: str
    #: Whether the gate lets automatic deployments through.
    passing: bool
    #: The tags the gate restricts automatic deployments to; unset means any.
    allowedVersions: list[str]
    #: What the gate does to the current candidates.
    message: str
    #: True while the rollout.kuberik.com/bypass-gates annotation overrides the gate.
    bypassGates: bool


class TriggeredBy(TypedDict, total=False):
    """Who caused the deployment."""

    #: User (named by the rollout.kuberik.com/deploy-user annotation) or System (the controller).
    kind: str
    #: The user's name, or rollout-controller for System.
    name: str


class FailedHealthCheck(TypedDict, total=False):
    """A HealthCheck that failed the bake."""

    #: Name of the HealthCheck.
    name: str
    #: Namespace of the HealthCheck.
    namespace: str
    #: Why the HealthCheck counted as failed.
    message: str


class HistoryEntry(TypedDict, total=False):
    """One deployment and its bake."""

    #: Sequence number of the deployment, 1 + the largest id in the history; never reused.
    id: int
    #: The deployed release (VersionInfo).
    version: VersionInfo
    #: When the deployment was decided; never before the previous entry's timestamp.
    timestamp: str
    #: Why the deployment happened.
    message: str
    #: Automatic, Pin, ForceDeploy, Rollback or Adoption.
    trigger: str
    #: The id of the failed deployment an automatic rollback answers.
    rollbackOf: int
    #: Set when this deployment cleared status.hold: the id of the deployment that set the hold.
    clearedHold: int
    #: True when the entry records what the targets already carried (adoption).
    adopted: bool
    #: Who caused the deployment.
    triggeredBy: TriggeredBy
    #: Where the deployment's bake is.
    bakeStatus: str
    #: Details of the bake status.
    bakeStatusMessage: str
    #: When the bake started (targets synced and health checks freshly healthy).
    bakeStartTime: str
    #: When the bake succeeded, failed or was cancelled.
    bakeEndTime: str
    #: When the bake was last restarted with the rollout.kuberik.com/retry annotation.
    lastRetryTimestamp: str
    #: The HealthChecks that made the bake fail.
    failedHealthChecks: list[FailedHealthCheck]


class TargetStatus(TypedDict, total=False):
    """One field of a Flux object driven by this Rollout."""

    #: Kind of the Flux object.
    kind: str
    #: Name of the Flux object, in the Rollout's namespace.
    name: str
    #: The driven field - spec.ref.tag or spec.postBuild.substitute.<VAR> (or a read-only field).
    field: str
    #: The value the field should carry (the deployed version).
    desired: str
    #: The value the field carried when last observed; unset when absent.
    observed: str
    #: What Flux reports for the field (TargetState).
    state: str
    #: Details of the state, such as Flux's reason and message.
    message: str
    #: When the target first failed; kept while it keeps failing, removed once it recovers.
    errorSince: str


class Hold(TypedDict, total=False):
    """Automatic deploys wait for a release later than resumeAfter (after a rollback)."""

    #: ManualRollback or AutomaticRollback.
    reason: str
    #: Automatic deploys consider only releases strictly after this tag.
    resumeAfter: str
    #: When the hold was set.
    since: str
    #: The id of the history entry that set the hold.
    historyId: int
    #: What resumes automation.
    message: str


class PromotionSource(TypedDict, total=False):
    """What this Rollout read of one upstream Rollout named in spec.promotion.from."""

    #: Name of the upstream Rollout.
    name: str
    #: Namespace of the upstream Rollout.
    namespace: str
    #: Whether the upstream Rollout exists (it may still not export to this namespace).
    found: bool
    #: The version the upstream has deployed (only when it exports to this namespace).
    deployed: str
    #: The releases the upstream verified, the 20 best, best first.
    verified: list[str]


class PromotionStatus(TypedDict, total=False):
    """The upstream Rollouts this Rollout promotes from."""

    #: One entry per upstream in spec.promotion.from, in that order.
    sources: list[PromotionSource]


class RolloutStatus(TypedDict, total=False):
    """Observed state, written as a whole by the rollout controller's sync hook."""

    #: The metadata.generation of the Rollout this status was computed for.
    observedGeneration: int
    #: The latest observations of the Rollout, one per type.
    conditions: list[Condition]
    #: Every known release, oldest first.
    availableReleases: list[VersionInfo]
    #: Tags of the releases after the deployed version, best first.
    releaseCandidates: list[str]
    #: The release candidates every RolloutGate allows, best first.
    gatedReleaseCandidates: list[str]
    #: A summary of every RolloutGate of this Rollout, in name order.
    gates: list[GateSummary]
    #: Deployments, newest first; history[0] is the deployed version.
    history: list[HistoryEntry]
    #: The Flux objects annotated for this Rollout, one entry per driven field.
    targets: list[TargetStatus]
    #: Operator annotations already acted on, as annotation key to value.
    acknowledgedAnnotations: dict[str, str]
    #: Set while automatic deploys wait for a release later than the one rolled back from.
    hold: Hold
    #: What the upstream Rollouts of spec.promotion verified; absent without spec.promotion.
    promotion: PromotionStatus


# --- history entries as persisted ----------------------------------------------------------


def entry_from_status(raw: Any) -> HistoryEntry | None:
    """A history entry read from status: a copy that keeps every field, known or not.

    None for something that is not an object (the caller keeps it as it was). Nothing an
    older controller wrote is dropped; typed readers below interpret the known fields.
    """
    if not isinstance(raw, dict):
        return None
    entry: HistoryEntry = dict(raw)  # type: ignore[assignment]
    return entry


def entry_to_status(entry: HistoryEntry) -> dict[str, Any]:
    """The entry as written back: every field it carries, unknown ones included."""
    return dict(entry)


def entry_tag(entry: Any) -> str | None:
    version = entry.get("version") if isinstance(entry, dict) else None
    tag = version.get("tag") if isinstance(version, dict) else None
    return tag if isinstance(tag, str) else None


def entry_trigger(entry: Any) -> Trigger:
    """The entry's trigger; inferred for entries an older controller wrote (docs/spec/v1alpha1/rollout.md)."""
    if not isinstance(entry, dict):
        return Trigger.AUTOMATIC
    value = entry.get("trigger")
    if isinstance(value, str) and value in _TRIGGERS:
        return Trigger(value)
    message = entry.get("message")
    text = message if isinstance(message, str) else ""
    if text.startswith("Automatic deployment"):
        return Trigger.AUTOMATIC
    if text.startswith("Adopted"):
        return Trigger.ADOPTION
    return Trigger.FORCE_DEPLOY
