"""Adoption (docs rollout.md): a Rollout put in front of a running app, or a status that was lost,
records what the targets already carry instead of deploying through gates and health."""

from __future__ import annotations

from hooks.api.rollout import Trigger
from hooks.rollout.history import Deploy
from hooks.rollout.ordering import Ordering, is_oci_tag
from hooks.rollout.targets import TargetField


def adoptable(fields: list[TargetField], ordering: Ordering, known: frozenset[str]) -> str | None:
    """The value every driven field carries, when it is one known (or semver-ordered) release."""
    fields = [f for f in fields if not f.readonly]  # read-only entries report, they carry nothing
    if not fields or any(f.problem is not None or not f.observed for f in fields):
        return None
    values = {f.observed for f in fields}
    if len(values) != 1:
        return None
    value = values.pop()
    if value is None or not is_oci_tag(value):
        return None
    if value in known or (ordering.kind == "semver" and ordering.can_order(value)):
        return value
    return None


def adoption(tag: str) -> Deploy:
    return Deploy(tag, Trigger.ADOPTION, message=f"Adopted: the targets already carry {tag}", adopted=True)
