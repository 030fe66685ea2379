"""Operator actions as guarded JSON Patches on the Rollout, planned purely.

The annotations and their meaning: docs/spec/v1alpha1/rollout.md#annotations.

Each action writes exactly the documented field, in one patch whose `test` operations carry
the values the CLI observed, so a Rollout changed in between answers 422 instead of being
overwritten. The controller never writes the Rollout; the CLI does, because it is the user.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml

from hooks.cli.errors import CliError
from hooks.cli.report import section
from hooks.k8s import annotations_of, dig, format_time, labels_of, meta
from hooks.patchplan import plan_fields, pointer
from hooks.rollout.annotations import (
    BYPASS_GATES,
    DEPLOY_MESSAGE,
    DEPLOY_USER,
    FORCE_DEPLOY,
    RETRY,
    UNBLOCK_FAILED,
)

OCI_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
FLUX_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_MANAGER = "kustomize-controller"

Path = tuple[str, ...]


@dataclass
class Planned:
    """One action: the patch, what it changes, and how to say the same in Git."""

    verb: str
    summary: str
    ops: list[dict] = field(default_factory=list)
    sets: list[tuple[Path, Any]] = field(default_factory=list)
    removes: list[Path] = field(default_factory=list)
    noop: str | None = None  # why nothing needs to be sent

    @property
    def paths(self) -> list[Path]:
        return [p for p, _ in self.sets] + list(self.removes)

    @property
    def spec_change(self) -> bool:
        return any(p[0] == "spec" for p in self.paths)


def check_tag(tag: str) -> str:
    if not OCI_TAG.match(tag):
        raise CliError(f"{tag!r} is not a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")
    return tag


def nonce(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def fresh(value: str, current: Any) -> str:
    """`value`, or `value-N` when the annotation already holds exactly that (same second)."""
    candidate, n = value, 1
    while candidate == current:
        candidate, n = f"{value}-{n}", n + 1
    return candidate


def unblock_value(current: Any, acknowledged: Any) -> str:
    """A `true` the controller has not acknowledged yet.

    `unblock-failed` accepts `true` in any letter case (docs/spec/v1alpha1/rollout.md#annotations)
    and each distinct value acts once, so an unblock after an acknowledged `true` writes `True`,
    the next `tRue`, and so on
    through the 16 spellings: never the annotation's current value nor its acknowledgement."""
    for bits in range(16):
        value = "".join(c.upper() if bits >> i & 1 else c for i, c in enumerate("true"))
        if value not in (current, acknowledged):
            return value
    raise AssertionError("unreachable: 16 spellings, at most two taken")


def _changes(obj: dict, sets: list[tuple[Path, Any]], removes: list[Path]) -> list[dict]:
    ops = plan_fields(obj, sets) if sets else []
    for path in removes:
        value = dig(obj, *path)
        ops += [
            {"op": "test", "path": pointer(path), "value": value},
            {"op": "remove", "path": pointer(path)},
        ]
    return ops


def _ann(key: str) -> Path:
    return ("metadata", "annotations", key)


def plan(verb: str, rollout: dict, now: datetime, **args: Any) -> Planned:
    """Plan one action on the Rollout as observed; raises CliError on bad arguments."""
    spec, status = section(rollout, "spec"), section(rollout, "status")
    acked = section(status, "acknowledgedAnnotations")
    ann = annotations_of(rollout)
    message, user = args.get("message"), args.get("user")
    extra: list[tuple[Path, Any]] = []
    if message is not None:
        extra.append((_ann(DEPLOY_MESSAGE), message))
    if user is not None:
        extra.append((_ann(DEPLOY_USER), user))
    p: Planned
    if verb == "pin":
        tag = check_tag(args["tag"])
        p = Planned(
            verb, f"pin to {tag} (spec.wantedVersion)", sets=[(("spec", "wantedVersion"), tag), *extra]
        )
        if spec.get("wantedVersion") == tag and not extra:
            p.noop = f"already pinned to {tag}"
    elif verb == "unpin":
        p = Planned(verb, "remove the pin (spec.wantedVersion)", removes=[("spec", "wantedVersion")])
        if "wantedVersion" not in spec:
            p.noop = "not pinned"
    elif verb == "deploy":
        tag = check_tag(args["tag"])
        value = fresh(f"{tag}@{nonce(now)}", ann.get(FORCE_DEPLOY))
        p = Planned(
            verb, f"force-deploy {tag} ({FORCE_DEPLOY}={value})", sets=[(_ann(FORCE_DEPLOY), value), *extra]
        )
    elif verb == "bypass":
        tag = check_tag(args["tag"])
        value = fresh(f"{tag}@{nonce(now)}", ann.get(BYPASS_GATES))
        p = Planned(
            verb, f"bypass gates for {tag} ({BYPASS_GATES}={value})", sets=[(_ann(BYPASS_GATES), value)]
        )
    elif verb == "retry":
        value = format_time(now)
        if value == ann.get(RETRY):
            value = format_time(now + timedelta(seconds=1))
        p = Planned(verb, f"retry the bake ({RETRY}={value})", sets=[(_ann(RETRY), value)])
    elif verb == "unblock":
        current = ann.get(UNBLOCK_FAILED)
        value = unblock_value(current, acked.get(UNBLOCK_FAILED))
        p = Planned(
            verb,
            f"unblock automatic deploys ({UNBLOCK_FAILED}={value})",
            sets=[(_ann(UNBLOCK_FAILED), value)],
        )
        if isinstance(current, str) and current.lower() == "true" and current != acked.get(UNBLOCK_FAILED):
            p.noop = f"unblock already requested ({UNBLOCK_FAILED}={current}, not acted on yet)"
    elif verb in ("suspend", "resume"):
        want = verb == "suspend"
        p = Planned(verb, f"set spec.suspend to {str(want).lower()}", sets=[(("spec", "suspend"), want)])
        if bool(spec.get("suspend") is True) == want:
            p.noop = "already suspended" if want else "not suspended"
    else:
        raise CliError(f"unknown action {verb!r}")
    if p.noop is None:
        p.ops = _changes(rollout, p.sets, p.removes)
    return p


# --- Flux -------------------------------------------------------------------------------------


def flux_owner(rollout: Mapping) -> str | None:
    """`<namespace>/<name>` of the Flux Kustomization that applies this Rollout, if any."""
    labels = labels_of(rollout)
    if labels.get(FLUX_NAME) and labels.get(FLUX_NAMESPACE):
        return f"{labels[FLUX_NAMESPACE]}/{labels[FLUX_NAME]}"
    return None


def owned_by_flux(rollout: Mapping, path: Path) -> bool | None:
    """Whether kustomize-controller's server-side apply owns `path` (it is in Git); None: unknown."""
    entries = meta(rollout).get("managedFields")
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("manager") != FLUX_MANAGER:
            continue
        if entry.get("operation") != "Apply" or entry.get("subresource"):
            continue
        node: Any = entry.get("fieldsV1")
        for part in path:
            node = node.get(f"f:{part}") if isinstance(node, Mapping) else None
        if node is not None:
            return True
    return False


def git_snippet(p: Planned) -> str:
    """The same change as it would be written in the Rollout's manifest in Git."""
    doc: dict[str, Any] = {}
    for path, value in p.sets:
        node = doc
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False) if doc else ""
    for path in p.removes:
        text += f"# and delete {'.'.join(path)}\n"
    return text


def flux_refusal(p: Planned, rollout: Mapping) -> str | None:
    """Why this change belongs in Git instead, or None when Flux keeps it.

    kustomize-controller applies with server-side apply and force: a field it owns (one that is
    in Git) is put back at its next reconciliation; a field it does not own is left alone. Its
    cleanup drops the ownership records of managers named `kubectl*`, not the fields themselves.
    """
    owner = flux_owner(rollout)
    if owner is None:
        return None
    owned = {".".join(path): owned_by_flux(rollout, path) for path in p.paths}
    in_git = [path for path, yes in owned.items() if yes]
    where = f"Rollout is applied by Flux Kustomization {owner}"
    if in_git:
        text = (
            f"{where}, which owns {', '.join(in_git)} (it is in Git): kustomize-controller puts the Git "
            "value back at its next reconciliation"
        )
        if not p.spec_change:
            text += ", and an annotation put back is a fresh value that acts again"
        return text
    if p.spec_change:
        spec_paths = ", ".join(path for path in owned if path.startswith("spec."))
        if any(yes is None for yes in owned.values()):
            return f"{where}; without managedFields it cannot be told whether {spec_paths} is in Git"
        return (
            f"{where}; {spec_paths} is not in Git, so Flux keeps the change, but Git no longer describes "
            "the Rollout and the next commit that sets it wins"
        )
    return None


def flux_note(p: Planned, rollout: Mapping) -> str | None:
    """What Flux does with an annotation the CLI writes on a Rollout it applies."""
    owner = flux_owner(rollout)
    if owner is None:
        return None
    where = f"note: Rollout is applied by Flux Kustomization {owner}"
    if any(owned_by_flux(rollout, path) is None for path in p.paths):
        return f"{where}; without managedFields it cannot be told whether this annotation is in Git"
    return (
        f"{where}; this annotation is not in Git, and kustomize-controller's server-side apply keeps "
        "fields it does not own"
    )
