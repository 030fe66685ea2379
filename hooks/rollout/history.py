"""Deployment history entries (docs/spec/v1alpha1/rollout.md): ids, timestamps, triggers, truncation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hooks.api.rollout import BakeStatus, HistoryEntry, Trigger, entry_from_status, entry_tag
from hooks.k8s import format_time, parse_time
from hooks.rollout import bake
from hooks.rollout.bounds import DEPLOY_MESSAGE_CHARS, MESSAGE_CHARS, NAME_CHARS, cut

SYSTEM = {"kind": "System", "name": "rollout-controller"}
MANUAL = (Trigger.PIN, Trigger.FORCE_DEPLOY)


def clean_history(raw: Any) -> list[Any]:
    """History from status: entries copied, malformed ones kept as they are (never lost).

    Entries an older controller wrote without `trigger` are read through `entry_trigger`
    (docs/spec/v1alpha1/rollout.md) and returned exactly as they were persisted.
    """
    entries: list[Any] = []
    for item in raw if isinstance(raw, list) else []:
        entry = entry_from_status(item)
        entries.append(item if entry is None else entry)
    return entries


def deployed_tag(history: list[Any]) -> str | None:
    return entry_tag(history[0]) if history else None


def head(history: list[Any]) -> dict[str, Any] | None:
    return history[0] if history and isinstance(history[0], dict) else None


def head_state(history: list[Any]) -> str | None:
    entry = head(history)
    state = entry.get("bakeStatus") if entry is not None else None
    return state if isinstance(state, str) else None


def next_id(history: list[Any]) -> int:
    """1 + the largest id kept; entries without an integer id are ignored."""
    ids = [e["id"] for e in history if isinstance(e, dict) and type(e.get("id")) is int]
    return max(ids, default=0) + 1


def newest_time(history: list[Any]) -> datetime | None:
    times = [parse_time(e.get("timestamp")) for e in history if isinstance(e, dict)]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def deploy_time(history: list[Any], now: datetime) -> datetime:
    """max(now, the newest timestamp already in history): a slow clock never dates backwards."""
    newest = newest_time(history)
    return max(now, newest) if newest is not None else now


@dataclass(frozen=True)
class Deploy:
    """A decision to deploy `tag`, with what made it happen."""

    tag: str
    trigger: Trigger
    forced: bool = False
    bypassed: bool = False
    unblocked: bool = False
    message: str | None = None  # fresh deploy-message (manual only), or the rollback's text
    user: str | None = None  # fresh deploy-user (manual only)
    rollback_of: int | None = None
    adopted: bool = False

    @property
    def manual(self) -> bool:
        return self.trigger in MANUAL

    def text(self) -> str:
        if self.message:
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
    history: list[Any], deploy: Deploy, releases: list[dict], configured: bool, now: datetime
) -> HistoryEntry:
    known = next((r for r in releases if r["tag"] == deploy.tag), None)
    entry: HistoryEntry = {
        "id": next_id(history),
        "version": dict(known) if known else {"tag": deploy.tag},  # type: ignore[typeddict-item]
        "timestamp": format_time(deploy_time(history, now)),
        "message": deploy.message[:DEPLOY_MESSAGE_CHARS]
        if deploy.manual and deploy.message
        else cut(deploy.text(), MESSAGE_CHARS),
        "trigger": deploy.trigger.value,
        "triggeredBy": (
            {"kind": "User", "name": cut(deploy.user, NAME_CHARS)}
            if deploy.manual and deploy.user
            else dict(SYSTEM)  # type: ignore[typeddict-item]
        ),
        "bakeStatus": BakeStatus.DEPLOYING.value,
        "bakeStatusMessage": bake.MSG_WAITING if configured else bake.MSG_WAITING_FLUX,
    }
    if deploy.rollback_of is not None:
        entry["rollbackOf"] = deploy.rollback_of
    if deploy.adopted:
        entry["adopted"] = True
    return entry


def truncate(history: list[Any], limit: int) -> list[Any]:
    """docs/spec/v1alpha1/rollout.md: the limit applies on every sync, so lowering it takes effect at once."""
    return history[:limit]
