"""FETCH answers -> message events: the per-message work of an IMAP fetch.

Nothing here talks to a server or logs: what a message's fields could not say is handed back with the
event, so that the work can run in the source's thread or in a parse worker process
(:mod:`monitor.sources.parse_pool`) and come out the same. A message whose headers cannot be turned into an
event at all comes back without one, named only by its UID and the error's type (never its content).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.events import MessageEvent
from monitor.mail.event import to_event
from monitor.mail.headers import parse_header_block
from monitor.mail.preview import preview_of_parts
from monitor.sources.imap_fetch import parse_fetch_records

SYSTEM_FLAG_RECENT = b"\\Recent"  # per-session (RFC 3501 §2.3.2): not a fact about the message


@dataclass(frozen=True, slots=True)
class FolderFetch:
    """What every event of one folder's fetch shares."""

    source: str
    role: str
    folder: str
    uidvalidity: int
    text_preview: bool
    now: datetime


@dataclass(slots=True)
class Built:
    """One fetched message as an event, or why it is skipped."""

    uid: int
    event: MessageEvent | None
    flags: frozenset[bytes] = frozenset()
    internal_date: datetime | None = None
    error: str = ""
    """The type of the error that made the message unreadable (when ``event`` is None)."""
    problems: list[tuple[str, str]] = field(default_factory=list)
    """``(field, reason)`` for each field kept as it was (``to_event``'s reports), in order."""

    def __reduce__(self) -> tuple[type[Built], tuple[Any, ...]]:
        """Pickled as its arguments, as :class:`MessageEvent` is: a parse worker sends one per message."""
        return Built, (self.uid, self.event, self.flags, self.internal_date, self.error, self.problems)


def build_events(answered: dict[int, dict[bytes, Any]], read: FolderFetch) -> list[Built]:
    """Each answered message (imapclient's shape: UID -> items) as an event, in the answers' order."""
    return [_build(uid, data, read) for uid, data in answered.items()]


def parse_and_build(records: Sequence[Any], uids: Sequence[int], read: FolderFetch) -> list[Built]:
    """The raw imaplib FETCH records of ``uids`` parsed and built into events; :class:`FetchParseError`
    when the fast parser cannot read them (the caller fetches the batch again through imapclient)."""
    return build_events(parse_fetch_records(records, uids), read)


def _build(uid: int, data: dict[bytes, Any], read: FolderFetch) -> Built:
    built = Built(uid, None)
    problems = built.problems

    def report(name: str, reason: str) -> None:
        problems.append((name, reason))

    try:
        built.flags = flags_of(data)
        internal = data.get(b"INTERNALDATE")
        built.internal_date = as_utc(internal) if isinstance(internal, datetime) else None
        header = _section(data, b"BODY[HEADER")
        block = parse_header_block(header)
        text = _section(data, b"BODY[TEXT]")
        built.event = to_event(
            block,
            preview=preview_of_parts(header, block, text) if read.text_preview else "",
            source=read.source,
            folder=read.role,
            external_id=f"{read.folder}/{read.uidvalidity}/{uid}",
            internal_date=built.internal_date,
            flags=[f.decode("ascii", "replace") for f in built.flags],
            gmail_thread_id=_text(data.get(b"X-GM-THRID")),
            now=read.now,
            report=report,
        )
    except Exception as err:  # one unreadable message must not stop the folder
        return Built(uid, None, error=type(err).__name__, problems=problems)
    return built


def flags_of(data: dict[bytes, Any]) -> frozenset[bytes]:
    """A message's FLAGS, without the per-session ``\\Recent``."""
    return frozenset(f for f in data.get(b"FLAGS", ()) if f != SYSTEM_FLAG_RECENT)


def as_utc(value: datetime) -> datetime:
    """A server time as UTC (a time without zone is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _section(data: dict[bytes, Any], prefix: bytes) -> bytes:
    for key, value in data.items():
        if key.startswith(prefix) and isinstance(value, bytes):
            return value
    return b""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
