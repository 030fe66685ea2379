"""`why`: the sync Metacontroller would send now, run through the engine, explained per candidate.

The request is built exactly as Metacontroller builds it (the Rollout's own customize rules,
objects listed under the user's kubeconfig); the engine runs with the dry-run outcome, so
nothing is written. Every per-candidate reason is the engine's own (`Evaluation.explain`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from hooks.cli import engine, report
from hooks.cli.related import Lister, list_live, sync_request
from hooks.k8s import meta


def request_for(kube: Lister, rollout: dict) -> dict:
    namespace = str(meta(rollout).get("namespace") or "")
    related = list_live(kube, engine.rollout_rules(rollout), namespace)
    return sync_request(rollout, related, engine.ROLLOUT_CONTROLLER)


_GATE_NAMED = re.compile(r"gate '([^']+)'")


def _schedule_note(reason: str, gate_objects: list[dict]) -> str | None:
    """`closed until <t>` when the engine's reason names a schedule's gate.

    The gate annotation is described in docs/spec/v1alpha1/rolloutschedule.md.
    """
    match = _GATE_NAMED.search(reason)
    if match is None:
        return None
    for item in report.schedules_of(gate_objects):
        if item["gate"] == match[1] and item.get("until"):
            return (
                f"{'open' if item['open'] else 'closed'} until {item['until']} (schedule {item['schedule']})"
            )
    return None


def candidate_lines(
    status: dict, explained: dict[str, str] | None, tag: str | None, gate_objects: list[dict] | None = None
) -> list[dict]:
    """One line per release candidate (or for `tag`), each with the engine's reason; a reason
    naming a schedule's gate gets the schedule's next transition ("closed until")."""
    candidates = [report.tag_of(c) for c in status.get("releaseCandidates") or []]
    tags = list(candidates)
    for extra in explained or {}:
        if extra not in tags:
            tags.append(extra)
    if tag is not None:
        tags = [tag]
    lines = []
    for t in tags:
        line: dict[str, Any] = {"tag": t}
        if explained is not None and t in explained:
            line["reason"] = explained[t]
            line["code"] = engine.reason_code(explained[t])
            note = _schedule_note(explained[t], gate_objects or [])
            if note is not None:
                line["until"] = note
        else:
            line["reason"], line["code"] = engine.NO_REASONS, "unexplained"
        lines.append(line)
    return lines


def explain(body: dict, now: datetime, tag: str | None) -> dict:
    """The `why -o json` document."""
    parent = body["parent"]
    result = engine.run_sync(body, now, dry_run=True, ask=tag)
    before = report.tag_of(report.head(parent.get("status") or {})) or None
    evaluated = dict(parent, status=result.status)
    after = report.tag_of(report.head(result.status)) or None
    gates = [
        obj
        for group, objects in body["related"].items()
        if group.startswith("RolloutGate.")
        for obj in objects.values()
    ]
    md = meta(parent)
    return {
        "rollout": f"{md.get('namespace')}/{md.get('name')}",
        "at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "deployed": before,
        "wouldDeploy": after if after != before else None,
        "decision": str(getattr(result.evaluation, "log", {}).get("decision", "")),
        "engineReasons": engine.explain(result.evaluation) is not None,
        "candidates": candidate_lines(result.status, engine.explain(result.evaluation), tag, gates),
        "summary": report.summary(evaluated, now, gates),
        "exitCode": report.verdict(evaluated),
    }
