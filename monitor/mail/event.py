"""A parsed header block (plus what the source knows) -> one :class:`MessageEvent` (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from email.message import Message
from typing import TypeVar

from monitor.events import MessageEvent
from monitor.mail.classify import DEFAULT_NO_REPLY, classify
from monitor.mail.headers import (
    addresses,
    dated,
    decoded,
    first_address,
    message_ids,
    parse_header_block,
    thread_index_root,
    unicode_text,
)

T = TypeVar("T")
_NO_IDS: tuple[str, ...] = ()
_NO_ADDRESS: tuple[str | None, str] = (None, "")


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
    report: Callable[[str, str], None] | None = None,
) -> MessageEvent:
    """Build the normalized event for one parsed message: a header block, or a whole message with its body.

    Every source builds the block its own way (IMAP header fetch, a maildir file, an mbox entry, an
    Exchange or Graph item rendered as headers) and calls this with what only it knows. It never raises
    for what a message contains: an unreadable field keeps its raw text (or a safe default) and
    ``report(field, reason)`` is called once per such field, so the source can say so (issue 7).
    """
    problems: dict[str, str] = {}

    def note(name: str, reason: str) -> None:
        problems.setdefault(name, reason)

    for name in getattr(msg, "truncated", ()):
        note(name, "longer than the header limit, cut")
    try:
        verdict = classify(
            msg, no_reply_senders=DEFAULT_NO_REPLY if no_reply_senders is None else no_reply_senders
        )
        automated, bulk_precedence = verdict.automated, verdict.bulk_precedence
    except Exception as err:  # a classifier bug must not drop a customer: judge the message as human
        note("classification", type(err).__name__)
        automated, bulk_precedence = None, False
    ids = _guarded(note, "Message-ID", lambda: message_ids(msg.get("Message-ID")), _NO_IDS)
    from_addr, from_name = _reported(note, "From", lambda p: first_address(msg.get("From"), p), _NO_ADDRESS)
    sender_addr, _ = _reported(note, "Sender", lambda p: first_address(msg.get("Sender"), p), _NO_ADDRESS)
    irt = _guarded(note, "In-Reply-To", lambda: message_ids(msg.get("In-Reply-To")), _NO_IDS)
    date, unused_date = dated(msg, internal_date, now)
    if unused_date:
        note("Date", "unreadable or absurd, arrival time used")
    holding = msg.get("X-Replywatch-Holding") is not None
    event = MessageEvent(
        source=source,
        folder=folder,
        external_id=external_id,
        message_id=ids[0] if ids else None,
        date=date,
        from_addr=from_addr,
        from_name=from_name,
        sender_addr=sender_addr,
        reply_to=_reported(note, "Reply-To", lambda p: addresses(msg.get_all("Reply-To") or (), p), _NO_IDS),
        to_addrs=_reported(note, "To", lambda p: addresses(msg.get_all("To") or (), p), _NO_IDS),
        cc_addrs=_reported(note, "Cc", lambda p: addresses(msg.get_all("Cc") or (), p), _NO_IDS),
        subject=_reported(note, "Subject", lambda p: decoded(msg.get("Subject"), p), _raw(msg, "Subject")),
        in_reply_to=irt[-1] if irt else None,
        references=_guarded(note, "References", lambda: message_ids(msg.get("References")), _NO_IDS),
        thread_id=gmail_thread_id
        or _guarded(note, "Thread-Index", lambda: thread_index_root(msg.get("Thread-Index")), None),
        automated=automated,
        bulk_precedence=bulk_precedence,
        flags=frozenset(f.lower().lstrip("\\") for f in flags),
        holding_marker=holding,
        preview=preview,
    )
    if report is not None:
        for name, reason in problems.items():
            report(name, reason)
    return event


def _guarded(note: Callable[[str, str], None], name: str, read: Callable[[], T], fallback: T) -> T:
    try:
        return read()
    except Exception as err:  # RecursionError, codec errors...: the field falls back, the message stays
        note(name, type(err).__name__)
        return fallback


def _reported(note: Callable[[str, str], None], name: str, read: Callable[[list[str]], T], fallback: T) -> T:
    problems: list[str] = []
    value = _guarded(note, name, lambda: read(problems), fallback)
    if problems:
        note(name, problems[0])
    return value


def _raw(msg: Message, name: str) -> str:
    value = msg.get(name)
    return " ".join(unicode_text(str(value)).split()) if value is not None else ""


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
