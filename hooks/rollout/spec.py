"""Read and validate a Rollout's spec (docs/spec/v1alpha1/rollout.md).

The CRD validates new objects; this catches what it cannot (objects stored before a
schema change, hand-made requests) and names the offending field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hooks.k8s import dig, meta, parse_duration, selector_is_empty, validate_selector
from hooks.rollout.bounds import MAX_HISTORY, MAX_RELEASES, cut
from hooks.rollout.ordering import is_oci_tag
from hooks.rollout.promotion import InvalidPromotion, Promotion
from hooks.rollout.promotion import parse as parse_promotion

DEFAULT_HISTORY_LIMIT = 10
DEFAULT_UPDATE_INTERVAL = timedelta(minutes=5)
DEFAULT_RETENTION_DAYS = 7
DEFAULT_MIN_COUNT = 30
ON_BAKE_FAILURE = ("Stop", "Rollback")


class InvalidSpec(ValueError):
    """The spec cannot be acted on; the message names the field."""


@dataclass(frozen=True)
class HealthSelector:
    """Which HealthChecks judge the Rollout; `None` label selector selects nothing."""

    selector: dict | None
    namespace_selector: dict | None

    @property
    def selects_nothing(self) -> bool:
        return self.selector is None


@dataclass(frozen=True)
class RolloutSpec:
    image_policy: str | None  # None: the releases come from spec.promotion.from (docs/promotion.md)
    wanted_version: str | None
    history_limit: int
    update_interval: timedelta
    bake_time: timedelta | None
    deploy_timeout: timedelta | None
    health: HealthSelector
    has_health_selector: bool
    retention_days: int
    min_count: int
    on_bake_failure: str = "Stop"  # Stop | Rollback (docs/operations.md)
    suspend: bool = False  # no automatic deploys (docs/spec/v1alpha1/rollout.md)
    promotion: Promotion | None = None  # upstream Rollouts that verify releases
    promotion_set: bool = False  # spec.promotion present (status.promotion is then reported)

    @property
    def bake_configured(self) -> bool:
        """SPEC: any of bakeTime, deployTimeout, healthCheckSelector set."""
        return self.bake_time is not None or self.deploy_timeout is not None or self.has_health_selector


def _duration(spec: dict, key: str, default: timedelta | None = None) -> timedelta | None:
    value = spec.get(key)
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InvalidSpec(f"spec.{key}: {exc}") from None


def _positive_int(spec: dict, key: str, default: int) -> int:
    value = spec.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidSpec(f"spec.{key}: must be an integer >= 1, got {value!r}")
    return value


def _label_selector(value: Any, field: str) -> dict | None:
    try:
        validate_selector(value)
    except ValueError as exc:
        raise InvalidSpec(f"{field}: {exc}") from None
    return None if selector_is_empty(value) else value


def parse_health_selector(raw: Any) -> HealthSelector:
    """Both historical shapes of healthCheckSelector; mixing them is an error."""
    if raw is None:
        return HealthSelector(None, None)
    field = "spec.healthCheckSelector"
    if not isinstance(raw, dict):
        raise InvalidSpec(f"{field}: must be an object")
    new_shape = "selector" in raw or "namespaceSelector" in raw
    old_shape = "matchLabels" in raw or "matchExpressions" in raw
    if new_shape and old_shape:
        raise InvalidSpec(f"{field}: use either matchLabels/matchExpressions or selector/namespaceSelector")
    if not new_shape:
        return HealthSelector(_label_selector(raw, field), None)
    selector = _label_selector(raw.get("selector"), f"{field}.selector")
    namespace_selector = raw.get("namespaceSelector")
    if namespace_selector is not None:
        _label_selector(namespace_selector, f"{field}.namespaceSelector")
    return HealthSelector(selector, namespace_selector)


def parse_spec(rollout: dict) -> RolloutSpec:
    """Validate and read the spec; raises InvalidSpec naming the field."""
    spec = rollout.get("spec")
    if not isinstance(spec, dict):
        raise InvalidSpec("spec: missing or not an object")
    md = meta(rollout)
    try:
        promo = parse_promotion(spec.get("promotion"), str(md.get("namespace", "")), str(md.get("name", "")))
    except InvalidPromotion as exc:
        raise InvalidSpec(str(exc)) from None
    policy = dig(spec, "releasesImagePolicy", "name")
    if "releasesImagePolicy" in spec and (not isinstance(policy, str) or not policy):
        raise InvalidSpec("spec.releasesImagePolicy.name: required")
    if policy is None and promo is None:
        raise InvalidSpec(
            "spec.releasesImagePolicy.name: required unless spec.promotion.from names an upstream"
        )
    wanted = spec.get("wantedVersion")
    if wanted is not None and not isinstance(wanted, str):
        raise InvalidSpec("spec.wantedVersion: must be a string")
    if wanted and not is_oci_tag(wanted):
        raise InvalidSpec(f"spec.wantedVersion: {cut(wanted, 140)!r} is not a valid OCI tag")
    on_failure = spec.get("onBakeFailure", "Stop")
    if on_failure not in ON_BAKE_FAILURE:
        raise InvalidSpec(f"spec.onBakeFailure: must be Stop or Rollback, got {cut(str(on_failure), 140)!r}")
    suspend = spec.get("suspend", False)
    if not isinstance(suspend, bool):
        raise InvalidSpec("spec.suspend: must be a boolean")
    interval = _duration(spec, "releaseUpdateInterval", DEFAULT_UPDATE_INTERVAL)
    assert interval is not None
    if interval.total_seconds() <= 0:
        raise InvalidSpec("spec.releaseUpdateInterval: must be greater than zero")
    return RolloutSpec(
        image_policy=policy,
        wanted_version=wanted or None,
        # the CRD caps it at 100; objects stored before that are read as 100
        history_limit=min(_positive_int(spec, "versionHistoryLimit", DEFAULT_HISTORY_LIMIT), MAX_HISTORY),
        update_interval=interval,
        bake_time=_duration(spec, "bakeTime"),
        deploy_timeout=_duration(spec, "deployTimeout"),
        health=parse_health_selector(spec.get("healthCheckSelector")),
        has_health_selector=spec.get("healthCheckSelector") is not None,
        retention_days=_positive_int(spec, "availableReleasesRetentionDays", DEFAULT_RETENTION_DAYS),
        min_count=min(_positive_int(spec, "availableReleasesMinCount", DEFAULT_MIN_COUNT), MAX_RELEASES),
        on_bake_failure=on_failure,
        suspend=suspend,
        promotion=promo,
        promotion_set=spec.get("promotion") is not None,
    )
