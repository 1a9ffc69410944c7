"""No data leaks (issue 7): private SQLite files, no symbolic links followed, no bound values in errors."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from monitor.store.db import Store
from tests.test_maildir_source import deliver, make_maildir, message, poll, source


def test_a_new_sqlite_store_and_its_wal_files_are_private(tmp_path: Path) -> None:
    os.umask(0o022)
    store = Store.open(f"sqlite:///{tmp_path / 'state' / 'replywatch.db'}")
    store.upgrade()
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
        conn.execute(text("INSERT INTO t VALUES ('a')"))
        files = sorted((tmp_path / "state").iterdir())
        assert {f.name for f in files} >= {"replywatch.db", "replywatch.db-wal", "replywatch.db-shm"}
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    store.close()


def test_database_errors_never_show_bound_values(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    secret = "ann.customer@private.example"
    with pytest.raises(DBAPIError) as raised, store.engine.begin() as conn:
        conn.execute(text("INSERT INTO no_such_table VALUES (:address)"), {"address": secret})
    assert secret not in str(raised.value)
    logging.getLogger("test").exception("db", exc_info=raised.value)
    assert secret not in caplog.text


def test_maildir_does_not_follow_symbolic_links(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    outside = tmp_path / "secret"
    outside.write_bytes(message(99, subject="Outside"))
    deliver(root, "1.real", message(1))
    os.symlink(outside, root / "new" / "2.link")
    os.symlink(outside, root / "cur" / "3.link:2,S")
    result = poll(source(root), None)
    assert [m.message_id for m in result.messages] == ["m1@example.com"]


def test_a_message_file_swapped_for_a_link_after_listing_is_not_opened(tmp_path: Path) -> None:
    from monitor.sources.files import read_header_block

    target = tmp_path / "target"
    target.write_bytes(message(1))
    link = tmp_path / "link"
    os.symlink(target, link)
    with pytest.raises(OSError):
        read_header_block(link, nofollow=True)
    assert read_header_block(link)[0].startswith(b"From:")
