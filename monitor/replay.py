"""``replywatch replay``: what the rules would have said over past data, as CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from monitor.awaiting import Unopened
from monitor.config import LoadedConfig
from monitor.engine import build_awaiting
from monitor.evaluate import build_rules, team_context
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
    """Write the CSV for every team; returns counts per status (and per reason with ``include_all``), and
    ``<rule> breaches`` for every rule that found breaches (``holding_reply`` too)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    counts: dict[str, int] = {}
    for team, team_cfg in loaded.config.teams.items():
        team_messages = [m for name in team_cfg.sources if name in messages for m in messages[name]]
        if not any(name in messages for name in team_cfg.sources):
            continue
        result = build_awaiting(team_messages, team_context(loaded.config, team))
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
