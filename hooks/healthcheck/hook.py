"""Metacontroller DecoratorController hooks for HealthChecks (hook version v2).

What they do: docs/spec/v1alpha1/healthcheck.md.

Thin: read the request, call the pure modules, build the response.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from hooks import tenancy
from hooks.api import kinds
from hooks.healthcheck import kustomization, prometheus
from hooks.healthcheck.reset import latest_cutoff, needs_reset, reset_status
from hooks.healthcheck.selection import foreign_namespace_refused, object_key, selecting_rollouts
from hooks.healthcheck.status import apply_verdict, current
from hooks.k8s import dig, meta
from hooks.metacontroller import HookRequest, decorator_response, parse_request, resource_rule

ROLLOUTS = kinds.ROLLOUT.coordinates
NAMESPACES = kinds.NAMESPACE.coordinates
KUSTOMIZATIONS = kinds.KUSTOMIZATION.coordinates
OCI_REPOSITORIES = kinds.OCI_REPOSITORY.coordinates


#: Rollouts of other namespaces that select HealthChecks there (docs/tenancy.md).
CROSS_NAMESPACE_SELECTOR = {"matchLabels": {tenancy.CROSS_NAMESPACE_HEALTH_LABEL: tenancy.OPT_IN_VALUE}}


def related_rules(check: dict) -> list[dict]:
    """What the sync needs, from the HealthCheck's own spec and metadata only.

    Rollouts of the check's namespace, plus the Rollouts anywhere that carry the
    cross-namespace label: never every Rollout of the cluster (a v2 rule without `namespace`
    spans the cluster, so the label is what keeps the request small; docs/scale.md).
    The Namespace objects tell the sync which namespaces opted in.
    """
    namespace = object_key(check)[0]
    if not namespace:
        return []  # an empty namespace would make the rules span the cluster
    rules = [
        resource_rule(*ROLLOUTS, namespace=namespace),
        resource_rule(*ROLLOUTS, label_selector=dict(CROSS_NAMESPACE_SELECTOR)),
    ]
    kustomization_ref: tuple[str, str] | None = None
    if dig(check, "spec", "class") == kustomization.CLASS:
        with contextlib.suppress(kustomization.BadReference):  # the sync reports a bad annotation
            kustomization_ref = kustomization.kustomization_ref(check)
    namespace_names = [namespace]
    if kustomization_ref is not None and kustomization_ref[0] != namespace:
        namespace_names.append(kustomization_ref[0])  # did it opt in? (docs/tenancy.md)
    rules.append(resource_rule(*NAMESPACES, names=namespace_names))
    if kustomization_ref is not None:
        ks_namespace, ks_name = kustomization_ref
        rules.append(resource_rule(*KUSTOMIZATIONS, namespace=ks_namespace, names=[ks_name]))
        rules.append(resource_rule(*OCI_REPOSITORIES, namespace=ks_namespace))
    return rules


def with_observed_generation(status: dict, check: dict) -> dict:
    """Stamp the generation the status was computed for (Metacontroller does this only for
    CompositeController parents, not for a DecoratorController's targets)."""
    generation = meta(check).get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool):
        return {**status, "observedGeneration": generation}
    return status


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
        verdict = kustomization_verdict(check, request, rollouts)
        status = apply_verdict(status, verdict, now, cutoff)
        ctx.log.update(decision="reset+assess" if reset else "assess", status=status["status"])
        return decorator_response(with_observed_generation(status, check))
    if check_class == prometheus.CLASS:
        status, resync = prometheus.sync_status(
            check, status, reset, rollouts, cutoff, now, ctx.prometheus, ctx.log
        )
        ctx.log.update(decision="reset+assess" if reset else "assess", status=status["status"])
        return decorator_response(with_observed_generation(status, check), resync)
    ctx.log.update(decision="reset" if reset else "untouched")
    return decorator_response(with_observed_generation(status, check) if reset else None)


def kustomization_verdict(
    check: dict, request: HookRequest, rollouts: list[Mapping]
) -> kustomization.Verdict:
    """The Kustomization's verdict; one of another namespace only where that namespace opted in,
    so nothing of a namespace that did not is copied into this status (docs/tenancy.md)."""
    try:
        ks_namespace, ks_name = kustomization.kustomization_ref(check)
    except kustomization.BadReference as exc:
        return kustomization.Verdict(kustomization.UNHEALTHY, str(exc))
    refused = foreign_namespace_refused(ks_namespace, check, request.related_of("Namespace"))
    if refused:
        return kustomization.Verdict(
            kustomization.UNHEALTHY, f"Kustomization {ks_namespace}/{ks_name}: {refused}"
        )
    return kustomization.health(
        check, request.related_of("Kustomization"), request.related_of("OCIRepository"), rollouts
    )
