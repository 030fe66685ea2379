"""A small Metacontroller (v4, hook version v2) for the system test.

It reads the CompositeController and DecoratorController objects of metacontroller/*.yaml and
does, over HTTP against the real service, what Metacontroller does for them:

- calls the customize hook once per parent (uid, generation), as Metacontroller caches it;
- selects the related objects per returned rule as Metacontroller v2 does
  (pkg/controller/common/customize: `names` with an optional `namespace`, a `labelSelector`
  with a `namespace`, a `labelSelector` over all namespaces, or a `namespaceSelector`);
- POSTs the v2 sync request (`parent` / `object`, `children` / `attachments`, `related` keyed
  `<Kind>.<apiVersion>` then `<namespace>/<name>`) with the endpoint's bearer token;
- Composite: injects `observedGeneration` and replaces the whole status (AtomicStatusUpdate:
  re-read, compare, write - even when the hook saw an older copy). Decorator: a `null` status
  leaves it alone; otherwise UpdateStatus with the copy's resourceVersion (a conflict is
  dropped, the next sync retries);
- resyncs a parent `resyncAfterSeconds` after a sync (real time) and whenever the parent or a
  related object matching its rules changes; a failed hook call is retried with a backoff;
- now and then syncs from a stale informer copy: the parent as it was before the last status
  write, as a lagging watch delivers it.
"""

from __future__ import annotations

import copy
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.system.cluster import KINDS, Cluster, Conflict, key_of, kind_of, rest_path

Key = tuple[str, str, str]  # kind, namespace, name


@dataclass(frozen=True)
class ControllerConfig:
    """What the emulator needs of one Metacontroller object."""

    kind: str  # CompositeController | DecoratorController
    name: str
    parent_kind: str
    customize_path: str
    sync_path: str
    timeout: float
    resync_period: float
    raw: dict

    @classmethod
    def from_object(cls, obj: dict) -> ControllerConfig:
        spec = obj["spec"]
        if obj["kind"] == "CompositeController":
            parent = spec["parentResource"]
        else:
            (parent,) = spec["resources"]  # the repository's decorators watch one resource
        hooks = spec["hooks"]
        for hook in ("customize", "sync"):
            assert hooks[hook]["version"] == "v2", f"{obj['metadata']['name']}: {hook} is not a v2 hook"
        timeout = hooks["sync"]["webhook"].get("timeout", "10s")
        return cls(
            kind=obj["kind"],
            name=obj["metadata"]["name"],
            parent_kind=kind_of(parent["apiVersion"], parent["resource"]),
            customize_path=urlsplit(hooks["customize"]["webhook"]["url"]).path,
            sync_path=urlsplit(hooks["sync"]["webhook"]["url"]).path,
            timeout=float(timeout.rstrip("s")),
            resync_period=float(spec.get("resyncPeriodSeconds", 0)),
            raw=obj,
        )


def load_controllers(directory: Path, names: set[str]) -> list[ControllerConfig]:
    found = []
    for path in sorted(directory.glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            is_controller = obj and obj.get("kind") in ("CompositeController", "DecoratorController")
            if is_controller and obj["metadata"]["name"] in names:
                found.append(ControllerConfig.from_object(obj))
    assert {c.name for c in found} == names, f"controllers missing in {directory}"
    return found


def selector_matches(selector: dict, labels: dict[str, str]) -> bool:
    """apimachinery's LabelSelectorAsSelector(...).Matches, written here on purpose.

    The emulator must not borrow the product's matcher: a bug there would be mirrored, not found.
    """
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise AssertionError(f"invalid label selector operator {operator!r}")
    return True


def _group_key(kind: str) -> str:
    return f"{kind}.{KINDS[kind][0]}"


def _object_key(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


@dataclass
class HookCall:
    """One hook request the emulator sent, and what came back."""

    controller: str
    path: str
    parent: Key
    status: int
    seconds: float
    stale: bool = False
    error: str | None = None


@dataclass
class Metacontroller:
    cluster: Cluster
    base_url: str
    token: str
    controllers: list[ControllerConfig]
    #: fraction of syncs served from a stale informer copy (seeded: runs are reproducible).
    stale_rate: float = 0.2
    seed: int = 14
    calls: list[HookCall] = field(default_factory=list)
    _customized: dict[tuple[str, str, int], list[dict]] = field(default_factory=dict)
    _rules: dict[tuple[str, Key], list[dict]] = field(default_factory=dict)
    _due: dict[tuple[str, Key], float] = field(default_factory=dict)
    _before_write: dict[Key, dict] = field(default_factory=dict)
    _seen: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    # --- the work queue ------------------------------------------------------------------

    def enqueue(self, controller: ControllerConfig, parent: Key, at: float | None = None) -> None:
        when = time.monotonic() if at is None else at
        slot = (controller.name, parent)
        if slot not in self._due or when < self._due[slot]:
            self._due[slot] = when

    def _watch(self) -> None:
        """Turn changed objects into queued syncs, as Metacontroller's informers do."""
        versions = self.cluster.versions()
        changed = {path for path, rv in versions.items() if self._seen.get(path) != rv}
        self._seen = versions
        if not changed:
            return
        with self.cluster._lock:
            objects = [copy.deepcopy(self.cluster.objects[p]) for p in changed if p in self.cluster.objects]
        for controller in self.controllers:
            for parent in self.cluster.list(controller.parent_kind):
                pkey = key_of(parent)
                rules = self._rules.get((controller.name, pkey))
                for obj in objects:
                    if key_of(obj) == pkey or (rules is not None and self._related_match(parent, obj, rules)):
                        self.enqueue(controller, pkey)
                        break

    def run_once(self) -> int:
        """Watch, then run every sync that is due. Returns how many syncs ran."""
        self._watch()
        now = time.monotonic()
        due = sorted((when, slot) for slot, when in self._due.items() if when <= now)
        for _, slot in due:
            del self._due[slot]
            controller = next(c for c in self.controllers if c.name == slot[0])
            self._sync(controller, slot[1])
        return len(due)

    # --- one sync ------------------------------------------------------------------------

    def _sync(self, controller: ControllerConfig, pkey: Key) -> None:
        kind, namespace, name = pkey
        fresh = self.cluster.get(kind, namespace or None, name)
        if fresh is None:
            return
        parent, stale = fresh, False
        older = self._before_write.get(pkey)
        if older is not None and self._random.random() < self.stale_rate:
            parent, stale = copy.deepcopy(older), True  # a watch that has not delivered our last write
        rules = self._customize(controller, parent, pkey)
        if rules is None:
            return
        self._rules[(controller.name, pkey)] = rules
        body: dict[str, Any] = {
            "controller": controller.raw,
            "related": self._related(parent, rules),
            "finalizing": False,
        }
        if controller.kind == "CompositeController":
            body.update(parent=parent, children={})
        else:
            body.update(object=parent, attachments={})
        answer = self._call(controller, controller.sync_path, pkey, body, stale)
        if answer is None:
            return
        resync = float(answer.get("resyncAfterSeconds") or 0)
        if controller.kind == "CompositeController":
            assert answer.get("children") == [], (
                f"{controller.name} returned children {answer.get('children')}"
            )
            self._write_composite_status(pkey, parent, answer.get("status"))
        else:
            assert answer.get("attachments") in ([], None), f"{controller.name} returned attachments"
            self._write_decorator_status(pkey, parent, answer.get("status"))
        if stale:
            # The lagging watch delivers the fresh object a moment later: one more sync.
            self.enqueue(controller, pkey, time.monotonic() + 0.1)
        if resync > 0:
            self.enqueue(controller, pkey, time.monotonic() + resync)
        elif controller.resync_period > 0:
            self.enqueue(controller, pkey, time.monotonic() + controller.resync_period)

    def _customize(self, controller: ControllerConfig, parent: dict, pkey: Key) -> list[dict] | None:
        meta = parent["metadata"]
        cache_key = (controller.name, meta["uid"], int(meta.get("generation", 0)))
        if cache_key not in self._customized:
            body = {"controller": controller.raw, "parent": parent}
            answer = self._call(controller, controller.customize_path, pkey, body, False)
            if answer is None:
                return None
            self._customized[cache_key] = list(answer.get("relatedResources") or [])
        return self._customized[cache_key]

    def _call(
        self, controller: ControllerConfig, path: str, pkey: Key, body: dict, stale: bool
    ) -> dict | None:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=controller.timeout) as response:
                answer = json.loads(response.read())
                code = response.status
            error = None
        except urllib.error.HTTPError as exc:
            answer, code, error = None, exc.code, exc.read().decode(errors="replace")
        except OSError as exc:
            answer, code, error = None, 0, f"{type(exc).__name__}: {exc}"
        self.calls.append(
            HookCall(controller.name, path, pkey, code, time.monotonic() - started, stale, error)
        )
        if answer is None:
            self.enqueue(controller, pkey, time.monotonic() + 0.5)  # rate-limited requeue
        return answer

    # --- related objects (Metacontroller v2 selection) -----------------------------------

    def _related(self, parent: dict, rules: list[dict]) -> dict[str, dict[str, dict]]:
        related: dict[str, dict[str, dict]] = {}
        for rule in rules:
            kind = kind_of(rule["apiVersion"], rule["resource"])
            group = related.setdefault(_group_key(kind), {})
            for obj in self.cluster.list(kind):
                if self._rule_matches(rule, obj):
                    group[_object_key(obj)] = obj
        return related

    def _related_match(self, parent: dict, obj: dict, rules: list[dict]) -> bool:
        for rule in rules:
            if kind_of(rule["apiVersion"], rule["resource"]) == obj["kind"] and self._rule_matches(rule, obj):
                return True
        return False

    def _rule_matches(self, rule: dict, obj: dict) -> bool:
        kind = kind_of(rule["apiVersion"], rule["resource"])
        namespaced = KINDS[kind][2]
        meta = obj["metadata"]
        labels = meta.get("labels") or {}
        names, namespace = rule.get("names") or [], rule.get("namespace") or ""
        label_selector, namespace_selector = rule.get("labelSelector"), rule.get("namespaceSelector")
        if names and (label_selector is not None or namespace_selector is not None):
            raise AssertionError(f"invalid related rule (names with a selector): {rule}")
        if namespace and namespace_selector is not None:
            raise AssertionError(f"invalid related rule (namespace with a namespaceSelector): {rule}")
        if namespace_selector is not None:
            assert namespaced, f"namespaceSelector on a cluster-scoped resource: {rule}"
            ns = self.cluster.get("Namespace", None, meta["namespace"])
            return (
                ns is not None
                and selector_matches(label_selector or {}, labels)
                and selector_matches(namespace_selector, ns["metadata"].get("labels") or {})
            )
        if label_selector is not None:
            if namespace and namespaced and meta.get("namespace") != namespace:
                return False
            return selector_matches(label_selector, labels)
        if namespace and namespaced and meta.get("namespace") != namespace:
            return False
        return not names or meta["name"] in names

    # --- status writes -------------------------------------------------------------------

    def _write_composite_status(self, pkey: Key, seen: dict, status: Any) -> None:
        assert isinstance(status, dict), f"composite status must be an object, got {status!r}"
        status = dict(status, observedGeneration=seen["metadata"].get("generation"))
        kind, namespace, name = pkey
        before = self.cluster.get(kind, namespace or None, name)
        assert before is not None
        if before.get("status") == status:
            return
        # AtomicStatusUpdate: the fresh object gets the status computed from what the hook saw.
        self.cluster.mutate(kind, namespace or None, name, lambda obj: obj.__setitem__("status", status))
        self._before_write[pkey] = before

    def _write_decorator_status(self, pkey: Key, seen: dict, status: Any) -> None:
        if status is None:
            return  # null: leave the status unchanged
        assert isinstance(status, dict), f"decorator status must be an object or null, got {status!r}"
        kind, namespace, name = pkey
        before = self.cluster.get(kind, namespace or None, name)
        try:
            if self.cluster.update_status(seen, status) and before is not None:
                self._before_write[pkey] = before
        except Conflict:
            pass  # Metacontroller ignores the conflict; the newer copy's event syncs again

    # --- helpers for tests ---------------------------------------------------------------

    def errors(self) -> list[HookCall]:
        return [call for call in self.calls if call.status != 200]


def path_of(key: Key) -> str:
    return rest_path(key[0], key[1] or None, key[2])
