"""Bulk steps pause Python's cyclic garbage collector, and what they allocated goes straight to its oldest
generation.

A first sync, its store write and a rebuild allocate hundreds of thousands of objects that live on (events,
rows, items) and make hardly any reference cycle. With the collector running, every one of them is
traversed by a young collection (every 10,000 allocations, :data:`monitor.cli.GC_THRESHOLDS`), then again
by a middle one, before it reaches the oldest generation: at a 50,000-message first start that was about
0.6 s of the daemon's process, 12 ms for each 10,000 new objects while the fetch came in, none of them
garbage.

While a step runs inside :func:`paused`, the collector is off; when the last paused step ends, whatever the
young generations hold is moved to the oldest one (``gc.freeze()`` then ``gc.unfreeze()``: no object is
traversed to do it) and the collector is on again. Objects freed by their reference count go as they always
do; a reference cycle made meanwhile is found by the next full collection instead of a young one. The
pause counts the steps of every thread: the collector comes back once none runs. Nothing else in the
process freezes objects, so unfreezing lets go of nothing but what this moved.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

T = TypeVar("T")

BULK = 2_000
"""A step with this many messages or more pauses the collector (:func:`paused_for`)."""

_lock = threading.Lock()
_running = 0
_was_enabled = True


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the collector off; see the module's docstring."""
    global _running, _was_enabled
    with _lock:
        if _running == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                gc.freeze()  # every generation's objects, in one list splice...
                gc.unfreeze()  # ...become the oldest generation's
                if _was_enabled:
                    gc.enable()


def during(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` run inside :func:`paused`."""

    @functools.wraps(fn)
    def run() -> T:
        with paused():
            return fn()

    return run


def paused_for(count: int) -> AbstractContextManager[None]:
    """:func:`paused` for a step of ``count`` messages or calls from :data:`BULK` on; else nothing."""
    return paused() if count >= BULK else nullcontext()


def running() -> int:
    """How many paused steps run now."""
    return _running
