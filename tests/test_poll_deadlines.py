"""The shared poll-deadline thread: a deadline fires once when due, a cancelled one never fires."""

from __future__ import annotations

import threading
import time

from monitor.sources.deadlines import Deadlines


def test_deadlines_fire_in_order_and_cancelled_ones_never() -> None:
    deadlines = Deadlines()
    fired: list[str] = []
    done = threading.Event()

    def note(name: str) -> None:
        fired.append(name)
        if name == "last":
            done.set()

    deadlines.watch(0.3, lambda: note("last"))
    cancelled = deadlines.watch(0.05, lambda: note("cancelled"))
    deadlines.watch(0.1, lambda: note("first"))
    deadlines.watch(0.2, lambda: 1 / 0)  # a failing callback stops nothing
    deadlines.cancel(cancelled)
    began = time.monotonic()
    assert done.wait(5)
    assert fired == ["first", "last"]
    assert time.monotonic() - began >= 0.25
    time.sleep(0.1)
    assert fired == ["first", "last"]


def test_a_sooner_deadline_wakes_the_thread() -> None:
    deadlines = Deadlines()
    done = threading.Event()
    deadlines.watch(30, lambda: None)  # the thread now sleeps for 30 s
    began = time.monotonic()
    deadlines.watch(0.05, done.set)
    assert done.wait(5)
    assert time.monotonic() - began < 2


def test_cancelled_deadlines_let_go_of_their_callbacks() -> None:
    """Polls end long before their deadline: a cancelled one keeps neither its callback (a poll's
    event and source) nor, past a bound, its heap entry."""
    import gc
    import weakref

    deadlines = Deadlines()
    events = [threading.Event() for _ in range(1000)]
    refs = [weakref.ref(event) for event in events]
    tokens = [deadlines.watch(300, event.set) for event in events]
    for token in tokens:
        deadlines.cancel(token)
    del events
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert deadlines.pending() <= 64
    fired = threading.Event()
    deadlines.watch(0.05, fired.set)  # still watching after the heap was rebuilt
    assert fired.wait(5)


def test_a_fired_deadline_cancelled_afterwards_is_harmless() -> None:
    deadlines = Deadlines()
    fired = threading.Event()
    token = deadlines.watch(0.01, fired.set)
    assert fired.wait(5)
    deadlines.cancel(token)  # the poll ends after its deadline fired
    again = threading.Event()
    deadlines.watch(0.01, again.set)
    assert again.wait(5)
