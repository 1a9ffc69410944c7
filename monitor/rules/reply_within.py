"""Rule ``reply_within``: every awaiting email is answered within a time, with an optional warning."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field, model_validator

from monitor.durations import Duration, format_duration
from monitor.events import Channel
from monitor.rules.base import Finding, Level, RuleConfigBase, RulePlugin, TeamView


class ReplyWithinConfig(RuleConfigBase):
    """Settings of ``reply_within``."""

    kind: Literal["reply_within"]
    within: Duration = Field(default=timedelta(hours=24))
    """How long a customer may wait for the team's answer."""
    business_hours: bool = True
    """Count only the team calendar's opening hours (false: wall-clock time)."""
    warn_before: Duration | None = None
    """Warn this long before the deadline (in the same clock as ``within``)."""
    channel: Literal["email"] = "email"
    """Which awaiting items the rule judges."""

    @model_validator(mode="after")
    def _warning_inside_window(self) -> ReplyWithinConfig:
        if self.warn_before is not None and self.warn_before >= self.within:
            raise ValueError(
                f"warn_before ({format_duration(self.warn_before)}) must be shorter than "
                f"within ({format_duration(self.within)})"
            )
        return self


class ReplyWithin:
    """Judges each awaiting item of its channel against its deadline; owns that channel's deadlines."""

    def __init__(self, config: ReplyWithinConfig) -> None:
        self.config = config
        self.name = "reply_within"
        self.deadline_channel: Channel | None = Channel(config.channel)
        self.business_hours = config.business_hours

    def due_at(self, view: TeamView, received_at: datetime) -> datetime:
        """The deadline of an item that arrived at ``received_at``."""
        seconds = self.config.within.total_seconds()
        if self.config.business_hours:
            return view.calendar.add_business_seconds(received_at, seconds)
        return received_at + self.config.within

    def warn_at(self, view: TeamView, received_at: datetime) -> datetime | None:
        """When the warning starts, or None without ``warn_before``."""
        if self.config.warn_before is None:
            return None
        seconds = (self.config.within - self.config.warn_before).total_seconds()
        if self.config.business_hours:
            return view.calendar.add_business_seconds(received_at, seconds)
        return received_at + timedelta(seconds=seconds)

    def evaluate(self, view: TeamView, now: datetime) -> list[Finding]:
        """One finding per item of the channel: ok, warning (deadline near) or breach (deadline passed)."""
        findings: list[Finding] = []
        for item in view.awaiting:
            if item.channel != self.config.channel:
                continue
            due = self.due_at(view, item.received_at)
            end = item.responded_at if item.responded_at is not None else now
            if end > due:
                resolved = item.responded_at
                findings.append(Finding(self.name, item.key, Level.BREACH, due, due, resolved))
                continue
            warn = self.warn_at(view, item.received_at)
            if item.responded_at is None and warn is not None and now >= warn:
                findings.append(Finding(self.name, item.key, Level.WARNING, due, warn))
            else:
                findings.append(Finding(self.name, item.key, Level.OK, due))
        return findings


PLUGIN = RulePlugin(ReplyWithinConfig, ReplyWithin)
"""The ``reply_within`` rule plugin (entry point ``reply_within`` of ``replywatch.rules``)."""
