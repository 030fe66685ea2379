"""The Rollout customize hook (docs/scale.md, related selection): which related objects each sync needs.

A function of the spec only: Metacontroller caches the answer per Rollout UID and generation.
With hook version v2 a rule without `namespace` (and without `namespaceSelector`) lists the
whole cluster, so every namespaced rule here names the Rollout's namespace, and HealthChecks in
other namespaces are asked for only in namespaces that opted in (docs/tenancy.md).
Metacontroller converts every label selector before it calls the sync hook and fails the sync
on an invalid one, so a rule whose selector is invalid is left out: the sync then reports
`InvalidSpec` (docs/scale.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hooks.api import kinds
from hooks.k8s import dig, meta, selector_error
from hooks.metacontroller import parse_request, resource_rule
from hooks.rollout.spec import InvalidSpec, parse_health_selector
from hooks.tenancy import with_shared_requirement

IMAGE_POLICIES = kinds.IMAGE_POLICY.coordinates
OCI_REPOSITORIES = kinds.OCI_REPOSITORY.coordinates
KUSTOMIZATIONS = kinds.KUSTOMIZATION.coordinates
ROLLOUT_GATES = kinds.ROLLOUT_GATE.coordinates
HEALTH_CHECKS = kinds.HEALTH_CHECK.coordinates
ROLLOUTS = kinds.ROLLOUT.coordinates
NAMESPACES = kinds.NAMESPACE.coordinates

#: Optional label on driven Flux objects, selected with `targetSelection: Labeled` (docs/scale.md).
DRIVEN_LABEL = "rollout.kuberik.com/driven"
DRIVEN_SELECTOR = {"matchLabels": {DRIVEN_LABEL: "true"}}
TARGET_SELECTION_LABELED = "Labeled"


def flux_rules(namespace: str, target_selection: Any) -> list[dict]:
    """OCIRepositories and Kustomizations of the namespace: all, or only the labelled ones."""
    labeled = target_selection == TARGET_SELECTION_LABELED
    return [
        resource_rule(*kind, namespace=namespace, label_selector=dict(DRIVEN_SELECTOR) if labeled else None)
        for kind in (OCI_REPOSITORIES, KUSTOMIZATIONS)
    ]


def health_check_rules(namespace: str, raw_selector: Any) -> list[dict]:
    """HealthChecks by label in the Rollout's namespace, and in opted-in namespaces it selects.

    The Rollout's own Namespace and the candidate Namespaces come along so the sync can apply
    the namespaceSelector and the opt-in itself (hooks/rollout/health.py `select`).
    """
    try:
        selector = parse_health_selector(raw_selector)
    except InvalidSpec:
        return []  # the sync reports the invalid spec
    if selector.selects_nothing:
        return []
    # parse_health_selector validated both selectors; checked again so no invalid rule can leave.
    if selector_error(selector.selector) or selector_error(selector.namespace_selector):
        return []
    rules = [resource_rule(*HEALTH_CHECKS, namespace=namespace, label_selector=dict(selector.selector or {}))]
    if selector.namespace_selector is not None:
        shared = with_shared_requirement(selector.namespace_selector)
        labels = dict(selector.selector or {})
        rules += [
            resource_rule(*HEALTH_CHECKS, label_selector=labels, namespace_selector=shared),
            resource_rule(*NAMESPACES, names=[namespace]),
            resource_rule(*NAMESPACES, label_selector=shared),
        ]
    return rules


def upstream_rules(namespace: str, promotion: Any) -> list[dict]:
    """The upstream Rollouts of `spec.promotion.from`, by namespace and name (docs/promotion.md)."""
    sources = promotion.get("from") if isinstance(promotion, Mapping) else None
    by_namespace: dict[str, list[str]] = {}
    for source in sources if isinstance(sources, list) else []:
        if not isinstance(source, Mapping) or not isinstance(source.get("name"), str) or not source["name"]:
            continue
        source_ns = source.get("namespace")
        source_ns = source_ns if isinstance(source_ns, str) and source_ns else namespace
        names = by_namespace.setdefault(source_ns, [])
        if source["name"] not in names:
            names.append(source["name"])
    rules = [resource_rule(*ROLLOUTS, namespace=ns, names=n) for ns, n in sorted(by_namespace.items())]
    if any(ns != namespace for ns in by_namespace):
        # An upstream's exportTo.namespaceSelector is matched against this Rollout's Namespace.
        rules.append(resource_rule(*NAMESPACES, names=[namespace]))
    return rules


def related_rules(rollout: dict) -> list[dict]:
    """Every rule is namespaced or by name: nothing here spans the cluster."""
    namespace = meta(rollout).get("namespace")
    if not isinstance(namespace, str) or not namespace:
        return []  # an empty namespace would make every rule span the cluster
    rules = []
    policy = dig(rollout, "spec", "releasesImagePolicy", "name")
    if isinstance(policy, str) and policy:
        rules.append(resource_rule(*IMAGE_POLICIES, namespace=namespace, names=[policy]))
    rules += flux_rules(namespace, dig(rollout, "spec", "targetSelection"))
    rules.append(resource_rule(*ROLLOUT_GATES, namespace=namespace))
    rules += health_check_rules(namespace, dig(rollout, "spec", "healthCheckSelector"))
    rules += upstream_rules(namespace, dig(rollout, "spec", "promotion"))
    return _unique(rules)


def _unique(rules: list[dict]) -> list[dict]:
    seen: list[dict] = []
    for rule in rules:
        if rule not in seen:
            seen.append(rule)
    return seen


def customize(body: Any, ctx: Any) -> dict:
    """POST /rollout/customize."""
    req = parse_request(body)
    ctx.log["object"] = f"{meta(req.parent).get('namespace', '')}/{meta(req.parent).get('name')}"
    return {"relatedResources": related_rules(req.parent)}
