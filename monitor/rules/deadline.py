"""What ``reply_within`` and ``callback_within`` share: a deadline per awaiting item, with a warning."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field, model_validator

from monitor.durations import Duration, format_duration
from monitor.events import Channel
from monitor.rules.base import FOREVER, Finding, Level, RuleConfigBase, TeamView


class DeadlineConfig(RuleConfigBase):
    """Settings of a rule that gives every awaiting item of a channel a deadline."""

    within: Duration = Field(default=timedelta(hours=24))
    """How long a customer may wait for the team's answer."""
    business_hours: bool = True
    """Count only the team calendar's opening hours (false: wall-clock time)."""
    warn_before: Duration | None = None
    """Warn this long before the deadline (in the same clock as ``within``)."""

    @model_validator(mode="after")
    def _warning_inside_window(self) -> DeadlineConfig:
        if self.warn_before is not None and self.warn_before >= self.within:
            raise ValueError(
                f"warn_before ({format_duration(self.warn_before)}) must be shorter than "
                f"within ({format_duration(self.within)})"
            )
        return self


class DeadlineRule:
    """Judges each awaiting item of its channel against its deadline; owns that channel's deadlines."""

    def __init__(self, name: str, channel: Channel, config: DeadlineConfig) -> None:
        self.name = name
        self.deadline_channel: Channel | None = channel
        self.business_hours = config.business_hours
        self.within = config.within
        self.warn_before = config.warn_before

    def due_at(self, view: TeamView, received_at: datetime) -> datetime:
        """The deadline of an item that arrived at ``received_at``."""
        return self._after(view, received_at, self.within)

    def warn_at(self, view: TeamView, received_at: datetime) -> datetime | None:
        """When the warning starts, or None without ``warn_before``."""
        if self.warn_before is None:
            return None
        return self._after(view, received_at, self.within - self.warn_before)

    def _after(self, view: TeamView, start: datetime, span: timedelta) -> datetime:
        if self.business_hours:
            return view.calendar.add_business_seconds(start, span.total_seconds())
        return start + span

    def evaluate(self, view: TeamView, now: datetime) -> list[Finding]:
        """One finding per item of the channel: ok, warning (deadline near) or breach (deadline passed)."""
        findings: list[Finding] = []
        for item in view.awaiting:
            if item.channel != self.deadline_channel:
                continue
            due = self.due_at(view, item.received_at)
            # A removed item stops waiting when it was removed: a breach it had resolves then.
            end = item.closed_at if item.closed_at is not None else now
            if end > due:
                resolved = item.closed_at
                findings.append(
                    Finding(self.name, item.key, Level.BREACH, due, due, resolved, stable_until=FOREVER)
                )
                continue
            warn = self.warn_at(view, item.received_at)
            if item.closed_at is None and warn is not None and now >= warn:
                findings.append(Finding(self.name, item.key, Level.WARNING, due, warn, stable_until=due))
            else:
                # Waiting: the level changes when the warning starts or, without one, when the deadline
                # passes. Answered (or removed) on time: never by itself.
                if item.closed_at is not None:
                    until = FOREVER
                elif warn is not None and now < warn:
                    until = warn
                else:
                    until = due
                findings.append(Finding(self.name, item.key, Level.OK, due, stable_until=until))
        return findings
