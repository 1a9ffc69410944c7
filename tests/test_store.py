"""The store on SQLite and PostgreSQL: migrations, idempotent ingest, cursors, items, breaches."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.engine import AwaitingItem
from monitor.events import MailboxSnapshot, MessageEvent
from monitor.sources.base import PollResult
from monitor.store.db import Store
from monitor.store.migrate import current

T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


def msg(n: int, **kw: object) -> MessageEvent:
    base = MessageEvent(
        source="inbox",
        folder="inbox",
        external_id=f"INBOX/1/{n}",
        message_id=f"m{n}@customer.example",
        date=T0 + timedelta(minutes=n),
        from_addr=f"c{n}@customer.example",
        to_addrs=("support@example.com",),
        references=("a@x", "b@y"),
        flags=frozenset({"seen"}),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_migrations_reach_head_and_are_idempotent(store: Store) -> None:
    assert current(store.engine) == "0001"
    store.upgrade()
    assert current(store.engine) == "0001"


def test_ingest_is_idempotent_and_saves_cursor(store: Store) -> None:
    poll = PollResult(messages=[msg(i) for i in range(1200)], cursor={"uid": 1200})
    first = store.save_poll("inbox", poll, T0)
    assert (first.inserted, first.updated) == (1200, 0)
    again = store.save_poll("inbox", poll, T0 + timedelta(minutes=1))
    assert (again.inserted, again.updated) == (0, 0)
    assert store.load_cursor("inbox") == {"uid": 1200}
    stored = store.messages(["inbox"])
    assert len(stored) == 1200
    one = next(m for m in stored if m.external_id == "INBOX/1/7")
    assert one == msg(7)  # every field round-trips, dates stay UTC-aware
    assert one.date.tzinfo is not None


def test_flag_change_updates_the_row(store: Store) -> None:
    store.save_poll("inbox", PollResult(messages=[msg(1)], cursor={}), T0)
    changed = store.save_poll(
        "inbox", PollResult(messages=[msg(1, flags=frozenset({"seen", "answered"}))]), T0
    )
    assert (changed.inserted, changed.updated) == (0, 1)
    assert store.messages(["inbox"])[0].flags == {"seen", "answered"}
    assert store.last_ingest(["inbox"]) == T0


def test_failed_save_keeps_the_old_cursor_and_no_events(store: Store) -> None:
    store.save_poll("inbox", PollResult(messages=[msg(1)], cursor={"uid": 1}), T0)
    bad = msg(3, date=datetime(2026, 11, 16, 10, 0))  # naive: refused by the store
    with pytest.raises(Exception, match="naive"):
        store.save_poll("inbox", PollResult(messages=[msg(2), bad], cursor={"uid": 3}), T0)
    assert store.load_cursor("inbox") == {"uid": 1}
    assert [m.external_id for m in store.messages(["inbox"])] == ["INBOX/1/1"]


def test_snapshots_upsert(store: Store) -> None:
    snap = MailboxSnapshot("inbox", "inbox", T0, total=5, unseen=2, unanswered=3, oldest=T0)
    store.save_poll("inbox", PollResult(snapshots=[snap]), T0)
    store.save_poll("inbox", PollResult(snapshots=[replace(snap, total=4)]), T0)
    (row,) = store.mailbox_counts()
    assert (row.total, row.unseen, row.unanswered, row.oldest) == (4, 2, 3, T0)


def item(key: str, minutes: int, responded: int | None = None) -> AwaitingItem:
    return AwaitingItem(
        team="support",
        channel="email",
        key=key,
        conversation=key,
        customer=f"{key}@customer.example",
        received_at=T0 + timedelta(minutes=minutes),
        responded_at=None if responded is None else T0 + timedelta(minutes=responded),
    )


def test_replace_awaiting_writes_only_changes(store: Store) -> None:
    assert store.replace_awaiting("support", "email", [item("a", 0), item("b", 5)], None, T0) == 2
    assert store.replace_awaiting("support", "email", [item("a", 0), item("b", 5)], None, T0) == 0
    # b answered, c new, a gone.
    assert store.replace_awaiting("support", "email", [item("b", 5, 30), item("c", 9)], None, T0) == 3
    rows = store.awaiting("support")
    assert [(r.item_key, r.responded_at) for r in rows] == [("b", T0 + timedelta(minutes=30)), ("c", None)]
    assert [r.item_key for r in store.awaiting("support", open_only=True)] == ["c"]
    (summary,) = store.awaiting_summary()
    assert summary == ("support", "email", 1, T0 + timedelta(minutes=9))


def test_replace_awaiting_leaves_items_before_the_window(store: Store) -> None:
    store.replace_awaiting("support", "email", [item("old", 0), item("new", 60)], None, T0)
    store.replace_awaiting("support", "email", [item("new", 60)], T0 + timedelta(minutes=30), T0)
    assert {r.item_key for r in store.awaiting("support")} == {"old", "new"}


def test_breach_transitions_and_counts(store: Store) -> None:
    store.apply_transitions(
        [
            {
                "op": "open",
                "team": "support",
                "rule": "reply_within",
                "subject": "a",
                "level": "warning",
                "at": T0,
            },
            {
                "op": "open",
                "team": "support",
                "rule": "reply_within",
                "subject": "b",
                "level": "breach",
                "at": T0,
            },
        ]
    )
    assert store.breach_counts() == [("support", "reply_within", 1, 1)]
    rows = {r.subject: r for r in store.open_breaches("support")}
    store.apply_transitions([{"op": "escalate", "id": rows["a"].id, "at": T0 + timedelta(hours=1)}])
    assert store.breach_counts() == [("support", "reply_within", 2, 2)]
    store.apply_transitions([{"op": "resolve", "id": rows["b"].id, "at": T0 + timedelta(hours=2)}])
    assert store.breach_counts() == [("support", "reply_within", 1, 2)]
    assert store.breach_subjects("support", "reply_within", ["a", "b", "c"]) == {"a", "b"}


def test_response_histogram_is_cumulative(store: Store) -> None:
    store.replace_awaiting("support", "email", [item("a", 0, 10), item("b", 0, 100), item("c", 0)], None, T0)
    ids = {row.item_key: row.id for row in store.awaiting("support")}
    store.set_timings([(ids["a"], None, 600.0), (ids["b"], None, 6000.0), (ids["c"], T0, None)])
    ((team, channel, responder, buckets, count, total),) = store.response_histogram([900, 3600, 7200])
    assert (team, channel, responder) == ("support", "email", None)
    assert buckets == [1, 1, 2]
    assert (count, total) == (2, 6600.0)
    assert store.awaiting("support", open_only=True)[0].due_at == T0


def test_only_items_whose_verdict_can_change_are_evaluated_again(store: Store) -> None:
    items = [item("answered", 0, 10), item("open", 5), item("late", 0, 500)]
    store.replace_awaiting("support", "email", items, None, T0)
    store.apply_transitions(
        [
            {
                "op": "open",
                "team": "support",
                "rule": "reply_within",
                "subject": "late",
                "level": "breach",
                "at": T0,
            }
        ]
    )
    window = T0 - timedelta(days=60)
    assert {r.item_key for r in store.awaiting_to_evaluate("support", window, None)} == {
        "answered",
        "open",
        "late",
    }
    later = T0 + timedelta(minutes=1)
    assert {r.item_key for r in store.awaiting_to_evaluate("support", window, later)} == {"open", "late"}
    # Changed at a later rebuild: evaluated again by the next run after that.
    store.replace_awaiting(
        "support", "email", [item("answered", 0, 20), *items[1:]], None, later + timedelta(minutes=1)
    )
    assert {r.item_key for r in store.awaiting_to_evaluate("support", window, later)} == {
        "answered",
        "open",
        "late",
    }


def test_8bit_header_text_is_stored(store: Store) -> None:
    from monitor.mail.event import parse_event

    raw = (
        b"Message-ID: <u@x>\nFrom: J\xfcrgen <j@x.example>\nSubject: Gr\xc3\xbc\xc3\x9fe\n"
        b"Date: Mon, 16 Nov 2026 10:00 +0000\n\n"
    )
    event = parse_event(raw, source="inbox", folder="inbox", external_id="INBOX/1/1")
    store.save_poll("inbox", PollResult(messages=[event]), T0)
    (stored,) = store.messages(["inbox"])
    assert (stored.subject, stored.from_name) == ("Grüße", "Jürgen")
