"""Tests for the mbox source: real mbox files, appended to, truncated and rewritten between polls."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.sources.base import SOURCES, Cursor, PermanentSourceError, PollResult, SourcePlugin
from monitor.sources.mbox import MboxConfig, MboxSource, from_line_date, scan_mbox

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
_FROM_QUOTE = re.compile(rb"^(>*From )", re.MULTILINE)


def mboxrd(message: bytes, envelope: str = "customer@example.com Mon Mar  2 09:00:00 2026") -> bytes:
    """One mbox entry as an mboxrd writer stores it: From_ line, quoted body From lines, blank line."""
    head, sep, body = message.partition(b"\n\n")
    body = _FROM_QUOTE.sub(rb">\1", body)
    data = head + sep + body
    if not data.endswith(b"\n"):
        data += b"\n"
    return f"From {envelope}\n".encode() + data + b"\n"


def message(n: int, *, extra: str = "", body: str = "Hello, where is my order?\n") -> bytes:
    return (
        f"From: Customer {n} <customer{n}@example.com>\n"
        "To: support@example.org\n"
        f"Subject: Order question {n}\n"
        f"Date: Mon, 02 Mar 2026 10:{n % 60:02d}:00 +0100\n"
        f"Message-ID: <m{n}@example.com>\n"
        f"{extra}"
        f"\n{body}"
    ).encode()


def source(path: Path, **options: object) -> MboxSource:
    return MboxSource("archive", MboxConfig.model_validate({"path": path, **options}), clock=lambda: NOW)


def poll(src: MboxSource, cursor: Cursor | None) -> PollResult:
    result = src.poll(cursor)
    result.cursor = json.loads(json.dumps(result.cursor))
    return result


def ids(result: PollResult) -> list[str]:
    return [m.external_id for m in result.messages]


@pytest.fixture
def mbox(tmp_path: Path) -> Path:
    path = tmp_path / "support.mbox"
    path.write_bytes(b"".join(mboxrd(message(n)) for n in range(1, 4)))
    return path


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


def test_registers_kind() -> None:
    assert SOURCES.get("mbox") == SourcePlugin(MboxConfig, MboxSource)


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError, match="extra"):
        MboxConfig.model_validate({"path": "/srv/a.mbox", "pth": "x"})
    with pytest.raises(ValidationError, match="invalid folder"):
        MboxConfig.model_validate({"path": "/srv/a.mbox", "folder": ""})
    config = MboxConfig.model_validate({"kind": "mbox", "path": "/srv/a.mbox"})
    assert (config.folder, config.sent_path) == ("inbox", None)


def test_first_poll_reads_every_message(mbox: Path) -> None:
    result = poll(source(mbox), None)
    assert ids(result) == ["inbox/m1@example.com", "inbox/m2@example.com", "inbox/m3@example.com"]
    first = result.messages[0]
    assert first.from_addr == "customer1@example.com"
    assert first.date == datetime(2026, 3, 2, 9, 1, tzinfo=UTC)
    assert first.folder == "inbox" and first.source == "archive"
    (snap,) = result.snapshots
    assert (snap.folder, snap.total, snap.unseen, snap.unanswered) == ("inbox", 3, 3, 3)
    assert snap.oldest == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the From_ line's delivery time
    assert not result.resync


def test_unchanged_file_emits_nothing(mbox: Path) -> None:
    src = source(mbox)
    first = poll(src, None)
    second = poll(src, first.cursor)
    assert second.messages == [] and not second.resync
    assert second.cursor == first.cursor
    assert [s.total for s in second.snapshots] == [3]


def test_appended_mail_is_read_from_the_offset(mbox: Path) -> None:
    src = source(mbox)
    first = poll(src, None)
    append(mbox, mboxrd(message(4)) + mboxrd(message(5)))
    second = poll(src, first.cursor)
    assert ids(second) == ["inbox/m4@example.com", "inbox/m5@example.com"]
    assert [s.total for s in second.snapshots] == [5]
    assert poll(src, second.cursor).messages == []


def test_truncated_file_is_read_again_from_the_start(mbox: Path) -> None:
    src = source(mbox)
    first = poll(src, None)
    mbox.write_bytes(mboxrd(message(2)))  # an MUA expunged two messages
    second = poll(src, first.cursor)
    assert second.resync
    assert ids(second) == ["inbox/m2@example.com"]
    assert [s.total for s in second.snapshots] == [1]


def test_replaced_file_with_same_size_is_read_again(mbox: Path, tmp_path: Path) -> None:
    src = source(mbox)
    first = poll(src, None)
    replacement = tmp_path / "new.mbox"
    replacement.write_bytes(mbox.read_bytes().replace(b"m2@example.com", b"m9@example.com"))
    os.replace(replacement, mbox)  # new inode
    second = poll(src, first.cursor)
    assert second.resync
    assert ids(second) == ["inbox/m1@example.com", "inbox/m9@example.com", "inbox/m3@example.com"]


def test_status_rewritten_in_place_updates_flags(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(mboxrd(message(1, extra="Status: O\n")) + mboxrd(message(2, extra="Status: O\n")))
    src = source(path)
    first = poll(src, None)
    assert [m.flags for m in first.messages] == [frozenset(), frozenset()]

    data = path.read_bytes().replace(b"Status: O\n", b"Status: R\n", 1)  # same size, read now
    with path.open("r+b") as fh:
        fh.write(data)
    os.utime(path, ns=(first.cursor["folders"]["inbox"]["file"]["mtime_ns"] + 10**9,) * 2)
    second = poll(src, first.cursor)

    assert second.resync
    assert {m.external_id: m.flags for m in second.messages}["inbox/m1@example.com"] == {"seen"}
    assert [s.unseen for s in second.snapshots] == [1]


def test_file_rewritten_and_grown_is_noticed(mbox: Path) -> None:
    src = source(mbox)
    first = poll(src, None)
    data = mbox.read_bytes().replace(
        b"Subject: Order question 1\n", b"Subject: Order question 1\nStatus: RO\n"
    )
    with mbox.open("r+b") as fh:  # in place: same inode, larger
        fh.write(data + mboxrd(message(4)))
    second = poll(src, first.cursor)
    assert second.resync
    assert len(second.messages) == 4
    assert second.messages[0].flags == {"seen"}


def test_message_being_written_is_emitted_once_complete(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(mboxrd(message(1)))
    src = source(path)
    first = poll(src, None)

    entry = mboxrd(message(2, body="First paragraph.\n\nSecond paragraph.\n"))
    cut = entry.index(b"Message-ID")
    append(path, entry[:cut])  # headers half written
    second = poll(src, first.cursor)
    assert second.messages == []

    append(path, entry[cut : entry.index(b"Second")])  # headers done, body still coming
    third = poll(src, second.cursor)
    assert ids(third) == ["inbox/m2@example.com"]

    append(path, entry[entry.index(b"Second") :] + mboxrd(message(3)))
    fourth = poll(src, third.cursor)
    assert ids(fourth) == ["inbox/m3@example.com"]
    assert [s.total for s in fourth.snapshots] == [3]
    assert poll(src, fourth.cursor).messages == []


def test_broken_message_is_skipped_with_a_warning_and_the_poll_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = mboxrd(message(1))
    broken = b"From MAILER-DAEMON Mon Mar  2 09:00:00 2026\n\n\x00\x01\xff garbage \xfe\n\n"
    path = tmp_path / "spool"
    path.write_bytes(good + broken + mboxrd(message(2)))

    with caplog.at_level(logging.WARNING, logger="monitor.sources.mbox"):
        result = poll(source(path), None)

    assert ids(result) == ["inbox/m1@example.com", "inbox/m2@example.com"]
    (record,) = caplog.records
    assert str(path) in record.getMessage() and f"offset {len(good)}" in record.getMessage()
    assert "@" not in record.getMessage()  # no addresses in logs


def test_garbage_headers_still_yield_an_event(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(mboxrd(b"X-Weird: \xff\xfe\nSubject: =?bogus?Q?x?=\n\nbody\n") + mboxrd(message(1)))
    result = poll(source(path), None)
    assert len(result.messages) == 2
    assert result.messages[0].external_id.startswith("inbox/sha1:")
    assert result.messages[0].date == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # From_ line as fallback


def test_leading_garbage_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "spool"
    path.write_bytes(b"this is not an mbox header\n\n" + mboxrd(message(1)))
    with caplog.at_level(logging.WARNING, logger="monitor.sources.mbox"):
        result = poll(source(path), None)
    assert ids(result) == ["inbox/m1@example.com"]
    assert "offset 0" in caplog.text


def test_message_without_message_id_keeps_its_id_across_a_rewrite(tmp_path: Path) -> None:
    raw = b"From: someone@example.com\nSubject: no id\nDate: Mon, 02 Mar 2026 10:00:00 +0000\n\nhi\n"
    path = tmp_path / "spool"
    path.write_bytes(mboxrd(raw))
    src = source(path)
    first = poll(src, None)
    expected = "inbox/sha1:" + hashlib.sha1(raw.split(b"\n\n")[0] + b"\n").hexdigest()
    assert ids(first) == [expected]

    path.write_bytes(mboxrd(message(7)) + mboxrd(raw))
    path.write_bytes(mboxrd(raw))  # shrank: re-read from 0
    again = poll(src, first.cursor)
    assert ids(again) == [expected]


def test_from_lines_in_bodies(tmp_path: Path) -> None:
    body = "Hi,\n\nFrom what I can see the parcel is lost.\n>From the depot it never left.\n"
    path = tmp_path / "spool"
    path.write_bytes(mboxrd(message(1, body=body)) + mboxrd(message(2)))
    assert ids(poll(source(path), None)) == ["inbox/m1@example.com", "inbox/m2@example.com"]


def test_separator_without_blank_line_when_it_looks_like_a_from_line() -> None:
    data = mboxrd(message(1))[:-1] + mboxrd(message(2))  # a writer that omits the blank line
    entries = list(scan_mbox(io.BytesIO(data)))
    assert [e.offset for e in entries] == [0, len(mboxrd(message(1))) - 1]


def test_very_long_lines_are_streamed(tmp_path: Path) -> None:
    body = "x" * (3 * 1024 * 1024) + "\nFrom nobody, really\n"
    path = tmp_path / "spool"
    path.write_bytes(mboxrd(message(1, body=body)) + mboxrd(message(2)))
    assert ids(poll(source(path), None)) == ["inbox/m1@example.com", "inbox/m2@example.com"]


def test_status_headers_give_flags(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(
        mboxrd(message(1, extra="Status: RO\nX-Status: AF\n"))
        + mboxrd(message(2, extra="Status: O\n"))
        + mboxrd(message(3, extra="Status: RO\nX-Status: D\n"))
    )
    result = poll(source(path), None)
    assert [m.flags for m in result.messages] == [
        frozenset({"seen", "answered", "flagged"}),
        frozenset(),
        frozenset({"seen", "deleted"}),
    ]
    (snap,) = result.snapshots
    assert (snap.total, snap.unseen, snap.unanswered) == (3, 1, 2)


def test_sent_path_and_folder_role(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.mbox"
    sent = tmp_path / "sent.mbox"
    inbox.write_bytes(mboxrd(message(1)))
    sent.write_bytes(mboxrd(message(2)))
    src = source(inbox, sent_path=sent)
    assert src.check() == []
    result = poll(src, None)
    assert ids(result) == ["inbox/m1@example.com", "sent/m2@example.com"]
    assert [s.folder for s in result.snapshots] == ["inbox", "sent"]

    export = source(sent, folder="sent")
    assert ids(poll(export, None)) == ["sent/m2@example.com"]


def test_polls_never_change_the_file(mbox: Path) -> None:
    src = source(mbox)
    cursor: Cursor | None = None
    for step in range(3):
        if step == 1:
            append(mbox, mboxrd(message(4)))
        before = (mbox.read_bytes(), mbox.stat().st_mtime_ns, mbox.stat().st_ino)
        cursor = poll(src, cursor).cursor
        assert (mbox.read_bytes(), mbox.stat().st_mtime_ns, mbox.stat().st_ino) == before


def test_missing_file(tmp_path: Path) -> None:
    src = source(tmp_path / "nope.mbox", sent_path=tmp_path / "sent.mbox")
    assert src.check() == [
        f"path: mbox file '{tmp_path / 'nope.mbox'}' not found",
        f"sent_path: mbox file '{tmp_path / 'sent.mbox'}' not found",
    ]
    with pytest.raises(PermanentSourceError, match="not found"):
        src.poll(None)


def test_empty_file_then_mail(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(b"")
    src = source(path)
    first = poll(src, None)
    assert first.messages == [] and [s.total for s in first.snapshots] == [0]
    append(path, mboxrd(message(1)))
    second = poll(src, first.cursor)
    assert ids(second) == ["inbox/m1@example.com"] and not second.resync


def test_from_line_date() -> None:
    assert from_line_date(b"From a@example.com Thu Aug 22 12:36:23 2002") == datetime(
        2002, 8, 22, 12, 36, 23, tzinfo=UTC
    )
    assert from_line_date(b"From a@example.com") is None
    assert from_line_date(b"From a@example.com not a date") is None


def test_corpus_as_mbox(tmp_path: Path) -> None:
    corpus = CORPORA / "email" / "spamassassin" / "easy_ham"
    if not corpus.is_dir():
        pytest.fail(f"test corpus missing: {corpus} (expected ../shared/corpora beside the checkout)")
    sample = sorted(corpus.iterdir())[5::12][:200]
    path = tmp_path / "corpus.mbox"
    with path.open("wb") as out:
        for file in sample:
            raw = file.read_bytes()
            first_line, _, rest = raw.partition(b"\n")
            if first_line.startswith(b"From "):  # most of these files carry their From_ line
                out.write(mboxrd(rest, envelope=first_line[5:].decode("latin-1")))
            else:
                out.write(mboxrd(raw))
    src = source(path)
    result = poll(src, None)
    assert len(result.messages) == len(sample)
    assert len({m.external_id for m in result.messages}) == len(sample)
    for event in result.messages:
        offset = event.date.utcoffset()
        assert offset is not None and offset.total_seconds() == 0
    assert poll(src, result.cursor).messages == []
