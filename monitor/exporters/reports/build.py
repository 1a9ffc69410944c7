"""A team report from the store: its events read, its figures computed, rendered for a file or a recipient;
and the supervised job that owes each team its scheduled report through the outbox."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from monitor.config import Config
from monitor.events import CallEvent, Channel, MessageEvent
from monitor.exporters.notifiers.base import ReportDelivery
from monitor.exporters.reports.figures import TeamReport, team_report
from monitor.exporters.reports.period import Period, parse_period
from monitor.exporters.reports.render import (
    RenderedReport,
    chart_images,
    html_file,
    mail,
    markdown,
    report_data,
)
from monitor.exporters.reports.schedule import REPORT_EXPIRY, owed_report, report_recipients
from monitor.store.db import Store
from monitor.store.outbox import Outbox

log = logging.getLogger(__name__)

Format = Literal["html", "md", "json"]


def stored_events(
    store: Store, config: Config, team: str, since: datetime
) -> tuple[list[MessageEvent], list[CallEvent]]:
    """The team's stored messages and calls dated at or after ``since``."""
    sources = config.teams[team].sources
    phone = [name for name in sources if config.sources[name].channel is Channel.PHONE]
    mail_sources = [name for name in sources if name not in phone]
    messages = store.messages(mail_sources, since) if mail_sources else []
    calls = store.calls(phone, since) if phone else []
    return messages, calls


def team_period(config: Config, team: str, label: str) -> Period:
    """``label`` (``2026-10``, ``2026-W44``) in the team calendar's zone; ValueError when it is neither."""
    return parse_period(label, config.team_calendar(team).timezone)


def per_member(config: Config, team: str) -> bool:
    """Whether the team's report names its members (``report.per_member``; off without a report)."""
    report = config.teams[team].report
    return report.per_member if report is not None else False


def stored_report(store: Store, config: Config, team: str, period: Period, now: datetime) -> TeamReport:
    """The report of ``period`` (and the previous period) from what the store holds."""
    messages, calls = stored_events(store, config, team, period.previous().start)
    return team_report(config, team, messages, calls, period, now, per_member=per_member(config, team))


def render_file(report: TeamReport, fmt: Format) -> str:
    """The report as a standalone HTML page (charts inline), Markdown, or JSON."""
    data = report_data(report)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        return markdown(data)
    return html_file(data, chart_images(report))


def report_key(team: str, period: str, recipient: str) -> str:
    """Stable over retries and restarts: the same report to the same person keeps its Message-ID."""
    digest = hashlib.sha256(f"report|{team}|{period}|{recipient}".encode()).hexdigest()
    return f"replywatch.report.{digest[:32]}"


@dataclass(frozen=True, slots=True)
class ReportMail:
    """A rendered report, ready to address to each recipient."""

    team: str
    period: str
    rendered: RenderedReport
    data: dict[str, Any]

    def to(self, recipient: str, at: datetime) -> ReportDelivery:
        """The delivery of this report to ``recipient``."""
        return ReportDelivery(
            team=self.team,
            period=self.period,
            recipient=recipient,
            subject=self.rendered.subject,
            text=self.rendered.text,
            html=self.rendered.html,
            images=self.rendered.images,
            data=self.data,
            key=report_key(self.team, self.period, recipient),
            at=at,
        )


def report_mail(
    store: Store, config: Config, team: str, label: str, now: datetime, notifier: str | None = None
) -> ReportMail:
    """The report of ``team`` for the period ``label``, rendered for mail (with the ``templates`` directory
    of ``notifier`` when it has one)."""
    report = stored_report(store, config, team, team_period(config, team, label), now)
    data = report_data(report)
    templates = getattr(config.notifiers.get(notifier or ""), "templates", None)
    rendered = mail(data, chart_images(report), templates)
    return ReportMail(team, label, rendered, data)


def owe_report(
    outbox: Outbox, config: Config, team: str, period: Period, due_at: datetime, now: datetime
) -> list[str]:
    """Owe ``period``'s report to the team's report recipients (once per period); returns the recipients."""
    cfg = config.teams[team]
    via = cfg.report_via
    if cfg.report is None or via is None:
        return []
    if config.notifiers[via].addressed:
        names = report_recipients(cfg.report.to, cfg.escalation_members())
    else:
        # A webhook posts once, to its own endpoint: one row per period whatever `to` says (an edit of `to`
        # must not post the same period again).
        names = [via]
    if outbox.owe_report(team, via, period.label, names, due_at, now):
        log.info("report owed", extra={"team": team, "period": period.label, "recipients": len(names)})
    return names


def owe_scheduled_reports(
    outbox: Outbox, config: Config, now: datetime, done: set[tuple[str, str]] | None = None
) -> int:
    """Owe every team with a ``report`` its latest ended period, due at the team's next opening hour after
    the period ends; returns how many reports were looked at. A report owed before is never owed again (the
    outbox's unique rows); ``done`` remembers what this process already wrote, so that an unchanged period
    costs no database write."""
    looked = 0
    for team, cfg in config.teams.items():
        if cfg.report is None:
            continue
        owed = owed_report(cfg.report.every, config.team_calendar(team), now)
        key = (team, owed.period.label)
        if done is not None and key in done:
            continue
        if now - owed.due_at > REPORT_EXPIRY:
            # Ended too long ago to be worth sending now (a first start, reports just turned on): not owed,
            # rather than owed and dropped as expired, which would alert about a delivery that never failed.
            if done is not None:
                done.add(key)
            continue
        owe_report(outbox, config, team, owed.period, owed.due_at, now)
        if done is not None:
            done.add(key)
        looked += 1
    return looked
