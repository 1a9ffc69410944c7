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
