"""One evaluation in progress: what was observed and what the steps decided so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hooks.api.rollout import Hold
from hooks.metacontroller import HookRequest
from hooks.patchplan import PlannedPatch
from hooks.rollout import choose, conditions, gates, health, history, ordering, promotion, releases, targets
from hooks.rollout.annotations import Annotations
from hooks.rollout.spec import DEFAULT_UPDATE_INTERVAL, RolloutSpec


@dataclass
class Evaluation:
    """The decision before actuation: status (targets and Ready still to settle) and patches."""

    status: dict[str, Any]
    previous: dict[str, Any]
    generation: int | None
    target_entries: list[dict[str, Any]] = field(default_factory=list)
    target_patches: list[PlannedPatch] = field(default_factory=list)
    ready: conditions.ReadyFacts | None = None
    conditions: conditions.Conditions | None = None
    invalid: bool = False  # docs/spec/v1alpha1/rollout.md: the status is kept as it was, nothing is planned
    wake_at: list[datetime] = field(default_factory=list)
    interval: timedelta = DEFAULT_UPDATE_INTERVAL
    log: dict[str, Any] = field(default_factory=dict)
    #: For each release candidate (and the tag asked about): why it is or is not deployable.
    explain: dict[str, str] = field(default_factory=dict)

    @property
    def patches(self) -> list[PlannedPatch]:
        return list(self.target_patches)


@dataclass
class Run:
    """One evaluation in progress: what was observed and what the steps decided so far."""

    req: HookRequest
    now: datetime
    dry_run: bool
    ask: str | None
    ev: Evaluation
    name: str = ""
    namespace: str = ""
    spec: RolloutSpec | None = None
    discovery: releases.Discovery | None = None
    policy_error: str | None = None
    known: list[dict[str, Any]] = field(default_factory=list)
    order: ordering.Ordering = field(default_factory=lambda: ordering.order([], ordering.Policy(None)))
    gates: list[gates.Gate] = field(default_factory=list)
    checks: list[health.Check] = field(default_factory=list)
    unhealthy: str | None = None
    fields: list[targets.TargetField] = field(default_factory=list)
    ann: Annotations = field(default_factory=lambda: Annotations({}, {}))
    hist: list[Any] = field(default_factory=list)
    persisted_deployed: str | None = None
    hold: Hold | None = None
    upstream: promotion.Observation | None = None  # spec.promotion.from, read from the request
    recovery: tuple[bool, str, str] | None = None  # BakeFailureDisabled set by a deploy of this sync
    in_recovery: bool = False
    manual_done: bool = False
    decision: str = "up-to-date"
    deployed_any: bool = False

    @property
    def s(self) -> RolloutSpec:
        assert self.spec is not None
        return self.spec

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(r["tag"] for r in self.known)

    def situation(self) -> choose.Situation:
        return choose.Situation(
            ordering=self.order,
            known=self.tags,
            deployed=history.deployed_tag(self.hist),
            head_state=history.head_state(self.hist),
            first=not self.hist,
            announced=self.discovery.tag if self.discovery else None,
            hold=self.hold,
            suspended=self.s.suspend,
            pinned=self.s.wanted_version,
            unhealthy=self.unhealthy,
            unblock=choose.unblock_fresh(self.ann),
            bypass=choose.bypass_tag(self.ann),
            gates=self.gates,
            upstream=self.upstream,
        )

    def best_known(self) -> str | None:
        """The best known release, leaving out withdrawn and unmatched releases."""
        sit = self.situation()
        return next((t for t in reversed(self.order.tags) if not sit.withdrawn(t)), None)


class Invalid(Exception):
    """Raised by the observe step: the spec cannot be acted on (the status was already set)."""
