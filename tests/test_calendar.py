"""Tests for monitor.calendar: business time in a team's zone, hours, holidays and closed days."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.calendar import WEEKDAYS, BusinessCalendar, parse_hours

HOUR = 3600.0
MICROSECOND = timedelta(microseconds=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone))


def london_office(**kwargs: object) -> BusinessCalendar:
    return BusinessCalendar.from_config("Europe/London", {"mon-fri": "09:00-17:30"}, **kwargs)  # type: ignore[arg-type]


# --- brute-force reference -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarSpec:
    """What a random calendar is made of, so the reference can be built independently of the code."""

    timezone: str
    hours: Mapping[int, Sequence[tuple[int, int]]]
    country: str | None
    subdivision: str | None
    closed: frozenset[date]

    def build(self) -> BusinessCalendar:
        return BusinessCalendar(self.timezone, self.hours, self.country, self.subdivision, self.closed)


class ReferenceCalendar:
    """Opening decided instant by instant, straight from the definition: the instant's local date, then
    that date's spans turned into instants with fold=0 wall-clock arithmetic."""

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self.zone = ZoneInfo(spec.timezone)
        self.holiday_dates: set[date] = set()
        if spec.country is not None:
            self.holiday_dates = set(
                holidays.country_holidays(spec.country, subdiv=spec.subdivision, years=range(2010, 2028))
            )

    def is_open(self, at: datetime) -> bool:
        day = at.astimezone(self.zone).date()
        if day in self.spec.closed or day in self.holiday_dates:
            return False
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        return any(
            midnight + timedelta(minutes=start) <= at < midnight + timedelta(minutes=end)
            for start, end in self.spec.hours.get(day.weekday(), ())
        )


WINDOW_BEFORE = timedelta(days=2)
WINDOW_MINUTES = 5 * 1440


@dataclass(frozen=True)
class MinuteWindow:
    """The reference's verdict for each UTC minute of five days around an anchor, with running totals.

    Exact for minute-aligned instants: every zone here has whole-minute offsets, so every span boundary
    falls on a UTC minute and each minute is wholly open or wholly closed.
    """

    start: datetime
    open_minutes: list[bool]
    open_before: list[int]
    """``open_before[i]``: open minutes in the first ``i`` minutes of the window."""

    @classmethod
    def around(cls, reference: ReferenceCalendar, anchor: datetime) -> MinuteWindow:
        start = anchor - WINDOW_BEFORE
        open_minutes = [
            reference.is_open(start + timedelta(minutes=i, seconds=30)) for i in range(WINDOW_MINUTES)
        ]
        open_before = [0]
        for is_open in open_minutes:
            open_before.append(open_before[-1] + is_open)
        return cls(start, open_minutes, open_before)

    def at(self, minute: int) -> datetime:
        return self.start + timedelta(minutes=minute)


# Zones and instants near their DST changes (and Samoa's skipped 2011-12-30): Santiago changes at local
# midnight, Havana jumps over midnight in spring and repeats it in autumn, Lord Howe shifts by 30 minutes.
ANCHORS: list[tuple[str, datetime]] = [
    ("Europe/London", utc(2026, 3, 29, 1)),
    ("Europe/London", utc(2026, 10, 25, 1)),
    ("America/New_York", utc(2026, 3, 8, 7)),
    ("America/New_York", utc(2026, 11, 1, 6)),
    ("Australia/Lord_Howe", utc(2026, 4, 4, 15)),
    ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30)),
    ("America/Santiago", utc(2026, 4, 5, 3)),
    ("America/Santiago", utc(2026, 9, 6, 4)),
    ("America/Havana", utc(2026, 3, 8, 5)),
    ("America/Havana", utc(2026, 11, 1, 5)),
    ("Pacific/Apia", utc(2011, 12, 30, 10)),
    ("Asia/Kolkata", utc(2026, 4, 3, 12)),
    ("UTC", utc(2026, 8, 30, 12)),
]
HOLIDAY_SETS: list[tuple[str | None, str | None]] = [(None, None), ("GB", "ENG"), ("US", "NY"), ("CL", None)]


@st.composite
def day_spans(draw: st.DrawFn) -> list[tuple[int, int]]:
    bounds = sorted(draw(st.lists(st.integers(0, 96).map(lambda q: q * 15), unique=True, max_size=6)))
    return [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds) - 1, 2)]


@st.composite
def calendar_and_anchor(draw: st.DrawFn) -> tuple[CalendarSpec, datetime]:
    timezone, anchor = draw(st.sampled_from(ANCHORS))
    hours = {day: spans for day in range(7) if (spans := draw(day_spans()))}
    if not hours:
        hours = {draw(st.integers(0, 6)): [(0, 24 * 60)]}
    country, subdivision = draw(st.sampled_from(HOLIDAY_SETS))
    anchor_day = anchor.date()
    closed = frozenset(anchor_day + timedelta(days=n) for n in draw(st.lists(st.integers(-3, 3), max_size=2)))
    return CalendarSpec(timezone, hours, country, subdivision, closed), anchor


# --- properties ------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    calendar_and_anchor(),
    st.lists(st.tuples(st.integers(0, WINDOW_MINUTES), st.integers(0, WINDOW_MINUTES)), max_size=30),
)
def test_calendar_matches_minute_by_minute_reference(
    case: tuple[CalendarSpec, datetime], drawn_pairs: list[tuple[int, int]]
) -> None:
    spec, anchor = case
    calendar, window = spec.build(), MinuteWindow.around(ReferenceCalendar(spec), anchor)
    zone = ZoneInfo(spec.timezone)

    for minute, is_open in enumerate(window.open_minutes):
        assert calendar.is_open(window.at(minute)) == is_open, window.at(minute)
        assert calendar.is_open(window.at(minute) + timedelta(seconds=59)) == is_open

    # Drawn intervals, and a sweep of starts over every time of day with lengths from minutes to days.
    sweep = [(a, min(WINDOW_MINUTES, a + 7 + (a * 7) % (3 * 1440))) for a in range(0, WINDOW_MINUTES, 41)]
    for first, last in [*drawn_pairs, *sweep]:
        start, end = window.at(first), window.at(last)
        expected = 60.0 * max(0, window.open_before[last] - window.open_before[first])
        assert calendar.business_seconds_between(start, end) == expected, (start, end)
        # The same instants written in the calendar's own zone give the same answer.
        assert calendar.business_seconds_between(start.astimezone(zone), end.astimezone(zone)) == expected

        opening = next((m for m in range(first, WINDOW_MINUTES) if window.open_minutes[m]), None)
        if opening is not None:
            assert calendar.next_opening(start) == window.at(opening), start

        minutes = window.open_before[last] - window.open_before[first]
        if minutes > 0:
            due = next(
                m
                for m in range(first, last + 1)
                if window.open_before[m] - window.open_before[first] == minutes
            )
            assert calendar.add_business_seconds(start, 60.0 * minutes) == window.at(due), (start, minutes)
            assert calendar.add_business_seconds(start.astimezone(zone), 60.0 * minutes) == window.at(due)


@settings(max_examples=150, deadline=None)
@given(
    calendar_and_anchor(),
    st.integers(-3 * 86400 * 10**6, 3 * 86400 * 10**6),
    st.floats(0, 3, allow_nan=False),
)
def test_add_business_seconds_is_inverse_of_between(
    case: tuple[CalendarSpec, datetime], offset_us: int, weeks: float
) -> None:
    # Up to three weeks of the calendar's own business time (a sparse calendar takes years otherwise).
    seconds = weeks * 60 * sum(end - start for spans in case[0].hours.values() for start, end in spans)
    spec, anchor = case
    calendar = spec.build()
    start = anchor + timedelta(microseconds=offset_us)
    due = calendar.add_business_seconds(start, seconds)
    assert due.tzinfo is UTC
    assert due >= start
    assert calendar.business_seconds_between(start, due) == pytest.approx(seconds, abs=1e-6)
    if round(seconds * 1e6) >= 1:
        # The earliest such instant: the microsecond before it is open and one microsecond short.
        assert calendar.is_open(due - MICROSECOND)
        assert calendar.business_seconds_between(start, due - MICROSECOND) < seconds


@settings(max_examples=150, deadline=None)
@given(calendar_and_anchor(), st.integers(-3 * 86400 * 10**6, 3 * 86400 * 10**6))
def test_next_opening_is_first_open_instant(case: tuple[CalendarSpec, datetime], offset_us: int) -> None:
    spec, anchor = case
    calendar = spec.build()
    at = anchor + timedelta(microseconds=offset_us)
    opening = calendar.next_opening(at)
    assert opening >= at
    assert calendar.is_open(opening)
    assert calendar.business_seconds_between(at, opening) == 0
    if calendar.is_open(at):
        assert opening == at


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted({zone for zone, _ in ANCHORS})),
    st.datetimes(min_value=datetime(2011, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    st.integers(0, 400 * 86400 * 10**6),
)
def test_always_open_equals_wall_clock(timezone: str, start: datetime, length_us: int) -> None:
    calendar = BusinessCalendar.always_open(timezone)
    end = start + timedelta(microseconds=length_us)
    assert calendar.business_seconds_between(start, end) == pytest.approx(length_us / 1e6, abs=1e-6)
    assert calendar.add_business_seconds(start, length_us / 1e6) == end
    assert calendar.is_open(start)
    assert calendar.next_opening(start) == start


@pytest.mark.parametrize("timezone", ["Europe/London", "America/Santiago"])
def test_explicit_full_week_hours_count_like_always_open(timezone: str) -> None:
    # A full week written out, but with a closed day far away, walks the days instead of the shortcut.
    walked = BusinessCalendar.from_config(timezone, {"mon-sun": "00:00-24:00"}, closed=["2000-01-01"])
    start, end = utc(2026, 3, 20, 13, 7), utc(2026, 11, 2, 1, 2, 3, 4)
    assert walked.business_seconds_between(start, end) == (end - start).total_seconds()


# --- DST -------------------------------------------------------------------------------------------------


def test_london_spring_forward_whole_day_has_23_hours() -> None:
    sundays = BusinessCalendar.from_config("Europe/London", {"sun": "00:00-24:00"})
    every_day = BusinessCalendar.from_config("Europe/London", {"mon-sun": "00:00-24:00"})
    # Sunday 2026-03-29 runs from 00:00 GMT (00:00Z) to Monday 00:00 BST (23:00Z).
    for calendar in (sundays, every_day):
        assert (
            calendar.business_seconds_between(
                local("Europe/London", 2026, 3, 29), local("Europe/London", 2026, 3, 30)
            )
            == 23 * HOUR
        )
    assert sundays.business_seconds_between(utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)) == 23 * HOUR
    assert not sundays.is_open(utc(2026, 3, 28, 23, 59, 59))
    assert sundays.is_open(utc(2026, 3, 29, 0))
    assert sundays.is_open(utc(2026, 3, 29, 22, 59, 59))
    assert not sundays.is_open(utc(2026, 3, 29, 23))
    assert sundays.add_business_seconds(utc(2026, 3, 28, 12), 23 * HOUR) == utc(2026, 3, 29, 23)


def test_london_fall_back_whole_day_has_25_hours() -> None:
    sundays = BusinessCalendar.from_config("Europe/London", {"sun": "00:00-24:00"})
    # Sunday 2026-10-25 runs from 00:00 BST (Saturday 23:00Z) to Monday 00:00 GMT (00:00Z).
    assert sundays.business_seconds_between(utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)) == 25 * HOUR
    assert not sundays.is_open(utc(2026, 10, 24, 22, 59))
    assert sundays.is_open(utc(2026, 10, 24, 23))
    assert sundays.is_open(utc(2026, 10, 25, 23, 59))
    assert not sundays.is_open(utc(2026, 10, 26, 0))
    assert sundays.add_business_seconds(utc(2026, 10, 24, 12), 25 * HOUR) == utc(2026, 10, 26)


def test_london_office_hours_over_spring_forward_weekend() -> None:
    office = london_office()
    friday = local("Europe/London", 2026, 3, 27, 17)  # GMT: 17:00Z
    monday = local("Europe/London", 2026, 3, 30, 9, 30)  # BST: 08:30Z
    assert friday == utc(2026, 3, 27, 17)
    assert monday == utc(2026, 3, 30, 8, 30)
    assert office.business_seconds_between(friday, monday) == HOUR
    assert office.add_business_seconds(friday, HOUR) == utc(2026, 3, 30, 8, 30)
    assert office.next_opening(friday + timedelta(hours=1)) == utc(2026, 3, 30, 8)


def test_london_office_hours_over_fall_back_weekend() -> None:
    office = london_office()
    friday = local("Europe/London", 2026, 10, 23, 17)  # BST: 16:00Z
    assert office.add_business_seconds(friday, HOUR) == utc(2026, 10, 26, 9, 30)  # GMT
    assert office.business_seconds_between(friday, utc(2026, 10, 26, 9, 30)) == HOUR


def test_london_daily_hours_move_in_utc_across_the_change() -> None:
    daily = BusinessCalendar.from_config("Europe/London", {"mon-sun": "09:00-17:30"})
    # Saturday 2026-03-28 is GMT, Sunday 2026-03-29 BST: the same wall hours, an hour apart in UTC.
    assert daily.is_open(utc(2026, 3, 28, 9, 10))
    assert not daily.is_open(utc(2026, 3, 28, 8, 10))
    assert daily.is_open(utc(2026, 3, 29, 8, 10))
    assert not daily.is_open(utc(2026, 3, 29, 16, 45))
    for day in (28, 29):
        assert daily.business_seconds_between(utc(2026, 3, day), utc(2026, 3, day, 23)) == 8.5 * HOUR


def test_spans_at_skipped_and_repeated_times_resolve_with_fold_0() -> None:
    # Spring forward: 01:30 does not exist; fold=0 reads it with GMT, 01:30Z (02:30 BST), and 03:00 BST is
    # 02:00Z, so the span holds 30 real minutes.
    spring = BusinessCalendar.from_config("Europe/London", {"sun": "01:30-03:00"})
    assert spring.business_seconds_between(utc(2026, 3, 28), utc(2026, 3, 30)) == 0.5 * HOUR
    assert spring.next_opening(utc(2026, 3, 29)) == utc(2026, 3, 29, 1, 30)
    # A span wholly inside the gap is read with GMT too: 02:15-02:45 BST.
    inside_gap = BusinessCalendar.from_config("Europe/London", {"sun": "01:15-01:45"})
    assert inside_gap.business_seconds_between(utc(2026, 3, 28), utc(2026, 3, 30)) == 0.5 * HOUR
    assert inside_gap.next_opening(utc(2026, 3, 29)) == utc(2026, 3, 29, 1, 15)
    assert not inside_gap.is_open(utc(2026, 3, 29, 0, 30))  # 01:30 local the week before would be open
    assert inside_gap.is_open(utc(2026, 3, 22, 1, 30))
    # Fall back: 01:30 happens twice; fold=0 takes the first (BST, 00:30Z).
    before = BusinessCalendar.from_config("Europe/London", {"sun": "00:00-01:30"})
    assert before.business_seconds_between(utc(2026, 10, 24), utc(2026, 10, 26)) == 1.5 * HOUR
    assert not before.is_open(utc(2026, 10, 25, 1, 15))  # the second 01:15, after the first 01:30
    after = BusinessCalendar.from_config("Europe/London", {"sun": "01:30-02:00"})
    assert after.business_seconds_between(utc(2026, 10, 24), utc(2026, 10, 26)) == 1.5 * HOUR


def test_spans_around_a_dst_gap_are_joined_and_empty_ones_dropped() -> None:
    # On 2026-03-29, 01:15-01:30 (in the gap) is 01:15Z-01:30Z and 02:00-03:00 BST is 01:00Z-02:00Z: the
    # later span starts first and covers the earlier one, so the day holds one real hour, counted once.
    covered = BusinessCalendar.from_config("Europe/London", {"sun": "01:15-01:30,02:00-03:00"})
    assert covered.business_seconds_between(utc(2026, 3, 28), utc(2026, 3, 30)) == HOUR
    assert covered.next_opening(utc(2026, 3, 29)) == utc(2026, 3, 29, 1)
    assert covered.add_business_seconds(utc(2026, 3, 29), HOUR) == utc(2026, 3, 29, 2)
    # 01:30-02:00 runs from 01:30Z back to 01:00Z that day: empty, and it takes nothing from later spans.
    backwards = BusinessCalendar.from_config("Europe/London", {"sun": "01:30-02:00,09:00-10:00"})
    assert backwards.business_seconds_between(utc(2026, 3, 28), utc(2026, 3, 30)) == HOUR
    assert backwards.add_business_seconds(utc(2026, 3, 28), HOUR / 2) == utc(2026, 3, 29, 8, 30)
    assert backwards.next_opening(utc(2026, 3, 29)) == utc(2026, 3, 29, 8)
    # The Sunday before, both spans are ordinary GMT hours.
    assert backwards.business_seconds_between(utc(2026, 3, 21), utc(2026, 3, 23)) == 1.5 * HOUR


def test_new_york_dst() -> None:
    office = BusinessCalendar.from_config("America/New_York", {"mon-fri": "09:00-17:00"})
    friday = local("America/New_York", 2026, 3, 6, 16)  # EST: 21:00Z
    assert friday == utc(2026, 3, 6, 21)
    assert office.add_business_seconds(friday, 2 * HOUR) == utc(2026, 3, 9, 14)  # Monday 10:00 EDT
    assert office.business_seconds_between(friday, utc(2026, 3, 9, 14)) == 2 * HOUR
    sundays = BusinessCalendar.from_config("America/New_York", {"sun": "00:00-24:00"})
    assert sundays.business_seconds_between(utc(2026, 3, 7), utc(2026, 3, 10)) == 23 * HOUR
    assert sundays.business_seconds_between(utc(2026, 10, 31), utc(2026, 11, 3)) == 25 * HOUR
    assert sundays.is_open(utc(2026, 11, 1, 4))  # 00:00 EDT
    assert sundays.is_open(utc(2026, 11, 2, 4, 59))  # 23:59 EST on Sunday, which would be Monday in EDT
    assert not sundays.is_open(utc(2026, 11, 2, 5))  # Monday 00:00 EST


# --- holidays and closed days ----------------------------------------------------------------------------


def test_late_summer_bank_holiday_monday_is_skipped() -> None:
    friday = local("Europe/London", 2026, 8, 28, 17)  # BST: 16:00Z
    with_holidays = london_office(country="GB", subdivision="ENG")
    without = london_office()
    assert with_holidays.add_business_seconds(friday, HOUR) == utc(2026, 9, 1, 8, 30)
    assert without.add_business_seconds(friday, HOUR) == utc(2026, 8, 31, 8, 30)
    assert not with_holidays.is_open(utc(2026, 8, 31, 10))
    assert without.is_open(utc(2026, 8, 31, 10))
    assert with_holidays.business_seconds_between(friday, utc(2026, 9, 1, 8, 30)) == HOUR
    assert with_holidays.next_opening(utc(2026, 8, 31, 10)) == utc(2026, 9, 1, 8)


def test_easter_good_friday_and_monday_are_skipped() -> None:
    office = london_office(country="GB", subdivision="ENG")
    thursday = local("Europe/London", 2026, 4, 2, 17)
    assert office.add_business_seconds(thursday, HOUR) == utc(2026, 4, 7, 8, 30)  # Tuesday 09:30 BST


def test_extra_closed_date() -> None:
    wednesday = utc(2026, 12, 23, 17)  # GMT
    assert london_office().add_business_seconds(wednesday, HOUR) == utc(2026, 12, 24, 9, 30)
    closed_eve = london_office(closed=["2026-12-24"])
    assert closed_eve.add_business_seconds(wednesday, HOUR) == utc(2026, 12, 25, 9, 30)
    assert not closed_eve.is_open(utc(2026, 12, 24, 10))
    # With England's holidays too: Christmas Friday, weekend, Boxing Day observed on Monday 28th.
    closed_and_holidays = london_office(country="GB", subdivision="ENG", closed=[date(2026, 12, 24)])
    assert closed_and_holidays.add_business_seconds(wednesday, HOUR) == utc(2026, 12, 29, 9, 30)
    assert closed_and_holidays.business_seconds_between(wednesday, utc(2026, 12, 29, 9, 30)) == HOUR


def test_holidays_are_looked_up_per_year_of_the_local_date() -> None:
    # New Year's Day 2027 starts at 2026-12-31 11:00Z in Auckland (UTC+13 in summer), on 31 December in UTC.
    office = BusinessCalendar.from_config("Pacific/Auckland", {"mon-sun": "00:00-24:00"}, country="NZ")
    assert not office.is_open(utc(2026, 12, 31, 12))  # 01:00 on 1 January in Auckland
    assert office.is_open(utc(2026, 12, 31, 10))  # 23:00 on 31 December


# --- everyday cases --------------------------------------------------------------------------------------


def test_split_day() -> None:
    split = BusinessCalendar.from_config("UTC", {"mon-fri": "09:00-12:30,13:30-17:30"})
    tuesday = date(2026, 6, 2)
    at = utc(tuesday.year, tuesday.month, tuesday.day, 12)
    assert split.business_seconds_between(at, at + timedelta(hours=2)) == HOUR
    assert split.add_business_seconds(at, HOUR) == at + timedelta(hours=2)
    assert split.add_business_seconds(at, 0.5 * HOUR) == at + timedelta(minutes=30)  # span end, not 13:30
    assert split.add_business_seconds(at, 0.5 * HOUR + 1) == at + timedelta(hours=1.5, seconds=1)
    assert not split.is_open(at + timedelta(hours=1))
    assert split.next_opening(at + timedelta(hours=1)) == at + timedelta(hours=1.5)
    assert split.next_opening(at + timedelta(minutes=30)) == at + timedelta(hours=1.5)  # closes at 12:30
    assert split.business_seconds_between(utc(2026, 6, 2), utc(2026, 6, 3)) == 7.5 * HOUR


def test_touching_spans_are_one_span() -> None:
    touching = BusinessCalendar("UTC", {0: [(540, 720), (720, 1020)]})
    assert touching.hours == {0: ((540, 1020),)}
    monday_noon = utc(2026, 6, 1, 12)
    assert touching.is_open(monday_noon)
    assert touching.add_business_seconds(utc(2026, 6, 1, 9), 3 * HOUR) == monday_noon


def test_arrival_friday_evening_is_due_monday() -> None:
    office = london_office()
    friday_evening = local("Europe/London", 2026, 6, 5, 19)
    due = office.add_business_seconds(friday_evening, 4 * HOUR)
    assert due == local("Europe/London", 2026, 6, 8, 13)
    assert due == utc(2026, 6, 8, 12)
    assert office.business_seconds_between(friday_evening, due) == 4 * HOUR


def test_arrival_before_opening_counts_from_opening() -> None:
    office = london_office()
    arrival = local("Europe/London", 2026, 6, 2, 7)
    reply = local("Europe/London", 2026, 6, 2, 9, 15)
    assert office.business_seconds_between(arrival, reply) == 15 * 60
    assert office.add_business_seconds(arrival, 15 * 60) == reply
    assert office.next_opening(arrival) == local("Europe/London", 2026, 6, 2, 9)


def test_reply_outside_hours_to_mail_outside_hours_scores_zero() -> None:
    office = london_office()
    evening, late = local("Europe/London", 2026, 6, 2, 18), local("Europe/London", 2026, 6, 2, 21)
    assert office.business_seconds_between(evening, late) == 0
    saturday, sunday = local("Europe/London", 2026, 6, 6, 10), local("Europe/London", 2026, 6, 7, 15)
    assert office.business_seconds_between(saturday, sunday) == 0
    closing = local("Europe/London", 2026, 6, 2, 17, 30)
    assert office.business_seconds_between(closing, late) == 0


def test_two_zones_give_different_due_times_for_the_same_arrival() -> None:
    hours = {"mon-fri": "09:00-17:00"}
    london = BusinessCalendar.from_config("Europe/London", hours)
    new_york = BusinessCalendar.from_config("America/New_York", hours)
    arrival = utc(2026, 6, 1, 12)  # Monday: 13:00 BST, 08:00 EDT
    assert london.add_business_seconds(arrival, 4 * HOUR) == utc(2026, 6, 1, 16)  # 17:00 BST
    assert new_york.add_business_seconds(arrival, 4 * HOUR) == utc(2026, 6, 1, 17)  # 13:00 EDT
    assert london.business_seconds_between(arrival, utc(2026, 6, 1, 17)) == 4 * HOUR
    assert new_york.business_seconds_between(arrival, utc(2026, 6, 1, 17)) == 4 * HOUR


def test_zero_seconds_is_due_at_start_even_when_closed() -> None:
    office = london_office()
    saturday = local("Europe/London", 2026, 6, 6, 10)
    due = office.add_business_seconds(saturday, 0)
    assert due == saturday
    assert due.tzinfo is UTC


def test_results_are_utc() -> None:
    office = london_office()
    at = local("Europe/London", 2026, 6, 6, 10)
    for result in (office.add_business_seconds(at, 60), office.next_opening(at)):
        assert result.tzinfo is UTC


def test_a_week_of_business_time_over_christmas() -> None:
    office = london_office(country="GB", subdivision="ENG")
    start = utc(2026, 12, 18, 15)
    week = 5 * 8.5 * HOUR
    due = office.add_business_seconds(start, week)
    # Friday 2.5h, Monday to Thursday 34h, then Christmas (Friday) and Boxing Day observed (Monday 28th)
    # are skipped: the last 6h end on Tuesday 29th at 15:00 GMT.
    assert due == utc(2026, 12, 29, 15)
    assert office.business_seconds_between(start, due) == week


# --- parse_hours -----------------------------------------------------------------------------------------


def test_parse_hours() -> None:
    assert WEEKDAYS == ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    split = ((9 * 60, 12 * 60 + 30), (13 * 60 + 30, 17 * 60 + 30))
    assert parse_hours({"mon-fri": "09:00-12:30,13:30-17:30"}) == dict.fromkeys(range(5), split)
    assert parse_hours({"sat-sun": "00:00-24:00"}) == {5: ((0, 1440),), 6: ((0, 1440),)}
    assert parse_hours({"fri-mon": "10:00-11:00"}) == dict.fromkeys((0, 4, 5, 6), ((600, 660),))
    assert parse_hours({"wed": "13:30-17:30, 09:00-12:30"}) == {2: split}
    assert parse_hours({"Mon-Tue": "09:00 - 17:00", "thu": "08:00-12:00"}) == {
        0: ((540, 1020),),
        1: ((540, 1020),),
        3: ((480, 720),),
    }
    assert parse_hours({}) == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"mon-fri": "9-17"}, "invalid hours '9-17' for 'mon-fri': expected HH:MM-HH:MM"),
        ({"mon": "09:00-25:00"}, "invalid hours '09:00-25:00' for 'mon': expected HH:MM-HH:MM"),
        ({"mon": "09:00-24:01"}, "invalid hours '09:00-24:01' for 'mon': expected HH:MM-HH:MM"),
        ({"mon": "09:60-17:00"}, "invalid hours '09:60-17:00' for 'mon': expected HH:MM-HH:MM"),
        ({"mon": "09:00-17:00,"}, "invalid hours '09:00-17:00,' for 'mon': expected HH:MM-HH:MM"),
        ({"sat": ""}, "invalid hours '' for 'sat': expected HH:MM-HH:MM"),
        (
            {"mon": "17:00-09:00"},
            "invalid hours '17:00-09:00' for 'mon': '17:00-09:00' does not end after it starts",
        ),
        (
            {"mon": "09:00-09:00"},
            "invalid hours '09:00-09:00' for 'mon': '09:00-09:00' does not end after it starts",
        ),
        (
            {"mon": "11:00-13:00,09:00-12:00"},
            "invalid hours '11:00-13:00,09:00-12:00' for 'mon': '09:00-12:00' and '11:00-13:00' overlap",
        ),
        (
            {"mon-fri": "09:00-17:00", "wed": "10:00-12:00"},
            "day 'wed' given twice in hours: 'mon-fri' and 'wed'",
        ),
        (
            {"fri-mon": "09:00-17:00", "sun": "10:00-12:00"},
            "day 'sun' given twice in hours: 'fri-mon' and 'sun'",
        ),
        (
            {"mnd-fri": "09:00-17:00"},
            "invalid day 'mnd' in hours key 'mnd-fri': expected one of mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            {"weekdays": "09:00-17:00"},
            "invalid day 'weekdays' in hours key 'weekdays': expected one of mon, tue, wed, thu, fri,",
        ),
        (
            {"mon-tue-wed": "09:00-17:00"},
            "invalid day range 'mon-tue-wed' in hours: expected a day or a range",
        ),
        ({"mon-mon": "09:00-17:00"}, "invalid day range 'mon-mon' in hours: starts and ends on the same day"),
    ],
)
def test_parse_hours_errors(spec: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        parse_hours(spec)


# --- construction and input errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"timezone": "europe/london"}, "unknown time zone 'europe/london'"),
        ({"timezone": ""}, "unknown time zone ''"),
        ({"timezone": "/etc/passwd"}, "unknown time zone '/etc/passwd'"),
        ({"holidays_country": "XX"}, "unknown holidays country 'XX'"),
        ({"holidays_country": "GB", "holidays_subdivision": "XYZ"}, "unknown holidays subdivision 'XYZ'"),
        ({"holidays_subdivision": "ENG"}, "holidays subdivision 'ENG' given without a country"),
        ({"hours": {}}, "calendar has no opening hours"),
        ({"hours": {0: [], 6: []}}, "calendar has no opening hours"),
        ({"hours": {7: [(0, 60)]}}, "invalid weekday 7 in hours"),
        ({"hours": {0: [(60, 60)]}}, "invalid span (60, 60) for 'mon'"),
        ({"hours": {0: [(0, 1441)]}}, "invalid span (0, 1441) for 'mon'"),
        ({"hours": {0: [(0, 60), (30, 90)]}}, "overlapping spans for 'mon'"),
    ],
)
def test_invalid_calendar(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"timezone": "UTC", "hours": {0: [(540, 1020)]}} | kwargs
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        BusinessCalendar(**arguments)  # type: ignore[arg-type]


def test_invalid_closed_date_in_config() -> None:
    with pytest.raises(ValueError, match=re.escape("invalid closed date '2026-13-01': expected YYYY-MM-DD")):
        BusinessCalendar.from_config("UTC", {"mon": "09:00-17:00"}, closed=["2026-12-24", "2026-13-01"])


def test_naive_datetimes_are_rejected() -> None:
    office = london_office()
    naive, aware = datetime(2026, 6, 1, 10), utc(2026, 6, 1, 10)
    calls: list[Callable[[], object]] = [
        lambda: office.is_open(naive),
        lambda: office.next_opening(naive),
        lambda: office.add_business_seconds(naive, 60),
        lambda: office.business_seconds_between(naive, aware),
        lambda: office.business_seconds_between(aware, naive),
        lambda: BusinessCalendar.always_open().business_seconds_between(naive, aware),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="naive datetime '2026-06-01T10:00:00'"):
            call()


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_invalid_business_seconds(seconds: float) -> None:
    with pytest.raises(ValueError, match="invalid business seconds"):
        london_office().add_business_seconds(utc(2026, 6, 1), seconds)


def test_calendar_closed_for_ten_years_stops_walking() -> None:
    first_monday = date(2026, 1, 5)
    mondays = [first_monday + timedelta(weeks=n) for n in range(11 * 53)]
    never = BusinessCalendar.from_config("UTC", {"mon": "09:00-10:00"}, closed=mondays)
    with pytest.raises(ValueError, match="has not 1 business seconds within"):
        never.add_business_seconds(utc(2026, 1, 1), 1)
    with pytest.raises(ValueError, match="does not open within"):
        never.next_opening(utc(2026, 1, 1))
    # Between two instants is bounded by them, so it just answers.
    assert never.business_seconds_between(utc(2026, 1, 1), utc(2036, 1, 1)) == 0
