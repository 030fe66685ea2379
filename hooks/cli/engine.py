"""The hooks' own decision code, called in-process: customize rules, evaluate, finish.

Nothing here decides anything: the CLI runs exactly the functions the /rollout/customize
and /rollout/sync hooks run, with an outcome standing in for the actuator (no API writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hooks.metacontroller import parse_request
from hooks.patchplan import PatchOutcome, PlannedPatch
from hooks.rollout import customize, sync

#: The CompositeController name of metacontroller/ (what the hooks see in `controller`).
ROLLOUT_CONTROLLER = "rollouts.kuberik.com"
NO_REASONS = "the engine gives no per-candidate reasons"


class _Context:
    """The slice of the hooks' request context that customize reads."""

    def __init__(self, now: datetime | None = None) -> None:
        self.log: dict[str, Any] = {}
        self.now = now


def rollout_rules(rollout: dict) -> list[dict]:
    """The related rules the Rollout's own customize hook returns."""
    answer = customize.customize({"controller": {}, "parent": rollout}, _Context())
    return list(answer.get("relatedResources") or [])


@dataclass
class Result:
    """One sync as the hook would answer it, plus the evaluation behind it."""

    status: dict
    resync_after: float
    evaluation: Any
    patches: list[PlannedPatch]


def run_sync(body: dict, now: datetime, *, dry_run: bool, ask: str | None = None) -> Result:
    """evaluate + finish, deciding as the controller in `apply` mode would. `dry_run`: the
    ROLLOUT_ACTUATION=dry-run outcome for every patch (nothing is sent); otherwise every patch
    counts as accepted by the API server. `ask`: a tag the engine explains too (`why NAME TAG`),
    candidate or not."""
    req = parse_request(body)
    evaluation = sync.evaluate(req, now, ask=ask)
    patches = list(evaluation.patches)
    outcome = PatchOutcome("dry-run", "dry-run") if dry_run else PatchOutcome("applied", "")
    status, resync = sync.finish(evaluation, [outcome for _ in patches], now, dry_run)
    return Result(status=status, resync_after=resync, evaluation=evaluation, patches=patches)


def explain(evaluation: Any) -> dict[str, str] | None:
    """The engine's per-candidate reasons (`Evaluation.explain`: tag -> "code: message"), or
    None when this engine does not give them. Never derived here: a second implementation
    of the decision would drift from the one the hooks run."""
    reasons = getattr(evaluation, "explain", None)
    if not isinstance(reasons, dict):
        return None
    return {str(tag): str(reason) for tag, reason in reasons.items()}


def reason_code(reason: str) -> str:
    """`gated: gate 'freeze' is not passing` -> `gated`."""
    return reason.split(":", 1)[0].strip()
