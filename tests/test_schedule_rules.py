"""Schedule rule evaluation and next-transition search (hooks/schedule/rules.py), on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hooks.schedule.rules import HORIZON, ScheduleError, parse_schedule
from tests.schedule_objects import rule, utc

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
# 2024-03-04 is a Monday. New York: DST starts 2024-03-10 07:00Z, ends 2024-11-03 06:00Z.


def sched(*rules: dict, timezone: str | None = None, action: str | None = None):
    spec: dict = {"rules": list(rules)}
    if timezone is not None:
        spec["timezone"] = timezone
    if action is not None:
        spec["action"] = action
    return parse_schedule(spec)


# --- parsing -----------------------------------------------------------------------------


def test_weekdays_accept_any_case_and_three_letter_abbreviations():
    a = sched(rule("r", days=["monday", "TUE", "Wed", " thursday ", "fri"]))
    b = sched(rule("r", days=WEEKDAYS))
    assert a.rules[0].days == b.rules[0].days == frozenset(range(5))


def test_defaults_are_utc_and_deny_and_unnamed_rules_get_their_index():
    s = sched(rule("a"), rule(None, start="09:00", end="10:00"))
    assert s.timezone == "UTC"
    assert s.action == "Deny"
    assert [r.name for r in s.rules] == ["a", "rule-1"]
    assert sched(rule("a"), action="allow").action == "Allow"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"rules": [rule("r")], "timezone": "Mars/Olympus"},
            "spec.timezone: unknown timezone 'Mars/Olympus'",
        ),
        ({"rules": [rule("r", start="25:00", end="10:00")]}, "spec.rules[0].timeRange.start: invalid time"),
        ({"rules": [rule("r", start="09:00", end="9h")]}, "spec.rules[0].timeRange.end: invalid time"),
        ({"rules": [rule("r", start="24:00", end="10:00")]}, "spec.rules[0].timeRange.start: invalid time"),
        (
            {"rules": [rule("r", dates=("2024-02-30", "2024-03-01"))]},
            "spec.rules[0].dateRange.start: invalid",
        ),
        ({"rules": [rule("r", dates=("2024-03-02", "2024-03-01"))]}, "is after end"),
        ({"rules": [rule("r", days=["Funday"])]}, "spec.rules[0].daysOfWeek[0]: unknown weekday 'Funday'"),
        ({"rules": []}, "spec.rules: at least one rule is required"),
        ({"rules": [rule("r")], "action": "Maybe"}, "spec.action: must be Allow or Deny"),
    ],
)
def test_invalid_specs_name_the_field(spec, message):
    with pytest.raises(ScheduleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_schedule(spec)


# --- evaluation --------------------------------------------------------------------------


def test_time_range_start_inclusive_end_exclusive():
    s = sched(rule("r", start="09:00", end="17:00"))
    assert not s.active_at(utc(2024, 3, 4, 8, 59, 59))
    assert s.active_at(utc(2024, 3, 4, 9, 0))
    assert s.active_at(utc(2024, 3, 4, 16, 59, 59))
    assert not s.active_at(utc(2024, 3, 4, 17, 0))


def test_start_equal_end_means_all_day_and_24_00_is_end_of_day():
    s = sched(rule("r", start="13:00", end="13:00", days=["Monday"]))
    assert s.active_at(utc(2024, 3, 4, 0, 0)) and s.active_at(utc(2024, 3, 4, 23, 59))
    assert not s.active_at(utc(2024, 3, 5, 0, 0))
    late = sched(rule("r", start="20:00", end="24:00"))
    assert late.active_at(utc(2024, 3, 4, 23, 59, 59)) and not late.active_at(utc(2024, 3, 5, 0, 0))


def test_date_range_includes_both_days_in_local_time():
    s = sched(rule("r", dates=("2024-03-05", "2024-03-06")), timezone="Europe/Berlin")  # UTC+1
    assert not s.active_at(utc(2024, 3, 4, 22, 59, 59))
    assert s.active_at(utc(2024, 3, 4, 23, 0))  # 00:00 Berlin on the 5th
    assert s.active_at(utc(2024, 3, 6, 22, 59, 59))
    assert not s.active_at(utc(2024, 3, 6, 23, 0))
    assert s.next_transition(utc(2024, 3, 5, 12, 0)) == utc(2024, 3, 6, 23, 0)


def test_overnight_window_belongs_to_the_day_it_opened():
    s = sched(rule("fri-night", start="22:00", end="06:00", days=["Friday"]))
    assert not s.active_at(utc(2024, 3, 8, 5, 0))  # Friday morning: Thursday's window is not listed
    assert s.active_at(utc(2024, 3, 8, 22, 0))
    assert s.active_at(utc(2024, 3, 9, 5, 59))  # Saturday early morning: Friday's window
    assert not s.active_at(utc(2024, 3, 9, 6, 0))
    assert not s.active_at(utc(2024, 3, 9, 23, 0))  # Saturday night: not listed
    assert s.next_transition(utc(2024, 3, 9, 1, 0)) == utc(2024, 3, 9, 6, 0)
    assert s.next_transition(utc(2024, 3, 9, 6, 0)) == utc(2024, 3, 15, 22, 0)


def test_overnight_window_on_the_last_day_of_a_date_range_runs_into_the_next_day():
    s = sched(rule("r", start="22:00", end="02:00", dates=("2024-03-04", "2024-03-04")))
    assert s.active_at(utc(2024, 3, 5, 1, 0))
    assert s.next_transition(utc(2024, 3, 5, 1, 0)) == utc(2024, 3, 5, 2, 0)
    assert s.next_transition(utc(2024, 3, 5, 2, 0)) is None


def test_consecutive_all_day_rules_merge_across_midnight():
    s = sched(rule("weekend", days=["sat", "sun"]))
    assert s.next_transition(utc(2024, 3, 8, 12, 0)) == utc(2024, 3, 9, 0, 0)
    assert s.next_transition(utc(2024, 3, 9, 12, 0)) == utc(2024, 3, 11, 0, 0)  # not Sunday 00:00


def test_active_rules_and_overlap_handover():
    s = sched(rule("morning", start="09:00", end="12:00"), rule("noon", start="11:00", end="14:00"))
    at = utc(2024, 3, 4, 10, 30)
    assert s.active_rules(at) == ["morning"]
    assert s.active_rules(utc(2024, 3, 4, 11, 30)) == ["morning", "noon"]
    assert s.next_transition(at) == utc(2024, 3, 4, 14, 0)  # 11:00 and 12:00 keep it active
    assert s.next_rules_change(at) == utc(2024, 3, 4, 11, 0)


# --- next transition ---------------------------------------------------------------------


def test_next_transition_same_day_and_next_weekday():
    s = sched(rule("bh", start="09:00", end="17:00", days=WEEKDAYS), timezone="America/New_York")
    assert s.next_transition(utc(2024, 3, 4, 15, 0)) == utc(2024, 3, 4, 22, 0)  # 17:00 EST
    assert s.next_transition(utc(2024, 3, 4, 22, 0)) == utc(2024, 3, 5, 14, 0)  # Tuesday 09:00 EST
    # Friday evening before the spring-forward weekend: Monday 09:00 is already EDT.
    assert s.next_transition(utc(2024, 3, 8, 23, 0)) == utc(2024, 3, 11, 13, 0)


def test_next_transition_into_a_future_date_range_and_none_after_it():
    s = sched(rule("freeze", dates=("2024-12-20", "2025-01-04")), timezone="Europe/Amsterdam")
    assert s.next_transition(utc(2024, 3, 4)) == utc(2024, 12, 19, 23, 0)
    assert s.next_transition(utc(2024, 12, 25)) == utc(2025, 1, 4, 23, 0)
    assert s.next_transition(utc(2025, 1, 5)) is None
    assert s.next_rules_change(utc(2025, 1, 5)) is None


def test_always_active_and_never_active_have_no_transition():
    assert sched(rule("always")).next_transition(utc(2024, 3, 4)) is None
    assert sched(rule("always"), timezone="America/New_York").next_transition(utc(2024, 3, 9, 12)) is None
    never = sched(rule("gone", start="09:00", end="10:00", dates=("2020-01-01", "2020-01-31")))
    assert never.next_transition(utc(2024, 3, 4)) is None


def test_transition_beyond_the_horizon_is_not_reported():
    s = sched(rule("far", dates=("2040-01-01", "2040-01-02")))
    now = utc(2024, 3, 4)
    assert now + HORIZON < utc(2040, 1, 1)
    assert s.next_transition(now) is None
    assert s.next_transition(utc(2035, 6, 1)) == utc(2040, 1, 1)


# --- daylight saving ---------------------------------------------------------------------


def test_spring_forward_window_starting_in_the_gap_opens_after_the_gap():
    s = sched(rule("r", start="02:30", end="04:00"), timezone="America/New_York")
    assert s.next_transition(utc(2024, 3, 10, 5, 0)) == utc(2024, 3, 10, 7, 0)  # 03:00 EDT
    assert not s.active_at(utc(2024, 3, 10, 6, 59, 59))  # 01:59:59 EST
    assert s.active_at(utc(2024, 3, 10, 7, 0))
    assert s.next_transition(utc(2024, 3, 10, 7, 0)) == utc(2024, 3, 10, 8, 0)  # 04:00 EDT
    # The next day it is a normal 02:30 EDT start.
    assert s.next_transition(utc(2024, 3, 10, 8, 0)) == utc(2024, 3, 11, 6, 30)


def test_spring_forward_window_inside_the_gap_does_not_open():
    s = sched(rule("r", start="02:10", end="02:50"), timezone="America/New_York")
    assert s.next_transition(utc(2024, 3, 10, 5, 0)) == utc(2024, 3, 11, 6, 10)


def test_spring_forward_shortens_an_overnight_window_and_fall_back_lengthens_it():
    s = sched(rule("night", start="22:00", end="06:00"), timezone="America/New_York")
    assert s.next_transition(utc(2024, 3, 10, 3, 0)) == utc(2024, 3, 10, 10, 0)  # opened 03:00Z
    assert s.next_transition(utc(2024, 11, 3, 2, 0)) == utc(2024, 11, 3, 11, 0)  # opened 02:00Z


def test_fall_back_repeats_the_repeated_hour():
    s = sched(rule("r", start="01:00", end="01:30"), timezone="America/New_York")
    now = utc(2024, 11, 3, 4, 0)  # 00:00 EDT
    seen = []
    for _ in range(4):
        now = s.next_transition(now)
        seen.append(now)
    assert seen == [
        utc(2024, 11, 3, 5, 0),
        utc(2024, 11, 3, 5, 30),
        utc(2024, 11, 3, 6, 0),
        utc(2024, 11, 3, 6, 30),
    ]


def test_fall_back_keeps_business_hours_on_local_time():
    s = sched(rule("bh", start="09:00", end="17:00", days=WEEKDAYS), timezone="America/New_York")
    assert s.next_transition(utc(2024, 11, 1, 22, 0)) == utc(2024, 11, 4, 14, 0)  # Monday 09:00 EST


def test_half_hour_timezone():
    s = sched(rule("r", start="09:00", end="17:00"), timezone="Asia/Kolkata")  # UTC+05:30
    assert s.active_at(utc(2024, 3, 4, 3, 30)) and not s.active_at(utc(2024, 3, 4, 3, 29))
    assert s.next_transition(utc(2024, 3, 4, 4, 0)) == utc(2024, 3, 4, 11, 30)


# --- property: nextTransition is really the next change ----------------------------------

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Santiago",
]
times = st.sampled_from(
    [None, "00:00", "01:30", "02:00", "02:30", "06:00", "09:00", "17:00", "22:00", "23:59"]
)


@st.composite
def rules_strategy(draw):
    rules = []
    for i in range(draw(st.integers(1, 3))):
        raw: dict = {"name": f"r{i}"}
        start, end = draw(times), draw(times)
        if start is not None and end is not None:
            raw["timeRange"] = {"start": start, "end": end}
        if draw(st.booleans()):
            raw["daysOfWeek"] = draw(st.lists(st.sampled_from([*WEEKDAYS, "Saturday", "Sunday"]), max_size=3))
        if draw(st.booleans()):
            first = datetime(2024, 1, 1) + timedelta(days=draw(st.integers(0, 700)))
            last = first + timedelta(days=draw(st.integers(0, 20)))
            raw["dateRange"] = {"start": first.date().isoformat(), "end": last.date().isoformat()}
        rules.append(raw)
    return rules


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=rules_strategy(),
    zone=st.sampled_from(ZONES),
    offset=st.integers(0, 2 * 365 * 24 * 3600),
)
def test_next_transition_is_the_first_change(rules, zone, offset):
    s = parse_schedule({"rules": rules, "timezone": zone})
    now = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    current = s.active_at(now)
    nxt = s.next_transition(now)
    # Every change happens at a whole minute: walk minute by minute over two days.
    probe = now.replace(second=0) + timedelta(minutes=1)
    first_change = None
    while probe <= now + timedelta(days=2):
        if s.active_at(probe) != current:
            first_change = probe
            break
        probe += timedelta(minutes=1)
    if first_change is not None:
        assert nxt == first_change
    else:
        assert nxt is None or nxt > now + timedelta(days=2)
    if nxt is not None:
        assert nxt > now
        assert s.active_at(nxt - timedelta(seconds=1)) == current
        assert s.active_at(nxt) != current
        rules_change = s.next_rules_change(now)
        assert rules_change is not None and now < rules_change <= nxt
