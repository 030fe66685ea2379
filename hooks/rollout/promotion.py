"""Promotion between Rollouts (docs/promotion.md): a downstream Rollout deploys automatically
only releases that baked `Succeeded` (and soaked, when asked) in the upstream Rollouts it names.

Everything here is pure. Verification reads only the upstream's own `status.history` (never its
`status.promotion`), so a cycle can never echo a verification back; and an upstream is read at
all only when its `spec.promotion.exportTo.namespaceSelector` lets the downstream's namespace
promote from it (the same namespace always may). Only `deployed` and the verified tags are ever
copied from an upstream into the downstream's status.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from hooks.api.rollout import Trigger, entry_tag, entry_trigger
from hooks.k8s import parse_duration, parse_time, selector_matches

ONE_OF: Literal["OneOf"] = "OneOf"
ALL: Literal["All"] = "All"
#: Triggers by which an operator (or the automatic rollback) moves a Rollout somewhere on purpose.
MOVED_BY_HAND = frozenset({Trigger.PIN, Trigger.FORCE_DEPLOY, Trigger.ROLLBACK})
SUCCEEDED, FAILED = "Succeeded", "Failed"
#: How many verified tags per source the status reports (best first).
REPORTED_VERIFIED = 20
#: At most this many upstreams (the CRD's maxItems, so status.promotion.sources fits its schema).
MAX_SOURCES = 20

#: `is_lower(a, b)`: release `a` comes before release `b` in the downstream's release order.
#: It answers False when the order cannot tell.
IsLower = Callable[[str, str], bool]


class InvalidPromotion(ValueError):
    """`spec.promotion` cannot be acted on; the message names the field."""


@dataclass(frozen=True)
class Source:
    """One upstream Rollout named in `spec.promotion.from`."""

    name: str
    namespace: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Promotion:
    """`spec.promotion` of a downstream Rollout, validated."""

    sources: tuple[Source, ...]
    availability: Literal["OneOf", "All"] = ONE_OF
    soak: timedelta | None = None


def parse(raw: Any, namespace: str, name: str) -> Promotion | None:
    """Read `spec.promotion`; None when it is absent or names no upstream.

    Raises InvalidPromotion for a malformed field and for a Rollout that names itself.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidPromotion("spec.promotion must be an object")
    entries = raw.get("from")
    if entries is None or entries == []:
        return None
    if not isinstance(entries, list):
        raise InvalidPromotion("spec.promotion.from must be a list")
    if len(entries) > MAX_SOURCES:
        raise InvalidPromotion(f"spec.promotion.from names {len(entries)} upstreams, at most {MAX_SOURCES}")
    sources: list[Source] = []
    for i, entry in enumerate(entries):
        where = f"spec.promotion.from[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise InvalidPromotion(f"{where}.name must be a non-empty string")
        ns = entry.get("namespace", namespace)
        if not isinstance(ns, str) or not ns:
            raise InvalidPromotion(f"{where}.namespace must be a non-empty string")
        source = Source(entry["name"], ns)
        if source == Source(name, namespace):
            raise InvalidPromotion(f"{where} names this Rollout itself")
        if source in sources:
            raise InvalidPromotion(f"{where} names Rollout {source.ref} twice")
        sources.append(source)
    availability = raw.get("availability", ONE_OF)
    if availability not in (ONE_OF, ALL):
        raise InvalidPromotion(f"spec.promotion.availability must be OneOf or All, not {availability!r}")
    soak = None
    if raw.get("soakTime") is not None:
        try:
            soak = parse_duration(raw["soakTime"])
        except ValueError as error:
            raise InvalidPromotion(f"spec.promotion.soakTime: {error}") from None
    return Promotion(tuple(sources), availability, soak)


# --- reading one upstream ----------------------------------------------------------------


def _soak_start(entry: Mapping[str, Any]) -> datetime | None:
    """The bake start, or, for an entry that had no bake to run, when it was recorded."""
    return parse_time(entry.get("bakeStartTime")) or parse_time(entry.get("timestamp"))


@dataclass(frozen=True)
class Verification:
    """What one upstream's history verifies, and when the next soak completes."""

    #: Tags verified, newest entry first.
    tags: tuple[str, ...]
    #: The first future moment a tag now soaking becomes verified (for resyncAfterSeconds).
    soak_deadline: datetime | None = None


def verify(history: Any, *, soak: timedelta | None, now: datetime, is_lower: IsLower) -> Verification:
    """The releases an upstream verified: the newest finished bake of the tag `Succeeded` (a
    later `Failed` bake of the same tag withdraws it), it soaked for `soak` after its bake start
    while it stayed deployed (until the next entry, or now), and the upstream did not move away
    from it by a later Pin, ForceDeploy or Rollback to a release lower in release order (or one
    the order cannot place: when in doubt, the upstream moved away)."""
    entries = [e for e in history if isinstance(e, Mapping)] if isinstance(history, list) else []
    tags: list[str] = []
    decided: set[str] = set()  # the newest finished bake of a tag decides for that tag
    deadline: datetime | None = None
    for i, entry in enumerate(entries):
        tag = entry_tag(entry)
        if tag is None or tag in decided or entry.get("bakeStatus") not in (SUCCEEDED, FAILED):
            continue
        decided.add(tag)
        if entry.get("bakeStatus") == FAILED or _moved_away(tag, entries[:i], is_lower):
            continue
        if soak is not None:
            start = _soak_start(entry)
            if start is None:
                continue
            until = parse_time(entries[i - 1].get("timestamp")) if i else now
            if until is None or until - start < soak:
                if i == 0:  # still deployed: it will be verified once the soak is over
                    due = start + soak
                    deadline = due if deadline is None else min(deadline, due)
                continue
        tags.append(tag)
    return Verification(tuple(tags), deadline)


def _moved_away(tag: str, later: Sequence[Mapping[str, Any]], is_lower: IsLower) -> bool:
    for entry in later:
        other = entry_tag(entry)
        if other is None or other == tag or entry_trigger(entry) not in MOVED_BY_HAND:
            continue
        if is_lower(other, tag) or not is_lower(tag, other):
            return True
    return False


def exports_to(upstream: Mapping[str, Any], namespace: str, namespace_labels: Mapping[str, str]) -> bool:
    """Whether `upstream` lets Rollouts of `namespace` promote from it."""
    md = upstream.get("metadata")
    if isinstance(md, Mapping) and md.get("namespace") == namespace:
        return True
    spec = upstream.get("spec")
    promotion = spec.get("promotion") if isinstance(spec, Mapping) else None
    export = promotion.get("exportTo") if isinstance(promotion, Mapping) else None
    if not isinstance(export, Mapping) or "namespaceSelector" not in export:
        return False
    try:
        return selector_matches(export["namespaceSelector"], namespace_labels)
    except ValueError:
        return False  # an upstream's invalid selector exports to nobody


def names_back(upstream: Mapping[str, Any], me: Source) -> bool:
    """A direct cycle: the upstream promotes from this Rollout."""
    spec = upstream.get("spec")
    promotion = spec.get("promotion") if isinstance(spec, Mapping) else None
    entries = promotion.get("from") if isinstance(promotion, Mapping) else None
    md = upstream.get("metadata")
    upstream_ns = md.get("namespace") if isinstance(md, Mapping) else None
    return any(
        isinstance(entry, Mapping)
        and entry.get("name") == me.name
        and entry.get("namespace", upstream_ns) == me.namespace
        for entry in (entries if isinstance(entries, list) else [])
    )


# --- all upstreams together --------------------------------------------------------------


@dataclass(frozen=True)
class SourceState:
    """What the downstream knows of one upstream."""

    source: Source
    found: bool
    exported: bool
    deployed: str | None = None
    verified: tuple[str, ...] = ()
    #: The digest the upstream recorded for each verified tag, when it had one.
    digests: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def readable(self) -> bool:
        return self.found and self.exported


@dataclass(frozen=True)
class Observation:
    """Every upstream of one downstream Rollout, as read from one request."""

    promotion: Promotion
    sources: tuple[SourceState, ...]
    soak_deadline: datetime | None = None
    #: Upstreams that promote from this Rollout (a direct cycle: InvalidSpec).
    cycles: tuple[Source, ...] = field(default_factory=tuple)

    def verified(self, tag: str) -> bool:
        """Whether automation may take `tag`: verified by one (OneOf) or every (All) upstream."""
        hits = [tag in s.verified for s in self.sources]
        return all(hits) if self.promotion.availability == ALL else any(hits)

    def digest(self, tag: str) -> str | None:
        """The digest an upstream that verified `tag` recorded for it."""
        return next((s.digests[tag] for s in self.sources if tag in s.digests), None)

    def releases(self) -> list[str]:
        """The verified tags of every readable upstream, each once, newest verification first:
        the releases of a Rollout that has no ImagePolicy."""
        seen: dict[str, None] = {}
        for state in self.sources:
            for tag in state.verified:
                seen.setdefault(tag, None)
        return list(seen)


def observe(
    promotion: Promotion,
    me: Source,
    rollouts: Iterable[Mapping[str, Any]],
    namespaces: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    is_lower: IsLower,
) -> Observation:
    """Read every upstream named in `promotion` from the related Rollouts of the request."""
    by_ref: dict[tuple[str, str], Mapping[str, Any]] = {}
    for obj in rollouts:
        md = obj.get("metadata")
        if isinstance(md, Mapping) and isinstance(md.get("name"), str):
            by_ref[(str(md.get("namespace", "")), md["name"])] = obj
    labels = _namespace_labels(me.namespace, namespaces)
    states: list[SourceState] = []
    cycles: list[Source] = []
    deadline: datetime | None = None
    for source in promotion.sources:
        upstream = by_ref.get((source.namespace, source.name))
        if upstream is None:
            states.append(SourceState(source, found=False, exported=False))
            continue
        if not exports_to(upstream, me.namespace, labels):
            states.append(SourceState(source, found=True, exported=False))
            continue
        if names_back(upstream, me):
            cycles.append(source)
        status = upstream.get("status")
        history = status.get("history") if isinstance(status, Mapping) else None
        result = verify(history, soak=promotion.soak, now=now, is_lower=is_lower)
        deployed = entry_tag(history[0]) if isinstance(history, list) and history else None
        states.append(SourceState(source, True, True, deployed, result.tags, _digests(history, result.tags)))
        if result.soak_deadline is not None and result.soak_deadline > now:
            deadline = result.soak_deadline if deadline is None else min(deadline, result.soak_deadline)
    return Observation(promotion, tuple(states), deadline, tuple(cycles))


def _digests(history: Any, tags: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in history if isinstance(history, list) else []:
        tag = entry_tag(entry)
        version = entry.get("version") if isinstance(entry, Mapping) else None
        digest = version.get("digest") if isinstance(version, Mapping) else None
        if tag is not None and tag in tags and tag not in found and isinstance(digest, str) and digest:
            found[tag] = digest
    return found


def _namespace_labels(namespace: str, namespaces: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    for obj in namespaces:
        md = obj.get("metadata")
        if isinstance(md, Mapping) and md.get("name") == namespace:
            labels = md.get("labels")
            if isinstance(labels, Mapping):
                return {str(k): str(v) for k, v in labels.items()}
            return {}
    return {}


# --- reporting -----------------------------------------------------------------------------


def best_first(tags: Iterable[str], is_lower: IsLower) -> list[str]:
    """Tags best first in release order; tags the order cannot compare keep their order."""

    def compare(a: str, b: str) -> int:
        if is_lower(a, b):
            return 1
        if is_lower(b, a):
            return -1
        return 0

    return sorted(tags, key=functools.cmp_to_key(compare))


def sources_status(observation: Observation, is_lower: IsLower) -> dict[str, Any]:
    """`status.promotion`: per upstream whether it was found, what it runs and what it verified."""
    sources = []
    for state in observation.sources:
        entry: dict[str, Any] = {
            "name": state.source.name,
            "namespace": state.source.namespace,
            "found": state.found,
        }
        if state.readable:
            if state.deployed is not None:
                entry["deployed"] = state.deployed
            entry["verified"] = best_first(state.verified, is_lower)[:REPORTED_VERIFIED]
        else:
            entry["verified"] = []
        sources.append(entry)
    return {"sources": sources}


def condition(observation: Observation, candidates: Sequence[str]) -> tuple[bool, str, str]:
    """`UpstreamVerified` (status, reason, message) over the release candidates, best first."""
    missing = [s.source.ref for s in observation.sources if not s.found]
    hidden = [s.source.ref for s in observation.sources if s.found and not s.exported]
    notes = []
    if missing:
        notes.append(f"Rollout {', '.join(missing)} not found")
    if hidden:
        notes.append(f"Rollout {', '.join(hidden)} does not export to this namespace")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    verified = [c for c in candidates if observation.verified(c)]
    if not candidates:
        return True, "Verified", "No release candidate waits for upstream verification" + suffix
    if verified:
        return True, "Verified", f"Release {verified[0]} is verified upstream" + suffix
    how = "every upstream" if observation.promotion.availability == ALL else "an upstream"
    waiting = f"No release candidate is verified by {how} yet (best candidate: {candidates[0]})"
    if missing:
        return False, "UpstreamNotFound", waiting + suffix
    if hidden:
        return False, "UpstreamNotExported", waiting + suffix
    return False, "WaitingForUpstream", waiting
