"""Business calendars: a time zone, weekly opening hours, public holidays and closed days, in business time.

Semantics, shared by every method:

* Opening hours are wall-clock spans per weekday in the calendar's zone, held as minutes since local
  midnight (``0..1440``; ``1440`` is the next midnight). Each span of a local date is turned into a pair of
  real instants, and business time is the real elapsed time inside those instants: on the night clocks go
  forward an hour of opening that never happens is not counted; on the night they go back the repeated
  hour counts twice.
* A local time that does not exist (skipped by a DST gap) or exists twice (repeated by a DST fold) is
  resolved with zoneinfo's ``fold=0`` rule, consistently: a skipped time takes the offset in force before
  the gap (``01:30`` on the London spring-forward night is ``01:30Z``, that is ``02:30`` BST) and a
  repeated time is its first occurrence. A span whose instants come out empty that day is closed.
* The instants of a local date are clipped to that date's own day (from its local midnight to the next),
  so an instant belongs to exactly one local date and is open when it lies in one of that date's spans.
* Spans are half-open: open at the opening minute, closed at the closing minute.

All datetimes taken must be timezone-aware (naive ones raise ValueError); all datetimes returned are UTC.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["WEEKDAYS", "BusinessCalendar", "parse_hours"]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names as written in configs, indexed like ``date.weekday()`` (0 is Monday)."""

MINUTES_PER_DAY = 1440

Span = tuple[int, int]
"""An opening span in minutes since local midnight: ``(start, end)`` with ``0 <= start < end <= 1440``."""

_SPAN = re.compile(r"(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_US_PER_SECOND = 1_000_000
# How far add_business_seconds / next_opening walk before giving up: a calendar with hours on paper
# can still be closed on every one of them (a long list of closed days).
_MAX_WALK_DAYS = 3653


def parse_hours(spec: Mapping[str, str]) -> dict[int, tuple[Span, ...]]:
    """Parse config hours (``{"mon-fri": "09:00-12:30,13:30-17:30"}``) into weekday -> sorted minute spans.

    Keys are a day (``mon``) or a day range (``mon-fri``, wrapping ``fri-mon``), case-insensitive. The
    result has an entry for each day named and none for the others (closed). Spans are minutes since
    local midnight, ``00:00-24:00`` is ``(0, 1440)``. Raises ValueError quoting the bad key or value.
    """
    result: dict[int, tuple[Span, ...]] = {}
    given_by: dict[int, str] = {}
    for key, value in spec.items():
        days = _parse_day_key(key)
        spans = _parse_spans(key, value)
        for day in days:
            if day in given_by:
                raise ValueError(f"day {WEEKDAYS[day]!r} given twice in hours: {given_by[day]!r} and {key!r}")
            given_by[day] = key
            result[day] = spans
    return dict(sorted(result.items()))


def _parse_day_key(key: str) -> list[int]:
    """Weekday numbers named by one hours key: ``mon``, ``mon-fri`` or wrapping ``fri-mon``."""
    if not isinstance(key, str):
        raise ValueError(f"invalid day {key!r} in hours: expected one of {', '.join(WEEKDAYS)}")
    names = key.strip().lower().split("-")
    if len(names) > 2:
        raise ValueError(f"invalid day range {key!r} in hours: expected a day or a range such as 'mon-fri'")
    numbers = []
    for name in names:
        if name.strip() not in WEEKDAYS:
            raise ValueError(
                f"invalid day {name.strip()!r} in hours key {key!r}: expected one of {', '.join(WEEKDAYS)}"
            )
        numbers.append(WEEKDAYS.index(name.strip()))
    if len(numbers) == 1:
        return numbers
    first, last = numbers
    if first == last:
        raise ValueError(f"invalid day range {key!r} in hours: starts and ends on the same day")
    return [(first + offset) % 7 for offset in range((last - first) % 7 + 1)]


def _parse_spans(key: str, value: str) -> tuple[Span, ...]:
    """Minute spans of one hours value such as ``09:00-12:30,13:30-17:30``, sorted."""
    expected = f"invalid hours {value!r} for {key!r}: expected HH:MM-HH:MM"
    if not isinstance(value, str):
        raise ValueError(expected)
    spans: list[tuple[Span, str]] = []
    for part in value.split(","):
        match = _SPAN.fullmatch(part.strip())
        if match is None:
            raise ValueError(expected)
        start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
        if not (_valid_clock(start_h, start_m) and _valid_clock(end_h, end_m)):
            raise ValueError(expected)
        start, end = start_h * 60 + start_m, end_h * 60 + end_m
        if end <= start:
            raise ValueError(
                f"invalid hours {value!r} for {key!r}: {part.strip()!r} does not end after it starts"
            )
        spans.append(((start, end), part.strip()))
    spans.sort()
    for (earlier, earlier_text), (later, later_text) in itertools.pairwise(spans):
        if later[0] < earlier[1]:
            raise ValueError(
                f"invalid hours {value!r} for {key!r}: {earlier_text!r} and {later_text!r} overlap"
            )
    return tuple(span for span, _ in spans)


def _valid_clock(hour: int, minute: int) -> bool:
    """Whether ``hour:minute`` is a wall-clock time, ``24:00`` (the next midnight) included."""
    return (hour < 24 and minute < 60) or (hour == 24 and minute == 0)


def _normalize_hours(hours: Mapping[int, Sequence[tuple[int, int]]]) -> dict[int, tuple[Span, ...]]:
    """Validate weekday -> minute spans; sort them and join spans that touch (``..-12:00`` + ``12:00-..``)."""
    normalized: dict[int, tuple[Span, ...]] = {}
    for day, spans in hours.items():
        if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6:
            raise ValueError(f"invalid weekday {day!r} in hours: expected 0 (Monday) to 6 (Sunday)")
        merged: list[Span] = []
        for start, end in sorted((int(start), int(end)) for start, end in spans):
            if not 0 <= start < end <= MINUTES_PER_DAY:
                raise ValueError(
                    f"invalid span ({start}, {end}) for {WEEKDAYS[day]!r}: "
                    f"expected minutes 0 <= start < end <= {MINUTES_PER_DAY}"
                )
            if merged and start < merged[-1][1]:
                raise ValueError(f"overlapping spans for {WEEKDAYS[day]!r}: {merged[-1]} and {(start, end)}")
            if merged and start == merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        if merged:
            normalized[day] = tuple(merged)
    return normalized


def _load_zone(timezone: str) -> ZoneInfo:
    """The zone named ``timezone``; ValueError naming it when it is not an IANA zone."""
    if not isinstance(timezone, str) or not timezone:
        raise ValueError(f"unknown time zone {timezone!r}: expected an IANA name such as 'Europe/London'")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ValueError(
            f"unknown time zone {timezone!r}: expected an IANA name such as 'Europe/London'"
        ) from err


def _check_holidays(country: str, subdivision: str | None) -> None:
    """Raise ValueError when the ``holidays`` package knows no such country or subdivision."""
    import holidays  # imported when a calendar names a country: its tables take a third of a second

    try:
        holidays.country_holidays(country)
    except NotImplementedError as err:
        raise ValueError(
            f"unknown holidays country {country!r}: expected an ISO 3166 code such as 'GB'"
        ) from err
    if subdivision is None:
        return
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as err:
        raise ValueError(f"unknown holidays subdivision {subdivision!r} for country {country!r}") from err


def _to_us(at: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, exactly; ValueError when naive."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()!r}: expected a timezone-aware datetime")
    return (at - _EPOCH) // _MICROSECOND


def _from_us(us: int) -> datetime:
    """The UTC datetime ``us`` microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=us)


class BusinessCalendar:
    """A team's business calendar: zone, weekly hours, public holidays and extra closed dates."""

    def __init__(
        self,
        timezone: str,
        hours: Mapping[int, Sequence[tuple[int, int]]],
        holidays_country: str | None = None,
        holidays_subdivision: str | None = None,
        closed: Iterable[date] = (),
    ) -> None:
        """Build a calendar; ``hours`` maps weekday (0 is Monday) to minute spans. ValueError when invalid."""
        self.timezone = timezone
        self.zone = _load_zone(timezone)
        self.hours: dict[int, tuple[Span, ...]] = _normalize_hours(hours)
        if not self.hours:
            raise ValueError("calendar has no opening hours: give at least one day with a span")
        if holidays_subdivision is not None and holidays_country is None:
            raise ValueError(f"holidays subdivision {holidays_subdivision!r} given without a country")
        if holidays_country is not None:
            _check_holidays(holidays_country, holidays_subdivision)
        self.holidays_country = holidays_country
        self.holidays_subdivision = holidays_subdivision
        self.closed: frozenset[date] = frozenset(
            date(day.year, day.month, day.day) if isinstance(day, datetime) else day for day in closed
        )
        self._always_open = (
            holidays_country is None
            and not self.closed
            and all(self.hours.get(day) == ((0, MINUTES_PER_DAY),) for day in range(7))
        )
        self._holidays_by_year: dict[int, frozenset[date]] = {}
        # Per-instance cache (not lru_cache on the method: that would keep every calendar alive).
        self._day = functools.lru_cache(maxsize=8192)(self._compute_day)

    @classmethod
    def from_config(
        cls,
        timezone: str,
        hours: Mapping[str, str],
        country: str | None = None,
        subdivision: str | None = None,
        closed: Iterable[date | str] = (),
    ) -> BusinessCalendar:
        """Build a calendar from config values: hours as text, closed dates as dates or ``YYYY-MM-DD``."""
        closed_dates = []
        for day in closed:
            if isinstance(day, date):
                closed_dates.append(day)
                continue
            try:
                closed_dates.append(date.fromisoformat(day))
            except (TypeError, ValueError) as err:
                raise ValueError(f"invalid closed date {day!r}: expected YYYY-MM-DD") from err
        return cls(timezone, parse_hours(hours), country, subdivision, closed_dates)

    @classmethod
    def always_open(cls, timezone: str = "UTC") -> BusinessCalendar:
        """A 24/7 calendar: business time equals real elapsed time."""
        return cls(timezone, {day: [(0, MINUTES_PER_DAY)] for day in range(7)})

    def __repr__(self) -> str:
        return (
            f"BusinessCalendar({self.timezone!r}, {self.hours!r}, {self.holidays_country!r}, "
            f"{self.holidays_subdivision!r}, closed={sorted(self.closed)!r})"
        )

    def is_closed_day(self, day: date) -> bool:
        """Whether local date ``day`` is closed all day: no hours that weekday, a holiday or a closed date."""
        return day.weekday() not in self.hours or day in self.closed or self._is_holiday(day)

    def is_open(self, at: datetime) -> bool:
        """Whether the calendar is open at the instant ``at``."""
        if self._always_open:
            _to_us(at)
            return True
        us = _to_us(at)
        _, _, spans = self._day(at.astimezone(self.zone).toordinal())
        return any(start <= us < end for start, end in spans)

    def business_seconds_between(self, start: datetime, end: datetime) -> float:
        """Business seconds from ``start`` to ``end``: real seconds in opening hours; 0 if end <= start."""
        start_us, end_us = _to_us(start), _to_us(end)
        if end_us <= start_us:
            return 0.0
        if self._always_open:
            return (end_us - start_us) / _US_PER_SECOND
        total = 0
        ordinal = start.astimezone(self.zone).toordinal()
        while True:
            day_start, _, spans = self._day(ordinal)
            if day_start >= end_us:
                break
            for span_start, span_end in spans:
                low, high = max(span_start, start_us), min(span_end, end_us)
                if high > low:
                    total += high - low
            ordinal += 1
        return total / _US_PER_SECOND

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The instant when ``seconds`` business seconds have elapsed since ``start`` (a due time), in UTC.

        ``seconds`` is rounded to the microsecond. For 0 the result is ``start`` itself, open or not. When
        the time runs out exactly at the end of a span the result is that span's end, not the next opening.
        ValueError for negative or non-finite ``seconds`` and when no such instant lies within ten years.
        """
        start_us = _to_us(start)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"invalid business seconds {seconds!r}: expected a finite number >= 0")
        remaining = round(seconds * _US_PER_SECOND)
        if remaining == 0 or self._always_open:
            return _from_us(start_us + remaining)
        first = start.astimezone(self.zone).toordinal()
        for ordinal in range(first, first + _MAX_WALK_DAYS):
            _, _, spans = self._day(ordinal)
            for span_start, span_end in spans:
                if span_end <= start_us:
                    continue
                low = max(span_start, start_us)
                if span_end - low >= remaining:
                    return _from_us(low + remaining)
                remaining -= span_end - low
        raise ValueError(
            f"calendar {self.timezone!r} has not {seconds} business seconds within "
            f"{_MAX_WALK_DAYS} days after {start.isoformat()}"
        )

    def next_opening(self, at: datetime) -> datetime:
        """The first open instant at or after ``at``, in UTC (``at`` itself when open)."""
        at_us = _to_us(at)
        if self._always_open:
            return _from_us(at_us)
        first = at.astimezone(self.zone).toordinal()
        for ordinal in range(first, first + _MAX_WALK_DAYS):
            _, _, spans = self._day(ordinal)
            for span_start, span_end in spans:
                if span_end > at_us:
                    return _from_us(max(span_start, at_us))
        raise ValueError(
            f"calendar {self.timezone!r} does not open within {_MAX_WALK_DAYS} days after {at.isoformat()}"
        )

    def _is_holiday(self, day: date) -> bool:
        """Whether ``day`` is a public holiday; each year's holidays are built once, on first use."""
        if self.holidays_country is None:
            return False
        dates = self._holidays_by_year.get(day.year)
        if dates is None:
            import holidays

            dates = frozenset(
                holidays.country_holidays(
                    self.holidays_country, subdiv=self.holidays_subdivision, years=day.year
                ).keys()
            )
            self._holidays_by_year[day.year] = dates
        return day in dates

    def _compute_day(self, ordinal: int) -> tuple[int, int, tuple[tuple[int, int], ...]]:
        """The local date ``ordinal`` as (start, end, open spans), all in microseconds since the epoch.

        ``start``/``end`` are the instants of its local midnight and the next; the open spans are sorted,
        disjoint, non-empty, and clipped to that day.
        """
        day = date.fromordinal(ordinal)
        midnight = datetime.combine(day, time(), tzinfo=self.zone)
        day_start = _to_us(midnight)
        day_end = _to_us(datetime.combine(day + timedelta(days=1), time(), tzinfo=self.zone))
        if self.is_closed_day(day):
            return day_start, day_end, ()
        instants = []
        for start, end in self.hours[day.weekday()]:
            # Wall-clock arithmetic (naive + timedelta keeps tzinfo and fold=0), then to real instants.
            span_start = max(_to_us(midnight + timedelta(minutes=start)), day_start)
            span_end = min(_to_us(midnight + timedelta(minutes=end)), day_end)
            if span_end > span_start:
                instants.append((span_start, span_end))
        # Around a DST gap, fold=0 can map a later wall time to an earlier instant: sort and join again.
        instants.sort()
        merged: list[tuple[int, int]] = []
        for span_start, span_end in instants:
            if merged and span_start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], span_end))
            else:
                merged.append((span_start, span_end))
        return day_start, day_end, tuple(merged)
