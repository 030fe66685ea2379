"""Release discovery, ordering and candidates (SPEC §3.2, §3.3, §3.11)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import semver

from hooks.k8s import dig, format_time, meta, parse_time
from hooks.rollout.bounds import MAX_RELEASES, releases_within_budget


@dataclass(frozen=True)
class Discovery:
    """Outcome of reading the ImagePolicy: the announced release, or why there is none."""

    tag: str | None
    digest: str | None
    reason: str  # ReleasesUpdated | ImagePolicyNotFound | NoLatestRef
    message: str
    semver_policy: bool


def find_image_policy(policies: list[dict], name: str, namespace: str) -> dict | None:
    for policy in policies:
        md = meta(policy)
        if md.get("name") == name and md.get("namespace", namespace) == namespace:
            return policy
    return None


def _tag_from_latest_image(image: Any) -> str | None:
    """Older ImagePolicies (v1beta2) publish `status.latestImage` = `repo[:tag][@digest]`."""
    if not isinstance(image, str):
        return None
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def discover(policy: dict | None, name: str) -> Discovery:
    """What the ImagePolicy announces (SPEC §3.2)."""
    if policy is None:
        return Discovery(None, None, "ImagePolicyNotFound", f"ImagePolicy '{name}' not found", False)
    semver_policy = isinstance(dig(policy, "spec", "policy", "semver"), dict)
    tag = dig(policy, "status", "latestRef", "tag")
    digest = dig(policy, "status", "latestRef", "digest")
    if not isinstance(tag, str) or not tag:
        tag = _tag_from_latest_image(dig(policy, "status", "latestImage"))
        digest = None
    if not tag:
        return Discovery(
            None, None, "NoLatestRef", f"ImagePolicy '{name}' has no latest release yet", semver_policy
        )
    return Discovery(
        tag,
        digest if isinstance(digest, str) and digest else None,
        "ReleasesUpdated",
        f"Latest release from ImagePolicy '{name}' is {tag}",
        semver_policy,
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
    """Append the announced tag if new; existing entries never change."""
    if discovery.tag is None or any(r["tag"] == discovery.tag for r in releases):
        return releases
    entry: dict[str, Any] = {"tag": discovery.tag}
    if discovery.digest:
        entry["digest"] = discovery.digest
    entry["discoveredAt"] = format_time(now)
    return [*releases, entry]


# --- ordering --------------------------------------------------------------------------


def parse_semver(tag: str) -> semver.Version | None:
    """Semver 2.0 parse allowing a leading `v`."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        return None


def _prerelease_key(prerelease: str | None) -> tuple:
    """Semver §11 precedence: a release ranks above its prereleases; fields compare left to right."""
    if not prerelease:
        return (1,)
    parts = []
    for ident in prerelease.split("."):
        parts.append((0, int(ident), "") if ident.isdigit() else (1, 0, ident))
    return (0, tuple(parts))


def semver_key(version: semver.Version) -> tuple:
    """Precedence key (build metadata ignored)."""
    return (version.major, version.minor, version.patch, _prerelease_key(version.prerelease))


@dataclass(frozen=True)
class Ordering:
    """Releases in ascending order (worst first) and how they were ordered."""

    tags: list[str]
    semver: bool

    def position(self, tag: str) -> int | None:
        try:
            return self.tags.index(tag)
        except ValueError:
            return None


def order(releases: list[dict], semver_policy: bool) -> Ordering:
    """Semver order when the policy is semver or every tag parses; else discovery order.

    Sorting is stable, so tags equal in precedence (build metadata) keep discovery order;
    in semver order tags that do not parse rank lowest.
    """
    tags = [r["tag"] for r in releases]
    parsed = {t: parse_semver(t) for t in tags}
    use_semver = semver_policy or (bool(tags) and all(v is not None for v in parsed.values()))
    if not use_semver:
        return Ordering(tags, False)

    def key(tag: str) -> tuple:
        version = parsed[tag]
        return (0,) if version is None else (1, semver_key(version))

    return Ordering(sorted(tags, key=key), True)


def candidates(ordering: Ordering, deployed: str | None) -> list[str]:
    """Releases strictly after the deployed version, best first (SPEC §3.3)."""
    if deployed is None:
        return list(reversed(ordering.tags))
    index = ordering.position(deployed)
    if index is not None:
        return list(reversed(ordering.tags[index + 1 :]))
    if not ordering.semver:
        return []
    version = parse_semver(deployed)
    if version is None:
        return []
    floor = semver_key(version)
    newer = [t for t in ordering.tags if (v := parse_semver(t)) is not None and semver_key(v) > floor]
    return list(reversed(newer))


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
