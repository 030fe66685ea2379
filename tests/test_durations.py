"""`parse_duration` against Go's time.ParseDuration, as the CRDs restrict it
(pattern `^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$`): one row per case, the rule in its name."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from hooks.k8s import DURATION_PATTERN, parse_duration

VALID = [
    ("seconds", "90s", timedelta(seconds=90)),
    ("minutes", "10m", timedelta(minutes=10)),
    ("hours", "2h", timedelta(hours=2)),
    ("milliseconds", "500ms", timedelta(milliseconds=500)),
    ("units combine, largest first as Go prints them", "1h30m", timedelta(hours=1, minutes=30)),
    ("units combine in any order, as Go accepts", "30m1h", timedelta(hours=1, minutes=30)),
    ("a unit may repeat and the parts add up, as in Go", "1m1m", timedelta(minutes=2)),
    ("decimal fractions", "1.5h", timedelta(minutes=90)),
    ("fractional milliseconds", "0.5ms", timedelta(microseconds=500)),
    ("zero is a duration", "0s", timedelta(0)),
    ("leading zeros", "007s", timedelta(seconds=7)),
    ("everything at once", "1h2m3s4ms", timedelta(hours=1, minutes=2, seconds=3, milliseconds=4)),
    ("large values", "8760h", timedelta(days=365)),
]

INVALID = [
    ("empty", ""),
    ("a bare number has no unit (Go allows only a bare 0; the CRD allows none)", "10"),
    ("days are not a Go unit", "1d"),
    ("negative durations are not accepted by the CRD pattern", "-1s"),
    ("a sign is not accepted", "+1s"),
    ("units are case-sensitive", "10S"),
    ("no spaces between parts", "1h 30m"),
    ("no surrounding space", " 10s"),
    ("microseconds are outside the CRD pattern", "10us"),
    ("nanoseconds are outside the CRD pattern", "10ns"),
    ("a fraction needs digits after the dot", "1.s"),
    ("a fraction needs digits before the dot", ".5s"),
    ("two dots", "1.5.3s"),
    ("a unit without a number", "h"),
    ("not a string", 90),
    ("null", None),
]


@pytest.mark.parametrize(("text", "expected"), [row[1:] for row in VALID], ids=[row[0] for row in VALID])
def test_valid(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert re.match(DURATION_PATTERN, text), "the CRD pattern and the hook must agree"


@pytest.mark.parametrize("text", [row[1] for row in INVALID], ids=[row[0] for row in INVALID])
def test_invalid(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
    if isinstance(text, str):
        assert not re.match(DURATION_PATTERN, text), "the CRD pattern and the hook must agree"
