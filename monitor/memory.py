"""How the daemon's process allocates memory: fewer glibc malloc arenas than glibc's default, and free
heap pages given back now and then.

glibc gives threads that allocate at the same time arenas of their own, up to eight per CPU. Each source
polls on a thread started for the poll, so over a day every arena receives long-lived pieces (a TLS
connection set up on that thread, its buffers) between short-lived ones, and none can be given back: a
daemon watching 1,000 mailboxes kept about 20 MB more in fifteen arenas than in two. The threads spend
most of their time waiting on sockets and hold the GIL while they allocate Python objects, so two arenas
cost no measurable time. ``MALLOC_ARENA_MAX`` set in the environment wins.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time

log = logging.getLogger(__name__)

MALLOC_ARENAS = 2
"""Arenas for the daemon's process (glibc only; ``MALLOC_ARENA_MAX`` in the environment wins)."""

_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; True if set. Call before the daemon starts its threads."""
    if os.environ.get("MALLOC_ARENA_MAX") or not _glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
        done = bool(mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(arenas)))
    except (OSError, AttributeError):  # a static build, or a C library without mallopt
        done = False
    if not done:
        log.debug("malloc arenas left at glibc's default")
    return done


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):  # not a glibc system
        return False


RETURN_EVERY = 60.0
"""Seconds between two hand-backs of free heap memory (:func:`return_free_memory`)."""

_returned_at: float | None = None
_returning = threading.Lock()


def return_free_memory(every: float = RETURN_EVERY) -> bool:
    """Give the heap's free pages back to the system, at most once every ``every`` seconds (glibc only);
    True if it did. Polls free what they parsed, but pages holding a few live objects stay mapped: at a
    start with 1,000 mailboxes about 4 MB. It takes some 20 ms, while other threads' allocations wait."""
    global _returned_at
    now = time.monotonic()
    with _returning:
        if _returned_at is not None and now - _returned_at < every:
            return False
        _returned_at = now
    if not _glibc():
        return False
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False
