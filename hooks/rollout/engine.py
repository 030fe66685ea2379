"""The Rollout decision (docs/spec/v1alpha1/rollout.md): observed state + clock in, whole status out.

`evaluate` runs a short list of named steps, each owning its part of the status and its
conditions, the way source-controller's reconcile runs its steps. `finish` folds in what the
actuator reported. Nothing here writes anything: the hook (sync.py) sends the planned patches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from hooks.api.rollout import Reason
from hooks.k8s import meta
from hooks.metacontroller import HookRequest
from hooks.patchplan import PatchOutcome
from hooks.rollout import conditions, targets
from hooks.rollout.converge import adopt, bound, converge, retry_if_requested
from hooks.rollout.observe import observe
from hooks.rollout.report import acknowledge, plan_targets, report
from hooks.rollout.run import Evaluation, Invalid, Run
from hooks.rollout.spec import DEFAULT_UPDATE_INTERVAL

__all__ = ["STEPS", "Evaluation", "evaluate", "finish"]


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
    """The pure decision (docs rollout.md); `ask` adds one tag to `explain` (the CLI's `why TAG`)."""
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
    except Invalid:
        pass
    return ev


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
