"""A parsed header block (plus what the source knows) -> one :class:`MessageEvent` (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from email.message import Message
from typing import Any, TypeVar

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
F = TypeVar("F")
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
    """The first reason each field was kept as it was, in the order found (``report`` is called in it)."""
    for name in getattr(msg, "truncated", ()):
        problems.setdefault(name, "longer than the header limit, cut")
    try:
        verdict = classify(
            msg, no_reply_senders=DEFAULT_NO_REPLY if no_reply_senders is None else no_reply_senders
        )
        automated, bulk_precedence = verdict.automated, verdict.bulk_precedence
    except Exception as err:  # a classifier bug must not drop a customer: judge the message as human
        problems.setdefault("classification", type(err).__name__)
        automated, bulk_precedence = None, False
    get = msg.get
    ids = _read(problems, "Message-ID", _ids, get, _NO_IDS)
    from_addr, from_name = _read(problems, "From", first_address, get, _NO_ADDRESS)
    sender_addr, _ = _read(problems, "Sender", first_address, get, _NO_ADDRESS)
    irt = _read(problems, "In-Reply-To", _ids, get, _NO_IDS)
    date, unused_date = dated(msg, internal_date, now)
    if unused_date:
        problems.setdefault("Date", "unreadable or absurd, arrival time used")
    holding = get("X-Replywatch-Holding") is not None
    get_all = msg.get_all
    reply_to = _read(problems, "Reply-To", _addresses, get_all, _NO_IDS)
    to_addrs = _read(problems, "To", _addresses, get_all, _NO_IDS)
    cc_addrs = _read(problems, "Cc", _addresses, get_all, _NO_IDS)
    subject = _read(problems, "Subject", decoded, get, None)
    references = _read(problems, "References", _ids, get, _NO_IDS)
    thread_id = gmail_thread_id or _read(problems, "Thread-Index", _thread_index, get, None)
    event = MessageEvent(
        source=source,
        folder=folder,
        external_id=external_id,
        message_id=ids[0] if ids else None,
        date=date,
        from_addr=from_addr,
        from_name=from_name,
        sender_addr=sender_addr,
        reply_to=reply_to,
        to_addrs=to_addrs,
        cc_addrs=cc_addrs,
        subject=_raw(msg, "Subject") if subject is None else subject,
        in_reply_to=irt[-1] if irt else None,
        references=references,
        thread_id=thread_id,
        automated=automated,
        bulk_precedence=bulk_precedence,
        flags=frozenset([f.lower().lstrip("\\") for f in flags]),
        holding_marker=holding,
        preview=preview,
    )
    if report is not None:
        for name, reason in problems.items():
            report(name, reason)
    return event


def _read(
    problems: dict[str, str],
    name: str,
    read: Callable[[Any, list[str]], T],
    values: Callable[[str], Any],
    fallback: F,
) -> T | F:
    """``read(values(name), found)``, one header field read into its event value; ``fallback`` when that
    raises (RecursionError, codec errors...: the field falls back, the message stays). The exception's
    type, else the first reason ``read`` appended to ``found``, is noted in ``problems``.

    A plain function given the header's getter, not a closure per field: ten fields a message, thousands
    of messages a second on a first sync.
    """
    found: list[str] = []
    try:
        value = read(values(name), found)
    except Exception as err:
        problems.setdefault(name, type(err).__name__)
        return fallback
    if found:
        problems.setdefault(name, found[0])
    return value


def _ids(value: str | None, _found: list[str]) -> tuple[str, ...]:
    return message_ids(value)


def _addresses(values: list[str] | None, found: list[str]) -> tuple[str, ...]:
    return addresses(values or (), found)


def _thread_index(value: str | None, _found: list[str]) -> str | None:
    return thread_index_root(value)


def _raw(msg: Message, name: str) -> str:
    """A field's text as it is (white space folded): the Subject when it cannot be decoded."""
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
