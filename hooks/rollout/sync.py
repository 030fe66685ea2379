"""POST /rollout/sync: parse -> evaluate -> actuate -> finish -> respond (SPEC §3, §4).

The decision is pure (engine.py); the one side effect is the actuator's guarded patches, which
follow the persisted status (write-ahead).
"""

from __future__ import annotations

from typing import Any

from hooks.metacontroller import composite_response, parse_request
from hooks.rollout.engine import Evaluation, evaluate, finish

__all__ = ["Evaluation", "evaluate", "finish", "sync"]


def sync(body: Any, ctx: Any) -> dict[str, Any]:
    """POST /rollout/sync."""
    req = parse_request(body)
    dry_run = getattr(ctx.actuator, "mode", "apply") == "dry-run"
    ev = evaluate(req, ctx.now, dry_run=dry_run)
    outcomes = ctx.actuator.apply(ev.patches) if ev.patches else []  # none for an invalid spec
    status, resync = finish(ev, outcomes, ctx.now, dry_run)
    ctx.log.update(ev.log)
    return composite_response(status, resync)
