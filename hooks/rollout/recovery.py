"""After a failed bake: recovery mode (docs rollout.md) and the opt-in automatic rollback (§3.6a)."""

from __future__ import annotations

from typing import Any

from hooks.api.rollout import Reason, Trigger, entry_tag, entry_trigger
from hooks.rollout import bake
from hooks.rollout.history import Deploy

NO_ROLLBACK_TARGET = "no earlier successful deployment to roll back to"


def recovery_mode(previous_head: Any, unhealthy: str | None) -> tuple[bool, str, str]:
    """BakeFailureDisabled as set at each deploy, kept until the next."""
    if isinstance(previous_head, dict) and previous_head.get("bakeStatus") == bake.FAILED:
        return (
            True,
            Reason.PREVIOUS_BAKE_FAILED,
            "Previous deployment's bake failed; early health errors ignored",
        )
    if unhealthy is not None:
        return (
            True,
            Reason.DEPLOYED_WITH_UNHEALTHY_HEALTH_CHECKS,
            "Deployed while health checks were unhealthy",
        )
    return False, Reason.NORMAL, "Bake failures are detected normally"


def answers(entry: Any) -> bool:
    """Only the failure of an automatic deploy is rolled back automatically (no cascade)."""
    return (
        isinstance(entry, dict)
        and entry.get("bakeStatus") == bake.FAILED
        and entry_trigger(entry) == Trigger.AUTOMATIC
    )


def target(history: list[Any]) -> Any:
    """The newest older entry whose bake Succeeded and whose tag differs from the failed one."""
    failed = entry_tag(history[0]) if history else None
    for entry in history[1:]:
        if isinstance(entry, dict) and entry.get("bakeStatus") == bake.SUCCEEDED:
            tag = entry_tag(entry)
            if tag is not None and tag != failed:
                return entry
    return None


def rollback(history: list[Any]) -> Deploy | None:
    """The automatic rollback answering history[0]'s failed bake, if there is somewhere to go."""
    to = target(history)
    if to is None:
        return None
    failed = history[0]
    tag = entry_tag(to)
    assert tag is not None
    text = f"Automatic rollback from {entry_tag(failed)}: {failed.get('bakeStatusMessage', 'bake failed')}"
    failed_id = failed.get("id")
    return Deploy(
        tag, Trigger.ROLLBACK, message=text, rollback_of=failed_id if isinstance(failed_id, int) else None
    )
