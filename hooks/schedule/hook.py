"""RolloutSchedule and ClusterRolloutSchedule hooks (CompositeControllers, children RolloutGates).

A namespaced parent owns children only in its own namespace, so a RolloutSchedule gates the
Rollouts of its namespace, and its customize rule names that namespace (with hook version v2 a
rule without `namespace` would list every Rollout of the cluster). A ClusterRolloutSchedule is
cluster-scoped and owns gates in any namespace: its Rollout rule carries its
`namespaceSelector` (Metacontroller v4.15+), so only Rollouts of matching namespaces are sent,
and the matching Namespaces come along so the sync checks the same thing (docs/scale.md states
the request size of a broad ClusterRolloutSchedule).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeGuard

from hooks.api import kinds
from hooks.k8s import format_time, make_condition, meta, validate_selector
from hooks.metacontroller import composite_response, parse_request, resource_rule
from hooks.schedule.gates import (
    bridging_gates,
    desired_gate,
    matching_rollouts,
    owned_gate_keys,
    preserved_gates,
    schedule_annotations,
)
from hooks.schedule.rules import ALLOW, ScheduleError, parse_schedule

ROLLOUT_API = kinds.ROLLOUT.api_version
#: Resync when no transition is due: calm, and harmless since the status is a fixed point.
CALM_RESYNC_SECONDS = 3600

NAMESPACED_KIND = "RolloutSchedule"
CLUSTER_KIND = "ClusterRolloutSchedule"


# --- customize -------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _valid_selector(value: Any) -> TypeGuard[Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        return False
    try:
        validate_selector(value)
    except ValueError:
        return False
    return True


def _customize(body: Any, *, cluster: bool) -> dict:
    parent = parse_request(body).parent
    spec = _mapping(parent.get("spec"))
    rules: list[dict] = []
    rollout_selector = spec.get("rolloutSelector")
    namespace_selector = spec.get("namespaceSelector")
    if not _valid_selector(rollout_selector):
        return {"relatedResources": rules}  # the sync reports InvalidSchedule; never an invalid rule
    if not cluster:
        namespace = meta(parent).get("namespace")
        if isinstance(namespace, str) and namespace:
            rules.append(
                resource_rule(
                    ROLLOUT_API, "rollouts", namespace=namespace, label_selector=dict(rollout_selector)
                )
            )
    elif namespace_selector is None:
        rules.append(resource_rule(ROLLOUT_API, "rollouts", label_selector=dict(rollout_selector)))
    elif _valid_selector(namespace_selector):
        rules.append(
            resource_rule(
                ROLLOUT_API,
                "rollouts",
                label_selector=dict(rollout_selector),
                namespace_selector=dict(namespace_selector),
            )
        )
        rules.append(resource_rule("v1", "namespaces", label_selector=dict(namespace_selector)))
    return {"relatedResources": rules}


def customize_namespaced(body: Any, ctx: Any) -> dict:
    return _customize(body, cluster=False)


def customize_cluster(body: Any, ctx: Any) -> dict:
    return _customize(body, cluster=True)


# --- sync ------------------------------------------------------------------------------


def _selector(spec: Mapping, key: str, *, required: bool) -> Mapping | None:
    value = spec.get(key)
    if value is None:
        if required:
            raise ScheduleError(f"spec.{key}: a label selector is required")
        return None
    try:
        validate_selector(value)
    except ValueError as exc:
        raise ScheduleError(f"spec.{key}: {exc}") from exc
    return value


def resync_after(now: datetime, next_change: datetime | None) -> int:
    """Seconds until the next change (at least 1), at most the calm period.

    The next change is the next transition, or an earlier hand-over between overlapping rules
    (which changes `activeRules` only). Capping at the calm period costs nothing: the status is
    a fixed point, so a resync between changes writes nothing.
    """
    if next_change is None:
        return CALM_RESYNC_SECONDS
    return max(1, min(CALM_RESYNC_SECONDS, int((next_change - now).total_seconds())))


def _changed(previous: Mapping, status: Mapping) -> list[str]:
    """Top-level status fields this sync changes (for the request's log line)."""
    return sorted(key for key in {*previous, *status} if previous.get(key) != status.get(key))


def _ready_message(action: str, rules: list[str], passing: bool, gates: int, until: str | None) -> str:
    """E.g. `Deny schedule is active (freeze); 3 gate(s) blocking until 2025-01-04T23:00:00Z`."""
    state = f"active ({', '.join(rules)})" if rules else "inactive"
    text = f"{action} schedule is {state}; {gates} gate(s) {'passing' if passing else 'blocking'}"
    return text + (f" until {until}" if until else "")


def _sync(body: Any, ctx: Any, *, cluster: bool) -> dict:
    request = parse_request(body)
    parent = request.parent
    metadata = meta(parent)
    name: str = metadata["name"]
    own_namespace = None if cluster else (metadata.get("namespace") or "default")
    generation = metadata.get("generation")
    spec = _mapping(parent.get("spec"))
    previous = _mapping(parent.get("status"))
    now = ctx.now
    ctx.log.update(
        object=f"{own_namespace}/{name}" if own_namespace else name,
        kind=CLUSTER_KIND if cluster else NAMESPACED_KIND,
        schedule=name,
    )

    try:
        schedule = parse_schedule(spec)
        rollout_selector = _selector(spec, "rolloutSelector", required=True)
        namespace_selector = _selector(spec, "namespaceSelector", required=False) if cluster else None
    except ScheduleError as exc:
        # Keep the last known state: status as it was, gates exactly as they were applied. Only
        # nextTransition goes: nothing changes until the spec is fixed, and the old instant would
        # soon lie in the past (docs/spec/v1alpha1/rolloutschedule.md: always in the future, none => unset).
        status: dict[str, Any] = {key: value for key, value in previous.items() if key != "nextTransition"}
        status["managedGates"] = owned_gate_keys(request.children_of("RolloutGate"), cluster=cluster)
        status["conditions"] = [
            make_condition(
                previous.get("conditions"), "Ready", False, "InvalidSchedule", str(exc), now, generation
            )
        ]
        ctx.log.update(decision="invalid", reason=str(exc), changed=_changed(previous, status))
        return composite_response(
            status, CALM_RESYNC_SECONDS, preserved_gates(request.children_of("RolloutGate"))
        )

    targets = matching_rollouts(
        request.related_of("Rollout"),
        rollout_selector=rollout_selector,  # type: ignore[arg-type]
        namespace=own_namespace,
        namespaces=request.related_of("Namespace"),
        namespace_selector=namespace_selector,
    )
    active = schedule.active_at(now)
    active_rules = schedule.active_rules(now)
    next_transition = schedule.next_transition(now)
    until = format_time(next_transition) if next_transition else None
    passing = active if schedule.action == ALLOW else not active
    kind = CLUSTER_KIND if cluster else NAMESPACED_KIND
    annotations = schedule_annotations(
        kind=kind,
        namespace=own_namespace,
        schedule=name,
        action=schedule.action,
        timezone=schedule.timezone,
        rules=schedule.describe(),
        next_transition=until,
    )
    gates = [
        desired_gate(
            kind=kind,
            schedule_namespace=own_namespace,
            schedule=name,
            namespace=ns,
            rollout=rollout,
            passing=passing,
            annotations=annotations,
        )
        for ns, rollout in targets
    ]

    status = {}
    if "observedGeneration" in previous:
        status["observedGeneration"] = previous["observedGeneration"]
    status["active"] = active
    status["activeRules"] = active_rules
    if until:
        status["nextTransition"] = until
    # What this schedule really owns, from the children Metacontroller sent: a gate whose create
    # failed (a name taken by an object of someone else) is never listed
    # (docs/spec/v1alpha1/rolloutschedule.md).
    status["managedGates"] = owned_gate_keys(request.children_of("RolloutGate"), cluster=cluster)
    status["matchingRollouts"] = len(targets)
    status["conditions"] = [
        make_condition(
            previous.get("conditions"),
            "Ready",
            True,
            "Scheduled",
            _ready_message(schedule.action, active_rules, passing, len(gates), until),
            now,
            generation,
        )
    ]
    ctx.log.update(
        decision="passing" if passing else "blocking",
        active=active,
        gates=len(gates),
        changed=_changed(previous, status),
    )
    children = gates + bridging_gates(gates, request.children_of("RolloutGate"))
    return composite_response(status, resync_after(now, schedule.next_rules_change(now)), children)


def sync_namespaced(body: Any, ctx: Any) -> dict:
    return _sync(body, ctx, cluster=False)


def sync_cluster(body: Any, ctx: Any) -> dict:
    return _sync(body, ctx, cluster=True)
