"""The folder-source template: cursor envelope, old cursors, resync without duplicates, errors, logs."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.sources.base import Cursor, PermanentSourceError, PollResult
from monitor.sources.maildir import MaildirSource
from monitor.sources.mbox import MboxSource
from monitor.store.db import Store
from tests.servers.dovecot import Mailbox
from tests.test_imap_source import make_source as make_imap_source
from tests.test_imap_source import message as imap_message
from tests.test_maildir_source import age_directories, deliver, make_maildir
from tests.test_maildir_source import message as maildir_message
from tests.test_maildir_source import source as maildir_source
from tests.test_mbox_source import mboxrd
from tests.test_mbox_source import message as mbox_message
from tests.test_mbox_source import source as mbox_source

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

# --- the layouts saved before the envelope, as the earlier code wrote them ----------------------------


def maildir_v1(cursor: Cursor, root: Path) -> Cursor:
    """``{"v": 1, "path": root, "folders": {role: {"dir": name under root, ...}}}``."""
    folders = {}
    for role, state in cursor["folders"].items():
        rest = {k: v for k, v in state.items() if k != "name"}
        folders[role] = {"dir": "" if state["name"] == str(root) else Path(state["name"]).name, **rest}
    return {"v": 1, "path": str(root), "folders": folders}


def mbox_v1(cursor: Cursor) -> Cursor:
    """``{"v": 1, "files": {role: {"path", "size", "offset", "inode", "mtime_ns", "tail", ...}}}``."""
    files = {}
    for role, state in cursor["folders"].items():
        file = state["file"]
        files[role] = {
            "path": state["name"],
            **{k: state[k] for k in ("offset", "tail_id", "total", "unseen", "unanswered", "oldest")},
            **{k: file[k] for k in ("inode", "size", "mtime_ns", "tail")},
        }
    return {"v": 1, "files": files}


def imap_unversioned(cursor: Cursor) -> Cursor:
    """``{"folders": {server folder name: state}}``, without a version."""
    return {
        "folders": {
            state["name"]: {k: v for k, v in state.items() if k != "name"}
            for state in cursor["folders"].values()
        }
    }


# --- sources under test ----------------------------------------------------------------------------


Polled = Callable[[Cursor | None], PollResult]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'replywatch.db'}")
    store.upgrade()
    try:
        yield store
    finally:
        store.close()


def through_json(poll: Callable[[Cursor | None], PollResult]) -> Polled:
    """Poll and pass the cursor through JSON, as the store does."""

    def polled(cursor: Cursor | None) -> PollResult:
        result = poll(cursor)
        result.cursor = json.loads(json.dumps(result.cursor))
        return result

    return polled


@pytest.fixture
def maildir(tmp_path: Path) -> tuple[MaildirSource, Path]:
    root = make_maildir(tmp_path / "Maildir")
    sent = make_maildir(root / ".Sent")
    deliver(root, "1000.A.host", maildir_message(1))
    deliver(root, "1001.B.host", maildir_message(2), flags="S")
    deliver(sent, "2000.S.host", maildir_message(3), flags="S")
    age_directories(root)
    return maildir_source(root), root


@pytest.fixture
def mbox(tmp_path: Path) -> MboxSource:
    path = tmp_path / "support.mbox"
    path.write_bytes(b"".join(mboxrd(mbox_message(n)) for n in range(1, 4)))
    sent = tmp_path / "sent.mbox"
    sent.write_bytes(mboxrd(mbox_message(9)))
    return mbox_source(path, sent_path=sent)


# --- old cursors are read --------------------------------------------------------------------------


def test_maildir_reads_its_unversioned_cursor(maildir: tuple[MaildirSource, Path]) -> None:
    src, root = maildir
    first = through_json(src.poll)(None)
    old = maildir_v1(first.cursor, root)
    assert old["folders"]["inbox"]["dir"] == "" and old["folders"]["sent"]["dir"] == ".Sent"

    second = through_json(src.poll)(old)

    assert second.messages == [] and second.resync is False
    assert second.cursor == first.cursor


def test_mbox_reads_its_unversioned_cursor(mbox: MboxSource) -> None:
    first = through_json(mbox.poll)(None)
    assert len(first.messages) == 4
    second = through_json(mbox.poll)(mbox_v1(first.cursor))
    assert second.messages == [] and second.resync is False
    assert second.cursor == first.cursor
    with Path(mbox.config.path).open("ab") as fh:
        fh.write(mboxrd(mbox_message(4)))
    third = through_json(mbox.poll)(mbox_v1(first.cursor))
    assert [m.external_id for m in third.messages] == ["inbox/m4@example.com"] and not third.resync


@pytest.mark.server
def test_imap_reads_its_unversioned_cursor(imap_mailbox: Mailbox) -> None:
    imap_mailbox.create_folder("Sent")
    imap_mailbox.append("INBOX", imap_message("Order 17", msgid="q1@example.org"))
    imap_mailbox.append(
        "Sent", imap_message("Re: Order 17", sender="support@example.com", msgid="r1@example.org")
    )
    src = make_imap_source(imap_mailbox)
    first = through_json(src.poll)(None)
    assert len(first.messages) == 2
    old = imap_unversioned(first.cursor)
    assert set(old["folders"]) == {"INBOX", "Sent"}

    second = through_json(src.poll)(old)

    assert second.messages == [] and second.resync is False
    assert second.cursor == first.cursor


# --- unreadable cursors resync, and the store counts nothing twice ------------------------------


def broken_cursors(good: Cursor) -> dict[str, Any]:
    inbox = dict(good["folders"]["inbox"])
    return {
        "unknown version": {**good, "version": 99},
        "folders not a mapping": {"version": good["version"], "folders": ["inbox"]},
        "state of the wrong type": {
            **good,
            "folders": {**good["folders"], "inbox": {**inbox, "total": "many"}},
        },
        "state missing a field": {**good, "folders": {**good["folders"], "inbox": {"name": inbox["name"]}}},
        "old layout of another source": {"v": 1, "files": "nonsense"},
        "not an object": ["inbox", good["folders"]["inbox"]],
    }


@pytest.mark.parametrize(
    "case",
    [
        "unknown version",
        "folders not a mapping",
        "state of the wrong type",
        "state missing a field",
        "old layout of another source",
        "not an object",
    ],
)
@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_unreadable_cursor_resyncs_without_duplicates(
    kind: str,
    case: str,
    maildir: tuple[MaildirSource, Path],
    mbox: MboxSource,
    sqlite_store: Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    src: MaildirSource | MboxSource = maildir[0] if kind == "maildir" else mbox
    poll = through_json(src.poll)
    first = poll(None)
    saved = sqlite_store.save_poll(src.name, first, NOW)
    assert saved.inserted == len(first.messages) > 0
    broken = broken_cursors(first.cursor)[case]

    with caplog.at_level(logging.WARNING, logger=type(src).__module__):
        second = poll(broken)

    assert second.resync is True
    inbox = {m.external_id for m in first.messages if m.folder == "inbox"}
    assert inbox <= {m.external_id for m in second.messages}
    again = sqlite_store.save_poll(src.name, second, NOW)
    assert (again.inserted, again.updated) == (0, 0)
    assert len(sqlite_store.messages([src.name])) == len(first.messages)
    assert second.cursor == first.cursor
    assert poll(second.cursor).resync is False
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "again" in warning.getMessage() and getattr(warning, "source", None) == src.name


@pytest.mark.server
def test_imap_unknown_version_resyncs_without_duplicates(imap_mailbox: Mailbox, sqlite_store: Store) -> None:
    imap_mailbox.create_folder("Sent")
    for n in range(3):
        imap_mailbox.append("INBOX", imap_message(f"Order {n}", msgid=f"q{n}@example.org"))
    src = make_imap_source(imap_mailbox)
    first = through_json(src.poll)(None)
    sqlite_store.save_poll(src.name, first, NOW)

    second = through_json(src.poll)({**first.cursor, "version": first.cursor["version"] + 1})

    assert second.resync is True and len(second.messages) == 3
    assert sqlite_store.save_poll(src.name, second, NOW).inserted == 0
    assert len(sqlite_store.messages([src.name])) == 3
    assert second.cursor == first.cursor


def test_envelope_shape(maildir: tuple[MaildirSource, Path]) -> None:
    src, root = maildir
    cursor = through_json(src.poll)(None).cursor
    assert cursor["version"] == MaildirSource.cursor_version
    assert list(cursor["folders"]) == ["inbox", "sent"]
    assert cursor["folders"]["sent"]["name"] == str(root / ".Sent")


# --- errors and logs name the source ---------------------------------------------------------------


def test_errors_name_source_and_folder_once(maildir: tuple[MaildirSource, Path], mbox: MboxSource) -> None:
    src, root = maildir
    shutil.rmtree(root / "new")
    with pytest.raises(PermanentSourceError) as raised:
        src.poll(None)
    assert (
        str(raised.value)
        == f"source support-maildir folder inbox: maildir folder '{root}' has no cur/ or new/"
    )
    Path(mbox.config.path).unlink()
    with pytest.raises(PermanentSourceError) as raised:
        mbox.poll(None)
    assert str(raised.value) == f"source archive folder inbox: mbox file '{mbox.config.path}' not found"
    assert str(raised.value).count("archive") == 1
    assert isinstance(raised.value.__cause__, FileNotFoundError)


def test_error_before_any_folder_names_the_source(tmp_path: Path) -> None:
    with pytest.raises(PermanentSourceError) as raised:
        maildir_source(tmp_path / "nope").poll(None)
    assert str(raised.value) == f"source support-maildir: maildir path '{tmp_path / 'nope'}' not found"


@pytest.mark.server
def test_imap_error_names_source_and_folder(imap_mailbox: Mailbox) -> None:
    src = make_imap_source(imap_mailbox, folders={"inbox": "Inbx", "sent": "Sent"})
    imap_mailbox.create_folder("Sent")
    with pytest.raises(PermanentSourceError) as raised:
        src.poll(None)
    assert str(raised.value) == (
        "source support folder inbox: folder 'Inbx' not found on 127.0.0.1; folders there: 'INBOX', 'Sent'; "
        "set `folders` to one of them"
    )


def test_plugin_logs_carry_the_source_field(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "spool.mbox"
    path.write_bytes(b"garbage before any From_ line\n" + mboxrd(mbox_message(1)))
    with caplog.at_level(logging.WARNING, logger="monitor.sources.mbox"):
        result = mbox_source(path).poll(None)
    assert [m.external_id for m in result.messages] == ["inbox/m1@example.com"]
    (record,) = caplog.records
    assert record.name == "monitor.sources.mbox"
    assert getattr(record, "source", None) == "archive"
    assert "not a message" in record.getMessage()
