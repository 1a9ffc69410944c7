"""Reading local files the way a monitor must: without touching atime, and noticing appends and rewrites.

Used by the file-based sources (maildir, mbox) and by any tailer of an append-only file: a
:class:`FileCursor` remembers which file (inode), how far it was read (size) and a fingerprint of the
bytes before that point; :func:`appended_since` then tells bytes appended from a file truncated,
replaced (rotated: new inode) or rewritten in place.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from monitor.mail.preview import MAX_READ

HEADER_CAP = 256 * 1024
"""Read at most this many bytes of a message looking for the end of its header block."""
FINGERPRINT_BYTES = 4096
"""How many bytes before a cursor's size are hashed to notice a file rewritten rather than appended to."""

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_O_NOATIME = getattr(os, "O_NOATIME", 0)


def open_without_atime(path: Path, *, nofollow: bool = False) -> IO[bytes]:
    """Open a file for reading without updating its access time where the OS allows it.

    Some mail readers compare atime with mtime to tell new mail; a monitor must not disturb that.
    O_NOATIME is refused (EPERM) on files we do not own: then open normally. With ``nofollow`` a
    symbolic link is refused (OSError ELOOP) instead of followed: a maildir's messages are its own files.
    """
    flags = os.O_RDONLY | (os.O_NOFOLLOW if nofollow else 0)
    if _O_NOATIME:
        try:
            return os.fdopen(os.open(path, flags | _O_NOATIME), "rb")
        except PermissionError:
            pass
    return os.fdopen(os.open(path, flags), "rb")


def read_prefix(path: Path, size: int = MAX_READ, *, nofollow: bool = False) -> tuple[bytes, os.stat_result]:
    """The first ``size`` bytes of a file (a message's headers and the start of its text)."""
    with open_without_atime(path, nofollow=nofollow) as fh:
        return fh.read(size), os.fstat(fh.fileno())


def read_header_block(
    path: Path, cap: int = HEADER_CAP, *, nofollow: bool = False
) -> tuple[bytes, os.stat_result]:
    """The beginning of a message file up to the end of its header block (at most ``cap`` bytes)."""
    with open_without_atime(path, nofollow=nofollow) as fh:
        stat = os.fstat(fh.fileno())
        buf = bytearray()
        while len(buf) < cap:
            chunk = fh.read(min(16384, cap - len(buf)))
            if not chunk:
                break
            search_from = max(0, len(buf) - 3)
            buf += chunk
            if buf.startswith((b"\n", b"\r\n")):
                return b"", stat  # starts with a blank line: no headers at all
            found = _BLANK_LINE.search(buf, search_from)
            if found:
                return bytes(buf[: found.end()]), stat
    return bytes(buf), stat


def fingerprint(fh: IO[bytes], size: int) -> str:
    """A hash of the :data:`FINGERPRINT_BYTES` bytes before ``size`` (moves the file position)."""
    begin = max(0, size - FINGERPRINT_BYTES)
    fh.seek(begin)
    return hashlib.sha1(fh.read(size - begin), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class FileCursor:
    """How far one file was read: its inode, the size read up to, its mtime then, the bytes' fingerprint."""

    inode: int
    size: int
    """Bytes read so far (may be less than the file held when more was being written)."""
    mtime_ns: int | None
    """The file's mtime when ``size`` was its whole length; None when it already held more."""
    tail: str
    """:func:`fingerprint` of the bytes before ``size``."""

    @classmethod
    def after_reading(cls, fh: IO[bytes], size: int, stat: os.stat_result) -> FileCursor:
        """The cursor of an open file read up to ``size`` (``stat`` taken before reading)."""
        mtime_ns = stat.st_mtime_ns if size == stat.st_size else None
        return cls(inode=stat.st_ino, size=size, mtime_ns=mtime_ns, tail=fingerprint(fh, size))

    def unchanged(self, stat: os.stat_result) -> bool:
        """True when the file is this cursor's, fully read and not modified since (no read needed)."""
        return (self.inode, self.size, self.mtime_ns) == (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def appended_since(fh: IO[bytes], stat: os.stat_result, cursor: FileCursor) -> bool:
    """True when the open file is ``cursor``'s file with bytes appended (or untouched).

    False when it was rotated (another inode), truncated (shorter), rewritten in place at the same
    size (a new mtime) or changed before the cursor's size (another fingerprint): read it from 0.
    Moves the file position.
    """
    if stat.st_ino != cursor.inode or stat.st_size < cursor.size:
        return False
    if stat.st_size == cursor.size and cursor.mtime_ns is not None:
        return stat.st_mtime_ns == cursor.mtime_ns
    return fingerprint(fh, cursor.size) == cursor.tail
