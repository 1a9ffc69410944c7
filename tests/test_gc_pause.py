"""Bulk steps pause the cyclic garbage collector: on again once the last one ends, what they allocated moved
to the oldest generation without a collection, a cycle made meanwhile found by the next full collection."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor import gc_pause
from monitor.sources.base import PollResult
from monitor.store.db import Store
from tests.test_store import T0, msg


class Node:
    def __init__(self) -> None:
        self.other: Any = None


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    assert gc.isenabled(), "a test before this one left the collector off"
    yield
    assert gc_pause.running() == 0
    gc.enable()


def _in_generation(obj: object, generation: int) -> bool:
    return any(o is obj for o in gc.get_objects(generation))


def test_a_paused_step_moves_what_it_allocated_to_the_oldest_generation() -> None:
    with gc_pause.paused():
        assert not gc.isenabled()
        kept = [Node() for _ in range(3)]
        assert _in_generation(kept, 0)
    assert gc.isenabled()
    assert _in_generation(kept, 2) and not _in_generation(kept, 0) and not _in_generation(kept, 1)
    assert gc.get_freeze_count() == 0  # nothing stays frozen
    assert gc.get_count()[0] < 100  # and no young collection is owed for it


def test_a_cycle_made_in_a_pause_is_collected_by_the_next_full_collection() -> None:
    with gc_pause.paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
    left = gone()
    assert left is not None and _in_generation(left, 2)  # not lost: moved on with the rest
    del left
    gc.collect(1)
    assert gone() is not None  # young collections do not look at the oldest generation
    gc.collect()
    assert gone() is None


def test_the_collector_comes_back_when_the_last_step_of_any_thread_ends() -> None:
    inside = threading.Event()
    leave = threading.Event()

    def other_step() -> None:
        with gc_pause.paused():
            inside.set()
            leave.wait(10)

    worker = threading.Thread(target=other_step)
    worker.start()
    assert inside.wait(10)
    with gc_pause.paused():
        assert gc_pause.running() == 2
    assert not gc.isenabled()  # the other thread's step still runs
    leave.set()
    worker.join(10)
    assert gc.isenabled()
    assert gc_pause.running() == 0


def test_a_collector_turned_off_before_stays_off() -> None:
    gc.disable()
    try:
        with gc_pause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_failing_step_turns_the_collector_back_on() -> None:
    with pytest.raises(RuntimeError), gc_pause.paused():
        raise RuntimeError("the step failed")
    assert gc.isenabled()


def test_only_bulk_steps_pause() -> None:
    with gc_pause.paused_for(gc_pause.BULK - 1):
        assert gc.isenabled()
    with gc_pause.paused_for(gc_pause.BULK):
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_start_runs_paused_and_returns_what_it_returned() -> None:
    def start() -> str:
        assert not gc.isenabled()
        return "started"

    assert gc_pause.during(start)() == "started"
    assert gc.isenabled()


@pytest.mark.parametrize(("count", "paused"), [(3, False), (gc_pause.BULK, True)])
def test_a_bulk_store_write_runs_paused(tmp_path: Path, count: int, paused: bool) -> None:
    from sqlalchemy import event

    store = Store.open(f"sqlite:///{tmp_path / 'replywatch.db'}")
    store.upgrade()
    collecting: list[bool] = []
    saving = threading.current_thread()

    def note(*_: Any) -> None:
        if threading.current_thread() is saving:  # not the WAL checkpoint's thread, after the save
            collecting.append(gc.isenabled())

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        store.save_poll("inbox", PollResult(messages=[msg(n) for n in range(count)]), T0)
    finally:
        store.close()
    assert collecting and set(collecting) == {not paused}
    assert gc.isenabled()


def test_a_rebuild_runs_paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.evaluate as evaluate
    from tests.test_metrics_store_reads import config as team_config

    config = team_config("sqlite://")
    store = Store.open(f"sqlite:///{tmp_path / 'replywatch.db'}")
    store.upgrade()
    collecting: list[bool] = []
    build = evaluate.stored_team_awaiting

    def noting(*args: Any) -> Any:
        collecting.append(gc.isenabled())
        return build(*args)

    monkeypatch.setattr(evaluate, "stored_team_awaiting", noting)
    try:
        store.save_poll("mail", PollResult(messages=[msg(n, source="mail") for n in range(5)]), T0)
        assert evaluate.Evaluator(store, config).rebuild("support", T0 + timedelta(hours=1))
        assert len(store.awaiting("support")) == 5
    finally:
        store.close()
    assert collecting == [False]
    assert gc.isenabled()


@pytest.mark.server
@pytest.mark.parametrize(("bulk", "paused"), [(1, True), (10**9, False)])
def test_a_large_imap_fetch_runs_paused(
    imap_mailbox: Any, monkeypatch: pytest.MonkeyPatch, bulk: int, paused: bool
) -> None:
    from monitor.sources.imap import ImapSource
    from tests.test_imap_fetch_parse import VARIED, _fill
    from tests.test_imap_source import make_source

    _fill(imap_mailbox)
    monkeypatch.setattr(gc_pause, "BULK", bulk)
    collecting: list[bool] = []
    built = ImapSource._built

    def noting(self: ImapSource, *args: Any) -> Iterator[Any]:
        for batch in built(self, *args):
            collecting.append(gc.isenabled())
            yield batch

    monkeypatch.setattr(ImapSource, "_built", noting)
    polled = make_source(imap_mailbox, batch_size=3).poll(None)
    assert len(polled.messages) == len(VARIED) + 1
    assert len(collecting) > 2 and set(collecting) == {not paused}
    assert gc.isenabled()
