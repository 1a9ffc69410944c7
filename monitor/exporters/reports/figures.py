"""Every number of a team report, from the engine and the verdict core exactly as ``replay`` computes them.

A period's figures are those of ``replay --since <start> --until <end>``: the events dated inside the period
go through :func:`monitor.evaluate.team_awaiting` and :func:`monitor.verdict.evaluate_team`, judged at the
period's end (or now, for a period still running). The previous period is computed by the same function, for
the trend and the wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.calendar import BusinessCalendar
from monitor.config import Config
from monitor.evaluate import build_rules, team_awaiting
from monitor.events import CallEvent, Channel, MessageEvent, known_at
from monitor.exporters.reports.period import Period
from monitor.rules.base import Level
from monitor.verdict import ItemStatus, ItemVerdict, TeamVerdict, deadline_owners, evaluate_team

TOP = 5
"""How many longest waits and fastest answers a report lists."""
DECIDED = (ItemStatus.ANSWERED_ON_TIME, ItemStatus.ANSWERED_LATE, ItemStatus.BREACHED)
"""Statuses whose outcome is known: the on-time share is on time among these, and the removed items whose
deadline had passed before their removal (a customer still waiting inside the deadline is neither, and
deleting a customer's mail after its deadline does not take a miss out of the share)."""


def removed_late(v: ItemVerdict) -> bool:
    """A removed item whose deadline had passed before it was removed: a miss, whatever came after."""
    removed, due = v.item.removed_at, v.due_at
    return v.status is ItemStatus.REMOVED and due is not None and removed is not None and removed > due


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` 0.5: the median as the upper middle value); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One item as a report lists it (a longest wait, a fastest answer)."""

    channel: str
    customer: str
    received_at: datetime
    responded_at: datetime | None
    responder: str | None
    business_seconds: float
    wall_seconds: float
    status: str


@dataclass(frozen=True, slots=True)
class Carried:
    """Customers carried over from the previous period: waiting inside their deadline when it ended."""

    items: int
    answered_on_time: int
    answered_late: int
    breached: int
    waiting: int
    removed: int


@dataclass(frozen=True, slots=True)
class ChannelFigures:
    """One channel's figures over a period."""

    channel: str
    target_seconds: float | None
    """The owning rule's ``within`` (None: no rule gives this channel a deadline)."""
    business_hours: bool
    items: int
    answered_on_time: int
    answered_late: int
    waiting: int
    breached: int
    removed: int
    """Items closed because every message of them was deleted or moved out of the watched folders."""
    removed_late: int
    """Of those, removed after their deadline had passed (counted as missed in the on-time share)."""
    on_time_share: float | None
    """answered on time / (answered on time + answered late + breached + removed late)."""
    median_seconds: float | None
    """Median business response time of the answered items (nearest rank)."""
    p90_seconds: float | None
    breaches: dict[str, int]
    """Breach findings by rule at the period's end (what ``replay`` counts as ``<rule> breaches``)."""
    longest_waits: list[ItemLine]
    carried: Carried | None = None
    """The previous period's customers still waiting inside their deadline at its end, and what became of
    them by this period's end (they count in the previous period, as in ``replay`` over it)."""

    @property
    def answered(self) -> int:
        """Items answered, on time or late."""
        return self.answered_on_time + self.answered_late


@dataclass(frozen=True, slots=True)
class MemberFigures:
    """One configured member's answers over a period."""

    name: str
    answered: int
    on_time: int
    median_seconds: float | None

    @property
    def on_time_share(self) -> float | None:
        """Answered on time / answered."""
        return _ratio(self.on_time, self.answered)


@dataclass(frozen=True, slots=True)
class Day:
    """One local day: the day's median response time and how many customers waited at its close."""

    day: date
    answered: int
    median_seconds: float | None
    """Median business response time of the items received that day and answered."""
    waiting_at_close: int
    """Customers of the period still waiting at midnight after the day."""
    overdue_at_close: int
    """Of those, how many were past their deadline."""
    breach: bool
    """A deadline fell on this day and was missed."""
    open: bool
    """The team calendar has opening hours on this day."""


@dataclass(frozen=True, slots=True)
class Streak:
    """Consecutive open days without a missed deadline."""

    days: int
    first: date | None
    last: date | None


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """Everything a report shows about one period."""

    period: Period
    judged_at: datetime
    channels: list[ChannelFigures]
    members: list[MemberFigures]
    days: list[Day]
    streak: Streak
    fastest: list[ItemLine]
    """Answers on time to customers who came in opening hours, quickest (wall-clock) first."""
    statuses: dict[str, int] = field(default_factory=dict)
    """Items by status over every channel (the counts of ``replay``)."""

    def channel(self, name: str) -> ChannelFigures | None:
        """The figures of one channel, if the team has it."""
        return next((c for c in self.channels if c.channel == name), None)


@dataclass(frozen=True, slots=True)
class TeamReport:
    """A period's figures with the previous period's, and the wins."""

    team: str
    current: PeriodFigures
    previous: PeriodFigures
    per_member: bool
    perfect_members: list[str]
    """Members who answered at least one customer and all of them on time."""


@dataclass(frozen=True, slots=True)
class _Judged:
    """One period's verdict: the events dated inside it, as the store knew them when it was judged."""

    period: Period
    judged_at: datetime
    verdict: TeamVerdict


def _judge(
    config: Config,
    team: str,
    messages: Sequence[MessageEvent],
    calls: Sequence[CallEvent],
    period: Period,
    now: datetime,
) -> _Judged:
    """``period`` judged at its end (at ``now`` if earlier): what ``replay --since --until`` computes."""
    judged_at = min(period.end, now)
    as_at = known_at(messages, judged_at)
    verdict = _verdict(config, team, as_at, calls, period.start, period.end, judged_at)
    return _Judged(period, judged_at, verdict)


def _period_figures(
    config: Config, team: str, judged: _Judged, carried: Mapping[Channel, Carried]
) -> PeriodFigures:
    """Every figure of one judged period (``carried``: the previous period's waiting customers)."""
    period, judged_at, verdict = judged.period, judged.judged_at, judged.verdict
    rules = build_rules(config, team)
    calendar = config.team_calendar(team)
    owners = deadline_owners(rules)
    breaches: dict[tuple[str, str], int] = {}
    channel_of_rule = {rule.name: channel.value for channel, rule in owners.items()}
    for finding in verdict.findings:
        if finding.level is Level.BREACH:
            key = (channel_of_rule.get(finding.rule, ""), finding.rule)
            breaches[key] = breaches.get(key, 0) + 1
    channels = []
    for channel in config.team_channels(team):
        of_channel = [v for v in verdict.items if v.item.channel is channel]
        owner = owners.get(channel)
        within = getattr(owner, "within", None)
        channels.append(
            _channel_figures(
                channel.value,
                of_channel,
                within.total_seconds() if isinstance(within, timedelta) else None,
                owner.business_hours if owner is not None else True,
                {rule: n for (ch, rule), n in breaches.items() if ch == channel.value},
                carried.get(channel),
            )
        )
    other = {rule: n for (ch, rule), n in breaches.items() if ch == ""}
    if other and channels:  # rules that own no channel (holding_reply, inbox_nearly_empty): on email
        first = next((c for c in channels if c.channel == Channel.EMAIL.value), channels[0])
        first.breaches.update(other)
    statuses: dict[str, int] = {}
    for v in verdict.items:
        statuses[v.status.value] = statuses.get(v.status.value, 0) + 1
    days = _days(period, verdict.items, calendar, judged_at)
    # The fastest answers: to customers who wrote or called while the team was open (an answer at 9:00 to
    # mail of the night takes no business time, but is no feat), by the wall-clock time it took.
    answered = [
        v
        for v in verdict.items
        if v.status is ItemStatus.ANSWERED_ON_TIME and calendar.is_open(v.item.received_at)
    ]
    answered.sort(key=lambda v: (v.wall_seconds, v.item.received_at))
    return PeriodFigures(
        period=period,
        judged_at=judged_at,
        channels=channels,
        members=_members(config, team, verdict.items),
        days=days,
        streak=_longest_streak(days),
        fastest=[_line(v) for v in answered[:TOP]],
        statuses=statuses,
    )


def _verdict(
    config: Config,
    team: str,
    messages: Sequence[MessageEvent],
    calls: Sequence[CallEvent],
    start: datetime,
    end: datetime,
    judged_at: datetime,
) -> TeamVerdict:
    """The verdict on the events dated in [start, end), judged at ``judged_at``."""
    inside_messages = [m for m in messages if start <= m.date < end]
    inside_calls = [c for c in calls if start <= c.started_at < end]
    result = team_awaiting(config, team, inside_messages, inside_calls)
    rules = build_rules(config, team)
    return evaluate_team(result.items, rules, config.team_calendar(team), judged_at, team)


def _carried(
    config: Config,
    team: str,
    messages: Sequence[MessageEvent],
    calls: Sequence[CallEvent],
    previous: _Judged,
    current: _Judged,
) -> dict[Channel, Carried]:
    """Per channel: the previous period's items still waiting inside their deadline at its end (as its own
    report showed them), judged again with the events up to the current period's judgement: answered,
    late, breached since."""
    waiting = {(v.item.channel, v.item.key) for v in previous.verdict.items if v.status is ItemStatus.WAITING}
    if not waiting:
        return {}
    at = current.judged_at
    since = _verdict(
        config, team, known_at(messages, at), calls, previous.period.start, current.period.end, at
    )
    out: dict[Channel, Carried] = {}
    for channel in {c for c, _ in waiting}:
        found = [v for v in since.items if v.item.channel is channel and (channel, v.item.key) in waiting]
        counts = {status: 0 for status in ItemStatus}
        for v in found:
            counts[v.status] += 1
        out[channel] = Carried(
            items=len([k for c, k in waiting if c is channel]),
            answered_on_time=counts[ItemStatus.ANSWERED_ON_TIME],
            answered_late=counts[ItemStatus.ANSWERED_LATE],
            breached=counts[ItemStatus.BREACHED],
            waiting=counts[ItemStatus.WAITING],
            removed=counts[ItemStatus.REMOVED],
        )
    return out


def team_report(
    config: Config,
    team: str,
    messages: Sequence[MessageEvent],
    calls: Sequence[CallEvent],
    period: Period,
    now: datetime,
    *,
    per_member: bool,
) -> TeamReport:
    """The report of ``period`` and the previous period, computed alike; each period is judged once."""
    judged = _judge(config, team, messages, calls, period, now)
    judged_before = _judge(config, team, messages, calls, period.previous(), now)
    carried = _carried(config, team, messages, calls, judged_before, judged)
    current = _period_figures(config, team, judged, carried)
    previous = _period_figures(config, team, judged_before, {})
    perfect = sorted(m.name for m in current.members if m.answered and m.on_time == m.answered)
    return TeamReport(team, current, previous, per_member, perfect if per_member else [])


def _line(v: ItemVerdict) -> ItemLine:
    item = v.item
    return ItemLine(
        channel=item.channel.value,
        customer=item.customer,
        received_at=item.received_at,
        responded_at=item.responded_at,
        responder=item.responder,
        business_seconds=v.business_seconds,
        wall_seconds=v.wall_seconds,
        status=v.status.value,
    )


def _channel_figures(
    channel: str,
    judged: Sequence[ItemVerdict],
    target: float | None,
    business_hours: bool,
    breaches: dict[str, int],
    carried: Carried | None = None,
) -> ChannelFigures:
    counts = {status: 0 for status in ItemStatus}
    for v in judged:
        counts[v.status] += 1
    times = [v.business_seconds for v in judged if v.item.response is not None]
    missed_by_removal = sum(1 for v in judged if removed_late(v))
    decided = sum(counts[s] for s in DECIDED) + missed_by_removal
    longest = sorted(judged, key=lambda v: (-v.business_seconds, v.item.received_at))[:TOP]
    return ChannelFigures(
        channel=channel,
        target_seconds=target,
        business_hours=business_hours,
        items=len(judged),
        answered_on_time=counts[ItemStatus.ANSWERED_ON_TIME],
        answered_late=counts[ItemStatus.ANSWERED_LATE],
        waiting=counts[ItemStatus.WAITING],
        breached=counts[ItemStatus.BREACHED],
        removed=counts[ItemStatus.REMOVED],
        removed_late=missed_by_removal,
        on_time_share=_ratio(counts[ItemStatus.ANSWERED_ON_TIME], decided),
        median_seconds=percentile(times, 0.5),
        p90_seconds=percentile(times, 0.9),
        breaches=dict(sorted(breaches.items())),
        longest_waits=[_line(v) for v in longest],
        carried=carried,
    )


def _members(config: Config, team: str, judged: Sequence[ItemVerdict]) -> list[MemberFigures]:
    """Answers by configured member (answers from the team address or unknown senders count for none)."""
    out = []
    for member in config.teams[team].members:
        mine = [v for v in judged if v.item.response is not None and v.item.responder == member.name]
        on_time = sum(1 for v in mine if v.status is ItemStatus.ANSWERED_ON_TIME)
        median = percentile([v.business_seconds for v in mine], 0.5)
        out.append(MemberFigures(member.name, len(mine), on_time, median))
    return out


def _days(
    period: Period, judged: Sequence[ItemVerdict], calendar: BusinessCalendar, judged_at: datetime
) -> list[Day]:
    zone = ZoneInfo(period.timezone)
    out = []
    for day in period.days():
        start = datetime.combine(day, time(0), zone)
        close = datetime.combine(day + timedelta(days=1), time(0), zone)
        if start >= judged_at:
            break
        received = [v for v in judged if start <= v.item.received_at < close]
        times = [v.business_seconds for v in received if v.item.response is not None]
        at = min(close, judged_at)
        waiting = [
            v
            for v in judged
            if v.item.received_at < at and (v.item.responded_at is None or v.item.responded_at >= at)
        ]
        overdue = [v for v in waiting if v.due_at is not None and v.due_at < at]
        missed = any(
            v.due_at is not None
            and start <= v.due_at < close
            and v.status in (ItemStatus.ANSWERED_LATE, ItemStatus.BREACHED)
            for v in judged
        )
        out.append(
            Day(
                day=day,
                answered=len(times),
                median_seconds=percentile(times, 0.5),
                waiting_at_close=len(waiting),
                overdue_at_close=len(overdue),
                breach=missed,
                open=calendar.business_seconds_between(start, close) > 0,
            )
        )
    return out


def _longest_streak(days: Sequence[Day]) -> Streak:
    """The longest run of open days without a missed deadline (closed days neither count nor break it)."""
    best = Streak(0, None, None)
    run, first, last = 0, None, None
    for day in days:
        if not day.open:
            continue
        if day.breach:
            run, first = 0, None
            continue
        run += 1
        first = first or day.day
        last = day.day
        if run > best.days:
            best = Streak(run, first, last)
    return best
