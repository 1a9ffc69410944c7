"""A message read from a mail API (Graph, EWS) as a header block: built and classified as IMAP mail is."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, formataddr
from typing import TypeVar

from monitor.events import MessageEvent
from monitor.mail.headers import HeaderBlock
from monitor.sources.base import FolderRead, FolderState

Mailbox = tuple[str, str]
"""A display name and an address, as the APIs give them."""


@dataclass(frozen=True, slots=True)
class MailItem:
    """The fields of one message an API returns, named as the RFC 5322 headers they stand for."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    subject: str | None = None
    date: datetime | None = None
    from_: Mailbox | None = None
    sender: Mailbox | None = None
    to: Sequence[Mailbox] = ()
    cc: Sequence[Mailbox] = ()
    reply_to: Sequence[Mailbox] = ()
    internet_headers: Sequence[tuple[str, str]] = field(default_factory=tuple)
    """The message's own header fields, when the API returned them (Graph ``internetMessageHeaders``)."""

    def header_block(self) -> HeaderBlock:
        """The message's own header fields, completed from the item's fields where they lack one."""
        headers = [(name, value) for name, value in self.internet_headers if name and "\n" not in name]
        present = {name.lower() for name, _ in headers}

        def add(name: str, value: str | None) -> None:
            if value and name.lower() not in present:
                headers.append((name, value))

        add("Message-ID", self.message_id)
        add("In-Reply-To", self.in_reply_to)
        add("References", self.references)
        add("Subject", self.subject)
        add("Date", format_datetime(self.date) if self.date is not None else None)
        add("From", _mailboxes([self.from_] if self.from_ else []))
        add("Sender", _mailboxes([self.sender] if self.sender else []))
        add("To", _mailboxes(self.to))
        add("Cc", _mailboxes(self.cc))
        add("Reply-To", _mailboxes(self.reply_to))
        return HeaderBlock(headers)


def _mailboxes(boxes: Iterable[Mailbox]) -> str | None:
    text = ", ".join(formataddr((name, addr)) if name else addr for name, addr in boxes if addr)
    return text or None


FolderItems = Mapping[str, tuple[str, bool]]
"""A folder's messages as an API source keeps them: id -> (arrival as ISO 8601, read)."""


def folder_counts(items: FolderItems) -> tuple[int, str | None]:
    """How many of a folder's ``items`` are unread, and when the oldest arrived (None when empty)."""
    unseen = sum(1 for _, read in items.values() if not read)
    return unseen, min((received for received, _ in items.values()), default=None)


class ItemsState(FolderState):
    """What an API source keeps of a folder besides its position: its messages and their counts."""

    items: dict[str, tuple[str, bool]]
    """Item id -> (received time, read) of every message in the folder: its counts."""
    unseen: int
    """Messages not read, counted from ``items`` when they changed."""
    oldest: str | None
    """When the oldest message arrived (ISO 8601), from ``items`` when they changed."""


ItemsStateT = TypeVar("ItemsStateT", bound=ItemsState)


def items_read(
    state: ItemsStateT,
    messages: list[MessageEvent],
    *,
    resync: bool = False,
    removed: Sequence[str] = (),
) -> FolderRead[ItemsStateT]:
    """A folder's read with its counts from ``state``. No "answered" flag is read (EWS and Graph give one
    only through extended properties): the unanswered count is replywatch's own, from its open items."""
    oldest = state["oldest"]
    return FolderRead(
        state,
        messages,
        len(state["items"]),
        state["unseen"],
        0,
        datetime.fromisoformat(oldest) if oldest else None,
        resync=resync,
        removed=list(removed),
    )
