"""Choosing the version (docs rollout.md): a pin, a force-deploy, or the best deployable release.

`reasons` says for every tag which rule keeps it out of an automatic deploy, or "deployable";
`choose` deploys the best deployable one. The same function answers both, so what the CLI's
`why` prints is what the engine decided.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hooks.api.rollout import Hold, Trigger
from hooks.rollout import bake, gates, holds
from hooks.rollout.annotations import (
    BYPASS_GATES,
    DEPLOY_MESSAGE,
    DEPLOY_USER,
    FORCE_DEPLOY,
    UNBLOCK_FAILED,
    Annotations,
    requested_tag,
    unblock_requested,
)
from hooks.rollout.history import Deploy
from hooks.rollout.ordering import Ordering
from hooks.rollout.promotion import Observation

DEPLOYABLE = "deployable"


@dataclass(frozen=True)
class Situation:
    """What the choice reads, taken from the world and the history as it stands in the loop."""

    ordering: Ordering
    known: frozenset[str]
    deployed: str | None
    head_state: str | None
    first: bool  # empty history and nothing adopted
    announced: str | None
    hold: Hold | None
    suspended: bool
    pinned: str | None
    unhealthy: str | None
    unblock: bool  # a fresh unblock-failed "true"
    bypass: str | None  # the tag of a fresh bypass-gates
    gates: list[gates.Gate] = field(default_factory=list)
    upstream: Observation | None = None  # spec.promotion.from (docs/promotion.md)

    def withdrawn(self, tag: str) -> bool:
        """After the tag the ImagePolicy announces now: withdrawn from automation (§3.3)."""
        return self.announced is not None and self.ordering.is_later(tag, self.announced)

    def after_deployed(self) -> list[str] | None:
        """Known releases after the deployed version, worst first; None when it cannot be ordered
        (then those after hold.resumeAfter, when a hold is set)."""
        if self.deployed is None:
            return list(self.ordering.tags)
        after = self.ordering.after(self.deployed)
        if after is None and self.hold is not None:
            after = self.ordering.after(self.hold["resumeAfter"])
        return after


def release_candidates(sit: Situation) -> list[str]:
    """`releaseCandidates`: after the deployed version, without withdrawn and unmatched, best first."""
    return [t for t in reversed(sit.after_deployed() or []) if not sit.withdrawn(t)]


def _tag_reason(sit: Situation, tag: str, candidates: list[str]) -> str | None:
    """Reasons that belong to the tag itself."""
    if tag not in sit.known:
        return "unknown: not a known release"
    if tag in sit.ordering.unmatched:
        if sit.ordering.policy.error is not None:
            return "filtered: the filterTags pattern is not supported"
        if sit.ordering.policy.missing:
            return "unordered: the ImagePolicy is missing, so its order is unknown"
        return "filtered: filterTags does not match"
    if tag == sit.deployed:
        return "deployed"
    if sit.withdrawn(tag):
        return "withdrawn: after the tag the ImagePolicy announces"
    if tag not in candidates:
        if sit.deployed is not None and not sit.ordering.can_order(sit.deployed) and sit.hold is None:
            return f"automatic deploys cannot order {sit.deployed}"
        return f"not after the deployed version {sit.deployed}"
    return None


def _state_reason(sit: Situation) -> str | None:
    """Reasons that hold for every candidate: pin, suspend, the deployed entry's bake."""
    if sit.pinned is not None:
        return f"pinned: spec.wantedVersion is {sit.pinned}"
    if sit.suspended:
        return "suspended"
    if sit.head_state in bake.ACTIVE:
        return f"waiting for the bake of {sit.deployed}"
    if sit.head_state == bake.FAILED and not sit.unblock:
        return "bake failed"
    return None


def _policy_reason(sit: Situation, tag: str, allowed_any: bool) -> str | None:
    """Holds, gates and health; a bypass passes the hold and the gates for its release."""
    bypassed = sit.bypass == tag
    if not bypassed and holds.keeps_out(sit.hold, sit.ordering, tag):
        assert sit.hold is not None
        return f"held: waits for a release after {sit.hold['resumeAfter']}"
    if not bypassed and not sit.first and (gate := gates.not_passing(sit.gates)) is not None:
        return f"gated: gate '{gate.name}' is not passing"
    if (
        not bypassed
        and (gate := gates.disallowing(sit.gates, tag)) is not None
        and (allowed_any or not sit.first)
    ):
        return f"not allowed by gate '{gate.name}'"
    if sit.unhealthy is not None and not (sit.first or sit.unblock):
        return f"unhealthy: {sit.unhealthy}"
    return None


#: Filters on automatic candidates after gates and health.
CandidateFilter = Callable[[Situation, str], str | None]

NOT_VERIFIED = "not verified upstream"


def _upstream_reason(sit: Situation, tag: str) -> str | None:
    """docs/promotion.md: automatic candidates only among the releases the upstreams verified,
    even on the first deploy; a bypass-gates of the tag passes (manual deploys never get here)."""
    if sit.upstream is None or sit.bypass == tag or sit.upstream.verified(tag):
        return None
    return NOT_VERIFIED


EXTRA_FILTERS: tuple[CandidateFilter, ...] = (_upstream_reason,)


def reasons(sit: Situation, tags: list[str]) -> dict[str, str]:
    """For each tag, the first rule that keeps it out of an automatic deploy now, or "deployable"."""
    candidates = release_candidates(sit)
    allowed_any = any(gates.disallowing(sit.gates, c) is None for c in candidates)
    state = _state_reason(sit)
    bypass_live = sit.bypass in candidates
    found: dict[str, str] = {}
    for tag in tags:
        reason = _tag_reason(sit, tag, candidates) or state or _policy_reason(sit, tag, allowed_any)
        for extra in EXTRA_FILTERS:
            reason = reason or extra(sit, tag)
        if reason is None and bypass_live and tag != sit.bypass:
            reason = f"not chosen: bypass-gates names {sit.bypass}"
        found[tag] = reason or DEPLOYABLE
    return found


@dataclass(frozen=True)
class Choice:
    deploy: Deploy | None
    outcome: (
        str  # for the log and metrics: deployed, up-to-date, pinned, force-unknown, no-releases, blocked-*
    )
    explain: dict[str, str]


def _manual(sit: Situation, ann: Annotations) -> Choice | None:
    """docs/spec/v1alpha1/rollout.md: spec.wantedVersion (any tag) > force-deploy (a known release)."""
    message, user = ann.fresh(DEPLOY_MESSAGE), ann.fresh(DEPLOY_USER)
    if sit.pinned is not None:
        if sit.pinned == sit.deployed:
            return Choice(None, "pinned", {})
        return Choice(Deploy(sit.pinned, Trigger.PIN, message=message, user=user), "deployed", {})
    force = ann.fresh(FORCE_DEPLOY)
    if force is None:
        return None
    tag = requested_tag(force)
    if tag is None or tag not in sit.known:
        return Choice(None, "force-unknown", {})
    if tag == sit.deployed:
        return None
    return Choice(Deploy(tag, Trigger.FORCE_DEPLOY, forced=True, message=message, user=user), "deployed", {})


def choose(sit: Situation, ann: Annotations) -> Choice:
    """The deploy due now, if any."""
    manual = _manual(sit, ann)
    if manual is not None:
        return manual
    if not sit.known:
        return Choice(None, "no-releases", {})
    candidates = release_candidates(sit)
    explain = reasons(sit, candidates)
    deployable = [t for t in candidates if explain[t] == DEPLOYABLE]
    if not deployable:
        return Choice(None, outcome(explain[candidates[0]]) if candidates else "up-to-date", explain)
    tag = deployable[0]
    unblocked = sit.unblock and (sit.head_state == bake.FAILED or sit.unhealthy is not None)
    return Choice(
        Deploy(tag, Trigger.AUTOMATIC, bypassed=tag == sit.bypass, unblocked=unblocked), "deployed", explain
    )


#: The log / metrics decision for the rule that keeps the best candidate out (a bounded set).
_OUTCOMES = (
    ("waiting for the bake", "waiting-bake"),
    ("bake failed", "blocked-bake"),
    ("gated:", "blocked-gates"),
    ("not allowed", "blocked-gates"),
    ("unhealthy:", "blocked-health"),
    ("held:", "blocked-hold"),
    ("suspended", "suspended"),
    ("pinned:", "pinned"),
    (NOT_VERIFIED, "blocked-upstream"),
)


def outcome(reason: str) -> str:
    return next((name for prefix, name in _OUTCOMES if reason.startswith(prefix)), "blocked")


def used_annotations(deploy: Deploy) -> list[str]:
    """The requests a recorded deploy used (acknowledged at once)."""
    keys = []
    if deploy.forced:
        keys.append(FORCE_DEPLOY)
    if deploy.bypassed:
        keys.append(BYPASS_GATES)
    if deploy.unblocked:
        keys.append(UNBLOCK_FAILED)
    if deploy.manual:
        keys += [DEPLOY_MESSAGE, DEPLOY_USER]
    return keys


def unblock_fresh(ann: Annotations) -> bool:
    return unblock_requested(ann.fresh(UNBLOCK_FAILED))


def bypass_tag(ann: Annotations) -> str | None:
    return requested_tag(ann.fresh(BYPASS_GATES))
