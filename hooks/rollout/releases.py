"""Release discovery and the bounded list of known releases (docs/spec/v1alpha1/rollout.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hooks.api.rollout import Reason
from hooks.k8s import dig, format_time, get_condition, meta, parse_time
from hooks.rollout.bounds import FLUX_MESSAGE_CHARS, MAX_RELEASES, cut, releases_within_budget
from hooks.rollout.ordering import is_oci_tag


@dataclass(frozen=True)
class Discovery:
    """Outcome of reading the ImagePolicy: the announced release, or why there is none."""

    tag: str | None
    digest: str | None
    reason: str  # a ReleasesUpdated reason (Reason)
    message: str


#: What a Rollout without an ImagePolicy "announces": nothing (its releases come from upstream Rollouts).
NOTHING_ANNOUNCED = Discovery(None, None, Reason.RELEASES_UPDATED, "")


def from_upstreams(refs: list[str], latest: str | None) -> Discovery:
    """ReleasesUpdated of a Rollout without an ImagePolicy (docs/promotion.md): True, since no
    ImagePolicy is missing; the message names the upstreams and the latest release they verified."""
    where = f"Releases come from the upstream Rollouts {', '.join(refs)} (spec.promotion.from)"
    tail = f"; the latest is {latest}" if latest else "; none verified yet"
    return Discovery(None, None, Reason.RELEASES_UPDATED, where + tail)


def find_image_policy(policies: list[dict], name: str, namespace: str) -> dict | None:
    for policy in policies:
        md = meta(policy)
        if md.get("name") == name and md.get("namespace", namespace) == namespace:
            return policy
    return None


def _not_ready(policy: dict) -> str | None:
    """`<Flux reason>: <Flux message>` when the ImagePolicy reports Ready=False, else None."""
    ready = get_condition(dig(policy, "status", "conditions"), "Ready")
    if ready is None or ready.get("status") != "False":
        return None
    reason = ready.get("reason") if isinstance(ready.get("reason"), str) else "NotReady"
    message = ready.get("message") if isinstance(ready.get("message"), str) else ""
    return cut(f"{reason}: {message}" if message else str(reason), FLUX_MESSAGE_CHARS)


def discover(policy: dict | None, name: str) -> Discovery:
    """What the ImagePolicy announces (docs rollout.md): image.toolkit.fluxcd.io/v1 status.latestRef."""
    if policy is None:
        return Discovery(None, None, Reason.IMAGE_POLICY_NOT_FOUND, f"ImagePolicy '{name}' not found")
    tag = dig(policy, "status", "latestRef", "tag")
    digest = dig(policy, "status", "latestRef", "digest")
    digest = digest if isinstance(digest, str) and digest else None
    if isinstance(tag, str) and tag and not is_oci_tag(tag):
        message = f"ImagePolicy '{name}' announces {cut(tag, 140)!r}, which is not a valid OCI tag"
        return Discovery(None, None, Reason.NO_LATEST_REF, message)
    tag = tag if isinstance(tag, str) and tag else None
    failure = _not_ready(policy)
    if failure is not None:  # a latestRef it still carries is still read (docs/spec/v1alpha1/rollout.md)
        return Discovery(tag, digest, Reason.IMAGE_POLICY_NOT_READY, failure)
    if tag is None:
        return Discovery(None, None, Reason.NO_LATEST_REF, f"ImagePolicy '{name}' has no latest release yet")
    return Discovery(
        tag, digest, Reason.RELEASES_UPDATED, f"Latest release from ImagePolicy '{name}' is {tag}"
    )


def clean_releases(raw: Any) -> list[dict]:
    """Known releases from status, skipping entries without a tag (or repeated tags)."""
    releases: list[dict] = []
    seen: set[str] = set()
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("tag"), str) and entry["tag"] not in seen:
            seen.add(entry["tag"])
            releases.append(entry)
    return releases


def record(releases: list[dict], discovery: Discovery, now: datetime) -> list[dict]:
    """Append the announced tag if new; stamp `discoveredAt` once on entries an older
    controller wrote without it (docs/spec/v1alpha1/rollout.md). Existing entries otherwise never change."""
    stamped = [
        r if r.get("discoveredAt") is not None else {**r, "discoveredAt": format_time(now)} for r in releases
    ]
    if discovery.tag is None or any(r["tag"] == discovery.tag for r in stamped):
        return stamped
    entry: dict[str, Any] = {"tag": discovery.tag}
    if discovery.digest:
        entry["digest"] = discovery.digest
    entry["discoveredAt"] = format_time(now)
    return [*stamped, entry]


def record_verified(releases: list[dict], found: list[tuple[str, str | None]], now: datetime) -> list[dict]:
    """A Rollout without an ImagePolicy: append the upstreams' verified tags not yet known, in
    the order given (docs/promotion.md); a value that is not an OCI tag is never recorded."""
    known = {r["tag"] for r in releases}
    added: list[dict] = []
    for tag, digest in found:
        if tag in known or not is_oci_tag(tag):
            continue
        known.add(tag)
        entry: dict[str, Any] = {"tag": tag}
        if digest:
            entry["digest"] = digest
        entry["discoveredAt"] = format_time(now)
        added.append(entry)
    return [*releases, *added] if added else releases


def repushed(releases: list[dict], discovery: Discovery) -> str | None:
    """`tag <t> was re-pushed: digest <old> -> <new>` when a known tag is announced again with a
    different digest (both non-empty; Flux reports digests only with digestReflectionPolicy)."""
    if discovery.tag is None or discovery.digest is None:
        return None
    for release in releases:
        old = release.get("digest")
        if release["tag"] == discovery.tag and isinstance(old, str) and old and old != discovery.digest:
            return f"tag {discovery.tag} was re-pushed: digest {old} -> {discovery.digest}"
    return None


# --- bounding --------------------------------------------------------------------------


def bound(
    releases: list[dict],
    history: list[dict],
    *,
    min_count: int,
    retention: timedelta,
    now: datetime,
    announced: str | None = None,
) -> list[dict]:
    """Keep the newest max(minCount, recent, since-oldest-in-history) entries.

    Never more than 1000 entries nor more JSON than the releases' byte budget (bounds.py).
    The release the ImagePolicy announces is always kept (dropping it would rediscover it
    with a new discoveredAt on the next sync). Applied until nothing changes, so bounding the
    result again keeps it as it is (the byte budget may drop the release that made the
    history rule keep the older ones).
    """
    deployed_tags = {dig(h, "version", "tag") for h in history if isinstance(h, dict)}
    cutoff = now - retention
    for _ in range(16):  # converges in two or three rounds; this is a safety net
        kept = _bound_once(releases, deployed_tags, min_count, cutoff, announced)
        if len(kept) == len(releases):
            break
        releases = kept
    return releases


def _bound_once(
    releases: list[dict], deployed_tags: set, min_count: int, cutoff: datetime, announced: str | None
) -> list[dict]:
    recent = sum(1 for r in releases if (t := parse_time(r.get("discoveredAt"))) is not None and t >= cutoff)
    keep = max(min_count, recent)
    for index, release in enumerate(releases):
        if release["tag"] in deployed_tags:
            keep = max(keep, len(releases) - index)
            break
    keep = min(keep, MAX_RELEASES)
    kept = releases_within_budget(releases[-keep:] if len(releases) > keep else releases)
    if announced is not None and len(kept) < len(releases) and all(r["tag"] != announced for r in kept):
        kept = [r for r in releases if r["tag"] == announced] + kept[-(MAX_RELEASES - 1) :]
    return kept
