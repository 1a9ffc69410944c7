"""Freshness: whether every source of a team has been read recently enough to judge the team (pure).

A team is *complete* when each of its sources has finished a first poll and its last success is within
that source's staleness limit (``stale_after``, by default three poll intervals and at least five
minutes). An incomplete team is not judged (issue 8: no false alarm from half the mail), unless a source
has been missing for longer than the outage limit: then breaches open again, marked with the sources that
could not be read (no silent blindness).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_STALE_AFTER = timedelta(minutes=5)
"""The shortest default staleness limit, so that a source polled every few seconds is not flapping."""
STALE_POLLS = 3
"""By default a source is stale after this many poll intervals without a success."""


def default_stale_after(poll_every: timedelta) -> timedelta:
    """The staleness limit of a source polled every ``poll_every`` that does not set its own."""
    return max(poll_every * STALE_POLLS, MIN_STALE_AFTER)


@dataclass(frozen=True, slots=True)
class MissingSource:
    """A source whose data a team lacks: never read yet, or not read for longer than its limit."""

    source: str
    since: datetime
    """Since when its data is missing: its last success, or when watching began if it never succeeded."""
    never_read: bool


@dataclass(frozen=True, slots=True)
class TeamFreshness:
    """Whether a team can be judged now, and which sources it lacks."""

    team: str
    missing: tuple[MissingSource, ...]

    @property
    def complete(self) -> bool:
        """Every source of the team has been read recently enough."""
        return not self.missing

    def missing_for(self, now: datetime) -> timedelta:
        """How long the longest-missing source has been missing (zero when complete)."""
        if not self.missing:
            return timedelta(0)
        return now - min(m.since for m in self.missing)

    @property
    def sources(self) -> tuple[str, ...]:
        """The names of the missing sources."""
        return tuple(m.source for m in self.missing)


def team_freshness(
    team: str,
    sources: Sequence[str],
    last_success: Mapping[str, datetime | None],
    stale_after: Mapping[str, timedelta],
    watching_since: datetime,
    now: datetime,
) -> TeamFreshness:
    """The freshness of ``team`` at ``now`` from each source's last successful poll.

    ``watching_since`` is when the reader began to watch (the daemon's start): a source never read is
    missing since then.
    """
    missing = []
    for source in sources:
        last = last_success.get(source)
        if last is None:
            missing.append(MissingSource(source, watching_since, never_read=True))
        elif now - last > stale_after[source]:
            missing.append(MissingSource(source, last, never_read=False))
    return TeamFreshness(team, tuple(missing))
