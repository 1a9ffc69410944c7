"""Parse a message's header block into a :class:`MessageEvent` (pure: bytes in, event out)."""

from __future__ import annotations

import email.parser
import email.policy
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from monitor.events import MessageEvent

# Only the headers the engine needs; IMAP fetches exactly these (BODY.PEEK[HEADER.FIELDS (...)]).
WANTED_HEADERS: tuple[str, ...] = (
    "Message-ID",
    "Date",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "In-Reply-To",
    "References",
    "Thread-Index",
    "Thread-Topic",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponder",
    "X-Auto-Response-Suppress",
    "Precedence",
    "List-Id",
    "List-Post",
    "List-Unsubscribe",
    "Feedback-ID",
    "Return-Path",
    "Content-Type",
    "X-Failed-Recipients",
    "X-Replywatch-Holding",
)

_MSGID = re.compile(r"<([^<>\s]+)>")
# A Date more than a day in the future or before 1990 is a broken client clock, not a fact.
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_FUTURE_SLACK = timedelta(days=1)

_parser = email.parser.BytesParser(policy=email.policy.compat32)


def parse_header_block(raw: bytes) -> Message:
    """Parse the header part of ``raw`` (a whole message or only its headers), never raising."""
    return _parser.parsebytes(raw, headersonly=True)


def message_ids(value: str | None) -> tuple[str, ...]:
    """The ids in a Message-ID / In-Reply-To / References value, without angle brackets, in order."""
    if not value:
        return ()
    found = _MSGID.findall(value)
    if found:
        return tuple(dict.fromkeys(found))
    # Some clients write a bare id without brackets.
    bare = value.strip()
    return (bare,) if bare and " " not in bare else ()


def decoded(value: str | None) -> str:
    """An RFC 2047-decoded, whitespace-folded header value ('' when missing or undecodable)."""
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        text = str(value)
    return " ".join(text.split())


def addresses(values: Iterable[str | None]) -> tuple[str, ...]:
    """Lower-cased addr-specs from address headers, duplicates removed, order kept."""
    raw = [str(v) for v in values if v]
    out: dict[str, None] = {}
    for _name, addr in getaddresses(raw):
        addr = addr.strip().lower()
        if "@" in addr:
            out[addr] = None
    return tuple(out)


def first_address(value: str | None) -> tuple[str | None, str]:
    """The first address of a header and its decoded display name."""
    if not value:
        return None, ""
    pairs = getaddresses([str(value)])
    for name, addr in pairs:
        addr = addr.strip().lower()
        if "@" in addr:
            return addr, decoded(name)
    return None, ""


def message_date(msg: Message, internal_date: datetime | None, now: datetime | None = None) -> datetime:
    """When the message was sent: its Date header, else the server's arrival time.

    RFC 5322 §3.3: ``-0000`` means the zone is unknown; Python returns a naive datetime for it, which
    we read as UTC, like a Date without any zone. A missing, unparsable or absurd Date (before 1990 or
    more than a day after the arrival) falls back to ``internal_date``.
    """
    fallback = _aware(internal_date) if internal_date is not None else None
    limit = (fallback or now or datetime.now(UTC)) + _FUTURE_SLACK
    value = msg.get("Date")
    parsed: datetime | None = None
    if value:
        try:
            parsed = parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError, OverflowError):
            parsed = None
    if parsed is not None:
        parsed = _aware(parsed)
        if _EARLIEST <= parsed <= limit:
            return parsed
    if fallback is not None:
        return fallback
    return parsed if parsed is not None else (now or datetime.now(UTC))


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def thread_index_root(value: str | None) -> str | None:
    """The conversation part of an Outlook ``Thread-Index`` (its first 22 bytes, base64 of 16+6)."""
    if not value:
        return None
    value = value.strip()
    # The first 22 bytes are a FILETIME (6) + GUID (16); base64 of 22 bytes is 30 chars (with padding '==').
    return value[:30] if len(value) >= 30 else None


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
    """Build the normalized event for one parsed message."""
    from monitor.classify import DEFAULT_NO_REPLY, classify

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


def parse_event(raw: bytes, **kwargs: object) -> MessageEvent:
    """Parse raw header bytes (or a whole message) into an event; see :func:`to_event` for arguments."""
    return to_event(parse_header_block(raw), **kwargs)  # type: ignore[arg-type]
