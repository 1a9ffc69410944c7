"""A parsed header block (plus what the source knows) -> one :class:`MessageEvent` (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import Message

from monitor.events import MessageEvent
from monitor.mail.classify import DEFAULT_NO_REPLY, classify
from monitor.mail.headers import (
    addresses,
    decoded,
    first_address,
    message_date,
    message_ids,
    parse_header_block,
    thread_index_root,
)


def to_event(
    msg: Message,
    *,
    source: str,
    folder: str,
    external_id: str,
    internal_date: datetime | None = None,
    flags: Sequence[str] = (),
    gmail_thread_id: str | None = None,
    no_reply_senders: Sequence[str] | None = None,
    now: datetime | None = None,
    preview: str = "",
) -> MessageEvent:
    """Build the normalized event for one parsed message: a header block, or a whole message with its body.

    Every source builds the block its own way (IMAP header fetch, a maildir file, an mbox entry, an
    Exchange or Graph item rendered as headers) and calls this with what only it knows.
    """
    verdict = classify(
        msg, no_reply_senders=DEFAULT_NO_REPLY if no_reply_senders is None else no_reply_senders
    )
    ids = message_ids(msg.get("Message-ID"))
    from_addr, from_name = first_address(msg.get("From"))
    sender_addr, _ = first_address(msg.get("Sender"))
    irt = message_ids(msg.get("In-Reply-To"))
    thread_id = gmail_thread_id or thread_index_root(msg.get("Thread-Index"))
    holding = msg.get("X-Replywatch-Holding") is not None
    return MessageEvent(
        source=source,
        folder=folder,
        external_id=external_id,
        message_id=ids[0] if ids else None,
        date=message_date(msg, internal_date, now),
        from_addr=from_addr,
        from_name=from_name,
        sender_addr=sender_addr,
        reply_to=addresses(msg.get_all("Reply-To") or ()),
        to_addrs=addresses(msg.get_all("To") or ()),
        cc_addrs=addresses(msg.get_all("Cc") or ()),
        subject=decoded(msg.get("Subject")),
        in_reply_to=irt[-1] if irt else None,
        references=message_ids(msg.get("References")),
        thread_id=thread_id,
        automated=verdict.automated,
        flags=frozenset(f.lower().lstrip("\\") for f in flags),
        holding_marker=holding,
        preview=preview,
    )


def parse_event(
    raw: bytes,
    *,
    source: str,
    folder: str,
    external_id: str,
    internal_date: datetime | None = None,
    flags: Sequence[str] = (),
) -> MessageEvent:
    """Parse raw header bytes (or a whole message) into an event (see :func:`to_event`)."""
    return to_event(
        parse_header_block(raw),
        source=source,
        folder=folder,
        external_id=external_id,
        internal_date=internal_date,
        flags=flags,
    )
