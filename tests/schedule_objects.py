"""Builders for schedule hook requests (v2 envelopes) shared by the schedule tests."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from hooks.app import create_app
from hooks.schedule.gates import LAST_APPLIED_ANNOTATION

GATES_KEY = "RolloutGate.kuberik.com/v1alpha1"
ROLLOUTS_KEY = "Rollout.kuberik.com/v1alpha1"
NAMESPACES_KEY = "Namespace.v1"

NAMESPACED_SYNC = "/rolloutschedule/sync"
CLUSTER_SYNC = "/clusterrolloutschedule/sync"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def rule(name: str | None = None, *, start=None, end=None, days=None, dates=None) -> dict:
    out: dict[str, Any] = {}
    if name is not None:
        out["name"] = name
    if start is not None or end is not None:
        out["timeRange"] = {"start": start, "end": end}
    if days is not None:
        out["daysOfWeek"] = days
    if dates is not None:
        out["dateRange"] = {"start": dates[0], "end": dates[1]}
    return out


def schedule(
    *rules: dict,
    name: str = "sched",
    namespace: str | None = "team",
    action: str | None = None,
    timezone: str | None = None,
    selector: Any = None,
    namespace_selector: Any = None,
    status: dict | None = None,
    generation: int = 1,
) -> dict:
    spec: dict[str, Any] = {
        "rolloutSelector": {"matchLabels": {"app": "web"}} if selector is None else selector,
        "rules": list(rules),
    }
    if action is not None:
        spec["action"] = action
    if timezone is not None:
        spec["timezone"] = timezone
    if namespace_selector is not None:
        spec["namespaceSelector"] = namespace_selector
    metadata: dict[str, Any] = {"name": name, "generation": generation, "uid": "uid-" + name}
    if namespace is not None:
        metadata["namespace"] = namespace
    obj = {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "ClusterRolloutSchedule" if namespace is None else "RolloutSchedule",
        "metadata": metadata,
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def rollout(name: str, namespace: str = "team", **labels: str) -> dict:
    return {
        "apiVersion": "kuberik.com/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": "web"}},
        "spec": {"releasesImagePolicy": {"name": name}},
    }


def namespace_obj(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def observed_gate(desired: dict, **extra_meta: Any) -> dict:
    """A gate as the API server returns it after Metacontroller applied `desired`."""
    obj = json.loads(json.dumps(desired))
    obj["metadata"].setdefault("annotations", {})[LAST_APPLIED_ANNOTATION] = json.dumps(desired)
    obj["metadata"].update(
        uid="gate-uid",
        resourceVersion="42",
        creationTimestamp="2024-01-01T00:00:00Z",
        ownerReferences=[{"kind": "RolloutSchedule", "name": "x", "uid": "u", "controller": True}],
        **extra_meta,
    )
    obj["status"] = {}
    return obj


def request(parent: dict, rollouts=(), gates=(), namespaces=None) -> dict:
    """A v2 sync request; keys are <ns>/<name>, as Metacontroller sends them."""

    def key(obj: dict) -> str:
        md = obj["metadata"]
        return f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"]

    related: dict[str, dict] = {ROLLOUTS_KEY: {key(r): r for r in rollouts}}
    if namespaces is not None:
        related[NAMESPACES_KEY] = {key(n): n for n in namespaces}
    return {
        "controller": {"metadata": {"name": "schedules"}},
        "parent": parent,
        "children": {GATES_KEY: {key(g): g for g in gates}},
        "related": related,
        "finalizing": False,
    }


class Hooks:
    """POSTs through the real app with a pinned clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.client = create_app(clock=lambda: self.now, actuator=object()).test_client()

    def post(self, path: str, body: dict) -> dict:
        response = self.client.post(path, json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def sync(self, body: dict, *, at: datetime | None = None) -> dict:
        if at is not None:
            self.now = at
        path = NAMESPACED_SYNC if body["parent"]["metadata"].get("namespace") else CLUSTER_SYNC
        return self.post(path, body)

    def settle(self, body: dict, *, at: datetime | None = None) -> dict:
        """Sync, then sync again as Metacontroller does once it created the returned gates (a child
        event) and persisted the status: `managedGates` lists what the children show is owned."""
        first = self.sync(body, at=at)
        body = json.loads(json.dumps(body))
        body["parent"]["status"] = first["status"]
        body["children"] = {GATES_KEY: {child_key(g): observed_gate(g) for g in first["children"]}}
        return self.sync(body)


def child_key(obj: dict) -> str:
    md = obj["metadata"]
    return f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"]


def gate_hash(kind: str, namespace: str, schedule_name: str, rollout_name: str) -> str:
    """docs/spec/v1alpha1/rolloutschedule.md, computed here independently of hooks/schedule/gates.py."""
    return hashlib.sha256("\x00".join((kind, namespace, schedule_name, rollout_name)).encode()).hexdigest()[
        :8
    ]


def expected_gate(
    schedule_name: str, rollout_name: str, *, namespace: str = "team", cluster: bool = False
) -> str:
    kind = "ClusterRolloutSchedule" if cluster else "RolloutSchedule"
    suffix = gate_hash(kind, "" if cluster else namespace, schedule_name, rollout_name)
    return f"{schedule_name}-{rollout_name}-{suffix}"
