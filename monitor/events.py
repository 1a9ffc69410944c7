"""Normalized facts that sources produce: messages and mailbox snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One message as a source saw it: headers only, never a body.

    ``external_id`` is unique within the source and stable across polls (for IMAP
    ``folder/uidvalidity/uid``, for maildir the file's key); ingest is idempotent on
    ``(source, external_id)``.
    """

    source: str
    folder: str
    """The folder's role: ``inbox``, ``sent`` or the folder's name for others."""
    external_id: str
    message_id: str | None
    """Message-ID without angle brackets; None when the header is missing."""
    date: datetime
    """When the message was sent, UTC-aware (Date header, else the server's arrival time)."""
    from_addr: str | None
    from_name: str = ""
    sender_addr: str | None = None
    reply_to: tuple[str, ...] = ()
    to_addrs: tuple[str, ...] = ()
    cc_addrs: tuple[str, ...] = ()
    subject: str = ""
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    thread_id: str | None = None
    """The source's own conversation id (Gmail X-GM-THRID, Outlook Thread-Index root), if any."""
    automated: str | None = None
    """Why this message is automated (``auto_reply``, ``bounce``, ``bulk``...); None for human mail."""
    flags: frozenset[str] = field(default_factory=frozenset)
    """IMAP-style system flags in lower case without the backslash: ``seen``, ``answered``, ``flagged``."""
    holding_marker: bool = False
    """True when the message says it is a holding reply (``X-Replywatch-Holding``), not a full answer."""
    preview: str = ""
    """The first words of the message's own text (quotes removed), only when the source reads text."""


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    """Counts of one folder at one time."""

    source: str
    folder: str
    at: datetime
    total: int
    unseen: int
    unanswered: int
    oldest: datetime | None = None
