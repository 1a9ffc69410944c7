"""SQLite: a bulk write's commit leaves copying the WAL into the database file to a thread of its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.events import Channel
from monitor.sources.base import PollResult
from monitor.store.db import Store
from tests.test_store import T0
from tests.test_store_first_sync import item, msg


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    yield store
    store.close()


def _sizes(tmp_path: Path) -> tuple[int, int]:
    """(database file, WAL) sizes in bytes."""
    return (tmp_path / "store.db").stat().st_size, (tmp_path / "store.db-wal").stat().st_size


def _autocheckpoint(store: Store) -> set[int]:
    """``wal_autocheckpoint`` of every connection the pool holds (each checked out at once)."""
    pool = store.engine.pool
    held = [pool.connect() for _ in range(pool.checkedin())]
    try:
        return {c.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] for c in held}  # type: ignore[union-attr]
    finally:
        for c in held:
            c.close()


def test_a_bulk_save_commits_without_a_checkpoint_and_a_thread_does_it(
    file_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later: list[str] = []
    monkeypatch.setattr(file_store, "_run_checkpoint", lambda: later.append("checkpoint"))
    file_store.save_poll("inbox", PollResult(messages=[msg(n) for n in range(3_000)]), T0)
    assert file_store.settled(timeout=10)
    assert later == ["checkpoint"]
    database, wal = _sizes(tmp_path)
    # SQLite's own checkpoint (past 1,000 pages in the WAL) would have copied the rows into the file.
    assert wal > 4 * database, (database, wal)
    assert _autocheckpoint(file_store) == {1_000}  # the connection went back to SQLite's default

    monkeypatch.undo()
    file_store._run_checkpoint()
    database, wal = _sizes(tmp_path)
    assert database > wal / 2, (database, wal)
    assert len(file_store.messages(["inbox"])) == 3_000


def test_the_thread_checkpoints_a_bulk_save_and_a_bulk_rebuild(file_store: Store, tmp_path: Path) -> None:
    file_store.save_poll("inbox", PollResult(messages=[msg(n) for n in range(3_000)]), T0)
    assert file_store.settled(timeout=10)
    database, _ = _sizes(tmp_path)
    assert database > 1_000_000  # the rows are in the file, not only in the WAL

    items = [item(f"<{n}@customer.example>", n) for n in range(3_000)]
    assert file_store.replace_awaiting("support", Channel.EMAIL, items, None, T0) == 3_000
    assert file_store.settled(timeout=10)
    grown, _ = _sizes(tmp_path)
    assert grown > database
    with sqlite3.connect(tmp_path / "store.db") as other:
        # Everything is in the file: a checkpoint by another process finds no frame left to copy.
        busy, frames, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, frames - copied) == (0, 0)
        assert other.execute("SELECT count(*) FROM awaiting").fetchone()[0] == 3_000


def test_a_small_write_leaves_the_checkpoint_to_sqlite(
    file_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    later: list[str] = []
    monkeypatch.setattr(file_store, "_run_checkpoint", lambda: later.append("checkpoint"))
    file_store.save_poll("inbox", PollResult(messages=[msg(n) for n in range(50)]), T0)
    assert later == []
    assert _autocheckpoint(file_store) == {1_000}
