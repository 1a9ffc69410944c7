"""``/metrics`` reads the store again only when something was committed through it, its config changed or
its figures are older than ``STORE_READS_MAX_AGE``; a scrape in between asks the database nothing.

Checked on SQLite and PostgreSQL by counting the statements the store's engine runs, and by the values:
a store write shows at the very next scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from monitor.config import validate
from monitor.evaluate import Evaluator
from monitor.events import MailboxSnapshot, MessageEvent
from monitor.exporters.prometheus import STORE_READS_MAX_AGE, DaemonState, ReplywatchCollector
from monitor.sources.base import PollResult
from monitor.store.db import Store
from monitor.supervisor import Supervisor
from tests.store_fixtures import store  # noqa: F401 - fixture

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def config(url: str) -> Any:
    return validate(
        {
            "store": {"url": url},
            "calendars": {"office": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:00"}}},
            "sources": {"mail": {"kind": "mbox", "path": "/dev/null"}},
            "teams": {
                "support": {
                    "calendar": "office",
                    "addresses": ["support@example.com"],
                    "sources": ["mail"],
                    "rules": [{"kind": "reply_within", "within": "8h"}],
                }
            },
        },
        check_secrets=False,
    ).config


def customer(n: int, at: datetime) -> MessageEvent:
    return MessageEvent(
        source="mail", folder="inbox", external_id=f"INBOX/1/{n}", message_id=f"m{n}@customer.example",
        date=at, from_addr=f"c{n}@customer.example", to_addrs=("support@example.com",), subject=f"Order {n}",
    )  # fmt: skip


@pytest.fixture
def scrape(store: Store) -> Iterator[tuple[Any, Clock, list[str]]]:  # noqa: F811 - fixture
    cfg = config(str(store.engine.url))
    clock = Clock()
    registry = CollectorRegistry()
    state = DaemonState(jobs=Supervisor(clock), clock=clock)
    registry.register(ReplywatchCollector(store, lambda: cfg, state))
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(store.engine, "before_cursor_execute", listener)

    def read() -> dict[str, float]:
        body = generate_latest(registry).decode()
        return {
            s.name + str(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
        }

    yield read, clock, statements
    event.remove(store.engine, "before_cursor_execute", listener)


AWAITING = "replywatch_awaiting[('channel', 'email'), ('team', 'support')]"


def test_scrapes_between_changes_ask_the_store_nothing(store: Store, scrape: Any) -> None:  # noqa: F811
    read, clock, statements = scrape
    assert read()[AWAITING] == 0
    assert statements  # the first scrape reads the store
    statements.clear()
    clock.now += timedelta(seconds=5)
    assert read()[AWAITING] == 0
    assert statements == []


def test_a_commit_shows_at_the_next_scrape(store: Store, scrape: Any) -> None:  # noqa: F811
    read, clock, statements = scrape
    assert read()[AWAITING] == 0
    store.save_poll("mail", PollResult([customer(1, NOW - timedelta(hours=1))]), NOW)
    Evaluator(store, config(str(store.engine.url))).run(NOW)
    statements.clear()
    values = read()
    assert values[AWAITING] == 1
    assert statements  # read again after the commits
    oldest = "replywatch_awaiting_oldest_business_seconds[('channel', 'email'), ('team', 'support')]"
    assert values[oldest] == 3600
    statements.clear()
    clock.now += timedelta(seconds=10)
    values = read()
    assert statements == []
    assert values[oldest] == 3610  # the wait grows at every scrape without a read


def test_figures_older_than_the_limit_are_read_again(store: Store, scrape: Any) -> None:  # noqa: F811
    read, clock, statements = scrape
    read()
    other = Store.open(str(store.engine.url))  # another process's writes: not seen through this store
    try:
        other.save_poll("mail", PollResult([customer(2, NOW - timedelta(hours=2))]), NOW)
        Evaluator(other, config(str(store.engine.url))).run(NOW)
    finally:
        other.close()
    clock.now += STORE_READS_MAX_AGE - timedelta(seconds=1)
    assert read()[AWAITING] == 0
    statements.clear()
    clock.now += timedelta(seconds=1)
    assert read()[AWAITING] == 1
    assert statements
    statements.clear()
    clock.now -= timedelta(hours=1)  # a clock that went back reads again too
    read()
    assert statements


def test_a_scrape_while_a_commit_is_under_way_keeps_no_old_figures(store: Store, scrape: Any) -> None:  # noqa: F811
    read = scrape[0]
    total = (
        "replywatch_mailbox_messages"
        "[('folder', 'inbox'), ('mailbox', 'mail'), ('state', 'total'), ('team', 'support')]"
    )
    store.save_poll("mail", PollResult(snapshots=[MailboxSnapshot("mail", "inbox", NOW, 4, 0, 0)]), NOW)
    assert read()[total] == 4
    during: list[float] = []

    def scrape_in_the_gap(_: Any) -> None:  # after the store's own commit event, before the driver commits
        during.append(read()[total])

    event.listen(store.engine, "commit", scrape_in_the_gap)
    try:  # one commit
        store.save_poll("mail", PollResult(snapshots=[MailboxSnapshot("mail", "inbox", NOW, 5, 0, 0)]), NOW)
    finally:
        event.remove(store.engine, "commit", scrape_in_the_gap)
    assert during == [4]  # a scrape read the store before the new count was committed
    assert read()[total] == 5


def test_a_scrape_reads_the_store_through_one_connection(store: Store, scrape: Any) -> None:  # noqa: F811
    """A dozen reads, one checkout from the pool (on PostgreSQL one ping and one rollback, not one each)."""
    read, _clock, statements = scrape
    store.save_poll("mail", PollResult([customer(1, NOW - timedelta(hours=1))]), NOW)
    Evaluator(store, config(str(store.engine.url))).run(NOW)
    checkouts: list[object] = []
    listener = lambda *args: checkouts.append(args[1])  # noqa: E731 - (dbapi_connection, record, proxy)
    event.listen(store.engine, "checkout", listener)
    try:
        statements.clear()
        assert read()[AWAITING] == 1
        assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) >= 8
        assert len(checkouts) == 1
        # Outside a scrape, each read still takes a connection of its own.
        store.awaiting_summary()
        store.breach_counts()
        assert len(checkouts) == 3
    finally:
        event.remove(store.engine, "checkout", listener)


def test_reads_in_a_block_share_its_connection_and_streamed_rows_keep_their_own(store: Store) -> None:  # noqa: F811
    store.save_poll("mail", PollResult([customer(n, NOW - timedelta(hours=n)) for n in range(1, 4)]), NOW)
    Evaluator(store, config(str(store.engine.url))).run(NOW)
    checkouts: list[object] = []
    listener = lambda *args: checkouts.append(args[1])  # noqa: E731
    event.listen(store.engine, "checkout", listener)
    try:
        with store.reading():
            with store.reading():  # nested: the same connection
                assert [row[2] for row in store.awaiting_summary()] == [3]
            # Streamed rows interleaved with other reads: on a connection of their own.
            keys = []
            for row in store.awaiting_to_evaluate("support", NOW - timedelta(days=1), None):
                keys.append(row.item_key)
                assert store.oldest_open("support") == NOW - timedelta(hours=3)
            assert len(keys) == 3
        assert len(checkouts) == 2
    finally:
        event.remove(store.engine, "checkout", listener)


def test_reads_in_a_block_see_what_was_committed_between_them(store: Store) -> None:  # noqa: F811
    """A commit made while a block's reads go on shows at its next read, as it would on a connection of its
    own: on PostgreSQL even where the server's default isolation is REPEATABLE READ."""
    if store.dialect == "postgresql":
        store.engine.dispose()

        @event.listens_for(store.engine, "connect")
        def repeatable_read(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.autocommit = True
            dbapi_connection.execute("SET default_transaction_isolation = 'repeatable read'")
            dbapi_connection.autocommit = False

    with store.reading():
        assert store.load_cursor("mail") is None
        writer = threading.Thread(target=store.save_poll, args=("mail", PollResult(cursor={"n": 1}), NOW))
        writer.start()
        writer.join()
        assert store.load_cursor("mail") == {"n": 1}
    if store.dialect == "postgresql":  # the connections really were REPEATABLE READ
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "repeatable read"
