"""What a Rollout's status says, for people: deployed version, bake and deadline, what waits and why.

Read-only views of the status the hooks wrote (plus the RolloutGates, for a schedule's
"closed until"); the only computing done here is the deadlines, from absolute timestamps in
the status and the spec's durations, since the status itself never holds "3m remaining".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from hooks.cli import errors
from hooks.k8s import (
    annotations_of,
    dig,
    format_time,
    get_condition,
    labels_of,
    meta,
    parse_duration,
    parse_time,
)

#: The schedule hook's annotation on the gates it owns (docs/spec/v1alpha1/rolloutschedule.md);
#: the older key is read too.
NEXT_TRANSITION = ("rollout.kuberik.com/next-transition", "rollout.kuberik.com/schedule-next-transition")
SCHEDULE_LABEL = "rollout.kuberik.com/schedule"


def section(obj: Mapping, key: str) -> dict[str, Any]:
    """obj[key] when it is an object, else {} (malformed or missing)."""
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, dict) else {}


def _duration(spec: Mapping, key: str) -> timedelta | None:
    try:
        return parse_duration(spec.get(key)) if spec.get(key) is not None else None
    except ValueError:
        return None


def human(delta: timedelta) -> str:
    """`1h30m`, `45s`: a Go-like duration, whole seconds."""
    seconds = int(abs(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"


def relative(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    delta = moment - now
    return f"in {human(delta)}" if delta.total_seconds() > 0 else f"{human(delta)} ago"


def head(status: Mapping) -> dict:
    hist = status.get("history")
    return hist[0] if isinstance(hist, list) and hist and isinstance(hist[0], dict) else {}


def tag_of(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    value = dig(entry, "version", "tag") if isinstance(entry, Mapping) and "version" in entry else None
    if value is None and isinstance(entry, Mapping):
        value = entry.get("tag")
    return str(value) if value is not None else ""


def bake_view(rollout: Mapping, now: datetime) -> dict:
    """The deployed entry's bake and, while it runs, the deadline computed from the spec."""
    spec = section(rollout, "spec")
    entry = head(section(rollout, "status"))
    state = entry.get("bakeStatus")
    view: dict[str, Any] = {"status": state, "message": entry.get("bakeStatusMessage")}
    started = parse_time(entry.get("bakeStartTime"))
    if started is not None:
        view["startTime"] = format_time(started)
    bake_time, timeout = _duration(spec, "bakeTime"), _duration(spec, "deployTimeout")
    deadline: datetime | None = None
    if state == "InProgress" and started is not None and bake_time is not None:
        deadline, view["deadlineKind"] = started + bake_time, "bake ends"
    elif state == "Deploying" and timeout is not None:
        times = [parse_time(entry.get("timestamp")), parse_time(entry.get("lastRetryTimestamp"))]
        known = [t for t in times if t is not None]
        if known:
            deadline, view["deadlineKind"] = max(known) + timeout, "deploy timeout"
    if deadline is not None:
        view["deadline"] = format_time(deadline)
        view["deadlineIn"] = relative(deadline, now)
    ended = parse_time(entry.get("bakeEndTime"))
    if started is not None:
        view["duration"] = human((ended or now) - started)
    return view


def _schedule_until(gate: Mapping | None) -> str | None:
    if gate is None:
        return None
    ann = annotations_of(gate)
    return next((str(ann[k]) for k in NEXT_TRANSITION if ann.get(k)), None)


def waits(rollout: Mapping, gate_objects: list[dict] | None = None) -> list[dict]:
    """Everything that holds automatic deploys back now, each with its reason."""
    spec = section(rollout, "spec")
    status = section(rollout, "status")
    conditions = status.get("conditions")
    by_name = {str(meta(g).get("name")): g for g in gate_objects or []}
    found: list[dict] = []
    if spec.get("wantedVersion"):
        found.append({"what": "pin", "message": f"pinned to {spec['wantedVersion']} (spec.wantedVersion)"})
    if spec.get("suspend") is True:
        found.append({"what": "suspend", "message": "spec.suspend is true: no automatic deploys"})
    hold = section(status, "hold")
    if hold:
        found.append(
            {
                "what": "hold",
                "message": f"{hold.get('reason', 'hold')}: waits for a release after "
                f"{hold.get('resumeAfter')}",
            }
        )
    for gate in status.get("gates") or []:
        if not isinstance(gate, Mapping):
            continue
        obj = by_name.get(str(gate.get("name")))
        until = _schedule_until(obj)
        blocking = gate.get("passing") is False
        limited = bool(gate.get("allowedVersions")) and not gate.get("bypassGates")
        if not (blocking or limited):
            continue  # an open schedule window is reported by schedules(), not as a wait
        item = {
            "what": "gate",
            "name": gate.get("name"),
            "blocking": blocking,
            "message": gate.get("message", ""),
        }
        if obj is not None and meta(obj).get("labels", {}).get(SCHEDULE_LABEL):
            item["schedule"] = meta(obj)["labels"][SCHEDULE_LABEL]
        if until:
            item["until"] = until
            item["message"] = f"{item['message']}; {'closed' if blocking else 'open'} until {until}"
        if gate.get("allowedVersions"):
            item["allowedVersions"] = list(gate["allowedVersions"])
        found.append(item)
    entry = head(status)
    candidates = status.get("releaseCandidates") or []
    if entry.get("bakeStatus") in ("Deploying", "InProgress") and candidates:
        found.append(
            {
                "what": "bake",
                "message": f"{tag_of(candidates[0])} waits until the bake of {tag_of(entry)} ends "
                f"({entry.get('bakeStatus')})",
            }
        )
    gate_listed = any(item["what"] == "gate" and item.get("blocking") for item in found)
    for type_ in ("DeploymentBlocked", "GatesPassing", "UpstreamVerified"):
        cond = get_condition(conditions, type_)
        if cond is None or (type_ == "GatesPassing" and gate_listed):
            continue
        bad = cond.get("status") == ("True" if type_ == "DeploymentBlocked" else "False")
        if bad:
            found.append({"what": type_, "reason": cond.get("reason"), "message": cond.get("message", "")})
    return found


def schedules(rollout: Mapping, gate_objects: list[dict] | None) -> list[dict]:
    """Every schedule gate of this Rollout: open or closed, and until when (the next transition)."""
    name = meta(rollout).get("name")
    return [
        item
        for item, gate in zip(schedules_of(gate_objects), _schedule_gates(gate_objects), strict=True)
        if dig(gate, "spec", "rolloutRef", "name") == name
    ]


def _schedule_gates(gate_objects: list[dict] | None) -> list[dict]:
    gates = [g for g in gate_objects or [] if labels_of(g).get(SCHEDULE_LABEL)]
    return sorted(gates, key=lambda g: (labels_of(g)[SCHEDULE_LABEL], str(meta(g).get("name"))))


def schedules_of(gate_objects: list[dict] | None) -> list[dict]:
    """The schedule gates among `gate_objects`, whatever Rollout they gate."""
    found = []
    for gate in _schedule_gates(gate_objects):
        schedule = labels_of(gate)[SCHEDULE_LABEL]
        passing = dig(gate, "spec", "passing")
        if passing is None:
            passing = dig(gate, "status", "passing")
        found.append(
            {
                "schedule": schedule,
                "gate": meta(gate).get("name"),
                "open": passing is not False,
                "until": _schedule_until(gate),
            }
        )
    return found


def verdict(rollout: Mapping) -> int:
    """Exit code of status/why: 0 up to date or deploying, 2 something blocks, 3 failed or stalled."""
    status = section(rollout, "status")
    conditions = status.get("conditions")
    stalled = get_condition(conditions, "Stalled")
    if head(status).get("bakeStatus") == "Failed" or (stalled and stalled.get("status") == "True"):
        return errors.FAILED
    blocked = get_condition(conditions, "DeploymentBlocked")
    gates = get_condition(conditions, "GatesPassing")
    upstream = get_condition(conditions, "UpstreamVerified")
    ready = get_condition(conditions, "Ready")
    if (
        (blocked and blocked.get("status") == "True")
        or (gates and gates.get("status") == "False")
        or (upstream and upstream.get("status") == "False")
        or (ready and ready.get("status") == "False")
    ):
        return errors.BLOCKED
    return errors.OK


def summary(rollout: Mapping, now: datetime, gate_objects: list[dict] | None = None) -> dict:
    """The `status` view of one Rollout (also the `-o json` shape)."""
    md = meta(rollout)
    status = section(rollout, "status")
    ready = get_condition(status.get("conditions"), "Ready") or {}
    code = verdict(rollout)
    return {
        "name": md.get("name"),
        "namespace": md.get("namespace"),
        "deployed": tag_of(head(status)) or None,
        "verdict": {errors.OK: "ok", errors.BLOCKED: "blocked", errors.FAILED: "failed"}[code],
        "ready": {k: ready.get(k) for k in ("status", "reason", "message")},
        "bake": bake_view(rollout, now),
        "waits": waits(rollout, gate_objects),
        "schedules": schedules(rollout, gate_objects),
        "candidates": [tag_of(c) for c in status.get("releaseCandidates") or []],
        "gatedCandidates": [tag_of(c) for c in status.get("gatedReleaseCandidates") or []],
        "targets": [
            {k: t.get(k) for k in ("kind", "name", "field", "desired", "observed", "state", "message")}
            for t in status.get("targets") or []
            if isinstance(t, Mapping)
        ],
    }


def history_rows(rollout: Mapping, now: datetime) -> list[dict]:
    """One row per history entry, newest first (also the `history -o json` shape)."""
    status = section(rollout, "status")
    hold = section(status, "hold")
    rows = []
    for entry in status.get("history") or []:
        if not isinstance(entry, Mapping):
            continue
        by = section(entry, "triggeredBy")
        started, ended = parse_time(entry.get("bakeStartTime")), parse_time(entry.get("bakeEndTime"))
        row: dict[str, Any] = {
            "id": entry.get("id"),
            "tag": tag_of(entry),
            "when": entry.get("timestamp"),
            "trigger": entry.get("trigger") or _legacy_trigger(str(entry.get("message") or "")),
            "by": f"{by.get('kind', '')}/{by.get('name', '')}".strip("/"),
            "message": entry.get("message"),
            "bake": entry.get("bakeStatus"),
            "bakeDuration": human((ended or now) - started) if started else None,
        }
        if entry.get("rollbackOf") is not None:
            row["rollbackOf"] = entry["rollbackOf"]
        if hold and hold.get("historyId") == entry.get("id"):
            row["hold"] = f"{hold.get('reason')}: resumes after {hold.get('resumeAfter')}"
        if entry.get("failedHealthChecks"):
            row["failedHealthChecks"] = [
                f"{c.get('namespace')}/{c.get('name')}"
                for c in entry["failedHealthChecks"]
                if isinstance(c, Mapping)
            ]
        rows.append(row)
    return rows


def _legacy_trigger(message: str) -> str:
    """docs/spec/v1alpha1/rollout.md: an entry written without `trigger`."""
    if message.startswith("Automatic deployment"):
        return "Automatic"
    if message.startswith("Adopted"):
        return "Adoption"
    return "ForceDeploy"
