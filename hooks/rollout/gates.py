"""RolloutGates: summaries, the gated candidates and the GatesPassing verdict (docs rollout.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hooks.k8s import dig, meta


@dataclass(frozen=True)
class Gate:
    name: str
    passing: bool
    allowed: list[str] | None


@dataclass(frozen=True)
class GateVerdict:
    summaries: list[dict]
    gated: list[str]  # candidates the gates allow, best first
    blocking: bool  # some gate is not passing (and no bypass)
    reason: str
    status: bool
    message: str


def _field(gate: dict, key: str) -> Any:
    """Spec field, falling back to the legacy status field written by older tooling."""
    spec_value = dig(gate, "spec", key)
    return spec_value if spec_value is not None else dig(gate, "status", key)


def gates_for(objects: list[dict], rollout: str, namespace: str) -> list[Gate]:
    """This Rollout's gates in name order."""
    gates = []
    for obj in objects:
        md = meta(obj)
        if dig(obj, "spec", "rolloutRef", "name") != rollout or md.get("namespace", namespace) != namespace:
            continue
        passing = _field(obj, "passing")
        allowed = _field(obj, "allowedVersions")
        gates.append(
            Gate(
                name=str(md.get("name", "")),
                passing=passing if isinstance(passing, bool) else True,
                allowed=[v for v in allowed if isinstance(v, str)] if isinstance(allowed, list) else None,
            )
        )
    return sorted(gates, key=lambda g: g.name)


def evaluate(gates: list[Gate], candidates: list[str], bypass: str | None) -> GateVerdict:
    """Summaries and gated candidates; `bypass` is a fresh bypass-gates tag that is a candidate."""
    if bypass is not None:
        summaries = [
            {
                "name": g.name,
                "passing": g.passing,
                **({"allowedVersions": g.allowed} if g.allowed is not None else {}),
                "message": f"Gate bypassed for version {bypass}",
                "bypassGates": True,
            }
            for g in gates
        ]
        return GateVerdict(summaries, [bypass], False, "GatesBypassed", True, f"Gates bypassed for {bypass}")

    gated = list(candidates)
    summaries = []
    blocking = False
    for gate in gates:
        summary: dict[str, Any] = {"name": gate.name, "passing": gate.passing}
        if gate.allowed is not None:
            summary["allowedVersions"] = gate.allowed
        allows_any = True
        if gate.allowed is not None:
            allowed = set(gate.allowed)
            gated = [c for c in gated if c in allowed]
            allows_any = any(c in allowed for c in candidates)
        if not gate.passing:
            blocking = True
            summary["message"] = "Gate is not passing"
        else:
            summary["message"] = (
                "Gate is passing" if allows_any else "Gate does not allow any release candidate"
            )
        summary["bypassGates"] = False
        summaries.append(summary)

    if blocking and candidates:
        names = ", ".join(g.name for g in gates if not g.passing)
        return GateVerdict(summaries, gated, True, "SomeGatesBlocking", False, f"Blocked by gates: {names}")
    if candidates and not gated:
        return GateVerdict(
            summaries, gated, False, "NoAllowedVersions", False, "Gates allow none of the release candidates"
        )
    message = "All gates are passing" if candidates else "No release candidate is waiting"
    return GateVerdict(summaries, gated, blocking, "AllGatesPassing", True, message)


def not_passing(gates: list[Gate]) -> Gate | None:
    """The first gate (in name order) that is not passing."""
    return next((g for g in gates if not g.passing), None)


def disallowing(gates: list[Gate], tag: str) -> Gate | None:
    """The first gate whose allowedVersions leaves `tag` out."""
    return next((g for g in gates if g.allowed is not None and tag not in g.allowed), None)
