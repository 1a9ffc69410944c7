"""The supervisor with a fake clock: backoff per error class, Retry-After, log lines, job health."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from monitor.sources.base import (
    AuthSourceError,
    PermanentSourceError,
    SourceError,
    TransientSourceError,
)
from monitor.supervisor import DURATION_BUCKETS, EVALUATE, POLL, Job, RetryPolicy, Supervisor

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
JOB = Job(POLL, "mail", MINUTE, subject="source", field="source")


class FakeClock:
    """Wall clock and monotonic timer the test moves by hand."""

    def __init__(self) -> None:
        self.now = NOW
        self.elapsed = 0.0

    def __call__(self) -> datetime:
        return self.now

    def timer(self) -> float:
        return self.elapsed


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def supervisor(clock: FakeClock) -> Supervisor:
    return Supervisor(clock, timer=clock.timer)


def raising(err: Exception) -> Callable[[], None]:
    def step() -> None:
        raise err

    return step


def fail_until_due(supervisor: Supervisor, clock: FakeClock, err: Exception, times: int) -> list[timedelta]:
    """Fail ``times`` attempts, each at the earliest moment allowed; the waits the supervisor imposed."""
    waits = []
    for _ in range(times):
        assert supervisor.run(JOB, raising(err)) is None
        retry_at = supervisor.snapshot()[JOB.key].next_attempt
        assert retry_at is not None
        waits.append(retry_at - clock.now)
        clock.now = retry_at
    return waits


@pytest.mark.parametrize(
    "err",
    [TransientSourceError("timed out"), SourceError("odd"), ZeroDivisionError("bug")],
    ids=["transient", "plain", "internal"],
)
def test_transient_and_internal_errors_double_from_the_interval_up_to_the_cap(
    supervisor: Supervisor, clock: FakeClock, err: Exception
) -> None:
    waits = fail_until_due(supervisor, clock, err, 7)
    assert waits == [MINUTE * n for n in (1, 2, 4, 8, 15, 15, 15)]


def test_an_interval_longer_than_the_cap_is_the_shortest_wait(
    supervisor: Supervisor, clock: FakeClock
) -> None:
    hourly = Job(POLL, "archive", timedelta(hours=1))
    for _ in range(3):
        supervisor.run(hourly, raising(TransientSourceError("down")))
        retry_at = supervisor.snapshot()[hourly.key].next_attempt
        assert retry_at == clock.now + timedelta(hours=1)
        clock.now = retry_at


@pytest.mark.parametrize(
    "err", [AuthSourceError("login refused"), PermanentSourceError("folder 'Inbx' not found")]
)
def test_auth_and_config_errors_are_retried_slowly_from_the_first_failure(
    supervisor: Supervisor, clock: FakeClock, err: Exception
) -> None:
    assert fail_until_due(supervisor, clock, err, 4) == [timedelta(minutes=15)] * 4


def test_the_policy_is_configurable(clock: FakeClock) -> None:
    policy = RetryPolicy(cap=timedelta(minutes=5), slow=timedelta(hours=1))
    supervisor = Supervisor(clock, policy=policy, timer=clock.timer)
    assert fail_until_due(supervisor, clock, TransientSourceError("x"), 5)[-1] == timedelta(minutes=5)
    supervisor.run(JOB, lambda: None)
    assert fail_until_due(supervisor, clock, AuthSourceError("x"), 1) == [timedelta(hours=1)]


def test_retry_after_is_honoured_exactly_whatever_the_error_class(
    supervisor: Supervisor, clock: FakeClock
) -> None:
    fail_until_due(supervisor, clock, TransientSourceError("down"), 5)  # backoff is at 15 minutes now
    busy = TransientSourceError("429 Too Many Requests", retry_after=timedelta(seconds=37))
    assert fail_until_due(supervisor, clock, busy, 2) == [timedelta(seconds=37)] * 2
    auth_busy = AuthSourceError("ErrorServerBusy", retry_after=timedelta(minutes=2))
    assert fail_until_due(supervisor, clock, auth_busy, 1) == [timedelta(minutes=2)]


def test_no_attempt_runs_before_retry_after(supervisor: Supervisor, clock: FakeClock) -> None:
    calls: list[datetime] = []

    def step() -> str:
        calls.append(clock.now)
        if len(calls) == 1:
            raise TransientSourceError("busy", retry_after=timedelta(seconds=90))
        return "polled"

    assert supervisor.run(JOB, step) is None
    clock.now = NOW + timedelta(seconds=89)
    assert supervisor.run(JOB, step) is None  # skipped: the step did not run
    assert calls == [NOW]
    clock.now = NOW + timedelta(seconds=90)
    assert supervisor.run(JOB, step) == "polled"
    assert calls == [NOW, NOW + timedelta(seconds=90)]


def test_retry_after_is_capped_and_never_zero(supervisor: Supervisor, clock: FakeClock) -> None:
    huge = TransientSourceError("come back tomorrow", retry_after=timedelta(days=1))
    assert fail_until_due(supervisor, clock, huge, 1) == [timedelta(hours=1)]
    zero = TransientSourceError("now", retry_after=timedelta(0))
    assert fail_until_due(supervisor, clock, zero, 1) == [timedelta(seconds=1)]


def test_one_line_when_failing_starts_and_one_when_it_recovers(
    supervisor: Supervisor, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="monitor.supervisor")
    fail_until_due(supervisor, clock, TransientSourceError("imap.example.com: timed out"), 20)
    assert supervisor.run(JOB, lambda: True) is True
    clock.now += MINUTE
    assert supervisor.run(JOB, lambda: True) is True
    failed, recovered = caplog.records
    assert (failed.levelno, failed.getMessage()) == (
        logging.ERROR,
        "source failed: imap.example.com: timed out",
    )
    fields = vars(failed)
    assert (fields["source"], fields["reason"], fields["retry_in_seconds"]) == ("mail", "transient", 60)
    assert failed.exc_info is None
    assert (recovered.levelno, recovered.getMessage()) == (logging.INFO, "source recovered")
    assert vars(recovered)["failures"] == 20
    # 1 + 2 + 4 + 8 + 16 * 15 minutes between the first failure and the success
    assert vars(recovered)["failed_seconds"] == (15 + 16 * 15) * 60


def test_an_internal_error_logs_its_traceback_only_once(
    supervisor: Supervisor, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="monitor.supervisor")
    fail_until_due(supervisor, clock, KeyError("team"), 5)
    (record,) = caplog.records
    assert record.getMessage() == "source failed: KeyError: 'team'"
    assert vars(record)["reason"] == "internal"
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_a_new_reason_while_failing_is_logged_once(
    supervisor: Supervisor, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="monitor.supervisor")
    fail_until_due(supervisor, clock, TransientSourceError("timed out"), 3)
    fail_until_due(supervisor, clock, AuthSourceError("login refused"), 3)
    assert [(r.getMessage(), vars(r)["reason"]) for r in caplog.records] == [
        ("source failed: timed out", "transient"),
        ("source failed: login refused", "auth"),
    ]
    assert supervisor.snapshot()[JOB.key].failures == 6


def test_health_snapshot(supervisor: Supervisor, clock: FakeClock) -> None:
    def slow_step(seconds: float, err: Exception | None = None) -> Callable[[], None]:
        def step() -> None:
            clock.elapsed += seconds
            if err is not None:
                raise err

        return step

    assert supervisor.snapshot() == {}
    supervisor.run(JOB, slow_step(0.2))
    clock.now = NOW + MINUTE
    supervisor.run(JOB, slow_step(3.0, AuthSourceError("refused")))
    health = supervisor.snapshot()[JOB.key]
    assert (health.kind, health.name, health.up) == (POLL, "mail", False)
    assert health.last_success == NOW
    assert dict(health.errors) == {"auth": 1}
    assert (health.failures, health.failing_since, health.reason) == (1, NOW + MINUTE, "auth")
    assert health.next_attempt == NOW + MINUTE + timedelta(minutes=15)
    assert health.duration_count == 2 and health.duration_sum == pytest.approx(3.2)
    assert DURATION_BUCKETS == (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
    assert health.duration_buckets == (0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2)  # cumulative: 0.2 s and 3 s

    clock.now = NOW + timedelta(minutes=16)
    supervisor.run(JOB, slow_step(0.1))
    assert health.up is False  # a snapshot is a copy
    after = supervisor.snapshot()[JOB.key]
    assert (after.up, after.last_success, after.failures) == (True, clock.now, 0)
    assert (after.failing_since, after.reason, after.next_attempt) == (None, None, None)
    assert dict(after.errors) == {"auth": 1}


def test_retry_now_lifts_the_wait(supervisor: Supervisor, clock: FakeClock) -> None:
    supervisor.run(JOB, raising(PermanentSourceError("path missing")))
    assert supervisor.run(JOB, lambda: "skipped") is None
    supervisor.retry_now(JOB.key)
    assert supervisor.run(JOB, lambda: "ran") == "ran"


def test_the_scheduler_is_told_when_to_retry(clock: FakeClock) -> None:
    told: list[tuple[str, datetime]] = []
    supervisor = Supervisor(clock, timer=clock.timer, reschedule=lambda key, at: told.append((key, at)))
    supervisor.run(JOB, raising(TransientSourceError("busy", retry_after=timedelta(seconds=5))))
    supervisor.run(JOB, lambda: None)  # skipped: too early
    assert told == [("poll:mail", NOW + timedelta(seconds=5))]


def test_jobs_back_off_independently(supervisor: Supervisor, clock: FakeClock) -> None:
    other = Job(POLL, "archive", MINUTE)
    supervisor.run(JOB, raising(AuthSourceError("refused")))
    assert supervisor.run(other, lambda: "fine") == "fine"
    assert supervisor.run(JOB, lambda: "too early") is None


def test_a_job_never_runs_twice_at_once(supervisor: Supervisor) -> None:
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        order.append("first in")
        inside.set()
        release.wait(5)
        order.append("first out")

    thread = threading.Thread(target=supervisor.run, args=(JOB, first))
    thread.start()
    assert inside.wait(5)
    second = threading.Thread(target=supervisor.run, args=(JOB, lambda: order.append("second")))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waits for the first run
    release.set()
    thread.join(5)
    second.join(5)
    assert order == ["first in", "first out", "second"]


def test_last_successes_are_those_of_one_kind_that_ever_succeeded(
    supervisor: Supervisor, clock: FakeClock
) -> None:
    supervisor.run(JOB, lambda: True)
    clock.now = NOW + MINUTE
    supervisor.run(Job(POLL, "broken", MINUTE, subject="source", field="source"), raising(SourceError("x")))
    supervisor.run(Job(EVALUATE, "support", MINUTE, subject="evaluation", field="team"), lambda: 1)
    assert supervisor.last_successes(POLL) == {"mail": NOW}
    assert supervisor.last_successes(EVALUATE) == {"support": NOW + MINUTE}
    assert {h.name: h.last_success for h in supervisor.snapshot().values() if h.kind == POLL} == {
        "mail": NOW,
        "broken": None,
    }
