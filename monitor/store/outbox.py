"""The outbox: notifications written with the breach transitions that caused them, read by the dispatcher."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.engine import Connection

from monitor.breaches import Opened, Transition
from monitor.calendar import BusinessCalendar
from monitor.escalation import DueStep, Member, NotifyConfig, due_steps
from monitor.store.db import _BATCH, AWAITING, BREACH, MESSAGE, Store
from monitor.store.models import Notification

NOTIFICATION = Notification.__table__  # type: ignore[attr-defined]
PENDING = "pending"
SENT = "sent"
EXPIRED = "expired"
CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class PendingNotification:
    """A notification due now, with what its message shows about the breach and the waiting customer."""

    id: int
    breach_id: int
    team: str
    notifier: str
    step: str
    recipient: str
    due_at: datetime
    attempts: int
    rule: str
    level: str
    breach_subject: str
    opened_at: datetime
    breached_at: datetime | None
    resolved_at: datetime | None
    deadline: datetime | None
    customer: str | None
    received_at: datetime | None
    owner: str | None
    channel: str | None
    last_error: str | None
    title: str | None
    """The subject line of the customer's mail (None for a call or a non-item breach)."""
    unreadable: str = ""
    """Sources that could not be read when the breach was judged, space-separated (empty: complete data)."""
    removed: bool = False
    """The customer's item closed because its mail was deleted or moved away, not by an answer."""


@dataclass(frozen=True, slots=True)
class PendingReport:
    """A team report due now for one recipient."""

    id: int
    team: str
    notifier: str
    period: str
    recipient: str
    due_at: datetime
    attempts: int
    last_error: str | None


class Outbox:
    """Reads and writes of the ``notification`` table, on the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- written inside the breach transaction ---------------------------------------------------

    @staticmethod
    def breach_ids(
        conn: Connection, team: str, transitions: Sequence[Transition]
    ) -> list[tuple[int, Transition]]:
        """Each transition with its breach's id (an opened breach's row was just inserted in ``conn``)."""
        subjects = sorted({t.subject for t in transitions if isinstance(t, Opened)})
        ids: dict[tuple[str, str, datetime], int] = {}
        for start in range(0, len(subjects), _BATCH):
            rows = conn.execute(
                select(BREACH.c.id, BREACH.c.rule, BREACH.c.subject, BREACH.c.opened_at).where(
                    BREACH.c.team == team, BREACH.c.subject.in_(subjects[start : start + _BATCH])
                )
            )
            for row in rows:
                key = (row.rule, row.subject, row.opened_at)
                ids[key] = max(ids.get(key, 0), row.id)
        out: list[tuple[int, Transition]] = []
        for t in transitions:
            if not isinstance(t, Opened):
                out.append((t.breach_id, t))
            elif (found := ids.get((t.rule, t.subject, t.at))) is not None:
                out.append((found, t))
        return out

    @staticmethod
    def owners(conn: Connection, team: str, subjects: Mapping[int, str]) -> dict[int, str | None]:
        """The owner of the awaiting item each breach is about (absent: not an item, or the team's)."""
        keys = sorted(set(subjects.values()))
        found: dict[str, str | None] = {}
        if keys:
            rows = conn.execute(
                select(AWAITING.c.item_key, AWAITING.c.owner).where(
                    AWAITING.c.team == team, AWAITING.c.item_key.in_(keys)
                )
            )
            found = {row.item_key: row.owner for row in rows}
        return {breach_id: found.get(subject) for breach_id, subject in subjects.items()}

    def write(
        self, conn: Connection, team: str, notifier: str, steps: Sequence[DueStep], now: datetime
    ) -> None:
        """Insert owed notifications; one already owed (same breach, step and recipient) is kept as it is."""
        if not steps:
            return
        insert = self.store._insert()
        conn.execute(
            insert(NOTIFICATION).on_conflict_do_nothing(index_elements=["breach_id", "step", "recipient"]),
            [
                {
                    "breach_id": s.breach_id,
                    "team": team,
                    "notifier": notifier,
                    "step": s.step,
                    "recipient": s.recipient,
                    "due_at": s.due_at,
                    "created_at": now,
                    "outcome": PENDING,
                    "attempts": 0,
                }
                for s in steps
            ],
        )

    def owe(
        self,
        conn: Connection,
        transitions: Sequence[Transition],
        *,
        team: str,
        notify: NotifyConfig,
        members: Sequence[Member],
        calendar: BusinessCalendar,
        addressed: bool,
        now: datetime,
    ) -> None:
        """Write the notifications ``notify`` owes for ``transitions`` (inside their transaction)."""
        with_ids = self.breach_ids(conn, team, transitions)
        owners = self.owners(conn, team, {breach_id: t.subject for breach_id, t in with_ids})
        steps = due_steps(notify.escalation, with_ids, owners, members, calendar, addressed=addressed)
        self.write(conn, team, notify.via, steps, now)

    # -- the dispatcher ---------------------------------------------------------------------------

    def due(self, now: datetime) -> list[PendingNotification]:
        """Pending notifications whose time has come and whose retry wait is over, oldest first."""
        title = (  # the customer's subject line, found through the message_id index
            select(func.min(MESSAGE.c.subject))
            .where(MESSAGE.c.message_id == BREACH.c.subject)
            .scalar_subquery()
        )
        query = (
            select(
                NOTIFICATION,
                BREACH.c.rule,
                BREACH.c.level,
                BREACH.c.subject.label("breach_subject"),
                BREACH.c.opened_at,
                BREACH.c.breached_at,
                BREACH.c.resolved_at,
                BREACH.c.due_at.label("deadline"),
                BREACH.c.unreadable,
                AWAITING.c.customer,
                AWAITING.c.received_at,
                AWAITING.c.owner,
                AWAITING.c.channel,
                AWAITING.c.removed_at,
                title.label("title"),
            )
            .join(BREACH, BREACH.c.id == NOTIFICATION.c.breach_id)
            .outerjoin(
                AWAITING, and_(AWAITING.c.team == BREACH.c.team, AWAITING.c.item_key == BREACH.c.subject)
            )
            .where(
                NOTIFICATION.c.outcome == PENDING,
                NOTIFICATION.c.due_at <= now,
                NOTIFICATION.c.next_attempt_at.is_(None) | (NOTIFICATION.c.next_attempt_at <= now),
            )
            .order_by(NOTIFICATION.c.due_at, NOTIFICATION.c.id)
        )
        with self.store.reader() as conn:
            return [
                PendingNotification(
                    id=r.id,
                    breach_id=r.breach_id,
                    team=r.team,
                    notifier=r.notifier,
                    step=r.step,
                    recipient=r.recipient,
                    due_at=r.due_at,
                    attempts=r.attempts,
                    rule=r.rule,
                    level=r.level,
                    breach_subject=r.breach_subject,
                    opened_at=r.opened_at,
                    breached_at=r.breached_at,
                    resolved_at=r.resolved_at,
                    deadline=r.deadline,
                    customer=r.customer,
                    received_at=r.received_at,
                    owner=r.owner,
                    channel=r.channel,
                    last_error=r.last_error,
                    title=r.title,
                    unreadable=r.unreadable or "",
                    removed=r.removed_at is not None,
                )
                for r in conn.execute(query)
            ]

    # -- reports ----------------------------------------------------------------------------------

    def owe_report(
        self,
        team: str,
        notifier: str,
        period: str,
        recipients: Sequence[str],
        due_at: datetime,
        now: datetime,
    ) -> int:
        """Owe ``period``'s report to each recipient once (a report already owed or sent is kept as it is);
        returns how many rows are new."""
        if not recipients:
            return 0
        insert = self.store._insert()
        with self.store.engine.begin() as conn:
            result = conn.execute(
                insert(NOTIFICATION)
                .on_conflict_do_nothing(index_elements=["team", "report_period", "recipient"])
                .returning(NOTIFICATION.c.id),
                [
                    {
                        "breach_id": None,
                        "report_period": period,
                        "team": team,
                        "notifier": notifier,
                        "step": "report",
                        "recipient": recipient,
                        "due_at": due_at,
                        "created_at": now,
                        "outcome": PENDING,
                        "attempts": 0,
                    }
                    for recipient in recipients
                ],
            )
            return len(result.fetchall())

    def due_reports(
        self, now: datetime, team: str | None = None, period: str | None = None
    ) -> list[PendingReport]:
        """Pending reports whose time has come and whose retry wait is over (optionally one team's period)."""
        query = select(NOTIFICATION).where(
            NOTIFICATION.c.report_period.is_not(None),
            NOTIFICATION.c.outcome == PENDING,
            NOTIFICATION.c.due_at <= now,
            NOTIFICATION.c.next_attempt_at.is_(None) | (NOTIFICATION.c.next_attempt_at <= now),
        )
        if team is not None:
            query = query.where(NOTIFICATION.c.team == team)
        if period is not None:
            query = query.where(NOTIFICATION.c.report_period == period)
        with self.store.reader() as conn:
            return [
                PendingReport(
                    id=r.id,
                    team=r.team,
                    notifier=r.notifier,
                    period=r.report_period,
                    recipient=r.recipient,
                    due_at=r.due_at,
                    attempts=r.attempts,
                    last_error=r.last_error,
                )
                for r in conn.execute(query.order_by(NOTIFICATION.c.due_at, NOTIFICATION.c.id))
            ]

    def reports(self, team: str) -> list[tuple[str, str, str]]:
        """(period, recipient, outcome) of every report row of ``team``, in order."""
        query = (
            select(NOTIFICATION.c.report_period, NOTIFICATION.c.recipient, NOTIFICATION.c.outcome)
            .where(NOTIFICATION.c.team == team, NOTIFICATION.c.report_period.is_not(None))
            .order_by(NOTIFICATION.c.id)
        )
        with self.store.reader() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(query)]

    def finish(self, ids: Sequence[int], outcome: str, now: datetime, error: str | None = None) -> None:
        """Mark notifications sent, expired or cancelled (never attempted again)."""
        if not ids:
            return
        with self.store.engine.begin() as conn:
            conn.execute(
                update(NOTIFICATION)
                .where(NOTIFICATION.c.id.in_(list(ids)), NOTIFICATION.c.outcome == PENDING)
                .values(
                    outcome=outcome,
                    done_at=now,
                    attempts=NOTIFICATION.c.attempts + (0 if outcome == CANCELLED else 1),
                    last_error=error[:500] if error else None,
                )
            )

    def retry(self, ids: Sequence[int], at: datetime, error: str) -> None:
        """Count a failed attempt and wait until ``at`` before the next one."""
        if not ids:
            return
        with self.store.engine.begin() as conn:
            conn.execute(
                update(NOTIFICATION)
                .where(NOTIFICATION.c.id == bindparam("b_id"))
                .values(attempts=NOTIFICATION.c.attempts + 1, next_attempt_at=at, last_error=error[:500]),
                [{"b_id": i} for i in ids],
            )

    def pending_counts(self) -> dict[str, int]:
        """How many notifications wait to be delivered, by notifier."""
        query = (
            select(NOTIFICATION.c.notifier, func.count())
            .where(NOTIFICATION.c.outcome == PENDING)
            .group_by(NOTIFICATION.c.notifier)
        )
        with self.store.reader() as conn:
            return {name: int(count) for name, count in conn.execute(query)}

    def all(self) -> list[tuple[int | None, str, str, str, str]]:
        """(breach id, step, recipient, notifier, outcome) of every notification, in order (for status and
        tests)."""
        query = select(
            NOTIFICATION.c.breach_id,
            NOTIFICATION.c.step,
            NOTIFICATION.c.recipient,
            NOTIFICATION.c.notifier,
            NOTIFICATION.c.outcome,
        ).order_by(NOTIFICATION.c.id)
        with self.store.reader() as conn:
            return [(r[0], r[1], r[2], r[3], r[4]) for r in conn.execute(query)]
