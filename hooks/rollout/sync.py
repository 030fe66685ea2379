"""POST /rollout/sync: parse -> evaluate -> actuate -> finish -> announce -> respond (docs rollout.md).

The decision is pure (engine.py); the side effects are the actuator's guarded patches, which
follow the persisted status (write-ahead), and the Events announcing facts of the persisted status.
"""

from __future__ import annotations

import math
from typing import Any

from hooks import announce
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
    # Events (docs/events-and-metrics.md): the one call into hooks.announce - facts of the PERSISTED
    # status only, after the patches; never fails the sync; pending facts shorten the resync delay.
    retry = announce.persisted(req, ctx)
    resync = resync if retry is None else float(max(1, min(resync, math.ceil(retry))))
    return composite_response(status, resync)
