"""A source's first sync and a team's first rebuild: written straight into their tables, nothing read back,
and PostgreSQL's statistics refreshed beside the evaluation instead of before it."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from monitor.awaiting import AwaitingItem
from monitor.breaches import Level, Opened
from monitor.events import Channel, MessageEvent
from monitor.sources.base import PollResult
from monitor.store import db
from monitor.store.db import Store
from tests.servers.postgres import reset_postgres
from tests.test_store import T0
from tests.test_store import msg as store_msg

MANY = 2_500  # above the row count from which PostgreSQL writes through COPY


def msg(n: int, folder: str = "inbox") -> MessageEvent:
    return store_msg(n, folder=folder, external_id=f"{folder}/1/{n}", subject=f"Order {n}")


def item(key: str, minutes: int, team: str = "support") -> AwaitingItem:
    return AwaitingItem(
        team=team,
        channel=Channel.EMAIL,
        key=key,
        conversation=key,
        customer=f"{key}@customer.example",
        received_at=T0 + timedelta(minutes=minutes),
    )


@pytest.fixture
def staged(pg_store: Store, monitor_calls: Any) -> list[str]:
    """The tables :meth:`Store._copy_new` staged rows for (a temporary table, then ``INSERT ... SELECT``)."""
    return monitor_calls(pg_store, "_copy_new", lambda _conn, table, *_: table.name)


@pytest.fixture
def monitor_calls(monkeypatch: pytest.MonkeyPatch) -> Any:
    def watch(store: Store, name: str, describe: Any) -> list[Any]:
        calls: list[Any] = []
        original = getattr(store, name)

        def counted(*args: Any) -> Any:
            calls.append(describe(*args))
            return original(*args)

        monkeypatch.setattr(store, name, counted)
        return calls

    return watch


def test_a_first_sync_is_copied_straight_into_its_table(pg_store: Store, staged: list[str]) -> None:
    first = [msg(n) for n in range(MANY)]
    assert pg_store.save_poll("inbox", PollResult(messages=first, cursor={"uid": MANY}), T0).inserted == MANY
    assert staged == []
    assert sorted(pg_store.messages(["inbox"]), key=lambda m: m.date) == first
    assert pg_store.load_cursor("inbox") == {"uid": MANY}
    # A later sync meets stored rows: it looks them up and inserts only the new ones.
    later = [msg(n) for n in range(MANY, 2 * MANY)]
    saved = pg_store.save_poll("inbox", PollResult(messages=[*first, *later]), T0)
    assert (saved.inserted, saved.updated) == (MANY, 0)
    assert len(pg_store.messages(["inbox"])) == 2 * MANY


def test_a_first_sync_that_repeats_an_id_is_written_through_the_temporary_table(
    pg_store: Store, staged: list[str]
) -> None:
    """The straight COPY fails on the repeated id; its savepoint is rolled back and nothing of it stays."""
    first = [msg(n) for n in range(MANY)]
    repeated = replace(msg(7), subject="the same id again")
    saved = pg_store.save_poll("inbox", PollResult(messages=[*first, repeated], cursor={"uid": 1}), T0)
    assert saved.inserted == MANY + 1  # as given; one of the two copies of the id is stored
    assert staged == ["message"]
    stored = pg_store.messages(["inbox"])
    assert len(stored) == MANY
    assert {m.external_id for m in stored} == {m.external_id for m in first}
    assert pg_store.load_cursor("inbox") == {"uid": 1}


def test_a_first_rebuild_of_a_team_is_copied_straight(pg_store: Store, staged: list[str]) -> None:
    items = [item(f"k{n}", n) for n in range(MANY)]
    assert pg_store.replace_awaiting("support", Channel.EMAIL, items, T0, T0) == MANY
    assert staged == []
    assert pg_store.replace_awaiting("support", Channel.EMAIL, items, T0, T0) == 0
    # Another team's rows are no reason to stage; the same team's, even all before the window, are.
    sales = [item(f"k{n}", n, "sales") for n in range(MANY)]
    assert pg_store.replace_awaiting("sales", Channel.EMAIL, sales, T0, T0) == MANY
    assert staged == []
    since = T0 + timedelta(minutes=MANY)
    later = [item(f"n{n}", MANY + n) for n in range(MANY)]
    assert pg_store.replace_awaiting("support", Channel.EMAIL, later, since, T0) == MANY
    assert staged == ["awaiting"]
    keys = {r.item_key for r in pg_store.awaiting("support")}
    assert keys == {f"k{n}" for n in range(MANY)} | {f"n{n}" for n in range(MANY)}
    assert len(pg_store.awaiting("sales")) == MANY


def test_every_batch_of_a_first_rebuild_and_a_small_first_sync_are_copied_straight(
    pg_store: Store, monitor_calls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows none of which are stored go through COPY from a hundred on, not only past 2,000: the last
    batch of a first rebuild (here 5,000 + 300) and a first sync of 300 messages are copied too."""
    copied = monitor_calls(pg_store, "_copied_straight", lambda _conn, table, *_: table.name)
    inserted: list[str] = []
    plain_insert = db._insert_columns
    monkeypatch.setattr(
        db,
        "_insert_columns",
        lambda conn, table, *args: inserted.append(table.name) or plain_insert(conn, table, *args),
    )
    items = [item(f"k{n}", n) for n in range(5_300)]
    assert pg_store.replace_awaiting("support", Channel.EMAIL, items, T0, T0) == 5_300
    assert (copied, inserted) == (["awaiting", "awaiting"], [])
    pg_store.save_poll("inbox", PollResult(messages=[msg(n) for n in range(300)]), T0)
    assert (copied[2:], inserted) == (["message"], [])
    # A few rows are one INSERT (a COPY would cost more round trips than it saves).
    few = [replace(msg(n), source="other") for n in range(50)]
    pg_store.save_poll("other", PollResult(messages=few), T0)
    assert (copied[3:], inserted) == ([], ["message"])
    assert len(pg_store.awaiting("support")) == 5_300
    assert len(pg_store.messages(["inbox"])) == 300
    assert len(pg_store.messages(["other"])) == 50


def test_a_first_evaluation_copies_its_breaches_and_reads_their_history_in_one_statement(
    pg_store: Store, monitor_calls: Any
) -> None:
    copied = monitor_calls(pg_store, "_copied_straight", lambda _conn, table, *_: table.name)
    opened = [Opened("support", "reply_within", f"k{n}", Level.BREACH, T0, T0) for n in range(1_200)]
    pg_store.apply_transitions(opened)
    assert copied == ["breach"]
    assert len(pg_store.open_breaches("support")) == 1_200
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(pg_store.engine, "before_cursor_execute", listener)
    try:
        among = [("reply_within", f"k{n}") for n in range(0, 2_400, 2)]
        assert pg_store.breach_history("support", among) == {
            pair for pair in among if int(pair[1][1:]) < 1_200
        }
    finally:
        event.remove(pg_store.engine, "before_cursor_execute", listener)
    assert len([s for s in statements if "FROM breach" in s]) == 1  # one array, not 500 subjects at a time


def test_statistics_are_refreshed_beside_the_save_not_before_it_returns(
    pg_store: Store, postgres_url: str
) -> None:
    """``ANALYZE`` waits here on a lock another session holds: the save returns all the same, and the
    statistics come once the lock is let go."""
    count = 6_000
    saved: list[Any] = []
    other = create_engine(postgres_url)
    try:
        with other.connect() as conn:
            conn.execute(text("LOCK TABLE message IN SHARE UPDATE EXCLUSIVE MODE"))  # ANALYZE's own lock
            try:
                poll = PollResult(messages=[msg(n) for n in range(count)])
                saver = threading.Thread(target=lambda: saved.append(pg_store.save_poll("inbox", poll, T0)))
                saver.start()
                saver.join(timeout=60)
                assert saved, "the save did not return while ANALYZE waited for its lock"
                assert saved[0].inserted == count
                assert len(pg_store.messages(["inbox"])) == count  # committed, readable
                assert not pg_store.settled(timeout=0.5)
            finally:
                conn.rollback()
        assert pg_store.settled(timeout=30)
    finally:
        other.dispose()
    with pg_store.engine.connect() as conn:
        tuples = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'message'")).scalar()
    assert tuples == count


def test_close_waits_for_a_statistics_refresh_still_running(postgres_url: str) -> None:
    reset_postgres(postgres_url)
    store = Store.open(postgres_url)
    store.upgrade()
    other = create_engine(postgres_url)
    try:
        with other.connect() as conn:
            conn.execute(text("LOCK TABLE message IN SHARE UPDATE EXCLUSIVE MODE"))
            releaser = threading.Timer(1.0, conn.rollback)
            releaser.start()
            store.save_poll("inbox", PollResult(messages=[msg(n) for n in range(6_000)]), T0)
            store.close()  # returns once ANALYZE, let go after a second, is done
            releaser.join()
            assert store.settled(timeout=0)
    finally:
        other.dispose()


def test_a_first_sync_finds_what_left_a_folder_without_reading_the_folder_back(store: Store) -> None:
    """The listing of a first sync lacks one of its messages (deleted while it was read): that message is
    recorded removed, as after any later sync, and the folder's rows are not read back to find it."""
    listings: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if " ".join(statement.split()).startswith("SELECT message.external_id FROM message"):
            listings.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    messages = [msg(n) for n in range(6)] + [msg(n, "sent") for n in range(3)]
    listed = {
        "inbox": frozenset(m.external_id for m in messages[:6] if m.external_id != "inbox/1/4"),
        "sent": frozenset(m.external_id for m in messages[6:]),
    }
    saved = store.save_poll("inbox", PollResult(messages=messages, remaining=listed), T0)
    assert (saved.inserted, saved.removed) == (9, 1)
    assert listings == []
    assert [m.external_id for m in store.removed_messages(["inbox"])] == ["inbox/1/4"]
    # A later sync with the same listing reads the folders back, and finds nothing more gone.
    again = store.save_poll("inbox", PollResult(messages=messages[:4], remaining=listed), T0)
    assert again.removed == 0
    assert len(listings) == 2


def test_a_bulk_write_converts_a_run_of_the_same_value_once() -> None:
    from monitor.store import db

    seen: list[object] = []

    def process(value: object) -> str:
        seen.append(value)
        return f"<{value}>"

    later = T0 + timedelta(seconds=1)
    values: list[object] = [T0, T0, None, None, T0, later, later]
    assert db._each_once(process, values) == [f"<{v}>" for v in values]
    assert seen == [T0, None, T0, later]  # a run of one object is converted once; a new run again
