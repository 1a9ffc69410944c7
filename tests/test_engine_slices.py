"""The daemon's rebuild in slices gives the same items as the engine over the same messages held at once.

Checked on the store (SQLite and PostgreSQL) against :func:`build_awaiting`: on randomized mailboxes full of
copies across folders and sources, archive copies, removals, reused subjects, thread ids, messages without a
Message-ID and equal dates; on every golden engine case; with the whole window kept from the first read and
with everything read again in slices of a few messages.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import LoadedConfig, validate
from monitor.engine import build_awaiting
from monitor.engine.slices import Row, build_awaiting_in_slices
from monitor.evaluate import stored_team_awaiting, team_awaiting, team_context
from monitor.events import MessageEvent
from monitor.sources.base import PollResult
from monitor.store.db import Store
from tests.test_engine_cases import CASES, _dt, load_messages
from tests.test_engine_memory import TEAM, mailbox

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def save(store: Store, messages: Sequence[MessageEvent]) -> None:
    """Store ``messages`` per source, with their removals as the store records them."""
    for source in sorted({m.source for m in messages}):
        mine = [m for m in messages if m.source == source]
        store.save_poll(source, PollResult([replace(m, removed_at=None) for m in mine]), NOW)
        for at in sorted({m.removed_at for m in mine if m.removed_at is not None}):
            gone = [m.external_id for m in mine if m.removed_at == at]
            store.save_poll(source, PollResult(removed=gone), at)


def with_equal_dates(messages: list[MessageEvent], seed: int) -> list[MessageEvent]:
    """Many messages share a date to the second: the order among them is the engine's, not the store's."""
    rng = random.Random(seed)
    same = [replace(m, date=m.date.replace(hour=9, minute=0)) if rng.random() < 0.3 else m for m in messages]
    return same[::-1]  # stored newest first: ties come back from the store in the wrong order


class Counting:
    """A window that counts what it was asked for."""

    def __init__(self, store: Store, sources: Sequence[str]) -> None:
        self.window = store.window(sources)
        self.rows_read = 0

    def count(self) -> int:
        return self.window.count()

    def in_date_order(self) -> Iterator[Row]:
        return self.window.in_date_order()

    def copies(self) -> list[Row]:
        return self.window.copies()

    def by_row(self, rows: Sequence[int]) -> Iterator[Row]:
        self.rows_read += len(rows)
        return self.window.by_row(rows)


@pytest.mark.parametrize("seed", range(3))
def test_slices_give_the_items_of_the_whole_window(store: Store, seed: int) -> None:
    messages = with_equal_dates(mailbox(seed, 1_200), seed)
    save(store, messages)
    stored = store.messages(["a", "b"])
    assert len(stored) > len(messages) * 0.95  # a removed copy of a message its folder still holds goes
    expected = build_awaiting(stored, TEAM, reasons=False).items
    assert len(expected) > 100
    kept = Counting(store, ["a", "b"])
    assert build_awaiting_in_slices(kept, TEAM) == expected
    assert kept.rows_read == 0  # a small window is read once
    sliced = Counting(store, ["a", "b"])
    assert build_awaiting_in_slices(sliced, TEAM, hold=100, slice_size=7) == expected
    assert sliced.rows_read > len(messages) // 2  # read again, a few conversations at a time


def golden_cases() -> Iterator[tuple[str, LoadedConfig, list[MessageEvent], dict[str, Any]]]:
    """Each golden engine case: its name, config, messages and events file."""
    cases = sorted(p for p in CASES.iterdir() if (p / "events.yaml").exists())
    assert len(cases) >= 15
    for case in cases:
        config = yaml.safe_load((case / "config.yaml").read_text())
        events = yaml.safe_load((case / "events.yaml").read_text())
        yield case.name, validate(config, check_secrets=False), load_messages(events["messages"]), events


def test_every_golden_case_alike(tmp_path: Path) -> None:
    for n, (name, loaded, messages, events) in enumerate(golden_cases()):
        store = Store.open(f"sqlite:///{tmp_path / f'{n}.db'}")
        store.upgrade()
        try:
            save(store, messages)
            for team, team_cfg in loaded.config.teams.items():
                mail = [s for s in team_cfg.sources if loaded.config.sources[s].channel.value == "email"]
                mine = store.messages(mail)
                expected = team_awaiting(loaded.config, team, mine, [], reasons=False).items
                window = store.window(mail)
                assert stored_team_awaiting(loaded.config, team, window, []) == expected, name
                context = team_context(loaded.config, team)
                assert build_awaiting_in_slices(window, context, hold=0, slice_size=1) == expected, name
        finally:
            store.close()
        assert _dt(events["now"])  # every case names its moment


def test_a_window_starts_at_its_date(store: Store) -> None:
    messages = mailbox(7, 600)
    save(store, messages)
    since = min(m.date for m in messages) + timedelta(days=20)
    inside = store.messages(["a", "b"], since)
    assert 0 < len(inside) < len(messages)
    assert build_awaiting_in_slices(store.window(["a", "b"], since), TEAM, hold=0, slice_size=50) == (
        build_awaiting(inside, TEAM, reasons=False).items
    )


def test_an_answer_in_the_same_second_as_the_question(store: Store) -> None:
    at = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    question = MessageEvent(
        source="a", folder="inbox", external_id="inbox/1", message_id="q@customer.example", date=at,
        from_addr="c1@customer.example", to_addrs=("support@example.org",), subject="Order",
    )  # fmt: skip
    answer = MessageEvent(
        source="a", folder="sent", external_id="sent/1", message_id="a@example.org", date=at,
        from_addr="ann@example.org", to_addrs=("c1@customer.example",), subject="Re: Order",
        in_reply_to="q@customer.example",
    )  # fmt: skip
    save(store, [answer, question])  # the answer's row first
    (item,) = build_awaiting_in_slices(store.window(["a"]), TEAM, hold=0)
    assert item.response is not None and item.response.at == at
    assert [item] == build_awaiting([answer, question], TEAM).items


def test_a_window_reads_one_snapshot(store: Store) -> None:
    def message(n: int) -> MessageEvent:
        return MessageEvent(
            source="a", folder="inbox", external_id=f"inbox/{n}", message_id=f"m{n}@customer.example",
            date=NOW - timedelta(hours=n), from_addr=f"c{n}@customer.example",
            to_addrs=("support@example.org",), subject=f"Order {n}",
        )  # fmt: skip

    save(store, [message(1), message(2)])
    other = Store.open(str(store.engine.url))
    try:
        with store.window(["a"]) as window:
            assert window.count() == 2
            # A poll writes between the two reads of a rebuild: a new message, and a removal.
            other.save_poll("a", PollResult([message(3)]), NOW)
            other.save_poll("a", PollResult(removed=["inbox/1"]), NOW)
            rows = list(window.in_date_order())
            assert [event.external_id for _, event in rows] == ["inbox/2", "inbox/1"]
            again = dict(window.by_row([row for row, _ in rows]))
            assert all(event.removed_at is None for event in again.values())
        now = store.messages(["a"])
        assert len(now) == 3
        assert [m.removed_at is not None for m in sorted(now, key=lambda m: m.external_id)] == [
            True,
            False,
            False,
        ]
    finally:
        other.close()


def test_copies_that_tie_are_kept_alike_whatever_the_order(store: Store) -> None:
    """One customer message in two sources, same date, same folder role, only one of them carrying the
    source's thread id that the team's answer shares: the copy kept may not depend on the order of rows."""
    at = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    question = {
        "message_id": "q@customer.example", "date": at, "from_addr": "c1@customer.example",
        "to_addrs": ("support@example.org",), "subject": "Order 42",
    }  # fmt: skip
    in_gmail = MessageEvent(source="gmail", folder="inbox", external_id="1", thread_id="T1", **question)
    in_other = MessageEvent(source="other", folder="inbox", external_id="1", **question)
    answer = MessageEvent(
        source="gmail", folder="sent", external_id="2", message_id="a@example.org",
        date=at + timedelta(hours=1), from_addr="ann@example.org", to_addrs=("c1@customer.example",),
        subject="Your parcel", thread_id="T1",
    )  # fmt: skip
    expected = build_awaiting([in_gmail, in_other, answer], TEAM).items
    assert build_awaiting([in_other, in_gmail, answer], TEAM).items == expected
    store.save_poll("other", PollResult([in_other]), at)
    store.save_poll("gmail", PollResult([answer, in_gmail]), at)
    # A later poll updates one copy's row (PostgreSQL then returns the rows in another order).
    store.save_poll("gmail", PollResult([replace(in_gmail, flags=frozenset({"seen"}))]), at)
    stored = store.messages(["gmail", "other"])
    assert build_awaiting(stored, TEAM, reasons=False).items == expected
    with store.window(["gmail", "other"]) as window:
        assert build_awaiting_in_slices(window, TEAM) == expected


def test_a_read_left_unfinished_is_closed_with_its_window(store: Store) -> None:
    save(store, mailbox(1, 200))
    count = len(store.messages(["a", "b"]))
    with pytest.raises(RuntimeError), store.window(["a", "b"]) as window:
        old = window.in_date_order()
        next(old)
        raise RuntimeError("a rebuild fails half way")
    with store.window(["a", "b"]) as window:
        new = window.in_date_order()
        next(new)
        old.close()  # the abandoned read is finished only now (on PostgreSQL: on the same pooled connection)
        assert 1 + len(list(new)) == count
