"""The ``status`` table: who waits, how long, due when; open breaches."""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from monitor.config import Config
from monitor.durations import format_duration
from monitor.evaluate import build_rules
from monitor.freshness import TeamFreshness, team_freshness
from monitor.store.db import Store, row_item
from monitor.verdict import ItemStatus, ItemVerdict, evaluate_team


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m"


def _hours(seconds: float) -> str:
    """A business duration in hours (32 business hours is ``32h``, not ``1d08h``: a day is not 24 of them)."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"


def _subject(text: str) -> str:
    """A subject as status prints it: quoted, one line, at most 70 characters."""
    flat = " ".join(text.split()) or "(no subject)"
    return f'"{flat[:67]}..."' if len(flat) > 70 else f'"{flat}"'


class NeverPolled(Exception):
    """The store holds no poll of any source: ``status`` would only say "0 waiting", which is not true."""


def _when(value: datetime | None, tz: object) -> str:
    if value is None:
        return "-"
    return value.astimezone(tz).strftime("%a %d %b %H:%M")  # type: ignore[arg-type]


def waiting_verdicts(config: Config, store: Store, team: str, now: datetime) -> list[ItemVerdict]:
    """The team's waiting customers as the verdict core judges them at ``now``, oldest first."""
    items = [row_item(row) for row in store.awaiting(team, open_only=True)]
    return evaluate_team(items, build_rules(config, team), config.team_calendar(team), now, team).items


def store_freshness(
    config: Config, last_polls: dict[str, datetime], now: datetime
) -> dict[str, TeamFreshness]:
    """Each team's freshness as the store shows it (a source never polled is missing since ``now``)."""
    limits = config.staleness_limits()
    return {
        team: team_freshness(team, [s for s in cfg.sources if s in limits], last_polls, limits, now, now)
        for team, cfg in config.teams.items()
    }


def render_status(config: Config, store: Store, now: datetime, out: TextIO) -> int:
    """Write the status table; returns how many items are overdue (for the exit code).

    Raises :class:`NeverPolled` when no source of the config was ever polled into ``store``.
    """
    last_polls = store.last_polls()
    if not any(source in last_polls for source in config.sources):
        raise NeverPolled("no source has been polled into this store yet: start `replywatch run` first")
    freshness = store_freshness(config, last_polls, now)
    overdue = 0
    for team in config.teams:
        tz = config.team_calendar(team).zone
        verdicts = waiting_verdicts(config, store, team, now)
        breaches = store.open_breaches(team)
        # A waiting mail is named by its subject, as the team knows it, not by its Message-ID.
        subjects = store.subjects(
            sorted(
                {v.item.key for v in verdicts if v.item.channel == "email"} | {b.subject for b in breaches}
            )
        )
        removed = store.removed_since(team, now - config.engine.lookback)
        window = format_duration(config.engine.lookback)
        gone = f", {removed} removed (deleted or moved away) in the last {window}" if removed else ""
        out.write(f"team {team}: {len(verdicts)} waiting{gone}\n")
        for missing in freshness[team].missing:
            limit = _age(config.sources[missing.source].staleness_limit.total_seconds())
            out.write(
                f"  INCOMPLETE: source {missing.source} never polled: the team is not judged\n"
                if missing.never_read
                else f"  INCOMPLETE: source {missing.source} not read since {_when(missing.since, tz)} "
                f"(stale after {limit}): the team is not judged\n"
            )
        if verdicts:
            out.write(
                f"  {'channel':8} {'customer':36} {'received':17} {'waiting':>8} "
                f"{'business':>8}  {'due':17} state\n"
            )
        for judged in verdicts:
            item = judged.item
            late = judged.status is ItemStatus.BREACHED
            overdue += late
            state = "OVERDUE" if late else "WARNING" if judged.warning else "waiting"
            out.write(
                f"  {item.channel:8} {item.customer[:36]:36} {_when(item.received_at, tz):17} "
                f"{_age(judged.wall_seconds):>8} {_hours(judged.business_seconds):>8}  "
                f"{_when(judged.due_at, tz):17} {state}\n"
            )
            if item.key in subjects:
                out.write(f"           {_subject(subjects[item.key])}\n")
        if breaches:
            out.write(
                f"  open: {sum(b.level == 'breach' for b in breaches)} breaches, "
                f"{sum(b.level == 'warning' for b in breaches)} warnings\n"
            )
            for b in breaches:
                gaps = f"  (judged without {', '.join(b.unreadable)})" if b.unreadable else ""
                what = _subject(subjects[b.subject]) if b.subject in subjects else b.subject
                out.write(f"    {b.level:8} {b.rule:16} since {_when(b.opened_at, tz)}  {what}{gaps}\n")
        out.write("\n")
    return overdue
