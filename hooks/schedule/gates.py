"""The RolloutGates a schedule owns: which Rollouts match, and the desired gate objects (pure).

Gates are returned to Metacontroller in "apply" form (only the fields we own). Their content
changes only when the schedule's activity or spec changes, never with time alone, so a
resync between transitions updates nothing.

Gate names are injective (docs/spec/v1alpha1/rolloutschedule.md; docs/scale.md "Schedule gates"):
Metacontroller silently ignores a create that collides with an existing object, so `<schedule>-<rollout>`
alone (`a`+`b-c` and `a-b`+`c`, or a RolloutSchedule and a ClusterRolloutSchedule of one
name) would leave one schedule without its gate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from hooks.api import kinds
from hooks.k8s import annotations_of, dig, labels_of, meta, selector_matches

GATE_API_VERSION = kinds.ROLLOUT_GATE.api_version
GATE_KIND = "RolloutGate"

SCHEDULE_LABEL = "rollout.kuberik.com/schedule"
ANNOTATION_PREFIX = "rollout.kuberik.com/schedule-"
KIND_ANNOTATION = ANNOTATION_PREFIX + "kind"
NAMESPACE_ANNOTATION = ANNOTATION_PREFIX + "namespace"
NAME_ANNOTATION = ANNOTATION_PREFIX + "name"
ACTION_ANNOTATION = ANNOTATION_PREFIX + "action"
TIMEZONE_ANNOTATION = ANNOTATION_PREFIX + "timezone"
RULES_ANNOTATION = ANNOTATION_PREFIX + "rules"
#: What a CLI shows as "closed until" (docs/spec/v1alpha1/rolloutschedule.md).
NEXT_TRANSITION_ANNOTATION = "rollout.kuberik.com/next-transition"

#: Metacontroller's record of what it last applied; the exact form we returned last time.
LAST_APPLIED_ANNOTATION = "metacontroller.k8s.io/last-applied-configuration"
_DROPPED_ANNOTATIONS = (LAST_APPLIED_ANNOTATION, "kubectl.kubernetes.io/last-applied-configuration")

MAX_NAME = 253
MAX_LABEL_VALUE = 63
MAX_RULES_ANNOTATION = 1024


HASH_CHARS = 8


def _hash(*parts: str) -> str:
    """8 hex characters of SHA-256 over the parts, joined by a byte no Kubernetes name holds."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:HASH_CHARS]


def _cut(text: str, limit: int) -> str:
    """A prefix of `text` of at most `limit` characters that ends in a letter or digit."""
    return text[:limit].rstrip("-.")


def gate_name(kind: str, namespace: str, schedule: str, rollout: str) -> str:
    """`<schedule>-<rollout>-<h>`, `<h>` a hash of the schedule's kind, namespace and name and the
    Rollout's name; the readable part is cut so the whole name fits 253 characters."""
    suffix = "-" + _hash(kind, namespace, schedule, rollout)
    return _cut(f"{schedule}-{rollout}", MAX_NAME - len(suffix)) + suffix


def schedule_label_value(schedule: str) -> str:
    """Label values hold at most 63 characters: a longer name is cut and suffixed with its hash."""
    if len(schedule) <= MAX_LABEL_VALUE:
        return schedule
    suffix = "-" + _hash(schedule)
    return _cut(schedule, MAX_LABEL_VALUE - len(suffix)) + suffix


def matching_rollouts(
    rollouts: Iterable[Mapping],
    *,
    rollout_selector: Mapping,
    namespace: str | None,
    namespaces: Iterable[Mapping] | None = None,
    namespace_selector: Mapping | None = None,
) -> list[tuple[str, str]]:
    """(namespace, name) of the Rollouts a schedule applies to, sorted.

    `namespace` set: the namespaced variant, only Rollouts of that namespace. Otherwise the
    cluster variant: every namespace, or those whose Namespace object matches
    `namespace_selector` when one is given. Rollouts being deleted get no gate.
    """
    allowed: set[str] | None = None
    if namespace is None and namespace_selector is not None:
        allowed = {
            str(meta(ns).get("name"))
            for ns in namespaces or ()
            if not meta(ns).get("deletionTimestamp") and selector_matches(namespace_selector, labels_of(ns))
        }
    found: set[tuple[str, str]] = set()
    for rollout in rollouts:
        metadata = meta(rollout)
        name = metadata.get("name")
        rollout_ns = metadata.get("namespace") or namespace
        if not isinstance(name, str) or not isinstance(rollout_ns, str) or metadata.get("deletionTimestamp"):
            continue
        if namespace is not None and rollout_ns != namespace:
            continue
        if allowed is not None and rollout_ns not in allowed:
            continue
        if selector_matches(rollout_selector, labels_of(rollout)):
            found.add((rollout_ns, name))
    return sorted(found)


def schedule_annotations(
    *,
    kind: str,
    namespace: str | None,
    schedule: str,
    action: str,
    timezone: str,
    rules: str,
    next_transition: str | None,
) -> dict[str, str]:
    """Annotations that tell a reader of the gate which schedule drives it and how."""
    if len(rules) > MAX_RULES_ANNOTATION:
        rules = rules[: MAX_RULES_ANNOTATION - 1] + "…"
    annotations = {KIND_ANNOTATION: kind}
    if namespace:
        annotations[NAMESPACE_ANNOTATION] = namespace
    annotations |= {
        NAME_ANNOTATION: schedule,
        ACTION_ANNOTATION: action,
        TIMEZONE_ANNOTATION: timezone,
        RULES_ANNOTATION: rules,
    }
    if next_transition:
        annotations[NEXT_TRANSITION_ANNOTATION] = next_transition
    return annotations


def desired_gate(
    *,
    kind: str,
    schedule_namespace: str | None,
    schedule: str,
    namespace: str,
    rollout: str,
    passing: bool,
    annotations: Mapping[str, str],
) -> dict:
    """The RolloutGate a schedule wants for one Rollout (in the Rollout's namespace)."""
    return {
        "apiVersion": GATE_API_VERSION,
        "kind": GATE_KIND,
        "metadata": {
            "name": gate_name(kind, schedule_namespace or "", schedule, rollout),
            "namespace": namespace,
            "labels": {SCHEDULE_LABEL: schedule_label_value(schedule)},
            "annotations": dict(annotations),
        },
        "spec": {"rolloutRef": {"name": rollout}, "passing": passing},
    }


def _last_applied(obj: Mapping) -> dict | None:
    raw = annotations_of(obj).get(LAST_APPLIED_ANNOTATION)
    if not isinstance(raw, str):
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    if (
        isinstance(parsed, dict)
        and parsed.get("kind") == GATE_KIND
        and isinstance(dig(parsed, "metadata", "name"), str)
    ):
        return parsed
    return None


def _apply_form(obj: Mapping) -> dict:
    """An observed gate reduced to the fields a hook returns (no server-set metadata, no status)."""
    metadata = meta(obj)
    form_meta: dict[str, Any] = {"name": metadata.get("name")}
    if metadata.get("namespace"):
        form_meta["namespace"] = metadata["namespace"]
    labels = labels_of(obj)
    if labels:
        form_meta["labels"] = labels
    annotations = {k: v for k, v in annotations_of(obj).items() if k not in _DROPPED_ANNOTATIONS}
    if annotations:
        form_meta["annotations"] = annotations
    form: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion") or GATE_API_VERSION,
        "kind": obj.get("kind") or GATE_KIND,
        "metadata": form_meta,
    }
    if isinstance(obj.get("spec"), Mapping):
        form["spec"] = obj["spec"]
    return form


def preserved_gates(children: Iterable[Mapping]) -> list[dict]:
    """The existing gates, unchanged, in the form they were applied (so nothing is deleted).

    Metacontroller deletes every child a sync does not return; an invalid schedule must keep
    its gates in their last state. The last-applied record is exactly what we returned before;
    without it, the observed object minus server-managed fields is the next best thing.
    """
    kept: dict[tuple[str, str], dict] = {}
    for obj in children:
        name = meta(obj).get("name")
        if not isinstance(name, str):
            continue
        form = _last_applied(obj) or _apply_form(obj)
        form_meta = form.setdefault("metadata", {})
        if not form_meta.get("namespace") and meta(obj).get("namespace"):
            form_meta["namespace"] = meta(obj)["namespace"]
        kept[(str(form_meta.get("namespace") or ""), name)] = form
    return [kept[key] for key in sorted(kept)]


def owned_gate_keys(children: Iterable[Mapping], *, cluster: bool) -> list[str]:
    """`managedGates`: the gates the request's children show this schedule really owns, sorted
    (`<namespace>/<name>` for a ClusterRolloutSchedule, `<name>` for a RolloutSchedule)."""
    keys = set()
    for obj in children:
        name, namespace = meta(obj).get("name"), meta(obj).get("namespace")
        if not isinstance(name, str) or not name:
            continue
        keys.add(f"{namespace}/{name}" if cluster and isinstance(namespace, str) and namespace else name)
    return sorted(keys)


def bridging_gates(desired: list[dict], children: Iterable[Mapping]) -> list[dict]:
    """Gates kept under their old name until the Rollout's new gate exists.

    Metacontroller deletes the children a sync no longer returns *before* it creates the new
    ones, and a Rollout syncs on the deletion of its gate: on an upgrade that renames gates
    (`<schedule>-<rollout>` to `<schedule>-<rollout>-<h>`) a Rollout could see no gate at all
    for a moment and deploy inside a freeze. So an owned gate of a Rollout whose new gate is not
    among the children yet is returned too, with the new content; once the new gate exists, the
    old one is dropped and Metacontroller deletes it (docs/scale.md "Schedule gates").
    """
    existing: dict[tuple[str, str], list[str]] = {}
    for obj in children:
        name, namespace = meta(obj).get("name"), meta(obj).get("namespace")
        rollout = dig(obj, "spec", "rolloutRef", "name")
        if isinstance(name, str) and isinstance(namespace, str) and isinstance(rollout, str):
            existing.setdefault((namespace, rollout), []).append(name)
    kept = []
    for gate in desired:
        md = gate["metadata"]
        names = existing.get((md["namespace"], gate["spec"]["rolloutRef"]["name"]), [])
        if md["name"] in names:
            continue
        for old in sorted(names):
            kept.append({**gate, "metadata": {**md, "name": old}})
    return kept
