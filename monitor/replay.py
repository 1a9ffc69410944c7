"""``replywatch replay``: what the rules would have said over past data, as CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from monitor.calendar import BusinessCalendar
from monitor.config import LoadedConfig
from monitor.engine import AwaitingItem, EngineResult, build_awaiting
from monitor.evaluate import build_rules, team_context
from monitor.events import MessageEvent
from monitor.rules.base import TeamView
from monitor.rules.reply_within import ReplyWithin

HEADER = (
    "team", "channel", "id", "customer", "received_at", "responded_at", "response_id", "responder",
    "business_seconds", "wall_seconds", "status", "reason",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Judged:
    """An awaiting item with its verdict at ``now``."""

    item: AwaitingItem
    status: str
    """``answered_on_time``, ``answered_late``, ``waiting`` or ``breached``."""
    due_at: datetime | None
    business_seconds: float
    wall_seconds: float


def judge(
    items: Iterable[AwaitingItem], rule: ReplyWithin | None, calendar: BusinessCalendar, now: datetime
) -> list[Judged]:
    """Give every item its status under ``rule`` (no rule: nothing is ever late)."""
    view = TeamView(team="", calendar=calendar, awaiting=())
    out = []
    for item in items:
        end = item.responded_at if item.responded_at is not None else now
        end = max(end, item.received_at)
        due = rule.due_at(view, item.received_at) if rule is not None else None
        late = due is not None and end > due
        if item.responded_at is not None:
            status = "answered_late" if late else "answered_on_time"
        else:
            status = "breached" if late else "waiting"
        out.append(
            Judged(
                item=item,
                status=status,
                due_at=due,
                business_seconds=calendar.business_seconds_between(item.received_at, end),
                wall_seconds=(end - item.received_at).total_seconds(),
            )
        )
    return out


def reply_rule(loaded: LoadedConfig, team: str) -> ReplyWithin | None:
    """The team's first ``reply_within`` rule, if it has one."""
    return next((r for r in build_rules(loaded.config, team) if isinstance(r, ReplyWithin)), None)


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def collect_messages(
    loaded: LoadedConfig, sources: Sequence[str], since: datetime | None, until: datetime | None
) -> dict[str, list[MessageEvent]]:
    """Read every message of ``sources`` from the beginning (nothing is stored), by source."""
    from monitor.daemon import build_source

    out: dict[str, list[MessageEvent]] = {}
    for name in sources:
        source = build_source(name, loaded.sources[name])
        try:
            result = source.poll(None)
        finally:
            source.close()
        out[name] = [
            m for m in result.messages
            if (since is None or m.date >= since) and (until is None or m.date < until)
        ]  # fmt: skip
    return out


def write_replay(
    loaded: LoadedConfig,
    messages: dict[str, list[MessageEvent]],
    now: datetime,
    out: TextIO,
    *,
    include_all: bool = False,
) -> dict[str, int]:
    """Write the CSV for every team; returns counts per status."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    counts: dict[str, int] = {}
    for team, team_cfg in loaded.config.teams.items():
        team_messages = [m for name in team_cfg.sources if name in messages for m in messages[name]]
        if not any(name in messages for name in team_cfg.sources):
            continue
        result: EngineResult = build_awaiting(team_messages, team_context(loaded.config, team))
        calendar = loaded.config.team_calendar(team)
        for judged in judge(result.items, reply_rule(loaded, team), calendar, now):
            item = judged.item
            counts[judged.status] = counts.get(judged.status, 0) + 1
            writer.writerow(
                (
                    team, item.channel, item.key, item.customer, _iso(item.received_at),
                    _iso(item.responded_at), item.response_id or "", item.responder or "",
                    f"{judged.business_seconds:.0f}", f"{judged.wall_seconds:.0f}", judged.status, "",
                )
            )  # fmt: skip
        if include_all:
            for unopened in sorted(result.unopened, key=lambda u: (u.message.date, u.message.external_id)):
                m = unopened.message
                writer.writerow(
                    (
                        team, "email", m.message_id or "", m.from_addr or "", _iso(m.date), "", "", "",
                        "", "", "", unopened.reason,
                    )
                )  # fmt: skip
                counts[unopened.reason] = counts.get(unopened.reason, 0) + 1
    return counts
