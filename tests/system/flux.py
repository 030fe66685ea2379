"""Simulated Flux controllers: they reconcile the fake API server's objects the way Flux does.

Only the status fields the hooks read, written as Flux writes them (fluxcd/pkg runtime
conditions, kstatus): every object reports `status.observedGeneration`; each condition carries
its own `observedGeneration`; `lastTransitionTime` moves only when a condition's status flips.

- image-reflector-controller: `publish(tag)` is a scan that found a new tag; the ImagePolicy
  reports it in `status.latestRef` (with its digest) and `Ready=True/Succeeded`.
- source-controller: an OCIRepository whose generation is not observed yet goes
  `Reconciling=True/Progressing` + `Ready=Unknown/Progressing` first, then stores the
  artifact of `spec.ref.tag`, revision `<tag>@sha256:<digest>`, `Ready=True/Succeeded`,
  `ArtifactInStorage=True`, `observedGeneration` = generation.
- kustomize-controller: a Kustomization whose generation is not observed, or whose source
  artifact revision is not its `lastAttemptedRevision`, goes `Reconciling=True/Progressing`
  + `Ready=Unknown` ("Fetching manifests for revision ...", `lastAttemptedRevision` set), then
  with `spec.wait: true` `Healthy=Unknown` ("Running health checks for revision ..."), then
  `Healthy=True`, `Ready=True/ReconciliationSucceeded` ("Applied revision: <rev>"),
  `lastAppliedRevision`, `observedGeneration`. It always applies
  the source's current artifact: a substitute patched before the source caught up is applied
  with the old revision first, and again when the new artifact appears (Flux's source watch).

Each `tick()` advances every object by one of those steps, so a test sees the in-between
states a real cluster shows. `paused` stops a controller (a broken link of the chain).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hooks.k8s import format_time
from tests.system.cluster import Cluster


def digest_of(*parts: str) -> str:
    """A stable sha256 digest for an image or artifact (what a registry would answer)."""
    return "sha256:" + hashlib.sha256("/".join(parts).encode()).hexdigest()


def _now() -> str:
    return format_time(datetime.now(UTC).replace(microsecond=0))


def go_duration(text: str) -> str:
    """A duration as Go's time.Duration.String() prints it (what Flux puts in messages): 5m -> 5m0s."""
    units = {"h": 3600, "m": 60, "s": 1}
    seconds = sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", text))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def set_condition(obj: dict, type_: str, status: str, reason: str, message: str) -> None:
    """fluxcd/pkg `conditions.Set`: keep lastTransitionTime unless the status flips."""
    generation = obj["metadata"].get("generation", 1)
    conditions: list[dict] = obj.setdefault("status", {}).setdefault("conditions", [])
    new = {
        "type": type_,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": _now(),
        "reason": reason,
        "message": message,
    }
    for index, old in enumerate(conditions):
        if old.get("type") == type_:
            if old.get("status") == status:
                new["lastTransitionTime"] = old.get("lastTransitionTime", new["lastTransitionTime"])
            conditions[index] = new
            break
    else:
        conditions.append(new)
    # Flux orders Ready first, then the other conditions (kstatus convention).
    conditions.sort(key=lambda c: (c["type"] != "Ready", c["type"] != "Reconciling"))


def delete_condition(obj: dict, type_: str) -> None:
    conditions = obj.get("status", {}).get("conditions", [])
    obj["status"]["conditions"] = [c for c in conditions if c.get("type") != type_]


def condition(obj: dict, type_: str) -> dict | None:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond.get("type") == type_:
            return cond
    return None


def ready_for_generation(obj: dict) -> bool:
    """kstatus Current: generation observed and Ready=True for it."""
    ready = condition(obj, "Ready")
    generation = obj["metadata"].get("generation")
    return (
        obj.get("status", {}).get("observedGeneration") == generation
        and ready is not None
        and ready["status"] == "True"
        and ready.get("observedGeneration") == generation
    )


@dataclass
class ImageReflector:
    """image-reflector-controller: ImagePolicies announce the newest tag a scan found."""

    cluster: Cluster

    def publish(self, namespace: str, name: str, tag: str) -> None:
        def change(policy: dict) -> None:
            image = "ghcr.io/stefanprodan/podinfo"
            status = policy.setdefault("status", {})
            previous = status.get("latestRef")
            status["latestRef"] = {"name": image, "tag": tag, "digest": digest_of(image, tag)}
            if previous:
                status["observedPreviousRef"] = previous
            status["observedGeneration"] = policy["metadata"].get("generation", 1)
            set_condition(
                policy, "Ready", "True", "Succeeded", f"Latest image tag for {image} resolved to {tag}"
            )

        self.cluster.mutate("ImagePolicy", namespace, name, change)


@dataclass
class SourceController:
    """source-controller for OCIRepositories (`spec.ref.tag` only, as the example uses)."""

    cluster: Cluster
    paused: bool = False
    #: (namespace, name, tag) of every artifact stored, in order: what Flux really pulled.
    stored: list[tuple[str, str, str]] = field(default_factory=list)

    def tick(self) -> None:
        if self.paused:
            return
        for repo in self.cluster.list("OCIRepository"):
            meta = repo["metadata"]
            if repo.get("spec", {}).get("suspend") or ready_for_generation(repo):
                continue
            self.cluster.mutate("OCIRepository", meta["namespace"], meta["name"], self._step)

    def _step(self, repo: dict) -> None:
        meta, status = repo["metadata"], repo.setdefault("status", {})
        generation = meta.get("generation", 1)
        reconciling = condition(repo, "Reconciling")
        if reconciling is None or reconciling.get("observedGeneration") != generation:
            previous = status.get("observedGeneration", 0)
            message = f"processing object: new generation {previous} -> {generation}"
            set_condition(repo, "Reconciling", "True", "Progressing", message)
            set_condition(repo, "Ready", "Unknown", "Progressing", "reconciliation in progress")
            return
        tag = repo["spec"]["ref"]["tag"]
        url = repo["spec"]["url"]
        revision = f"{tag}@{digest_of(url, tag)}"
        status["artifact"] = {
            "revision": revision,
            "digest": digest_of("artifact", url, tag),
            "path": f"ocirepository/{meta['namespace']}/{meta['name']}/{digest_of(url, tag)[7:]}.tar.gz",
            "url": (
                f"http://source-controller.flux-system.svc.cluster.local./ocirepository/"
                f"{meta['namespace']}/{meta['name']}/{digest_of(url, tag)[7:]}.tar.gz"
            ),
            "lastUpdateTime": _now(),
            "size": 1024,
        }
        status["url"] = (
            f"http://source-controller.flux-system.svc.cluster.local./ocirepository/"
            f"{meta['namespace']}/{meta['name']}/latest.tar.gz"
        )
        status["observedGeneration"] = generation
        delete_condition(repo, "Reconciling")
        message = f"stored artifact for digest '{revision}'"
        set_condition(repo, "ArtifactInStorage", "True", "Succeeded", message)
        set_condition(repo, "Ready", "True", "Succeeded", message)
        self.stored.append((meta["namespace"], meta["name"], tag))


@dataclass
class KustomizeController:
    """kustomize-controller: applies the source's artifact with the postBuild substitutes."""

    cluster: Cluster
    paused: bool = False
    #: (namespace, name, revision, substitutes, monotonic time) of every apply that finished.
    applied: list[tuple[str, str, str, dict, float]] = field(default_factory=list)
    _applying: dict[tuple[str, str], tuple[int, str, str]] = field(default_factory=dict)

    def tick(self) -> None:
        if self.paused:
            return
        for ks in self.cluster.list("Kustomization"):
            meta = ks["metadata"]
            if ks.get("spec", {}).get("suspend"):
                continue
            source = self._source(ks)
            artifact = (source or {}).get("status", {}).get("artifact")
            if artifact is None:
                continue  # Flux: "Source artifact not found, retrying in 30s"
            revision = artifact["revision"]
            if ready_for_generation(ks) and ks["status"].get("lastAttemptedRevision") == revision:
                continue
            self.cluster.mutate("Kustomization", meta["namespace"], meta["name"], self._stepper(revision))

    def _stepper(self, revision: str) -> Callable[[dict], None]:
        return lambda ks: self._step(ks, revision)

    def _source(self, ks: dict) -> dict | None:
        ref = ks["spec"]["sourceRef"]
        namespace = ref.get("namespace") or ks["metadata"]["namespace"]
        return self.cluster.get(ref["kind"], namespace, ref["name"])

    def _step(self, ks: dict, revision: str) -> None:
        """One of Flux's status patches: fetch (attempted), health checks (wait), applied."""
        meta, status = ks["metadata"], ks.setdefault("status", {})
        key = (meta["namespace"], meta["name"])
        generation = meta.get("generation", 1)
        timeout = go_duration(ks["spec"].get("timeout") or ks["spec"]["interval"])
        phase = self._applying.get(key)
        if phase is None or phase[:2] != (generation, revision):
            self._applying[key] = (generation, revision, "fetched")
            status["lastAttemptedRevision"] = revision
            message = f"Fetching manifests for revision {revision} with a timeout of {timeout}"
            set_condition(ks, "Reconciling", "True", "Progressing", message)
            set_condition(ks, "Ready", "Unknown", "Progressing", "Reconciliation in progress")
            return
        if ks["spec"].get("wait") and phase[2] == "fetched":
            self._applying[key] = (generation, revision, "health")
            message = f"Running health checks for revision {revision} with a timeout of {timeout}"
            set_condition(ks, "Reconciling", "True", "Progressing", message)
            set_condition(ks, "Healthy", "Unknown", "Progressing", message)
            return
        del self._applying[key]
        if ks["spec"].get("wait"):
            set_condition(ks, "Healthy", "True", "Succeeded", "Health check passed in 1.02s")
        status.update(observedGeneration=generation, lastAppliedRevision=revision)
        delete_condition(ks, "Reconciling")
        set_condition(ks, "Ready", "True", "ReconciliationSucceeded", f"Applied revision: {revision}")
        substitutes = dict(ks["spec"].get("postBuild", {}).get("substitute", {}))
        self.applied.append((meta["namespace"], meta["name"], revision, substitutes, time.time()))


@dataclass
class Flux:
    """The three controllers, ticking together in a background thread every `period` seconds."""

    cluster: Cluster
    period: float = 0.15
    reflector: ImageReflector = field(init=False)
    source: SourceController = field(init=False)
    kustomize: KustomizeController = field(init=False)

    def __post_init__(self) -> None:
        self.reflector = ImageReflector(self.cluster)
        self.source = SourceController(self.cluster)
        self.kustomize = KustomizeController(self.cluster)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def tick(self) -> None:
        self.source.tick()
        self.kustomize.tick()

    def settle(self, rounds: int = 20) -> None:
        """Tick until nothing changes (used to build the starting world)."""
        for _ in range(rounds):
            before = self.cluster.versions()
            self.tick()
            if self.cluster.versions() == before:
                return
        raise AssertionError("Flux did not settle")

    def start(self) -> Flux:
        def loop() -> None:
            while not self._stop.wait(self.period):
                try:
                    self.tick()
                except BaseException as exc:  # reported by the test, never swallowed
                    self.errors.append(exc)
                    return

        self._thread = threading.Thread(target=loop, name="flux", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def summary(obj: dict[str, Any]) -> dict[str, Any]:
    """What a failure message shows of a Flux object."""
    return {
        "generation": obj["metadata"].get("generation"),
        "spec": obj.get("spec"),
        "status": obj.get("status"),
    }
