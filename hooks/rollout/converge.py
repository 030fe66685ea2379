"""The converge steps (docs/spec/v1alpha1/rollout.md): adopt, retry, bake and deploy until
nothing is due, then bound what the status keeps."""

from __future__ import annotations

from datetime import timedelta

from hooks.api.rollout import entry_trigger
from hooks.rollout import adoption, bake, choose, history, holds, ordering, recovery, releases, targets
from hooks.rollout import annotations as tokens
from hooks.rollout.annotations import RETRY
from hooks.rollout.run import Run

MAX_STEPS = 16  # deploys in one sync are bounded by the releases; this is a safety net


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


def head_trigger(run: Run) -> str | None:
    head = history.head(run.hist)
    return entry_trigger(head).value if head is not None else None


def _readiness(run: Run, desired: str | None) -> targets.Readiness:
    """Whether Flux applied `desired` on every target (§4.1), and the first failing target."""
    return targets.readiness(
        run.fields, desired, dry_run=run.dry_run, trigger=head_trigger(run), later=run.order.is_later
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
    held = run.hold
    run.hold = holds.after_deploy(held, run.order, best, dict(entry), failed_tag)
    if held is not None and run.hold is None and isinstance(held.get("historyId"), int):
        entry = {**entry, "clearedHold": held["historyId"]}  # "deployment N cleared the hold" (events)
    run.hist = [entry, *run.hist]
    run.ann.use(*choose.used_annotations(deploy))
    run.manual_done = run.manual_done or deploy.manual
    run.deployed_any = True
