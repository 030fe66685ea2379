"""How Metacontroller (v4.15+, hook version v2) turns customize rules into a sync's `related` map.

Written from metacontroller/pkg/controller/common/customize/manager.go (`determineSelectionType`,
`GetRelatedObjects`) and common/api/v2 (`UniformObjectMap`), so the request-size tests measure
what Metacontroller would really send:

- `names` with a `labelSelector` or `namespaceSelector`, or `namespace` with a
  `namespaceSelector`, is an invalid rule: the sync fails before the hook is called;
- `namespaceSelector` (+ optional `labelSelector`): objects of every Namespace the selector
  matches (namespaced resources only);
- `labelSelector` + `namespace`: that namespace; `labelSelector` alone (or no selector, no
  namespace, no names): **every namespace** with v2 hooks;
- `namespace` and/or `names`: that namespace (every namespace when unset), filtered by name;
- a label selector Kubernetes would not convert fails the sync;
- the map is keyed `<Kind>.<group>/<version>` (`<Kind>.<version>` for the core group), then
  `<namespace>/<name>` (`<name>` for cluster-scoped objects); duplicates collapse.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hooks.k8s import selector_error

#: (apiVersion, resource) -> (kind, namespaced), as discovery would answer.
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("kuberik.com/v1alpha1", "rollouts"): ("Rollout", True),
    ("kuberik.com/v1alpha1", "healthchecks"): ("HealthCheck", True),
    ("kuberik.com/v1alpha1", "rolloutgates"): ("RolloutGate", True),
    ("image.toolkit.fluxcd.io/v1", "imagepolicies"): ("ImagePolicy", True),
    ("source.toolkit.fluxcd.io/v1", "ocirepositories"): ("OCIRepository", True),
    ("kustomize.toolkit.fluxcd.io/v1", "kustomizations"): ("Kustomization", True),
    ("v1", "namespaces"): ("Namespace", False),
}


class SyncFails(Exception):
    """Metacontroller would fail the sync before calling the hook (the reason is the message)."""


def group_key(api_version: str, kind: str) -> str:
    return f"{kind}.{api_version}"


def object_key(obj: Mapping) -> str:
    md = obj["metadata"]
    return f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"]


@dataclass
class Cluster:
    """Objects as Metacontroller's informers hold them (indexed by kind, like one informer each)."""

    objects: list[dict] = field(default_factory=list)
    _by_kind: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    _by_namespace: dict[tuple[str, str, str], list[dict]] = field(default_factory=dict)
    #: answers per rule: many parents ask the same question (the objects are not copied)
    _answers: dict[str, list[dict]] = field(default_factory=dict)

    def add(self, *objs: dict) -> None:
        self.objects.extend(objs)
        self._answers.clear()
        for obj in objs:
            self._by_kind.setdefault((obj["apiVersion"], obj["kind"]), []).append(obj)
            ns = obj["metadata"].get("namespace", "")
            self._by_namespace.setdefault((obj["apiVersion"], obj["kind"], ns), []).append(obj)

    def of(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict]:
        """Like an informer's lister: every object, or those of one namespace (its index)."""
        if namespace is None:
            return self._by_kind.get((api_version, kind), [])
        return self._by_namespace.get((api_version, kind, namespace), [])


def _selector(value: Any) -> Any:
    error = selector_error(value)
    if error:
        raise SyncFails(f"invalid label selector: {error}")
    return value


def _matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """labels.Selector.Matches for an already converted selector (nil or {} selects everything)."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _selection_type(rule: Mapping) -> str:
    has_labels = rule.get("labelSelector") is not None
    has_ns_selector = rule.get("namespaceSelector") is not None
    has_namespace = bool(rule.get("namespace"))
    has_names = bool(rule.get("names"))
    if has_names and (has_labels or has_ns_selector):
        raise SyncFails("related rule cannot have both names and labelSelector/namespaceSelector")
    if has_namespace and has_ns_selector:
        raise SyncFails("related rule cannot have both namespace and namespaceSelector")
    if has_ns_selector:
        return "NamespaceSelector"
    if has_labels and has_namespace:
        return "NamespaceAndLabels"
    if has_namespace or has_names:
        return "NamespacesAndNames"
    return "Labels"


def select(cluster: Cluster, rule: Mapping) -> list[dict]:
    """The objects one rule selects (GetRelatedObjects for one RelatedResourceRule)."""
    memo = json.dumps(rule, sort_keys=True)
    if memo in cluster._answers:
        return cluster._answers[memo]
    api_version, resource = rule["apiVersion"], rule["resource"]
    if (api_version, resource) not in RESOURCES:
        raise SyncFails(f"unknown related resource {resource} in {api_version}")
    kind, namespaced = RESOURCES[(api_version, resource)]
    selection = _selection_type(rule)

    def labels(obj: Mapping) -> Mapping[str, str]:
        return obj["metadata"].get("labels") or {}

    namespace = rule.get("namespace") if namespaced else None
    if selection == "Labels":
        selector = _selector(rule.get("labelSelector"))
        chosen = [o for o in cluster.of(api_version, kind) if _matches(selector, labels(o))]
    elif selection == "NamespaceAndLabels":
        selector = _selector(rule["labelSelector"])
        chosen = [o for o in cluster.of(api_version, kind, namespace) if _matches(selector, labels(o))]
    elif selection == "NamespaceSelector":
        if not namespaced:
            raise SyncFails("namespaceSelector is only supported for namespaced related resources")
        ns_selector = _selector(rule["namespaceSelector"])
        selector = _selector(rule.get("labelSelector"))
        chosen = []
        for ns in cluster.of("v1", "Namespace"):
            if _matches(ns_selector, labels(ns)):
                objs = cluster.of(api_version, kind, ns["metadata"]["name"])
                chosen += [o for o in objs if _matches(selector, labels(o))]
    else:
        names = rule.get("names") or []
        candidates = cluster.of(api_version, kind, namespace or None)
        chosen = [o for o in candidates if not names or o["metadata"]["name"] in names]
    cluster._answers[memo] = chosen
    return chosen


def related(cluster: Cluster, rules: Iterable[Mapping]) -> dict[str, dict[str, dict]]:
    """The `related` map of a v2 sync request for these customize rules."""
    out: dict[str, dict[str, dict]] = {}
    for rule in rules:
        kind, _ = RESOURCES.get((rule["apiVersion"], rule["resource"]), ("", False))
        chosen = select(cluster, rule)
        group = out.setdefault(group_key(rule["apiVersion"], kind), {})
        for obj in chosen:
            group[object_key(obj)] = obj
    return out


_SIZES: dict[int, tuple[Any, int]] = {}


def _size(value: Any) -> int:
    """Bytes of `value` as compact JSON; whole objects of the cluster are measured once."""
    if isinstance(value, dict) and "metadata" in value and "kind" in value:
        cached = _SIZES.get(id(value))
        if cached is not None and cached[0] is value:
            return cached[1]
        size = len(json.dumps(value, separators=(",", ":")).encode())
        _SIZES[id(value)] = (value, size)
        return size
    if isinstance(value, dict):
        items = [len(json.dumps(str(k)).encode()) + 1 + _size(v) for k, v in value.items()]
        return 2 + sum(items) + max(len(items) - 1, 0)
    if isinstance(value, list):
        return 2 + sum(_size(v) for v in value) + max(len(value) - 1, 0)
    return len(json.dumps(value).encode())


def request_bytes(body: Mapping) -> int:
    """Size of the JSON body Metacontroller would POST (compact, as Go's encoding/json writes it)."""
    return _size(body)
