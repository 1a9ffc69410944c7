"""Rule ``holding_reply``: when the full answer takes longer than ``within``, the customer was told so.

"Tell the customer when it takes longer": by the deadline, an item must be answered or acknowledged.
Which team messages are acknowledgments is decided by ``phrases`` (in the subject or the first words of
the text; the sources need ``text_preview: true`` for the text) or the ``X-Replywatch-Holding`` header.
Automatic acknowledgments (``Auto-Submitted``, helpdesk auto-replies) are automated mail: they never
count, neither as an acknowledgment nor as an answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from monitor.durations import Duration
from monitor.events import Channel
from monitor.rules.base import FOREVER, EngineOptions, Finding, Level, RuleConfigBase, RulePlugin, TeamView

DEFAULT_PHRASES = (
    "we have received your",
    "we received your",
    "we will get back to you",
    "we'll get back to you",
    "we are looking into",
    "we're looking into",
    "we are working on",
    "we're working on",
    "thank you for your patience",
    "wir haben ihre anfrage erhalten",
    "wir melden uns",
)


class HoldingReplyConfig(RuleConfigBase):
    """Settings of ``holding_reply``."""

    kind: Literal["holding_reply"]
    within: Duration = Field(default=timedelta(hours=4))
    """By this time after arrival the customer has an answer or at least an acknowledgment."""
    business_hours: bool = True
    """Count only the team calendar's opening hours (false: wall-clock time)."""
    phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_PHRASES))
    """Text that makes a team message an acknowledgment (case-insensitive, in subject or text)."""
    channel: Literal["email"] = "email"
    """Which awaiting items the rule judges."""

    def engine_options(self) -> EngineOptions:
        """The engine tells acknowledgments from answers by these phrases."""
        return EngineOptions(holding_phrases=tuple(self.phrases))


class HoldingReply:
    """Judges each item at its holding deadline: answered or acknowledged by then, else a breach."""

    def __init__(self, config: HoldingReplyConfig) -> None:
        self.config = config
        self.name = "holding_reply"
        self.deadline_channel: Channel | None = None
        self.business_hours = config.business_hours

    def deadline(self, view: TeamView, received_at: datetime) -> datetime:
        """When an acknowledgment is due for an item that arrived at ``received_at``."""
        if self.config.business_hours:
            return view.calendar.add_business_seconds(received_at, self.config.within.total_seconds())
        return received_at + self.config.within

    def evaluate(self, view: TeamView, now: datetime) -> list[Finding]:
        """Per item: ok, or a breach from the deadline until the first answer or acknowledgment."""
        findings = []
        for item in view.awaiting:
            if item.channel != self.config.channel:
                continue
            due = self.deadline(view, item.received_at)
            # A removed item needs no acknowledgment after its removal: a breach it had resolves then.
            told = [t for t in (item.closed_at, item.acknowledged_at) if t is not None]
            first = min(told) if told else None
            if first is not None and first <= due:
                findings.append(Finding(self.name, item.key, Level.OK, due, stable_until=FOREVER))
            elif now > due:
                findings.append(
                    Finding(self.name, item.key, Level.BREACH, due, due, first, stable_until=FOREVER)
                )
            else:
                findings.append(Finding(self.name, item.key, Level.OK, due, stable_until=due))
        return findings


PLUGIN = RulePlugin(HoldingReplyConfig, HoldingReply)
"""The ``holding_reply`` rule plugin (entry point ``holding_reply`` of ``replywatch.rules``)."""
