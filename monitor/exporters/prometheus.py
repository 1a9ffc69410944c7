"""The Prometheus collector: builds every ``replywatch_*`` family fresh from the store at scrape."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.config import Config
from monitor.store.db import Store
from monitor.store.models import MailboxCount

log = logging.getLogger(__name__)

# SLA points (DESIGN.md): 15m 1h 2h 4h 8h 24h 48h 72h 1w, in seconds.
RESPONSE_BUCKETS: tuple[float, ...] = (900, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 604800)
POLL_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass
class SourceHealth:
    """What the daemon knows about each source's polls; thread-safe, read at scrape."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    up: dict[str, bool] = field(default_factory=dict)
    last_success: dict[str, float] = field(default_factory=dict)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    poll_buckets: dict[str, list[int]] = field(default_factory=dict)
    poll_sum: dict[str, float] = field(default_factory=dict)
    poll_count: dict[str, int] = field(default_factory=dict)

    def success(self, source: str, seconds: float, at: float | None = None) -> None:
        """Record a successful poll that took ``seconds``."""
        with self._lock:
            self.up[source] = True
            self.last_success[source] = time.time() if at is None else at
            self._observe(source, seconds)

    def failure(self, source: str, reason: str, seconds: float) -> None:
        """Record a failed poll."""
        with self._lock:
            self.up[source] = False
            self.errors[(source, reason)] = self.errors.get((source, reason), 0) + 1
            self._observe(source, seconds)

    def _observe(self, source: str, seconds: float) -> None:
        buckets = self.poll_buckets.setdefault(source, [0] * len(POLL_BUCKETS))
        for i, bound in enumerate(POLL_BUCKETS):
            if seconds <= bound:
                buckets[i] += 1
        self.poll_sum[source] = self.poll_sum.get(source, 0.0) + seconds
        self.poll_count[source] = self.poll_count.get(source, 0) + 1

    def snapshot(self) -> SourceHealth:
        """A consistent copy for one scrape."""
        with self._lock:
            return SourceHealth(
                up=dict(self.up),
                last_success=dict(self.last_success),
                errors=dict(self.errors),
                poll_buckets={k: list(v) for k, v in self.poll_buckets.items()},
                poll_sum=dict(self.poll_sum),
                poll_count=dict(self.poll_count),
            )


@dataclass
class DaemonState:
    """Everything the collector reads besides the store."""

    health: SourceHealth = field(default_factory=SourceHealth)
    config_reload_ok: bool = True


class ReplywatchCollector(Collector):
    """Reads current state at every scrape; a store failure drops only the store-backed families."""

    def __init__(self, store: Store, config: Callable[[], Config], state: DaemonState) -> None:
        self.store = store
        self.config = config
        self.state = state

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
        yield from self._sources(config)
        try:
            families = list(self._from_store(config))
        except Exception:
            log.exception("cannot read the store for /metrics")
            return
        yield from families

    def _sources(self, config: Config) -> Iterator[Metric]:
        health = self.state.health.snapshot()
        up = GaugeMetricFamily(
            "replywatch_source_up", "Whether the last poll of the source succeeded.", labels=["source"]
        )
        last = GaugeMetricFamily(
            "replywatch_source_last_success_timestamp_seconds",
            "When the source was last polled successfully.",
            labels=["source"],
        )
        errors = CounterMetricFamily(
            "replywatch_source_errors", "Failed polls by reason.", labels=["source", "reason"]
        )
        polls = HistogramMetricFamily(
            "replywatch_source_poll_seconds", "Duration of one poll of the source.", labels=["source"]
        )
        for source in config.sources:
            if source in health.up:
                up.add_metric([source], 1.0 if health.up[source] else 0.0)
            if source in health.last_success:
                last.add_metric([source], health.last_success[source])
            if source in health.poll_count:
                buckets = [
                    (_le(b), float(c)) for b, c in zip(POLL_BUCKETS, health.poll_buckets[source], strict=True)
                ]
                buckets.append(("+Inf", float(health.poll_count[source])))
                polls.add_metric([source], buckets, health.poll_sum[source])
        for (source, reason), count in sorted(health.errors.items()):
            if source in config.sources:
                errors.add_metric([source, reason], float(count))
        yield from (up, last, errors, polls)

    def _from_store(self, config: Config) -> Iterator[Metric]:
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
        summary = {
            (team, channel): (count, first) for team, channel, count, first in self.store.awaiting_summary()
        }
        for team in config.teams:
            count, first = summary.get((team, "email"), (0, None))
            awaiting.add_metric([team, "email"], float(count))
            if first is not None:
                oldest.add_metric([team, "email"], first.timestamp())
        yield awaiting
        yield oldest

        open_ = GaugeMetricFamily(
            "replywatch_breaches_open", "Breaches not resolved yet.", labels=["team", "rule"]
        )
        total = CounterMetricFamily("replywatch_breaches", "Breaches ever opened.", labels=["team", "rule"])
        counts = {(team, rule): (o, t) for team, rule, o, t in self.store.breach_counts()}
        for team in config.teams:
            for rule in sorted({r.kind for r in config.team_rules(team)}):
                o, t = counts.get((team, rule), (0, 0))
                open_.add_metric([team, rule], float(o))
                total.add_metric([team, rule], float(t))
        yield open_
        yield total

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
        for team, channel, responder, buckets, count, total_s in self.store.response_histogram(
            RESPONSE_BUCKETS
        ):
            if team not in config.teams:
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
            "Messages in a mailbox folder by state.",
            labels=["team", "mailbox", "folder", "state"],
        )
        counts_by_source: dict[str, list[MailboxCount]] = {}
        for row in self.store.mailbox_counts():
            counts_by_source.setdefault(row.source, []).append(row)
        for team, team_cfg in config.teams.items():
            for source in team_cfg.sources:
                for row in counts_by_source.get(source, []):
                    # Sent mail is never "answered": that state means something only for received mail.
                    states = (
                        ("total", "unseen") if row.folder == "sent" else ("total", "unseen", "unanswered")
                    )
                    for state in states:
                        mailbox.add_metric(
                            [team, source, row.folder, state],
                            float(getattr(row, state)),
                        )
        yield mailbox


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
