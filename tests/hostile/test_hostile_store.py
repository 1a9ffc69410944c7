"""Column limits never stop ingest (issue 7): long ids, addresses, flags and keys on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.awaiting import AwaitingItem, Response
from monitor.events import Channel
from monitor.mail.event import parse_event
from monitor.sources.base import PollResult
from monitor.store.db import Store

T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


def test_messages_with_absurd_ids_addresses_and_flags_are_stored(store: Store) -> None:
    local = "a" * 700
    raw = (
        f"Message-ID: <{'m' * 613}@example.com>\r\nFrom: Ann <{local}@customer.example>\r\n"
        f"References: <{'r' * 30_000}@example.com>\r\nThread-Index: {'T' * 5000}\r\n\r\n"
    ).encode()
    event = parse_event(
        raw,
        source="inbox",
        folder="inbox",
        external_id="INBOX/1/" + "9" * 600,
        internal_date=T0,
        flags=[f"$keyword{i}" for i in range(100)],
    )
    result = PollResult(messages=[event], cursor={"n": 1})
    store.save_poll("inbox", result, T0)
    (stored,) = store.messages(["inbox"])
    assert stored.from_addr == f"{local}@customer.example"
    assert stored.message_id == event.message_id
    assert len(stored.flags) == 100


def test_awaiting_items_with_long_keys_and_customers_are_stored(store: Store) -> None:
    key = "k" * 700
    long_item = AwaitingItem(
        team="support",
        channel=Channel.EMAIL,
        key=key,
        conversation=key,
        customer="c" * 400 + "@customer.example",
        received_at=T0,
        response=Response(T0 + timedelta(hours=1), "r" * 700),
    )
    assert store.replace_awaiting("support", Channel.EMAIL, [long_item], None, T0) == 1
    (stored,) = store.awaiting("support")
    assert stored.item_key == key and stored.customer == long_item.customer
    assert stored.response_id == "r" * 700
