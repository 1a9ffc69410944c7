"""A source's first sync held for the rebuild that follows: the same events, the same items as the store's
read-back, and held only while it is exactly what the store holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import monitor.store.held as held_mod
from monitor.config import validate
from monitor.engine.slices import build_awaiting_in_slices
from monitor.evaluate import Evaluator, stored_team_awaiting
from monitor.events import MessageEvent
from monitor.sources.base import PollResult
from monitor.store.db import Store
from monitor.store.held import HeldWindow, as_stored
from tests.test_engine_memory import TEAM, mailbox
from tests.test_engine_slices import golden_cases, with_equal_dates

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def first_sync(store: Store, messages: Sequence[MessageEvent], sources: Sequence[str] = ()) -> None:
    """Each source's messages saved as its first poll (a message is stored as not removed); ``sources``
    that have none too."""
    for source in sorted({m.source for m in messages} | set(sources)):
        store.save_poll(source, PollResult([m for m in messages if m.source == source]), NOW)


def by_id(events: Sequence[MessageEvent]) -> list[MessageEvent]:
    return sorted(events, key=lambda e: (e.source, e.external_id))


@pytest.mark.parametrize("seed", range(3))
def test_a_held_first_sync_reads_as_the_store(store: Store, seed: int) -> None:
    messages = with_equal_dates(mailbox(seed, 1_200), seed)
    first_sync(store, messages)
    held = store.rebuild_window(["a", "b"])
    assert isinstance(held, HeldWindow)
    stored = store.window(["a", "b"])
    assert held.count() == stored.count() == len(messages)
    assert by_id(held.all()) == by_id(stored.all())
    assert sorted(e.external_id for _, e in held.copies()) == sorted(
        e.external_id for _, e in stored.copies()
    )
    assert len(held.copies()) > 20  # the mailbox holds one message in several folders
    dates = [e.date for _, e in held.in_date_order()]
    assert dates == sorted(dates)
    expected = build_awaiting_in_slices(stored, TEAM)
    assert len(expected) > 100
    assert build_awaiting_in_slices(held, TEAM) == expected
    assert build_awaiting_in_slices(held, TEAM, hold=0, slice_size=7) == expected


def test_a_held_window_starts_at_its_date(store: Store) -> None:
    messages = mailbox(7, 600)
    first_sync(store, messages)
    since = min(m.date for m in messages) + timedelta(days=20)
    held = store.rebuild_window(["a", "b"], since)
    assert isinstance(held, HeldWindow)
    assert 0 < held.count() < len(messages)
    assert by_id(held.all()) == by_id(store.messages(["a", "b"], since))
    assert build_awaiting_in_slices(held, TEAM) == build_awaiting_in_slices(
        store.window(["a", "b"], since), TEAM
    )


def test_every_golden_case_alike_from_a_held_first_sync(tmp_path: Path) -> None:
    for n, (name, loaded, messages, _) in enumerate(golden_cases()):
        store = Store.open(f"sqlite:///{tmp_path / f'{n}.db'}")
        store.upgrade()
        try:
            first_sync(store, messages, list(loaded.config.sources))
            for team, team_cfg in loaded.config.teams.items():
                mail = [s for s in team_cfg.sources if loaded.config.sources[s].channel.value == "email"]
                window = store.rebuild_window(mail)
                assert isinstance(window, HeldWindow), name
                expected = stored_team_awaiting(loaded.config, team, store.window(mail), [])
                assert stored_team_awaiting(loaded.config, team, window, []) == expected, name
        finally:
            store.close()


def test_values_the_store_splits_otherwise_are_held_as_it_gives_them_back(store: Store) -> None:
    odd = MessageEvent(
        source="a",
        folder="inbox",
        external_id="1",
        message_id="m1@x",
        date=NOW - timedelta(hours=2),
        from_addr="c@customer.example",
        to_addrs=('"John Doe"@example.org', "support@example.org"),
        cc_addrs=("", "x@example.org"),
        references=("r1@x r2@x",),
        flags=frozenset({"seen", "my label"}),
        removed_at=NOW,
    )
    plain = replace(odd, external_id="2", message_id="m2@x", to_addrs=("support@example.org",), cc_addrs=(),
                    references=(), flags=frozenset({"seen"}), removed_at=None)  # fmt: skip
    assert as_stored(plain) is plain
    first_sync(store, [odd, plain])
    held = store.rebuild_window(["a"])
    assert isinstance(held, HeldWindow)
    assert by_id(held.all()) == by_id(store.window(["a"]).all())
    assert as_stored(odd).to_addrs == ('"John', 'Doe"@example.org', "support@example.org")
    assert as_stored(odd).cc_addrs == ("x@example.org",)


def test_held_only_while_it_is_what_the_store_holds(store: Store) -> None:
    messages = mailbox(3, 300)
    a = [m for m in messages if m.source == "a"]
    first_sync(store, messages)
    assert isinstance(store.rebuild_window(["a"]), HeldWindow)
    assert isinstance(store.rebuild_window(["a", "b"]), HeldWindow)
    # The next poll of a source, even one that changes nothing, lets go of it before it writes.
    store.save_poll("a", PollResult([replace(a[0], subject="changed")]), NOW)
    assert not isinstance(store.rebuild_window(["a"]), HeldWindow)
    assert not isinstance(store.rebuild_window(["a", "b"]), HeldWindow)  # every source or none
    assert isinstance(store.rebuild_window(["b"]), HeldWindow)
    # A source that had rows before is not a first sync: read back from the store.
    store.save_poll("a", PollResult([replace(a[1], subject="changed too")]), NOW)
    assert not isinstance(store.rebuild_window(["a"]), HeldWindow)
    store.held.release()
    assert not isinstance(store.rebuild_window(["b"]), HeldWindow)
    assert len(store.held) == 0


def test_a_first_sync_that_removes_or_repeats_is_not_held(store: Store) -> None:
    messages = [replace(m, source="a") for m in mailbox(4, 50)]
    store.save_poll("a", PollResult(messages, removed=[messages[0].external_id]), NOW)
    assert store.rebuild_window(["a"]).count() == len(messages)
    assert not isinstance(store.rebuild_window(["a"]), HeldWindow)
    assert sum(e.removed_at is not None for e in store.window(["a"]).all()) == 1
    store.save_poll("b", PollResult([replace(messages[0], source="b")] * 2), NOW)  # the store keeps one
    assert not isinstance(store.rebuild_window(["b"]), HeldWindow)
    assert store.window(["b"]).count() == 1


def test_no_more_is_held_than_the_limit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(held_mod, "HELD_MAX", 250)
    messages = mailbox(5, 400)
    a = [m for m in messages if m.source == "a"]
    b = [m for m in messages if m.source == "b"]
    assert len(a) < 250 and len(a) + len(b) > 250
    first_sync(store, messages)
    assert isinstance(store.rebuild_window(["a"]), HeldWindow)
    assert not isinstance(store.rebuild_window(["b"]), HeldWindow)
    assert len(store.held) == len(a)


def test_an_evaluation_lets_go_of_what_was_held_when_it_began(store: Store) -> None:
    held = store.held
    first_sync(store, mailbox(6, 100))
    began = held.mark()
    store.save_poll("c", PollResult([replace(m, source="c") for m in mailbox(8, 40)]), NOW)
    held.release(began)  # kept while the evaluation ran: stays for the next one
    assert not isinstance(store.rebuild_window(["a"]), HeldWindow)
    assert isinstance(store.rebuild_window(["c"]), HeldWindow)
    held.release(held.mark())
    assert len(held) == 0


def test_the_rebuild_after_a_first_sync_reads_no_message_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = validate(
        {
            "store": {"url": "sqlite://"},
            "calendars": {"office": {"timezone": "UTC", "hours": {"mon-sun": "00:00-24:00"}}},
            "sources": {name: {"kind": "maildir", "path": "/nonexistent"} for name in ("a", "b")},
            "teams": {
                "support": {
                    "calendar": "office",
                    "addresses": ["support@example.org"],
                    "members": [{"name": "Ann", "email": ["ann@example.org", "bob@example.org"]}],
                    "sources": ["a", "b"],
                    "rules": [{"kind": "reply_within", "within": "8h"}],
                }
            },
        },
        check_secrets=False,
    ).config
    messages = [replace(m, removed_at=None) for m in mailbox(9, 500)]
    first_sync(store, messages)
    read_back = []
    real = Store.window

    def counted(self: Store, sources: Sequence[str], since: datetime | None = None) -> object:
        read_back.append(list(sources))
        return real(self, sources, since)

    monkeypatch.setattr(Store, "window", counted)
    evaluator = Evaluator(store, config)
    evaluator.run_team("support", NOW)
    assert read_back == []
    from_held = store.awaiting("support")
    store.held.release()
    evaluator.reconfigure(config)  # rebuilt again, now from the store
    evaluator.run_team("support", NOW + timedelta(seconds=1))
    assert read_back == [["a", "b"]]
    rows = store.awaiting("support")
    assert len(rows) > 50
    assert [(r.item_key, r.received_at, r.responded_at) for r in rows] == [
        (r.item_key, r.received_at, r.responded_at) for r in from_held
    ]
