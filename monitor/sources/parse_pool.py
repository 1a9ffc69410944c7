"""Parse worker processes: a large fetch's answers become events on the other CPUs.

Turning a message's header block into an event costs several times what reading it off the socket does,
and it is Python work that one process does on one CPU at a time. A first sync of a big mailbox (or any
fetch of at least :data:`MIN_MESSAGES`) therefore hands each batch's raw answers to a small pool of worker
processes while the source's thread reads the next batch; small fetches, the steady state, never use it.

The pool is one per daemon process (``forkserver``: a fresh interpreter that imports only the parsing
modules, never a copy of the daemon's threads and connections). It is started on first use, or at the
daemon's start when it reads IMAP mailboxes (:func:`prestart`: the workers then start while the daemon
imports its own modules, and are up when its first sync begins), and closed once no fetch has used it for
:data:`IDLE_SECONDS` (a first sync's workers do not stay for good), or with the daemon.
Until its workers are up, and on a machine with one CPU, batches are parsed in the source's thread; a pool
that breaks (a worker killed) is dropped, its batches parsed in the thread, and a new one started on the
next large fetch. The events are the same either way: the workers run :mod:`monitor.sources.imap_events`.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

MIN_MESSAGES = 2_000
"""A fetch of fewer messages is parsed in the source's thread (the pool is not even started)."""

MAX_WORKERS = 4

IDLE_SECONDS = 60.0
"""A pool no fetch used for this long is closed (the next large fetch starts a new one)."""

WORKER_MODULES = ["monitor.sources.imap_events"]
"""What a worker imports before its first batch (all it needs)."""

T = TypeVar("T")


def worker_count() -> int:
    """As many workers as this process may use CPUs (at most :data:`MAX_WORKERS`); none below two, where a
    worker would only take turns with the source's thread. A container's CPU quota (cgroup v2
    ``cpu.max``) counts, not only the CPUs the kernel shows it."""
    try:
        cpus = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        cpus = float(os.cpu_count() or 1)
    quota = _cgroup_cpus()
    if quota is not None:
        cpus = min(cpus, quota)
    return 0 if cpus < 2 else min(int(cpus), MAX_WORKERS)


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _cgroup_cpus() -> float | None:
    """The CPUs a cgroup v2 quota allows (``cpu.max``: "quota period" or "max period"); None without one."""
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None


class ParsePool:
    """A process pool that says when its workers are up."""

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(WORKER_MODULES)
        self.workers = workers
        me = os.getpid()
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(me, _start_time(me), gc.get_threshold()),
        )
        self._up: list[Future[bool]] = []
        self.users = 0
        """Fetches using the pool now (changed under the module's lock)."""
        self.last_used = time.monotonic()
        self.closed = False
        """Closed as idle (under the module's lock): no fetch may take it any more."""
        self.cannot_spawn = False
        """True when no worker process could be started at all (no forkserver): not worth a new pool."""
        # The first worker waits for the forkserver to start and import the parsing modules (about 0.1 s):
        # started on a thread of its own, so that the source's thread reads and parses meanwhile.
        threading.Thread(target=self._start, name="parse-workers-start", daemon=True).start()

    def _start(self) -> None:
        up: list[Future[bool]] = []
        try:
            for _ in range(self.workers):
                up.append(self._executor.submit(_ready))
        except Exception as err:  # no forkserver, one that died, or the pool closed meanwhile
            self.cannot_spawn = isinstance(err, OSError | ValueError)
            failed: Future[bool] = Future()
            failed.set_exception(err)
            up.append(failed)
        self._up = up

    def ready(self) -> bool:
        """True once every worker answered once: from then on a batch costs no start-up wait."""
        up = self._up
        return len(up) == self.workers and all(f.done() and f.exception() is None for f in up)

    def start_error(self) -> BaseException | None:
        """Why the workers could not start (None: they did, or are still starting)."""
        return next((f.exception() for f in self._up if f.done() and f.exception() is not None), None)

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Run ``fn(*args)`` in a worker (``fn`` and the arguments are pickled); ``BrokenProcessPool`` when
        the pool can take no work (it broke, or was shut down meanwhile)."""
        try:
            return self._executor.submit(fn, *args)
        except RuntimeError as err:  # "cannot schedule new futures after shutdown"
            raise BrokenProcessPool(str(err)) from err

    def abandon(self) -> None:
        """Let go of a broken pool without waiting for it."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers once they finish what they hold; what was not started is cancelled."""
        self._executor.shutdown(wait=True, cancel_futures=True)


_lock = threading.Lock()
_shared: ParsePool | None = None
_unavailable = ""
"""Why no pool can be created in this process (empty: none failed yet)."""


def shared() -> ParsePool | None:
    """The daemon's pool, started now if it is not running; None on a machine with one CPU, and for good
    once a pool could not even be created here (no writable temporary directory for the workers' socket,
    no shared memory for their semaphores): then every batch is parsed in the source's thread."""
    with _lock:
        return _shared_locked()


def _shared_locked() -> ParsePool | None:
    global _shared, _unavailable
    if _shared is None:
        workers = worker_count()
        if workers == 0 or _unavailable:
            return None
        try:
            _shared = ParsePool(workers)
        except (OSError, ValueError, RuntimeError) as err:
            _unavailable = type(err).__name__
            log.warning("parse workers not available (%s); parsing in the source's thread", _unavailable)
            return None
        log.debug("parse workers starting", extra={"workers": workers})
        threading.Thread(
            target=_close_when_idle, args=(_shared,), name="parse-workers-idle", daemon=True
        ).start()
    return _shared


def prestart() -> None:
    """Start the daemon's pool now, ahead of a first sync that may need it (closed unused after
    :data:`IDLE_SECONDS`)."""
    shared()


@contextlib.contextmanager
def leased() -> Iterator[ParsePool | None]:
    """The daemon's pool (as :func:`shared`), never closed as idle while the caller uses it."""
    while True:
        pool = shared()
        if pool is None:
            break
        with _lock:
            if not pool.closed:  # else closed as idle just now: the next one
                pool.users += 1
                break
    try:
        yield pool
    finally:
        if pool is not None:
            with _lock:
                pool.users -= 1
                pool.last_used = time.monotonic()


IDLE_CHECK_SECONDS = 5.0
"""How often the pool's idle watch looks."""


def _close_when_idle(pool: ParsePool) -> None:
    """Close ``pool`` once no fetch used it for :data:`IDLE_SECONDS`; end once it is not the daemon's."""
    global _shared
    while True:
        time.sleep(min(IDLE_CHECK_SECONDS, IDLE_SECONDS))
        with _lock:
            if _shared is not pool:
                return
            if pool.users or time.monotonic() - pool.last_used < IDLE_SECONDS:
                continue
            _shared = None
            pool.closed = True
        log.debug("parse workers stopped: idle")
        pool.close()
        return


def broken(pool: ParsePool, err: BaseException) -> None:
    """Drop ``pool`` after it broke (a worker died), and the next large fetch starts a new one; or after no
    worker process could be started at all, and then no pool is tried again."""
    global _shared, _unavailable
    with _lock:
        if _shared is pool:
            _shared = None
        if pool.cannot_spawn:
            _unavailable = type(err).__name__
    if pool.cannot_spawn:
        log.warning("parse workers not available (%s); parsing in the source's thread", _unavailable)
    else:
        log.warning("parse workers stopped (%s); parsing in the source's thread", type(err).__name__)
    pool.abandon()


def close_shared() -> None:
    """Stop the daemon's pool (its workers finish the batch they hold)."""
    global _shared
    with _lock:
        pool, _shared = _shared, None
    if pool is not None:
        pool.close()


atexit.register(close_shared)  # also for the commands that poll without the daemon


def _ready() -> bool:
    return True


WATCH_SECONDS = 1.0
"""How often a worker checks that the process that started it is still there."""


def _start_worker(pid: int, started: str | None, thresholds: tuple[int, int, int]) -> None:
    """In a new worker: the daemon's garbage collector thresholds (a batch allocates tens of thousands of
    objects that live on, as in the daemon), and the watch on the daemon."""
    gc.set_threshold(*thresholds)
    _watch_parent(pid, started)


def _watch_parent(pid: int, started: str | None) -> None:
    """In a worker: exit once the daemon that started it is gone, even killed with SIGKILL.

    Without this, workers outlive a killed daemon: each holds both ends of its task queue (no end of file
    ever comes) and the daemon's end of the forkserver's pipe (which then never ends either).
    """

    def watch() -> None:
        while _alive(pid, started):
            time.sleep(WATCH_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (Linux ``/proc``), which a reused pid does not share; None without it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid`` that started at ``started`` is still running (without ``/proc``: any
    process of that pid)."""
    if started is not None:
        return _start_time(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
