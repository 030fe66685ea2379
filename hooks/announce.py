"""Announces the facts of a Rollout's persisted status (docs/events-and-metrics.md).

Write-ahead like the patches: only facts already in the status Metacontroller persisted (the
Rollout in the request), never from the status being returned. Each fact becomes

- optionally (`FLUX_EVENTS_ADDRESS`), one Flux event per Flux object the Rollout drives,
  POSTed to notification-controller first (at least once: a fact whose notification failed
  stays pending and is retried, for at most FLUX_RETRY_WINDOW after the fact);
- then one `events.k8s.io/v1` Event on the Rollout, whose name is derived from the fact. The
  Event is the commit record: `201 Created` or `409 AlreadyExists` means announced, so
  duplicated syncs, retries and two replicas announce once. The delivery metrics are counted
  on `201` only, i.e. once per fact across replicas.

Refusals (403, 500, timeouts, notification-controller down) never fail the sync and never
delay a patch (announcing runs after the patches, within its own small budget); the fact is
retried on later syncs with the targets' backoff measured from the fact's own timestamp
(10 s doubling to 5 min, docs/targets.md), so the status needs no extra field and stays a fixed
point. Facts older than one hour are never announced (hooks.facts.MAX_AGE).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx2
import orjson
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource

from hooks import facts as facts_
from hooks import metrics
from hooks.actuator import APPLY, DRY_RUN, SERVICE_ACCOUNT_DIR, discover_config, outcome_for_exception
from hooks.api import kinds
from hooks.facts import Fact, items, mapping

log = logging.getLogger("hooks.announce")

REPORTING_CONTROLLER = "kuberik.com/rollout-controller"
FLUX_REPORTING_CONTROLLER = "kuberik-rollout-controller"
ROLLOUT_API_VERSION = kinds.ROLLOUT.api_version
#: Kinds Flux's Alert accepts as eventSources that a Rollout drives, with their apiVersion.
FLUX_KINDS = {k.kind: k.api_version for k in (kinds.OCI_REPOSITORY, kinds.KUSTOMIZATION)}
#: Flux objects one fact is attributed to (each gets its own notification).
MAX_FLUX_OBJECTS = 5
#: One API or notification call; announcing is best effort and must leave the sync its time.
CALL_TIMEOUT_S = 1.0
#: All announcement calls of one sync.
BUDGET_S = 2.0
#: How long after a fact a failing notification-controller keeps the Kubernetes Event waiting.
FLUX_RETRY_WINDOW = timedelta(minutes=10)
RETRY_MIN = timedelta(seconds=10)
RETRY_MAX = timedelta(minutes=5)
#: Facts this process knows are announced (a cache in front of AlreadyExists, never the truth).
MEMORY_ENTRIES = 20_000
MEMORY_TTL_S = 2 * 3600.0

_Event = create_namespaced_resource(
    kinds.EVENT.group, kinds.EVENT.version, kinds.EVENT.kind, kinds.EVENT.plural
)


@dataclass(frozen=True)
class FluxObject:
    """A Flux object a Rollout drives: where its notifications are attributed."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str | None = None

    def reference(self) -> dict[str, str]:
        ref = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        ref["namespace"] = self.namespace
        if self.uid:
            ref["uid"] = self.uid
        return ref

    @property
    def group(self) -> str:
        return self.api_version.partition("/")[0]


@dataclass
class Outcome:
    """What one announce() did; `pending` facts are retried later."""

    created: list[Fact] = field(default_factory=list)
    existing: list[Fact] = field(default_factory=list)
    pending: list[Fact] = field(default_factory=list)

    def retry_after(self, now: datetime) -> float | None:
        """Seconds until the next attempt: as long as the oldest pending fact has waited, 10 s-5 min."""
        if not self.pending:
            return None
        delay = min(min(max(now - f.time, RETRY_MIN), RETRY_MAX) for f in self.pending)
        return delay.total_seconds()


def flux_objects(rollout: Mapping[str, Any], related: Mapping[str, Sequence[dict]]) -> list[FluxObject]:
    """The Flux objects the persisted status says this Rollout drives (status.targets), with
    apiVersion and uid from the related objects when Metacontroller sent them."""
    md = mapping(rollout.get("metadata"))
    namespace = str(md.get("namespace") or "")
    status = mapping(rollout.get("status"))
    seen: dict[tuple[str, str], FluxObject] = {}
    for entry in items(status.get("targets")):
        if not isinstance(entry, Mapping) or entry.get("kind") not in FLUX_KINDS:
            continue
        kind, name = str(entry["kind"]), entry.get("name")
        if not isinstance(name, str) or not name or (kind, name) in seen:
            continue
        if str(entry.get("field", "")).startswith("status."):  # read, not driven
            continue
        api_version, uid = FLUX_KINDS[kind], None
        for obj in related.get(kind, ()):
            meta = mapping(obj.get("metadata"))
            if meta.get("name") == name and meta.get("namespace", namespace) == namespace:
                api_version = str(obj.get("apiVersion") or api_version)
                uid = meta.get("uid") if isinstance(meta.get("uid"), str) else None
        seen[(kind, name)] = FluxObject(api_version, kind, name, namespace, uid)
    return list(seen.values())[:MAX_FLUX_OBJECTS]


def _micro(moment: datetime) -> str:
    """metav1.MicroTime as the API server parses it (RFC 3339 with six fraction digits)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def kubernetes_event(rollout: Mapping[str, Any], fact: Fact, instance: str) -> dict[str, Any]:
    """The events.k8s.io/v1 Event announcing `fact` on the Rollout."""
    md = rollout["metadata"]
    regarding = {
        "apiVersion": ROLLOUT_API_VERSION,
        "kind": "Rollout",
        "name": md["name"],
        "namespace": md.get("namespace", ""),
    }
    if isinstance(md.get("uid"), str):
        regarding["uid"] = md["uid"]
    return {
        "apiVersion": kinds.EVENT.api_version,
        "kind": kinds.EVENT.kind,
        "metadata": {"name": fact.name, "namespace": md.get("namespace", "")},
        "eventTime": _micro(fact.time),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance[:128],
        "action": fact.action,
        "reason": fact.reason,
        "type": "Warning" if fact.warning else "Normal",
        "note": fact.message,
        "regarding": regarding,
    }


def flux_event(rollout: Mapping[str, Any], fact: Fact, obj: FluxObject, instance: str) -> dict[str, Any]:
    """Flux's event format (fluxcd/pkg apis/event v1beta1). notification-controller keeps only
    metadata keys prefixed with the involved object's API group, strips the prefix for the
    Providers, and uses `<group>/revision` and `<group>/token` to rate-limit duplicates."""
    md = rollout["metadata"]
    metadata = {
        f"{obj.group}/rollout": f"{md.get('namespace', '')}/{md['name']}",
        f"{obj.group}/token": fact.name,
    }
    if fact.version:
        metadata[f"{obj.group}/revision"] = fact.version
    return {
        "involvedObject": obj.reference(),
        "severity": "error" if fact.warning else "info",
        "timestamp": _seconds(fact.time),
        "message": fact.message,
        "reason": fact.reason,
        "metadata": metadata,
        "reportingController": FLUX_REPORTING_CONTROLLER,
        "reportingInstance": instance,
    }


class Announcer:
    """Sends Events (and Flux notifications); one per worker process, thread-safe."""

    def __init__(
        self,
        mode: str = APPLY,
        *,
        env: Mapping[str, str] | None = None,
        flux_address: str | None = None,
        service_account_dir: str = SERVICE_ACCOUNT_DIR,
        call_timeout: float = CALL_TIMEOUT_S,
        budget: float = BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.flux_address = flux_address or None
        self.call_timeout = call_timeout
        self.budget = budget
        self._clock = clock
        self._env = dict(os.environ if env is None else env)
        self._service_account_dir = service_account_dir
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._http: httpx2.Client | None = None
        self._done: OrderedDict[str, float] = OrderedDict()
        self.instance = (self._env.get("HOSTNAME") or socket.gethostname() or "rollout-hooks")[:128]

    @classmethod
    def from_env(cls, env: Mapping[str, str], mode: str = APPLY, **kwargs: Any) -> Announcer:
        address = (env.get("FLUX_EVENTS_ADDRESS") or "").strip() or None
        if address is not None and not address.startswith(("http://", "https://")):
            raise ValueError(f"FLUX_EVENTS_ADDRESS={address!r} is not an http(s) URL")
        return cls(mode, env=env, flux_address=address, **kwargs)

    def close(self) -> None:
        with self._lock:
            client, http = self._client, self._http
            self._client = self._http = None
        if client is not None:
            client.close()
        if http is not None:
            http.close()

    # --- memory ----------------------------------------------------------------------------

    def _known(self, key: str) -> bool:
        with self._lock:
            expiry = self._done.get(key)
            if expiry is None:
                return False
            if expiry < self._clock():
                del self._done[key]
                return False
            return True

    def _remember(self, key: str) -> None:
        with self._lock:
            self._done[key] = self._clock() + MEMORY_TTL_S
            self._done.move_to_end(key)
            while len(self._done) > MEMORY_ENTRIES:
                self._done.popitem(last=False)

    # --- clients ---------------------------------------------------------------------------

    def _kube(self) -> Client | str:
        with self._lock:
            if self._client is None:
                config, source, error = discover_config(self._env, self._service_account_dir)
                if config is None:
                    return f"no usable Kubernetes credentials: {error}"
                try:
                    self._client = Client(config=config, timeout=httpx2.Timeout(self.call_timeout))
                except Exception as exc:  # bad CA file, unsupported auth-provider, ...
                    return f"no usable Kubernetes credentials: {source}: {exc}"
            return self._client

    def _flux(self) -> httpx2.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx2.Client(timeout=httpx2.Timeout(self.call_timeout), trust_env=False)
            return self._http

    # --- announcing ------------------------------------------------------------------------

    def announce(
        self,
        rollout: Mapping[str, Any],
        due: Sequence[Fact],
        objects: Sequence[FluxObject],
        now: datetime,
        deadline: float | None = None,
    ) -> Outcome:
        """Announce each due fact once. Never raises. `deadline` (on this announcer's clock,
        time.monotonic by default) ends the announcing earlier than its own budget."""
        outcome = Outcome()
        if self.mode == DRY_RUN or not due:
            return outcome  # docs/targets.md: dry-run sends no Events
        own = self._clock() + self.budget
        deadline = own if deadline is None else min(own, deadline)
        namespace = str(rollout["metadata"].get("namespace", ""))
        for fact in due:
            if self._known(fact.name):
                continue
            try:
                result = self._announce_one(rollout, fact, objects, now, deadline)
            except Exception:  # a bug here must never fail the sync
                log.exception("announcing %s failed unexpectedly", fact.reason)
                result = "error"
            metrics.announcement("kubernetes", result)
            if result == "created":
                outcome.created.append(fact)
                metrics.delivery(namespace, fact)
            elif result == "exists":
                outcome.existing.append(fact)
            else:
                outcome.pending.append(fact)
        return outcome

    def _announce_one(
        self,
        rollout: Mapping[str, Any],
        fact: Fact,
        objects: Sequence[FluxObject],
        now: datetime,
        deadline: float,
    ) -> str:
        if self.flux_address is not None and not self._notify(rollout, fact, objects, now, deadline):
            if now - fact.time < FLUX_RETRY_WINDOW:
                return "skipped"  # the Event waits for the notification: retried together
            log.warning("giving up notifying Flux of %s %s", fact.reason, fact.name)
        if self._clock() + self.call_timeout > deadline:
            return "skipped"
        client = self._kube()
        if isinstance(client, str):
            _log(logging.WARNING, rollout, fact, "error", client)
            return "error"
        body = kubernetes_event(rollout, fact, self.instance)
        try:
            client.create(_Event.from_dict(body), namespace=body["metadata"]["namespace"])
        except Exception as exc:
            if _status_code(exc) == 409:
                self._remember(fact.name)
                return "exists"
            message = outcome_for_exception(exc, self.call_timeout).message
            _log(logging.WARNING, rollout, fact, "error", message)
            return "error"
        self._remember(fact.name)
        _log(logging.INFO, rollout, fact, "created", "")
        return "created"

    def _notify(
        self,
        rollout: Mapping[str, Any],
        fact: Fact,
        objects: Sequence[FluxObject],
        now: datetime,
        deadline: float,
    ) -> bool:
        """POST the fact for each driven object; True when every one was delivered."""
        assert self.flux_address is not None
        delivered = True
        for obj in objects:
            key = f"flux/{fact.name}/{obj.kind}/{obj.name}"
            if self._known(key):
                continue
            if self._clock() + self.call_timeout > deadline:
                metrics.announcement("flux", "skipped")
                delivered = False
                continue
            payload = orjson.dumps(flux_event(rollout, fact, obj, self.instance))
            try:
                response = self._flux().post(
                    self.flux_address, content=payload, headers={"Content-Type": "application/json"}
                )
                # 202 accepted; 429: a duplicate of an event it already accepted (its rate limit)
                ok = response.status_code in (200, 202, 429)
                reason = f"HTTP {response.status_code}"
            except httpx2.HTTPError as exc:
                ok, reason = False, type(exc).__name__
            metrics.announcement("flux", "delivered" if ok else "error")
            if ok:
                self._remember(key)
            else:
                delivered = False
                _log(logging.WARNING, rollout, fact, "flux-error", f"{obj.kind}/{obj.name}: {reason}")
        return delivered


def _status_code(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _log(level: int, rollout: Mapping[str, Any], fact: Fact, result: str, message: str) -> None:
    md = rollout["metadata"]
    record = {
        "namespace": md.get("namespace"),
        "rollout": md.get("name"),
        "event": fact.name,
        "reason": fact.reason,
        "result": result,
    }
    if message:
        record["message"] = message
    log.log(
        level,
        "announce %s %s/%s: %s",
        fact.reason,
        md.get("namespace"),
        md.get("name"),
        result,
        extra={"fields": {"announcement": record}},
    )


def persisted(req: Any, ctx: Any) -> float | None:
    """The sync hook's one call (docs/events-and-metrics.md): announce what the PERSISTED status records.

    `req` is the parsed hook request (its parent is the Rollout as Metacontroller persisted
    it); `ctx.announcer` may be absent (tests, other actuators). Returns the seconds until
    pending facts are due for another try, or None."""
    announcer = getattr(ctx, "announcer", None)
    rollout = getattr(req, "parent", None)
    if announcer is None or not isinstance(rollout, Mapping):
        return None
    due = facts_.facts(rollout, ctx.now)
    if not due:
        return None
    related = {kind: req.related_of(kind) for kind in FLUX_KINDS}
    # A request deadline (docs/service.md HOOK_DEADLINE, time.monotonic) is honoured when the context has one.
    deadline = getattr(ctx, "deadline", None)
    deadline = deadline if isinstance(deadline, (int, float)) else None
    outcome = announcer.announce(rollout, due, flux_objects(rollout, related), ctx.now, deadline)
    if outcome.created or outcome.pending:
        ctx.log["announced"] = [f.reason for f in outcome.created]
        ctx.log["announce_pending"] = len(outcome.pending)
    return outcome.retry_after(ctx.now)
