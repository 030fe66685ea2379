"""Deployment-window rules: parse a schedule spec, evaluate it, find its next transition (pure).

Rules are evaluated on the *local wall clock* of the schedule's timezone: an instant is inside
a rule when the local date and time it shows fall inside the rule. That one definition settles
daylight-saving days:

- spring forward (the clock jumps 02:00 -> 03:00): a window starting in the skipped hour opens
  at the first instant after the gap (03:00); a window lying wholly inside the gap does not
  open that day; a window ending in the gap closes at the jump;
- fall back (01:00-02:00 happens twice): a wall-clock time inside the repeated hour matches
  both times, so a window covering part of that hour is open during both passes.

A window whose end is before its start crosses midnight; its early-morning part belongs to the
day it opened, so `daysOfWeek` and `dateRange` are checked against the opening day.

Finding the next transition works in two spaces. In wall-clock space the schedule is a step
function that changes only at rule boundaries (minutes of a day) and midnights; per local day
we build the merged active intervals. Real time maps onto wall-clock time piecewise: between two
UTC-offset changes of the zone the wall clock runs straight, so a wall-clock change point maps
to exactly one instant; at an offset change the wall clock jumps and the value is re-checked.
Long quiet stretches are skipped: between two date-range edges the day profile depends only on
the weekday, so seven quiet days in a row prove the whole stretch quiet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTES_PER_DAY = 24 * 60

#: How far ahead the next transition is searched; beyond it the schedule reports none.
HORIZON = timedelta(days=3660)
#: Step of the UTC-offset probe; zones do not change their offset twice within a day.
_OFFSET_PROBE = timedelta(days=1)
#: Latest local day we reason about (keeps date arithmetic clear of year 9999).
_LAST_DAY = date(9999, 11, 30)

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_BY_NAME = {name: i for i, name in enumerate(_WEEKDAYS)} | {
    name[:3]: i for i, name in enumerate(_WEEKDAYS)
}
_SHORT_DAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

ALLOW = "Allow"
DENY = "Deny"


class ScheduleError(ValueError):
    """The schedule spec cannot be evaluated; the message names the field."""


# --- parsing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rule. Minutes count from local midnight; `end` may be 1440 (`24:00`)."""

    name: str
    start: int | None = None  # None: no timeRange (all day)
    end: int | None = None
    days: frozenset[int] | None = None  # None: every weekday (Monday = 0)
    date_start: date | None = None
    date_end: date | None = None

    @property
    def all_day(self) -> bool:
        return self.start is None or self.start == self.end

    @property
    def overnight(self) -> bool:
        return self.start is not None and self.end is not None and self.start > self.end

    def matches_day(self, day: date) -> bool:
        """Whether a window may open on local `day` (date range and weekday)."""
        if self.date_start is not None and day < self.date_start:
            return False
        if self.date_end is not None and day > self.date_end:
            return False
        return self.days is None or day.weekday() in self.days

    def intervals(self, day: date) -> list[tuple[int, int]]:
        """This rule's active minutes of local `day`, as [start, end) pairs."""
        found: list[tuple[int, int]] = []
        if self.matches_day(day):
            if self.all_day:
                found.append((0, MINUTES_PER_DAY))
            elif self.overnight:
                found.append((self.start, MINUTES_PER_DAY))  # type: ignore[arg-type]
            else:
                found.append((self.start, self.end))  # type: ignore[arg-type]
        if self.overnight and self.end and self.matches_day(day - timedelta(days=1)):
            found.append((0, self.end))  # the morning part of yesterday's window
        return found

    def active_at(self, wall: datetime) -> bool:
        minute = wall.hour * 60 + wall.minute
        return any(a <= minute < b for a, b in self.intervals(wall.date()))

    def describe(self) -> str:
        parts: list[str] = []
        if self.days is not None:
            parts.append(",".join(_SHORT_DAY[d] for d in sorted(self.days)))
        if self.date_start is not None or self.date_end is not None:
            start = self.date_start.isoformat() if self.date_start else "…"
            end = self.date_end.isoformat() if self.date_end else "…"
            parts.append(f"{start}..{end}")
        if self.all_day:
            parts.append("all day")
        else:
            parts.append(f"{_hhmm(self.start)}-{_hhmm(self.end)}")  # type: ignore[arg-type]
        return f"{self.name}: {' '.join(parts)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_time(value: Any, where: str, *, allow_24: bool) -> int:
    match = _TIME_RE.match(value) if isinstance(value, str) else None
    if match:
        hours, minutes = int(match.group(1)), int(match.group(2))
        if minutes < 60 and (hours < 24 or (allow_24 and hours == 24 and minutes == 0)):
            return hours * 60 + minutes
    return _fail(f"{where}: invalid time {value!r} (expected HH:MM, 00:00-23:59)")


def _parse_date(value: Any, where: str) -> date:
    if isinstance(value, str) and _DATE_RE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    return _fail(f"{where}: invalid date {value!r} (expected YYYY-MM-DD)")


def _fail(message: str) -> Any:
    raise ScheduleError(message)


def _parse_rule(raw: Any, index: int) -> Rule:
    where = f"spec.rules[{index}]"
    if not isinstance(raw, Mapping):
        _fail(f"{where}: must be an object")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        _fail(f"{where}.name: must be a string")
    rule_name = name or f"rule-{index}"

    start = end = None
    time_range = raw.get("timeRange")
    if time_range is not None:
        if not isinstance(time_range, Mapping):
            _fail(f"{where}.timeRange: must be an object")
        # A missing bound is open: start defaults to midnight, end to the end of the day.
        raw_start, raw_end = time_range.get("start"), time_range.get("end")
        start = _parse_time(
            "00:00" if raw_start is None else raw_start, f"{where}.timeRange.start", allow_24=False
        )
        end = _parse_time("24:00" if raw_end is None else raw_end, f"{where}.timeRange.end", allow_24=True)
        if end == MINUTES_PER_DAY and start == 0:
            start = end = None  # 00:00-24:00 is all day

    days = None
    raw_days = raw.get("daysOfWeek")
    if raw_days is not None:
        if not isinstance(raw_days, list):
            _fail(f"{where}.daysOfWeek: must be a list of weekday names")
        parsed: set[int] = set()
        for i, day_name in enumerate(raw_days):
            key = day_name.strip().lower() if isinstance(day_name, str) else None
            if key not in _WEEKDAY_BY_NAME:
                _fail(f"{where}.daysOfWeek[{i}]: unknown weekday {day_name!r} (expected Monday..Sunday)")
            parsed.add(_WEEKDAY_BY_NAME[key])  # type: ignore[index]
        days = frozenset(parsed) if parsed else None  # an empty list restricts nothing

    date_start = date_end = None
    date_range = raw.get("dateRange")
    if date_range is not None:
        if not isinstance(date_range, Mapping):
            _fail(f"{where}.dateRange: must be an object")
        if date_range.get("start") is not None:
            date_start = _parse_date(date_range["start"], f"{where}.dateRange.start")
        if date_range.get("end") is not None:
            date_end = _parse_date(date_range["end"], f"{where}.dateRange.end")
        if date_start and date_end and date_start > date_end:
            _fail(f"{where}.dateRange: start {date_start} is after end {date_end}")
    return Rule(rule_name, start, end, days, date_start, date_end)


def parse_timezone(name: Any) -> ZoneInfo:
    if name is None or name == "":
        return ZoneInfo("UTC")
    if isinstance(name, str):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return _fail(f"spec.timezone: unknown timezone {name!r} (expected an IANA name such as Europe/Berlin)")


def parse_action(value: Any) -> str:
    if value is None:
        return DENY
    if isinstance(value, str) and value.strip().lower() in ("allow", "deny"):
        return ALLOW if value.strip().lower() == "allow" else DENY
    return _fail(f"spec.action: must be Allow or Deny, not {value!r}")


# --- zone offsets ----------------------------------------------------------------------


def _offset_at(tz: ZoneInfo, moment: datetime) -> timedelta:
    return moment.astimezone(tz).utcoffset() or timedelta(0)


@lru_cache(maxsize=4096)
def offset_changes(tz: ZoneInfo, year: int) -> tuple[datetime, ...]:
    """Instants in (year-01-01, next year-01-01] UTC at which `tz` changes its UTC offset.

    Found by probing once a day (zones do not change their offset twice within a day) and
    bisecting to the second; cached, since zone rules do not change while we run.
    """
    if not 1 <= year < 9999:
        return ()
    found: list[datetime] = []
    low = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    base = _offset_at(tz, low)
    while low < end:
        high = min(low + _OFFSET_PROBE, end)
        offset = _offset_at(tz, high)
        if offset != base:
            lo_s, hi_s = int(low.timestamp()), int(high.timestamp())
            while hi_s - lo_s > 1:  # invariant: offset(lo) == base != offset(hi)
                mid = (lo_s + hi_s) // 2
                if _offset_at(tz, datetime.fromtimestamp(mid, UTC)) == base:
                    lo_s = mid
                else:
                    hi_s = mid
            found.append(datetime.fromtimestamp(hi_s, UTC))
            base = offset
        low = high
    return tuple(found)


# --- evaluation ------------------------------------------------------------------------


@dataclass
class Schedule:
    """A parsed schedule: rules in a timezone with an action."""

    rules: tuple[Rule, ...]
    tz: ZoneInfo
    action: str = DENY
    _profiles: dict[date, tuple[tuple[int, int], ...]] = field(default_factory=dict, repr=False)

    @property
    def timezone(self) -> str:
        return self.tz.key

    # wall-clock space ---------------------------------------------------------------

    def profile(self, day: date) -> tuple[tuple[int, int], ...]:
        """Merged active minutes of local `day`, sorted [start, end) pairs."""
        cached = self._profiles.get(day)
        if cached is None:
            merged: list[list[int]] = []
            for a, b in sorted(iv for rule in self.rules for iv in rule.intervals(day)):
                if merged and a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            cached = self._profiles[day] = tuple((a, b) for a, b in merged)
        return cached

    def wall_active(self, wall: datetime) -> bool:
        minute = wall.hour * 60 + wall.minute
        return any(a <= minute < b for a, b in self.profile(wall.date()))

    def _timeline(self, day: date) -> list[tuple[int, bool]]:
        """(minute, value from then on) for local `day`: the value at 00:00, then every change."""
        spans = self.profile(day)
        events = [(0, bool(spans) and spans[0][0] == 0)]
        for a, b in spans:
            if a > 0:
                events.append((a, True))
            if b < MINUTES_PER_DAY:
                events.append((b, False))
        return events

    def _edge_days(self) -> list[date]:
        """Days on which the set of rules in their date range changes (for a day or its eve)."""
        edges: set[date] = set()
        for rule in self.rules:
            for bound, shifts in ((rule.date_start, (0, 1)), (rule.date_end, (1, 2))):
                if bound is not None and bound < _LAST_DAY:
                    edges.update(bound + timedelta(days=s) for s in shifts)
        return sorted(edges)

    def next_wall_change(self, start: datetime, limit: datetime | None) -> datetime | None:
        """First wall-clock time after `start` (and before `limit`) where activity changes."""
        value = self.wall_active(start)
        after = start.hour * 60 + start.minute
        day = start.date()
        edges = self._edge_days()
        quiet = 0
        first = True
        while day <= _LAST_DAY:
            if limit is not None and not first and datetime.combine(day, time()) >= limit:
                return None
            if day in edges:
                quiet = 0
            for minute, new_value in self._timeline(day):
                if first and minute <= after:
                    continue
                if new_value != value:
                    found = datetime.combine(day, time()) + timedelta(minutes=minute)
                    return found if limit is None or found < limit else None
            if not first:
                quiet += 1
            first = False
            if quiet >= 7:
                # Seven quiet days between edges cover every weekday: quiet until the next edge.
                later = [e for e in edges if e > day]
                if not later:
                    return None
                day, quiet = later[0], 0
            else:
                day += timedelta(days=1)
        return None

    # real time ----------------------------------------------------------------------

    def _wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz).replace(tzinfo=None)

    def _offset(self, moment: datetime) -> timedelta:
        return _offset_at(self.tz, moment)

    def active_at(self, moment: datetime) -> bool:
        return self.wall_active(self._wall(moment))

    def active_rules(self, moment: datetime) -> list[str]:
        wall = self._wall(moment)
        return [rule.name for rule in self.rules if rule.active_at(wall)]

    def _next_offset_change(self, after: datetime, until: datetime) -> datetime | None:
        """First instant in (after, until] at which the zone's UTC offset changes."""
        for year in range(after.year - 1, until.year + 1):
            for change in offset_changes(self.tz, year):
                if after < change <= until:
                    return change
                if change > until:
                    return None
        return None

    def next_transition(self, now: datetime) -> datetime | None:
        """The next instant after `now` at which `active` changes; None if it never does."""
        current = self.active_at(now)
        # Wall clocks never jump back by more than a day; if the schedule is constant in
        # wall-clock space from two days before `now` on, nothing will ever change.
        early = self._wall(now) - timedelta(days=2)
        if self.wall_active(early) == current and self.next_wall_change(early, None) is None:
            return None
        horizon = now + HORIZON
        moment = now
        while moment < horizon:
            offset = self._offset(moment)
            wall_change = self.next_wall_change(self._wall(moment), (horizon + offset).replace(tzinfo=None))
            candidate = (wall_change - offset).replace(tzinfo=UTC) if wall_change else horizon
            jump = self._next_offset_change(moment, candidate)
            if jump is None:
                return candidate if wall_change else None
            if self.active_at(jump) != current:
                return jump  # the wall clock jumped into (or out of) a window
            moment = jump
        return None

    def next_rules_change(self, now: datetime) -> datetime | None:
        """The next instant after `now` at which the set of active rules changes.

        Every change of `active` is one, but overlapping rules also hand over to each other
        without `active` changing; the status lists active rules, so its resync aims here.
        """
        changes = [
            change
            for rule in self.rules
            if (change := Schedule((rule,), self.tz, self.action).next_transition(now)) is not None
        ]
        return min(changes, default=None)

    def describe(self) -> str:
        return "; ".join(rule.describe() for rule in self.rules)


def parse_schedule(spec: Any) -> Schedule:
    """Parse `spec.rules`, `spec.timezone` and `spec.action`; raises ScheduleError."""
    if not isinstance(spec, Mapping):
        _fail("spec: must be an object")
    raw_rules = spec.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        _fail("spec.rules: at least one rule is required")
    rules = tuple(_parse_rule(raw, i) for i, raw in enumerate(raw_rules))
    return Schedule(
        rules=rules, tz=parse_timezone(spec.get("timezone")), action=parse_action(spec.get("action"))
    )
