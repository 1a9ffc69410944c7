"""Rule ``inbox_nearly_empty``: a watched folder holds few messages, all read and answered, none old.

Judged from each folder's latest snapshot (the source's message and unread counts and its oldest arrival)
and replywatch's own count of unanswered customer mail in the folder (open awaiting items, not the IMAP
``\\Answered`` flag). A folder is one subject that can breach, recover and breach again, each time its own
breach (``Finding(once=False)``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from monitor.durations import Duration
from monitor.events import Channel, MailboxSnapshot, folder_role
from monitor.rules.base import Finding, Level, RuleConfigBase, RulePlugin, TeamView

LIMIT_COUNTS: dict[str, str] = {"max_messages": "messages", "max_unread": "unseen", "max_age": "oldest"}
"""The folder count each limit needs from a source (``max_unanswered`` is replywatch's own)."""


class InboxNearlyEmptyConfig(RuleConfigBase):
    """Settings of ``inbox_nearly_empty``; at least one limit is required."""

    kind: Literal["inbox_nearly_empty"]
    channel: Literal["email"] = "email"
    """Mail folders."""
    source: str | None = None
    """The one source whose folders are judged (none: every mail source of the team)."""
    folders: list[str] = Field(default_factory=lambda: ["inbox"], min_length=1)
    """Folder roles judged (``inbox``, ``sent`` or a folder's own name); ``inbox`` judges the inbox of every
    mailbox of a source that reads several, ``sales@example.com/inbox`` only that one."""
    max_messages: int | None = Field(default=None, ge=0)
    """At most this many messages in the folder."""
    max_unread: int | None = Field(default=None, ge=0)
    """At most this many unread messages (IMAP UNSEEN)."""
    max_unanswered: int | None = Field(default=None, ge=0)
    """At most this many customer messages still waiting for the team's answer (replywatch's judgement)."""
    max_age: Duration | None = None
    """No message older than this (its arrival time)."""
    business_hours: bool = False
    """Count ``max_age`` in the team calendar's opening hours (default: wall-clock time)."""

    @model_validator(mode="after")
    def _some_limit(self) -> InboxNearlyEmptyConfig:
        if all(getattr(self, limit) is None for limit in (*LIMIT_COUNTS, "max_unanswered")):
            raise ValueError("set at least one of max_messages, max_unread, max_unanswered, max_age")
        return self

    def source_counts(self) -> dict[str, str]:
        """Each set limit that needs a count from the source, with that count's name."""
        return {limit: count for limit, count in LIMIT_COUNTS.items() if getattr(self, limit) is not None}


class InboxNearlyEmpty:
    """Judges every watched folder against the limits; one finding per folder."""

    name = "inbox_nearly_empty"
    deadline_channel: Channel | None = None
    business_hours = False

    def __init__(self, config: InboxNearlyEmptyConfig) -> None:
        self.config = config

    def evaluate(self, view: TeamView, now: datetime) -> list[Finding]:
        """A breach for each watched folder over a limit (dated when it went over, if known), else ok."""
        return [
            self._judge(view, snap, now)
            for snap in view.mailboxes
            if (snap.folder in self.config.folders or folder_role(snap.folder) in self.config.folders)
            and (self.config.source is None or snap.source == self.config.source)
        ]

    def _judge(self, view: TeamView, snap: MailboxSnapshot, now: datetime) -> Finding:
        cfg = self.config
        over: list[datetime] = []
        for limit, value in ((cfg.max_messages, snap.total), (cfg.max_unread, snap.unseen)):
            if limit is not None and value > limit:
                over.append(snap.at)
        if cfg.max_unanswered is not None and snap.unanswered > cfg.max_unanswered:
            over.append(snap.at)
        if cfg.max_age is not None and snap.oldest is not None:
            if cfg.business_hours:
                too_old_at = view.calendar.add_business_seconds(snap.oldest, cfg.max_age.total_seconds())
            else:
                too_old_at = snap.oldest + cfg.max_age
            if too_old_at < now:
                over.append(too_old_at)
        subject = f"{snap.source}/{snap.folder}"
        if not over:
            return Finding(self.name, subject, Level.OK, once=False)
        return Finding(self.name, subject, Level.BREACH, since=min(over), once=False)


PLUGIN = RulePlugin(InboxNearlyEmptyConfig, InboxNearlyEmpty)
"""The ``inbox_nearly_empty`` rule plugin (entry point ``inbox_nearly_empty`` of ``replywatch.rules``)."""
