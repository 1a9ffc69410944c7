"""The daemon: one scheduled job per source, an evaluation job, the HTTP server, signals."""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry

from monitor import config as config_mod
from monitor.config import ConfigError, LoadedConfig
from monitor.evaluate import Evaluator
from monitor.exporters.http import MetricsServer
from monitor.exporters.outbox import Dispatcher, build_notifiers
from monitor.exporters.prometheus import DaemonState, ReplywatchCollector
from monitor.freshness import TeamFreshness, team_freshness
from monitor.memory import return_free_memory
from monitor.plugins import SecretError
from monitor.sources import parse_pool
from monitor.sources.base import SOURCES, Cursor, PollResult, Source, SourceConfigBase
from monitor.store.db import Store
from monitor.store.outbox import Outbox
from monitor.supervisor import DISPATCH, EVALUATE, POLL, REPORT, Job, Supervisor
from monitor.thread_per_run import ThreadPerRun

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
STOP_GRACE_SECONDS = 8.0


def utcnow() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def build_source(name: str, cfg: SourceConfigBase) -> Source:
    """A source plugin from its validated config (no I/O)."""
    return SOURCES.get(cfg.kind).factory(name, cfg)


def store_password(loaded: LoadedConfig) -> str | None:
    """The database password from env/file, if the config names one."""
    ref = loaded.config.store.password
    try:
        return ref.reveal().get_secret_value() if ref else None
    except SecretError as err:
        raise ConfigError([f"store.{err}"]) from err


class Daemon:
    """Runs replywatch: polls sources, evaluates rules, serves metrics until stopped."""

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        clock: Clock = utcnow,
        source_factory: Callable[[str, Any], Source] = build_source,
        listen: tuple[str, int] | None = None,
        store: Store | None = None,
    ) -> None:
        self.loaded = loaded
        self.clock = clock
        self.source_factory = source_factory
        self.supervisor = Supervisor(clock, reschedule=self._run_job_at)
        self.watching_since = clock()
        """When this process began to watch: a source never read is missing since then."""
        self.store = store or Store.open(loaded.config.store.url, store_password(loaded))
        self.evaluator = Evaluator(self.store, loaded.config)
        self.dispatcher = Dispatcher(
            Outbox(self.store), lambda: self.loaded.config, build_notifiers(loaded.config)
        )
        self.state = DaemonState(self.supervisor, notifications=self.dispatcher.snapshot, clock=clock)
        self.sources: dict[str, Source] = {}
        self._reports_owed: set[tuple[str, str]] = set()
        """(team, period) of the reports this process has owed already."""
        self._source_cfgs: dict[str, SourceConfigBase] = {}
        self._evaluate_lock = threading.Lock()
        self._evaluating = 0
        self._evaluate_again = False
        """A poll changed data while an evaluation ran: it runs once more before it ends."""
        self._evaluate_asked = False
        """An evaluation was asked for (:meth:`_evaluate_soon`) and has not started judging yet."""
        self._asked_times: set[datetime] = set()
        """The run times of asked-for evaluations the scheduler has not taken yet: a skip of one is no
        news (:meth:`_on_skipped`)."""
        self._lock = threading.RLock()
        self._running = 0
        self._idle = threading.Condition(self._lock)
        self.stopping = threading.Event()
        self.registry = CollectorRegistry()
        self.registry.register(ReplywatchCollector(self.store, lambda: self.loaded.config, self.state))
        host, port = listen or (loaded.config.http.host, loaded.config.http.port)
        self.http = MetricsServer(host, port, self.registry, self.ready)
        # Each source polls on its own thread and evaluation on another: a server that answers a byte at
        # a time holds up only its own source, never the others or the verdicts (issue 7). The HTTP
        # server has its own threads (MetricsServer).
        self.scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(max_workers=4),
                EVALUATE: ThreadPoolExecutor(max_workers=1),
                DISPATCH: ThreadPoolExecutor(max_workers=1),  # a slow mail server never holds up verdicts
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
            timezone=UTC,
        )
        self.scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        self.scheduler.add_listener(self._on_evaluation_taken, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED)
        self._still_running: set[str] = set()
        self._last_saved: dict[str, SavedPoll] = {}
        """Each source's last saved cursor and counts: a poll that finds the same writes nothing."""

    # -- lifecycle ------------------------------------------------------------------------------

    def ready(self) -> bool:
        """Config loaded, store reachable, and every team judged once on complete data."""
        if self.stopping.is_set():
            return False
        teams = set(self.loaded.config.teams)
        return teams <= self.state.completed_once and self.store.ping()

    def freshness(self, now: datetime) -> dict[str, TeamFreshness]:
        """Each team's freshness at ``now``, from its sources' last successful polls in this process."""
        config = self.loaded.config
        polls = self.supervisor.last_successes(POLL)
        limits = config.staleness_limits()
        return {
            team: team_freshness(
                team,
                [s for s in cfg.sources if s in limits],
                polls,
                limits,
                self.watching_since,
                now,
            )
            for team, cfg in config.teams.items()
        }

    def start(self) -> None:
        """Migrate the store, start HTTP and the scheduled jobs."""
        _quiet_skip_warnings()
        self.store.upgrade()
        self.http.start()
        self._apply_sources()
        self._schedule_evaluation()
        self._schedule_dispatch()
        self.scheduler.start()
        log.info(
            "replywatch started",
            extra={
                "listen": f"{self.http.httpd.server_address[0]!s}:{self.http.port}",
                "sources": len(self.sources),
                "teams": len(self.loaded.config.teams),
            },
        )

    def stop(self) -> bool:
        """Finish the current step, then stop everything (bounded by a grace period).

        Returns True when a step was still running after the grace period (a server that stopped
        answering mid-poll): the caller may then exit without waiting for it. Nothing is lost: a poll's
        events and cursor are stored in one transaction, so an unfinished poll is simply done again.
        """
        self.stopping.set()
        with contextlib.suppress(Exception):  # already stopped
            self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        with self._idle:
            while self._running and time.monotonic() < deadline:
                self._idle.wait(timeout=max(0.0, deadline - time.monotonic()))
            stuck = self._running > 0
        self.http.stop()
        if stuck:
            log.warning("a step is still running after %.0f s; not waiting for it", STOP_GRACE_SECONDS)
        else:
            for source in self.sources.values():
                _close_quietly(source)
            parse_pool.close_shared()
        self.store.close()
        log.info("replywatch stopped")
        return stuck

    def run_forever(self) -> bool:
        """Start, then block until SIGTERM/SIGINT; SIGHUP reloads the config. True: a step was stuck."""
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self._on_hup)
        self.start()
        self._reload_requested = threading.Event()
        while not self.stopping.is_set():
            if self._reload_requested.wait(timeout=0.5):
                self._reload_requested.clear()
                self.reload()
        return self.stop()

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("stopping on signal", extra={"signal": signal.Signals(signum).name})
        self.stopping.set()

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload_requested.set()

    # -- config reload --------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the config file; on any error keep the running config and say so."""
        path = self.loaded.path
        if path is None:
            return False
        try:
            fresh = config_mod.load(path)
        except ConfigError as err:
            self.state.config_reload_ok = False
            log.error("config reload failed, keeping the running config", extra={"errors": err.errors})
            return False
        with self._lock:
            if fresh.config.http != self.loaded.config.http:
                log.warning("http.listen changed: restart replywatch to apply it")
            if fresh.config.store != self.loaded.config.store:
                log.warning("store changed: restart replywatch to apply it")
            old = self.loaded
            try:
                self.loaded = fresh
                self.evaluator.reconfigure(fresh.config)
                self.dispatcher.notifiers = build_notifiers(fresh.config)
                self._reports_owed.clear()  # new recipients are owed the current period's report
                self._apply_sources()
                self._schedule_evaluation()
                self._schedule_dispatch()
            except Exception:
                log.exception("config reload failed while applying it, going back to the running config")
                self.loaded = old
                self.evaluator.reconfigure(old.config)
                self.dispatcher.notifiers = build_notifiers(old.config)
                self._apply_sources()
                self._schedule_evaluation()
                self._schedule_dispatch()
                self.state.config_reload_ok = False
                return False
            if fresh.config.log != old.config.log:  # as documented: --log-level/--log-format may rule
                log.warning("log changed: restart replywatch to apply it")
        self.state.config_reload_ok = True
        log.info("config reloaded", extra={"sources": len(self.sources), "teams": len(fresh.config.teams)})
        return True

    def _apply_sources(self) -> None:
        """Create, replace or drop sources and their jobs to match the config."""
        wanted = dict(self.loaded.sources)
        for name in list(self.sources):
            if name not in wanted or wanted[name] != self._source_cfgs.get(name):
                _close_quietly(self.sources.pop(name))
                self._last_saved.pop(name, None)
                key = _poll_job(name, self._source_cfgs.pop(name)).key
                if self.scheduler.get_job(key):
                    self.scheduler.remove_job(key)
                self.scheduler.remove_executor(key, shutdown=False)  # a stuck poll's thread ends on its own
        for name, cfg in wanted.items():
            if name in self.sources:
                continue
            self.sources[name] = self.source_factory(name, cfg)
            self._source_cfgs[name] = cfg
            self.supervisor.retry_now(_poll_job(name, cfg).key)  # a changed config may have fixed it
            every = cfg.poll_every.total_seconds()  # SourceConfigBase: validated, at least 1s
            key = _poll_job(name, cfg).key
            # Each poll runs on a thread started for it: a slow server holds up only its own source, and
            # an idle source holds no thread.
            self.scheduler.add_executor(ThreadPerRun(f"poll-{name}"), alias=key)
            self.scheduler.add_job(
                self._guarded(self.poll_source, key),
                "interval",
                executor=key,
                args=[name],
                seconds=every,
                jitter=min(every * 0.1, 10),
                id=_poll_job(name, cfg).key,
                next_run_time=datetime.now(UTC),
                replace_existing=True,
            )

    def _schedule_evaluation(self) -> None:
        every = self.loaded.config.engine.evaluate_every.total_seconds()
        self.scheduler.add_job(
            self._guarded(self.evaluate, "evaluate"),
            "interval",
            executor=EVALUATE,
            seconds=every,
            id="evaluate",
            next_run_time=datetime.now(UTC) + timedelta(seconds=1),
            replace_existing=True,
        )

    def _schedule_dispatch(self) -> None:
        every = self.loaded.config.engine.evaluate_every.total_seconds()
        self.scheduler.add_job(
            self._guarded(self.dispatch, "dispatch"),
            "interval",
            executor=DISPATCH,
            seconds=every,
            id="dispatch",
            next_run_time=datetime.now(UTC) + timedelta(seconds=2),
            replace_existing=True,
        )

    def _guarded(self, fn: Callable[..., Any], key: str) -> Callable[..., Any]:
        """Count running steps, so that stop can wait for them; no new step starts once stopping."""

        def run(*args: Any) -> None:
            if self.stopping.is_set():
                return
            with self._lock:
                self._running += 1
                if key in self._still_running:
                    self._still_running.discard(key)
                    log.info("%s runs again", key, extra={"job": key})
            try:
                fn(*args)
            finally:
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()

        run.__name__ = fn.__name__
        return run

    def _on_skipped(self, event: JobEvent) -> None:
        """A scheduled run found the previous one still running: said once until the job runs again.

        An evaluation asked for by a poll and skipped is no news: the run in the way has either not
        started judging yet (it will see the poll's data), is judging (it judges once more), or has
        just finished judging (asked for again shortly)."""
        if event.job_id == "evaluate":
            with self._lock:
                asked = self._asked_times.intersection(event.scheduled_run_times)
                self._asked_times.difference_update(asked)
                judging = bool(self._evaluating)
                if asked and judging:
                    self._evaluate_again = True
                    self._evaluate_asked = False
            if asked:
                if not judging:
                    self._ask_evaluation(datetime.now(UTC) + timedelta(seconds=0.05))
                return
        with self._lock:
            if event.job_id in self._still_running:
                return
            self._still_running.add(event.job_id)
        log.warning("%s skipped: still running", event.job_id, extra={"job": event.job_id})

    def _run_job_at(self, key: str, when: datetime) -> None:
        """Move a scheduled job's next run to the supervisor's retry time (Retry-After may be sooner)."""
        job = self.scheduler.get_job(key) if self.scheduler.running else None
        if job is not None:
            with contextlib.suppress(JobLookupError):  # removed by a reload meanwhile
                job.modify(next_run_time=when)

    # -- jobs -----------------------------------------------------------------------------------

    def poll_source(self, name: str) -> bool:
        """Poll one source and store what it found with its cursor; returns True when data changed.

        Supervised: a failing source backs off and is logged once; a source is never polled twice at once
        (its connection and cursor are one).
        """
        source = self.sources.get(name)
        cfg = self._source_cfgs.get(name)
        if source is None or cfg is None:
            return False
        changed = bool(self.supervisor.run(_poll_job(name, cfg), lambda: self._poll(name, source)))
        if changed:
            self._evaluate_soon()
        return changed

    def _poll(self, name: str, source: Source) -> bool:
        last = self._last_saved.get(name)
        result = source.poll(last.cursor if last is not None else self.store.load_cursor(name))
        now = self.clock()
        cfg = self._source_cfgs.get(name)
        heartbeat = cfg.staleness_limit / 2 if cfg is not None else timedelta(0)
        if last is not None and last.unchanged_by(result):
            # Nothing moved: nothing is written (the store's cursor and counts still hold), but the
            # store's last poll time, read by `status` beside the daemon, at half the staleness limit.
            if now - last.at >= heartbeat:
                if not self.store.touch_poll(name, now):  # its row is gone: written again in full
                    self.store.save_poll(name, result, now)
                self._last_saved[name] = replace(last, at=now)
            return False
        saved = self.store.save_poll(name, result, now)
        self._last_saved[name] = SavedPoll.of(result, now)
        changed = bool(saved.inserted or saved.updated or saved.removed)
        if changed:
            counts = {"new": saved.inserted, "changed": saved.updated, "removed": saved.removed}
            log.debug("ingested", extra={"source": name, **counts})
        return changed

    def _evaluate_soon(self) -> None:
        """Evaluate now; while an evaluation runs, once more as soon as it ends (a scheduled run would
        find it running and be skipped: at a start with many mailboxes, every poll asks for one)."""
        with self._lock:
            if self._evaluating:
                self._evaluate_again = True
                return
            if self._evaluate_asked:  # asked for and not started yet: it will see this poll's data
                return
        self._ask_evaluation(datetime.now(UTC))

    def _on_evaluation_taken(self, event: JobEvent) -> None:
        """The scheduler took an evaluation run (submitted, or too late to start)."""
        if event.job_id == "evaluate":
            with self._lock:
                self._asked_times.difference_update(event.scheduled_run_times)
                if event.code == EVENT_JOB_MISSED:  # it will not judge: the next poll asks anew
                    self._evaluate_asked = False

    def _ask_evaluation(self, when: datetime) -> None:
        """Move the evaluation's next run to ``when``; noted as asked until it starts judging."""
        job = self.scheduler.get_job("evaluate") if self.scheduler.running else None
        if job is None:
            return
        with self._lock:
            self._evaluate_asked = True
            self._asked_times.add(when)
        try:
            job.modify(next_run_time=when)
        except JobLookupError:  # removed by a reload or a stop meanwhile
            with self._lock:
                self._evaluate_asked = False
                self._asked_times.discard(when)

    def evaluate(self) -> None:
        """Evaluate every team, each on its own: one team's failure never stops the others; again while
        polls changed data meanwhile."""
        with self._lock:  # a poll sees either an evaluation asked for or one judging, never neither
            self._evaluating += 1
            self._evaluate_asked = False
        while True:
            try:
                self._evaluate_once()
            except BaseException:
                with self._lock:
                    self._evaluating -= 1
                raise
            with self._lock:  # deciding and saying so at once: a poll's request is never left behind
                again = self._evaluate_again and not self.stopping.is_set()
                self._evaluate_again = False
                if not again:
                    self._evaluating -= 1
            if not again:
                return_free_memory()  # what the polls and this evaluation freed (rate-limited)
                return

    def _evaluate_once(self) -> None:
        with self._lock:
            evaluator = self.evaluator
            teams = list(self.loaded.config.teams)
            every = self.loaded.config.engine.evaluate_every
        with self._evaluate_lock:  # one evaluation at a time: transitions are read-then-write
            held = self.store.held.mark()
            try:
                self._judge_teams(evaluator, teams, every)
            finally:  # a first sync held for this evaluation goes with it (one kept meanwhile stays)
                self.store.held.release(held)

    def _judge_teams(self, evaluator: Evaluator, teams: list[str], every: timedelta) -> None:
        """Judge each team on the data of now (one team's failure never stops the others)."""
        now = self.clock()
        fresh = self.freshness(now)
        for team in teams:
            self._note_freshness(fresh[team], now)
            job = Job(EVALUATE, team, every, subject="evaluation", field="team")
            judged = self.supervisor.run(job, functools.partial(evaluator.run_team, team, now, fresh[team]))
            if judged is not None and fresh[team].complete:
                self.state.completed_once.add(team)

    def _note_freshness(self, freshness: TeamFreshness, now: datetime) -> None:
        """Publish a team's freshness; log once when it becomes incomplete and once when complete again."""
        before = self.state.freshness.get(freshness.team)
        self.state.freshness[freshness.team] = freshness
        was = before.sources if before is not None else ()
        if freshness.sources == was:
            return
        if freshness.complete:
            log.info("team complete again: judged", extra={"team": freshness.team})
        elif freshness.missing and not all(m.never_read for m in freshness.missing):
            log.warning(
                "team incomplete: not judged until its sources are read again",
                extra={
                    "team": freshness.team,
                    "missing": " ".join(freshness.sources),
                    "missing_seconds": round(freshness.missing_for(now).total_seconds()),
                },
            )

    def dispatch(self) -> None:
        """Owe the teams' scheduled reports, then send the alerts and reports the outbox owes (each
        supervised: a store failure backs off and is logged once)."""
        config = self.loaded.config
        every = config.engine.evaluate_every
        now = self.clock()
        if any(team.report is not None for team in config.teams.values()):
            from monitor.exporters.reports.build import owe_scheduled_reports

            owe = Job(REPORT, "schedule", every, subject="report scheduling", field="job")
            outbox = self.dispatcher.outbox
            owing = functools.partial(owe_scheduled_reports, outbox, config, now, self._reports_owed)
            self.supervisor.run(owe, owing)
        incomplete = {team for team, fresh in self.freshness(now).items() if not fresh.complete}
        job = Job(DISPATCH, "outbox", every, subject="alert dispatch", field="job")
        self.supervisor.run(job, functools.partial(self.dispatcher.run, now, incomplete))


@dataclass(frozen=True, slots=True)
class SavedPoll:
    """What the store holds of a source's last saved poll: its cursor, its folder counts, and when it was
    saved or last recorded as polled (:meth:`Store.touch_poll`)."""

    cursor: Cursor
    counts: tuple[tuple[Any, ...], ...]
    at: datetime

    @classmethod
    def of(cls, result: PollResult, at: datetime) -> SavedPoll:
        """The saved state after ``result`` was stored at ``at``."""
        return cls(result.cursor, _counts(result), at)

    def unchanged_by(self, result: PollResult) -> bool:
        """True when ``result`` found nothing: no event, no removal, the same cursor and the same counts.

        Such a poll is not written; the source's last poll time in the store is still refreshed at half
        its staleness limit, so that ``status`` run beside the daemon does not see it as stale.
        """
        return (
            not result.messages
            and not result.calls
            and not result.removed
            and not result.remaining
            and not result.resync
            and result.cursor == self.cursor
            and _counts(result) == self.counts
        )


def _counts(result: PollResult) -> tuple[tuple[Any, ...], ...]:
    """A poll's folder counts, without the time they were read."""
    return tuple((s.source, s.folder, s.total, s.unseen, s.unanswered, s.oldest) for s in result.snapshots)


def _poll_job(name: str, cfg: SourceConfigBase) -> Job:
    """The supervised job that polls source ``name``."""
    return Job(POLL, name, cfg.poll_every, subject="source", field="source")


class _NotSkipNotices(logging.Filter):
    """Drops APScheduler's warning at every skipped run; the daemon says it once per change instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for "Execution of job ... skipped: maximum number of running instances reached"."""
        return "maximum number of running instances" not in str(record.msg)


_SKIP_FILTER = _NotSkipNotices()


def _quiet_skip_warnings() -> None:
    logging.getLogger("apscheduler.scheduler").addFilter(_SKIP_FILTER)  # a set: added once


def _close_quietly(source: Source) -> None:
    try:
        source.close()
    except Exception:
        log.debug("closing source failed", exc_info=True)
