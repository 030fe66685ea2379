"""Size bounds that keep a Rollout's status small whatever its history (docs/spec/v1alpha1/rollout.md).

The status is written on every change and sent back in every request, and the API server
rejects objects over 1.5 MiB. Each list that grows with releases or failures has a bound
here, so the whole status stays under 300 KiB (bench/run.py measures its worst case):

| part                          | bound                                              | worst case |
|-------------------------------|----------------------------------------------------|-----------:|
| availableReleases             | <= 1000 entries and <= 80 KiB (oldest dropped)      |     80 KiB |
| (gated)releaseCandidates      | the 100 best each                                  |     26 KiB |
| history                       | <= 100 entries; deploy-messages (1024) and user    |    160 KiB |
|                               | names cut;                                         |            |
|                               | failedHealthChecks: 5 per entry, on the 10 newest  |            |
| condition messages            | 1024 characters                                    |      6 KiB |

Every bound is a pure function of the status, so applying it again changes nothing.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_RELEASES = 1000
RELEASES_BYTES = 80 * 1024
MAX_REPORTED_CANDIDATES = 100
MAX_HISTORY = 100
MESSAGE_CHARS = 256
DEPLOY_MESSAGE_CHARS = 1024  # docs/operations.md: a deploy-message keeps its first 1024 characters
NAME_CHARS = 253
CONDITION_MESSAGE_CHARS = 1024
FLUX_MESSAGE_CHARS = 256  # a message copied from a Flux object
ANNOTATION_VALUE_CHARS = 1024  # longer annotation values are acknowledged by digest
FAILED_CHECKS_PER_ENTRY = 5
FAILED_CHECK_MESSAGE_CHARS = 256
DEPLOY_MESSAGE_CHARS = 1024  # docs/operations.md: a deploy-message keeps its first 1024 characters
ENTRIES_WITH_FAILED_CHECKS = 10


def cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def releases_within_budget(releases: list[dict], floor: int = 1) -> list[dict]:
    """The newest releases whose JSON fits RELEASES_BYTES (at least `floor` of them)."""
    total = 0
    keep = 0
    for entry in reversed(releases):
        total += len(orjson.dumps(entry)) + 1
        if total > RELEASES_BYTES and keep >= floor:
            break
        keep += 1
    return releases[len(releases) - keep :] if keep < len(releases) else releases


def failed_checks(summaries: list[dict]) -> list[dict]:
    """The first FAILED_CHECKS_PER_ENTRY failed checks, messages cut."""
    return [
        {**s, "message": cut(s["message"], FAILED_CHECK_MESSAGE_CHARS)}
        if isinstance(s.get("message"), str)
        else s
        for s in summaries[:FAILED_CHECKS_PER_ENTRY]
    ]


def compact_history(history: list) -> list:
    """Older entries keep their outcome but not the failed-check details."""
    compacted = []
    for index, entry in enumerate(history[:MAX_HISTORY]):
        if isinstance(entry, dict) and isinstance(entry.get("failedHealthChecks"), list):
            if index >= ENTRIES_WITH_FAILED_CHECKS:
                entry = {k: v for k, v in entry.items() if k != "failedHealthChecks"}
            elif len(entry["failedHealthChecks"]) > FAILED_CHECKS_PER_ENTRY:
                entry = {**entry, "failedHealthChecks": failed_checks(entry["failedHealthChecks"])}
        compacted.append(entry)
    return compacted


def reported(candidates: list[Any]) -> list[Any]:
    return candidates[:MAX_REPORTED_CANDIDATES]
