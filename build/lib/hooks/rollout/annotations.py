"""Operator annotations on a Rollout, each acted on once per distinct value (SPEC §2, §3.10)."""

from __future__ import annotations

from typing import Any

PREFIX = "rollout.kuberik.com/"
FORCE_DEPLOY = PREFIX + "force-deploy"
BYPASS_GATES = PREFIX + "bypass-gates"
UNBLOCK_FAILED = PREFIX + "unblock-failed"
RETRY = PREFIX + "retry"
DEPLOY_MESSAGE = PREFIX + "deploy-message"
DEPLOY_USER = PREFIX + "deploy-user"
ONE_SHOT = (FORCE_DEPLOY, BYPASS_GATES, UNBLOCK_FAILED, RETRY, DEPLOY_MESSAGE, DEPLOY_USER)


class Annotations:
    """The operator annotations and their acknowledgements.

    An annotation is fresh while `acknowledged[key]` differs from its value. Acknowledging
    records the value; entries whose annotation is gone are dropped.
    """

    def __init__(self, annotations: dict[str, Any], acknowledged: Any) -> None:
        self.values = {k: v for k, v in annotations.items() if k in ONE_SHOT and isinstance(v, str)}
        previous = acknowledged if isinstance(acknowledged, dict) else {}
        self.acknowledged = {k: v for k, v in previous.items() if k in self.values and isinstance(v, str)}

    def fresh(self, key: str) -> str | None:
        value = self.values.get(key)
        return value if value is not None and self.acknowledged.get(key) != value else None

    def acknowledge(self, *keys: str) -> None:
        for key in keys:
            if key in self.values:
                self.acknowledged[key] = self.values[key]

    def persisted_acknowledged(self, persisted: Any) -> dict[str, str]:
        """Annotations whose acknowledgement is already in the persisted status: safe to remove."""
        persisted = persisted if isinstance(persisted, dict) else {}
        return {k: v for k, v in self.values.items() if persisted.get(k) == v}
