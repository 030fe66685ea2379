"""Reset on a new deployment (docs/spec/v1alpha1/healthcheck.md).

A check must prove itself healthy again after every deployment or retry of a Rollout
that selects it: its status goes back to Pending, and errors seen before are forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from hooks.k8s import dig, format_time, parse_time
from hooks.rollout import bake

RESET_MESSAGE = "Health check reset due to new deployment"


def deployment_cutoff(rollout: Mapping) -> datetime | None:
    """The cutoff of the Rollout's deployed entry (bake.cutoff); None when nothing was deployed."""
    history = dig(rollout, "status", "history")
    if not isinstance(history, list) or not history or not isinstance(history[0], Mapping):
        return None
    if all(parse_time(history[0].get(key)) is None for key in ("timestamp", "lastRetryTimestamp")):
        return None
    return bake.cutoff(dict(history[0]))


def latest_cutoff(rollouts: Iterable[Mapping]) -> datetime | None:
    """The newest deployment cutoff among the Rollouts."""
    cutoffs = [c for c in (deployment_cutoff(r) for r in rollouts) if c is not None]
    return max(cutoffs) if cutoffs else None


def needs_reset(status: Mapping, cutoff: datetime | None) -> bool:
    """A deployment happened after the check last changed (or it never recorded a change)."""
    if cutoff is None:
        return False
    last_change = parse_time(status.get("lastChangeTime"))
    return last_change is None or cutoff > last_change


#: Failure bookkeeping a new deployment forgets (the last two are class: prometheus's).
CLEARED_ON_RESET = ("lastErrorTime", "failingSince", "queryErrorSince")


def reset_status(status: Mapping, now: datetime, cutoff: datetime | None = None) -> dict:
    """Pending, lastChangeTime max(now, cutoff), no failure times; other fields kept.

    A clock behind the one that recorded the deployment must not stamp a change before it,
    or every sync would reset again."""
    new = {key: value for key, value in status.items() if key not in CLEARED_ON_RESET}
    changed = max(now, cutoff) if cutoff is not None else now
    new.update(status="Pending", message=RESET_MESSAGE, lastChangeTime=format_time(changed))
    return new
