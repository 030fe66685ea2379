"""Holds: after a rollback, automation waits for a release later than what was rolled back from
(docs/operations.md; docs/operations.md "Rolling back")."""

from __future__ import annotations

from typing import Any

from hooks.api.rollout import Hold, HoldReason, Trigger
from hooks.rollout.ordering import Ordering


def read(raw: Any) -> Hold | None:
    """The persisted hold; one without a string resumeAfter holds nothing."""
    if isinstance(raw, dict) and isinstance(raw.get("resumeAfter"), str) and raw["resumeAfter"]:
        hold: Hold = dict(raw)  # type: ignore[assignment]
        return hold
    return None


def keeps_out(hold: Hold | None, ordering: Ordering, tag: str) -> bool:
    """While a hold is set, automatic deploys consider only releases strictly after resumeAfter."""
    return hold is not None and not ordering.is_later(tag, hold["resumeAfter"])


def message(reason: str, resume_after: str, tag: str) -> str:
    what = "an automatic rollback" if reason == HoldReason.AUTOMATIC_ROLLBACK else "a manual deploy"
    return (
        f"Automatic deploys wait for a release after {resume_after} ({tag} was deployed by {what}); "
        f"a deploy of {resume_after} or a later release, or bypass-gates of a release, resumes automation"
    )


def _make(reason: HoldReason, resume_after: str, tag: str, since: str, entry_id: Any) -> Hold:
    hold: Hold = {"reason": reason.value, "resumeAfter": resume_after, "since": since}
    if isinstance(entry_id, int):
        hold["historyId"] = entry_id
    hold["message"] = message(reason, resume_after, tag)
    return hold


def after_deploy(
    hold: Hold | None,
    ordering: Ordering,
    best: str | None,
    entry: dict[str, Any],
    failed_tag: str | None = None,
) -> Hold | None:
    """The hold once `entry` is recorded.

    Any deploy of resumeAfter or a later release clears it. A manual deploy of a release that
    is not the best known one (or cannot be ordered) sets a ManualRollback hold; an automatic
    rollback sets an AutomaticRollback hold at least at the failed release.
    """
    tag = entry["version"]["tag"]
    if hold is not None and (tag == hold["resumeAfter"] or ordering.is_later(tag, hold["resumeAfter"])):
        hold = None
    trigger = entry.get("trigger")
    since, entry_id = entry.get("timestamp", ""), entry.get("id")
    if trigger == Trigger.ROLLBACK:
        resume = best
        if failed_tag is not None and (resume is None or ordering.is_later(failed_tag, resume)):
            resume = failed_tag
        return _make(HoldReason.AUTOMATIC_ROLLBACK, resume, tag, since, entry_id) if resume else hold
    if trigger in (Trigger.PIN, Trigger.FORCE_DEPLOY) and best is not None:
        if tag == best or ordering.is_later(tag, best):
            return hold
        return _make(HoldReason.MANUAL_ROLLBACK, best, tag, since, entry_id)
    return hold
