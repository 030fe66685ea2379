"""Operator annotations on a Rollout: tokens acted on once per value (docs/spec/v1alpha1/rollout.md).

Every acknowledgement rule lives here. A request is *fresh* while
`status.acknowledgedAnnotations[key]` differs from its value (values longer than 1024 characters
are compared by digest). The controller never removes or edits an annotation: one kept in Git
and re-applied by Flux stays acknowledged and never acts twice (docs/operations.md).

A request is either *used* (it made a deployment or a retry happen), *meaningless* (acknowledged
without effect), or it *waits* (not acknowledged; the wait is named in the Ready message).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hooks.rollout.bounds import ANNOTATION_VALUE_CHARS, cut
from hooks.rollout.ordering import is_oci_tag

PREFIX = "rollout.kuberik.com/"
FORCE_DEPLOY = PREFIX + "force-deploy"
BYPASS_GATES = PREFIX + "bypass-gates"
UNBLOCK_FAILED = PREFIX + "unblock-failed"
RETRY = PREFIX + "retry"
DEPLOY_MESSAGE = PREFIX + "deploy-message"
DEPLOY_USER = PREFIX + "deploy-user"
ONE_SHOT = (FORCE_DEPLOY, BYPASS_GATES, UNBLOCK_FAILED, RETRY, DEPLOY_MESSAGE, DEPLOY_USER)
SHORT = {key: key.removeprefix(PREFIX) for key in ONE_SHOT}
NOTE_VALUE_CHARS = 140  # an annotation value quoted in a condition message


def token(value: str) -> str:
    """What is recorded for a value: itself, or `sha256:<hex>` past 1024 characters."""
    if len(value) <= ANNOTATION_VALUE_CHARS:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def requested_tag(value: str | None) -> str | None:
    """The tag of a `force-deploy` / `bypass-gates` value: `<tag>` or `<tag>@<nonce>`.

    None when the tag part is not an OCI tag (such a value names no release, ever).
    """
    if value is None:
        return None
    tag = value.split("@", 1)[0]
    return tag if is_oci_tag(tag) else None


def unblock_requested(value: str | None) -> bool:
    """`unblock-failed` asks for something only as `true`, in any letter case."""
    return value is not None and value.strip().lower() == "true"


def quoted(value: str) -> str:
    return cut(value, NOTE_VALUE_CHARS)


@dataclass
class Annotations:
    """The operator annotations of one Rollout and their acknowledgements during one sync."""

    values: dict[str, str]
    acknowledged: dict[str, str]
    waiting: dict[str, str] = field(default_factory=dict)  # key -> what it waits for

    @classmethod
    def read(cls, annotations: Mapping[str, Any], acknowledged: Any) -> Annotations:
        values = {k: v for k, v in annotations.items() if k in ONE_SHOT and isinstance(v, str)}
        previous = acknowledged if isinstance(acknowledged, Mapping) else {}
        kept = {k: v for k, v in previous.items() if k in values and isinstance(v, str)}
        return cls(values, kept)

    def fresh(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None or self.acknowledged.get(key) == token(value):
            return None
        return value

    def use(self, *keys: str) -> None:
        """Acknowledge requests that were acted on (or found meaningless)."""
        for key in keys:
            if key in self.values:
                self.acknowledged[key] = token(self.values[key])
                self.waiting.pop(key, None)

    def wait(self, key: str, note: str) -> None:
        self.waiting[key] = note

    def status(self) -> dict[str, str]:
        return dict(sorted(self.acknowledged.items()))

    def notes(self) -> list[str]:
        return [self.waiting[k] for k in ONE_SHOT if k in self.waiting]


# --- the rules --------------------------------------------------------------------------------


def acknowledge_on_empty_history(ann: Annotations) -> list[str]:
    """docs/operations.md: annotations found with an empty history were written for an earlier state."""
    found = [k for k in ONE_SHOT if ann.fresh(k) is not None]
    ann.use(*found)
    return found


@dataclass(frozen=True)
class Facts:
    """What the sync ended with, for the requests that were not used."""

    deployed: str | None
    head_baking: bool
    head_failed: bool
    unhealthy: bool
    pinned: bool
    manual_recorded: bool  # this sync recorded a pin or a force-deploy
    known: frozenset[str]
    later_than_deployed: Callable[[str], bool]
    explain: Callable[[str], str]  # the choose step's reason for a tag


def settle(ann: Annotations, facts: Facts) -> None:
    """Acknowledge what is meaningless now; name what waits (docs/operations.md)."""
    ann.use(RETRY, DEPLOY_MESSAGE, DEPLOY_USER)  # used by this sync's deploy, or by none
    _settle_force(ann, facts)
    _settle_bypass(ann, facts)
    _settle_unblock(ann, facts)


def _settle_force(ann: Annotations, facts: Facts) -> None:
    value = ann.fresh(FORCE_DEPLOY)
    if value is None:
        return
    tag = requested_tag(value)
    if facts.pinned:
        ann.wait(FORCE_DEPLOY, f"force-deploy {quoted(value)} waits: spec.wantedVersion is set")
    elif tag is None or tag not in facts.known:
        ann.wait(FORCE_DEPLOY, f"force-deploy {quoted(value)} waits: not a known release")
    elif tag == facts.deployed:
        ann.use(FORCE_DEPLOY)  # already deployed: nothing to do


def _settle_bypass(ann: Annotations, facts: Facts) -> None:
    value = ann.fresh(BYPASS_GATES)
    if value is None:
        return
    tag = requested_tag(value)
    if facts.manual_recorded:
        # the operator chose a version by hand: a bypass named before (or with) it is superseded,
        # and nothing automatic may follow that choice (the status stays a fixed point)
        ann.use(BYPASS_GATES)
    elif tag is None or tag not in facts.known:
        ann.wait(BYPASS_GATES, f"bypass-gates {quoted(value)} waits: not a known release")
    elif facts.deployed is not None and not facts.later_than_deployed(tag):
        ann.use(BYPASS_GATES)  # never a candidate again: meaningless
    else:
        ann.wait(BYPASS_GATES, f"bypass-gates {quoted(value)} waits: {facts.explain(tag)}")


def _settle_unblock(ann: Annotations, facts: Facts) -> None:
    value = ann.fresh(UNBLOCK_FAILED)
    if value is None:
        return
    if not unblock_requested(value):
        ann.use(UNBLOCK_FAILED)  # only "true" asks for something
    elif facts.head_baking:
        ann.wait(UNBLOCK_FAILED, f"unblock-failed waits for the bake of {facts.deployed}")
    elif facts.head_failed or facts.unhealthy:
        ann.wait(UNBLOCK_FAILED, "unblock-failed waits for a release candidate to deploy")
    else:
        ann.use(UNBLOCK_FAILED)  # nothing to unblock
