"""The Flux objects a Rollout drives and what Flux reports about them (docs/targets.md).

Planning is pure: it reads the related objects and the decision, says for each driven field
what state Flux is in for the deployed version (docs/targets.md), and which guarded patches
would bring the fields to it. The actuator sends them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hooks import fluxstatus
from hooks.k8s import annotations_of, dig, format_time, meta, parse_time
from hooks.patchplan import PatchOutcome, PlannedPatch, plan_fields

ROLLOUT_ANNOTATION = "rollout.kuberik.com/rollout"
SUBSTITUTE_ANNOTATION = "rollout.kuberik.com/substitute"
_FROM_ANNOTATION = re.compile(r"^rollout\.kuberik\.com/substitute\.(.+)\.from$")
_FROM_PREFIX = "rollout.kuberik.com/substitute."
_VARIABLE = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")  # Flux postBuild variable names

SYNCED, PENDING, APPLYING, FAILED = "Synced", "Pending", "Applying", "Failed"
SUSPENDED, ERROR, BLOCKED = "Suspended", "Error", "Blocked"
FAILING_STATES = (FAILED, ERROR, BLOCKED)
#: Triggers of automatic deploys: they never move a Flux object back (docs/targets.md).
AUTOMATIC_TRIGGERS = frozenset({"Automatic", "Adoption"})
APPLIED_FIELD = "status.lastAppliedRevision"  # read-only entries of sourced Kustomizations

MSG_SYNCED = "Flux applied the deployed version"
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
    #: OCIRepository: the Kustomizations of the namespace sourced from it (they must apply it).
    consumers: tuple[dict, ...] = ()
    #: Kustomization: its source, when that is an OCIRepository driven by the same Rollout.
    source: dict | None = None
    #: A read-only entry (`status.lastAppliedRevision` of a sourced Kustomization): never patched.
    readonly: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.name, self.field)


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else str(value)


def _oci_field(obj: dict, name: str, consumers: tuple[dict, ...] = ()) -> TargetField:
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
        consumers=consumers,
    )


def _substitute_field(obj: dict, name: str, variable: str, source: dict | None = None) -> TargetField:
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
        source=source,
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
        if value != rollout or not key.startswith(_FROM_PREFIX):
            continue  # most keys of most objects: no regex for them
        match = _FROM_ANNOTATION.match(key)
        if match and match.group(1) not in variables:
            variables.append(match.group(1))
    return variables


def _source_name(kustomization: Mapping, namespace: str) -> str | None:
    """Name of the Kustomization's OCIRepository source when it lives in `namespace`."""
    ref = dig(kustomization, "spec", "sourceRef")
    if not isinstance(ref, Mapping) or ref.get("kind") != "OCIRepository":
        return None
    if (ref.get("namespace") or meta(kustomization).get("namespace", namespace)) != namespace:
        return None
    name = ref.get("name")
    return name if isinstance(name, str) and name else None


def find(
    ocirepositories: list[dict], kustomizations: list[dict], rollout: str, namespace: str
) -> list[TargetField]:
    """Every target field naming this Rollout, in the Rollout's namespace, sorted.

    Kustomizations of the namespace sourced from a driven OCIRepository are added as read-only
    entries (`status.lastAppliedRevision`): fetching an artifact is not applying it.
    """
    fields: dict[tuple[str, str, str], TargetField] = {}
    local_kustomizations = [
        obj
        for obj in kustomizations
        if isinstance(meta(obj).get("name"), str) and meta(obj).get("namespace", namespace) == namespace
    ]
    by_source: dict[str, list[dict]] = {}
    for obj in sorted(local_kustomizations, key=lambda k: str(meta(k).get("name"))):
        source_name = _source_name(obj, namespace)
        if source_name is not None:
            by_source.setdefault(source_name, []).append(obj)
    driven_sources: dict[str, dict] = {}
    for obj in ocirepositories:
        md = meta(obj)
        name = md.get("name")
        if (
            isinstance(name, str)
            and md.get("namespace", namespace) == namespace
            and annotations_of(obj).get(ROLLOUT_ANNOTATION) == rollout
        ):
            consumers = tuple(by_source.get(name, ()))
            target = _oci_field(obj, name, consumers)
            fields[target.key] = target
            driven_sources[name] = obj
    for obj in local_kustomizations:
        name = str(meta(obj).get("name"))
        source_name = _source_name(obj, namespace)
        source = driven_sources.get(source_name) if source_name else None
        notes = annotations_of(obj)
        if notes.get(ROLLOUT_ANNOTATION) == rollout:
            variable = notes.get(SUBSTITUTE_ANNOTATION)
            if not (isinstance(variable, str) and variable.strip()) and source is None:
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
            target = _substitute_field(obj, name, variable, source)
            fields[target.key] = target
        if source is not None:
            applied = _as_text(dig(obj, "status", "lastAppliedRevision"))
            target = TargetField(
                "Kustomization", name, APPLIED_FIELD, (), applied, obj, source=source, readonly=True
            )
            fields[target.key] = target
    return [fields[k] for k in sorted(fields)]


@dataclass(frozen=True)
class Assessment:
    """One field's state for `desired`, and whether a patch would bring it there."""

    state: str
    message: str
    since: datetime | None = None  # a Flux failure's lastTransitionTime
    needs_patch: bool = False


def _backwards(
    f: TargetField, desired: str, trigger: str | None, later: Callable[[str, str], bool] | None
) -> bool:
    if trigger not in AUTOMATIC_TRIGGERS or later is None or f.observed is None or f.observed == desired:
        return False
    try:
        return bool(later(f.observed, desired))
    except Exception:  # an ordering that cannot compare the value: not a known later release
        return False


def assess(
    f: TargetField,
    desired: str | None,
    *,
    trigger: str | None = None,
    later: Callable[[str, str], bool] | None = None,
) -> Assessment:
    """docs/targets.md: our side first (Blocked, Error), then Suspended, Failed, Pending, Applying, Synced."""
    if f.problem is not None:
        return Assessment(*f.problem)
    if desired is None:
        return Assessment(PENDING, MSG_NOTHING_DEPLOYED)
    if not f.readonly and _backwards(f, desired, trigger, later):
        return Assessment(
            BLOCKED, f"carries {f.observed}, later than {desired}: not moved back automatically"
        )
    obj = f.obj
    needs_patch = not f.readonly and f.observed != desired
    if fluxstatus.suspended(obj):
        return Assessment(
            SUSPENDED, f"{f.kind} {f.name} is suspended (spec.suspend: true)", None, needs_patch
        )
    failure = fluxstatus.failure(obj)
    if failure is not None:
        return Assessment(FAILED, failure.text, failure.since, needs_patch)
    if f.readonly:
        assert f.source is not None
        source_tag = _as_text(dig(f.source, "spec", "ref", "tag"))
        if source_tag != desired:
            source = f"OCIRepository/{meta(f.source).get('name')}"
            return Assessment(PENDING, f"waiting for {source} to carry {desired}")
    elif needs_patch:
        return Assessment(PENDING, MSG_PENDING, None, True)
    if not fluxstatus.reconciled(obj):
        return Assessment(APPLYING, fluxstatus.progress_message(obj, f.kind))
    if f.kind == "OCIRepository":
        return _oci_applied(f, desired)
    if f.source is not None:
        applied = dig(obj, "status", "lastAppliedRevision")
        if not fluxstatus.revision_is(applied, desired):
            shown = fluxstatus.bounded(applied, 96) if applied else "none"
            return Assessment(
                APPLYING, f"waiting for kustomize-controller to apply {desired} (last applied: {shown})"
            )
    return Assessment(SYNCED, MSG_SYNCED)


def _oci_applied(f: TargetField, desired: str) -> Assessment:
    revision = dig(f.obj, "status", "artifact", "revision")
    if not fluxstatus.revision_is(revision, desired):
        shown = fluxstatus.bounded(revision, 96) if revision else "none"
        return Assessment(APPLYING, f"waiting for source-controller to fetch {desired} (artifact: {shown})")
    for consumer in f.consumers:
        name = meta(consumer).get("name")
        applied = dig(consumer, "status", "lastAppliedRevision")
        if not (fluxstatus.revision_is(applied, desired) and fluxstatus.reconciled(consumer)):
            return Assessment(APPLYING, f"waiting for Kustomization {name} to apply {desired}")
    return Assessment(SYNCED, MSG_SYNCED)


@dataclass(frozen=True)
class Plan:
    """Planned target states (before actuation) and the patches due."""

    entries: list[dict]
    patches: list[PlannedPatch]


def plan(
    fields: list[TargetField],
    desired: str | None,
    persisted_deployed: str | None,
    *,
    trigger: str | None = None,
    later: Callable[[str, str], bool] | None = None,
) -> Plan:
    """Target entries for `desired`; patches only under write-ahead (docs/targets.md).

    `trigger` is the deployed entry's trigger and `later(a, b)` says whether release `a` comes
    after `b` in release order: an automatic deploy never moves a target back.
    """
    entries = []
    due: dict[tuple[str, str], list[TargetField]] = {}
    for f in fields:
        entry: dict[str, Any] = {"kind": f.kind, "name": f.name, "field": f.field}
        if desired is not None:
            entry["desired"] = desired
        if f.observed is not None:
            entry["observed"] = fluxstatus.bounded(f.observed, 128)
        found = assess(f, desired, trigger=trigger, later=later)
        entry.update(state=found.state, message=found.message)
        if found.since is not None:
            entry["errorSince"] = format_time(found.since)
        if found.needs_patch and desired is not None and desired == persisted_deployed:
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


@dataclass(frozen=True)
class Readiness:
    """Whether Flux applied the deployed version on every target (docs/targets.md).

    `synced`: every target is Synced (True without targets); in dry-run a target that needs a
    patch counts as Synced (§4.4). `failed`: names the first target Flux failed to apply.
    """

    synced: bool
    failed: str | None = None


def readiness(
    fields: list[TargetField],
    desired: str | None,
    *,
    dry_run: bool,
    trigger: str | None = None,
    later: Callable[[str, str], bool] | None = None,
) -> Readiness:
    """Readiness of the targets for the deployed version `desired`."""
    synced = True
    failed: str | None = None
    rehearsed = {f.name for f in fields if f.kind == "OCIRepository"} if dry_run else set()
    for f in fields:
        found = assess(f, desired, trigger=trigger, later=later)
        if found.state == FAILED and failed is None and not found.needs_patch:
            # a failure of the value the field still carries is not one of the deployed version
            failed = f"{f.kind}/{f.name} {f.field}: {found.message}"
        if found.state == SYNCED:
            continue
        if dry_run and found.state == PENDING and found.needs_patch:
            continue  # would be patched: a rehearsal counts it as done
        if (
            dry_run
            and f.readonly
            and found.state == PENDING
            and f.source is not None
            and meta(f.source).get("name") in rehearsed
        ):
            continue  # waits only for a source a rehearsal would patch
        synced = False
    return Readiness(synced, failed)


def synced_condition(entries: list[dict]) -> tuple[bool, str, str]:
    """The TargetsSynced condition (status, reason, message) from the final target entries."""
    if not entries:
        return True, "NoTargets", "No Flux object names this Rollout"

    def named(entry: dict) -> str:
        return f"{entry['kind']}/{entry['name']} {entry['field']}: {entry.get('message', '')}"

    def more(found: list[dict]) -> str:
        return f" (and {len(found) - 1} more)" if len(found) > 1 else ""

    failing = [e for e in entries if e.get("state") in FAILING_STATES]
    if failing:
        return False, "TargetsFailing", named(failing[0]) + more(failing)
    suspended = [e for e in entries if e.get("state") == SUSPENDED]
    if suspended:
        return False, "TargetsSuspended", named(suspended[0]) + more(suspended)
    waiting = [e for e in entries if e.get("state") != SYNCED]
    if waiting:
        return (
            False,
            "TargetsPending",
            f"{len(waiting)} of {len(entries)} targets not synced yet; {named(waiting[0])}",
        )
    return True, "AllTargetsSynced", f"Flux applied the deployed version on all {len(entries)} targets"


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
        found = by_key.get(key)
        entry = dict(entry)
        if found is not None and found.result == "error":
            since = failing_since.get(key) or format_time(now)
            entry.update(state=ERROR, message=found.message, errorSince=since)
        elif dry_run and entry["state"] == PENDING and entry.get("message") == MSG_PENDING:
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
