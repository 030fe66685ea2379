"""Health of a `class: prometheus` HealthCheck, judged from a PromQL query (docs/prometheus.md).

Pure except for the one query a sync runs through the `Querier` port (promclient.Querier in
the service, a fake in some tests). The status changes only when the verdict changes: every
message is a fixed text (never a measured value), and `failingSince` / `queryErrorSince` are
written once, when a failure or an outage begins. See docs/prometheus.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from hooks.healthcheck.promclient import Answer, Outcome, QueryError
from hooks.healthcheck.revision import deployed_tag
from hooks.healthcheck.selection import object_key
from hooks.k8s import dig, format_time, parse_duration, parse_time

CLASS = "prometheus"
HEALTHY, UNHEALTHY, PENDING = "Healthy", "Unhealthy", "Pending"
NO_DATA_VERDICTS = (PENDING, HEALTHY, UNHEALTHY)

#: Status fields only this class writes (the reset removes them, docs/spec/v1alpha1/healthcheck.md).
FAILING_SINCE, QUERY_ERROR_SINCE = "failingSince", "queryErrorSince"
OWN_FIELDS = (FAILING_SINCE, QUERY_ERROR_SINCE)

DEFAULT_INTERVAL, DEFAULT_FOR, DEFAULT_TOLERANCE = "30s", "0s", "5m"
#: The range of `${window}`: whole minutes since the deployment, clamped.
WINDOW_MIN, WINDOW_MAX = 1, 60

#: Messages (fixed texts: the status must not follow a moving metric).
MSG_NO_ROLLOUT = "no Rollout selects this check"
MSG_NO_DATA = "query returned no data"
MSG_INVALID = "invalid spec.prometheus: "
MSG_QUERY_FAILING = "Prometheus query failing for longer than "

#: What the CRD allows in spec.prometheus.address: http(s), a host, an optional path; no
#: user:password@ (HealthChecks never carry credentials), no query or fragment.
ADDRESS_PATTERN = r"^https?://[^\s/?#@]+(/[^\s?#@]*)?$"
_ADDRESS = re.compile(ADDRESS_PATTERN)
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_OCI_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Headers a HealthCheck may not set: credentials come from the service's file only.
FORBIDDEN_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "host"})
VARIABLES = ("version", "namespace", "window")


class Querier(Protocol):
    def query(self, address: str, query: str, headers: Mapping[str, str], at: datetime) -> Outcome: ...


class InvalidSpec(ValueError):
    """spec.prometheus cannot be used as written; the message says why."""


@dataclass(frozen=True)
class Spec:
    address: str
    query: str
    min: float | None
    max: float | None
    no_data: str
    interval: timedelta
    for_: timedelta
    for_text: str
    tolerance: timedelta
    tolerance_text: str
    headers: dict[str, str] = field(default_factory=dict)

    def range_text(self) -> str:
        """`(min 1, max 2)`: the fixed part of every message."""
        bounds = [
            f"{name} {_number(v)}" for name, v in (("min", self.min), ("max", self.max)) if v is not None
        ]
        return f"({', '.join(bounds)})" if bounds else "(no bounds)"

    def in_range(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _duration(raw: Mapping, key: str, default: str) -> tuple[timedelta, str]:
    text = raw.get(key, default)
    try:
        return parse_duration(text), str(text)
    except ValueError as exc:
        raise InvalidSpec(f"{key}: {exc}") from None


def _bound(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidSpec(f"thresholdRange.{name} must be a number")
    return float(value)


def parse_spec(check: Mapping) -> Spec:
    """spec.prometheus with its defaults; raises InvalidSpec (the CRD rejects most of it earlier)."""
    raw = dig(check, "spec", "prometheus")
    if not isinstance(raw, Mapping):
        raise InvalidSpec("spec.prometheus is missing")
    address = raw.get("address")
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise InvalidSpec(
            "address must be an http:// or https:// URL without credentials, query or fragment "
            "(for example http://prometheus.monitoring:9090)"
        )
    try:
        urlsplit(address).port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidSpec("address has an invalid port") from None
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise InvalidSpec("query must be a non-empty PromQL expression")
    known = ", ".join(f"${{{v}}}" for v in VARIABLES)
    for name in _VARIABLE.findall(query):
        if name not in VARIABLES:
            raise InvalidSpec(f"query uses the unknown variable ${{{name[:40]}}} (known: {known})")
    if "${" in _VARIABLE.sub("", query):
        raise InvalidSpec(f"query has a ${{ without a closing }} (known variables: {known})")
    thresholds = raw.get("thresholdRange") or {}
    if not isinstance(thresholds, Mapping):
        raise InvalidSpec("thresholdRange must be an object with min and/or max")
    low, high = _bound(thresholds.get("min"), "min"), _bound(thresholds.get("max"), "max")
    if low is not None and high is not None and low > high:
        raise InvalidSpec("thresholdRange.min is greater than thresholdRange.max")
    no_data = raw.get("noData", PENDING)
    if no_data not in NO_DATA_VERDICTS:
        raise InvalidSpec(f"noData must be one of {', '.join(NO_DATA_VERDICTS)}")
    interval, _ = _duration(raw, "interval", DEFAULT_INTERVAL)
    if interval < timedelta(seconds=1):
        raise InvalidSpec("interval must be at least 1s")
    for_, for_text = _duration(raw, "for", DEFAULT_FOR)
    tolerance, tolerance_text = _duration(raw, "queryErrorTolerance", DEFAULT_TOLERANCE)
    headers = raw.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise InvalidSpec("headers must map header names to values")
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise InvalidSpec(f"headers: {str(name)[:60]!r} is not a valid header name")
        if name.lower() in FORBIDDEN_HEADERS:
            raise InvalidSpec(
                f"headers: {name} may not be set in a HealthCheck "
                "(credentials are configured for the service, see PROMETHEUS_CREDENTIALS_FILE)"
            )
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise InvalidSpec(f"headers: the value of {name} must be a one-line string")
    return Spec(
        address=address,
        query=query,
        min=low,
        max=high,
        no_data=no_data,
        interval=interval,
        for_=for_,
        for_text=for_text,
        tolerance=tolerance,
        tolerance_text=tolerance_text,
        headers=dict(headers),
    )


# --- rendering --------------------------------------------------------------------------


class NotReady(Exception):
    """The query cannot be rendered yet (no deployment to scope it to); the check is Pending."""


def window(cutoff: datetime, now: datetime) -> str:
    """Whole minutes since the deployment cutoff, rounded down, clamped to 1m..1h."""
    minutes = int((now - cutoff).total_seconds() // 60)
    return f"{min(WINDOW_MAX, max(WINDOW_MIN, minutes))}m"


def render(
    query: str,
    namespace: str,
    rollouts: Sequence[Mapping],
    cutoff: datetime | None,
    now: datetime,
) -> str:
    """The query with `${version}`, `${namespace}` and `${window}` filled in.

    Raises NotReady when no selecting Rollout has deployed anything, or when `${version}` is
    used and the selecting Rollouts deployed different versions.
    """
    deployed = [(object_key(r), deployed_tag(r)) for r in rollouts]
    deployed = [(key, tag) for key, tag in deployed if tag]
    if not deployed or cutoff is None:
        raise NotReady(MSG_NO_ROLLOUT)
    values = {"namespace": namespace, "window": window(cutoff, now)}
    if "${version}" in query:
        tags = sorted({tag for _, tag in deployed if tag})
        if len(tags) > 1:
            listed = ", ".join(f"{ns}/{name}={tag}" for (ns, name), tag in deployed[:5])
            raise NotReady(f"the Rollouts selecting this check deployed different versions: {listed}")
        if not _OCI_TAG.match(tags[0]):
            raise NotReady("the deployed version is not a valid OCI tag")
        values["version"] = tags[0]
    return _VARIABLE.sub(lambda m: values[m.group(1)], query)


# --- the verdict ------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """What the answer says: `failing` (a series out of range), `no_data`, or all in range."""

    failing: bool
    no_data: bool


def measure(spec: Spec, answer: Answer) -> Measurement:
    """A NaN series counts as no data; any other series out of range is a failure."""
    values = [v for v in answer.values if not math.isnan(v)]
    if not values:
        return Measurement(failing=False, no_data=True)
    return Measurement(failing=not all(spec.in_range(v) for v in values), no_data=False)


def out_of_range_message(spec: Spec) -> str:
    held = f" for {spec.for_text}" if spec.for_ > timedelta(0) else ""
    return f"out of range {spec.range_text()}{held}"


def _set(status: dict, verdict: str, message: str, now: datetime) -> None:
    """Status and message; lastChangeTime on a change of status, lastErrorTime on turning Unhealthy."""
    if status.get("status") != verdict or parse_time(status.get("lastChangeTime")) is None:
        status["lastChangeTime"] = format_time(now)
        if verdict == UNHEALTHY:
            last_error = parse_time(status.get("lastErrorTime"))
            status["lastErrorTime"] = format_time(now if last_error is None else max(now, last_error))
    status["status"] = verdict
    status["message"] = message


def judge(status: Mapping, spec: Spec, outcome: Outcome, now: datetime) -> tuple[dict, float]:
    """The new status for one query outcome, and the seconds until the next evaluation."""
    new = dict(status)
    waits = [spec.interval]
    if isinstance(outcome, QueryError):
        since = parse_time(new.get(QUERY_ERROR_SINCE)) or now
        new[QUERY_ERROR_SINCE] = format_time(since)
        if now - since > spec.tolerance:
            message = str(new.get("message", ""))
            if not (new.get("status") == UNHEALTHY and message.startswith(MSG_QUERY_FAILING)):
                _set(new, UNHEALTHY, f"{MSG_QUERY_FAILING}{spec.tolerance_text}: {outcome.reason}", now)
        else:
            # "longer than": the first sync past the tolerance is one second after it.
            waits.append(since + spec.tolerance + timedelta(seconds=1) - now)
        return new, _seconds(waits)

    new.pop(QUERY_ERROR_SINCE, None)
    measured = measure(spec, outcome)
    if measured.failing:
        since = parse_time(new.get(FAILING_SINCE)) or now
        new[FAILING_SINCE] = format_time(since)
        if now - since >= spec.for_ or new.get("status") == UNHEALTHY:
            _set(new, UNHEALTHY, out_of_range_message(spec), now)
        else:
            waits.append(since + spec.for_ - now)  # until then the verdict stays what it was
        return new, _seconds(waits)
    new.pop(FAILING_SINCE, None)
    if measured.no_data:
        _set(new, spec.no_data, MSG_NO_DATA, now)
    else:
        _set(new, HEALTHY, f"within range {spec.range_text()}", now)
    return new, _seconds(waits)


def _seconds(waits: Iterable[timedelta]) -> float:
    return max(1, math.ceil(min(waits).total_seconds()))


# --- one sync ---------------------------------------------------------------------------


def sync_status(
    check: Mapping,
    status: Mapping,
    reset: bool,
    rollouts: Sequence[Mapping],
    cutoff: datetime | None,
    now: datetime,
    querier: Querier,
    log: dict[str, Any],
) -> tuple[dict, float]:
    """The status of a `class: prometheus` check after this sync, and resyncAfterSeconds.

    `status` is the check's status reduced to the common fields (and already reset when
    `reset`); this class's own fields are taken from the persisted status unless it was reset.
    """
    new = dict(status)
    persisted = check.get("status")
    if not reset and isinstance(persisted, Mapping):
        for key in OWN_FIELDS:
            if parse_time(persisted.get(key)) is not None:
                new[key] = persisted[key]
    generation = dig(check, "metadata", "generation")
    if isinstance(generation, int):
        new["observedGeneration"] = generation
    try:
        spec = parse_spec(check)
    except InvalidSpec as exc:
        log.update(prometheus="invalid")
        _drop_own(new)
        _set(new, UNHEALTHY, f"{MSG_INVALID}{exc}", now)
        return new, 0
    try:
        query = render(spec.query, object_key(check)[0], rollouts, cutoff, now)
    except NotReady as exc:
        log.update(prometheus="not-ready")
        _drop_own(new)
        _set(new, PENDING, str(exc), now)
        return new, _seconds([spec.interval])
    outcome = querier.query(spec.address, query, spec.headers, now)
    if isinstance(outcome, QueryError):
        log.update(prometheus="query-error", prometheus_error=outcome.reason, prometheus_cause=outcome.detail)
    else:
        log.update(prometheus="answer", prometheus_series=len(outcome.values))
    return judge(new, spec, outcome, now)


def _drop_own(status: dict) -> None:
    for key in OWN_FIELDS:
        status.pop(key, None)
