"""The reporting steps (docs/spec/v1alpha1/rollout.md): acknowledge what is
meaningless, say why, and plan the targets for the deployed version."""

from __future__ import annotations

from hooks.api.rollout import ConditionType, Reason, Trigger, entry_trigger
from hooks.k8s import get_condition
from hooks.rollout import annotations as tokens
from hooks.rollout import (
    bake,
    bounds,
    choose,
    conditions,
    gates,
    health,
    history,
    holds,
    ordering,
    promotion,
    recovery,
    releases,
    targets,
)
from hooks.rollout.annotations import FORCE_DEPLOY
from hooks.rollout.converge import head_trigger
from hooks.rollout.run import Run


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
            manual_recorded=run.manual_done,
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
    upstream = run.upstream
    conditions.upstream_verified(c, promotion.condition(upstream, candidates) if upstream else None)
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
    status.pop("promotion", None)
    if run.s.promotion_set:  # docs/promotion.md: only deployed and verified tags are copied
        status["promotion"] = (
            promotion.sources_status(upstream, run.order.is_lower) if upstream else {"sources": []}
        )
    if upstream is not None and upstream.soak_deadline is not None:
        run.ev.wake_at.append(upstream.soak_deadline)
    run.ev.status = status
    wake = bake.deadline(head, run.s.bake_time, run.s.deploy_timeout)
    if wake is not None:
        run.ev.wake_at.append(wake)


def plan_targets(run: Run) -> None:
    """§4.1: target entries for the deployed version; patches only under write-ahead, and only of
    OCI tags (§7)."""
    deployed = history.deployed_tag(run.hist)
    plan = targets.plan(
        run.fields, deployed, run.persisted_deployed, trigger=head_trigger(run), later=run.order.is_later
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
    cross = health.cross_namespace_label_note(run.req.parent)
    if cross is not None:
        notes.append(cross)
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
        releases_known=bool(run.known),
        deployed=sit.deployed,
        bake_message=message,
        bake_succeeded=sit.head_state == bake.SUCCEEDED and message == bake.MSG_SUCCEEDED,
        notes=tuple(notes),
    )
