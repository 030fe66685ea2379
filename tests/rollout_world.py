"""A small observed world for driving /rollout/sync the way Metacontroller does.

Each `sync()` posts the Rollout with the status persisted by the previous step, checks the
response shape, the CRD status schema and the fixed point (syncing again with the returned
status, the same objects and clock returns the identical response), then persists it.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hooks.app import create_app
from hooks.k8s import get_condition
from hooks.patchplan import PatchOutcome, PlannedPatch
from tests import flux_objects as flux
from tests.crd_schema import errors_of, validator

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NS = "shop"


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def reconciled(obj: dict, when: datetime) -> dict:
    """An OCIRepository once source-controller stored the artifact of its current tag."""
    return flux.ready(obj, obj["spec"].get("ref", {}).get("tag") or "latest", when)


class RecordingActuator:
    """Answers every patch with a configurable outcome and records what was sent."""

    mode = "apply"

    def __init__(self) -> None:
        self.sent: list[PlannedPatch] = []
        self.outcome = PatchOutcome("applied")

    def apply(self, patches: list[PlannedPatch]) -> list[PatchOutcome]:
        self.sent.extend(patches)
        return [self.outcome for _ in patches]


@dataclass
class World:
    name: str = "app"
    namespace: str = NS
    now: datetime = T0
    spec: dict = field(default_factory=lambda: {"releasesImagePolicy": {"name": "app"}})
    annotations: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    generation: int = 1
    policy: dict | None = None
    semver_policy: bool = True  # False: an alphabetical policy
    policy_spec: dict | None = None  # replaces spec.policy (and may add filterTags)
    gates: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    ocirepos: dict = field(default_factory=dict)
    kustomizations: dict = field(default_factory=dict)
    extra_related: dict = field(default_factory=dict)
    actuator: RecordingActuator = field(default_factory=RecordingActuator)
    last: dict = field(default_factory=dict)
    _client: Any = None

    # --- the world -------------------------------------------------------------------
    def release(self, tag: str, digest: str | None = None) -> None:
        """The ImagePolicy announces `tag`."""
        ref = {"name": "ghcr.io/acme/app", "tag": tag}
        if digest:
            ref["digest"] = digest
        policy_spec = {"imageRepositoryRef": {"name": "app"}}
        policy_spec["policy"] = (
            {"semver": {"range": ">=0.0.0-0"}} if self.semver_policy else {"alphabetical": {}}
        )
        if self.policy_spec is not None:
            policy_spec.update(copy.deepcopy(self.policy_spec))
        self.policy = {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": "app", "namespace": self.namespace},
            "spec": policy_spec,
            "status": {"latestRef": ref},
        }

    def ran(self, tag: str, ago: timedelta = timedelta(hours=1)) -> None:
        """The Rollout already deployed and baked `tag` (a persisted history, not an adoption)."""
        moment = ts(self.now - ago)
        self.status = {
            "availableReleases": [{"tag": tag, "discoveredAt": moment}],
            "history": [
                {
                    "id": 1,
                    "version": {"tag": tag, "discoveredAt": moment},
                    "timestamp": moment,
                    "message": "Automatic deployment",
                    "trigger": "Automatic",
                    "triggeredBy": {"kind": "System", "name": "rollout-controller"},
                    "bakeStatus": "Succeeded",
                    "bakeStatusMessage": "Bake completed successfully.",
                    "bakeStartTime": moment,
                    "bakeEndTime": moment,
                }
            ],
        }

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def gate(
        self, name: str, passing: bool | None = True, allowed: list[str] | None = None, rollout: str = "app"
    ) -> None:
        spec: dict[str, Any] = {"rolloutRef": {"name": rollout}}
        if passing is not None:
            spec["passing"] = passing
        if allowed is not None:
            spec["allowedVersions"] = allowed
        self.gates[name] = {
            "apiVersion": "kuberik.com/v1alpha1",
            "kind": "RolloutGate",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }

    def check(
        self,
        name: str,
        status: str | None,
        *,
        changed: datetime | None = None,
        error: datetime | None = None,
        message: str = "",
        labels: dict | None = None,
        namespace: str | None = None,
    ) -> None:
        namespace = namespace or self.namespace
        body: dict[str, Any] = {}
        if status is not None:
            body["status"] = status
        if message:
            body["message"] = message
        if changed is not None:
            body["lastChangeTime"] = ts(changed)
        if error is not None:
            body["lastErrorTime"] = ts(error)
        self.checks[(namespace, name)] = {
            "apiVersion": "kuberik.com/v1alpha1",
            "kind": "HealthCheck",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": "app"}},
            "spec": {"class": "external"},
            "status": body,
        }

    def ocirepo(self, name: str, tag: str | None = "0.0.1", rollout: str = "app", **ref: str) -> None:
        """An OCIRepository Flux has reconciled: Ready with `tag`'s artifact (tests/flux_objects.py)."""
        obj = flux.ocirepository(name, tag, rollout=rollout, **ref)
        obj["metadata"]["namespace"] = self.namespace
        self.ocirepos[name] = flux.ready(obj, tag or "latest", self.now - timedelta(minutes=5))

    def kustomization(self, name: str, annotations: dict, substitute: dict | None = None) -> None:
        """A Kustomization Flux has applied (sourced from the OCIRepository `manifests`)."""
        obj = flux.kustomization(name, annotations=annotations, substitute=substitute)
        obj["metadata"]["namespace"] = self.namespace
        self.kustomizations[name] = self._applied(obj, self.now - timedelta(minutes=5))

    def _applied(self, obj: dict, when: datetime) -> dict:
        source = self.ocirepos.get(obj["spec"]["sourceRef"]["name"])
        tag = (source or {}).get("spec", {}).get("ref", {}).get("tag") or "0.0.0"
        return flux.ready(obj, tag, when)

    def flux_reconciles(self) -> None:
        """source-controller and kustomize-controller finish the current generation of everything."""
        for name, obj in self.ocirepos.items():
            self.ocirepos[name] = reconciled(obj, self.now)
        for name, obj in self.kustomizations.items():
            self.kustomizations[name] = self._applied(obj, self.now)

    def flux_applies(self) -> None:
        """The API server stores what was patched (a spec change bumps the generation), then Flux
        reconciles it."""
        import jsonpatch

        for patch in self.actuator.sent:
            store = {"OCIRepository": self.ocirepos, "Kustomization": self.kustomizations}.get(patch.kind)
            if store is None or patch.name not in store:
                continue
            with contextlib.suppress(jsonpatch.JsonPatchTestFailed):  # a conflict, as a 422 would be
                current = store[patch.name]
                new = jsonpatch.apply_patch(current, list(patch.ops))
                if new["spec"] != current["spec"]:
                    new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
                store[patch.name] = new
        self.actuator.sent.clear()
        self.flux_reconciles()

    # --- the wire --------------------------------------------------------------------
    def rollout(self) -> dict:
        return {
            "apiVersion": "kuberik.com/v1alpha1",
            "kind": "Rollout",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "generation": self.generation,
                "annotations": dict(self.annotations),
            },
            "spec": copy.deepcopy(self.spec),
            "status": copy.deepcopy(self.status),
        }

    def request(self) -> dict:
        ns = self.namespace
        related: dict[str, dict] = {
            "ImagePolicy.image.toolkit.fluxcd.io/v1": {f"{ns}/app": self.policy} if self.policy else {},
            "RolloutGate.kuberik.com/v1alpha1": {f"{ns}/{k}": v for k, v in self.gates.items()},
            "HealthCheck.kuberik.com/v1alpha1": {f"{c}/{n}": v for (c, n), v in self.checks.items()},
            "OCIRepository.source.toolkit.fluxcd.io/v1": {f"{ns}/{k}": v for k, v in self.ocirepos.items()},
            "Kustomization.kustomize.toolkit.fluxcd.io/v1": {
                f"{ns}/{k}": v for k, v in self.kustomizations.items()
            },
            **self.extra_related,
        }
        return {
            "controller": {"metadata": {"name": "rollouts.kuberik.com"}},
            "parent": self.rollout(),
            "children": {},
            "related": copy.deepcopy(related),
            "finalizing": False,
        }

    def post(self, body: Any, path: str = "/rollout/sync") -> Any:
        if self._client is None:
            self._client = create_app(clock=lambda: self.now, actuator=self.actuator).test_client()
        return self._client.post(path, json=body)

    def sync(self, check_fixed_point: bool = True) -> dict:
        response = self.post(self.request())
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert set(body) == {"status", "children", "resyncAfterSeconds"}
        assert body["children"] == []
        assert body["resyncAfterSeconds"] > 0
        problems = errors_of(validator("Rollout", part="status"), body["status"])
        assert not problems, problems
        self.status = body["status"]
        self.last = body
        if check_fixed_point:
            sent_before = len(self.actuator.sent)
            again = self.post(self.request()).get_json()
            assert again["status"] == body["status"], "status is not a fixed point"
            assert again["resyncAfterSeconds"] == body["resyncAfterSeconds"]
            del self.actuator.sent[sent_before:]  # the replay's patches are the same ones again
        return self.status

    # --- reading status --------------------------------------------------------------
    @property
    def history(self) -> list[dict]:
        return self.status.get("history", [])

    @property
    def deployed(self) -> str | None:
        return self.history[0]["version"]["tag"] if self.history else None

    @property
    def bake(self) -> str | None:
        return self.history[0].get("bakeStatus") if self.history else None

    def condition(self, type_: str) -> tuple[str, str]:
        cond = get_condition(self.status.get("conditions"), type_)
        assert cond is not None, f"no {type_} condition"
        return cond["status"], cond["reason"]

    def message(self, type_: str) -> str:
        cond = get_condition(self.status.get("conditions"), type_)
        assert cond is not None
        return cond["message"]
