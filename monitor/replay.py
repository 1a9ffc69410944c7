"""``replywatch replay``: what the rules would have said over past data, as CSV."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from monitor.awaiting import Unopened
from monitor.config import LoadedConfig
from monitor.evaluate import build_rules, team_awaiting
from monitor.events import CallEvent, MessageEvent
from monitor.rules.base import Level
from monitor.verdict import evaluate_team

HEADER = (
    "team", "channel", "id", "customer", "received_at", "responded_at", "response_id", "responder",
    "business_seconds", "wall_seconds", "status", "reason",
)  # fmt: skip


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class ReplayEvents:
    """Every message and call read from the sources, by source."""

    messages: dict[str, list[MessageEvent]] = field(default_factory=dict)
    calls: dict[str, list[CallEvent]] = field(default_factory=dict)

    def has(self, source: str) -> bool:
        """Whether ``source`` was read."""
        return source in self.messages or source in self.calls


MAX_POLLS = 10_000
"""How many polls replay makes of one source at most (a source that hands out its data in batches)."""


def collect_events(
    loaded: LoadedConfig,
    sources: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    removed: Mapping[str, Sequence[MessageEvent]] | None = None,
) -> ReplayEvents:
    """Read every message and call of ``sources`` from the beginning (nothing is stored), by source.

    A source is polled again with the cursor it returned until a poll brings nothing new, so a source
    that reads in batches is read whole. ``removed`` (by source) are messages the daemon's store saw
    and recorded as deleted or moved away: they are added, so that an item whose messages are all gone
    shows as ``removed`` rather than not at all.
    """
    from monitor.daemon import build_source

    def inside(at: datetime) -> bool:
        return (since is None or at >= since) and (until is None or at < until)

    out = ReplayEvents()
    for name in sources:
        source = build_source(name, loaded.sources[name])
        messages: dict[str, MessageEvent] = {}
        calls: dict[str, CallEvent] = {}
        try:
            cursor = None
            for _ in range(MAX_POLLS):
                result = source.poll(cursor)
                before = len(messages) + len(calls)
                messages.update((m.external_id, m) for m in result.messages)
                calls.update((c.external_id, c) for c in result.calls)
                cursor = result.cursor
                if len(messages) + len(calls) == before:
                    break
        finally:
            source.close()
        # A removed copy beside one read now (moved to an archive folder, or back) is still one message:
        # the engine keeps it waiting, as the daemon does.
        for gone in (removed or {}).get(name, ()):
            messages.setdefault(gone.external_id, gone)
        out.messages[name] = [m for m in messages.values() if inside(m.date)]
        out.calls[name] = [c for c in calls.values() if inside(c.started_at)]
    return out


def stored_removals(url: str, password: str | None, sources: Sequence[str]) -> dict[str, list[MessageEvent]]:
    """The messages of ``sources`` the store at ``url`` recorded as removed, by source, read-only.

    An SQLite store that does not exist is not created: there is nothing to read. Raises what the
    database raises when it cannot be read (the caller says so and replays without).
    """
    from sqlalchemy.engine import make_url

    from monitor.store.db import Store

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or not Path(database).is_file():
            return {}
    store = Store.open(url, password)
    try:
        out: dict[str, list[MessageEvent]] = {}
        for message in store.removed_messages(sources):
            out.setdefault(message.source, []).append(message)
        return out
    finally:
        store.close()


def write_replay(
    loaded: LoadedConfig,
    events: ReplayEvents,
    now: datetime,
    out: TextIO,
    *,
    include_all: bool = False,
) -> dict[str, int]:
    """Write the CSV for every team; returns counts per status (and per reason with ``include_all``), and
    ``<rule> breaches`` for every rule that found breaches (``holding_reply`` too)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    counts: dict[str, int] = {}
    for team, team_cfg in loaded.config.teams.items():
        if not any(events.has(name) for name in team_cfg.sources):
            continue
        messages = [m for name in team_cfg.sources for m in events.messages.get(name, ())]
        calls = [c for name in team_cfg.sources for c in events.calls.get(name, ())]
        result = team_awaiting(loaded.config, team, messages, calls)
        calendar = loaded.config.team_calendar(team)
        verdict = evaluate_team(result.items, build_rules(loaded.config, team), calendar, now, team)
        for judged in verdict.items:
            item = judged.item
            counts[judged.status] = counts.get(judged.status, 0) + 1
            writer.writerow(
                (
                    team, item.channel, item.key, item.customer, _iso(item.received_at),
                    _iso(item.responded_at), item.response_id or "", item.responder or "",
                    f"{judged.business_seconds:.0f}", f"{judged.wall_seconds:.0f}", judged.status, "",
                )
            )  # fmt: skip
        for finding in verdict.findings:
            if finding.level is Level.BREACH:
                key = f"{finding.rule} breaches"
                counts[key] = counts.get(key, 0) + 1
        if include_all:
            for unopened in sorted(result.unopened, key=_unopened_order):
                writer.writerow(
                    (
                        team, unopened.channel, _event_id(unopened), _event_customer(unopened),
                        _iso(_event_time(unopened)), "", "", "", "", "", "", unopened.reason,
                    )
                )  # fmt: skip
                counts[unopened.reason] = counts.get(unopened.reason, 0) + 1
    return counts


def _event_time(unopened: Unopened) -> datetime:
    event = unopened.event
    return event.started_at if isinstance(event, CallEvent) else event.date


def _event_id(unopened: Unopened) -> str:
    event = unopened.event
    return event.external_id if isinstance(event, CallEvent) else event.message_id or ""


def _event_customer(unopened: Unopened) -> str:
    event = unopened.event
    return event.caller if isinstance(event, CallEvent) else event.from_addr or ""


def _unopened_order(unopened: Unopened) -> tuple[datetime, str]:
    return (_event_time(unopened), unopened.event.external_id)
