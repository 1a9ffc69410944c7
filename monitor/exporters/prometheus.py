"""The Prometheus collector: builds every ``replywatch_*`` family at scrape, from the daemon's state and
from store reads that serve while the store has not changed (see :class:`StoreReads`)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, overload

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from monitor import __version__
from monitor.config import Config
from monitor.evaluate import build_rules, team_mailboxes
from monitor.events import Channel, folder_role
from monitor.exporters.outbox import FAILED
from monitor.freshness import TeamFreshness
from monitor.rules.deadline import DeadlineConfig
from monitor.store.db import Store
from monitor.store.outbox import CANCELLED, EXPIRED, SENT, Outbox
from monitor.supervisor import DURATION_BUCKETS, POLL, Supervisor
from monitor.verdict import counts_business_time

log = logging.getLogger(__name__)
T = TypeVar("T")

# The SLA points teams promise: 15m 1h 2h 4h 8h 24h 48h 72h 1w, in seconds.
RESPONSE_BUCKETS: tuple[float, ...] = (900, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 604800)


@dataclass
class DaemonState:
    """Everything the collector reads besides the store."""

    jobs: Supervisor
    """Health of every job; the source families come from its ``poll`` jobs."""
    config_reload_ok: bool = True
    notifications: Callable[[], Mapping[tuple[str, str], int]] = dict
    """Notifications by (notifier, outcome) since start, as the outbox dispatcher counted them."""
    freshness: dict[str, TeamFreshness] = field(default_factory=dict)
    """Each team's freshness at its last evaluation."""
    completed_once: set[str] = field(default_factory=set)
    """Teams judged at least once on complete data since the start."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """The time business durations are measured to."""


STORE_READS_MAX_AGE = timedelta(seconds=30)
"""How long the store's figures serve scrapes while nothing was committed through the store: the sliding
on-time windows move on, and another process's writes show, within this."""


class StoreReads:
    """The store reads of a scrape, kept for the next scrapes until the store changes.

    Every read of ``/metrics`` aggregates the store's awaiting items, breaches and messages: at hundreds of
    thousands of them that is seconds of work, most scrapes find nothing changed, and a daemon starting up
    is scraped while it reads its first mail. The reads are taken again after any commit through the store
    (:attr:`Store.generation`), a new config, or :data:`STORE_READS_MAX_AGE`; what depends on the time
    alone (how long the oldest customer has waited) is computed at every scrape.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._config: Config | None = None
        self._at: datetime | None = None
        self._values: dict[object, Any] = {}

    def get(self, name: object, read: Callable[[], T], config: Config, now: datetime) -> T:
        """The value of ``read()`` as of the last change (``name`` tells the reads apart)."""
        with self._lock:
            generation = self.store.generation  # taken before reading: a commit meanwhile shows next
            at = self._at
            fresh = at is not None and at <= now < at + STORE_READS_MAX_AGE
            if generation != self._generation or config is not self._config or not fresh:
                self._generation, self._config, self._at, self._values = generation, config, now, {}
            if name not in self._values:
                self._values[name] = read()
            return self._values[name]  # type: ignore[no-any-return]


ON_TIME_WINDOWS: tuple[tuple[str, timedelta], ...] = (("7d", timedelta(days=7)), ("30d", timedelta(days=30)))
"""The windows of ``replywatch_answered_on_time_ratio``."""
NOTIFICATION_OUTCOMES = (SENT, FAILED, EXPIRED, CANCELLED)
"""The ``outcome`` values of ``replywatch_notifications_total``."""


class ReplywatchCollector(Collector):
    """Reads current state at every scrape; a store failure drops only the store-backed families."""

    def __init__(self, store: Store, config: Callable[[], Config], state: DaemonState) -> None:
        self.store = store
        self.config = config
        self.state = state
        self._store_lock = threading.Lock()
        self._store_failing = False
        self.reads = StoreReads(store)

    def collect(self) -> Iterator[Metric]:
        """Yield every family."""
        config = self.config()
        build = InfoMetricFamily("replywatch_build", "replywatch build information.")
        build.add_metric([], {"version": __version__})
        yield build
        reload_ok = GaugeMetricFamily(
            "replywatch_config_last_reload_successful", "Whether the last configuration reload succeeded."
        )
        reload_ok.add_metric([], 1.0 if self.state.config_reload_ok else 0.0)
        yield reload_ok
        complete = GaugeMetricFamily(
            "replywatch_team_complete",
            "Whether every source of the team has been read recently enough to judge it.",
            labels=["team"],
        )
        for team in config.teams:
            freshness = self.state.freshness.get(team)
            complete.add_metric([team], 1.0 if freshness is not None and freshness.complete else 0.0)
        yield complete
        yield from self._sources(config)
        try:
            with self.store.reading():  # a dozen reads, one connection
                families = list(self._from_store(config))
        except Exception as err:
            self._store_readable(False, err)
            return
        self._store_readable(True)
        yield from families

    def _store_readable(self, readable: bool, err: Exception | None = None) -> None:
        """Log once when the store-backed families cannot be read, and once when they can again."""
        with self._store_lock:
            changed = self._store_failing == readable
            self._store_failing = not readable
        if not changed:
            return
        if readable:
            log.info("the store can be read for /metrics again")
        else:
            log.error("cannot read the store for /metrics: %s", err, exc_info=err)

    def _sources(self, config: Config) -> Iterator[Metric]:
        """The per-source families, each built when the encoder asks for it (a family written is let go
        before the next is built), and the poll durations sample by sample as the encoder reads them: with
        1,000 sources they are some 17,000 samples, and a scrape held them all at once (10 MB)."""
        polls = {h.name: h for h in self.state.jobs.snapshot().values() if h.kind == POLL}
        seen = [(source, polls[source]) for source in config.sources if source in polls]  # polled once
        up = GaugeMetricFamily(
            "replywatch_source_up", "Whether the last poll of the source succeeded.", labels=["source"]
        )
        for source, health in seen:
            up.add_metric([source], 1.0 if health.up else 0.0)
        yield up
        del up
        last = GaugeMetricFamily(
            "replywatch_source_last_success_timestamp_seconds",
            "When the source was last polled successfully.",
            labels=["source"],
        )
        for source, health in seen:
            if health.last_success is not None:
                last.add_metric([source], health.last_success.timestamp())
        yield last
        del last
        errors = CounterMetricFamily(
            "replywatch_source_errors", "Failed polls by reason.", labels=["source", "reason"]
        )
        for source, health in sorted(seen):
            for reason, count in sorted(health.errors.items()):
                errors.add_metric([source, reason], float(count))
        yield errors
        del errors
        durations = HistogramMetricFamily(
            "replywatch_source_poll_seconds", "Duration of one poll of the source.", labels=["source"]
        )
        durations.samples = _Samples(  # type: ignore[assignment]
            functools.partial(_duration_samples, durations.name, seen), len(seen) * _DURATION_SAMPLES
        )
        yield durations

    def _targets(self, config: Config) -> Metric:
        """Each team's promise per channel in business hours, so that alerts compare waits with it."""
        target = GaugeMetricFamily(
            "replywatch_answer_target_seconds",
            "The team's deadline for answering a contact on the channel, in business seconds (teams whose "
            "rule counts wall-clock time have none).",
            labels=["team", "channel"],
        )
        for team in config.teams:
            for rule in config.team_rules(team):
                if isinstance(rule, DeadlineConfig) and rule.business_hours:
                    target.add_metric([team, rule.channel], rule.within.total_seconds())
        return target

    def _from_store(self, config: Config) -> Iterator[Metric]:
        now = self.state.clock()

        def read(name: object, fetch: Callable[[], T]) -> T:
            return self.reads.get(name, fetch, config, now)

        awaiting = GaugeMetricFamily(
            "replywatch_awaiting",
            "Customer contacts waiting for the team's answer.",
            labels=["team", "channel"],
        )
        oldest = GaugeMetricFamily(
            "replywatch_awaiting_oldest_timestamp_seconds",
            "Arrival time of the longest-waiting customer contact.",
            labels=["team", "channel"],
        )
        oldest_business = GaugeMetricFamily(
            "replywatch_awaiting_oldest_business_seconds",
            "How long the longest-waiting customer contact has waited, in the team's business hours.",
            labels=["team", "channel"],
        )
        summary = {
            (team, channel): (count, first)
            for team, channel, count, first in read("summary", self.store.awaiting_summary)
        }
        for team in config.teams:
            calendar = config.team_calendar(team)
            for team_channel in config.team_channels(team):
                count, first = summary.get((team, team_channel), (0, None))
                awaiting.add_metric([team, team_channel], float(count))
                if first is not None:
                    oldest.add_metric([team, team_channel], first.timestamp())
                    waited = calendar.business_seconds_between(first, max(first, now))
                    oldest_business.add_metric([team, team_channel], waited)
        yield awaiting
        yield oldest
        yield oldest_business
        yield self._targets(config)

        ratio = GaugeMetricFamily(
            "replywatch_answered_on_time_ratio",
            "Share of the customer contacts received in the window and decided (answered or overdue) that "
            "were answered within the team's own target.",
            labels=["team", "channel", "window"],
        )
        for window, span in ON_TIME_WINDOWS:
            on_time = functools.partial(self.store.on_time_counts, now - span, now)
            decided = {(t, c): (n, ok) for t, c, n, ok in read(("on_time", window), on_time)}
            for team in config.teams:
                for team_channel in config.team_channels(team):
                    n, ok = decided.get((team, team_channel), (0, 0))
                    if n:  # no decided contact: no ratio, rather than a made-up 0 or 1
                        ratio.add_metric([team, team_channel, window], ok / n)
        yield ratio

        open_ = GaugeMetricFamily(
            "replywatch_breaches_open", "Breaches not resolved yet.", labels=["team", "rule"]
        )
        total = CounterMetricFamily("replywatch_breaches", "Breaches ever opened.", labels=["team", "rule"])
        counts = {(team, rule): (o, t) for team, rule, o, t in read("breaches", self.store.breach_counts)}
        for team in config.teams:
            for rule in sorted({r.kind for r in config.team_rules(team)}):
                o, t = counts.get((team, rule), (0, 0))
                open_.add_metric([team, rule], float(o))
                total.add_metric([team, rule], float(t))
        warnings = GaugeMetricFamily(
            "replywatch_warnings_open",
            "Warnings not resolved yet: customers close to their deadline.",
            labels=["team", "rule"],
        )
        warning_counts = {(team, rule): n for team, rule, n in read("warnings", self.store.warning_counts)}
        for team in config.teams:
            for rule in sorted({r.kind for r in config.team_rules(team)}):
                warnings.add_metric([team, rule], float(warning_counts.get((team, rule), 0)))
        yield warnings
        yield open_
        yield total

        removed = CounterMetricFamily(
            "replywatch_removed",
            "Customer contacts closed unanswered because their mail was deleted or moved out of every "
            "watched folder.",
            labels=["team", "channel"],
        )
        removed_counts = {(t, c): n for t, c, n in read("removed", self.store.removed_counts)}
        for team in config.teams:
            for team_channel in config.team_channels(team):
                removed.add_metric([team, team_channel], float(removed_counts.get((team, team_channel), 0)))
        yield removed

        response = HistogramMetricFamily(
            "replywatch_response_seconds",
            "Time from a customer's contact to the team's response, in the team's business hours "
            "(wall-clock when its reply_within rule counts wall time).",
            labels=["team", "channel"],
        )
        member = HistogramMetricFamily(
            "replywatch_member_response_seconds",
            "Time to respond, as replywatch_response_seconds, per configured member who responded.",
            labels=["team", "member"],
        )
        merged: dict[tuple[str, str], tuple[list[int], int, float]] = {}
        per_member: dict[tuple[str, str], tuple[list[int], int, float]] = {}
        # Each team and channel counts in the clock of the rule that owns its deadlines.
        clocks: dict[tuple[str, str], Literal["business", "wall"]] = {}
        for team in config.teams:
            rules = build_rules(config, team)
            for known in Channel:
                clocks[(team, known.value)] = "business" if counts_business_time(rules, known) else "wall"
        for clock in sorted(set(clocks.values())):
            histogram = functools.partial(self.store.response_histogram, RESPONSE_BUCKETS, clock)
            for team, channel, responder, buckets, count, total_s in read(("histogram", clock), histogram):
                if clocks.get((team, channel)) != clock:
                    continue
                _add(merged, (team, channel), buckets, count, total_s)
                names = {m.name for m in config.teams[team].members}
                if config.teams[team].member_metrics and responder in names:
                    _add(per_member, (team, str(responder)), buckets, count, total_s)
        for (team, channel), (buckets, count, total_s) in sorted(merged.items()):
            response.add_metric([team, channel], _buckets(buckets, count), total_s)
        for (team, name), (buckets, count, total_s) in sorted(per_member.items()):
            member.add_metric([team, name], _buckets(buckets, count), total_s)
        yield response
        yield member

        mailbox = GaugeMetricFamily(
            "replywatch_mailbox_messages",
            "Messages in a mailbox folder by state; unanswered counts replywatch's open customer items "
            "in the folder, not the IMAP Answered flag.",
            labels=["team", "mailbox", "folder", "state"],
        )
        for team in config.teams:
            snapshots = functools.partial(team_mailboxes, self.store, config, team)
            for snap in read(("mailboxes", team), snapshots):
                # Sent mail is never "answered": that state means something only for received mail.
                sent = folder_role(snap.folder) == "sent"
                states = ("total", "unseen") if sent else ("total", "unseen", "unanswered")
                for state in states:
                    mailbox.add_metric([team, snap.source, snap.folder, state], float(getattr(snap, state)))
        yield mailbox
        yield from self._notifications(config, read(("pending",), Outbox(self.store).pending_counts))

    def _notifications(self, config: Config, waiting: Mapping[str, int]) -> Iterator[Metric]:
        """The outbox: notifications handled by outcome, and those still waiting, per notifier."""
        total = CounterMetricFamily(
            "replywatch_notifications",
            "Notifications handled by the outbox dispatcher, by outcome (sent, failed, expired, cancelled).",
            labels=["notifier", "outcome"],
        )
        counts = self.state.notifications()
        # Every configured notifier's outcomes start at 0, so that increase() sees the first one too.
        known = {(notifier, outcome) for notifier in config.notifiers for outcome in NOTIFICATION_OUTCOMES}
        for notifier, outcome in sorted(known | set(counts)):
            total.add_metric([notifier, outcome], float(counts.get((notifier, outcome), 0)))
        pending = GaugeMetricFamily(
            "replywatch_outbox_pending", "Notifications waiting to be delivered.", labels=["notifier"]
        )
        for notifier in sorted(set(config.notifiers) | set(waiting)):
            pending.add_metric([notifier], float(waiting.get(notifier, 0)))
        yield total
        yield pending


_DURATION_SAMPLES = len(DURATION_BUCKETS) + 3
"""Samples of one source's poll duration histogram: a bucket per bound and ``+Inf``, its count and sum."""


class _Samples(Sequence[Sample]):
    """A family's samples, each made as the encoder reads it (``make`` gives them in order), never all at
    once: the poll durations of 1,000 sources are 14,000 samples, each with its own label dict, and a list
    of them all was most of what a scrape held."""

    def __init__(self, make: Callable[[], Iterator[Sample]], count: int) -> None:
        self._make = make
        self._count = count

    def __iter__(self) -> Iterator[Sample]:
        return self._make()

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Sample]: ...
    def __getitem__(self, index: int | slice) -> Sample | Sequence[Sample]:
        return list(self._make())[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)


def _duration_samples(name: str, seen: Sequence[tuple[str, Any]]) -> Iterator[Sample]:
    """The samples ``HistogramMetricFamily.add_metric`` makes for each source's poll durations."""
    bounds = [_le(b) for b in DURATION_BUCKETS]
    for source, health in seen:
        for le, count in zip(bounds, health.duration_buckets, strict=True):
            yield Sample(f"{name}_bucket", {"source": source, "le": le}, float(count), None, None)
        yield Sample(
            f"{name}_bucket", {"source": source, "le": "+Inf"}, float(health.duration_count), None, None
        )
        yield Sample(f"{name}_count", {"source": source}, float(health.duration_count), None)
        yield Sample(f"{name}_sum", {"source": source}, health.duration_sum, None)


def _le(bound: float) -> str:
    return str(float(bound))


def _add(
    acc: dict[tuple[str, str], tuple[list[int], int, float]],
    key: tuple[str, str],
    buckets: list[int],
    count: int,
    total: float,
) -> None:
    old = acc.get(key)
    if old is None:
        acc[key] = (list(buckets), count, total)
    else:
        acc[key] = ([a + b for a, b in zip(old[0], buckets, strict=True)], old[1] + count, old[2] + total)


def _buckets(counts: list[int], total: int) -> list[tuple[str, float]]:
    out = [(_le(b), float(c)) for b, c in zip(RESPONSE_BUCKETS, counts, strict=True)]
    out.append(("+Inf", float(total)))
    return out
