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

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

#: Kubernetes validation (apimachinery `validation.IsQualifiedName`, `IsValidLabelValue`,
#: `IsDNS1123Subdomain`). Shared with the CRD patterns (crds/*.yaml) and docs/scale.md.
LABEL_NAME_MAX = 63
LABEL_PREFIX_MAX = 253
LABEL_VALUE_MAX = 63
LABEL_NAME_PATTERN = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#: A whole label key (optional prefix, "/", name) as one pattern, for CRDs.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
)
_LABEL_NAME_RE = re.compile(LABEL_NAME_PATTERN)
_LABEL_VALUE_RE = re.compile(LABEL_VALUE_PATTERN)
_DNS1123_SUBDOMAIN_RE = re.compile(DNS1123_SUBDOMAIN_PATTERN)


def label_key_error(key: Any) -> str | None:
    """Why `key` is not a valid label key (a qualified name), or None when it is."""
    if not isinstance(key, str):
        return f"label key {key!r} must be a string"
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return f"label key {key!r}: the prefix before '/' must not be empty"
    if slash and "/" in prefix:
        return f"label key {key!r}: at most one '/' is allowed"
    if slash:
        if len(prefix) > LABEL_PREFIX_MAX:
            return f"label key {key!r}: the prefix must be at most {LABEL_PREFIX_MAX} characters"
        if not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
            return (
                f"label key {key!r}: the prefix must be a DNS subdomain "
                "(lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
            )
    if not name:
        return f"label key {key!r}: the name part must not be empty"
    if len(name) > LABEL_NAME_MAX:
        return f"label key {key!r}: the name part must be at most {LABEL_NAME_MAX} characters"
    if not _LABEL_NAME_RE.fullmatch(name):
        return (
            f"label key {key!r}: the name part may hold letters, digits, '-', '_' and '.', "
            "and must start and end with a letter or digit"
        )
    return None


def label_value_error(value: Any) -> str | None:
    """Why `value` is not a valid label value, or None when it is (the empty value is valid)."""
    if not isinstance(value, str):
        return f"label value {value!r} must be a string"
    if len(value) > LABEL_VALUE_MAX:
        return f"label value {value[:20]!r}...: must be at most {LABEL_VALUE_MAX} characters"
    if not _LABEL_VALUE_RE.fullmatch(value):
        return (
            f"label value {value!r}: may hold letters, digits, '-', '_' and '.', "
            "and must start and end with a letter or digit"
        )
    return None


def _expression_error(index: int, expr: Any) -> str | None:
    where = f"matchExpressions[{index}]"
    if not isinstance(expr, Mapping):
        return f"{where} must be an object"
    key_error = label_key_error(expr.get("key")) if "key" in expr else "a key is required"
    if key_error:
        return f"{where}: {key_error}"
    op = expr.get("operator")
    if op not in _OPERATORS:
        return f"{where}: operator {op!r} is not one of {', '.join(_OPERATORS)}"
    values = expr.get("values")
    if values is None:
        values = []
    if not isinstance(values, list):
        return f"{where}: values must be a list of strings"
    if op in ("In", "NotIn") and not values:
        return f"{where}: operator {op} needs at least one value"
    if op in ("Exists", "DoesNotExist") and values:
        return f"{where}: operator {op} takes no values"
    for value in values:
        value_error = label_value_error(value)
        if value_error:
            return f"{where}: {value_error}"
    return None


def selector_error(selector: Any) -> str | None:
    """Why `selector` is not a metav1.LabelSelector Kubernetes would accept, or None.

    The rules of apimachinery's `LabelSelectorAsSelector`: Metacontroller converts every
    customize rule with it and fails the whole sync on an error, before calling the hook.
    """
    if selector is None:
        return None
    if not isinstance(selector, Mapping):
        return "label selector must be an object"
    labels = selector.get("matchLabels")
    if labels is not None:
        if not isinstance(labels, Mapping):
            return "matchLabels must map label keys to values"
        for key, value in labels.items():
            error = label_key_error(key) or label_value_error(value)
            if error:
                return f"matchLabels: {error}"
    expressions = selector.get("matchExpressions")
    if expressions is not None:
        if not isinstance(expressions, list):
            return "matchExpressions must be a list"
        for index, expr in enumerate(expressions):
            error = _expression_error(index, expr)
            if error:
                return error
    return None


def validate_selector(selector: Any) -> None:
    """Raise ValueError (the reason from `selector_error`) when `selector` is invalid."""
    error = selector_error(selector)
    if error:
        raise ValueError(error)


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
    cond: dict[str, Any] = {
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
