"""Report periods: ``2026-10`` (a month) or ``2026-W44`` (an ISO week), in the team calendar's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")

Every = Literal["month", "week"]


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar month or ISO week: local days ``first`` .. ``last`` in ``timezone``."""

    label: str
    """``2026-10`` or ``2026-W44``."""
    every: Every
    first: date
    last: date
    timezone: str

    @property
    def start(self) -> datetime:
        """Midnight before the first day, in the period's zone."""
        return datetime.combine(self.first, time(0), ZoneInfo(self.timezone))

    @property
    def end(self) -> datetime:
        """Midnight after the last day (exclusive), in the period's zone."""
        return datetime.combine(self.last + timedelta(days=1), time(0), ZoneInfo(self.timezone))

    def days(self) -> list[date]:
        """Every local day of the period, in order."""
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return period_containing(self.every, self.first - timedelta(days=1), self.timezone)


def parse_period(text: str, timezone: str) -> Period:
    """``2026-10`` or ``2026-W44``; ValueError quotes a period that is neither."""
    value = text.strip()
    try:
        period = _parsed(text, value, timezone)
        (period.start, period.end, period.previous())  # a report needs all three
        return period
    except OverflowError:  # the period before or after it lies outside the calendar (0001-01, 9999-12)
        raise ValueError(f"invalid period {text!r}: out of range") from None


def _parsed(text: str, value: str, timezone: str) -> Period:
    if match := _MONTH.fullmatch(value):
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            raise ValueError(f"invalid period {text!r}: month {month} does not exist")
        return period_containing("month", date(year, month, 1), timezone)
    if match := _WEEK.fullmatch(value):
        year, week = int(match.group(1)), int(match.group(2))
        try:
            monday = date.fromisocalendar(year, week, 1)
        except ValueError:
            raise ValueError(f"invalid period {text!r}: {year} has no ISO week {week}") from None
        return period_containing("week", monday, timezone)
    raise ValueError(f"invalid period {text!r}: expected a month (2026-10) or an ISO week (2026-W44)")


def period_containing(every: Every, day: date, timezone: str) -> Period:
    """The month or ISO week that ``day`` belongs to."""
    if every == "month":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(f"{first:%Y-%m}", "month", first, following - timedelta(days=1), timezone)
    year, week, weekday = day.isocalendar()
    monday = day - timedelta(days=weekday - 1)
    return Period(f"{year}-W{week:02d}", "week", monday, monday + timedelta(days=6), timezone)


def last_complete(every: Every, now: datetime, timezone: str) -> Period:
    """The latest period of this kind that has ended at ``now`` (the one a scheduled report covers)."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return period_containing(every, today, timezone).previous()
