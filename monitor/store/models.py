"""The store's tables (sqlmodel). Changing one needs a migration in ``monitor/store/migrations``.

Whatever a message or a call log can make long (ids, addresses, flags, numbers) is ``Text``: a length
limit there protects nothing and one odd message would stop ingest on PostgreSQL (issue 7). Ids that
index rows stay short because :func:`monitor.mail.headers.message_ids` hashes absurdly long ones.

These models are the schema at the head revision: a new, empty store is created from them directly
(:mod:`monitor.store.migrate`), so each column is declared where the migrations put it (a column added by a
migration comes last in its table) and with the server default the migration gave it; a test checks that
both ways give the same schema on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Dialect, Index, Text, TypeDecorator, UniqueConstraint, false
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC-aware in Python, whatever the database keeps.

    SQLite has no time zones: values are stored as naive UTC and made aware again on load.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store UTC (naive on SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, :meth:`sqlite_text`: this type's and ``DATETIME``'s conversions in one step."""
        if dialect.name == "sqlite":
            return self.sqlite_text
        return super().bind_processor(dialect)

    @staticmethod
    def sqlite_text(value: datetime | None) -> str | None:
        """What :meth:`process_bind_param` and SQLite's ``DATETIME`` make of ``value`` for the driver, in one
        step: a bulk insert converts tens of thousands of timestamps at once (a test holds it equal to the
        two steps)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Load as UTC-aware."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Message(SQLModel, table=True):
    """One message seen by a source (headers only); unique on (source, external_id)."""

    __tablename__ = "message"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_message_source_external"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=200)
    external_id: str = Field(sa_column=Column(Text, nullable=False))
    folder: str = Field(max_length=200)
    message_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True, index=True))
    date: datetime = Field(sa_column=_ts(index=True))
    from_addr: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    from_name: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    sender_addr: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    reply_to: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    to_addrs: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    cc_addrs: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    in_reply_to: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    references: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    thread_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    automated: str | None = Field(default=None, max_length=50)
    flags: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    holding_marker: bool = False
    preview: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    ingested_at: datetime = Field(sa_column=_ts(index=True))
    removed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    """When the source reported it deleted or moved out of its folder (None: still there). The row stays:
    a removed answer is still an answer; the engine closes an unanswered item all of whose messages are
    removed as ``removed``."""
    bulk_precedence: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    """Precedence bulk/junk/list on no discussion post: automated unless addressed to the team personally."""


class Call(SQLModel, table=True):
    """One phone call (all its legs) seen by a source; unique on (source, external_id)."""

    __tablename__ = "call"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_call_source_external"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=200)
    external_id: str = Field(sa_column=Column(Text, nullable=False))
    started_at: datetime = Field(sa_column=_ts(index=True))
    direction: str = Field(max_length=20)
    caller: str = Field(sa_column=Column(Text, nullable=False))
    callee: str = Field(sa_column=Column(Text, nullable=False))
    answered: bool = False
    answered_by: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    line: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    legs: int = 1
    ingested_at: datetime = Field(sa_column=_ts())
    rang: str = Field(default="", sa_column=Column(Text, nullable=False, default="", server_default=""))
    """The extensions the call rang, comma-separated."""


class SourceCursor(SQLModel, table=True):
    """A source's position, saved in the same transaction as the events it covers."""

    __tablename__ = "source_cursor"

    source: str = Field(primary_key=True, max_length=200)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=_ts())
    engine_changed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    """When the source last added an event or changed a field the engine reads (not a flag such as
    ``\\Seen``): the engine rebuilds a team's items only when a source's stamp moved."""


class MailboxCount(SQLModel, table=True):
    """The latest counts of one folder of a source."""

    __tablename__ = "mailbox_count"

    source: str = Field(primary_key=True, max_length=200)
    folder: str = Field(primary_key=True, max_length=200)
    total: int
    unseen: int
    unanswered: int
    oldest: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    at: datetime = Field(sa_column=_ts())


class AwaitingRow(SQLModel, table=True):
    """A customer contact waiting for the team, from arrival to the team's response."""

    __tablename__ = "awaiting"
    __table_args__ = (
        UniqueConstraint("team", "channel", "item_key", name="uq_awaiting_team_channel_key"),
        Index("ix_awaiting_open", "team", "responded_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=200)
    channel: str = Field(max_length=20)
    item_key: str = Field(sa_column=Column(Text, nullable=False))
    conversation: str = Field(sa_column=Column(Text, nullable=False))
    customer: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(sa_column=_ts())
    due_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    responded_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    acknowledged_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    response_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    responder: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    business_seconds: float | None = None
    """Time from arrival to response in the team calendar's opening hours (None while open)."""
    updated_at: datetime = Field(sa_column=_ts())
    wall_seconds: float | None = None
    """Wall-clock time from arrival to response (None while open)."""
    owner: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """The member who answers for the item (None: the team)."""
    attempts: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    """How many times the customer tried while waiting (missed calls from one number)."""
    outside_hours: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    """The customer called while the team's calendar was closed."""
    removed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    """When the unanswered item's messages were all deleted or moved out of every watched folder: it is
    closed as ``removed`` (not open, not answered)."""


class Breach(SQLModel, table=True):
    """A rule's non-ok verdict on a subject, from when it opened to when it resolved."""

    __tablename__ = "breach"
    __table_args__ = (
        Index("ix_breach_open", "team", "rule", "resolved_at"),
        Index("ix_breach_subject", "team", "rule", "subject"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=200)
    rule: str = Field(max_length=100)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    level: str = Field(max_length=20)
    """``warning`` or ``breach``."""
    opened_at: datetime = Field(sa_column=_ts())
    breached_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    """When it became a breach (its opening time for a breach opened as one; None for a warning)."""
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    due_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    unreadable: str = Field(default="", sa_column=Column(Text, nullable=False, default="", server_default=""))
    """Sources that could not be read when it opened or became a breach, space-separated (empty: judged
    on complete data)."""


class Notification(SQLModel, table=True):
    """A message owed to a recipient for one step of a breach, or a team's report for one period (the
    outbox): written with the transition that caused it (or when the period ended), sent by the dispatcher,
    retried until delivered or expired, never sent twice."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("breach_id", "step", "recipient", name="uq_notification_breach_step_recipient"),
        UniqueConstraint("team", "report_period", "recipient", name="uq_notification_report"),
        Index("ix_notification_pending", "outcome", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    breach_id: int | None = Field(default=None, foreign_key="breach.id")
    """The breach an alert is about (None for a report)."""
    team: str = Field(max_length=200)
    notifier: str = Field(max_length=200)
    step: str = Field(max_length=50)
    """The escalation step as configured: ``warning``, ``breach``, ``breach+4h``, ``resolved``."""
    recipient: str = Field(max_length=320)
    """An address, or for a notifier without addresses (a webhook) the step's recipients as written."""
    due_at: datetime = Field(sa_column=_ts())
    """When it may go out (moved to the team's next opening unless urgent)."""
    created_at: datetime = Field(sa_column=_ts())
    outcome: str = Field(default="pending", max_length=20, sa_column_kwargs={"server_default": "pending"})
    """``pending``, ``sent``, ``expired`` or ``cancelled`` (its breach was over before it went out)."""
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    done_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error: str | None = Field(default=None, max_length=500)
    """Why the last attempt failed (the server's reply; no customer data)."""
    report_period: str | None = Field(default=None, max_length=20)
    """The period a report covers (``2026-10``, ``2026-W44``); None for an alert."""


TABLES = tuple(
    model.__table__  # type: ignore[union-attr]
    for model in (Message, Call, SourceCursor, MailboxCount, AwaitingRow, Breach, Notification)
)
"""Every table of the store (a new store is created with these)."""
