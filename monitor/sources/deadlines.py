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
    """Deadlines kept in a heap and watched by one daemon thread, started on first use."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float, callback: Callable[[], None]) -> int:
        """Run ``callback`` in ``seconds`` unless :meth:`cancel` is called first; returns its token."""
        with self._cond:
            token = next(self._tokens)
            heapq.heappush(self._heap, (time.monotonic() + seconds, token, callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="poll-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][1] == token:  # the earliest now: the thread must wake sooner than it planned
                self._cond.notify()
        return token

    def cancel(self, token: int) -> None:
        """The poll ended: its callback does not run (dropped from the heap when its time comes)."""
        with self._cond:
            self._cancelled.add(token)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] in self._cancelled:
                    self._cancelled.discard(heapq.heappop(self._heap)[1])
                if not self._heap:
                    self._cond.wait()
                    continue
                when, _token, callback = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._cond.release()
                try:
                    callback()
                except Exception:  # a failing callback must not stop the deadlines of every other poll
                    log.debug("poll deadline callback failed", exc_info=True)
                finally:
                    self._cond.acquire()


DEADLINES = Deadlines()
"""The deadlines of every source's polls in this process."""
