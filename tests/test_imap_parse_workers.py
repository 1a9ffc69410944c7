"""A large fetch parsed by the parse worker processes gives exactly the events of a fetch parsed in the
source's thread, whatever happens to the workers or the fast parser."""

from __future__ import annotations

import gc
import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, cast

import pytest

from monitor import cli
from monitor.sources import imap, imap_events, imap_fetch, parse_pool
from monitor.sources.imap import ImapSource
from monitor.sources.imap_fetch import FetchParseError
from tests.servers.dovecot import Mailbox
from tests.test_imap_fetch_parse import VARIED, _fill, _imapclient_fallbacks
from tests.test_imap_source import make_source, message

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def every_fetch_is_large(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every fetch of these tests goes to the workers; the daemon's pool is closed after each test."""
    monkeypatch.setattr(parse_pool, "MIN_MESSAGES", 1)
    yield
    parse_pool.close_shared()


class InThreadPool:
    """A stand-in pool that runs each batch in the calling thread, or fails like a broken pool."""

    workers = 2

    def __init__(self, fail: Callable[[int], BaseException | None] = lambda n: None) -> None:
        self.fail = fail
        self.submitted = 0

    abandoned = False
    cannot_spawn = False
    failed_start: BaseException | None = None
    users = 0
    last_used = 0.0
    closed = False

    def ready(self) -> bool:
        return self.failed_start is None

    def start_error(self) -> BaseException | None:
        return self.failed_start

    def abandon(self) -> None:
        self.abandoned = True

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        self.submitted += 1
        future: Future[Any] = Future()
        error = self.fail(self.submitted)
        if error is not None:
            future.set_exception(error)
            return future
        try:
            future.set_result(fn(*args))
        except Exception as err:  # as a worker's exception comes back: in the future
            future.set_exception(err)
        return future


def _expected(mailbox: Mailbox) -> Any:
    slow = make_source(mailbox)
    slow.fast_fetch = False
    return slow.poll(None)


def _ready_pool() -> parse_pool.ParsePool:
    """The daemon's pool once its workers are up (the first batches of a fetch are parsed in the thread
    until they are)."""
    pool = parse_pool.shared()
    assert pool is not None, "this test needs a machine with two CPUs"
    deadline = time.monotonic() + 60
    while not pool.ready():
        assert time.monotonic() < deadline, "the parse workers did not start within 60 s"
        time.sleep(0.05)
    return pool


def _counting(pool: parse_pool.ParsePool) -> list[int]:
    """Record the size of each batch ``pool`` is given."""
    sizes: list[int] = []
    submit = pool.submit

    def counted(fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        sizes.append(len(args[1]))
        return submit(fn, *args)

    pool.submit = counted  # type: ignore[method-assign]
    return sizes


@pytest.mark.server
def test_worker_processes_build_the_events_of_the_thread(imap_mailbox: Mailbox) -> None:
    _fill(imap_mailbox)
    expected = _expected(imap_mailbox)
    sizes = _counting(_ready_pool())

    source = make_source(imap_mailbox, batch_size=3)
    first = source.poll(None)

    assert first.messages == expected.messages
    assert first.snapshots == expected.snapshots
    assert first.cursor == expected.cursor
    assert sum(sizes) == len(VARIED) + 1 and max(sizes) == 3  # every message went through a worker

    imap_mailbox.add_flags("INBOX", [1, 5], ["\\Answered"])
    imap_mailbox.append("INBOX", message("Later", msgid="later@example.org"), flags=["\\Seen"])
    slow = make_source(imap_mailbox)
    slow.fast_fetch = False
    again = source.poll(first.cursor)
    assert [m.external_id.rsplit("/", 1)[1] for m in again.messages] == ["1", "5", str(len(VARIED) + 1)]
    assert again.messages == slow.poll(expected.cursor).messages


def test_an_event_and_its_fetch_result_travel_whole() -> None:
    """What a worker sends back is pickled as constructor arguments: every field must come through."""
    from datetime import UTC, datetime

    from monitor.events import MessageEvent

    when = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    event = MessageEvent(
        "mail", "inbox", "INBOX/7/3", "m@example.org", when, "anna@example.org", "Anna", "list@example.org",
        ("r@example.org",), ("support@example.com",), ("cc@example.org",), "Order 7", "p@example.org",
        ("q@example.org", "p@example.org"), "thread-1", "auto_reply", True, frozenset({"seen", "answered"}),
        True, "Thanks!", when,
    )  # fmt: skip
    assert pickle.loads(pickle.dumps(event, -1)) == event
    built = imap_events.Built(3, event, frozenset({b"\\Seen"}), when, "", [("Date", "unreadable")])
    again = pickle.loads(pickle.dumps(built, -1))
    assert (again.uid, again.event, again.flags, again.internal_date, again.error, again.problems) == (
        3, event, frozenset({b"\\Seen"}), when, "", [("Date", "unreadable")]
    )  # fmt: skip


def test_a_worker_fetch_starts_and_ends_with_smaller_batches() -> None:
    uids = list(range(1, 8_001))
    sizes = [len(batch) for batch in imap._ramped(uids, 500)]
    assert sizes[:4] == [62, 125, 250, 500] and sizes[-4:] == [126, 250, 125, 62]
    assert [uid for batch in imap._ramped(uids, 500) for uid in batch] == uids  # each once, in order
    # Too few messages for both ramps, or batches too small to halve: plain batches.
    assert [len(b) for b in imap._ramped(uids[:1_500], 500)] == [500, 500, 500]
    assert [len(b) for b in imap._ramped(uids[:30], 3)] == [3] * 10


@pytest.mark.server
def test_ramped_batches_build_the_events_of_the_thread(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(imap_mailbox)
    expected = _expected(imap_mailbox)
    sizes = _counting(_ready_pool())
    monkeypatch.setattr(imap, "RAMP_SMALLEST", 1)

    result = make_source(imap_mailbox, batch_size=4).poll(None)

    assert result.messages == expected.messages
    assert result.cursor == expected.cursor
    assert sizes == [1, 2, 4, 4, 2, 1, 1]  # INBOX's 14 messages ramped at both ends; Sent's one
    assert sum(sizes) == len(VARIED) + 1


@pytest.mark.server
def test_a_batch_no_worker_can_parse_is_read_again_by_imapclient(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(imap_mailbox)
    expected = _expected(imap_mailbox)
    real = imap_fetch.parse_fetch_records
    calls = 0

    def second_batch_unreadable(records: Any, uids: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise FetchParseError("unexpected token")
        return real(records, uids)

    monkeypatch.setattr(imap_events, "parse_fetch_records", second_batch_unreadable)
    pool = InThreadPool()
    monkeypatch.setattr(parse_pool, "shared", lambda: pool)
    source = make_source(imap_mailbox, batch_size=5)
    fallbacks = _imapclient_fallbacks(source, monkeypatch)

    with caplog.at_level(logging.DEBUG, logger="monitor.sources.imap"):
        result = source.poll(None)

    assert result.messages == expected.messages  # the batch read again keeps its place
    assert result.cursor == expected.cursor
    assert fallbacks == [5]
    assert pool.submitted == 4  # INBOX in three batches, Sent in one
    assert "fast FETCH of 5 messages not usable (FetchParseError" in caplog.text


@pytest.mark.server
def test_a_broken_pool_costs_nothing_but_time(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker killed mid-fetch breaks the pool: its batches are parsed in the thread, the pool is dropped
    and the next large fetch starts a new one."""
    _fill(imap_mailbox)
    expected = _expected(imap_mailbox)
    broken = InThreadPool(fail=lambda n: BrokenProcessPool("a worker died") if n >= 2 else None)
    monkeypatch.setattr(parse_pool, "_shared", broken)
    source = make_source(imap_mailbox, batch_size=3)

    with caplog.at_level(logging.WARNING, logger="monitor.sources.parse_pool"):
        result = source.poll(None)

    assert result.messages == expected.messages
    assert result.cursor == expected.cursor
    assert broken.submitted == 2  # the second batch broke it: no batch was given to it after that
    assert "parse workers stopped (BrokenProcessPool); parsing in the source's thread" in caplog.text
    assert broken.abandoned
    assert parse_pool._shared is not cast(Any, broken)  # the Sent folder's fetch started a new pool


@pytest.mark.server
def test_workers_that_cannot_start_are_said_once_and_the_thread_parses(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(imap_mailbox)
    expected = _expected(imap_mailbox)
    dead = InThreadPool()
    dead.failed_start = BrokenProcessPool("a worker could not import its modules")
    monkeypatch.setattr(parse_pool, "_shared", dead)
    monkeypatch.setattr(parse_pool, "worker_count", lambda: 0)  # no new pool for the Sent folder
    source = make_source(imap_mailbox, batch_size=3)

    with caplog.at_level(logging.WARNING, logger="monitor.sources.parse_pool"):
        result = source.poll(None)

    assert result.messages == expected.messages
    assert dead.submitted == 0 and dead.abandoned
    assert caplog.text.count("parse workers stopped (BrokenProcessPool)") == 1


def test_workers_follow_the_cpus_this_process_may_use(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    cpu_max = tmp_path / "cpu.max"
    monkeypatch.setattr(parse_pool, "CGROUP_CPU_MAX", cpu_max)  # no cgroup file: affinity alone
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert parse_pool.worker_count() == 0
    assert parse_pool.shared() is None
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)))
    assert parse_pool.worker_count() == parse_pool.MAX_WORKERS
    cpu_max.write_text("max 100000\n")
    assert parse_pool.worker_count() == parse_pool.MAX_WORKERS
    cpu_max.write_text("250000 100000\n")  # a container allowed 2.5 CPUs
    assert parse_pool.worker_count() == 2
    cpu_max.write_text("150000 100000\n")
    assert parse_pool.worker_count() == 0


def test_a_message_a_worker_cannot_build_comes_back_named_by_uid_only() -> None:
    from datetime import UTC, datetime

    fetch = imap_events.FolderFetch("support", "inbox", "INBOX", 7, True, datetime(2026, 12, 1, tzinfo=UTC))
    good = {b"FLAGS": (b"\\Seen", b"\\Recent"), b"BODY[HEADER.FIELDS (FROM)]": b"From: a@example.org\r\n\r\n"}
    bad = {b"FLAGS": 12, b"BODY[HEADER.FIELDS (FROM)]": b"From: victim@example.org\r\n\r\n"}
    built = imap_events.build_events({3: good, 4: bad}, fetch)
    assert [b.uid for b in built] == [3, 4]
    assert built[0].event is not None and built[0].event.external_id == "INBOX/7/3"
    assert built[0].flags == frozenset({b"\\Seen"})
    assert built[1].event is None and built[1].error == "TypeError"
    assert "victim" not in repr(built[1])


@pytest.mark.server
def test_a_source_without_workers_parses_in_its_thread(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(imap_mailbox)
    expected = _expected(imap_mailbox)
    monkeypatch.setattr(parse_pool, "worker_count", lambda: 0)
    source: ImapSource = make_source(imap_mailbox, batch_size=3)
    assert source.poll(None).messages == expected.messages
    assert parse_pool._shared is None


@pytest.mark.server
def test_a_fetch_does_not_wait_for_the_workers_to_start(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers start on a thread of their own: until they are up, the source's thread parses."""
    _fill(imap_mailbox)
    expected = _expected(imap_mailbox)
    release = threading.Event()
    start = parse_pool.ParsePool._start

    def held(self: parse_pool.ParsePool) -> None:
        release.wait(30)
        start(self)

    monkeypatch.setattr(parse_pool.ParsePool, "_start", held)
    try:
        result = make_source(imap_mailbox, batch_size=3).poll(None)
        pool = parse_pool._shared
        assert pool is not None and not pool.ready()
    finally:
        release.set()
    assert result.messages == expected.messages
    deadline = time.monotonic() + 30
    while not pool.ready() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.ready() and pool.start_error() is None
    sizes = _counting(pool)
    assert make_source(imap_mailbox, batch_size=3).poll(None).messages == expected.messages
    assert sizes  # the next large fetch went to the workers


@pytest.mark.server
@pytest.mark.parametrize(
    ("fails", "error"),
    [
        # No shared memory for the pool's semaphores: the pool itself cannot be made.
        ("__init__", OSError("[Errno 38] Function not implemented")),
        # No writable temporary directory for the forkserver's socket: no worker process can start.
        ("submit", FileNotFoundError("No usable temporary directory found")),
    ],
)
def test_a_pool_that_cannot_be_created_leaves_the_thread_to_parse(
    imap_mailbox: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fails: str,
    error: Exception,
) -> None:
    """A locked-down host: said once, no pool tried again, and the polls go on in the source's thread."""
    _fill(imap_mailbox)
    expected = _expected(imap_mailbox)
    attempts: list[str] = []

    def failing(*args: Any, **kwargs: Any) -> None:
        attempts.append(fails)
        raise error

    monkeypatch.setattr(ProcessPoolExecutor, fails, failing)
    monkeypatch.setattr(parse_pool, "_unavailable", "")
    source = make_source(imap_mailbox, batch_size=3)

    with caplog.at_level(logging.WARNING, logger="monitor.sources.parse_pool"):
        assert source.poll(None).messages == expected.messages
        assert make_source(imap_mailbox, batch_size=3).poll(None).messages == expected.messages
        assert make_source(imap_mailbox, batch_size=3).poll(None).messages == expected.messages

    assert caplog.text.count(f"parse workers not available ({type(error).__name__})") == 1
    assert "parse workers stopped" not in caplog.text
    assert attempts == [fails]
    assert parse_pool._shared is None


@pytest.mark.server
def test_a_pool_that_breaks_as_a_batch_is_handed_over_costs_nothing_but_time(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(imap_mailbox)
    expected = _expected(imap_mailbox)

    class ShutDown(InThreadPool):
        def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
            raise BrokenProcessPool("cannot schedule new futures after shutdown")

    gone = ShutDown()
    monkeypatch.setattr(parse_pool, "_shared", gone)
    monkeypatch.setattr(parse_pool, "worker_count", lambda: 0)
    assert make_source(imap_mailbox, batch_size=3).poll(None).messages == expected.messages
    assert gone.abandoned


def test_a_pool_shut_down_takes_no_batch_and_says_it_is_broken() -> None:
    pool = parse_pool.ParsePool(1)
    pool.close()
    with pytest.raises(BrokenProcessPool):
        pool.submit(int, "1")


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # exited, not yet reaped


def test_workers_do_not_outlive_a_daemon_killed_with_sigkill(tmp_path: Any) -> None:
    """The OOM killer or ``kill -9`` leaves no parse worker, nor its forkserver, behind."""
    script = textwrap.dedent(
        """
        import os, sys, time
        from monitor.sources import parse_pool
        pool = parse_pool.shared()
        while not pool.ready():
            time.sleep(0.05)
        workers = list(pool._executor._processes)
        parents = {int(open(f"/proc/{p}/status").read().split("PPid:")[1].split()[0]) for p in workers}
        print(" ".join(map(str, workers + sorted(parents))), flush=True)
        time.sleep(120)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, "the pool did not start"
        pids = [int(p) for p in line.split()]
        assert len(pids) >= 3  # two workers or more, and the forkserver they were forked from
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 30
    while not all(_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if not _gone(p)]}"
        time.sleep(0.1)


def test_workers_collect_garbage_as_the_daemon_does() -> None:
    """A worker keeps as many objects as the daemon does: it takes the daemon's collector thresholds."""
    before = gc.get_threshold()
    gc.set_threshold(12_345, 11, 12)
    try:
        pool = parse_pool.ParsePool(2)
    finally:
        gc.set_threshold(*before)
    try:
        assert pool.submit(gc.get_threshold).result(timeout=60) == (12_345, 11, 12)
    finally:
        pool.close()


@pytest.mark.server
def test_workers_whose_forkserver_died_are_replaced_at_the_next_large_fetch(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error as the workers start (a forkserver killed: EOFError) is said, the thread parses,
    and the next large fetch tries a new pool: it is not a host where no pool can ever start."""
    _fill(imap_mailbox)
    expected = _expected(imap_mailbox)
    monkeypatch.setattr(parse_pool, "_unavailable", "")
    submit = ProcessPoolExecutor.submit
    failures = [EOFError("unexpected EOF")]

    def dying(self: Any, fn: Any, /, *args: Any) -> Any:
        if failures:
            raise failures.pop()
        return submit(self, fn, *args)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", dying)
    first = parse_pool.shared()
    assert first is not None
    deadline = time.monotonic() + 30
    while first.start_error() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="monitor.sources.parse_pool"):
        assert make_source(imap_mailbox, batch_size=3).poll(None).messages == expected.messages
    assert "parse workers stopped (EOFError)" in caplog.text
    assert parse_pool._unavailable == ""
    second = parse_pool.shared()
    assert second is not None and second is not first


def _wait(condition: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _workers(pool: parse_pool.ParsePool) -> list[Any]:
    return list((pool._executor._processes or {}).values())  # type: ignore[attr-defined]


def test_a_pool_no_fetch_uses_is_closed_and_its_workers_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_pool, "IDLE_CHECK_SECONDS", 0.05)
    pool = parse_pool.shared()
    assert pool is not None
    assert _wait(pool.ready), "the parse workers did not start"
    monkeypatch.setattr(parse_pool, "IDLE_SECONDS", 0.5)  # once up: a slow start is no idle time here
    processes = _workers(pool)
    assert len(processes) == pool.workers
    assert _wait(lambda: parse_pool._shared is None, 10), "an idle pool was not closed"
    assert _wait(lambda: not any(p.is_alive() for p in processes), 10), "an idle pool's workers live on"
    again = parse_pool.shared()  # the next large fetch starts a new one
    assert again is not None and again is not pool


def test_a_pool_in_use_is_not_closed_as_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_pool, "IDLE_SECONDS", 0.3)
    monkeypatch.setattr(parse_pool, "IDLE_CHECK_SECONDS", 0.05)
    with parse_pool.leased() as pool:
        assert pool is not None
        assert _wait(pool.ready), "the parse workers did not start"
        time.sleep(1.0)  # three idle periods while a fetch holds it
        assert parse_pool._shared is pool
        assert pool.submit(imap_events.parse_and_build, [], [], None).result(timeout=30) == []
    assert _wait(lambda: parse_pool._shared is None, 10), "a pool let go of was not closed once idle"


def test_a_large_fetch_holds_the_pool_while_it_reads(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(imap_mailbox)
    users: list[int] = []
    submit = parse_pool.ParsePool.submit

    def noting(self: parse_pool.ParsePool, fn: Any, /, *args: Any) -> Any:
        users.append(self.users)
        return submit(self, fn, *args)

    monkeypatch.setattr(parse_pool.ParsePool, "submit", noting)
    pool = parse_pool.shared()
    assert pool is not None and _wait(pool.ready), "the parse workers did not start"
    assert make_source(imap_mailbox, batch_size=3).poll(None).messages == _expected(imap_mailbox).messages
    assert users and set(users) == {1}
    assert pool.users == 0 and pool.last_used > 0


def test_the_daemon_starts_the_workers_before_it_loads_its_modules(tmp_path: Path) -> None:
    """``replywatch run`` with an IMAP source: the pool is started before ``monitor.daemon`` is imported
    (the workers come up while the daemon loads); without one, no pool. Either way the daemon runs with its
    own garbage collector thresholds and GIL switch interval."""
    script = textwrap.dedent(
        """
        import gc
        import sys
        from monitor import cli
        from monitor.sources import parse_pool

        def prestart():
            print("prestart, daemon loaded:", "monitor.daemon" in sys.modules)
            raise SystemExit(0)

        def starting(*_):
            print("no prestart, daemon loaded:", "monitor.daemon" in sys.modules)
            print("switch interval:", sys.getswitchinterval(), "gc:", gc.get_threshold())
            raise SystemExit(0)

        parse_pool.prestart = prestart
        cli._starting = starting
        sys.argv = ["replywatch", "run", "-c", sys.argv[1]]
        cli.main()
        """
    )
    imap = {"kind": "imap", "host": "127.0.0.1", "port": 1993, "username": "u",
            "password_env": "RW_TEST_NONE", "folders": {"inbox": "INBOX"}}  # fmt: skip
    maildir = {"kind": "maildir", "path": str(tmp_path / "Maildir")}
    (tmp_path / "Maildir").mkdir()
    cases = (
        ("imap", imap, "prestart, daemon loaded: False"),
        ("maildir", maildir, "no prestart, daemon loaded: True"),
    )
    settings = f"switch interval: {cli.SWITCH_INTERVAL} gc: {cli.GC_THRESHOLDS}"
    for name, source, said in cases:
        config = tmp_path / f"{name}.yaml"
        config.write_text(
            "store: {url: 'sqlite:///" + str(tmp_path / f"{name}.db") + "'}\n"
            "http: {listen: '127.0.0.1:9'}\n"
            "calendars: {office: {timezone: UTC, hours: {mon-fri: '09:00-17:00'}}}\n"
            f"sources: {{mail: {json.dumps(source)}}}\n"
            "teams: {support: {calendar: office, addresses: [support@example.org], sources: [mail],\n"
            "  members: [{name: Ann, email: [ann@example.org]}],\n"
            "  rules: [{kind: reply_within, within: 8h}]}}\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "RW_TEST_NONE": "secret"},
        )
        expected = [said] if name == "imap" else [said, settings]  # and the daemon's GIL and gc settings
        assert done.stdout.splitlines() == expected, done.stdout + done.stderr
