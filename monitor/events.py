"""Normalized facts that sources produce: messages, calls and mailbox snapshots, on two channels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any


class Channel(StrEnum):
    """How a customer reached the team: the ``channel`` label of every awaiting item and metric."""

    EMAIL = "email"
    PHONE = "phone"


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One message as a source saw it: headers only, never a body.

    ``external_id`` is unique within the source and stable across polls (for IMAP
    ``folder/uidvalidity/uid``, for maildir the file's key); ingest is idempotent on
    ``(source, external_id)``.
    """

    source: str
    folder: str
    """The folder's role: ``inbox``, ``sent`` or the folder's name for others (``<mailbox>/<role>`` when a
    source reads several mailboxes; :func:`folder_role` gives the role); the folder its snapshot counts."""
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
    bulk_precedence: bool = False
    """``Precedence: bulk|junk|list`` on a message that is no discussion-list post: bulk mail unless it was
    addressed to the team personally (decided per team, :meth:`monitor.engine.team.TeamContext.automated`)."""
    flags: frozenset[str] = field(default_factory=frozenset)
    """IMAP-style system flags in lower case without the backslash: ``seen``, ``answered``, ``flagged``."""
    holding_marker: bool = False
    """True when the message says it is a holding reply (``X-Replywatch-Holding``), not a full answer."""
    preview: str = ""
    """The first words of the message's own text (quotes removed), only when the source reads text."""
    removed_at: datetime | None = None
    """When the store learnt that the message was deleted or moved out of its folder (None: still there).
    Sources never set it: they report removals in ``PollResult.removed`` and ``PollResult.remaining``."""

    @property
    def channel(self) -> Channel:
        """Always :attr:`Channel.EMAIL`."""
        return Channel.EMAIL

    def __reduce__(self) -> tuple[type[MessageEvent], tuple[Any, ...]]:
        """Pickled as the arguments that make it again: parse workers send thousands of events a second,
        and the dataclass's own state functions look its fields up for every one (a third of the cost)."""
        return MessageEvent, _message_fields(self)


_message_fields = attrgetter(*(f.name for f in fields(MessageEvent)))
"""Every field of an event, in the constructor's order."""


ARCHIVE_ROLE_PREFIX = "archive:"
"""The role of an archive folder is ``archive:<its name>``: a watched folder that answers nothing."""


def archive_role(name: str) -> str:
    """The role of the archive folder ``name``."""
    return f"{ARCHIVE_ROLE_PREFIX}{name}"


def is_archive(role: str) -> bool:
    """Whether a folder role is an archive folder's: its messages keep known mail from counting as removed,
    but never open an item or answer one by themselves."""
    return role.startswith(ARCHIVE_ROLE_PREFIX)


def known_at(messages: Iterable[MessageEvent], at: datetime) -> list[MessageEvent]:
    """The messages as the store knew them at ``at``: a removal recorded later had not happened yet, so
    judging a past moment (a report, ``replay --now``) does not change when mail is deleted afterwards."""
    return [
        m if m.removed_at is None or m.removed_at <= at else replace(m, removed_at=None) for m in messages
    ]


class CallDirection(StrEnum):
    """Which way a call went, seen from the team."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One phone call as the phone system logged it, all its legs grouped (ring groups, transfers).

    ``external_id`` is the call's linked id (else its unique id): ingest is idempotent on
    ``(source, external_id)``.
    """

    source: str
    external_id: str
    started_at: datetime
    """When the call began ringing, UTC-aware."""
    direction: CallDirection
    caller: str
    """The calling number (E.164 for outside numbers) or extension."""
    callee: str
    """The dialled number, line or extension."""
    answered: bool
    """Whether a person answered it (not an IVR, queue or voicemail application)."""
    answered_by: str | None = None
    """The extension that answered, when one did."""
    line: str | None = None
    """The line, queue or DID the call came in on (decides the team that owns it)."""
    wait_seconds: float = 0.0
    """How long the caller waited before an answer or hanging up."""
    talk_seconds: float = 0.0
    """How long the conversation lasted (0 when unanswered)."""
    legs: int = 1
    """How many CDR rows the call was made of."""
    rang: tuple[str, ...] = ()
    """The extensions the call rang, in the order it rang them (one for a call put straight through)."""

    @property
    def channel(self) -> Channel:
        """Always :attr:`Channel.PHONE`."""
        return Channel.PHONE


def folder_role(folder: str) -> str:
    """The role (``inbox``, ``sent``, a folder's own name) of a folder as sources name it: a source reading
    several mailboxes (Graph, EWS) names each folder ``<mailbox address>/<role>``."""
    mailbox, slash, role = folder.rpartition("/")
    return role if slash and "@" in mailbox else folder


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
