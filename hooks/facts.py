"""The facts a Rollout's status records, each with a name derived from the fact (docs/events-and-metrics.md).

Pure: a persisted status in, facts out. The same status always gives the same facts with
the same names, so every hook replica, a retried sync and a duplicated sync compute the same
Kubernetes Event names and the API server's `AlreadyExists` tells them it was announced
(docs/events-and-metrics.md). Fields written by newer engines (`trigger`, `rollbackOf`,
`adopted`, `status.hold`) are read defensively: an older status simply has fewer facts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hooks.api.rollout import entry_tag, entry_trigger
from hooks.k8s import parse_time

#: Facts older than this (against the hook's clock) are never announced: an install, an
#: upgrade or a restored status must not flood Slack with last month's deployments.
MAX_AGE = timedelta(hours=1)
#: Kubernetes bounds (events.k8s.io/v1 validation): note ≤ 1 KiB, reason/action ≤ 128.
NOTE_CHARS = 1000
NAME_HASH_CHARS = 16

AUTOMATIC, PIN, FORCE, ROLLBACK, ADOPTION = "Automatic", "Pin", "ForceDeploy", "Rollback", "Adoption"
TERMINAL_BAKES = ("Succeeded", "Failed", "Cancelled")

# reasons (Event.reason, Flux event reason)
DEPLOYED, ADOPTED, ROLLED_BACK = "Deployed", "Adopted", "RolledBack"
BAKE_STARTED, BAKE_RETRIED = "BakeStarted", "BakeRetried"
BAKE_SUCCEEDED, BAKE_FAILED, BAKE_CANCELLED = "BakeSucceeded", "BakeFailed", "BakeCancelled"
HOLD_SET, HOLD_CLEARED = "HoldSet", "HoldCleared"
TARGETS_FAILING = "TargetsFailing"

#: reason -> (action, warning); the action is the events.k8s.io `action` field.
KINDS: dict[str, tuple[str, bool]] = {
    DEPLOYED: ("Deploy", False),
    ADOPTED: ("Deploy", False),
    ROLLED_BACK: ("Deploy", True),
    BAKE_STARTED: ("Bake", False),
    BAKE_RETRIED: ("Bake", False),
    BAKE_SUCCEEDED: ("Bake", False),
    BAKE_FAILED: ("Bake", True),
    BAKE_CANCELLED: ("Bake", False),
    HOLD_SET: ("Hold", False),
    HOLD_CLEARED: ("Hold", False),
    TARGETS_FAILING: ("Actuate", True),
}
#: Order of facts recorded at the same second: a deploy before its bake, a bake before its end.
_RANK = {reason: rank for rank, reason in enumerate(KINDS)}
_NAME_TAIL = re.compile(r"[^a-z0-9]+$")


@dataclass(frozen=True)
class Fact:
    """One thing the status records, announced at most once."""

    name: str  #: the Event name: `<rollout>.<16 hex of uid, reason, entry id, time, state>`
    reason: str
    time: datetime
    message: str
    version: str | None = None  #: the tag the fact is about
    entry_id: int | None = None  #: the history entry it comes from
    trigger: str | None = None
    #: delivery-metric inputs measured at derivation (seconds), e.g. lead_time, time_to_recover
    measures: Mapping[str, float] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return KINDS[self.reason][0]

    @property
    def warning(self) -> bool:
        return KINDS[self.reason][1]


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is a mapping, else an empty one (statuses may hold anything)."""
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> list[Any]:
    """`value` if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def event_name(rollout: str, uid: str, *parts: object) -> str:
    """A valid Event name (DNS subdomain) derived only from the fact, never from the clock."""
    digest = hashlib.sha256("\x00".join([uid, *map(str, parts)]).encode()).hexdigest()[:NAME_HASH_CHARS]
    prefix = _NAME_TAIL.sub("", rollout.lower()[: 253 - NAME_HASH_CHARS - 1]) or "rollout"
    return f"{prefix}.{digest}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 3].rstrip() + "..."


def _entries(status: Mapping[str, Any]) -> list[dict]:
    """History entries that can carry facts: dicts with an integer id and a timestamp."""
    raw = status.get("history")
    return [
        e
        for e in (raw if isinstance(raw, list) else [])
        if isinstance(e, dict) and isinstance(e.get("id"), int) and isinstance(e.get("timestamp"), str)
    ]


def _discovered(entry: Mapping[str, Any], releases: Any) -> datetime | None:
    version = mapping(entry.get("version"))
    found = parse_time(version.get("discoveredAt"))
    if found is None and isinstance(releases, list):
        tag = entry_tag(entry)
        for release in releases:
            if isinstance(release, Mapping) and release.get("tag") == tag:
                found = parse_time(release.get("discoveredAt"))
    return found


def _condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for cond in items(status.get("conditions")):
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            return cond
    return {}


class _Builder:
    def __init__(self, rollout: str, uid: str, since: datetime | None = None) -> None:
        self.rollout, self.uid, self.since = rollout, uid, since
        self.facts: list[Fact] = []

    def add(
        self, reason: str, time: datetime | None, message: str, entry: Mapping[str, Any] | None, **extra: Any
    ) -> None:
        if time is None or (self.since is not None and time < self.since):
            return
        entry_id = entry.get("id") if entry is not None else extra.pop("entry_id", None)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ")
        name = event_name(self.rollout, self.uid, reason, entry_id, stamp, extra.pop("key", ""))
        tag = entry_tag(entry) if entry is not None else extra.pop("version", None)
        trigger = entry_trigger(entry) if entry is not None else None
        self.facts.append(Fact(name, reason, time, _cut(message), tag, entry_id, trigger, **extra))


def _deploy_fact(b: _Builder, entry: dict) -> None:
    tag, trigger = entry_tag(entry) or "?", entry_trigger(entry)
    who = mapping(entry.get("triggeredBy"))
    by = f" by {who.get('name')}" if who.get("kind") == "User" and who.get("name") else ""
    message = _text(entry.get("message"))
    when = parse_time(entry.get("timestamp"))
    if trigger == ADOPTION:
        b.add(ADOPTED, when, message or f"Adopted {tag}", entry)
    elif trigger == ROLLBACK:
        of = entry.get("rollbackOf")
        source = f" (rollback of deployment {of})" if isinstance(of, int) else ""
        b.add(ROLLED_BACK, when, f"Rolled back to {tag}{source}: {message}", entry)
    else:
        b.add(DEPLOYED, when, f"Deployed {tag} (deployment {entry['id']}, {trigger}{by}): {message}", entry)


def _bake_facts(b: _Builder, entry: dict, older: list[dict], releases: Any) -> None:
    tag = entry_tag(entry) or "?"
    started = parse_time(entry.get("bakeStartTime"))
    b.add(BAKE_STARTED, started, f"Bake of {tag} started (deployment {entry['id']})", entry)
    b.add(
        BAKE_RETRIED,
        parse_time(entry.get("lastRetryTimestamp")),
        f"Bake of {tag} retried (deployment {entry['id']})",
        entry,
    )
    state = entry.get("bakeStatus")
    if state not in TERMINAL_BAKES:
        return
    # A deployment without bake configuration succeeds without a bakeEndTime in older statuses.
    ended = parse_time(entry.get("bakeEndTime")) or (
        parse_time(entry.get("timestamp")) if state == "Succeeded" else None
    )
    text = _text(entry.get("bakeStatusMessage"))
    if state == "Failed":
        checks = [
            f"{c.get('namespace')}/{c.get('name')}"
            for c in entry.get("failedHealthChecks") or []
            if isinstance(c, Mapping) and c.get("name")
        ]
        failing = f" (HealthChecks: {', '.join(checks[:5])})" if checks else ""
        # a change failure is a deployment whose bake failed: a failed retry is the same one
        first = {} if entry.get("lastRetryTimestamp") else {"change_failure": 1.0}
        b.add(BAKE_FAILED, ended, f"Bake of {tag} failed: {text}{failing}", entry, key=state, measures=first)
    elif state == "Cancelled":
        b.add(BAKE_CANCELLED, ended, f"Bake of {tag} cancelled: {text}", entry, key=state)
    else:
        b.add(
            BAKE_SUCCEEDED,
            ended,
            f"Bake of {tag} succeeded: {text}",
            entry,
            key=state,
            measures=_success_measures(entry, older, releases, ended),
        )


def _success_measures(
    entry: dict, older: list[dict], releases: Any, ended: datetime | None
) -> dict[str, float]:
    """Lead time (release discovered -> bake Succeeded) and time to recover (the first failure
    since the previous success -> this success), from the status alone."""
    measures: dict[str, float] = {}
    if ended is None:
        return measures
    discovered = _discovered(entry, releases)
    if discovered is not None and entry_trigger(entry) in (AUTOMATIC, PIN, FORCE) and ended >= discovered:
        measures["lead_time"] = (ended - discovered).total_seconds()
    first_failure: datetime | None = None
    for previous in older:  # newest first
        state = previous.get("bakeStatus")
        if state == "Succeeded":
            break
        if state == "Failed":
            failed_at = parse_time(previous.get("bakeEndTime"))
            if failed_at is not None:
                first_failure = failed_at
    if first_failure is not None and ended >= first_failure:
        measures["time_to_recover"] = (ended - first_failure).total_seconds()
    return measures


def _hold_facts(b: _Builder, status: Mapping[str, Any], entries: list[dict]) -> None:
    hold = status.get("hold") if isinstance(status.get("hold"), Mapping) else None
    active = hold.get("historyId") if hold is not None else None
    if hold is not None:
        since = parse_time(hold.get("since"))
        resume = _text(hold.get("resumeAfter")) or "?"
        reason = _text(hold.get("reason")) or "Hold"
        text = f"Automatic deploys wait for a release later than {resume} ({reason})"
        if _text(hold.get("message")):
            text += f": {hold['message']}"
        entry_id = active if isinstance(active, int) else None
        b.add(HOLD_SET, since, text, None, key=f"{active}/{resume}", version=resume, entry_id=entry_id)
    for index, entry in enumerate(entries):
        cleared = entry.get("clearedHold")
        older = entries[index + 1] if index + 1 < len(entries) else None
        # docs/events-and-metrics.md: "deployment N cleared the hold". An entry may record it (`clearedHold`);
        # otherwise the hold an automatic rollback always sets ended with the next deployment,
        # unless that deployment set the hold now active.
        derived = (
            older is not None
            and entry_trigger(older) == ROLLBACK
            and entry_trigger(entry) != ROLLBACK
            and active not in (older.get("id"), entry.get("id"))
        )
        if cleared or derived:
            tag = entry_tag(entry) or "?"
            b.add(
                HOLD_CLEARED,
                parse_time(entry.get("timestamp")),
                f"Deployment {entry['id']} of {tag} cleared the hold",
                entry,
            )


def _targets_fact(b: _Builder, status: Mapping[str, Any], entries: list[dict]) -> None:
    synced = _condition(status, "TargetsSynced")
    if synced.get("status") != "False" or synced.get("reason") != TARGETS_FAILING or not entries:
        return
    head = entries[0]
    times = [parse_time(head.get("timestamp")), parse_time(synced.get("lastTransitionTime"))]
    ready = _condition(status, "Ready")
    if ready.get("reason") == TARGETS_FAILING:
        times.append(parse_time(ready.get("lastTransitionTime")))
    when = max((t for t in times if t is not None), default=None)
    message = _text(synced.get("message")) or "Flux objects do not carry the deployed version"
    b.add(TARGETS_FAILING, when, f"Targets of {entry_tag(head) or '?'} are failing: {message}", head)


def derive(status: Any, rollout: str, uid: str, since: datetime | None = None) -> list[Fact]:
    """Every fact the status records, oldest first; with `since`, only facts from then on.

    Only history[0] bakes and a deployment is dated at or after the entry before it (SPEC
    §3.8), so every fact of an entry is at or before the timestamp of the next newer entry:
    entries behind one older than `since` are not read at all (a 100-entry history costs
    what its last hour costs)."""
    if not isinstance(status, Mapping):
        return []
    b = _Builder(rollout, uid, since)
    entries = _entries(status)
    releases = status.get("availableReleases")
    recent = entries
    for index, entry in enumerate(entries):
        newer = parse_time(entries[index - 1]["timestamp"]) if index else None
        if since is not None and newer is not None and newer < since:
            recent = entries[:index]
            break
        older = entries[index + 1 :]
        _deploy_fact(b, entry)
        _bake_facts(b, entry, older, releases)
    _hold_facts(b, status, recent + entries[len(recent) : len(recent) + 1])
    _targets_fact(b, status, entries)
    return sorted(b.facts, key=lambda f: (f.time, f.entry_id or 0, _RANK[f.reason]))


def due(facts: Sequence[Fact], now: datetime, max_age: timedelta = MAX_AGE) -> list[Fact]:
    """The facts recent enough to announce (a fact dated after `now`, from a replica with a
    faster clock, is announced too)."""
    return [f for f in facts if now - f.time <= max_age]


def facts(rollout: Any, now: datetime) -> list[Fact]:
    """The facts of a Rollout object's PERSISTED status that are due for announcement."""
    if not isinstance(rollout, Mapping):
        return []
    md = mapping(rollout.get("metadata"))
    name, uid = md.get("name"), md.get("uid")
    if not isinstance(name, str) or not name:
        return []
    # Without a UID (never on a real cluster), names fall back to namespace/name.
    key = uid if isinstance(uid, str) and uid else f"{md.get('namespace')}/{name}"
    return due(derive(rollout.get("status"), name, key, since=now - MAX_AGE), now)
