"""Tests for the maildir source: real files in a temporary maildir, polled incrementally."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.sources import maildir as maildir_module
from monitor.sources.base import SOURCES, Cursor, PermanentSourceError, PollResult, SourcePlugin
from monitor.sources.files import HEADER_CAP
from monitor.sources.maildir import (
    MaildirConfig,
    MaildirSource,
    decode_known,
    encode_known,
    split_filename,
)

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
PAST = datetime(2026, 3, 1, 9, 30, tzinfo=UTC).timestamp()


def make_maildir(folder: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder


def message(n: int, *, subject: str = "Order question", extra: str = "") -> bytes:
    return (
        f"From: Customer {n} <customer{n}@example.com>\n"
        "To: support@example.org\n"
        f"Subject: {subject} {n}\n"
        f"Date: Mon, 02 Mar 2026 10:{n % 60:02d}:00 +0100\n"
        f"Message-ID: <m{n}@example.com>\n"
        f"{extra}"
        "\n"
        "Hello, where is my order?\n"
    ).encode()


def deliver(folder: Path, key: str, data: bytes, *, flags: str | None = None, mtime: float = PAST) -> Path:
    """Write a message as an MDA would: into new/ (flags None) or cur/ with a ':2,' info."""
    path = folder / "new" / key if flags is None else folder / "cur" / f"{key}:2,{flags}"
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def source(root: Path, **folders: Any) -> MaildirSource:
    config = MaildirConfig.model_validate({"path": root, "folders": folders} if folders else {"path": root})
    return MaildirSource("support-maildir", config, clock=lambda: NOW)


def poll(src: MaildirSource, cursor: Cursor | None) -> PollResult:
    """Poll and pass the cursor through JSON, as the store does."""
    result = src.poll(cursor)
    result.cursor = json.loads(json.dumps(result.cursor))
    return result


def tree_state(root: Path) -> dict[str, tuple[int, str]]:
    """Every file's and directory's path with its mtime, and every file's content hash."""
    state: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            state[str(path.relative_to(root))] = (path.stat().st_mtime_ns, digest)
    return state


def age_directories(root: Path, seconds: float = 3600) -> None:
    """Backdate every directory's mtime, as if the maildir had not changed for a while."""
    when = time.time() - seconds
    for dirpath, _dirs, _files in os.walk(root):
        os.utime(dirpath, (when, when))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_maildir(tmp_path / "Maildir")


def by_id(result: PollResult) -> dict[str, Any]:
    return {m.external_id: m for m in result.messages}


def test_registers_kind() -> None:
    assert SOURCES.get("maildir") == SourcePlugin(MaildirConfig, MaildirSource)


def test_split_filename_reads_key_and_system_flags() -> None:
    assert split_filename("1700000000.M1P2.host,S=120,W=124:2,SRa") == (
        "1700000000.M1P2.host,S=120,W=124",
        "RS",
    )
    assert split_filename("1700000000.M1P2.host") == ("1700000000.M1P2.host", "")
    assert split_filename("1700000000.M1P2.host:1,experimental") == ("1700000000.M1P2.host", "")
    assert split_filename("k:2,TFDP") == ("k", "DFT")


def test_known_hashes_round_trip() -> None:
    hashes = {0, 1, 2**64 - 1, 1234567890123456789}
    assert decode_known(encode_known(hashes)) == hashes
    assert decode_known(encode_known(set())) == set()


def test_first_poll_emits_every_message_with_flags_ids_and_counts(root: Path) -> None:
    deliver(root, "1000.A.host", message(1))
    deliver(root, "1001.B.host", message(2), flags="S")
    deliver(root, "1002.C.host", message(3), flags="RS")
    deliver(root, "1003.D.host", message(4), flags="FST", mtime=PAST - 3600)
    sent = make_maildir(root / ".Sent")
    deliver(sent, "1004.E.host", message(5, subject="Re: Order question"), flags="S")

    result = poll(source(root), None)

    events = by_id(result)
    assert set(events) == {
        "inbox/1000.A.host",
        "inbox/1001.B.host",
        "inbox/1002.C.host",
        "inbox/1003.D.host",
        "sent/1004.E.host",
    }
    assert events["inbox/1000.A.host"].flags == frozenset()
    assert events["inbox/1001.B.host"].flags == {"seen"}
    assert events["inbox/1002.C.host"].flags == {"seen", "answered"}
    assert events["inbox/1003.D.host"].flags == {"seen", "flagged", "deleted"}
    assert events["sent/1004.E.host"].folder == "sent"
    first = events["inbox/1000.A.host"]
    assert first.message_id == "m1@example.com"
    assert first.from_addr == "customer1@example.com"
    assert first.date == datetime(2026, 3, 2, 9, 1, tzinfo=UTC)
    assert not result.resync

    snapshots = {s.folder: s for s in result.snapshots}
    inbox = snapshots["inbox"]
    assert (inbox.total, inbox.unseen, inbox.unanswered) == (4, 1, 3)
    assert inbox.oldest == datetime.fromtimestamp(PAST - 3600, UTC)
    assert inbox.at == NOW
    assert (snapshots["sent"].total, snapshots["sent"].unseen) == (1, 0)


def test_date_falls_back_to_file_mtime(root: Path) -> None:
    deliver(root, "1000.A.host", b"From: a@example.com\nSubject: no date\n\nbody\n")
    (event,) = poll(source(root), None).messages
    assert event.date == datetime.fromtimestamp(PAST, UTC)


def test_unchanged_maildir_emits_nothing(root: Path) -> None:
    for n in range(5):
        deliver(root, f"100{n}.K.host", message(n), flags="S")
    src = source(root)
    first = poll(src, None)
    assert len(first.messages) == 5

    second = poll(src, first.cursor)
    third = poll(src, second.cursor)

    assert second.messages == [] and third.messages == []
    assert [(s.total, s.unseen, s.unanswered) for s in third.snapshots] == [(5, 0, 5)]
    assert not second.resync


def test_new_file_emits_only_it(root: Path) -> None:
    deliver(root, "1000.A.host", message(1), flags="S")
    src = source(root)
    first = poll(src, None)

    deliver(root, "1001.B.host", message(2))
    second = poll(src, first.cursor)

    assert [m.external_id for m in second.messages] == ["inbox/1001.B.host"]
    assert [(s.total, s.unseen) for s in second.snapshots] == [(2, 1)]


def test_flag_change_emits_the_message_again_with_new_flags(root: Path) -> None:
    path = deliver(root, "1000.A.host", message(1), flags="S")
    deliver(root, "1001.B.host", message(2), flags="S")
    src = source(root)
    first = poll(src, None)

    path.rename(path.with_name("1000.A.host:2,RS"))  # the team answered it
    second = poll(src, first.cursor)

    (event,) = second.messages
    assert event.external_id == "inbox/1000.A.host"
    assert event.flags == {"seen", "answered"}
    assert [s.unanswered for s in second.snapshots] == [1]
    assert poll(src, second.cursor).messages == []


def test_move_from_new_to_cur_with_same_flags_is_not_emitted_again(root: Path) -> None:
    """Decision: the external id and the data are unchanged, so a bare move is no news."""
    path = deliver(root, "1000.A.host", message(1))
    src = source(root)
    first = poll(src, None)

    path.rename(root / "cur" / "1000.A.host:2,")
    second = poll(src, first.cursor)
    assert second.messages == []

    (root / "cur" / "1000.A.host:2,").rename(root / "cur" / "1000.A.host:2,S")
    third = poll(src, second.cursor)
    assert [(m.external_id, m.flags) for m in third.messages] == [("inbox/1000.A.host", frozenset({"seen"}))]


def test_keyword_flags_alone_do_not_re_emit(root: Path) -> None:
    path = deliver(root, "1000.A.host", message(1), flags="S")
    src = source(root)
    first = poll(src, None)
    path.rename(path.with_name("1000.A.host:2,Sab"))  # Dovecot keywords only
    assert poll(src, first.cursor).messages == []


def test_removed_file_lowers_counts_and_oldest(root: Path) -> None:
    old = deliver(root, "1000.A.host", message(1), flags="S", mtime=PAST - 86400)
    deliver(root, "1001.B.host", message(2), flags="S")
    src = source(root)
    first = poll(src, None)
    assert first.snapshots[0].oldest == datetime.fromtimestamp(PAST - 86400, UTC)

    old.unlink()
    second = poll(src, first.cursor)

    assert second.messages == []
    (snap,) = second.snapshots
    assert (snap.total, snap.oldest) == (1, datetime.fromtimestamp(PAST, UTC))


def test_polls_never_change_the_maildir(root: Path) -> None:
    deliver(root, "1000.A.host", message(1))
    deliver(root, "1001.B.host", message(2), flags="S")
    sent = make_maildir(root / ".Sent")
    deliver(sent, "1002.C.host", message(3), flags="S")
    (root / "dovecot-uidlist").write_text("3 V1 N4\n")
    src = source(root)

    cursor: Cursor | None = None
    for step in range(3):
        if step == 1:
            deliver(root, "1003.D.host", message(4))
        if step == 2:
            (root / "cur" / "1001.B.host:2,S").rename(root / "cur" / "1001.B.host:2,RS")
        before = tree_state(root)
        cursor = poll(src, cursor).cursor
        assert tree_state(root) == before, f"poll {step} changed the maildir"
    # Mail in new/ stays in new/: a reader that moved it to cur/ would mark it as no longer recent.
    assert sorted(os.listdir(root / "new")) == ["1000.A.host", "1003.D.host"]


def test_malformed_files_still_yield_events(root: Path) -> None:
    huge = b"".join(b"X-Junk-%06d: %s\n" % (i, b"j" * 60) for i in range(5000))  # ~360 KB of headers
    files = {
        "1000.empty": b"",
        "1001.binary": bytes(range(256)) * 40,
        "1002.body-only": b"\nThis file has no headers at all.\n",
        "1003.no-newline": b"Subject: cut off",
        "1004.huge-header": huge + b"Message-ID: <late@example.com>\n\nbody\n",
        "1005.crlf": b"From: x@example.com\r\nMessage-ID: <crlf@example.com>\r\n\r\nbody\r\n",
        "1006.bad-date": b"Date: yesterday-ish\nMessage-ID: <bad-date@example.com>\n\nbody\n",
    }
    for key, data in files.items():
        deliver(root, key, data, flags="S")

    events = by_id(poll(source(root), None))

    assert set(events) == {f"inbox/{key}" for key in files}
    mtime = datetime.fromtimestamp(PAST, UTC)
    for event in events.values():
        assert event.date.tzinfo is not None
    assert events["inbox/1000.empty"].message_id is None
    assert events["inbox/1000.empty"].date == mtime
    assert events["inbox/1003.no-newline"].subject == "cut off"
    assert events["inbox/1004.huge-header"].message_id is None  # beyond the 256 KB cap
    assert events["inbox/1005.crlf"].message_id == "crlf@example.com"
    assert events["inbox/1006.bad-date"].date == mtime


def test_header_read_stops_at_the_blank_line(root: Path) -> None:
    body = b"A" * (2 * 1024 * 1024)
    path = deliver(root, "1000.big", message(1) + body, flags="S")
    raw, _stat = maildir_module.read_header_block(path)
    assert raw.endswith(b"\n\n") and len(raw) < 16384 + 1


def test_unchanged_folder_is_not_even_listed(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deliver(root, "1000.A.host", message(1), flags="S")
    age_directories(root)
    src = source(root)
    first = poll(src, None)
    assert first.cursor["folders"]["inbox"]["mtimes"] is not None

    def no_listing(folder: Path) -> Any:
        raise AssertionError(f"listed {folder} although nothing changed")

    monkeypatch.setattr(maildir_module, "list_folder", no_listing)
    second = poll(src, first.cursor)
    assert second.messages == [] and [s.total for s in second.snapshots] == [1]


def test_recently_modified_directory_is_listed_again(root: Path) -> None:
    """Racy mtimes: a change in the same timestamp tick as the last listing must not be missed."""
    deliver(root, "1000.A.host", message(1), flags="S")
    src = source(root)
    first = poll(src, None)  # the directories were modified just now
    assert first.cursor["folders"]["inbox"]["mtimes"] is None

    stamps = {sub: (root / sub).stat().st_mtime_ns for sub in ("new", "cur")}
    deliver(root, "1001.B.host", message(2))
    for sub, ns in stamps.items():  # as if the filesystem's clock had not ticked
        os.utime(root / sub, ns=(ns, ns))
    second = poll(src, first.cursor)
    assert [m.external_id for m in second.messages] == ["inbox/1001.B.host"]


def test_file_renamed_during_poll_is_picked_up_next_time(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deliver(root, "1000.A.host", message(1))
    age_directories(root)
    src = source(root)
    real_read, real_prefix = maildir_module.read_header_block, maildir_module.read_prefix

    def vanished(path: Path, cap: int = HEADER_CAP, *, nofollow: bool = False) -> Any:
        raise FileNotFoundError(2, "moved", str(path))

    monkeypatch.setattr(maildir_module, "read_header_block", vanished)
    monkeypatch.setattr(maildir_module, "read_prefix", vanished)  # the text preview is on by default
    first = poll(src, None)
    assert first.messages == []
    assert first.cursor["folders"]["inbox"]["mtimes"] is None  # the listing is not trusted

    monkeypatch.setattr(maildir_module, "read_header_block", real_read)
    monkeypatch.setattr(maildir_module, "read_prefix", real_prefix)
    second = poll(src, first.cursor)
    assert [m.external_id for m in second.messages] == ["inbox/1000.A.host"]


def test_hidden_files_and_tmp_are_ignored(root: Path) -> None:
    deliver(root, "1000.A.host", message(1), flags="S")
    (root / "tmp" / "1001.being-delivered").write_bytes(message(2))
    (root / "cur" / ".nfs000001").write_bytes(b"junk")
    (root / "cur" / "subdir").mkdir()
    result = poll(source(root), None)
    assert [m.external_id for m in result.messages] == ["inbox/1000.A.host"]
    assert result.snapshots[0].total == 1


def test_sent_auto_finds_common_names(root: Path) -> None:
    sent = make_maildir(root / ".Sent Items")
    deliver(sent, "2000.S.host", message(1), flags="S")
    make_maildir(root / ".Drafts")
    src = source(root)
    assert src.check() == []
    result = poll(src, None)
    assert [(m.folder, m.external_id) for m in result.messages] == [("sent", "sent/2000.S.host")]
    assert [s.folder for s in result.snapshots] == ["inbox", "sent"]


def test_sent_by_name_with_or_without_dot(root: Path) -> None:
    sent = make_maildir(root / ".Gesendet")
    deliver(sent, "2000.S.host", message(1), flags="S")
    for name in (".Gesendet", "Gesendet"):
        src = source(root, sent=name)
        assert src.check() == []
        assert [m.folder for m in poll(src, None).messages] == ["sent"]


def test_missing_sent_folder_is_reported_but_inbox_still_polled(root: Path) -> None:
    deliver(root, "1000.A.host", message(1))
    auto = source(root)
    (problem,) = auto.check()
    assert "no Sent folder found" in problem and "folders.sent" in problem
    assert [m.folder for m in poll(auto, None).messages] == ["inbox"]

    named = source(root, sent=".Outbox")
    (problem,) = named.check()
    assert problem.startswith("folders.sent: folder '.Outbox' not found")

    assert source(root, sent=None).check() == []


def test_inbox_subfolder(root: Path) -> None:
    shared = make_maildir(root / ".Support")
    deliver(shared, "3000.X.host", message(1))
    src = source(root, inbox=".Support", sent=None)
    assert src.check() == []
    assert [m.external_id for m in poll(src, None).messages] == ["inbox/3000.X.host"]


def test_check_reports_missing_path_and_non_maildir(tmp_path: Path) -> None:
    (problem,) = source(tmp_path / "nope", sent=None).check()
    assert problem == f"maildir path '{tmp_path / 'nope'}' not found"
    (tmp_path / "plain").mkdir()
    (problem,) = source(tmp_path / "plain", sent=None).check()
    assert "is not a maildir" in problem


def test_poll_of_missing_path_raises_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentSourceError, match="not found"):
        source(tmp_path / "nope").poll(None)
    (tmp_path / "plain").mkdir()
    with pytest.raises(PermanentSourceError, match="no cur/ or new/"):
        source(tmp_path / "plain").poll(None)


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError, match="extra"):
        MaildirConfig.model_validate({"path": "/srv/mail", "foldres": {}})
    with pytest.raises(ValidationError, match="one directory name"):
        MaildirConfig.model_validate({"path": "/srv/mail", "folders": {"sent": "../other"}})
    config = MaildirConfig.model_validate({"kind": "maildir", "path": "/srv/mail", "poll_every": "30s"})
    assert (config.folders.inbox, config.folders.sent) == ("", "auto")
    imap_habit = MaildirConfig.model_validate({"path": "/srv/mail", "folders": {"inbox": "INBOX"}})
    assert imap_habit.folders.inbox == ""


def test_cursor_from_another_path_resyncs(root: Path, tmp_path: Path) -> None:
    deliver(root, "1000.A.host", message(1))
    other = make_maildir(tmp_path / "Other")
    deliver(other, "1000.A.host", message(1))
    cursor = poll(source(other), None).cursor
    result = poll(source(root), cursor)
    assert result.resync and len(result.messages) == 1


def test_cursor_stays_small(root: Path) -> None:
    n = 2000
    for i in range(n):
        key = f"{1700000000 + i}.M{i:06d}P{4000 + i}.mail.example.org,S={1000 + i},W={1030 + i}"
        (root / "cur" / f"{key}:2,S").write_bytes(b"Subject: x\n\n")
    result = poll(source(root, sent=None), None)
    assert len(result.messages) == n
    size = len(json.dumps(result.cursor))
    assert size < n * 11 + 500, size  # 8 bytes of hash per message, base64: ~10.7 characters


def test_every_corpus_message_yields_an_event(tmp_path: Path) -> None:
    corpus = CORPORA / "email" / "spamassassin" / "easy_ham"
    if not corpus.is_dir():
        pytest.fail(f"test corpus missing: {corpus} (expected ../shared/corpora beside the checkout)")
    sample = sorted(corpus.iterdir())[::12][:200]
    assert len(sample) == 200
    root = make_maildir(tmp_path / "Maildir")
    originals: dict[str, Path] = {}
    for i, path in enumerate(sample):
        key = f"{1030000000 + i}.M{i}P1.corpus"
        originals[f"inbox/{key}"] = path
        shutil.copyfile(path, root / "cur" / f"{key}:2,S")

    result = poll(source(root, sent=None), None)

    assert sorted(m.external_id for m in result.messages) == sorted(originals)
    minus_zero = 0
    for event in result.messages:
        original = originals[event.external_id]
        offset = event.date.utcoffset()
        assert offset is not None and offset.total_seconds() == 0, original.name
        headers = original.read_bytes().split(b"\n\n", 1)[0].decode("latin-1")
        date_line = next((h for h in headers.splitlines() if h.lower().startswith("date:")), None)
        if date_line and date_line.rstrip().endswith("-0000"):
            minus_zero += 1
            parsed = parsedate_to_datetime(date_line.split(":", 1)[1].strip())
            assert parsed.tzinfo is None
            assert event.date == parsed.replace(tzinfo=UTC), f"{original.name}: -0000 not read as UTC"
        assert event.message_id, f"{original.name}: no Message-ID found"
    assert minus_zero > 10, "the sample should hold -0000 dates"
