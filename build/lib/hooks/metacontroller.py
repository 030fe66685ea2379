"""Metacontroller's hook envelope: read requests (v1 and v2 keys), build responses.

A v2 request keys `children` / `related` by `<Kind>.<apiVersion>` and then by
`<namespace>/<name>`; v1 keys the inner map by bare name. We never depend on the inner
keys: objects carry their own metadata, so both formats read the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class BadRequest(ValueError):
    """The body is not a Metacontroller hook request (answered with HTTP 400)."""


def _index(group_map: Any, what: str) -> dict[str, list[dict]]:
    """Flatten `{"Kind.apiVersion": {key: obj}}` into `{Kind: [obj, ...]}`.

    On the hot path (every related object of every sync): exact-type checks first (parsed
    JSON holds plain dicts and strs), the ABC check only for other mappings.
    """
    if group_map is None:
        return {}
    if type(group_map) is not dict and not isinstance(group_map, Mapping):
        raise BadRequest(f"'{what}' must be an object")
    by_kind: dict[str, list[dict]] = {}
    for group_key, objects in group_map.items():
        if objects is None:
            continue
        if type(objects) is not dict and not isinstance(objects, Mapping):
            raise BadRequest(f"'{what}.{group_key}' must be an object")
        default_kind = str(group_key).split(".", 1)[0]
        bucket = by_kind.setdefault(default_kind, [])
        for obj in objects.values():
            if type(obj) is not dict and not isinstance(obj, Mapping):
                continue  # a malformed entry cannot be an object we act on
            kind = obj.get("kind")
            if kind == default_kind or type(kind) is not str:
                bucket.append(obj)  # type: ignore[arg-type]
            else:
                by_kind.setdefault(kind, []).append(obj)  # type: ignore[arg-type]
        if not bucket:
            del by_kind[default_kind]
    return by_kind


@dataclass
class HookRequest:
    """A parsed sync/customize request."""

    parent: dict
    controller: dict = field(default_factory=dict)
    related: dict[str, list[dict]] = field(default_factory=dict)
    children: dict[str, list[dict]] = field(default_factory=dict)
    finalizing: bool = False

    def related_of(self, kind: str) -> list[dict]:
        return self.related.get(kind, [])

    def children_of(self, kind: str) -> list[dict]:
        return self.children.get(kind, [])


def parse_request(body: Any) -> HookRequest:
    """Read a Composite (`parent`) or Decorator (`object`) hook request.

    Raises BadRequest for anything that is not a hook request.
    """
    if not isinstance(body, Mapping):
        raise BadRequest("request body must be a JSON object")
    parent = body.get("parent", body.get("object"))
    if not isinstance(parent, Mapping):
        raise BadRequest("request has no 'parent' (or 'object') object")
    metadata = parent.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        raise BadRequest("parent object has no metadata.name")
    controller = body.get("controller")
    children = body.get("children", body.get("attachments"))
    return HookRequest(
        parent=dict(parent),
        controller=dict(controller) if isinstance(controller, Mapping) else {},
        related=_index(body.get("related"), "related"),
        children=_index(children, "children"),
        finalizing=bool(body.get("finalizing")),
    )


def composite_response(status: dict, resync_after: float, children: list | None = None) -> dict:
    """A CompositeController sync response: exactly status, children, resyncAfterSeconds."""
    return {
        "status": status,
        "children": children if children is not None else [],
        "resyncAfterSeconds": resync_after,
    }


def decorator_response(status: dict | None, resync_after: float = 0) -> dict:
    """A DecoratorController sync response; `status: null` leaves the status alone."""
    response: dict[str, Any] = {"status": status, "attachments": []}
    if resync_after:
        response["resyncAfterSeconds"] = resync_after
    return response


def resource_rule(
    api_version: str,
    resource: str,
    *,
    namespace: str | None = None,
    names: list[str] | None = None,
    label_selector: dict | None = None,
    namespace_selector: dict | None = None,
) -> dict:
    """One `relatedResources` rule of a customize response."""
    rule: dict[str, Any] = {"apiVersion": api_version, "resource": resource}
    if namespace is not None:
        rule["namespace"] = namespace
    if names is not None:
        rule["names"] = names
    if label_selector is not None:
        rule["labelSelector"] = label_selector
    if namespace_selector is not None:
        rule["namespaceSelector"] = namespace_selector
    return rule
