"""The Flux objects a Rollout drives and whether they carry its version (SPEC §4.1, §4.2).

Planning is pure: it reads the related objects and the decision and says which fields
are out of sync and which guarded patches would fix them. The actuator sends them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hooks.k8s import annotations_of, dig, format_time, meta, parse_time
from hooks.patchplan import PatchOutcome, PlannedPatch, plan_fields

ROLLOUT_ANNOTATION = "rollout.kuberik.com/rollout"
SUBSTITUTE_ANNOTATION = "rollout.kuberik.com/substitute"
_FROM_ANNOTATION = re.compile(r"^rollout\.kuberik\.com/substitute\.(.+)\.from$")
_VARIABLE = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")  # Flux postBuild variable names

SYNCED, PENDING, ERROR, BLOCKED = "Synced", "Pending", "Error", "Blocked"
MSG_SYNCED = "Carries the deployed version"
MSG_PENDING = "Waiting for the object to carry the deployed version"
MSG_NOTHING_DEPLOYED = "No version deployed yet"
MSG_DRY_RUN = "dry-run"

RETRY_MIN = timedelta(seconds=10)
RETRY_MAX = timedelta(minutes=5)


@dataclass(frozen=True)
class TargetField:
    """One field of one Flux object that this Rollout drives."""

    kind: str
    name: str
    field: str
    path: tuple[str, ...]
    observed: str | None
    obj: dict
    problem: tuple[str, str] | None = None  # (state, message) when it cannot be patched

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.name, self.field)


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else str(value)


def _oci_field(obj: dict, name: str) -> TargetField:
    ref = dig(obj, "spec", "ref")
    problem = None
    for override in ("semver", "digest"):
        if isinstance(ref, dict) and ref.get(override):
            problem = (BLOCKED, f"spec.ref.{override} is set and takes precedence over spec.ref.tag")
            break
    return TargetField(
        "OCIRepository",
        name,
        "spec.ref.tag",
        ("spec", "ref", "tag"),
        _as_text(dig(obj, "spec", "ref", "tag")),
        obj,
        problem,
    )


def _substitute_field(obj: dict, name: str, variable: str) -> TargetField:
    problem = None
    if not _VARIABLE.match(variable):
        problem = (ERROR, f"invalid substitute variable name {variable!r} in annotation")
    return TargetField(
        "Kustomization",
        name,
        f"spec.postBuild.substitute.{variable}",
        ("spec", "postBuild", "substitute", variable),
        _as_text(dig(obj, "spec", "postBuild", "substitute", variable)),
        obj,
        problem,
    )


def driven_substitutes(annotations: Mapping[str, Any], rollout: str) -> list[str]:
    """The postBuild.substitute variables a Kustomization's annotations bind to `rollout`.

    Both formats: `rollout` + `substitute: VAR`, and `substitute.<VAR>.from: <rollout>`.
    Names are returned as written (validated by the caller), without repeats.
    """
    variables: list[str] = []
    variable = annotations.get(SUBSTITUTE_ANNOTATION)
    if annotations.get(ROLLOUT_ANNOTATION) == rollout and isinstance(variable, str) and variable.strip():
        variables.append(variable.strip())
    for key, value in annotations.items():
        match = _FROM_ANNOTATION.match(key)
        if match and value == rollout and match.group(1) not in variables:
            variables.append(match.group(1))
    return variables


def find(
    ocirepositories: list[dict], kustomizations: list[dict], rollout: str, namespace: str
) -> list[TargetField]:
    """Every target field naming this Rollout, in the Rollout's namespace, sorted."""
    fields: dict[tuple[str, str, str], TargetField] = {}
    for obj in ocirepositories:
        md = meta(obj)
        name = md.get("name")
        if (
            isinstance(name, str)
            and md.get("namespace", namespace) == namespace
            and annotations_of(obj).get(ROLLOUT_ANNOTATION) == rollout
        ):
            target = _oci_field(obj, name)
            fields[target.key] = target
    for obj in kustomizations:
        md = meta(obj)
        name = md.get("name")
        if not isinstance(name, str) or md.get("namespace", namespace) != namespace:
            continue
        notes = annotations_of(obj)
        if notes.get(ROLLOUT_ANNOTATION) == rollout:
            variable = notes.get(SUBSTITUTE_ANNOTATION)
            if not (isinstance(variable, str) and variable.strip()):
                fields[("Kustomization", name, "spec.postBuild.substitute")] = TargetField(
                    "Kustomization",
                    name,
                    "spec.postBuild.substitute",
                    (),
                    None,
                    obj,
                    (ERROR, f"annotation {SUBSTITUTE_ANNOTATION} is missing or empty"),
                )
        for variable in driven_substitutes(notes, rollout):
            target = _substitute_field(obj, name, variable)
            fields[target.key] = target
    return [fields[k] for k in sorted(fields)]


@dataclass(frozen=True)
class Plan:
    """Planned target states (before actuation) and the patches due."""

    entries: list[dict]
    patches: list[PlannedPatch]


def plan(fields: list[TargetField], desired: str | None, persisted_deployed: str | None) -> Plan:
    """Target entries for `desired`; patches only under write-ahead (SPEC §4.1)."""
    entries = []
    due: dict[tuple[str, str], list[TargetField]] = {}
    for f in fields:
        entry: dict[str, Any] = {"kind": f.kind, "name": f.name, "field": f.field}
        if desired is not None:
            entry["desired"] = desired
        if f.observed is not None:
            entry["observed"] = f.observed
        if f.problem is not None:
            entry["state"], entry["message"] = f.problem
        elif desired is None:
            entry.update(state=PENDING, message=MSG_NOTHING_DEPLOYED)
        elif f.observed == desired:
            entry.update(state=SYNCED, message=MSG_SYNCED)
        else:
            entry.update(state=PENDING, message=MSG_PENDING)
            if desired == persisted_deployed:
                due.setdefault((f.kind, f.name), []).append(f)
        entries.append(entry)
    patches = []
    for (kind, name), group in due.items():
        obj = group[0].obj
        ops = plan_fields(obj, [(f.path, desired) for f in group])
        namespace = str(meta(obj).get("namespace", ""))
        keys = tuple("/".join(f.key) for f in group)
        patches.append(PlannedPatch(kind, namespace, name, tuple(ops), keys))
    return Plan(entries, patches)


def _previous_errors(previous: Any) -> dict[str, str]:
    found = {}
    for entry in previous if isinstance(previous, list) else []:
        if isinstance(entry, dict) and entry.get("state") == ERROR and entry.get("errorSince"):
            found[f"{entry.get('kind')}/{entry.get('name')}/{entry.get('field')}"] = entry["errorSince"]
    return found


def apply_outcomes(
    entries: list[dict],
    patches: list[PlannedPatch],
    outcomes: list[PatchOutcome],
    previous: Any,
    now: datetime,
    dry_run: bool = False,
) -> list[dict]:
    """Final target entries once the patches were sent (or not).

    A failing target keeps the errorSince of the persisted status while it keeps failing, so
    the status stays a fixed point between retries and the retry delay can double.
    """
    by_key: dict[str, PatchOutcome] = {}
    for patch, outcome in zip(patches, outcomes, strict=True):
        for key in patch.keys:
            by_key[key] = outcome
    failing_since = _previous_errors(previous)
    final = []
    for entry in entries:
        key = f"{entry['kind']}/{entry['name']}/{entry['field']}"
        outcome = by_key.get(key)
        entry = dict(entry)
        if outcome is not None and outcome.result == "error":
            since = failing_since.get(key) or format_time(now)
            entry.update(state=ERROR, message=outcome.message, errorSince=since)
        elif dry_run and entry["state"] == PENDING:
            entry["message"] = MSG_DRY_RUN  # also before the patch is due: one stable text
        final.append(entry)
    return final


def retry_delay(entries: list[dict], now: datetime) -> timedelta | None:
    """Wait as long as the oldest error has lasted: 10 s, doubling up to 5 min."""
    delays = []
    for entry in entries:
        if entry.get("state") == ERROR and "errorSince" in entry:
            since = parse_time(entry["errorSince"]) or now
            delays.append(min(max(now - since, RETRY_MIN), RETRY_MAX))
    return min(delays) if delays else None
