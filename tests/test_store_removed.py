"""The store's side of removed mail, on SQLite and PostgreSQL: removals recorded with the cursor, a message
seen again is no longer removed, removed items are neither open nor decided, and are counted."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event as sqlalchemy_event

from monitor.awaiting import AwaitingItem, Response
from monitor.evaluate import Evaluator
from monitor.events import Channel, MessageEvent
from monitor.sources.base import PollResult
from monitor.store.db import Store, Timing
from tests.test_metrics_store_reads import config as team_config

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def event(n: int, folder: str = "inbox") -> MessageEvent:
    return MessageEvent(
        source="graph",
        folder=folder,
        external_id=f"support@example.com/AAMk{n}",
        message_id=f"m{n}@customer.example",
        date=NOW - timedelta(hours=n),
        from_addr=f"c{n}@customer.example",
        to_addrs=("support@example.com",),
    )


def test_removed_ids_are_recorded_with_the_cursor_and_a_message_seen_again_comes_back(store: Store) -> None:
    store.save_poll("graph", PollResult(messages=[event(1), event(2)], cursor={"delta": "a"}), NOW)
    later = NOW + timedelta(minutes=1)
    # Graph's delta reports m1 "@removed" (deleted or moved out of the folder).
    saved = store.save_poll("graph", PollResult(removed=[event(1).external_id], cursor={"delta": "b"}), later)
    assert (saved.inserted, saved.updated, saved.removed) == (0, 0, 1)
    assert store.load_cursor("graph") == {"delta": "b"}
    assert store.engine_stamp(["graph"]) == later
    assert {m.message_id: m.removed_at for m in store.messages(["graph"])} == {
        "m1@customer.example": later,
        "m2@customer.example": None,
    }
    # Reported again (already removed, or an id never stored): nothing changes, the stamp stays.
    again = store.save_poll(
        "graph",
        PollResult(removed=[event(1).external_id, "support@example.com/unknown"]),
        later + timedelta(1),
    )
    assert again.removed == 0 and store.engine_stamp(["graph"]) == later

    # Moved back: the same id is seen again and is no longer removed.
    back = later + timedelta(minutes=5)
    saved = store.save_poll("graph", PollResult(messages=[event(1)]), back)
    assert saved.updated == 1
    assert all(m.removed_at is None for m in store.messages(["graph"]))
    assert store.engine_stamp(["graph"]) == back


def item(key: str, received: datetime, **fields: object) -> AwaitingItem:
    return AwaitingItem(
        team="support",
        channel=Channel.EMAIL,
        key=key,
        conversation=key,
        customer=f"{key}@customer.example",
        received_at=received,
        **fields,  # type: ignore[arg-type]
    )


def test_removed_items_are_not_open_not_decided_and_are_counted(store: Store) -> None:
    store.save_poll("graph", PollResult(messages=[event(1), event(2), event(3)]), NOW)
    items = [
        item("m1@customer.example", NOW - timedelta(hours=1)),  # waiting
        item("m2@customer.example", NOW - timedelta(hours=2), removed_at=NOW - timedelta(minutes=30)),
        item(
            "m3@customer.example",
            NOW - timedelta(hours=3),
            response=Response(NOW - timedelta(hours=2), "r3@example.com"),
        ),
    ]
    assert store.replace_awaiting("support", Channel.EMAIL, items, None, NOW) == 3
    rows = {row.item_key: row for row in store.awaiting("support")}
    assert rows["m2@customer.example"].removed_at == NOW - timedelta(minutes=30)
    assert [r.item_key for r in store.awaiting("support", open_only=True)] == ["m1@customer.example"]
    assert store.awaiting_summary() == [("support", "email", 1, NOW - timedelta(hours=1))]
    assert store.oldest_open("support") == NOW - timedelta(hours=1)
    assert store.unanswered_by_folder("support", ["graph"]) == {("graph", "inbox"): 1}
    assert store.removed_counts() == [("support", "email", 1)]
    assert store.removed_since("support", NOW - timedelta(hours=1)) == 1
    assert store.removed_since("support", NOW) == 0
    # All three past a deadline an hour ago: the waiting one is late, the answered one on time, and the
    # removed one, removed half an hour after its deadline, a miss (deleting it does not hide it).
    store.set_timings([Timing(row.id, NOW - timedelta(hours=1), None, None) for row in rows.values()])
    assert store.on_time_counts(NOW - timedelta(days=1), NOW) == [("support", "email", 3, 1)]
    # Removed before its deadline: neither answered nor late, not decided.
    store.set_timings([Timing(rows["m2@customer.example"].id, NOW, None, None)])
    assert store.on_time_counts(NOW - timedelta(days=1), NOW) == [("support", "email", 2, 1)]
    # Answered later: removed_at goes (an answer wins), the row changes once.
    answered = item(
        "m2@customer.example",
        NOW - timedelta(hours=2),
        response=Response(NOW - timedelta(minutes=10), "r2@example.com"),
    )
    assert store.replace_awaiting("support", Channel.EMAIL, [items[0], answered, items[2]], None, NOW) == 1
    assert store.removed_counts() == []


def _counting_joins(store: Store) -> list[str]:
    """The statements that count unanswered mail, as ``store`` runs them from now on."""
    counted: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "UNION" in statement:
            counted.append(statement)

    sqlalchemy_event.listen(store.engine, "before_cursor_execute", note)
    return counted


def test_unanswered_mail_is_counted_again_only_after_a_change(store: Store) -> None:
    """Every evaluation and every scrape asks for the unanswered count: it is kept until this store writes
    messages the engine reads or awaiting items, or another process moves the engine stamp."""
    store.save_poll("graph", PollResult(messages=[event(1), event(2)]), NOW)
    items = [item("m1@customer.example", NOW - timedelta(hours=1)), item("m2@customer.example", NOW)]
    store.replace_awaiting("support", Channel.EMAIL, items, None, NOW)
    counted = _counting_joins(store)
    assert store.unanswered_by_folder("support", ["graph"]) == {("graph", "inbox"): 2}
    assert store.unanswered_by_folder("support", ["graph"]) == {("graph", "inbox"): 2}
    assert len(counted) == 1
    # A flag alone changes nothing the count reads: kept.
    store.save_poll("graph", PollResult(messages=[replace(event(1), flags=frozenset({"\\Seen"}))]), NOW)
    assert store.unanswered_by_folder("support", ["graph"]) == {("graph", "inbox"): 2}
    assert len(counted) == 1
    # A message moved to another folder at the same instant (the stamp does not move): counted again.
    store.save_poll("graph", PollResult(messages=[event(2, folder="archive")]), NOW)
    assert store.unanswered_by_folder("support", ["graph"]) == {
        ("graph", "inbox"): 1,
        ("graph", "archive"): 1,
    }
    assert len(counted) == 2
    # The rebuild answered m1: counted again.
    answered = replace(items[0], response=Response(NOW, "r1@example.com"))
    store.replace_awaiting("support", Channel.EMAIL, [answered, items[1]], None, NOW)
    assert store.unanswered_by_folder("support", ["graph"]) == {("graph", "archive"): 1}
    assert len(counted) == 3
    # Another process stored a move (the engine stamp moved): counted again.
    other = Store.open(store.engine.url.render_as_string(hide_password=False))
    try:
        other.save_poll("graph", PollResult(messages=[event(2)]), NOW + timedelta(minutes=1))
    finally:
        other.close()
    assert store.unanswered_by_folder("support", ["graph"]) == {("graph", "inbox"): 1}
    assert len(counted) == 4
    # What a caller does with the answer is its own: the kept count is not changed through it.
    store.unanswered_by_folder("support", ["graph"]).clear()
    assert store.unanswered_by_folder("support", ["graph"]) == {("graph", "inbox"): 1}


def test_a_scrape_while_a_rebuild_is_judged_finds_the_unanswered_count_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The evaluation counts right after its rebuild: a scrape that comes while the items are read and
    judged (the rest of a first evaluation) does not take turns with it to count again."""
    config = team_config(store.engine.url.render_as_string(hide_password=False))
    store.save_poll("mail", PollResult(messages=[replace(event(n), source="mail") for n in (1, 2)]), NOW)
    counted = _counting_joins(store)
    scraped: list[tuple[int, dict[tuple[str, str], int], int]] = []
    read_rows = store.awaiting_to_evaluate

    def scraped_meanwhile(*args: Any) -> Any:
        before = len(counted)
        scraped.append((before, store.unanswered_by_folder("support", ["mail"]), len(counted)))
        return read_rows(*args)

    monkeypatch.setattr(store, "awaiting_to_evaluate", scraped_meanwhile)
    Evaluator(store, config).run(NOW)
    # Counted once, by the evaluation before it read its items; the scrape found that count kept.
    assert scraped == [(1, {("mail", "inbox"): 2}, 1)]
    assert len(counted) == 1
