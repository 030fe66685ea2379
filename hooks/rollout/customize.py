"""The Rollout customize hook (SPEC §5.1): which related objects each sync needs.

A function of the spec only. Metacontroller caches the answer per Rollout generation and
lists namespaced related objects in the Rollout's own namespace unless a rule carries a
namespaceSelector. A rule never combines `names` with a label selector.
"""

from __future__ import annotations

from typing import Any

from hooks.k8s import dig, meta
from hooks.metacontroller import parse_request, resource_rule
from hooks.rollout.spec import InvalidSpec, parse_health_selector

IMAGE_POLICIES = ("image.toolkit.fluxcd.io/v1", "imagepolicies")
OCI_REPOSITORIES = ("source.toolkit.fluxcd.io/v1", "ocirepositories")
KUSTOMIZATIONS = ("kustomize.toolkit.fluxcd.io/v1", "kustomizations")
ROLLOUT_GATES = ("kuberik.com/v1alpha1", "rolloutgates")
HEALTH_CHECKS = ("kuberik.com/v1alpha1", "healthchecks")


def related_rules(rollout: dict) -> list[dict]:
    namespace = str(meta(rollout).get("namespace", ""))
    rules = []
    policy = dig(rollout, "spec", "releasesImagePolicy", "name")
    if isinstance(policy, str) and policy:
        rules.append(resource_rule(*IMAGE_POLICIES, namespace=namespace, names=[policy]))
    for api_version, resource in (OCI_REPOSITORIES, KUSTOMIZATIONS, ROLLOUT_GATES):
        rules.append(resource_rule(api_version, resource, namespace=namespace))
    try:
        selector = parse_health_selector(dig(rollout, "spec", "healthCheckSelector"))
    except InvalidSpec:
        return rules  # the sync reports the invalid spec
    if not selector.selects_nothing:
        rules.append(
            resource_rule(
                *HEALTH_CHECKS,
                label_selector=selector.selector,
                namespace_selector=selector.namespace_selector,
            )
        )
    return rules


def customize(body: Any, ctx: Any) -> dict:
    """POST /rollout/customize."""
    req = parse_request(body)
    ctx.log["object"] = f"{meta(req.parent).get('namespace', '')}/{meta(req.parent).get('name')}"
    return {"relatedResources": related_rules(req.parent)}
