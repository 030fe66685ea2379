"""Small Kubernetes helpers shared by every hook: times, durations, label selectors, conditions.

Go durations and label-selector matching have no maintained Python library, so they are
hand-written here, once, and tested against the Kubernetes rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

# --- times -----------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, like metav1.Time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """Parse an RFC 3339 timestamp; None when missing or unparsable (never raises)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --- durations -------------------------------------------------------------------------

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: Any) -> timedelta:
    """Parse a Go duration restricted to the CRD pattern (`90s`, `1h30m`, `500ms`).

    Raises ValueError with a readable reason.
    """
    if not isinstance(text, str) or not _DURATION_RE.match(text):
        raise ValueError(f"invalid duration {text!r} (expected e.g. 90s, 10m, 1h30m)")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


# --- label selectors -------------------------------------------------------------------

_OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist"}


def validate_selector(selector: Any) -> None:
    """Raise ValueError when `selector` is not a valid metav1.LabelSelector."""
    if selector is None:
        return
    if not isinstance(selector, Mapping):
        raise ValueError("label selector must be an object")
    labels = selector.get("matchLabels") or {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ValueError("matchLabels must map strings to strings")
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise ValueError("matchExpressions must be a list")
    for expr in expressions:
        if not isinstance(expr, Mapping) or not isinstance(expr.get("key"), str):
            raise ValueError("each matchExpression needs a string key")
        op = expr.get("operator")
        if op not in _OPERATORS:
            raise ValueError(f"unknown matchExpression operator {op!r}")
        values = expr.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError("matchExpression values must be a list of strings")
        if op in ("In", "NotIn") and not values:
            raise ValueError(f"operator {op} needs at least one value")
        if op in ("Exists", "DoesNotExist") and values:
            raise ValueError(f"operator {op} takes no values")


def selector_is_empty(selector: Any) -> bool:
    """True for a selector with neither matchLabels nor matchExpressions."""
    if not isinstance(selector, Mapping):
        return True
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def selector_matches(selector: Any, labels: Mapping[str, str] | None) -> bool:
    """Kubernetes label-selector semantics; an empty selector matches everything.

    Raises ValueError for an invalid selector.
    """
    validate_selector(selector)
    if selector is None:
        return True
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


# --- conditions ------------------------------------------------------------------------


def get_condition(conditions: Any, type_: str) -> dict | None:
    """The condition of `type_` in a (possibly malformed) conditions list."""
    if not isinstance(conditions, list):
        return None
    for cond in conditions:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


#: metav1.Condition.message maxLength: a longer message would make the status write fail.
CONDITION_MESSAGE_MAX = 32768


def make_condition(
    previous: Any,
    type_: str,
    status: bool | str,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> dict:
    """A metav1.Condition whose lastTransitionTime moves only when `status` changes."""
    status_text = status if isinstance(status, str) else ("True" if status else "False")
    old = get_condition(previous, type_)
    transition = format_time(now)
    if old is not None and old.get("status") == status_text and parse_time(old.get("lastTransitionTime")):
        transition = old["lastTransitionTime"]
    if len(message) > CONDITION_MESSAGE_MAX:  # e.g. a huge annotation value or check message
        message = message[: CONDITION_MESSAGE_MAX - 3] + "..."
    cond = {
        "type": type_,
        "status": status_text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if isinstance(generation, int):
        cond["observedGeneration"] = generation
    return cond


# --- object access ---------------------------------------------------------------------


def meta(obj: Mapping) -> Mapping:
    """metadata of an object, {} when absent or malformed."""
    value = obj.get("metadata") if isinstance(obj, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def labels_of(obj: Mapping) -> dict[str, str]:
    value = meta(obj).get("labels")
    return dict(value) if isinstance(value, Mapping) else {}


def annotations_of(obj: Mapping) -> dict[str, Any]:
    value = meta(obj).get("annotations")
    return dict(value) if isinstance(value, Mapping) else {}


def dig(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]... or None when any step is missing or not an object."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj
