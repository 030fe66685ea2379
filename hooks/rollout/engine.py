"""The Rollout decision (SPEC §3): observed state + clock in, whole status out.

`evaluate` runs a short list of named steps, each owning its part of the status and its
conditions, the way source-controller's reconcile runs its steps. `finish` folds in what the
actuator reported. Nothing here writes anything: the hook (sync.py) sends the planned patches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from hooks.api.rollout import ConditionType, Hold, Reason, Trigger, entry_trigger
from hooks.k8s import annotations_of, get_condition, meta
from hooks.metacontroller import HookRequest
from hooks.patchplan import PatchOutcome, PlannedPatch
from hooks.rollout import (
    adoption,
    bake,
    bounds,
    choose,
    conditions,
    gates,
    health,
    history,
    holds,
    ordering,
    recovery,
    releases,
    targets,
)
from hooks.rollout import annotations as tokens
from hooks.rollout.annotations import FORCE_DEPLOY, RETRY, Annotations
from hooks.rollout.spec import DEFAULT_UPDATE_INTERVAL, InvalidSpec, RolloutSpec, parse_spec

MAX_STEPS = 16  # deploys in one sync are bounded by the releases; this is a safety net


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
    invalid: bool = False  # SPEC §3.1: the status is kept as it was, nothing is planned
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
        )

    def best_known(self) -> str | None:
        """The best known release, leaving out withdrawn and unmatched releases."""
        sit = self.situation()
        return next((t for t in reversed(self.order.tags) if not sit.withdrawn(t)), None)


class _Invalid(Exception):
    pass


# --- steps ------------------------------------------------------------------------------------


def observe(run: Run) -> None:
    """§3.1 validation, §3.2 discovery, §3.3 order; the gates, checks and targets; the history."""
    rollout, previous = run.req.parent, run.ev.previous
    md = meta(rollout)
    run.name, run.namespace = str(md.get("name")), str(md.get("namespace", ""))
    try:
        run.spec = parse_spec(rollout)
    except InvalidSpec as error:
        _invalid(run, str(error))
        raise _Invalid from None
    run.ev.interval = run.s.update_interval
    policy = releases.find_image_policy(run.req.related_of("ImagePolicy"), run.s.image_policy, run.namespace)
    run.discovery = releases.discover(policy, run.s.image_policy)
    declared = ordering.policy_of(policy)
    run.policy_error = declared.error
    run.known = releases.record(
        releases.clean_releases(previous.get("availableReleases")), run.discovery, run.now
    )
    run.order = ordering.order([r["tag"] for r in run.known], declared)
    run.checks = health.select(
        run.req.related_of("HealthCheck"), run.s.health, run.namespace, run.req.related_of("Namespace")
    )
    run.unhealthy = health.unhealthy_message(run.checks)
    run.gates = gates.gates_for(run.req.related_of("RolloutGate"), run.name, run.namespace)
    run.fields = targets.find(
        run.req.related_of("OCIRepository"), run.req.related_of("Kustomization"), run.name, run.namespace
    )
    run.ann = Annotations.read(annotations_of(rollout), previous.get("acknowledgedAnnotations"))
    run.hist = history.clean_history(previous.get("history"))
    run.persisted_deployed = history.deployed_tag(run.hist)
    run.hold = holds.read(previous.get("hold"))
    old = get_condition(previous.get("conditions"), ConditionType.BAKE_FAILURE_DISABLED)
    run.in_recovery = bool(old and old.get("status") == "True")


def adopt(run: Run) -> None:
    """§3.10 and §3.3a: with an empty history, annotations are acknowledged without acting, and
    what the targets already carry is recorded instead of deploying through gates and health."""
    if run.hist:
        return
    found = tokens.acknowledge_on_empty_history(run.ann)
    if found:
        run.ev.log["acknowledged_on_empty_history"] = found
    tag = adoption.adoptable(run.fields, run.order, run.tags)
    if tag is not None:
        _record(run, adoption.adoption(tag))
        run.decision = "adopted"


def retry_if_requested(run: Run) -> None:
    """§3.7 Retry: a fresh retry re-runs a Failed bake; on any other state it is only acknowledged."""
    if run.ann.fresh(RETRY) is None:
        return
    head = history.head(run.hist)
    if head is not None and head.get("bakeStatus") == bake.FAILED:
        run.hist = [bake.retry(dict(head), run.now), *run.hist[1:]]
    run.ann.use(RETRY)


def converge(run: Run) -> None:
    """§3.6-§3.8: bake the deployed entry, deploy what is due, until nothing changes.

    A manual deploy ends the deploys of this sync (its own bake steps still run), so the
    manual version reaches the Flux objects before anything else is decided.
    """
    for _ in range(MAX_STEPS):
        if _bake_step(run) and _rollback_due(run):
            deploy = recovery.rollback(run.hist)
            if deploy is not None:
                _record(run, deploy, failed_tag=history.deployed_tag(run.hist))
                continue
        if run.manual_done:
            return
        choice = choose.choose(run.situation(), run.ann)
        if choice.deploy is None:
            if not run.deployed_any:
                run.decision = choice.outcome
            return
        _record(run, choice.deploy)


def bound(run: Run) -> None:
    """§3.8 and §3.11: history truncated on every sync; known releases bounded."""
    run.hist = history.truncate(run.hist, run.s.history_limit)
    kept = releases.bound(
        run.known,
        run.hist,
        min_count=run.s.min_count,
        retention=timedelta(days=run.s.retention_days),
        now=run.now,
        announced=run.discovery.tag if run.discovery else None,
    )
    if len(kept) != len(run.known):  # candidates are reported from what the next sync starts from
        run.known = kept
        run.order = ordering.order([r["tag"] for r in kept], run.order.policy)


def acknowledge(run: Run) -> None:
    """§3.10: what is meaningless now is acknowledged; what waits is named."""
    sit = run.situation()
    deployed = sit.deployed
    tokens.settle(
        run.ann,
        tokens.Facts(
            deployed=deployed,
            head_baking=sit.head_state in bake.ACTIVE,
            head_failed=sit.head_state == bake.FAILED,
            unhealthy=run.unhealthy is not None,
            pinned=sit.pinned is not None,
            known=sit.known,
            later_than_deployed=lambda tag: deployed is None or run.order.is_later(tag, deployed),
            explain=lambda tag: choose.reasons(sit, [tag])[tag],
        ),
    )


def report(run: Run) -> None:
    """§3.4, §3.5, §3.9, §3.12: the reported candidates and every condition but the target ones."""
    sit = run.situation()
    candidates = choose.release_candidates(sit)
    verdict = gates.evaluate(run.gates, candidates, sit.bypass if sit.bypass in candidates else None)
    c = conditions.Conditions(run.ev.previous.get("conditions"), run.ev.generation, run.now)
    _report_releases(run, c)
    conditions.gates_passing(c, verdict.status, verdict.reason, verdict.message)
    conditions.deployment_blocked(c, _blocking(run, sit, candidates))
    conditions.bake_failure_disabled(c, *_recovery_condition(run))
    head = history.head(run.hist)
    conditions.reconciling(c, head)
    run.ev.conditions = c
    run.ev.ready = _ready_facts(run, sit)
    asked = [*candidates, *([run.ask] if run.ask is not None and run.ask not in candidates else [])]
    run.ev.explain = choose.reasons(sit, asked)
    status = dict(run.ev.previous)
    status.update(
        availableReleases=run.known,
        releaseCandidates=bounds.reported(candidates),
        gatedReleaseCandidates=bounds.reported(verdict.gated),
        gates=verdict.summaries,
        history=bounds.compact_history(run.hist),
        acknowledgedAnnotations=run.ann.status(),
    )
    status.pop("hold", None)
    if run.hold is not None:
        status["hold"] = dict(run.hold)
    run.ev.status = status
    wake = bake.deadline(head, run.s.bake_time, run.s.deploy_timeout)
    if wake is not None:
        run.ev.wake_at.append(wake)


def plan_targets(run: Run) -> None:
    """§4.1: target entries for the deployed version; patches only under write-ahead, and only of
    OCI tags (§7)."""
    deployed = history.deployed_tag(run.hist)
    plan = targets.plan(
        run.fields, deployed, run.persisted_deployed, trigger=_head_trigger(run), later=run.order.is_later
    )
    entries, patches = plan.entries, plan.patches
    if deployed is not None and not ordering.is_oci_tag(deployed):
        patches = []
        entries = [
            {**e, "state": targets.BLOCKED, "message": "the deployed version is not a valid OCI tag"}
            if e.get("state") != targets.SYNCED
            else e
            for e in entries
        ]
    run.ev.target_entries, run.ev.target_patches = entries, patches
    run.ev.log.update(decision="deployed" if run.deployed_any else run.decision, deployed=deployed)


STEPS: tuple[Callable[[Run], None], ...] = (
    observe,
    adopt,
    retry_if_requested,
    converge,
    bound,
    acknowledge,
    report,
    plan_targets,
)


def evaluate(req: HookRequest, now: datetime, dry_run: bool = False, ask: str | None = None) -> Evaluation:
    """The pure decision (SPEC §3); `ask` adds one tag to `explain` (the CLI's `why TAG`)."""
    rollout = req.parent
    generation = meta(rollout).get("generation")
    persisted = rollout.get("status")
    previous: dict[str, Any] = persisted if isinstance(persisted, dict) else {}
    ev = Evaluation(
        status={}, previous=previous, generation=generation if isinstance(generation, int) else None
    )
    ev.log.update(
        object=f"{meta(rollout).get('namespace', '')}/{meta(rollout).get('name')}", bake=[], changed=[]
    )
    run = Run(req=req, now=now, dry_run=dry_run, ask=ask, ev=ev)
    try:
        for step in STEPS:
            step(run)
    except _Invalid:
        pass
    return ev


# --- helpers of the steps ---------------------------------------------------------------------


def _invalid(run: Run, message: str) -> None:
    """SPEC §3.1: keep every status field, say what is wrong, deploy nothing."""
    c = conditions.Conditions(run.ev.previous.get("conditions"), run.ev.generation, run.now)
    conditions.ready(c, conditions.ReadyFacts(invalid=message))
    conditions.stalled(c, Reason.INVALID_SPEC, message)
    run.ev.status = dict(run.ev.previous)
    run.ev.status["conditions"] = c.merged()
    run.ev.invalid = True
    run.ev.log["decision"] = "invalid-spec"


def _head_trigger(run: Run) -> str | None:
    head = history.head(run.hist)
    return entry_trigger(head).value if head is not None else None


def _readiness(run: Run, desired: str | None) -> targets.Readiness:
    """Whether Flux applied `desired` on every target (§4.1), and the first failing target."""
    return targets.readiness(
        run.fields, desired, dry_run=run.dry_run, trigger=_head_trigger(run), later=run.order.is_later
    )


def _bake_step(run: Run) -> bool:
    """Advance the deployed entry's bake; True when it has just Failed."""
    head = history.head(run.hist)
    if head is None or head.get("bakeStatus") not in bake.ACTIVE:
        return False
    ready = _readiness(run, history.deployed_tag(run.hist))
    inputs = bake.Inputs(
        checks=run.checks,
        synced=ready.synced,
        failed_target=ready.failed,
        bake_time=run.s.bake_time,
        deploy_timeout=run.s.deploy_timeout,
        configured=run.s.bake_configured,
        selector_set=run.s.has_health_selector,
        recovery=run.in_recovery,
    )
    after = bake.advance(head, inputs, run.now)
    run.hist[0] = after
    state = after.get("bakeStatus")
    if state in (bake.SUCCEEDED, bake.FAILED):
        run.ev.log["bake"].append(state)
    return state == bake.FAILED


def _rollback_due(run: Run) -> bool:
    """§3.6a: only when asked, never in dry-run, never while suspended, never a cascade."""
    return (
        run.s.on_bake_failure == "Rollback"
        and not run.dry_run
        and not run.s.suspend
        and recovery.answers(history.head(run.hist))
    )


def _record(run: Run, deploy: history.Deploy, failed_tag: str | None = None) -> None:
    """Prepend a deployment; cancel a bake a manual deploy replaces; holds, recovery, tokens."""
    previous = history.head(run.hist)
    if deploy.manual and previous is not None and previous.get("bakeStatus") in bake.ACTIVE:
        previous = bake.cancel(dict(previous), run.now)
        run.hist = [previous, *run.hist[1:]]
    best = run.best_known()
    run.recovery = recovery.recovery_mode(previous, run.unhealthy)
    run.in_recovery = run.recovery[0]
    entry = history.new_entry(run.hist, deploy, run.known, run.s.bake_configured, run.now)
    run.hist = [entry, *run.hist]
    run.hold = holds.after_deploy(run.hold, run.order, best, dict(entry), failed_tag)
    run.ann.use(*choose.used_annotations(deploy))
    run.manual_done = run.manual_done or deploy.manual
    run.deployed_any = True


def _report_releases(run: Run, c: conditions.Conditions) -> None:
    assert run.discovery is not None
    reason, message = run.discovery.reason, run.discovery.message
    if reason != Reason.IMAGE_POLICY_NOT_FOUND and run.policy_error is not None:
        reason, message = Reason.UNSUPPORTED_FILTER, f"{run.policy_error}: no automatic candidates"
    repush = releases.repushed(run.known, run.discovery)
    if repush is not None:
        message = f"{message}; {repush}"
    conditions.releases_updated(c, reason, message)


def _blocking(run: Run, sit: choose.Situation, candidates: list[str]) -> conditions.Blocking:
    exempt = sit.first or sit.unblock
    held = any(holds.keeps_out(sit.hold, sit.ordering, t) and t != sit.bypass for t in candidates)
    ignored = None
    if run.unhealthy is not None and exempt:
        ignored = (
            f"{run.unhealthy} (ignored: {'first deployment' if sit.first else 'unblock-failed requested'})"
        )
    return conditions.Blocking(
        manual=sit.pinned is not None or run.ann.fresh(FORCE_DEPLOY) is not None,
        suspended=sit.suspended,
        bake_failed=sit.head_state == bake.FAILED and not sit.unblock,
        held=sit.hold.get("message", "") if held and sit.hold is not None else None,
        unhealthy=run.unhealthy if not exempt else None,
        unhealthy_ignored=ignored,
    )


def _recovery_condition(run: Run) -> tuple[bool, str, str]:
    if run.recovery is not None:
        return run.recovery
    old = get_condition(run.ev.previous.get("conditions"), ConditionType.BAKE_FAILURE_DISABLED)
    if old is not None and isinstance(old.get("reason"), str):
        return old.get("status") == "True", old["reason"], str(old.get("message", ""))
    return recovery.recovery_mode(None, None)


def _ready_facts(run: Run, sit: choose.Situation) -> conditions.ReadyFacts:
    head = history.head(run.hist)
    message = str(head.get("bakeStatusMessage", "")) if head else ""
    failed = sit.head_state == bake.FAILED
    notes: list[str] = []
    if (
        failed
        and run.s.on_bake_failure == "Rollback"
        and recovery.answers(head)
        and recovery.target(run.hist) is None
    ):
        message = f"{message} ({recovery.NO_ROLLBACK_TARGET})"
    if (
        sit.deployed
        and sit.pinned is None
        and sit.hold is None
        and run.tags
        and not run.order.can_order(sit.deployed)
    ):
        notes.append(f"automatic deploys cannot order {sit.deployed}")
    notes += run.ann.notes()
    force = run.ann.fresh(FORCE_DEPLOY)
    force_unknown = None
    if force is not None and sit.pinned is None:
        tag = tokens.requested_tag(force)
        force_unknown = tokens.quoted(force) if tag is None or tag not in sit.known else None
    rollback_failed = failed and head is not None and entry_trigger(head) == Trigger.ROLLBACK
    return conditions.ReadyFacts(
        rollback_failed=(message or "Rollback bake failed") if rollback_failed else None,
        bake_failed=(message or "Bake failed") if failed and not rollback_failed else None,
        force_unknown=force_unknown,
        no_releases=not run.hist or (not run.known and sit.pinned is None),
        deployed=sit.deployed,
        bake_message=message,
        bake_succeeded=sit.head_state == bake.SUCCEEDED and message == bake.MSG_SUCCEEDED,
        notes=tuple(notes),
    )


# --- after actuation --------------------------------------------------------------------------


def finish(
    ev: Evaluation, outcomes: list[PatchOutcome], now: datetime, dry_run: bool = False
) -> tuple[dict[str, Any], float]:
    """Fold the actuation outcomes into the status; compute the resync delay."""
    ev.log["patches"] = [o.result for o in outcomes]
    if ev.invalid:
        return ev.status, DEFAULT_UPDATE_INTERVAL.total_seconds()
    assert ev.conditions is not None and ev.ready is not None
    entries = targets.apply_outcomes(
        ev.target_entries,
        ev.target_patches,
        outcomes[: len(ev.target_patches)],
        ev.previous.get("targets"),
        now,
        dry_run,
    )
    c = ev.conditions
    synced = targets.synced_condition(entries)
    conditions.targets_synced(c, *synced)
    facts = replace(ev.ready, targets_failing=synced[2] if synced[1] == Reason.TARGETS_FAILING else None)
    reason = conditions.ready(c, facts)
    stall = next((r for r in (Reason.ROLLBACK_FAILED, Reason.BAKE_FAILED) if _holds(facts, r)), None)
    conditions.stalled(c, stall, (facts.rollback_failed or facts.bake_failed or "") if stall else "")
    del reason
    status = ev.status
    status["conditions"] = c.merged()
    status["targets"] = entries
    ev.log["changed"] = sorted(k for k in status if status.get(k) != ev.previous.get(k))
    delays = [ev.interval, *(wake - now for wake in ev.wake_at)]
    retry = targets.retry_delay(entries, now)
    if retry is not None:
        delays.append(retry)
    seconds = min(d.total_seconds() for d in delays)
    return status, float(max(1, math.ceil(seconds)))


def _holds(facts: conditions.ReadyFacts, reason: str) -> bool:
    return (reason == Reason.ROLLBACK_FAILED and facts.rollback_failed is not None) or (
        reason == Reason.BAKE_FAILED and facts.bake_failed is not None
    )
