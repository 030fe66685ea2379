"""Deployment history entries (SPEC §3.8)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hooks.k8s import dig, format_time
from hooks.rollout import bake
from hooks.rollout.bounds import MESSAGE_CHARS, NAME_CHARS, cut

SYSTEM = {"kind": "System", "name": "rollout-controller"}


def clean_history(raw: Any) -> list[dict]:
    """History from status; malformed entries are kept as they are (never lost)."""
    return [entry for entry in raw] if isinstance(raw, list) else []


def deployed_tag(history: list) -> str | None:
    tag = dig(history[0], "version", "tag") if history else None
    return tag if isinstance(tag, str) else None


def next_id(history: list) -> int:
    """1 + the largest id kept; entries without an integer id are ignored."""
    ids = [e["id"] for e in history if isinstance(e, dict) and isinstance(e.get("id"), int)]
    return max(ids, default=0) + 1


@dataclass(frozen=True)
class Deploy:
    """A decision to deploy `tag`, with what made it happen."""

    tag: str
    manual: bool
    forced: bool = False
    bypassed: bool = False
    unblocked: bool = False
    message: str | None = None  # fresh deploy-message (manual only)
    user: str | None = None  # fresh deploy-user (manual only)

    def text(self) -> str:
        if self.manual and self.message:
            return self.message
        text = "Manual deployment" if self.manual else "Automatic deployment"
        for applies, suffix in (
            (self.forced, ", with force deploy"),
            (self.bypassed, ", with gate bypass"),
            (self.unblocked, ", with failed bake unblock"),
        ):
            if applies:
                text += suffix
        return text


def new_entry(
    history: list, deploy: Deploy, releases: list[dict], bake_configured: bool, now: datetime
) -> dict:
    known = next((r for r in releases if r["tag"] == deploy.tag), None)
    entry: dict[str, Any] = {
        "id": next_id(history),
        "version": dict(known) if known else {"tag": deploy.tag},
        "timestamp": format_time(now),
        "message": cut(deploy.text(), MESSAGE_CHARS),
        "triggeredBy": (
            {"kind": "User", "name": cut(deploy.user, NAME_CHARS)}
            if deploy.manual and deploy.user
            else dict(SYSTEM)
        ),
    }
    if bake_configured:
        entry.update(bakeStatus=bake.DEPLOYING, bakeStatusMessage=bake.MSG_WAITING)
    else:
        entry.update(bakeStatus=bake.SUCCEEDED, bakeStatusMessage=bake.MSG_NO_BAKE)
    return entry


def prepend(history: list, entry: dict, limit: int) -> list:
    return [entry, *history][:limit]
