"""File helpers on real files: append, rewrite, truncate and rotate detection; header blocks with a cap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitor.sources.files import (
    FileCursor,
    appended_since,
    open_without_atime,
    read_header_block,
    read_prefix,
)

LINES = b"".join(f"2026-11-02 10:{n:02d}:00,201,0442071234567,ANSWERED\n".encode() for n in range(200))


def cursor_of(path: Path) -> FileCursor:
    """Read the whole file, as a tailer would, and return where it stopped."""
    with open_without_atime(path) as fh:
        stat = os.fstat(fh.fileno())
        return FileCursor.after_reading(fh, len(fh.read()), stat)


def appended(path: Path, cursor: FileCursor) -> bool:
    with open_without_atime(path) as fh:
        return appended_since(fh, os.fstat(fh.fileno()), cursor)


def bump_mtime(path: Path, cursor: FileCursor) -> None:
    assert cursor.mtime_ns is not None
    os.utime(path, ns=(cursor.mtime_ns + 10**9, cursor.mtime_ns + 10**9))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "Master.csv"
    path.write_bytes(LINES)
    return path


def test_untouched_file_is_unchanged(log: Path) -> None:
    cursor = cursor_of(log)
    assert cursor.size == len(LINES) and cursor.mtime_ns == log.stat().st_mtime_ns
    assert cursor.unchanged(log.stat())
    assert appended(log, cursor)


def test_appended_bytes_are_an_append(log: Path) -> None:
    cursor = cursor_of(log)
    with log.open("ab") as fh:
        fh.write(b"2026-11-02 11:00:00,202,0442079999999,NO ANSWER\n")
    assert not cursor.unchanged(log.stat())
    assert appended(log, cursor)


def test_bytes_changed_before_the_saved_size_are_a_rewrite(log: Path) -> None:
    cursor = cursor_of(log)
    data = bytearray(LINES)
    data[len(data) - 10] ^= 0x01  # one byte inside the fingerprinted tail
    log.write_bytes(bytes(data) + b"more\n")
    assert not appended(log, cursor)


def test_rewrite_in_place_at_the_same_size_is_a_rewrite(log: Path) -> None:
    cursor = cursor_of(log)
    with log.open("r+b") as fh:
        fh.write(b"X")  # the first byte: outside the fingerprint, caught by size + mtime
    bump_mtime(log, cursor)
    assert log.stat().st_size == cursor.size
    assert not cursor.unchanged(log.stat())
    assert not appended(log, cursor)


def test_truncated_file_is_a_rewrite(log: Path) -> None:
    cursor = cursor_of(log)
    with log.open("r+b") as fh:
        fh.truncate(len(LINES) // 2)
    assert not appended(log, cursor)
    log.write_bytes(b"")
    assert not appended(log, cursor)


def test_rotated_file_is_a_rewrite_even_with_the_same_bytes(log: Path, tmp_path: Path) -> None:
    cursor = cursor_of(log)
    log.rename(tmp_path / "Master.csv.1")
    log.write_bytes(LINES + b"first line of the new file\n")  # same prefix, another inode
    assert log.stat().st_ino != cursor.inode
    assert not appended(log, cursor)


def test_cursor_of_a_file_still_growing_keeps_no_mtime(log: Path) -> None:
    with open_without_atime(log) as fh:
        stat = os.fstat(fh.fileno())
        cursor = FileCursor.after_reading(fh, len(LINES) - 100, stat)  # a partial last record left unread
    assert cursor.mtime_ns is None
    assert not cursor.unchanged(log.stat())
    assert appended(log, cursor)


def test_read_header_block_stops_at_the_blank_line_or_the_cap(tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.eml"
    crlf.write_bytes(b"Subject: hi\r\nFrom: a@example.com\r\n\r\nbody\r\n")
    assert read_header_block(crlf)[0] == b"Subject: hi\r\nFrom: a@example.com\r\n\r\n"
    no_headers = tmp_path / "blank.eml"
    no_headers.write_bytes(b"\nbody\n")
    assert read_header_block(no_headers)[0] == b""
    huge = tmp_path / "huge.eml"
    huge.write_bytes(b"X-Long: " + b"a" * 100_000 + b"\n\nbody\n")
    head, stat = read_header_block(huge, cap=1000)
    assert len(head) == 1000 and stat.st_size == huge.stat().st_size


def test_read_prefix_reads_at_most_size_bytes(log: Path) -> None:
    data, stat = read_prefix(log, 100)
    assert data == LINES[:100] and stat.st_size == len(LINES)
