"""The outbox dispatcher: sends due notifications, one message per recipient, retries, expires, counts."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitor.config import Config
from monitor.escalation import BREACH, RESOLVED, WARNING, parse_at
from monitor.exporters.notifiers.base import NOTIFIERS, AlertItem, Delivery, Notifier, NotifierError
from monitor.exporters.reports.schedule import REPORT_EXPIRY
from monitor.store.outbox import CANCELLED, EXPIRED, SENT, Outbox, PendingNotification, PendingReport

log = logging.getLogger(__name__)

FAILED = "failed"
"""The outcome counted for an attempt that did not deliver (the notification stays pending)."""
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
DEFAULT_EXPIRY = timedelta(days=2)


def build_notifiers(config: Config) -> dict[str, Notifier]:
    """Every configured notifier, built from its config (no I/O)."""
    return {name: NOTIFIERS.get(cfg.kind).factory(name, cfg) for name, cfg in config.notifiers.items()}


def retry_delay(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 30 s, doubling, at most an hour."""
    delay: timedelta = FIRST_RETRY * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_RETRY)


def delivery_key(ids: Sequence[int], recipient: str) -> str:
    """Stable over retries of the same rows: the same message keeps the same Message-ID."""
    digest = hashlib.sha256(f"{','.join(map(str, sorted(ids)))}|{recipient}".encode()).hexdigest()
    return f"replywatch.{digest[:32]}"


def alert_item(row: PendingNotification) -> AlertItem:
    """How a notification's breach shows in a message."""
    point, _ = parse_at(row.step)
    level = {WARNING: "warning", RESOLVED: "resolved"}.get(point, BREACH)
    at = {
        "warning": row.opened_at,
        "resolved": row.resolved_at or row.opened_at,
        BREACH: row.breached_at or row.opened_at,
    }[level]
    if row.channel == "phone":
        subject = "Missed call"
    else:
        subject = row.title if row.title is not None else f"{row.rule}: {row.breach_subject}"
    return AlertItem(
        breach_id=row.breach_id,
        step=row.step,
        rule=row.rule,
        level=level,
        at=at,
        subject=subject or "(no subject)",
        customer=row.customer,
        waiting_since=row.received_at or row.opened_at,
        due_at=row.deadline,
        owner=row.owner,
        unreadable=tuple(row.unreadable.split()),
        closed_by="removed" if row.removed else "answered",
    )


def stale(row: PendingNotification, now: datetime) -> bool:
    """An alert that no longer says anything true: its breach is over, or its warning became a breach."""
    point, _ = parse_at(row.step)
    if point == RESOLVED:
        return False
    if row.resolved_at is not None and row.resolved_at <= now:
        return True
    return point == WARNING and row.breached_at is not None


@dataclass
class Dispatcher:
    """Sends what the outbox owes; the daemon runs it as a supervised job."""

    outbox: Outbox
    config: Callable[[], Config]
    notifiers: Mapping[str, Notifier]
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Notifications by (notifier, outcome) since start: ``replywatch_notifications_total``."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _held_reports: set[tuple[str, str]] = field(default_factory=set)
    """(team, period) of reports held for an incomplete team, logged once each."""

    def run(self, now: datetime, incomplete: Collection[str] = ()) -> int:
        """Send every due notification grouped per recipient; returns how many were delivered.

        Reports of the ``incomplete`` teams (a source not read lately) wait until the team is complete
        again: a report sent once from half the mail would be wrong for good.
        """
        config = self.config()
        groups: dict[tuple[str, str, str], list[PendingNotification]] = {}
        cancelled: list[PendingNotification] = []
        expired: dict[tuple[str, str, str], list[PendingNotification]] = {}
        for row in self.outbox.due(now):
            key = (row.notifier, row.team, row.recipient)
            if stale(row, now):
                cancelled.append(row)
            elif now - row.due_at > _expiry(config, row.team):
                expired.setdefault(key, []).append(row)
            else:
                groups.setdefault(key, []).append(row)
        self._finish(cancelled, CANCELLED, now)
        for (notifier, team, _), rows in expired.items():
            log.error(
                "alerts expired undelivered",
                extra={"notifier": notifier, "team": team, "alerts": len(rows), "error": rows[0].last_error},
            )
            self._finish(rows, EXPIRED, now, rows[0].last_error)
        delivered = 0
        for (notifier, team, recipient), rows in groups.items():
            delivered += self._send(config, notifier, team, recipient, rows, now)
        return delivered + self.run_reports(now, incomplete=incomplete)

    def run_reports(
        self,
        now: datetime,
        team: str | None = None,
        period: str | None = None,
        incomplete: Collection[str] = (),
    ) -> int:
        """Send every due report (optionally only ``team``'s for ``period``); returns how many went out.

        A report is rendered once per team and period and addressed to each recipient; one that could not
        be delivered for :data:`REPORT_EXPIRY` is dropped with one logged error.
        """
        config = self.config()
        rendered: dict[tuple[str, str, str], Any] = {}
        delivered = 0
        for row in self.outbox.due_reports(now, team, period):
            if row.team not in config.teams or now - row.due_at > REPORT_EXPIRY:
                error = row.last_error or ("team incomplete" if row.team in incomplete else None)
                log.error(
                    "report expired undelivered",
                    extra={"notifier": row.notifier, "team": row.team, "error": error},
                )
                self._finish([row], EXPIRED, now, error)
                continue
            if row.team in incomplete:
                if (row.team, row.period) not in self._held_reports:
                    self._held_reports.add((row.team, row.period))
                    log.info("report held until the team's sources are read", extra={"team": row.team})
                continue
            try:
                sender = self.notifiers.get(row.notifier)
                send_report = getattr(sender, "send_report", None)
                if sender is None or send_report is None:
                    raise NotifierError("config", f"notifier {row.notifier!r} cannot send reports")
                key = (row.notifier, row.team, row.period)
                if key not in rendered:
                    from monitor.exporters.reports.build import report_mail  # matplotlib: reports only

                    store = self.outbox.store
                    rendered[key] = report_mail(store, config, row.team, row.period, now, row.notifier)
                send_report(rendered[key].to(row.recipient, now))
            except Exception as raised:
                err = _as_notifier_error(raised)
                if row.attempts == 0:
                    extra = {"notifier": row.notifier, "team": row.team, "reason": err.reason}
                    log.warning("report not delivered, will retry", extra=extra | {"error": str(err)})
                self.outbox.retry([row.id], now + retry_delay(row.attempts + 1), str(err))
                self._count(row.notifier, FAILED, 1)
                continue
            self.outbox.finish([row.id], SENT, now)
            self._count(row.notifier, SENT, 1)
            delivered += 1
        return delivered

    def _send(
        self,
        config: Config,
        notifier: str,
        team: str,
        recipient: str,
        rows: list[PendingNotification],
        now: datetime,
    ) -> int:
        """Deliver one group as one message; on failure every row waits for its retry."""
        ids = [row.id for row in rows]
        sender = self.notifiers.get(notifier)
        team_cfg = config.teams.get(team)
        delivery = Delivery(
            team=team,
            recipient=recipient,
            items=tuple(alert_item(row) for row in rows),
            key=delivery_key(ids, recipient),
            dashboard_url=team_cfg.notify.dashboard_url if team_cfg and team_cfg.notify else None,
            timezone=config.team_calendar(team).timezone if team_cfg else "UTC",
        )
        try:
            if sender is None:
                raise NotifierError("config", f"notifier {notifier!r} is not configured")
            sender.send(delivery)
        except Exception as raised:
            err = _as_notifier_error(raised)
            attempts = max(row.attempts for row in rows) + 1
            if attempts == 1:
                log.warning(
                    "alert not delivered, will retry",
                    extra={"notifier": notifier, "team": team, "reason": err.reason, "error": str(err)},
                )
            self.outbox.retry(ids, now + retry_delay(attempts), str(err))
            self._count(notifier, FAILED, len(ids))
            return 0
        self.outbox.finish(ids, SENT, now)
        self._count(notifier, SENT, len(ids))
        return len(ids)

    def _finish(
        self,
        rows: Sequence[PendingNotification | PendingReport],
        outcome: str,
        now: datetime,
        error: str | None = None,
    ) -> None:
        self.outbox.finish([row.id for row in rows], outcome, now, error)
        for row in rows:
            self._count(row.notifier, outcome, 1)

    def _count(self, notifier: str, outcome: str, n: int) -> None:
        with self._lock:
            self.counts[(notifier, outcome)] += n

    def snapshot(self) -> dict[tuple[str, str], int]:
        """The counts, one consistent copy."""
        with self._lock:
            return dict(self.counts)


def _expiry(config: Config, team: str) -> timedelta:
    team_cfg = config.teams.get(team)
    return team_cfg.notify.expire_after if team_cfg and team_cfg.notify else DEFAULT_EXPIRY


def _as_notifier_error(err: Exception) -> NotifierError:
    """A failed delivery as a :class:`NotifierError`: an unexpected exception (a notifier's bug, a library
    raising what it should not) is retried like a refusal instead of stopping the whole dispatch run. Only
    its type is kept: its text may quote a recipient or a subject."""
    if isinstance(err, NotifierError):
        return err
    log.debug("notifier raised an unexpected exception", exc_info=err)
    return NotifierError("internal", f"unexpected {type(err).__name__}")
