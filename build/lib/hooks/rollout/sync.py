"""The Rollout sync hook (SPEC §3): observed state + clock in, whole status out.

`evaluate` is pure and reads like the SPEC's step list; `sync` adds the one side effect,
the actuator's guarded patches, which follow the persisted status (write-ahead).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hooks import announce
from hooks.k8s import annotations_of, get_condition, make_condition, meta
from hooks.metacontroller import HookRequest, composite_response, parse_request
from hooks.patchplan import PatchOutcome, PlannedPatch, remove_annotation_ops
from hooks.rollout import bake, bounds, gates, health, history, releases, targets
from hooks.rollout.annotations import (
    BYPASS_GATES,
    DEPLOY_MESSAGE,
    DEPLOY_USER,
    FORCE_DEPLOY,
    RETRY,
    UNBLOCK_FAILED,
    Annotations,
)
from hooks.rollout.spec import DEFAULT_UPDATE_INTERVAL, InvalidSpec, RolloutSpec, parse_spec

MAX_STEPS = 16  # deploys in one sync are bounded by the releases; this is a safety net
CONDITION_ORDER = (
    "Ready",
    "ReleasesUpdated",
    "GatesPassing",
    "DeploymentBlocked",
    "BakeFailureDisabled",
    "TargetsSynced",
)


@dataclass
class Evaluation:
    """The decision before actuation: status (targets and Ready still to settle) and patches."""

    status: dict
    previous: dict
    generation: int | None
    target_entries: list[dict] = field(default_factory=list)
    target_patches: list[PlannedPatch] = field(default_factory=list)
    annotation_patches: list[PlannedPatch] = field(default_factory=list)
    ready: tuple[bool, str, str] | None = None  # Ready when no target fails
    invalid: bool = False  # SPEC §3.1: the status is kept as it was, nothing is planned
    wake_at: list[datetime] = field(default_factory=list)
    interval: timedelta = DEFAULT_UPDATE_INTERVAL
    log: dict = field(default_factory=dict)

    @property
    def patches(self) -> list[PlannedPatch]:
        return [*self.target_patches, *self.annotation_patches]


@dataclass
class World:
    """Everything observed for one Rollout, read once from the request."""

    name: str
    namespace: str
    spec: RolloutSpec
    ann: Annotations
    ordering: releases.Ordering
    known: list[dict]
    gates: list[gates.Gate]
    checks: list[health.Check]
    unhealthy: str | None
    fields: list[targets.TargetField]


def _condition(ev: Evaluation, type_: str, status: bool, reason: str, message: str, now: datetime) -> dict:
    message = bounds.cut(message, bounds.CONDITION_MESSAGE_CHARS)
    return make_condition(ev.previous.get("conditions"), type_, status, reason, message, now, ev.generation)


def _merge_conditions(previous: Any, ours: dict[str, dict]) -> list[dict]:
    """Our conditions in a fixed order, then any foreign ones kept as they were."""
    merged = [ours[t] for t in CONDITION_ORDER if t in ours]
    for cond in previous if isinstance(previous, list) else []:
        if isinstance(cond, dict) and cond.get("type") not in ours:
            merged.append(cond)
    return merged


def _later(ordering: releases.Ordering) -> Callable[[str, str], bool]:
    def later(a: str, b: str) -> bool:
        pa, pb = ordering.position(a), ordering.position(b)
        return pa is not None and pb is not None and pa > pb

    return later


def _choose(world: World, hist: list, unhealthy: str | None) -> tuple[history.Deploy | None, str]:
    """SPEC §3.6: the version to deploy now, or None and why not."""
    ann, spec = world.ann, world.spec
    deployed = history.deployed_tag(hist)
    first = not hist
    if spec.wanted_version:
        if ann.fresh(FORCE_DEPLOY) is not None:
            ann.acknowledge(FORCE_DEPLOY)  # meaningless while pinned (also an empty value)
        if spec.wanted_version == deployed:
            return None, "up-to-date"
        return history.Deploy(
            spec.wanted_version, manual=True, message=ann.fresh(DEPLOY_MESSAGE), user=ann.fresh(DEPLOY_USER)
        ), "deployed"
    force = ann.fresh(FORCE_DEPLOY)
    if force is not None:
        if force not in world.ordering.tags:
            return None, "force-unknown"
        if force != deployed:
            return history.Deploy(
                force,
                manual=True,
                forced=True,
                message=ann.fresh(DEPLOY_MESSAGE),
                user=ann.fresh(DEPLOY_USER),
            ), "deployed"
        ann.acknowledge(FORCE_DEPLOY)  # already deployed: nothing to do
    if not world.ordering.tags:
        return None, "no-releases"

    candidates = releases.candidates(world.ordering, deployed)
    bypass = ann.fresh(BYPASS_GATES)
    if bypass is not None and bypass not in candidates:
        ann.acknowledge(BYPASS_GATES)  # not a candidate: meaningless
        bypass = None
    verdict = gates.evaluate(world.gates, candidates, bypass)
    if first:
        gated = verdict.gated or candidates
        return (
            (history.Deploy(gated[0], manual=False, bypassed=bypass is not None), "deployed")
            if gated
            else (
                None,
                "no-releases",
            )
        )
    if not candidates:
        return None, "up-to-date"
    state = hist[0].get("bakeStatus") if isinstance(hist[0], dict) else None
    unblock = ann.fresh(UNBLOCK_FAILED) == "true"
    if state in bake.ACTIVE:
        return None, "waiting-bake"
    if state == bake.FAILED and not unblock:
        return None, "blocked-bake"
    if verdict.blocking or not verdict.gated:
        return None, "blocked-gates"
    if unhealthy and not unblock:
        return None, "blocked-health"
    return history.Deploy(
        verdict.gated[0],
        manual=False,
        bypassed=bypass is not None,
        unblocked=unblock and (state == bake.FAILED or unhealthy is not None),
    ), "deployed"


def _deploy(world: World, hist: list, deploy: history.Deploy, now: datetime) -> tuple[list, tuple]:
    """Record a deployment; returns the new history and the recovery-mode condition."""
    previous = hist[0] if hist and isinstance(hist[0], dict) else {}
    if deploy.manual and previous.get("bakeStatus") in bake.ACTIVE:
        hist = [bake.cancel(previous, now), *hist[1:]]
        previous = hist[0]
    if previous.get("bakeStatus") == bake.FAILED:
        recovery = (
            True,
            "PreviousBakeFailed",
            "Previous deployment's bake failed; early health errors ignored",
        )
    elif world.unhealthy is not None:
        recovery = (True, "DeployedWithUnhealthyHealthChecks", "Deployed while health checks were unhealthy")
    else:
        recovery = (False, "Normal", "Bake failures are detected normally")
    entry = history.new_entry(hist, deploy, world.known, world.spec.bake_configured, now)
    ann = world.ann
    if deploy.forced:
        ann.acknowledge(FORCE_DEPLOY)
    if deploy.bypassed:
        ann.acknowledge(BYPASS_GATES)
    if deploy.unblocked:
        ann.acknowledge(UNBLOCK_FAILED)
    if deploy.manual:
        ann.acknowledge(*(k for k in (DEPLOY_MESSAGE, DEPLOY_USER) if ann.fresh(k) is not None))
    return history.prepend(hist, entry, world.spec.history_limit), recovery


def _invalid(ev: Evaluation, error: InvalidSpec, now: datetime) -> Evaluation:
    """SPEC §3.1: keep every status field, say what is wrong, deploy nothing."""
    status = dict(ev.previous)
    ready = _condition(ev, "Ready", False, "InvalidSpec", str(error), now)
    status["conditions"] = _merge_conditions(ev.previous.get("conditions"), {"Ready": ready})
    ev.status = status
    ev.invalid = True
    ev.log["decision"] = "invalid-spec"
    return ev


def evaluate(req: HookRequest, now: datetime, dry_run: bool = False) -> Evaluation:
    """The pure decision (SPEC §3.1-3.13, without the actuation outcomes)."""
    rollout = req.parent
    md = meta(rollout)
    name, namespace = str(md.get("name")), str(md.get("namespace", ""))
    generation = md.get("generation") if isinstance(md.get("generation"), int) else None
    previous = rollout.get("status") if isinstance(rollout.get("status"), dict) else {}
    ev = Evaluation(status={}, previous=previous, generation=generation)
    ev.log.update(object=f"{namespace}/{name}", bake=[], changed=[])

    # 3.1 validation
    try:
        spec = parse_spec(rollout)
    except InvalidSpec as error:
        return _invalid(ev, error, now)
    ev.interval = spec.update_interval

    # 3.2 release discovery
    policy = releases.find_image_policy(req.related_of("ImagePolicy"), spec.image_policy, namespace)
    discovery = releases.discover(policy, spec.image_policy)
    known = releases.record(releases.clean_releases(previous.get("availableReleases")), discovery, now)

    checks = health.select(req.related_of("HealthCheck"), spec.health, namespace, req.related_of("Namespace"))
    world = World(
        name=name,
        namespace=namespace,
        spec=spec,
        ann=Annotations(annotations_of(rollout), previous.get("acknowledgedAnnotations")),
        ordering=releases.order(known, discovery.semver_policy),
        known=known,
        gates=gates.gates_for(req.related_of("RolloutGate"), name, namespace),
        checks=checks,
        unhealthy=health.unhealthy_message(checks),
        fields=targets.find(
            req.related_of("OCIRepository"), req.related_of("Kustomization"), name, namespace
        ),
    )
    hist = history.clean_history(previous.get("history"))
    persisted_deployed = history.deployed_tag(hist)
    ann = world.ann
    old_recovery = get_condition(previous.get("conditions"), "BakeFailureDisabled")
    recovery: tuple | None = None
    in_recovery = bool(old_recovery and old_recovery.get("status") == "True")

    # 3.7 retry of a failed bake
    if ann.fresh(RETRY) is not None:
        if hist and isinstance(hist[0], dict) and hist[0].get("bakeStatus") == bake.FAILED:
            hist = [bake.retry(hist[0], now), *hist[1:]]
        ann.acknowledge(RETRY)

    # 3.6-3.8: bake the deployed entry, deploy the next version, until nothing is due
    decision = "up-to-date"
    deployed_any = False
    for _ in range(MAX_STEPS):
        if hist and isinstance(hist[0], dict):
            before = hist[0].get("bakeStatus")
            ready = targets.readiness(
                world.fields,
                history.deployed_tag(hist),
                dry_run=dry_run,
                trigger=hist[0].get("trigger"),
                later=_later(world.ordering),
            )
            hist[0] = bake.advance(
                hist[0],
                checks,
                ready.synced,
                spec.bake_time,
                spec.deploy_timeout,
                in_recovery,
                now,
                target_failure=ready.failed,
            )
            if hist[0].get("bakeStatus") != before and hist[0].get("bakeStatus") in (
                bake.SUCCEEDED,
                bake.FAILED,
            ):
                ev.log["bake"].append(hist[0]["bakeStatus"])
        deploy, decision = _choose(world, hist, world.unhealthy)
        if deploy is None:
            break
        hist, recovery = _deploy(world, hist, deploy, now)
        in_recovery = recovery[0]
        deployed_any = True
    deployed = history.deployed_tag(hist)
    first = not hist

    # 3.11 bounded releases. Candidates are reported from the bounded list: it is what the
    # next sync starts from, so the status stays a fixed point when old releases are dropped.
    bounded = releases.bound(
        known,
        hist,
        min_count=spec.min_count,
        retention=timedelta(days=spec.retention_days),
        now=now,
        announced=discovery.tag,
    )
    ordering = (
        world.ordering if len(bounded) == len(known) else releases.order(bounded, discovery.semver_policy)
    )
    known = bounded

    # 3.10 annotations that are meaningless now are acknowledged
    candidates = releases.candidates(ordering, deployed)
    if ann.fresh(BYPASS_GATES) is not None and ann.fresh(BYPASS_GATES) not in candidates:
        ann.acknowledge(BYPASS_GATES)
    head_state = hist[0].get("bakeStatus") if hist and isinstance(hist[0], dict) else None
    if ann.fresh(UNBLOCK_FAILED) is not None and (
        ann.fresh(UNBLOCK_FAILED) != "true"
        or (hist and head_state != bake.FAILED and world.unhealthy is None)
    ):
        ann.acknowledge(UNBLOCK_FAILED)

    # 3.4 gates and 3.5 health, reported on the final state
    bypass = ann.fresh(BYPASS_GATES)
    verdict = gates.evaluate(world.gates, candidates, bypass)
    force_unknown = ann.fresh(FORCE_DEPLOY) if decision == "force-unknown" else None
    manual = bool(spec.wanted_version) or ann.fresh(FORCE_DEPLOY) is not None
    exempt = first or ann.fresh(UNBLOCK_FAILED) == "true"
    if manual:
        blocked = _condition(
            ev, "DeploymentBlocked", False, "ManualDeployment", "Manual deployment requested", now
        )
    elif world.unhealthy is not None and not exempt:
        blocked = _condition(ev, "DeploymentBlocked", True, "UnhealthyHealthChecks", world.unhealthy, now)
    else:
        text = "No selected HealthCheck is unhealthy"
        if world.unhealthy is not None:  # the exception applies: say so rather than "healthy"
            why = "first deployment" if first else f"{UNBLOCK_FAILED} requested"
            text = f"{world.unhealthy} (ignored: {why})"
        blocked = _condition(ev, "DeploymentBlocked", False, "HealthChecksHealthy", text, now)
    if recovery is None:
        if old_recovery is not None:
            recovery = (
                old_recovery.get("status") == "True",
                old_recovery.get("reason"),
                old_recovery.get("message"),
            )
        else:
            recovery = (False, "Normal", "Bake failures are detected normally")

    # 4.1 targets
    plan = targets.plan(
        world.fields,
        deployed,
        persisted_deployed,
        trigger=hist[0].get("trigger") if hist and isinstance(hist[0], dict) else None,
        later=_later(ordering),
    )
    ev.target_entries, ev.target_patches = plan.entries, plan.patches
    for key, value in ann.persisted_acknowledged(previous.get("acknowledgedAnnotations")).items():
        ev.annotation_patches.append(
            PlannedPatch(
                "Rollout", namespace, name, tuple(remove_annotation_ops(key, value)), ("annotation/" + key,)
            )
        )

    # 3.12 conditions (Ready and TargetsSynced settle after actuation)
    conditions = {
        "ReleasesUpdated": _condition(
            ev,
            "ReleasesUpdated",
            discovery.reason == "ReleasesUpdated",
            discovery.reason,
            discovery.message,
            now,
        ),
        "GatesPassing": _condition(ev, "GatesPassing", verdict.status, verdict.reason, verdict.message, now),
        "DeploymentBlocked": blocked,
        "BakeFailureDisabled": _condition(
            ev, "BakeFailureDisabled", recovery[0], recovery[1], recovery[2], now
        ),
    }
    if force_unknown is not None:
        ev.ready = (
            False,
            "ForceDeployVersionUnknown",
            f"force-deploy version {force_unknown} is not a known release",
        )
    elif hist and isinstance(hist[0], dict):
        head = hist[0]
        message = f"Release {deployed} deployed. {head.get('bakeStatusMessage', '')}".strip()
        if head_state == bake.FAILED:
            ev.ready = (False, "BakeFailed", head.get("bakeStatusMessage") or "Bake failed")
        elif decision == "no-releases":  # SPEC §3.3: an unpinned Rollout that knows no release
            ev.ready = (False, "NoReleasesAvailable", f"No releases are known yet. {message}")
        elif head_state == bake.SUCCEEDED and head.get("bakeStatusMessage") == bake.MSG_SUCCEEDED:
            ev.ready = (True, "BakeSucceeded", message)
        else:
            ev.ready = (True, "Deployed", message)
    else:
        ev.ready = (False, "NoReleasesAvailable", "No releases are known yet")

    ev.status = dict(previous)
    ev.status.update(
        conditions=conditions,  # completed in finish()
        availableReleases=known,
        releaseCandidates=bounds.reported(candidates),
        gatedReleaseCandidates=bounds.reported(verdict.gated),
        gates=verdict.summaries,
        history=bounds.compact_history(hist),
        acknowledgedAnnotations=dict(sorted(ann.acknowledged.items())),
    )
    if hist and isinstance(hist[0], dict):
        wake = bake.deadline(hist[0], spec.bake_time, spec.deploy_timeout)
        if wake is not None:
            ev.wake_at.append(wake)
    ev.log.update(decision="deployed" if deployed_any else decision, deployed=deployed)
    return ev


def finish(
    ev: Evaluation, outcomes: list[PatchOutcome], now: datetime, dry_run: bool = False
) -> tuple[dict, float]:
    """Fold the actuation outcomes into the status; compute the resync delay."""
    ev.log["patches"] = [o.result for o in outcomes]
    if ev.invalid:
        return ev.status, DEFAULT_UPDATE_INTERVAL.total_seconds()
    target_outcomes = outcomes[: len(ev.target_patches)]
    entries = targets.apply_outcomes(
        ev.target_entries, ev.target_patches, target_outcomes, ev.previous.get("targets"), now, dry_run
    )
    status = ev.status
    conditions: dict[str, dict] = status["conditions"]
    synced = targets.synced_condition(entries)
    failing = synced[1] == "TargetsFailing"
    conditions["TargetsSynced"] = _condition(ev, "TargetsSynced", *synced, now)
    ready = ev.ready
    assert ready is not None
    if failing and ready[1] != "ForceDeployVersionUnknown":
        ready = (False, "TargetsFailing", synced[2])
    conditions["Ready"] = _condition(ev, "Ready", *ready, now)
    status["conditions"] = _merge_conditions(ev.previous.get("conditions"), conditions)
    status["targets"] = entries
    ev.log["changed"] = sorted(k for k in status if status.get(k) != ev.previous.get(k))

    delays = [ev.interval]
    delays += [wake - now for wake in ev.wake_at]
    retry = targets.retry_delay(entries, now)
    if retry is not None:
        delays.append(retry)
    seconds = min(d.total_seconds() for d in delays)
    return status, float(max(1, math.ceil(seconds)))


def sync(body: Any, ctx: Any) -> dict:
    """POST /rollout/sync."""
    req = parse_request(body)
    dry_run = getattr(ctx.actuator, "mode", "apply") == "dry-run"
    ev = evaluate(req, ctx.now, dry_run)
    outcomes = ctx.actuator.apply(ev.patches) if ev.patches else []  # none for an invalid spec
    status, resync = finish(ev, outcomes, ctx.now, dry_run)
    ctx.log.update(ev.log)
    # --- SPEC §8 events: the ONE call into hooks.announce (facts of the PERSISTED status only,
    # after the patches; never fails the sync; pending facts shorten the resync delay).
    retry = announce.persisted(req, ctx)
    resync = resync if retry is None else float(max(1, min(resync, math.ceil(retry))))
    return composite_response(status, resync)
