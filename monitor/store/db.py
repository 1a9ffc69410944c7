"""The store: one SQLAlchemy engine, idempotent bulk ingest, cursors, awaiting items and breaches."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    Engine,
    String,
    and_,
    any_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url

from monitor.engine import AwaitingItem
from monitor.events import MailboxSnapshot, MessageEvent
from monitor.sources.base import Cursor, PollResult
from monitor.store.models import Awaiting, Breach, MailboxCount, Message, SourceCursor

log = logging.getLogger(__name__)

MESSAGE = Message.__table__  # type: ignore[attr-defined]
CURSOR = SourceCursor.__table__  # type: ignore[attr-defined]
COUNT = MailboxCount.__table__  # type: ignore[attr-defined]
AWAITING = Awaiting.__table__  # type: ignore[attr-defined]
BREACH = Breach.__table__  # type: ignore[attr-defined]

_BATCH = 500
# Columns refreshed when a known message is seen again (its flags changed, or a resync re-read it).
_MUTABLE = ("flags", "folder", "automated", "holding_marker", "preview")


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one saved poll changed."""

    inserted: int
    updated: int


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, password: str | None = None) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout, its folder is created."""
    parsed = make_url(url)
    if password is not None:
        parsed = parsed.set(password=password)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _join(values: Iterable[str]) -> str:
    return " ".join(values)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(value.split()) if value else ()


def message_row(event_: MessageEvent, now: datetime) -> dict[str, Any]:
    """The ``message`` row for an event."""
    return {
        "source": event_.source,
        "external_id": event_.external_id,
        "folder": event_.folder,
        "message_id": event_.message_id,
        "date": event_.date,
        "from_addr": event_.from_addr,
        "from_name": event_.from_name,
        "sender_addr": event_.sender_addr,
        "reply_to": _join(event_.reply_to),
        "to_addrs": _join(event_.to_addrs),
        "cc_addrs": _join(event_.cc_addrs),
        "subject": event_.subject,
        "in_reply_to": event_.in_reply_to,
        "references": _join(event_.references),
        "thread_id": event_.thread_id,
        "automated": event_.automated,
        "flags": _join(sorted(event_.flags)),
        "holding_marker": event_.holding_marker,
        "preview": event_.preview,
        "ingested_at": now,
    }


def row_event(row: Any) -> MessageEvent:
    """The event a ``message`` row holds."""
    return MessageEvent(
        source=row.source,
        folder=row.folder,
        external_id=row.external_id,
        message_id=row.message_id,
        date=row.date,
        from_addr=row.from_addr,
        from_name=row.from_name,
        sender_addr=row.sender_addr,
        reply_to=_split(row.reply_to),
        to_addrs=_split(row.to_addrs),
        cc_addrs=_split(row.cc_addrs),
        subject=row.subject,
        in_reply_to=row.in_reply_to,
        references=_split(row.references),
        thread_id=row.thread_id,
        automated=row.automated,
        flags=frozenset(_split(row.flags)),
        holding_marker=bool(row.holding_marker),
        preview=row.preview,
    )


class Store:
    """All reads and writes of replywatch's state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    def open(cls, url: str, password: str | None = None) -> Store:
        """A store on ``url`` (no connection is made yet)."""
        return cls(make_engine(url, password))

    def upgrade(self) -> None:
        """Apply every pending migration."""
        from monitor.store.migrate import upgrade

        upgrade(self.engine)

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    # -- ingest ---------------------------------------------------------------------------------

    def _insert(self) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert
        if self.dialect == "sqlite":
            return sqlite.insert
        raise NotImplementedError(f"store dialect {self.dialect!r} is not supported")

    def save_poll(self, source: str, result: PollResult, now: datetime) -> IngestResult:
        """Store a poll's messages, folder counts and cursor in one transaction (idempotent)."""
        insert = self._insert()
        inserted = updated = 0
        with self.engine.begin() as conn:
            rows = [message_row(m, now) for m in result.messages]
            for start in range(0, len(rows), _BATCH):
                batch = rows[start : start + _BATCH]
                known = self._known(conn, source, [r["external_id"] for r in batch])
                fresh = [r for r in batch if r["external_id"] not in known]
                changed = [
                    r for r in batch if r["external_id"] in known and _differs(known[r["external_id"]], r)
                ]
                if fresh:
                    stmt = insert(MESSAGE).on_conflict_do_nothing(index_elements=["source", "external_id"])
                    conn.execute(stmt, fresh)
                    inserted += len(fresh)
                if changed:
                    conn.execute(
                        update(MESSAGE)
                        .where(
                            MESSAGE.c.source == source, MESSAGE.c.external_id == bindparam("b_external_id")
                        )
                        .values({k: bindparam(f"b_{k}") for k in (*_MUTABLE, "ingested_at")}),
                        [
                            {f"b_{k}": r[k] for k in ("external_id", *_MUTABLE)} | {"b_ingested_at": now}
                            for r in changed
                        ],
                    )
                updated += len(changed)
            for snap in result.snapshots:
                self._save_snapshot(conn, insert, snap)
            self._save_cursor(conn, insert, source, result.cursor, now)
        return IngestResult(inserted, updated)

    def _known(self, conn: Connection, source: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        cols = [MESSAGE.c.external_id, *(MESSAGE.c[k] for k in _MUTABLE)]
        if self.dialect == "postgresql":
            # One array parameter: PostgreSQL plans "= ANY($1)" on the unique index, where a 500-value
            # IN list of separate parameters took ~100 ms a batch.
            match = MESSAGE.c.external_id == any_(literal(list(ids), ARRAY(String)))
        else:
            match = MESSAGE.c.external_id.in_(ids)
        found = conn.execute(select(*cols).where(MESSAGE.c.source == source, match))
        return {row.external_id: dict(row._mapping) for row in found}

    def _save_snapshot(self, conn: Connection, insert: Any, snap: MailboxSnapshot) -> None:
        values = {
            "source": snap.source,
            "folder": snap.folder,
            "total": snap.total,
            "unseen": snap.unseen,
            "unanswered": snap.unanswered,
            "oldest": snap.oldest,
            "at": snap.at,
        }
        stmt = insert(COUNT).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["source", "folder"],
            set_={k: stmt.excluded[k] for k in ("total", "unseen", "unanswered", "oldest", "at")},
        )
        conn.execute(stmt)

    def _save_cursor(self, conn: Connection, insert: Any, source: str, cursor: Cursor, now: datetime) -> None:
        stmt = insert(CURSOR).values(source=source, value=json.dumps(cursor, sort_keys=True), updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["source"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        conn.execute(stmt)

    def load_cursor(self, source: str) -> Cursor | None:
        """The saved position of ``source``, or None before its first poll."""
        with self.engine.connect() as conn:
            value = conn.execute(select(CURSOR.c.value).where(CURSOR.c.source == source)).scalar()
        return json.loads(value) if value else None

    def last_ingest(self, sources: Sequence[str]) -> datetime | None:
        """When any of ``sources`` last added or changed a message."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(MESSAGE.c.ingested_at)).where(MESSAGE.c.source.in_(sources))
            ).scalar()
        if isinstance(value, str):  # some SQLite builds hand aggregates back as text
            value = datetime.fromisoformat(value)
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def messages(self, sources: Sequence[str], since: datetime | None = None) -> list[MessageEvent]:
        """Every stored message of ``sources`` dated at or after ``since``."""
        query = select(MESSAGE).where(MESSAGE.c.source.in_(sources))
        if since is not None:
            query = query.where(MESSAGE.c.date >= since)
        with self.engine.connect() as conn:
            return [row_event(row) for row in conn.execute(query)]

    def mailbox_counts(self) -> list[MailboxCount]:
        """The latest counts of every folder."""
        with self.engine.connect() as conn:
            return [MailboxCount(**row._mapping) for row in conn.execute(select(COUNT))]

    # -- awaiting items -------------------------------------------------------------------------

    def replace_awaiting(
        self, team: str, channel: str, items: Sequence[AwaitingItem], since: datetime | None, now: datetime
    ) -> int:
        """Make the stored items of ``team``/``channel`` received at or after ``since`` equal ``items``.

        Only rows whose content changed are written. Returns how many rows changed.
        """
        wanted = {item.key: _awaiting_row(item) for item in items}
        changed = 0
        with self.engine.begin() as conn:
            query = select(AWAITING).where(AWAITING.c.team == team, AWAITING.c.channel == channel)
            if since is not None:
                query = query.where(AWAITING.c.received_at >= since)
            existing = {row.item_key: row for row in conn.execute(query)}
            gone = [row.id for key, row in existing.items() if key not in wanted]
            for start in range(0, len(gone), _BATCH):
                conn.execute(delete(AWAITING).where(AWAITING.c.id.in_(gone[start : start + _BATCH])))
            changed += len(gone)
            fresh = []
            modified = []
            for key, values in wanted.items():
                row = existing.get(key)
                if row is None:
                    fresh.append(values | {"team": team, "channel": channel, "updated_at": now})
                elif any(getattr(row, k) != v for k, v in values.items()):
                    modified.append(
                        {f"b_{k}": v for k, v in values.items()} | {"b_id": row.id, "b_updated_at": now}
                    )
            if modified:
                columns = [k for k in modified[0] if k != "b_id"]
                conn.execute(
                    update(AWAITING)
                    .where(AWAITING.c.id == bindparam("b_id"))
                    .values({k.removeprefix("b_"): bindparam(k) for k in columns}),
                    modified,
                )
                changed += len(modified)
            if fresh:
                insert = self._insert()
                conn.execute(insert(AWAITING).on_conflict_do_nothing(), fresh)
                changed += len(fresh)
        return changed

    def set_timings(self, updates: Sequence[tuple[int, datetime | None, float | None]]) -> None:
        """Record items' deadlines and business response times: (row id, due_at, business_seconds)."""
        if not updates:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(AWAITING)
                .where(AWAITING.c.id == bindparam("b_id"))
                .values(due_at=bindparam("b_due"), business_seconds=bindparam("b_seconds")),
                [{"b_id": i, "b_due": due, "b_seconds": seconds} for i, due, seconds in updates],
            )

    def awaiting(
        self, team: str | None = None, *, open_only: bool = False, since: datetime | None = None
    ) -> list[Any]:
        """Stored awaiting rows (all teams when ``team`` is None), oldest first."""
        query = select(AWAITING).order_by(AWAITING.c.received_at)
        if team is not None:
            query = query.where(AWAITING.c.team == team)
        if open_only:
            query = query.where(AWAITING.c.responded_at.is_(None))
        if since is not None:
            query = query.where((AWAITING.c.responded_at.is_(None)) | (AWAITING.c.responded_at >= since))
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def awaiting_to_evaluate(
        self, team: str, window_start: datetime, changed_since: datetime | None
    ) -> list[Any]:
        """The items whose verdict can change: open ones, ones changed since the last evaluation, and
        ones with an open breach. Without ``changed_since``, every item answered inside the window."""
        if changed_since is None:
            return self.awaiting(team, since=window_start)
        open_subjects = select(BREACH.c.subject).where(BREACH.c.team == team, BREACH.c.resolved_at.is_(None))
        query = (
            select(AWAITING)
            .where(
                AWAITING.c.team == team,
                AWAITING.c.responded_at.is_(None)
                | (AWAITING.c.updated_at > changed_since)
                | AWAITING.c.item_key.in_(open_subjects),
            )
            .order_by(AWAITING.c.received_at)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    # -- breaches -------------------------------------------------------------------------------

    def open_breaches(self, team: str | None = None) -> list[Any]:
        """Unresolved warnings and breaches."""
        query = select(BREACH).where(BREACH.c.resolved_at.is_(None)).order_by(BREACH.c.opened_at)
        if team is not None:
            query = query.where(BREACH.c.team == team)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def breach_subjects(self, team: str, rule: str, among: Sequence[str]) -> set[str]:
        """Those of ``among`` that ever had a breach under ``rule`` (so history is not counted twice)."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(among), _BATCH):
                rows = conn.execute(
                    select(BREACH.c.subject).where(
                        BREACH.c.team == team,
                        BREACH.c.rule == rule,
                        BREACH.c.level == "breach",
                        BREACH.c.subject.in_(among[start : start + _BATCH]),
                    )
                )
                found.update(row.subject for row in rows)
        return found

    def apply_transitions(self, transitions: Sequence[dict[str, Any]]) -> None:
        """Write breach transitions (``op``: open, escalate, resolve) in one transaction."""
        if not transitions:
            return
        opened = [
            {
                "team": t["team"],
                "rule": t["rule"],
                "subject": t["subject"],
                "level": t["level"],
                "opened_at": t["at"],
                "due_at": t.get("due_at"),
                "resolved_at": t.get("resolved_at"),
                "escalated_at": t.get("escalated_at"),
            }
            for t in transitions
            if t["op"] == "open"
        ]
        with self.engine.begin() as conn:
            if opened:
                conn.execute(BREACH.insert(), opened)
            for t in transitions:
                if t["op"] == "open":
                    continue
                elif t["op"] == "escalate":
                    conn.execute(
                        update(BREACH)
                        .where(BREACH.c.id == t["id"])
                        .values(level="breach", escalated_at=t["at"])
                    )
                elif t["op"] == "resolve":
                    conn.execute(update(BREACH).where(BREACH.c.id == t["id"]).values(resolved_at=t["at"]))

    def response_histogram(
        self, buckets: Sequence[float]
    ) -> list[tuple[str, str, str | None, list[int], int, float]]:
        """(team, channel, responder, cumulative buckets, count, sum) of answered items' business seconds."""
        secs = AWAITING.c.business_seconds
        cols = [func.sum(case((secs <= b, 1), else_=0)) for b in buckets]
        query = (
            select(
                AWAITING.c.team, AWAITING.c.channel, AWAITING.c.responder, *cols, func.count(), func.sum(secs)
            )
            .where(secs.is_not(None))
            .group_by(AWAITING.c.team, AWAITING.c.channel, AWAITING.c.responder)
        )
        with self.engine.connect() as conn:
            return [
                (
                    r[0],
                    r[1],
                    r[2],
                    [int(v or 0) for v in r[3 : 3 + len(buckets)]],
                    int(r[-2]),
                    float(r[-1] or 0),
                )
                for r in conn.execute(query)
            ]

    def oldest_open(self, team: str) -> datetime | None:
        """When the longest-waiting open item of ``team`` arrived (None when nobody waits)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.min(AWAITING.c.received_at)).where(
                    AWAITING.c.team == team, AWAITING.c.responded_at.is_(None)
                )
            ).scalar()
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def awaiting_summary(self) -> list[tuple[str, str, int, datetime | None]]:
        """(team, channel, open items, oldest arrival) for every team and channel with open items."""
        query = (
            select(AWAITING.c.team, AWAITING.c.channel, func.count(), func.min(AWAITING.c.received_at))
            .where(AWAITING.c.responded_at.is_(None))
            .group_by(AWAITING.c.team, AWAITING.c.channel)
        )
        with self.engine.connect() as conn:
            out = []
            for team, channel, count, oldest in conn.execute(query):
                if isinstance(oldest, str):  # SQLite returns aggregates of typed columns as text
                    oldest = datetime.fromisoformat(oldest)
                if oldest is not None and oldest.tzinfo is None:
                    oldest = oldest.replace(tzinfo=UTC)
                out.append((team, channel, int(count), oldest))
            return out

    def breach_counts(self) -> list[tuple[str, str, int, int]]:
        """(team, rule, open breaches, breaches ever opened) for every team and rule with any."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    BREACH.c.team,
                    BREACH.c.rule,
                    func.sum(
                        case((and_(BREACH.c.resolved_at.is_(None), BREACH.c.level == "breach"), 1), else_=0)
                    ),
                    func.sum(case((BREACH.c.level == "breach", 1), else_=0)),
                ).group_by(BREACH.c.team, BREACH.c.rule)
            )
            return [(r[0], r[1], int(r[2] or 0), int(r[3] or 0)) for r in rows]


def _awaiting_row(item: AwaitingItem) -> dict[str, Any]:
    return {
        "item_key": item.key,
        "conversation": item.conversation,
        "customer": item.customer,
        "received_at": item.received_at,
        "responded_at": item.responded_at,
        "acknowledged_at": item.acknowledged_at,
        "response_id": item.response_id,
        "responder": item.responder,
    }


def _differs(known: dict[str, Any], row: dict[str, Any]) -> bool:
    return any(known[k] != row[k] for k in _MUTABLE)
