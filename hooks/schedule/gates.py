"""The RolloutGates a schedule owns: which Rollouts match, and the desired gate objects (pure).

Gates are returned to Metacontroller in "apply" form (only the fields we own). Their content
changes only when the schedule's activity or spec changes, never with time alone, so a
resync between transitions updates nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from hooks.k8s import annotations_of, dig, labels_of, meta, selector_matches

GATE_API_VERSION = "kuberik.com/v1alpha1"
GATE_KIND = "RolloutGate"

SCHEDULE_LABEL = "rollout.kuberik.com/schedule"
ANNOTATION_PREFIX = "rollout.kuberik.com/schedule-"
KIND_ANNOTATION = ANNOTATION_PREFIX + "kind"
NAME_ANNOTATION = ANNOTATION_PREFIX + "name"
ACTION_ANNOTATION = ANNOTATION_PREFIX + "action"
TIMEZONE_ANNOTATION = ANNOTATION_PREFIX + "timezone"
RULES_ANNOTATION = ANNOTATION_PREFIX + "rules"
NEXT_TRANSITION_ANNOTATION = ANNOTATION_PREFIX + "next-transition"

#: Metacontroller's record of what it last applied; the exact form we returned last time.
LAST_APPLIED_ANNOTATION = "metacontroller.k8s.io/last-applied-configuration"
_DROPPED_ANNOTATIONS = (LAST_APPLIED_ANNOTATION, "kubectl.kubernetes.io/last-applied-configuration")

MAX_NAME = 253
MAX_LABEL_VALUE = 63
MAX_RULES_ANNOTATION = 1024


def _shorten(text: str, limit: int) -> str:
    """`text` if it fits, else a prefix plus a stable hash, still a valid DNS-1123 name."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return text[: limit - len(digest) - 1].rstrip("-.") + "-" + digest


def gate_name(schedule: str, rollout: str) -> str:
    """`<schedule>-<rollout>`, shortened with a hash when longer than 253 characters."""
    return _shorten(f"{schedule}-{rollout}", MAX_NAME)


def schedule_label_value(schedule: str) -> str:
    """Label values hold at most 63 characters; long schedule names are shortened with a hash."""
    return _shorten(schedule, MAX_LABEL_VALUE)


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
            meta(ns).get("name")
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
    *, kind: str, schedule: str, action: str, timezone: str, rules: str, next_transition: str | None
) -> dict[str, str]:
    """Annotations that tell a reader of the gate which schedule drives it and how."""
    if len(rules) > MAX_RULES_ANNOTATION:
        rules = rules[: MAX_RULES_ANNOTATION - 1] + "…"
    annotations = {
        KIND_ANNOTATION: kind,
        NAME_ANNOTATION: schedule,
        ACTION_ANNOTATION: action,
        TIMEZONE_ANNOTATION: timezone,
        RULES_ANNOTATION: rules,
    }
    if next_transition:
        annotations[NEXT_TRANSITION_ANNOTATION] = next_transition
    return annotations


def desired_gate(
    *, schedule: str, namespace: str, rollout: str, passing: bool, annotations: Mapping[str, str]
) -> dict:
    """The RolloutGate a schedule wants for one Rollout."""
    return {
        "apiVersion": GATE_API_VERSION,
        "kind": GATE_KIND,
        "metadata": {
            "name": gate_name(schedule, rollout),
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
