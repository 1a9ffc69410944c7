"""Following a call-log file as the PBX appends to it: the template of asterisk_csv, threecx_csv, calls_csv.

The cursor holds the file's :class:`FileCursor` (inode, bytes read, mtime, fingerprint), the number of
the next line, the header row when the layout has one, and the legs of recent calls. Only whole lines
are read: a last line without its newline is left for the next poll, unless the file has been quiet
for :data:`QUIET` (an export that simply ends without one). When the path names a new file (logrotate
moved the old one away), the rest of the old file is read first when it is still beside it (found by
its inode), then the new file from its start. A file rewritten in place is read again from the start.
"""

from __future__ import annotations

import csv
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol
from zoneinfo import ZoneInfo

from monitor.events import CallEvent
from monitor.sources.base import (
    Cursor,
    PermanentSourceError,
    PollResult,
    TransientSourceError,
    source_log,
)
from monitor.sources.call_log import CallLogConfig, RecentCalls, report_bad_rows
from monitor.sources.files import FileCursor, appended_since, open_without_atime
from monitor.telephony.layouts import CdrLayoutError, ParsedRows

CURSOR_VERSION = 1
"""Bumped when the cursor changes shape; an older one is dropped and the file read again."""
QUIET = timedelta(seconds=5)
"""A last line without a newline is read once the file has not changed for this long."""
PIECE = 8 * 1024 * 1024
"""Read and parse at most this many bytes at a time (a first read of a year of calls stays small)."""


class CdrLayout(Protocol):
    """A layout of :mod:`monitor.telephony.layouts`: text of one file from a line on -> legs and errors."""

    def parse(self, text: str, zone: ZoneInfo, first_line: int = 1, header: Sequence[str] = ()) -> ParsedRows:
        """The legs of ``text``."""


class CdrFileConfig(CallLogConfig):
    """Fields of every call-log file source."""

    path: Path
    """The call-log file (the PBX appends to it; logrotate may move it away)."""


@dataclass(slots=True)
class _FileState:
    """Where reading one file stopped."""

    file: FileCursor | None
    line: int
    """The number of the next line to read (1-based)."""
    header: list[str] | None
    """The file's header row, once read (layouts with a header only)."""

    @classmethod
    def fresh(cls) -> _FileState:
        return cls(None, 1, None)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CdrFileSource(ABC):
    """Polls one call-log file, emitting the calls its appended rows belong to."""

    def __init__(
        self, name: str, config: CdrFileConfig, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.name = name
        self.config = config
        self.layout = self.make_layout()
        self._clock = clock or _utc_now
        self.log = source_log(type(self).__module__, name)

    @abstractmethod
    def make_layout(self) -> CdrLayout:
        """The layout the config describes (raises :class:`CdrLayoutError` for a bad one)."""

    @property
    @abstractmethod
    def has_header(self) -> bool:
        """Whether the file's first row names its columns."""

    def check(self) -> list[str]:
        """The file exists, can be read, and its first rows parse."""
        path = self.config.path
        if not path.is_file():
            return [f"path: call log '{path}' not found"]
        if not os.access(path, os.R_OK):
            return [f"path: call log '{path}' is not readable by this user"]
        with open_without_atime(path) as fh:
            head = fh.read(64 * 1024)
        text = head[: head.rfind(b"\n") + 1 or len(head)].decode("utf-8", "replace")
        try:
            parsed = self.layout.parse(text, self.config.zone)
        except CdrLayoutError as err:
            return [f"path: {err}"]
        if parsed.errors and not parsed.legs:
            return [f"path: '{path}' {parsed.errors[0]}; check the layout and date_format"]
        return []

    def close(self) -> None:  # noqa: B027 - a file source holds nothing open between polls
        """Nothing to release: every poll opens and closes the file."""

    def poll(self, cursor: Cursor | None) -> PollResult:
        """The calls of the rows appended since ``cursor`` (with every leg known of each)."""
        path = self.config.path
        state, recent, resync = self._load(cursor)
        calls: dict[str, CallEvent] = {}
        try:
            fh = open_without_atime(path)
        except FileNotFoundError as err:
            if state.file is None:
                raise PermanentSourceError(f"call log '{path}' not found") from err
            # Rotated away and not yet created again: read the rest of the old file.
            resync = not self._drain_rotated(state, recent, calls)
            return self._result(_FileState.fresh(), recent, calls, resync)
        except PermissionError as err:
            raise PermanentSourceError(f"call log '{path}' is not readable: {err.strerror}") from err
        except OSError as err:
            raise TransientSourceError(f"cannot open call log '{path}': {err.strerror}") from err
        with fh:
            stat = os.fstat(fh.fileno())
            if state.file is not None and state.file.unchanged(stat):
                return self._result(state, recent, calls, resync, unchanged=cursor)
            if state.file is not None and stat.st_ino != state.file.inode:
                if not self._drain_rotated(state, recent, calls):
                    resync = True
                self.log.info("%s was rotated; reading the new file from its start", path)
                state = _FileState.fresh()
            elif state.file is not None and not appended_since(fh, stat, state.file):
                self.log.info("%s was rewritten; reading it again from the start", path)
                state, recent, resync = _FileState.fresh(), RecentCalls({}), True
            self._read(fh, stat, state, recent, calls, finished=False)
        return self._result(state, recent, calls, resync)

    # -- reading -------------------------------------------------------------------------------------

    def _read(
        self,
        fh: IO[bytes],
        stat: os.stat_result,
        state: _FileState,
        recent: RecentCalls,
        calls: dict[str, CallEvent],
        *,
        finished: bool,
    ) -> None:
        """Parse the whole lines after ``state`` (and a last line without newline when the file is
        ``finished`` or quiet), updating ``state``, ``recent`` and ``calls``."""
        offset = state.file.size if state.file is not None else 0
        quiet = self._clock() - datetime.fromtimestamp(stat.st_mtime_ns / 1e9, UTC) >= QUIET
        take_tail = finished or quiet
        fh.seek(offset)
        carry = b""
        try:
            while True:
                piece = fh.read(min(PIECE, max(stat.st_size - offset - len(carry), 0)))
                data = carry + piece
                at_end = offset + len(data) >= stat.st_size or not piece
                # Lines end in LF or CRLF; old FreePBX exports end them in CR alone.
                cut = (data.rfind(b"\n") if b"\n" in data else data.rfind(b"\r")) + 1
                if at_end and take_tail:
                    cut = len(data)
                if cut:
                    self._parse(data[:cut], state, recent, calls)
                    offset += cut
                carry = data[cut:]
                if at_end:
                    break
        except OSError as err:
            raise TransientSourceError(f"cannot read call log '{self.config.path}': {err.strerror}") from err
        state.file = FileCursor.after_reading(fh, offset, stat)

    def _parse(
        self, chunk: bytes, state: _FileState, recent: RecentCalls, calls: dict[str, CallEvent]
    ) -> None:
        text = chunk.decode("utf-8", "replace")
        if self.has_header and state.line == 1 and state.header is None:
            state.header = _first_record(text)
        try:
            parsed = self.layout.parse(text, self.config.zone, state.line, state.header or ())
        except CdrLayoutError as err:
            raise PermanentSourceError(f"call log '{self.config.path}': {err}") from err
        report_bad_rows(self.log, str(self.config.path), parsed.errors)
        for call in recent.join(self.name, parsed.legs, self.config.call_options, self.config.regroup_window):
            calls[call.external_id] = call
        state.line += len(text.splitlines())

    def _drain_rotated(self, state: _FileState, recent: RecentCalls, calls: dict[str, CallEvent]) -> bool:
        """Read the rest of the file ``state`` was reading, found beside the path by its inode; False
        when it is gone (its unread rows are lost: said in a warning)."""
        assert state.file is not None
        path = self.config.path
        for sibling in sorted(path.parent.glob(f"{path.name}*")):
            try:
                old = open_without_atime(sibling)
            except OSError:
                continue
            with old:
                stat = os.fstat(old.fileno())
                if stat.st_ino != state.file.inode:
                    continue
                if not appended_since(old, stat, state.file):
                    break
                self._read(old, stat, state, recent, calls, finished=True)
                return True
        self.log.warning(
            "%s was rotated and the old file is no longer beside it; rows written to it after the last "
            "poll are not read",
            path,
        )
        return False

    # -- the cursor ----------------------------------------------------------------------------------

    def _load(self, cursor: Cursor | None) -> tuple[_FileState, RecentCalls, bool]:
        """The saved position, the recent calls, and whether a saved cursor had to be dropped."""
        if not cursor:
            return _FileState.fresh(), RecentCalls({}), False
        try:
            if cursor.get("version") != CURSOR_VERSION or cursor.get("path") != str(self.config.path):
                raise ValueError("another version or file")
            raw = cursor["file"]
            file = FileCursor(**raw) if raw is not None else None
            header = cursor.get("header")
            state = _FileState(file, int(cursor["line"]), list(header) if header is not None else None)
        except (AttributeError, KeyError, TypeError, ValueError):
            self.log.warning("cursor is not readable; reading %s again from the start", self.config.path)
            return _FileState.fresh(), RecentCalls({}), True
        return state, RecentCalls.load(cursor.get("recent")), False

    def _result(
        self,
        state: _FileState,
        recent: RecentCalls,
        calls: dict[str, CallEvent],
        resync: bool,
        unchanged: Cursor | None = None,
    ) -> PollResult:
        ordered = sorted(calls.values(), key=lambda call: (call.started_at, call.external_id))
        if unchanged is not None:
            return PollResult(calls=ordered, cursor=unchanged, resync=resync)
        file: dict[str, Any] | None = None
        if state.file is not None:
            f = state.file
            file = {"inode": f.inode, "size": f.size, "mtime_ns": f.mtime_ns, "tail": f.tail}
        cursor: Cursor = {
            "version": CURSOR_VERSION,
            "path": str(self.config.path),
            "file": file,
            "line": state.line,
            "header": state.header,
            "recent": recent.dump(),
        }
        return PollResult(calls=ordered, cursor=cursor, resync=resync)


def _first_record(text: str) -> list[str] | None:
    """The first non-blank CSV record of ``text`` (a file's header row), without a BOM."""
    for line in text.removeprefix("\ufeff").splitlines():
        if line.strip():
            return next(csv.reader([line]))
    return None
