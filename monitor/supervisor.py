"""Runs every scheduled job: backoff per error class, Retry-After, failure/recovery logging, job health."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from monitor.sources.base import SourceError

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]
Timer = Callable[[], float]
Reschedule = Callable[[str, datetime], None]
"""Told a failing job's key and its next attempt, so that a scheduler can run it right then."""

POLL = "poll"
"""The kind of a source's poll job (named after the source)."""
EVALUATE = "evaluate"
"""The kind of a team's evaluation (named after the team)."""
DISPATCH = "dispatch"
"""The kind of the outbox dispatcher's job (named ``outbox``)."""
REPORT = "report"
"""The kind of the job that owes teams their scheduled reports (named ``schedule``)."""
INTERNAL = "internal"
"""The reason of an unexpected exception (a bug or an unreachable store), not a :class:`SourceError`."""
SLOW_REASONS = frozenset({"auth", "config"})
"""Errors a retry soon would not cure: the user must fix credentials or configuration."""
DURATION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
"""Upper bounds, in seconds, of the histogram of one attempt's duration."""
MIN_RETRY = timedelta(seconds=1)
"""A ``retry_after`` of zero still waits this long, so that a busy server is not hammered."""


@dataclass(frozen=True, slots=True)
class Job:
    """One supervised unit of work: what it is, what it works on, and how often it normally runs."""

    kind: str
    """What the job does: :data:`POLL` (a source), :data:`EVALUATE` (a team)."""
    name: str
    """What it works on: the source or team name."""
    every: timedelta
    """Its normal interval; backoff from transient errors starts here."""
    subject: str = "job"
    """First word of its log lines (``source failed: ...``)."""
    field: str = "job"
    """The structured log field that carries ``name`` (``source=...``, ``team=...``)."""

    @property
    def key(self) -> str:
        """``kind:name``: the job's identity in health records (and the scheduler's job id for polls)."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long a failing job waits before its next attempt, by the class of its error."""

    cap: timedelta = timedelta(minutes=15)
    """Longest wait after transient and internal errors (doubling from the job's interval up to here)."""
    slow: timedelta = timedelta(minutes=15)
    """Fixed wait after an auth or config error: retrying sooner would not help and may lock an account."""
    retry_after_cap: timedelta = timedelta(hours=1)
    """Longest wait a server's ``retry_after`` may impose."""

    def delay(self, reason: str, failures: int, every: timedelta, retry_after: timedelta | None) -> timedelta:
        """The wait after the ``failures``-th failure in a row of a job that normally runs ``every``."""
        if retry_after is not None:  # what the server asked for, exactly (within sane bounds)
            return min(max(retry_after, MIN_RETRY), self.retry_after_cap)
        if reason in SLOW_REASONS:
            return max(self.slow, every)
        return min(every * (1 << min(failures - 1, 30)), max(self.cap, every))


@dataclass(frozen=True, slots=True)
class JobHealth:
    """What is known about one job's attempts, as of one snapshot."""

    kind: str
    name: str
    up: bool
    """Whether the last attempt succeeded."""
    last_success: datetime | None
    errors: Mapping[str, int]
    """Failed attempts by reason, since the process started."""
    duration_buckets: tuple[int, ...]
    """Cumulative counts of attempts per :data:`DURATION_BUCKETS` bound."""
    duration_sum: float
    duration_count: int
    failures: int
    """Consecutive failures (0 when up)."""
    failing_since: datetime | None
    reason: str | None
    """The reason of the last failure while failing."""
    next_attempt: datetime | None
    """While failing: no attempt before this time."""


@dataclass
class _Record:
    """The mutable health of one job, guarded by the supervisor's lock."""

    kind: str
    name: str
    up: bool = False
    last_success: datetime | None = None
    errors: dict[str, int] = field(default_factory=dict)
    duration_buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    duration_sum: float = 0.0
    duration_count: int = 0
    failures: int = 0
    failing_since: datetime | None = None
    reason: str | None = None
    next_attempt: datetime | None = None

    def observe(self, seconds: float) -> None:
        """Count one attempt that took ``seconds``."""
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.duration_buckets[i] += 1
        self.duration_sum += seconds
        self.duration_count += 1

    def health(self) -> JobHealth:
        """An immutable copy."""
        return JobHealth(
            kind=self.kind,
            name=self.name,
            up=self.up,
            last_success=self.last_success,
            errors=dict(self.errors),
            duration_buckets=tuple(self.duration_buckets),
            duration_sum=self.duration_sum,
            duration_count=self.duration_count,
            failures=self.failures,
            failing_since=self.failing_since,
            reason=self.reason,
            next_attempt=self.next_attempt,
        )


class Supervisor:
    """Runs jobs, backs failing ones off by error class, logs state changes, and keeps their health."""

    def __init__(
        self,
        clock: Clock,
        *,
        policy: RetryPolicy | None = None,
        timer: Timer = time.monotonic,
        reschedule: Reschedule | None = None,
    ) -> None:
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._timer = timer
        self._reschedule = reschedule
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._running: dict[str, threading.Lock] = {}

    def run(self, job: Job, step: Callable[[], T]) -> T | None:
        """Run ``step`` unless ``job`` is backing off; None when skipped or failed (never raises).

        The same job never runs twice at once: a second caller waits for the first.
        """
        with self._lock:
            running = self._running.setdefault(job.key, threading.Lock())
        with running:
            with self._lock:
                record = self._records.get(job.key)
                retry_at = record.next_attempt if record is not None else None
                if retry_at is not None and self._clock() < retry_at:
                    return None
            started = self._timer()
            try:
                result = step()
            except Exception as err:
                self._failed(job, err, self._timer() - started)
                return None
            self._succeeded(job, self._timer() - started)
            return result

    def retry_now(self, key: str) -> None:
        """Let the next attempt of a failing job run at once (its config changed)."""
        with self._lock:
            record = self._records.get(key)
            if record is not None:
                record.next_attempt = None

    def snapshot(self) -> Mapping[str, JobHealth]:
        """Every job that ran at least once, by key; one consistent copy."""
        with self._lock:
            return {key: record.health() for key, record in self._records.items()}

    def last_successes(self, kind: str) -> dict[str, datetime]:
        """When each job of ``kind`` last succeeded, by name (jobs that never did are left out): what
        every evaluation reads, without copying every job's health."""
        with self._lock:
            return {
                r.name: r.last_success
                for r in self._records.values()
                if r.kind == kind and r.last_success is not None
            }

    def _record(self, job: Job) -> _Record:
        return self._records.setdefault(job.key, _Record(job.kind, job.name))

    def _succeeded(self, job: Job, seconds: float) -> None:
        with self._lock:
            record = self._record(job)
            now = self._clock()
            failures, since = record.failures, record.failing_since
            record.up = True
            record.last_success = now
            record.observe(seconds)
            record.failures = 0
            record.failing_since = record.reason = record.next_attempt = None
        if failures:
            failed_for = (now - since).total_seconds() if since is not None else 0.0
            log.info(
                "%s recovered",
                job.subject,
                extra={job.field: job.name, "failures": failures, "failed_seconds": round(failed_for)},
            )

    def _failed(self, job: Job, err: Exception, seconds: float) -> None:
        if isinstance(err, SourceError):
            reason, retry_after, text = err.reason, err.retry_after, str(err)
        else:
            reason, retry_after, text = INTERNAL, None, f"{type(err).__name__}: {err}"
        with self._lock:
            record = self._record(job)
            now = self._clock()
            started_failing = record.failures == 0
            reason_changed = record.reason != reason
            record.up = False
            record.errors[reason] = record.errors.get(reason, 0) + 1
            record.observe(seconds)
            record.failures += 1
            if started_failing:
                record.failing_since = now
            record.reason = reason
            delay = self._policy.delay(reason, record.failures, job.every, retry_after)
            record.next_attempt = retry_at = now + delay
        if started_failing or reason_changed:  # a change of state; repeats are not logged
            log.error(
                "%s failed: %s",
                job.subject,
                text,
                extra={
                    job.field: job.name,
                    "reason": reason,
                    "retry_in_seconds": round(delay.total_seconds()),
                },
                exc_info=err if reason == INTERNAL else None,
            )
        if self._reschedule is not None:
            self._reschedule(job.key, retry_at)
