"""mbox source: streams a Unix mailbox file (mboxo/mboxrd) from where the last poll stopped."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any, ClassVar, Literal

from pydantic import field_validator

from monitor.events import MessageEvent
from monitor.mail.event import to_event
from monitor.mail.headers import message_ids, parse_header_block
from monitor.mail.preview import MAX_READ, preview
from monitor.sources.base import (
    FOLDER_COUNTS,
    Cursor,
    Folder,
    FolderRead,
    FolderSource,
    FolderState,
    PermanentSourceError,
    SourceConfigBase,
    SourcePlugin,
    TransientSourceError,
)
from monitor.sources.files import HEADER_CAP, FileCursor, appended_since, open_without_atime

LINE_PIECE = 64 * 1024
"""Read lines in pieces of at most this size, so that a huge line never sits in memory whole."""

# A From_ line with an asctime date ("From alice@example.com Thu Aug 22 12:36:23 2002"): accepted as a
# separator even without a blank line before it, which some writers omit.
_FROM_LINE = re.compile(rb"^From \S+ +(?:\S+ +)?\w{3} +\w{3} +\d{1,2} +\d{1,2}:\d{2}(?::\d{2})? .*\d{4}")
_BLANK = (b"\n", b"\r\n")
# mbox status headers written by mutt, Pine, Thunderbird: Status R=read O=old; X-Status A=answered
# F=flagged D=deleted T=draft.
_STATUS_FLAGS = {"R": "seen"}
_X_STATUS_FLAGS = {"A": "answered", "F": "flagged", "D": "deleted", "T": "draft"}


class MboxConfig(SourceConfigBase):
    """A Unix mbox file (an export or a local spool), read as a stream without changing it."""

    mailbox_counts: ClassVar[frozenset[str]] = FOLDER_COUNTS

    kind: Literal["mbox"] = "mbox"
    """Selects this source plugin."""
    path: Path
    """The mbox file."""
    folder: str = "inbox"
    """The role its messages get: ``inbox``, or ``sent`` for an exported Sent folder."""
    sent_path: Path | None = None
    """An optional second mbox holding the team's sent mail (its messages get the folder ``sent``)."""
    text_preview: bool = True
    """Also read the first words of each message's text (for ``closing_thanks`` and holding-reply phrases)."""

    @field_validator("folder")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        if not value or "/" in value:
            raise ValueError(f"invalid folder {value!r}: a role such as 'inbox' or 'sent'")
        return value


@dataclass(slots=True)
class MboxEntry:
    """One message found in an mbox: where it lies and its header block."""

    offset: int
    """Byte offset of its From_ line (or of the leading garbage when ``from_line`` is empty)."""
    end: int
    """Byte offset just after it (the next From_ line, or the end of the file)."""
    from_line: bytes
    header: bytes
    """Its header block, at most :data:`HEADER_CAP` bytes."""
    header_complete: bool
    """True when the blank line ending the header block was seen."""
    last: bool = False
    """True when it runs to the end of the file (a writer may still be appending to it)."""
    body: bytes = b""
    """The start of its body, at most ``body_cap`` bytes (only when asked for)."""


def scan_mbox(
    fh: IO[bytes], start: int = 0, header_cap: int = HEADER_CAP, body_cap: int = 0
) -> Iterator[MboxEntry]:
    """Split an mbox into messages from byte ``start``, reading line by line (never the whole file).

    A line starting with ``From `` is a separator at the start, after a blank line, or when it looks
    like a real From_ line (address and asctime date); mboxo/mboxrd writers quote body lines that start
    with ``From `` as ``>From ``. Bytes before the first separator come as an entry with an empty
    ``from_line``.
    """
    fh.seek(start)
    pos = start
    at_line_start = True
    prev_blank = True
    current: MboxEntry | None = None
    header = bytearray()
    body = bytearray()
    in_header = False
    while True:
        piece = fh.readline(LINE_PIECE)
        if not piece:
            break
        line_start = at_line_start
        at_line_start = piece.endswith(b"\n")
        is_blank = line_start and piece in _BLANK
        if (
            line_start
            and piece.startswith(b"From ")
            and (pos == start or prev_blank or _FROM_LINE.match(piece))
        ):
            if current is not None:
                current.header, current.end, current.body = bytes(header), pos, bytes(body)
                yield current
            elif pos > start:
                yield MboxEntry(start, pos, b"", b"", False)
            current = MboxEntry(pos, pos, piece.rstrip(b"\r\n"), b"", False)
            header = bytearray()
            body = bytearray()
            in_header = True
        elif in_header:
            if is_blank:
                in_header = False
                assert current is not None
                current.header_complete = True
            elif len(header) < header_cap:
                header += piece[: header_cap - len(header)]
        elif current is not None and len(body) < body_cap:
            body += piece[: body_cap - len(body)]
        if line_start:
            prev_blank = is_blank
        elif not piece.endswith(b"\n"):
            prev_blank = False
        pos += len(piece)
    if current is not None:
        current.header, current.end, current.last, current.body = bytes(header), pos, True, bytes(body)
        yield current
    elif pos > start:
        yield MboxEntry(start, pos, b"", b"", False, last=True)


def from_line_date(from_line: bytes) -> datetime | None:
    """The delivery time in a From_ line (``From addr Thu Aug 22 12:36:23 2002``), UTC-aware."""
    parts = from_line.decode("ascii", "replace").split(None, 2)
    if len(parts) < 3:
        return None
    try:
        parsed = parsedate_to_datetime(parts[2])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def status_flags(msg: Message) -> list[str]:
    """Event flags from the ``Status`` / ``X-Status`` headers that mail readers keep in mbox files."""
    flags: set[str] = set()
    for header, table in (("Status", _STATUS_FLAGS), ("X-Status", _X_STATUS_FLAGS)):
        value = msg.get(header)
        if value:
            flags.update(table[c] for c in str(value).strip() if c in table)
    return sorted(flags)


class MboxState(FolderState):
    """One mbox file's saved state (``name`` is its path)."""

    file: FileCursor | None
    """How far the file was read; None before the first read."""
    offset: int
    """Where the next message to emit starts (the last one's start while it may still grow)."""
    tail_id: str | None
    """The external id of the last message when it ran to the end of the file (not emitted again)."""
    total: int
    unseen: int
    unanswered: int
    oldest: str | None
    """ISO time of the oldest message's arrival."""


def _empty_state(path: Path) -> MboxState:
    return MboxState(
        name=str(path), file=None, offset=0, tail_id=None, total=0, unseen=0, unanswered=0, oldest=None
    )


class MboxSource(FolderSource[MboxState]):
    """Polls one mbox file (and optionally a second one for sent mail), reading only appended bytes.

    State per file: a :class:`FileCursor` (inode, size, mtime, a hash of the last 4 KB before the
    size), the offset up to which messages were emitted and running counts. A file that shrank,
    changed inode, or whose bytes before the saved size changed was rewritten: it is read again from 0
    (``resync=True``); external ids are ``folder/Message-ID`` (or ``folder/sha1:<header hash>``), so a
    re-read is idempotent.
    """

    cursor_version = 2
    state_type = MboxState

    def __init__(self, name: str, config: MboxConfig, *, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(name, clock=clock)
        self.config = config

    def folders(self) -> list[Folder]:
        """The mbox file, and the Sent one when configured."""
        files = [Folder(self.config.folder, str(self.config.path))]
        if self.config.sent_path is not None:
            files.append(Folder("sent", str(self.config.sent_path)))
        return files

    def check(self) -> list[str]:
        """Verify that the mbox files exist and can be read."""
        problems: list[str] = []
        for field, folder in zip(("path", "sent_path"), self.folders(), strict=False):
            path = Path(folder.name)
            if not path.is_file():
                problems.append(f"{field}: mbox file '{path}' not found")
            elif not os.access(path, os.R_OK):
                problems.append(f"{field}: mbox file '{path}' is not readable by this user")
        return problems

    def close(self) -> None:
        """Nothing to release: every poll opens and closes the file."""

    def upgrade(self, cursor: Cursor, folders: Sequence[Folder]) -> dict[str, Any] | None:
        """States from the first cursor layout (``{"v": 1, "files": {role: {path, size, inode, ...}}}``)."""
        files = cursor.get("files")
        if cursor.get("v") != 1 or not isinstance(files, dict):
            return None
        states: dict[str, Any] = {}
        for role, old in files.items():
            if not isinstance(old, dict):
                return None
            read = old.get("inode") is not None
            file = {k: old.get(k) for k in ("inode", "size", "mtime_ns", "tail")} if read else None
            states[role] = {
                "name": old.get("path"),
                "file": file,
                **{k: old.get(k) for k in ("offset", "tail_id", "total", "unseen", "unanswered", "oldest")},
            }
        return states

    def read_folder(self, folder: Folder, state: MboxState | None, now: datetime) -> FolderRead[MboxState]:
        """Emit the messages appended to one file since ``state`` (all of them after a rewrite)."""
        path = Path(folder.name)
        try:
            fh = open_without_atime(path)
        except FileNotFoundError as err:
            raise PermanentSourceError(f"mbox file '{path}' not found") from err
        except PermissionError as err:
            raise PermanentSourceError(f"mbox file '{path}' is not readable: {err.strerror}") from err
        except OSError as err:
            raise TransientSourceError(f"cannot open mbox file '{path}': {err.strerror}") from err
        with fh:
            stat = os.fstat(fh.fileno())
            read = state["file"] if state is not None else None
            restarted = False
            whole = False
            messages: list[MessageEvent] = []
            if state is None or read is None or not read.unchanged(stat):
                restarted = state is not None and read is not None and not self._appended_to(fh, stat, state)
                if restarted:
                    self.log.info("%s was rewritten; reading it again from the start", path)
                whole = state is None or restarted
                state = _empty_state(path) if state is None or restarted else MboxState(**state)
                try:
                    messages, scanned_to = self._read(fh, folder.role, path, state, now)
                except OSError as err:
                    raise TransientSourceError(f"cannot read mbox file '{path}': {err.strerror}") from err
                # Only the bytes seen by this read: anything appended meanwhile is read next poll.
                state["file"] = FileCursor.after_reading(fh, scanned_to, stat)
        oldest = state["oldest"]
        return FolderRead(
            state,
            messages,
            state["total"],
            state["unseen"],
            state["unanswered"],
            datetime.fromisoformat(oldest) if oldest else None,
            resync=restarted,
            # Read from the start: what it holds now is all there is; a message cut from it was removed.
            remaining=frozenset(m.external_id for m in messages) if whole else None,
        )

    @staticmethod
    def _appended_to(fh: IO[bytes], stat: os.stat_result, state: MboxState) -> bool:
        """True when the file is the one of ``state`` with whole messages appended (or untouched)."""
        assert state["file"] is not None
        if not appended_since(fh, stat, state["file"]):
            return False
        fh.seek(state["offset"])
        return state["offset"] >= stat.st_size or fh.read(5) == b"From "

    def _read(
        self, fh: IO[bytes], role: str, path: Path, state: MboxState, now: datetime
    ) -> tuple[list[MessageEvent], int]:
        """Parse messages from the state's offset, updating it; the new events and where reading stopped."""
        messages: list[MessageEvent] = []
        start = state["offset"]
        scanned_to = start
        body_cap = MAX_READ if self.config.text_preview else 0
        for entry in scan_mbox(fh, start, body_cap=body_cap):
            scanned_to = entry.end
            if not entry.from_line:
                self.log.warning(
                    "%s: %d bytes at offset %d are not a message (no From_ line); skipped",
                    path,
                    entry.end - entry.offset,
                    entry.offset,
                )
                state["offset"] = entry.end
                continue
            if entry.last and not entry.header_complete:
                break  # still being written: read again next poll from its start
            event = self._event(role, path, entry, now)
            repeated = entry.offset == start and event is not None and event.external_id == state["tail_id"]
            if event is not None and not repeated:
                messages.append(event)
                self._count(state, event, entry)
            if entry.last:
                # It may still grow: keep its start so that it is re-read, and its id so it is not re-emitted.
                state["offset"], state["tail_id"] = entry.offset, event.external_id if event else None
            else:
                state["offset"], state["tail_id"] = entry.end, None
        return messages, scanned_to

    def _event(self, role: str, path: Path, entry: MboxEntry, now: datetime) -> MessageEvent | None:
        """The event for one message, or None (with a warning naming file and offset) when unusable."""
        try:
            msg = parse_header_block(entry.header)
            if len(msg) == 0:
                self.log.warning(
                    "%s: message at offset %d has no headers; skipped",
                    path,
                    entry.offset,
                )
                return None
            ids = message_ids(msg.get("Message-ID"))
            header_hash = hashlib.sha1(entry.header, usedforsecurity=False).hexdigest()
            key = ids[0] if ids else f"sha1:{header_hash}"
            return to_event(
                msg,
                source=self.name,
                folder=role,
                external_id=f"{role}/{key}",
                internal_date=from_line_date(entry.from_line),
                flags=status_flags(msg),
                now=now,
                report=self.log.reporter(f"{path}: message at offset {entry.offset}"),
                preview=preview(entry.header + b"\n" + entry.body) if self.config.text_preview else "",
            )
        except Exception as err:  # one broken message must never stop the poll
            self.log.warning(
                "%s: message at offset %d cannot be parsed (%s); skipped",
                path,
                entry.offset,
                type(err).__name__,
            )
            return None

    @staticmethod
    def _count(state: MboxState, event: MessageEvent, entry: MboxEntry) -> None:
        state["total"] += 1
        state["unseen"] += "seen" not in event.flags
        state["unanswered"] += "answered" not in event.flags
        arrived = from_line_date(entry.from_line) or event.date
        if state["oldest"] is None or arrived < datetime.fromisoformat(state["oldest"]):
            state["oldest"] = arrived.isoformat()


PLUGIN = SourcePlugin(MboxConfig, MboxSource)
"""The ``mbox`` source plugin (entry point ``mbox`` of ``replywatch.sources``)."""
