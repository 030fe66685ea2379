"""The typed API layer (hooks/api/rollout.py) matches the CRD, and persisted entries round-trip."""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any

import pytest

from hooks.api import rollout as api
from tests.crd_schema import find_crd, openapi_schema

STATUS = openapi_schema(find_crd("Rollout"))["properties"]["status"]["properties"]


def keys(typed: Any) -> set[str]:
    return set(typing.get_type_hints(typed))


def test_rollout_status_keys_are_the_crd_status_properties() -> None:
    assert keys(api.RolloutStatus) == set(STATUS)


@pytest.mark.parametrize(
    ("typed", "schema"),
    [
        (api.HistoryEntry, STATUS["history"]["items"]),
        (api.VersionInfo, STATUS["availableReleases"]["items"]),
        (api.GateSummary, STATUS["gates"]["items"]),
        (api.TargetStatus, STATUS["targets"]["items"]),
        (api.Hold, STATUS["hold"]),
        (api.Condition, STATUS["conditions"]["items"]),
        (api.TriggeredBy, STATUS["history"]["items"]["properties"]["triggeredBy"]),
        (api.FailedHealthCheck, STATUS["history"]["items"]["properties"]["failedHealthChecks"]["items"]),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_each_typed_dict_has_the_crd_fields(typed: Any, schema: dict) -> None:
    assert keys(typed) == set(schema["properties"])


@pytest.mark.parametrize(
    ("enum", "schema"),
    [
        (api.BakeStatus, STATUS["history"]["items"]["properties"]["bakeStatus"]),
        (api.TargetState, STATUS["targets"]["items"]["properties"]["state"]),
        (api.Trigger, STATUS["history"]["items"]["properties"]["trigger"]),
        (api.HoldReason, STATUS["hold"]["properties"]["reason"]),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_enums_are_the_crd_enums(enum: Any, schema: dict) -> None:
    assert [e.value for e in enum] == schema["enum"]


TYPED = [
    api.RolloutStatus,
    api.HistoryEntry,
    api.VersionInfo,
    api.GateSummary,
    api.TargetStatus,
    api.Hold,
    api.Condition,
    api.TriggeredBy,
    api.FailedHealthCheck,
]


@pytest.mark.parametrize("typed", TYPED, ids=lambda t: t.__name__)
def test_every_field_has_a_comment_from_the_crd(typed: Any) -> None:
    lines = inspect.getsource(typed).splitlines()
    for field in keys(typed):
        [index] = [i for i, line in enumerate(lines) if re.match(rf"^    {field}: ", line)]
        assert lines[index - 1].strip().startswith("#: "), f"{typed.__name__}.{field} has no #: comment"


def test_a_history_entry_keeps_unknown_and_malformed_fields_through_a_round_trip() -> None:
    raw = {
        "id": 7,
        "version": {"tag": "1.2.3", "extra": {"from": "go"}},
        "timestamp": "not a time",
        "message": 42,
        "x-go-controller": ["kept"],
        "bakeStatus": "Weird",
    }
    entry = api.entry_from_status(raw)
    assert entry is not None
    assert api.entry_to_status(entry) == raw
    assert entry is not raw, "a copy: evaluating never edits the request"
    assert api.entry_from_status("not an object") is None


@pytest.mark.parametrize(
    ("entry", "trigger"),
    [
        ({"trigger": "Pin", "message": "Automatic deployment"}, api.Trigger.PIN),
        ({"message": "Automatic deployment, with gate bypass"}, api.Trigger.AUTOMATIC),
        ({"message": "Adopted: the targets already carry 1.0.0"}, api.Trigger.ADOPTION),
        ({"message": "Manual deployment"}, api.Trigger.FORCE_DEPLOY),
        ({"message": "Rollback for INC-7"}, api.Trigger.FORCE_DEPLOY),
        ({"trigger": "Unknown", "message": "Automatic deployment"}, api.Trigger.AUTOMATIC),
        ({}, api.Trigger.FORCE_DEPLOY),
    ],
)
def test_trigger_of_entries_an_older_controller_wrote_is_inferred(entry: dict, trigger: api.Trigger) -> None:
    assert api.entry_trigger(entry) == trigger
