"""Metacontroller DecoratorController hooks for HealthChecks (SPEC §5.2, hook version v2).

Thin: read the request, call the pure modules, build the response.
"""

from __future__ import annotations

from typing import Any

from hooks.healthcheck import kustomization, prometheus
from hooks.healthcheck.reset import latest_cutoff, needs_reset, reset_status
from hooks.healthcheck.selection import object_key, selecting_rollouts
from hooks.healthcheck.status import apply_verdict, current
from hooks.k8s import dig
from hooks.metacontroller import decorator_response, parse_request, resource_rule

ROLLOUTS = ("kuberik.com/v1alpha1", "rollouts")
NAMESPACES = ("v1", "namespaces")
KUSTOMIZATIONS = ("kustomize.toolkit.fluxcd.io/v1", "kustomizations")
OCI_REPOSITORIES = ("source.toolkit.fluxcd.io/v1", "ocirepositories")


def related_rules(check: dict) -> list[dict]:
    """What the sync needs, from the HealthCheck's own spec and metadata only.

    Rollouts of every namespace: a Rollout elsewhere may select this check through its
    namespaceSelector. `namespaceSelector: {}` asks Metacontroller for all namespaces
    (a plain label selector is limited to the parent's namespace by v1 hooks).
    """
    namespace = object_key(check)[0]
    rules = [resource_rule(*ROLLOUTS, label_selector={}, namespace_selector={})]
    if namespace:
        rules.append(resource_rule(*NAMESPACES, names=[namespace]))
    if dig(check, "spec", "class") == kustomization.CLASS:
        try:
            ks_namespace, ks_name = kustomization.kustomization_ref(check)
        except kustomization.BadReference:
            return rules  # the sync reports the bad annotation
        rules.append(resource_rule(*KUSTOMIZATIONS, namespace=ks_namespace, names=[ks_name]))
        rules.append(resource_rule(*OCI_REPOSITORIES, namespace=ks_namespace))
    return rules


def customize(body: Any, ctx: Any) -> dict:
    request = parse_request(body)
    return {"relatedResources": related_rules(request.parent)}


def sync(body: Any, ctx: Any) -> dict:
    request = parse_request(body)
    check = request.parent
    namespace, name = object_key(check)
    check_class = dig(check, "spec", "class")
    ctx.log.update(object=f"{namespace}/{name}", kind="HealthCheck", healthcheck_class=check_class)

    status = current(check.get("status"))
    rollouts = selecting_rollouts(request.related_of("Rollout"), check, request.related_of("Namespace"))
    cutoff = latest_cutoff(rollouts)
    # Never stamp a change before a deployment already seen: with a clock behind the one
    # that recorded the deployment, each sync would reset again and loop until it caught up.
    now = max(ctx.now, cutoff) if cutoff is not None else ctx.now
    reset = needs_reset(status, cutoff)
    if reset:
        status = reset_status(status, now)

    if check_class == kustomization.CLASS:
        # Evaluated in the same sync as a reset, so the answer is a fixed point: the next
        # sync (no longer resetting) would otherwise move straight on to this verdict.
        verdict = kustomization.health(
            check,
            request.related_of("Kustomization"),
            request.related_of("OCIRepository"),
            rollouts,
        )
        status = apply_verdict(status, verdict, now, cutoff)
        ctx.log.update(decision="reset+assess" if reset else "assess", status=status["status"])
        return decorator_response(status)
    if check_class == prometheus.CLASS:
        status, resync = prometheus.sync_status(
            check, status, reset, rollouts, cutoff, now, ctx.prometheus, ctx.log
        )
        ctx.log.update(decision="reset+assess" if reset else "assess", status=status["status"])
        return decorator_response(status, resync)
    ctx.log.update(decision="reset" if reset else "untouched")
    return decorator_response(status if reset else None)
