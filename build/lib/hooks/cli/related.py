"""Build a hook request the way Metacontroller does: the customize rules, then the related objects.

The rules come from the hook's own customize function; this module only does Metacontroller's
part: select the objects each rule names (from the cluster, or from files for `plan`) and key
them as a v2 request does, `<Kind>.<apiVersion>` then `<namespace>/<name>` (bare `<name>` for
cluster-scoped objects).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from hooks.cli.kube import KINDS, Kind, kind_for_rule
from hooks.k8s import labels_of, meta, selector_matches


class Lister(Protocol):
    def list(
        self, kind: str, namespace: str | None, selector: Mapping[str, Any] | None = None
    ) -> list[dict]: ...

    def get(self, kind: str, name: str, namespace: str | None = None, *, missing_ok: bool = False) -> Any: ...


def object_key(obj: Mapping) -> str:
    md = meta(obj)
    namespace = md.get("namespace")
    return f"{namespace}/{md.get('name')}" if namespace else str(md.get("name"))


def group_key(kind: Kind) -> str:
    return f"{kind.kind}.{kind.api_version}"


def _add(related: dict[str, dict[str, dict]], kind: Kind, objects: Iterable[dict]) -> None:
    bucket = related.setdefault(group_key(kind), {})
    for obj in objects:
        bucket[object_key(obj)] = obj


def _rule_namespaces(
    rule: Mapping, kind: Kind, parent_ns: str | None, namespaces: list[dict]
) -> list[str] | None:
    """The namespaces a rule spans; None means every namespace."""
    if not kind.namespaced:
        return None
    if rule.get("namespace"):
        return [str(rule["namespace"])]
    if rule.get("namespaceSelector") is not None:
        return sorted(
            str(meta(ns).get("name"))
            for ns in namespaces
            if selector_matches(rule["namespaceSelector"], labels_of(ns))
        )
    return [parent_ns] if parent_ns else None


def select_offline(rules: Iterable[Mapping], pool: Iterable[dict], parent_ns: str | None) -> dict[str, dict]:
    """The related map Metacontroller would send, from objects given as files."""
    pool = list(pool)
    namespaces = [o for o in pool if o.get("kind") == "Namespace"]
    related: dict[str, dict[str, dict]] = {}
    for rule in rules:
        kind = kind_for_rule(str(rule.get("apiVersion")), str(rule.get("resource")))
        spans = _rule_namespaces(rule, kind, parent_ns, namespaces)
        names = rule.get("names")
        chosen = []
        for obj in pool:
            if obj.get("kind") != kind.kind:
                continue
            md = meta(obj)
            if spans is not None and md.get("namespace") not in spans:
                continue
            if names is not None and md.get("name") not in names:
                continue
            if rule.get("labelSelector") is not None and not selector_matches(
                rule["labelSelector"], labels_of(obj)
            ):
                continue
            chosen.append(copy.deepcopy(obj))
        _add(related, kind, chosen)
    return related


def list_live(kube: Lister, rules: Iterable[Mapping], parent_ns: str | None) -> dict[str, dict]:
    """The related map Metacontroller would send, listed from the cluster under the user's kubeconfig."""
    related: dict[str, dict[str, dict]] = {}
    for rule in rules:
        kind = kind_for_rule(str(rule.get("apiVersion")), str(rule.get("resource")))
        namespaces: list[dict] = []
        if kind.namespaced and not rule.get("namespace") and rule.get("namespaceSelector") is not None:
            namespaces = kube.list("Namespace", None, rule["namespaceSelector"])
        spans = _rule_namespaces(rule, kind, parent_ns, namespaces)
        names = rule.get("names")
        selector = rule.get("labelSelector")
        chosen: list[dict] = []
        for ns in spans if spans is not None else [None]:
            if names is not None:
                for name in names:
                    obj = kube.get(kind.kind, str(name), ns, missing_ok=True)
                    if obj is not None and (selector is None or selector_matches(selector, labels_of(obj))):
                        chosen.append(obj)
            else:
                chosen.extend(kube.list(kind.kind, ns, selector))
        _add(related, kind, chosen)
    return related


def sync_request(
    parent: dict, related: dict[str, dict], controller: str, children: dict[str, dict] | None = None
) -> dict:
    """A v2 sync request body, as Metacontroller posts it."""
    return {
        "controller": {
            "apiVersion": "metacontroller.k8s.io/v1alpha1",
            "kind": "CompositeController",
            "metadata": {"name": controller},
        },
        "parent": parent,
        "children": children or {},
        "related": related,
        "finalizing": False,
    }


__all__ = ["KINDS", "list_live", "object_key", "select_offline", "sync_request"]
