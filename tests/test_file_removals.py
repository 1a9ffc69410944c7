"""Removed mail in maildir and mbox sources: real files deleted, renamed, moved and cut between polls, and
what the store and the engine make of it (on SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.engine import TeamContext, build_awaiting
from monitor.store.db import Store
from monitor.verdict import ItemStatus, evaluate_team
from tests.test_maildir_source import age_directories, deliver, make_maildir
from tests.test_maildir_source import message as maildir_message
from tests.test_maildir_source import poll as maildir_poll
from tests.test_maildir_source import source as maildir_source
from tests.test_mbox_source import mboxrd
from tests.test_mbox_source import message as mbox_message
from tests.test_mbox_source import poll as mbox_poll
from tests.test_mbox_source import source as mbox_source

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
TEAM = TeamContext(name="support", addresses=frozenset({"support@example.org"}))


def statuses(store: Store, source: str, now: datetime) -> dict[str, ItemStatus]:
    from monitor.calendar import BusinessCalendar

    items = build_awaiting(store.messages([source]), TEAM).items
    verdict = evaluate_team(items, [], BusinessCalendar.always_open(), now)
    return {v.item.key: v.status for v in verdict.items}


# --- maildir --------------------------------------------------------------------------------------


def test_maildir_deleted_file_is_removed_but_new_to_cur_and_flag_renames_are_not(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    deliver(root, "1000.A.host", maildir_message(1))  # new/, unread
    deliver(root, "1001.B.host", maildir_message(2), flags="S")
    age_directories(root)
    src = maildir_source(root)
    first = maildir_poll(src, None)
    assert first.remaining == {"inbox": frozenset({"inbox/1000.A.host", "inbox/1001.B.host"})}

    # The MUA moves the new message to cur/ and marks it read: same key, nothing removed.
    os.rename(root / "new" / "1000.A.host", root / "cur" / "1000.A.host:2,S")
    os.rename(root / "cur" / "1001.B.host:2,S", root / "cur" / "1001.B.host:2,RS")
    age_directories(root)
    second = maildir_poll(src, first.cursor)
    assert sorted(m.external_id for m in second.messages) == ["inbox/1000.A.host", "inbox/1001.B.host"]
    assert second.remaining == {"inbox": frozenset({"inbox/1000.A.host", "inbox/1001.B.host"})}

    # Deleted: listed without it.
    (root / "cur" / "1001.B.host:2,RS").unlink()
    age_directories(root)
    third = maildir_poll(src, second.cursor)
    assert third.messages == []
    assert third.remaining == {"inbox": frozenset({"inbox/1000.A.host"})}
    assert maildir_poll(src, third.cursor).remaining == {}  # unchanged: not even listed


def test_maildir_removal_seen_in_a_racy_listing_is_reported_by_the_next_trusted_one(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    deliver(root, "1000.A.host", maildir_message(1), flags="S")
    deliver(root, "1001.B.host", maildir_message(2), flags="S")
    age_directories(root)
    src = maildir_source(root)
    first = maildir_poll(src, None)
    (root / "cur" / "1000.A.host:2,S").unlink()  # the directory changed just now: not trusted yet
    racy = maildir_poll(src, first.cursor)
    assert racy.remaining == {}
    age_directories(root)
    settled = maildir_poll(src, racy.cursor)
    assert settled.remaining == {"inbox": frozenset({"inbox/1001.B.host"})}


def test_maildir_move_to_archive_folder_keeps_waiting_and_delete_there_removes(
    tmp_path: Path, store: Store
) -> None:
    root = make_maildir(tmp_path / "Maildir")
    archive = make_maildir(root / ".Archive")
    deliver(root, "1000.A.host", maildir_message(1), flags="S")
    deliver(root, "1001.B.host", maildir_message(2), flags="S")
    age_directories(root)
    src = maildir_source(root, sent=None, archive=[".Archive"])
    assert src.check() == []
    first = maildir_poll(src, None)
    store.save_poll("support-maildir", first, NOW)
    assert statuses(store, "support-maildir", NOW) == {
        "m1@example.com": ItemStatus.WAITING,
        "m2@example.com": ItemStatus.WAITING,
    }

    # m1 filed in the archive folder, m2 deleted.
    os.rename(root / "cur" / "1000.A.host:2,S", archive / "cur" / "1000.A.host:2,S")
    (root / "cur" / "1001.B.host:2,S").unlink()
    age_directories(root)
    later = NOW + timedelta(minutes=5)
    second = maildir_poll(src, first.cursor)
    assert [m.external_id for m in second.messages] == ["archive:.Archive/1000.A.host"]
    saved = store.save_poll("support-maildir", second, later)
    assert (saved.inserted, saved.removed) == (1, 2)  # the archive copy; both inbox rows left the inbox
    assert statuses(store, "support-maildir", later) == {
        "m1@example.com": ItemStatus.WAITING,  # the same message, still watched
        "m2@example.com": ItemStatus.REMOVED,
    }

    # Deleted from the archive too: now it is gone from every watched folder.
    (archive / "cur" / "1000.A.host:2,S").unlink()
    age_directories(root)
    third = maildir_poll(src, second.cursor)
    assert store.save_poll("support-maildir", third, later).removed == 1
    assert statuses(store, "support-maildir", later) == {
        "m1@example.com": ItemStatus.REMOVED,
        "m2@example.com": ItemStatus.REMOVED,
    }


# --- mbox -----------------------------------------------------------------------------------------


def test_mbox_message_cut_from_the_file_is_removed(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "support.mbox"
    path.write_bytes(b"".join(mboxrd(mbox_message(n)) for n in (1, 2, 3)))
    src = mbox_source(path)
    first = mbox_poll(src, None)
    assert first.remaining == {"inbox": frozenset({f"inbox/m{n}@example.com" for n in (1, 2, 3)})}
    store.save_poll("archive", first, NOW)

    unchanged = mbox_poll(src, first.cursor)
    assert unchanged.remaining == {}
    appended = path.read_bytes() + mboxrd(mbox_message(4))
    path.write_bytes(appended)
    grown = mbox_poll(src, first.cursor)
    assert grown.remaining == {} and [m.external_id for m in grown.messages] == ["inbox/m4@example.com"]
    store.save_poll("archive", grown, NOW)

    # A mail client deletes message 2: the file is rewritten without it.
    path.write_bytes(b"".join(mboxrd(mbox_message(n)) for n in (1, 3, 4)))
    cut = mbox_poll(src, grown.cursor)
    assert cut.resync
    assert cut.remaining == {"inbox": frozenset({f"inbox/m{n}@example.com" for n in (1, 3, 4)})}
    later = NOW + timedelta(minutes=1)
    saved = store.save_poll("archive", cut, later)
    assert (saved.inserted, saved.removed) == (0, 1)
    gone = {m.message_id: m.removed_at for m in store.messages(["archive"])}
    assert gone == {
        "m1@example.com": None,
        "m2@example.com": later,
        "m3@example.com": None,
        "m4@example.com": None,
    }
