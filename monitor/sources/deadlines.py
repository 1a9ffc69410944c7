"""One thread that enforces every poll's deadline (a timer thread per poll cost more than the poll itself).

A source registers ``callback`` to run when a poll outlives its deadline and cancels it when the poll ends.
The callback runs on the shared thread, so it must be short (the IMAP source shuts its socket down).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Deadlines:
    """Deadlines kept in a heap and watched by one daemon thread, started on first use.

    A cancelled deadline lets go of its callback at once; its heap entry, two numbers, goes when it
    comes up or when cancelled entries are the heap's majority (polls end long before their deadline,
    and a thousand sources polled every minute would otherwise keep five minutes of callbacks).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float, callback: Callable[[], None]) -> int:
        """Run ``callback`` in ``seconds`` unless :meth:`cancel` is called first; returns its token."""
        with self._cond:
            token = next(self._tokens)
            self._callbacks[token] = callback
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="poll-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][1] == token:  # the earliest now: the thread must wake sooner than it planned
                self._cond.notify()
        return token

    def cancel(self, token: int) -> None:
        """The poll ended: its callback does not run."""
        with self._cond:
            dropped = self._callbacks.pop(token, None) is not None
            if dropped and len(self._heap) > 2 * len(self._callbacks) + 64:
                self._heap = [entry for entry in self._heap if entry[1] in self._callbacks]
                heapq.heapify(self._heap)

    def pending(self) -> int:
        """Heap entries kept, cancelled ones not yet dropped included (for tests)."""
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._callbacks:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                when, token = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                callback = self._callbacks.pop(token)
                self._cond.release()
                try:
                    callback()
                except Exception:  # a failing callback must not stop the deadlines of every other poll
                    log.debug("poll deadline callback failed", exc_info=True)
                finally:
                    self._cond.acquire()


DEADLINES = Deadlines()
"""The deadlines of every source's polls in this process."""
