"""The poll executor: a thread per run, none between runs; one job never runs twice at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler

from monitor.thread_per_run import ThreadPerRun


@pytest.fixture
def scheduler() -> Iterator[BackgroundScheduler]:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    yield scheduler
    scheduler.shutdown(wait=True)


def _named(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def _wait(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_slow_run_holds_up_only_its_own_job(scheduler: BackgroundScheduler) -> None:
    slow_executor, quick_executor = ThreadPerRun("poll-slow"), ThreadPerRun("poll-quick")
    scheduler.add_executor(slow_executor, alias="slow")
    scheduler.add_executor(quick_executor, alias="quick")
    release = threading.Event()
    quick_runs: list[str] = []
    skipped: list[str] = []
    scheduler.add_listener(lambda e: skipped.append(e.job_id), EVENT_JOB_MAX_INSTANCES)

    scheduler.add_job(release.wait, "interval", seconds=0.2, id="slow", executor="slow",
                      next_run_time=datetime.now(UTC), max_instances=1, misfire_grace_time=60)  # fmt: skip
    scheduler.add_job(lambda: quick_runs.append(threading.current_thread().name), "interval", seconds=0.1,
                      id="quick", executor="quick", next_run_time=datetime.now(UTC))  # fmt: skip

    _wait(lambda: len(quick_runs) >= 5 and "slow" in skipped)  # the slow job is still in its first run
    assert set(quick_runs) == {"poll-quick"}
    assert len(_named("poll-slow")) == 1  # one run, never a second beside it
    release.set()
    scheduler.remove_job("quick")
    scheduler.remove_job("slow")
    _wait(lambda: _named("poll-slow") == _named("poll-quick") == [])  # no thread is kept between runs


def test_a_failing_run_is_reported_and_leaves_no_thread(scheduler: BackgroundScheduler) -> None:
    executor = ThreadPerRun("poll-failing")
    scheduler.add_executor(executor, alias="failing")
    events: list[JobEvent] = []
    scheduler.add_listener(events.append, EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)

    def fail() -> None:
        raise RuntimeError("the server went away")

    scheduler.add_job(fail, id="failing", executor="failing", next_run_time=datetime.now(UTC))
    _wait(lambda: events)
    assert isinstance(events[0].exception, RuntimeError)
    _wait(lambda: _named("poll-failing") == [])


def test_shutdown_waits_for_the_runs_under_way() -> None:
    executor = ThreadPerRun("poll-shutdown")
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_executor(executor, alias="x")
    scheduler.start()
    done: list[bool] = []

    def slow() -> None:
        time.sleep(0.3)
        done.append(True)

    scheduler.add_job(slow, id="x", executor="x", next_run_time=datetime.now(UTC))
    _wait(lambda: len(_named("poll-shutdown")) == 1)
    scheduler.shutdown(wait=True)
    assert done == [True]
