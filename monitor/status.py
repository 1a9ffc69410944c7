"""The ``status`` table: who waits, how long, due when; open breaches."""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from monitor.config import Config
from monitor.store.db import Store


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m"


def _when(value: datetime | None, tz: object) -> str:
    if value is None:
        return "-"
    return value.astimezone(tz).strftime("%a %d %b %H:%M")  # type: ignore[arg-type]


def render_status(config: Config, store: Store, now: datetime, out: TextIO) -> int:
    """Write the status table; returns how many items are overdue (for the exit code)."""
    overdue = 0
    for team in config.teams:
        calendar = config.team_calendar(team)
        tz = calendar.zone
        rows = store.awaiting(team, open_only=True)
        out.write(f"team {team}: {len(rows)} waiting\n")
        if rows:
            out.write(
                f"  {'channel':8} {'customer':36} {'received':17} {'waiting':>8} "
                f"{'business':>8}  {'due':17} state\n"
            )
        for row in rows:
            business = calendar.business_seconds_between(row.received_at, now)
            late = row.due_at is not None and now > row.due_at
            overdue += late
            state = "OVERDUE" if late else "waiting"
            out.write(
                f"  {row.channel:8} {row.customer[:36]:36} {_when(row.received_at, tz):17} "
                f"{_age((now - row.received_at).total_seconds()):>8} {_age(business):>8}  "
                f"{_when(row.due_at, tz):17} {state}\n"
            )
        breaches = store.open_breaches(team)
        if breaches:
            out.write(
                f"  open: {sum(b.level == 'breach' for b in breaches)} breaches, "
                f"{sum(b.level == 'warning' for b in breaches)} warnings\n"
            )
            for b in breaches:
                out.write(f"    {b.level:8} {b.rule:16} since {_when(b.opened_at, tz)}  {b.subject}\n")
        out.write("\n")
    return overdue
