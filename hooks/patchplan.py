"""Guarded RFC 6902 JSON Patches, planned from the object as observed (pure).

Every change is preceded by a `test` of what we saw, so a patch built from a stale view
fails with HTTP 422 instead of overwriting someone else's change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonpatch

from hooks.api import kinds

#: kind -> (apiVersion, plural) of the objects the actuator may patch. Never the Rollout (docs/targets.md).
PATCHABLE: dict[str, kinds.Kind] = {k.kind: k for k in (kinds.OCI_REPOSITORY, kinds.KUSTOMIZATION)}
RESOURCES: dict[str, tuple[str, str]] = {kind: k.coordinates for kind, k in PATCHABLE.items()}


@dataclass(frozen=True)
class PlannedPatch:
    """One JSON Patch for one object; `keys` name the status entries it serves."""

    kind: str
    namespace: str
    name: str
    ops: tuple[dict, ...]
    keys: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return RESOURCES[self.kind][0]

    @property
    def plural(self) -> str:
        return RESOURCES[self.kind][1]

    @property
    def path(self) -> str:
        """The object's REST path."""
        return PATCHABLE[self.kind].path(self.namespace, self.name)


@dataclass(frozen=True)
class PatchOutcome:
    """What happened to one PlannedPatch: applied, conflict (422), error, or dry-run."""

    result: str
    message: str = ""


def pointer(parts: Sequence[str]) -> str:
    """RFC 6901 JSON Pointer for path segments."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def set_ops(obj: Any, parts: Sequence[str], value: Any) -> list[dict]:
    """Ops that set obj[parts] = value, guarded by a test of what was observed.

    Existing path: test the old value, replace. Missing path: test the nearest existing
    parent object as observed, then add the missing subtree in one `add`.
    """
    node = obj
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            parent = list(parts[:depth])
            subtree: Any = value
            for missing in reversed(parts[depth + 1 :]):
                subtree = {missing: subtree}
            return [
                {"op": "test", "path": pointer(parent), "value": node},
                {"op": "add", "path": pointer(parts[: depth + 1]), "value": subtree},
            ]
        if depth == len(parts) - 1:
            return [
                {"op": "test", "path": pointer(parts), "value": node[part]},
                {"op": "replace", "path": pointer(parts), "value": value},
            ]
        node = node[part]
    raise ValueError("empty path")


def plan_fields(obj: dict, changes: Sequence[tuple[Sequence[str], Any]]) -> list[dict]:
    """Ops for several fields of one object; later tests see the earlier ops' effect."""
    current = obj
    ops: list[dict] = []
    for parts, value in changes:
        step = set_ops(current, parts, value)
        ops.extend(step)
        current = jsonpatch.apply_patch(current, step)  # returns a copy; obj is untouched
    return ops
