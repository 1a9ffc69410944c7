"""The store: one SQLAlchemy engine, idempotent bulk ingest, cursors, awaiting items and breaches."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

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
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from monitor import gc_pause
from monitor.awaiting import AwaitingItem, Response
from monitor.breaches import BecameBreach, OpenBreach, Opened, Resolved, Transition
from monitor.events import CallDirection, CallEvent, Channel, MailboxSnapshot, MessageEvent
from monitor.rules.base import Level
from monitor.sources.base import Cursor, PollResult
from monitor.store.held import HeldMessages, HeldWindow
from monitor.store.models import AwaitingRow, Breach, Call, MailboxCount, Message, SourceCursor
from monitor.store.window import EVENT_COLUMNS, MessageWindow, message_event

log = logging.getLogger(__name__)

MESSAGE = Message.__table__  # type: ignore[attr-defined]
CURSOR = SourceCursor.__table__  # type: ignore[attr-defined]
COUNT = MailboxCount.__table__  # type: ignore[attr-defined]
AWAITING = AwaitingRow.__table__  # type: ignore[attr-defined]
BREACH = Breach.__table__  # type: ignore[attr-defined]
CALL = Call.__table__  # type: ignore[attr-defined]
_TOUCH = (
    update(CURSOR)
    .where(CURSOR.c.source == bindparam("t_source"))
    .values(updated_at=bindparam("t_updated_at", type_=CURSOR.c.updated_at.type))
)
"""A source's poll that changed nothing: only its last poll time moves (:meth:`Store.touch_poll`)."""

_BATCH = 500
_COPY_BATCH = 10_000
"""Rows per bulk INSERT on PostgreSQL (one array parameter per column)."""
_COPY_ABOVE = 2_000
"""More new rows than this go to PostgreSQL through ``COPY`` (psycopg formats them in C)."""
_COPY_STRAIGHT_ABOVE = 100
"""More rows than this, none of them stored, go to PostgreSQL through ``COPY`` straight into their table: no
temporary table to set up, and 5 us a row where the multi-row ``INSERT`` of arrays takes about 19 (a first
rebuild of 6,800 items wrote its last 1,800 that way, 35 ms of its 85)."""
_ANALYZE_ABOVE = 5_000
"""After a poll or a rebuild wrote this many rows to a table, PostgreSQL's statistics of it are refreshed."""
_INSUFFICIENT_PRIVILEGE = "42501"
"""PostgreSQL's SQLSTATE when the user may not create the temporary table ``COPY`` goes through."""
_BACKGROUND_WAIT = 30.0
"""Seconds :meth:`Store.close` waits for a statistics refresh or a checkpoint still running."""
_CHECKPOINT_ABOVE = 2_000
"""SQLite: a transaction that wrote this many rows leaves its WAL checkpoint to a thread of its own."""
_WAL_AUTOCHECKPOINT = 1_000
"""SQLite's own default (pages): what a connection goes back to after a bulk commit."""
_UNIQUE_VIOLATION = "23505"
"""PostgreSQL's SQLSTATE when a row copied straight into its table was stored already."""
# Columns refreshed when a known message is seen again (its flags changed, or a resync re-read it).
_MUTABLE = ("flags", "folder", "automated", "bulk_precedence", "holding_marker", "preview", "removed_at")
# Those the engine does not read: a change of them alone (a flag such as \Seen) leaves the engine stamp.
_ENGINE_IGNORES = frozenset({"flags"})
# Columns of a call refreshed when a known call is seen again (a late leg joined it).
_CALL_MUTABLE = (
    "started_at", "direction", "caller", "callee", "answered", "answered_by", "line",
    "wait_seconds", "talk_seconds", "legs", "rang",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Upserted:
    inserted: int
    updated: int
    engine_changed: bool
    first: bool = False
    """Written into a store that held no row of the source (its first sync)."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one saved poll changed."""

    inserted: int
    updated: int
    removed: int = 0
    """Messages recorded as deleted or moved away (or dropped as superseded after a resync)."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_release(dbapi_connection: Any, _record: Any) -> None:
    """Back in the pool: SQLite's page cache of this connection is let go (up to 2 MB each; a daemon's
    pool keeps several, and a thousand sources' polls use them all). An idle connection's cache is
    stale after another connection's commit anyway."""
    if dbapi_connection is not None:  # None: invalidated
        with contextlib.suppress(dbapi_connection.Error):  # sqlite3's, as DB-API connections name it
            dbapi_connection.execute("PRAGMA shrink_memory")


def make_engine(url: str, password: str | None = None) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout, its folder is created."""
    parsed = make_url(url)
    if password is not None:
        parsed = parsed.set(password=password)
    # hide_parameters: an error's text and the engine's own log never carry bound values (customer
    # addresses, subjects), at any log level (issue 7).
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        engine = create_engine(parsed, connect_args={"check_same_thread": False}, hide_parameters=True)
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            path.parent.mkdir(parents=True, exist_ok=True)
            event.listen(engine, "do_connect", functools.partial(_create_private, path))
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "checkin", _sqlite_release)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg":
        # No server-side prepared statements: after five runs PostgreSQL may switch a prepared query to a
        # generic plan, and the generic plan of "external_id = ANY($1)" filters every row of the source
        # instead of probing the unique index (the known-rows lookup then grew from 2 ms to 100 ms a batch).
        connect_args["prepare_threshold"] = None
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)


def _create_private(database: Path, *_connect_args: Any) -> None:
    """Before SQLite opens it, create the store file readable by its owner only (-wal and -shm take its mode).

    An existing file keeps the mode its admin gave it; a missing folder is left for SQLite to report.
    """
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


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
        "bulk_precedence": event_.bulk_precedence,
        "flags": _join(sorted(event_.flags)),
        "holding_marker": event_.holding_marker,
        "preview": event_.preview,
        "ingested_at": now,
        "removed_at": None,  # seen again: no longer removed
    }


_INSERT_BATCH = 5_000
"""Rows written at once by :meth:`Store.replace_awaiting`: never a second copy of every item as rows."""


def row_event(row: Any) -> MessageEvent:
    """The event a ``message`` row holds."""
    mapping = row._mapping
    return message_event([mapping[name] for name in EVENT_COLUMNS])


class Store:
    """All reads and writes of replywatch's state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._copy_allowed = True
        """PostgreSQL: whether a temporary table for COPY could be created (TEMP privilege)."""
        self.generation = 0
        """Moves after every commit through this store, once the connection is back in the pool: what was
        read before it moved may be out of date (a read once it moved sees the commit)."""
        self._generations = itertools.count(1)
        self._committed = f"replywatch_committed_{id(self)}"
        self._unchecked = f"replywatch_unchecked_{id(self)}"
        event.listen(engine, "commit", self._committing)
        event.listen(engine, "checkin", self._after_commit)
        self.held = HeldMessages()
        """Each source's first sync, until the next evaluation (see :mod:`monitor.store.held`)."""
        self._background: list[threading.Thread] = []
        self._background_lock = threading.Lock()
        self._writes = (0, 0)
        """(message writes, awaiting writes): each moves after a commit through this store that changed
        such rows (:meth:`save_poll`, :meth:`replace_awaiting`), never before it."""
        self._unanswered: dict[tuple[str, tuple[str, ...]], tuple[tuple[Any, ...], dict[Any, int]]] = {}
        self._unanswered_lock = threading.Lock()
        self._pinned = threading.local()
        """The connection of this thread's :meth:`reading` block, if one runs."""

    def _committing(self, conn: Connection) -> None:
        # The driver commits after this event: a read meanwhile may still see the old data, so the
        # generation moves again once the connection is back in the pool.
        conn.info[self._committed] = True
        self.generation = next(self._generations)

    def _after_commit(self, dbapi_connection: Any, record: Any) -> None:
        if record is None:
            return
        if record.info.pop(self._committed, False):
            self.generation = next(self._generations)
        if record.info.pop(self._unchecked, False) and dbapi_connection is not None:
            with contextlib.suppress(dbapi_connection.Error):
                dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT}")
            self._in_background(self._run_checkpoint, "checkpoint")

    def _checkpoint_later(self, conn: Connection, rows: int) -> None:
        """SQLite: when this transaction wrote ``rows`` >= :data:`_CHECKPOINT_ABOVE`, its commit does not
        copy the WAL into the database file (SQLite's automatic checkpoint, run by the committing thread
        once the WAL holds 1,000 pages: 20 ms of a 10,000-message first sync's save); a thread does it
        right after (``PASSIVE``: it never waits for, nor holds up, a reader or a writer)."""
        if self.dialect == "sqlite" and rows >= _CHECKPOINT_ABOVE:
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            conn.info[self._unchecked] = True

    def _run_checkpoint(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as err:  # the next commit past 1,000 pages checkpoints anyway
            log.warning("could not checkpoint the store's WAL: %s", type(err).__name__)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """The store reads this thread makes in the block share one connection.

        Each read otherwise takes a connection from the pool and gives it back: on PostgreSQL a ping, its
        query and a rollback, on SQLite its query and a release of the page cache, and each is a wait on
        I/O after which the thread has to get the GIL back. A scrape of ``/metrics`` makes a dozen reads
        at once, often while an evaluation keeps the GIL busy: with a busy Python thread beside it, one
        connection for all of them took a scrape at 10,000 messages from 63 to 32 ms on PostgreSQL and
        from 35 to 24 ms on SQLite. Reads of rows streamed as they come (:meth:`awaiting_to_evaluate`)
        keep a connection of their own.
        """
        if getattr(self._pinned, "conn", None) is not None:
            yield
            return
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                # Each read sees what was committed before it, as on a connection of its own, whatever the
                # server's default isolation: under REPEATABLE READ one transaction for the block would be
                # one snapshot, and a figure read after a commit could still be the one from before it.
                conn.execution_options(isolation_level="AUTOCOMMIT")
            self._pinned.conn = conn
            try:
                yield
            finally:
                self._pinned.conn = None

    @contextlib.contextmanager
    def reader(self) -> Iterator[Connection]:
        """The connection a read uses: this thread's in :meth:`reading`, else one from the pool."""
        pinned: Connection | None = getattr(self._pinned, "conn", None)
        if pinned is not None:
            yield pinned
            return
        with self.engine.connect() as conn:
            yield conn

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
        """Release pooled connections and what is held (after a statistics refresh or a checkpoint still
        running)."""
        self.held.release()
        self.settled(timeout=_BACKGROUND_WAIT)
        self.engine.dispose()

    # -- ingest ---------------------------------------------------------------------------------

    def _insert(self) -> Any:
        # Imported here: a daemon on SQLite never loads PostgreSQL's dialect (about 2 MB of modules).
        if self.dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.insert
        if self.dialect == "sqlite":
            from sqlalchemy.dialects import sqlite

            return sqlite.insert
        raise NotImplementedError(f"store dialect {self.dialect!r} is not supported")

    def save_poll(self, source: str, result: PollResult, now: datetime) -> IngestResult:
        """Store a poll's messages, calls, folder counts and cursor in one transaction (idempotent).

        The source's engine stamp moves when an event was added or a field the engine reads changed.
        """
        with gc_pause.paused_for(len(result.messages) + len(result.calls)):
            return self._save_poll(source, result, now)

    def _save_poll(self, source: str, result: PollResult, now: datetime) -> IngestResult:
        insert = self._insert()
        self.held.drop(source)  # before the write: a rebuild never finds held what the store no longer is
        with self.engine.begin() as conn:
            messages = self._upsert(
                conn, insert, MESSAGE, source, [message_row(m, now) for m in result.messages], _MUTABLE, now
            )
            calls = self._upsert(
                conn, insert, CALL, source, [call_row(c, now) for c in result.calls], _CALL_MUTABLE, now
            )
            for snap in result.snapshots:
                self._save_snapshot(conn, insert, snap)
            # A first sync stored exactly its messages: what left a folder is known without reading them back.
            removed = self._mark_removed(
                conn, source, result, now, result.messages if messages.first else None
            )
            # A first sync, its messages held for the rebuild that follows (an empty one too: a team's
            # mailbox that holds nothing yet must not send its rebuild to the store).
            first = messages.first or (
                not result.messages
                and not result.calls
                and not self._has_rows(conn, MESSAGE.c.source == source)
            )
            engine_changed = messages.engine_changed or calls.engine_changed or bool(removed)
            self._save_cursor(conn, insert, source, result.cursor, now, engine_changed)
            written = messages.inserted + messages.updated + calls.inserted + calls.updated
            self._checkpoint_later(conn, written)
        if messages.engine_changed or removed:  # what moves the engine stamp (a flag alone does not)
            self._wrote(messages=1)
        if first and not removed:
            self.held.keep(source, result.messages)
        if messages.inserted >= _ANALYZE_ABOVE:
            self._analyze(MESSAGE)
        if calls.inserted >= _ANALYZE_ABOVE:
            self._analyze(CALL)
        return IngestResult(messages.inserted + calls.inserted, messages.updated + calls.updated, removed)

    def _upsert(
        self,
        conn: Connection,
        insert: Any,
        table: Any,
        source: str,
        rows: Sequence[dict[str, Any]],
        mutable: Sequence[str],
        now: datetime,
    ) -> _Upserted:
        """Insert new rows of ``source`` and refresh the ``mutable`` columns of known rows that changed."""
        inserted = updated = 0
        engine_changed = False
        engine_reads = [k for k in mutable if k not in _ENGINE_IGNORES]
        if rows and not self._has_rows(conn, table.c.source == source):
            # The source's first sync (or a store emptied): no row to compare with, so no lookup.
            inserted = self._insert_new(conn, table, rows, none_stored=True)
            return _Upserted(inserted, 0, True, first=True)
        for start in range(0, len(rows), _BATCH):
            batch = rows[start : start + _BATCH]
            known = self._known(conn, table, source, [r["external_id"] for r in batch], mutable)
            fresh = [r for r in batch if r["external_id"] not in known]
            changed = [
                r
                for r in batch
                if r["external_id"] in known and _differs(known[r["external_id"]], r, mutable)
            ]
            if fresh:
                inserted += self._insert_new(conn, table, fresh)
            if changed:
                conn.execute(
                    update(table)
                    .where(table.c.source == source, table.c.external_id == bindparam("b_external_id"))
                    .values({k: bindparam(f"b_{k}") for k in (*mutable, "ingested_at")}),
                    [
                        {f"b_{k}": r[k] for k in ("external_id", *mutable)} | {"b_ingested_at": now}
                        for r in changed
                    ],
                )
                updated += len(changed)
            engine_changed = (
                engine_changed
                or bool(fresh)
                or any(_differs(known[r["external_id"]], r, engine_reads) for r in changed)
            )
        return _Upserted(inserted, updated, engine_changed)

    def _mark_removed(
        self,
        conn: Connection,
        source: str,
        result: PollResult,
        now: datetime,
        stored: Sequence[MessageEvent] | None = None,
    ) -> int:
        """Record the messages of ``source`` that left their folder; returns how many rows changed.

        Gone are the ids the poll names in ``removed``, and the rows of a folder listed in ``remaining``
        that the listing lacks (``stored``: every message the store holds of ``source``, where the caller
        knows them, as after a first sync; else they are read). A gone row whose Message-ID another row
        of the same folder still holds was superseded (a resync read the folder again under new ids): it
        is deleted. Every other gone row is kept with ``removed_at``: an answer stays an answer, and the
        engine closes an unanswered item whose messages are all removed as ``removed``.
        """
        gone = set(result.removed)
        for folder, present in result.remaining.items():
            if stored is not None:
                held = (m.external_id for m in stored if m.folder == folder)
            else:
                held = (
                    row.external_id
                    for row in conn.execute(
                        select(MESSAGE.c.external_id).where(
                            MESSAGE.c.source == source,
                            MESSAGE.c.folder == folder,
                            MESSAGE.c.removed_at.is_(None),
                        )
                    )
                )
            gone.update(external_id for external_id in held if external_id not in present)
        if not gone:
            return 0
        rows: list[Any] = []
        ids = sorted(gone)
        for start in range(0, len(ids), _BATCH):
            rows.extend(
                conn.execute(
                    select(MESSAGE.c.id, MESSAGE.c.folder, MESSAGE.c.message_id).where(
                        MESSAGE.c.source == source,
                        MESSAGE.c.external_id.in_(ids[start : start + _BATCH]),
                        MESSAGE.c.removed_at.is_(None),
                    )
                )
            )
        if not rows:
            return 0
        row_ids = {row.id for row in rows}
        message_ids = sorted({row.message_id for row in rows if row.message_id is not None})
        still_there: set[tuple[str, str]] = set()
        for start in range(0, len(message_ids), _BATCH):
            copies = conn.execute(
                select(MESSAGE.c.id, MESSAGE.c.folder, MESSAGE.c.message_id).where(
                    MESSAGE.c.source == source,
                    MESSAGE.c.message_id.in_(message_ids[start : start + _BATCH]),
                    MESSAGE.c.removed_at.is_(None),
                )
            )
            still_there.update((c.folder, c.message_id) for c in copies if c.id not in row_ids)
        superseded = [row.id for row in rows if (row.folder, row.message_id) in still_there]
        removed = [row.id for row in rows if (row.folder, row.message_id) not in still_there]
        for start in range(0, len(superseded), _BATCH):
            conn.execute(delete(MESSAGE).where(MESSAGE.c.id.in_(superseded[start : start + _BATCH])))
        for start in range(0, len(removed), _BATCH):
            conn.execute(
                update(MESSAGE)
                .where(MESSAGE.c.id.in_(removed[start : start + _BATCH]))
                .values(removed_at=now)
            )
        log.debug(
            "messages left their folders",
            extra={"source": source, "removed": len(removed), "superseded": len(superseded)},
        )
        return len(rows)

    def _analyze(self, table: Any) -> None:
        """PostgreSQL: refresh the planner's statistics of ``table`` after a bulk insert.

        Until autovacuum gets to it (a minute or more), a table filled by an initial sync looks empty to
        the planner, which then filters every row of a source instead of using the indexes. The statistics
        are for the next poll's lookups, so ``ANALYZE`` runs in a thread of its own and on the server's
        CPU while the evaluation of the sync goes on (it took 0.2 s of a 50,000-message first sync).
        """
        if self.dialect != "postgresql":
            return
        self._in_background(functools.partial(self._run_analyze, table.name), f"analyze-{table.name}")

    def _in_background(self, work: Callable[[], None], name: str) -> None:
        """Run ``work`` in a thread of its own, which :meth:`close` waits for."""
        thread = threading.Thread(target=work, name=name, daemon=True)
        with self._background_lock:
            self._background = [t for t in self._background if t.is_alive()]
            self._background.append(thread)
        thread.start()

    def _run_analyze(self, name: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.quote(name)}")
        except Exception as err:  # statistics only: autovacuum refreshes them later
            log.warning("could not refresh the statistics of table %s: %s", name, type(err).__name__)

    def settled(self, timeout: float | None = None) -> bool:
        """Wait for the work started so far in threads of its own (PostgreSQL's ``ANALYZE``, SQLite's WAL
        checkpoint); False if one still runs after ``timeout`` s."""
        with self._background_lock:
            running = list(self._background)
        for thread in running:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in running)

    def _has_rows(self, conn: Connection, *where: Any) -> bool:
        """Whether any row matches ``where``."""
        return conn.execute(select(literal(1)).where(*where).limit(1)).first() is not None

    def _insert_new(
        self,
        conn: Connection,
        table: Any,
        rows: Sequence[dict[str, Any]],
        conflict: str = "ON CONFLICT (source, external_id) DO NOTHING",
        *,
        none_stored: bool = False,
    ) -> int:
        """Insert ``rows`` (all with the same keys) in bulk, skipping any already stored (``conflict``: the
        ``ON CONFLICT`` clause that says which are; empty where a row cannot be stored yet); returns how
        many were given. ``none_stored``: the caller found none of them stored (a source's first sync), so
        PostgreSQL first tries to ``COPY`` them straight into the table.

        The values are converted once per column through the columns' own types and handed to the driver
        as one statement per chunk (PostgreSQL: ``unnest`` of one array per column) or one ``executemany``
        (SQLite), without SQLAlchemy's per-row parameter processing, which cost most of an initial sync.
        """
        columns = list(rows[0])
        values = _driver_columns(conn, table, columns, rows)
        straight = self.dialect == "postgresql" and none_stored and len(rows) > _COPY_STRAIGHT_ABOVE
        if straight and self._copied_straight(conn, table, columns, values):
            return len(rows)
        if self.dialect == "postgresql" and len(rows) > _COPY_ABOVE and self._copy_allowed:
            try:
                with conn.begin_nested():
                    self._copy_new(conn, table, columns, values, conflict)
                return len(rows)
            except DBAPIError as err:
                if getattr(err.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                    raise
                self._copy_allowed = False  # no TEMP privilege on the database: the plain bulk INSERT does
                log.info("bulk COPY not possible (%s); using multi-row INSERT", type(err.orig).__name__)
        _insert_columns(conn, table, columns, values, conflict)
        return len(rows)

    def _copied_straight(
        self, conn: Connection, table: Any, columns: list[str], values: list[list[Any]]
    ) -> bool:
        """PostgreSQL: ``COPY`` rows none of which the caller found stored straight into ``table`` (no
        temporary table: 40 % less time for a first sync). False, with nothing written, where one was
        stored after all or the rows repeat a key: then the caller inserts through :meth:`_copy_new`."""
        try:
            with conn.begin_nested():
                _copy_rows(conn, conn.dialect.identifier_preparer.quote(table.name), columns, values)
        except Exception as err:  # the driver's own error (COPY goes through its cursor), or SQLAlchemy's
            if getattr(getattr(err, "orig", err), "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
            log.debug("rows thought new were stored already; copying them through a temporary table")
            return False
        return True

    def _copy_new(
        self, conn: Connection, table: Any, columns: list[str], values: list[list[Any]], conflict: str
    ) -> None:
        """PostgreSQL: ``COPY`` the rows into a temporary table, then insert those not stored yet."""
        quote = conn.dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in columns)
        scratch = quote(f"replywatch_new_{table.name}")
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {scratch} ON COMMIT DROP AS SELECT {names} FROM {quote(table.name)} "
            "WITH NO DATA"
        )
        _copy_rows(conn, scratch, columns, values)
        conn.exec_driver_sql(
            f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {scratch} {conflict}"
        )
        conn.exec_driver_sql(f"DROP TABLE {scratch}")

    def _known(
        self, conn: Connection, table: Any, source: str, ids: Sequence[str], columns: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        cols = [table.c.external_id, *(table.c[k] for k in columns)]
        match = self._among(table.c.external_id, ids)
        found = conn.execute(select(*cols).where(table.c.source == source, match))
        return {row.external_id: dict(row._mapping) for row in found}

    def _among(self, column: Any, values: Sequence[str]) -> Any:
        """``column IN values``. On PostgreSQL one array parameter (``= ANY``): planned on the column's
        index, where an ``IN`` list of 500 parameters took ~100 ms a batch to plan for the known-rows
        lookup, and about 2 ms a batch for the breach history's (40 to 14 ms for 6,820 subjects)."""
        if self.dialect == "postgresql":
            return column == any_(literal(list(values), ARRAY(String)))
        return column.in_(values)

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

    def _save_cursor(
        self, conn: Connection, insert: Any, source: str, cursor: Cursor, now: datetime, engine_changed: bool
    ) -> None:
        stmt = insert(CURSOR).values(
            source=source,
            value=json.dumps(cursor, sort_keys=True),
            updated_at=now,
            engine_changed_at=now if engine_changed else None,
        )
        updates = {"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}
        if engine_changed:
            updates["engine_changed_at"] = stmt.excluded.engine_changed_at
        conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_=updates))

    def touch_poll(self, source: str, now: datetime) -> bool:
        """Record that ``source`` completed a poll at ``now`` that changed nothing (see :meth:`last_polls`):
        one small update, where a save would write its counts and cursor again. False when the source
        has no stored cursor to update."""
        with self.engine.begin() as conn:
            return bool(conn.execute(_TOUCH, {"t_source": source, "t_updated_at": now}).rowcount)

    def load_cursor(self, source: str) -> Cursor | None:
        """The saved position of ``source``, or None before its first poll."""
        with self.reader() as conn:
            value = conn.execute(select(CURSOR.c.value).where(CURSOR.c.source == source)).scalar()
        return json.loads(value) if value else None

    def last_polls(self) -> dict[str, datetime]:
        """When each source last completed a poll (saved its cursor), by name; empty before any poll."""
        with self.reader() as conn:
            rows = conn.execute(select(CURSOR.c.source, CURSOR.c.updated_at))
            return {row.source: when for row in rows if (when := _aware(row.updated_at)) is not None}

    def engine_stamp(self, sources: Sequence[str]) -> datetime | None:
        """When any of ``sources`` last added an event or changed a field the engine reads."""
        with self.reader() as conn:
            value = conn.execute(
                select(func.max(CURSOR.c.engine_changed_at)).where(CURSOR.c.source.in_(sources))
            ).scalar()
        return _aware(value)

    def messages(self, sources: Sequence[str], since: datetime | None = None) -> list[MessageEvent]:
        """Every stored message of ``sources`` dated at or after ``since``."""
        with self.window(sources, since) as window:
            return window.all()

    def window(self, sources: Sequence[str], since: datetime | None = None) -> MessageWindow:
        """The stored messages of ``sources`` dated at or after ``since``, to read in parts."""
        return MessageWindow(self.engine, sources, since)

    def rebuild_window(
        self, sources: Sequence[str], since: datetime | None = None
    ) -> MessageWindow | HeldWindow:
        """The messages of :meth:`window`, from memory when every source's are held since its first sync."""
        held = self.held.window(sources, since)
        return held if held is not None else self.window(sources, since)

    def removed_messages(self, sources: Sequence[str]) -> list[MessageEvent]:
        """Every stored message of ``sources`` that its source reported deleted or moved away."""
        query = select(MESSAGE).where(MESSAGE.c.source.in_(sources), MESSAGE.c.removed_at.is_not(None))
        with self.reader() as conn:
            return [row_event(row) for row in conn.execute(query)]

    def subjects(self, message_ids: Sequence[str]) -> dict[str, str]:
        """The Subject of each stored message among ``message_ids`` (``status`` names mail by subject)."""
        out: dict[str, str] = {}
        with self.reader() as conn:
            for start in range(0, len(message_ids), _BATCH):
                query = select(MESSAGE.c.message_id, MESSAGE.c.subject).where(
                    MESSAGE.c.message_id.in_(message_ids[start : start + _BATCH])
                )
                out.update({row.message_id: row.subject for row in conn.execute(query)})
        return out

    def calls(self, sources: Sequence[str], since: datetime | None = None) -> list[CallEvent]:
        """Every stored call of ``sources`` that started at or after ``since``."""
        query = select(CALL).where(CALL.c.source.in_(sources))
        if since is not None:
            query = query.where(CALL.c.started_at >= since)
        with self.reader() as conn:
            return [row_call(row) for row in conn.execute(query)]

    def mailbox_counts(self, sources: Sequence[str] | None = None) -> list[MailboxSnapshot]:
        """The latest counts of every folder (of ``sources`` only, when given), as stored.

        Read as plain rows: every evaluation reads the counts of all the teams' folders, and a model
        object per row cost most of an idle evaluation with 1,000 mailboxes.
        """
        c = COUNT.c
        query = select(c.source, c.folder, c.at, c.total, c.unseen, c.unanswered, c.oldest)
        if sources is not None:
            query = query.where(c.source.in_(sources))
        with self.reader() as conn:
            return [MailboxSnapshot(*row) for row in conn.execute(query)]

    def unanswered_by_folder(self, team: str, sources: Sequence[str]) -> dict[tuple[str, str], int]:
        """(source, folder) -> the team's open email items whose opening message is in that folder of
        ``sources``: replywatch's own judgement of unanswered mail, not the IMAP ``\\Answered`` flag.

        Counted again only once this store wrote messages or awaiting items, or the sources' engine stamp
        moved (a message added, moved or removed by another process; awaiting items are written by the
        daemon's rebuild alone): every evaluation and every scrape after a commit asks, and at 30,000 open
        items the count is a join of about 0.1 s on SQLite.
        """
        key = (team, tuple(sources))
        # Read before counting: a change committed meanwhile moves them past what is kept.
        version = (self.engine_stamp(sources), self._writes)
        with self._unanswered_lock:
            kept = self._unanswered.get(key)
        if kept is not None and kept[0] == version:
            return dict(kept[1])
        counts = self._count_unanswered(team, sources)
        with self._unanswered_lock:
            self._unanswered[key] = (version, counts)
        return dict(counts)

    def _wrote(self, *, messages: int = 0, awaiting: int = 0) -> None:
        """Note a committed write of messages or awaiting items (what :meth:`unanswered_by_folder` keeps
        is counted again)."""
        with self._unanswered_lock:
            self._writes = (self._writes[0] + messages, self._writes[1] + awaiting)

    def _count_unanswered(self, team: str, sources: Sequence[str]) -> dict[tuple[str, str], int]:
        own_key = MESSAGE.c.source.concat(":").concat(MESSAGE.c.external_id)
        open_email = (
            AWAITING.c.team == team,
            AWAITING.c.channel == Channel.EMAIL.value,
            AWAITING.c.responded_at.is_(None),
            AWAITING.c.removed_at.is_(None),
            MESSAGE.c.removed_at.is_(None),
            MESSAGE.c.source.in_(sources),
        )
        # Two joins in a UNION rather than one join on an OR: PostgreSQL cannot use an index for a join on
        # "a = x OR (a IS NULL AND b = x)" and compared every open item with every message (0.9 s at 20,000).
        by_id = select(MESSAGE.c.source, MESSAGE.c.folder, AWAITING.c.id).select_from(
            AWAITING.join(MESSAGE, MESSAGE.c.message_id == AWAITING.c.item_key)
        )
        by_own_key = select(MESSAGE.c.source, MESSAGE.c.folder, AWAITING.c.id).select_from(
            AWAITING.join(MESSAGE, and_(MESSAGE.c.message_id.is_(None), own_key == AWAITING.c.item_key))
        )
        pairs = by_id.where(*open_email).union(by_own_key.where(*open_email)).subquery()
        query = select(pairs.c.source, pairs.c.folder, func.count()).group_by(pairs.c.source, pairs.c.folder)
        with self.reader() as conn:
            return {(source, folder): int(count) for source, folder, count in conn.execute(query)}

    # -- awaiting items -------------------------------------------------------------------------

    def replace_awaiting(
        self,
        team: str,
        channel: Channel,
        items: Sequence[AwaitingItem],
        since: datetime | None,
        now: datetime,
    ) -> int:
        """Make the stored items of ``team``/``channel`` received at or after ``since`` equal ``items``.

        Only rows whose content changed are written. Returns how many rows changed.
        """
        wanted = {item.key: item for item in items}
        changed = 0
        with self.engine.begin() as conn:
            query = select(AWAITING).where(AWAITING.c.team == team, AWAITING.c.channel == channel)
            if since is not None:
                query = query.where(AWAITING.c.received_at >= since)
            # The stored rows are compared as they are read, a batch at a time: a restart's first rebuild
            # meets every item of the window stored, and holding them all as rows would double its memory.
            stored: set[str] = set()
            gone = []
            modified = []
            for row in conn.execute(query.execution_options(yield_per=_INSERT_BATCH)):
                item = wanted.get(row.item_key)
                if item is None:
                    gone.append(row.id)
                    continue
                stored.add(item.key)
                values = awaiting_row(item)
                if any(getattr(row, k) != v for k, v in values.items()):
                    modified.append(
                        {f"b_{k}": v for k, v in values.items()} | {"b_id": row.id, "b_updated_at": now}
                    )
            for start in range(0, len(gone), _BATCH):
                conn.execute(delete(AWAITING).where(AWAITING.c.id.in_(gone[start : start + _BATCH])))
            changed += len(gone)
            # A team's first rebuild: no row of it at all (not only since ``since``), so none to skip.
            none_stored = (
                not stored
                and not gone
                and len(wanted) > _COPY_STRAIGHT_ABOVE
                and self.dialect == "postgresql"
                and not self._has_rows(conn, AWAITING.c.team == team, AWAITING.c.channel == channel)
            )
            fresh: list[dict[str, Any]] = []
            inserted = 0
            for key, item in wanted.items():
                if key in stored:
                    continue
                values = awaiting_row(item)
                values.update(team=team, channel=channel.value, updated_at=now)
                fresh.append(values)
                if len(fresh) == _INSERT_BATCH:  # a first rebuild writes every item: rows batch by batch
                    inserted += self._insert_new(
                        conn, AWAITING, fresh, "ON CONFLICT DO NOTHING", none_stored=none_stored
                    )
                    fresh = []
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
                inserted += self._insert_new(
                    conn, AWAITING, fresh, "ON CONFLICT DO NOTHING", none_stored=none_stored
                )
            changed += inserted
            self._checkpoint_later(conn, changed)
        if changed:
            self._wrote(awaiting=1)
        if inserted >= _ANALYZE_ABOVE:
            self._analyze(AWAITING)
        return changed

    def set_timings(self, updates: Iterable[Timing]) -> None:
        """Record items' deadlines and, once answered, their business and wall response times (taken a
        batch at a time: a first evaluation times every item of the window)."""
        pending = iter(updates)
        batch = list(itertools.islice(pending, _INSERT_BATCH))
        if not batch:
            return
        with self.engine.begin() as conn:
            while batch:
                rows = [
                    {
                        "due_at": t.due_at,
                        "business_seconds": t.business_seconds,
                        "wall_seconds": t.wall_seconds,
                        "id": t.row_id,
                    }
                    for t in batch
                ]
                _update_many(conn, AWAITING, rows)
                batch = list(itertools.islice(pending, _INSERT_BATCH))

    def awaiting(
        self, team: str | None = None, *, open_only: bool = False, since: datetime | None = None
    ) -> list[Any]:
        """Stored awaiting rows (all teams when ``team`` is None), oldest first."""
        query = select(AWAITING).order_by(AWAITING.c.received_at)
        if team is not None:
            query = query.where(AWAITING.c.team == team)
        waiting = and_(AWAITING.c.responded_at.is_(None), AWAITING.c.removed_at.is_(None))
        if open_only:
            query = query.where(waiting)
        if since is not None:
            query = query.where(
                waiting | (AWAITING.c.responded_at >= since) | (AWAITING.c.removed_at >= since)
            )
        with self.reader() as conn:
            return list(conn.execute(query))

    def awaiting_to_evaluate(
        self, team: str, window_start: datetime, changed_since: datetime | None
    ) -> Iterator[Any]:
        """The items whose verdict can change: open ones, ones changed since the last evaluation, and
        ones with an open breach. Without ``changed_since``, every item answered inside the window.
        Streamed, oldest first: after a rebuild that is every item of the window."""
        waiting = and_(AWAITING.c.responded_at.is_(None), AWAITING.c.removed_at.is_(None))
        if changed_since is None:
            wanted = (
                waiting | (AWAITING.c.responded_at >= window_start) | (AWAITING.c.removed_at >= window_start)
            )
        else:
            open_subjects = select(BREACH.c.subject).where(
                BREACH.c.team == team, BREACH.c.resolved_at.is_(None)
            )
            wanted = (
                waiting | (AWAITING.c.updated_at > changed_since) | AWAITING.c.item_key.in_(open_subjects)
            )
        query = select(AWAITING).where(AWAITING.c.team == team, wanted).order_by(AWAITING.c.received_at)
        with self.engine.connect() as conn:
            yield from conn.execution_options(yield_per=_INSERT_BATCH).execute(query)

    def awaiting_changed_or_named(self, team: str, changed_since: datetime, keys: Sequence[str]) -> list[Any]:
        """The team's items changed since ``changed_since`` and those whose key is in ``keys``, oldest
        first (what an evaluation judges again when nothing else can have moved)."""
        base = select(AWAITING).where(AWAITING.c.team == team)
        found: dict[int, Any] = {}
        with self.reader() as conn:
            for row in conn.execute(base.where(AWAITING.c.updated_at > changed_since)):
                found[row.id] = row
            for start in range(0, len(keys), _BATCH):
                chunk = keys[start : start + _BATCH]
                for row in conn.execute(base.where(AWAITING.c.item_key.in_(chunk))):
                    found[row.id] = row
        return sorted(found.values(), key=lambda row: (row.received_at, row.id))

    # -- breaches -------------------------------------------------------------------------------

    def open_breaches(
        self, team: str | None = None, subjects: Collection[str] | None = None
    ) -> list[OpenBreach]:
        """Unresolved warnings and breaches (of ``subjects`` only, when given), oldest first."""
        query = select(BREACH).where(BREACH.c.resolved_at.is_(None))
        if team is not None:
            query = query.where(BREACH.c.team == team)
        with self.reader() as conn:
            if subjects is None:
                rows = list(conn.execute(query))
            else:
                wanted = sorted(subjects)
                rows = [
                    row
                    for start in range(0, len(wanted), _BATCH)
                    for row in conn.execute(query.where(BREACH.c.subject.in_(wanted[start : start + _BATCH])))
                ]
        rows.sort(key=lambda r: (_aware(r.opened_at), r.id))
        return [
            OpenBreach(
                r.id,
                r.team,
                r.rule,
                r.subject,
                Level(r.level),
                r.opened_at,
                r.due_at,
                r.breached_at,
                _split(r.unreadable),
            )
            for r in rows
        ]

    def breach_history(self, team: str, among: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those (rule, subject) pairs of ``among`` that ever had a breach (history never counts twice)."""
        found: set[tuple[str, str]] = set()
        by_rule: dict[str, list[str]] = {}
        for rule, subject in among:
            by_rule.setdefault(rule, []).append(subject)
        with self.reader() as conn:
            for rule, subjects in by_rule.items():
                step = len(subjects) if self.dialect == "postgresql" else _BATCH  # one array parameter
                for start in range(0, len(subjects), step):
                    rows = conn.execute(
                        select(BREACH.c.subject).where(
                            BREACH.c.team == team,
                            BREACH.c.rule == rule,
                            BREACH.c.level == Level.BREACH.value,
                            self._among(BREACH.c.subject, subjects[start : start + step]),
                        )
                    )
                    found.update((rule, row.subject) for row in rows)
        return found

    def apply_transitions(
        self,
        transitions: Sequence[Transition],
        then: Callable[[Connection, Sequence[Transition]], None] | None = None,
    ) -> None:
        """Write breach transitions in bulk, in one transaction with whatever ``then`` writes (the rows
        owed because of them), so a transition and its consequences are stored together or not at all."""
        if not transitions:
            return
        with self.engine.begin() as conn:
            # A first evaluation may open a breach for every old unanswered item: rows batch by batch,
            # each a new row (nothing to skip: PostgreSQL copies them straight into the table).
            opened = (t for t in transitions if isinstance(t, Opened))
            while batch := list(itertools.islice(opened, _INSERT_BATCH)):
                self._insert_new(conn, BREACH, [_opened_row(t) for t in batch], conflict="", none_stored=True)
            self._apply_changes(conn, transitions)
            if then is not None:
                then(conn, transitions)

    def _apply_changes(self, conn: Connection, transitions: Sequence[Transition]) -> None:
        """Write the breaches that became breaches and the resolved ones among ``transitions``."""
        became = [
            {"b_id": t.breach_id, "b_at": t.at, "b_unreadable": _join(t.unreadable)}
            for t in transitions
            if isinstance(t, BecameBreach)
        ]
        resolved = [{"resolved_at": t.at, "id": t.breach_id} for t in transitions if isinstance(t, Resolved)]
        if became:
            conn.execute(
                update(BREACH)
                .where(BREACH.c.id == bindparam("b_id"))
                .values(
                    level=Level.BREACH.value,
                    breached_at=bindparam("b_at"),
                    unreadable=bindparam("b_unreadable"),
                ),
                became,
            )
        if resolved:
            _update_many(conn, BREACH, resolved)

    def response_histogram(
        self, buckets: Sequence[float], clock: Literal["business", "wall"] = "business"
    ) -> list[tuple[str, str, str | None, list[int], int, float]]:
        """(team, channel, responder, cumulative buckets, count, sum) of answered items' response times in
        business or wall-clock seconds."""
        secs = AWAITING.c.business_seconds if clock == "business" else AWAITING.c.wall_seconds
        cols = [func.sum(case((secs <= b, 1), else_=0)) for b in buckets]
        query = (
            select(
                AWAITING.c.team, AWAITING.c.channel, AWAITING.c.responder, *cols, func.count(), func.sum(secs)
            )
            .where(secs.is_not(None))
            .group_by(AWAITING.c.team, AWAITING.c.channel, AWAITING.c.responder)
        )
        with self.reader() as conn:
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
        with self.reader() as conn:
            value = conn.execute(
                select(func.min(AWAITING.c.received_at)).where(
                    AWAITING.c.team == team,
                    AWAITING.c.responded_at.is_(None),
                    AWAITING.c.removed_at.is_(None),
                )
            ).scalar()
        return _aware(value)

    def awaiting_summary(self) -> list[tuple[str, str, int, datetime | None]]:
        """(team, channel, open items, oldest arrival) for every team and channel with open items."""
        query = (
            select(AWAITING.c.team, AWAITING.c.channel, func.count(), func.min(AWAITING.c.received_at))
            .where(AWAITING.c.responded_at.is_(None), AWAITING.c.removed_at.is_(None))
            .group_by(AWAITING.c.team, AWAITING.c.channel)
        )
        with self.reader() as conn:
            out = []
            for team, channel, count, oldest in conn.execute(query):
                out.append((team, channel, int(count), _aware(oldest)))
            return out

    def warning_counts(self) -> list[tuple[str, str, int]]:
        """(team, rule, open warnings) for every team and rule with an open warning."""
        with self.reader() as conn:
            rows = conn.execute(
                select(BREACH.c.team, BREACH.c.rule, func.count())
                .where(BREACH.c.resolved_at.is_(None), BREACH.c.level == Level.WARNING.value)
                .group_by(BREACH.c.team, BREACH.c.rule)
            )
            return [(r[0], r[1], int(r[2])) for r in rows]

    def on_time_counts(self, since: datetime, now: datetime) -> list[tuple[str, str, int, int]]:
        """(team, channel, decided, on time) of the items with a deadline received since ``since`` whose
        outcome is known at ``now``: answered, or past their deadline; on time = answered by the deadline."""
        answered = AWAITING.c.responded_at.is_not(None)
        on_time = and_(answered, AWAITING.c.responded_at <= AWAITING.c.due_at)
        # A removed item is decided only when its deadline had passed before the removal (then it is a
        # miss: deleting a late customer's mail does not take it out of the share); removed earlier, it was
        # neither answered nor late.
        decided = and_(
            AWAITING.c.due_at.is_not(None),
            or_(
                answered,
                and_(AWAITING.c.removed_at.is_(None), AWAITING.c.due_at < now),
                and_(AWAITING.c.removed_at.is_not(None), AWAITING.c.removed_at > AWAITING.c.due_at),
            ),
        )
        query = (
            select(
                AWAITING.c.team,
                AWAITING.c.channel,
                func.count(),
                func.sum(case((on_time, 1), else_=0)),
            )
            .where(AWAITING.c.received_at >= since, AWAITING.c.received_at <= now, decided)
            .group_by(AWAITING.c.team, AWAITING.c.channel)
        )
        with self.reader() as conn:
            return [(r[0], r[1], int(r[2]), int(r[3] or 0)) for r in conn.execute(query)]

    def removed_counts(self) -> list[tuple[str, str, int]]:
        """(team, channel, items closed as removed) for every team and channel with any."""
        with self.reader() as conn:
            rows = conn.execute(
                select(AWAITING.c.team, AWAITING.c.channel, func.count())
                .where(AWAITING.c.removed_at.is_not(None))
                .group_by(AWAITING.c.team, AWAITING.c.channel)
            )
            return [(r[0], r[1], int(r[2])) for r in rows]

    def removed_since(self, team: str, since: datetime) -> int:
        """How many of ``team``'s items were closed as removed at or after ``since``."""
        with self.reader() as conn:
            value = conn.execute(
                select(func.count()).where(AWAITING.c.team == team, AWAITING.c.removed_at >= since)
            ).scalar()
        return int(value or 0)

    def breach_counts(self) -> list[tuple[str, str, int, int]]:
        """(team, rule, open breaches, breaches ever opened) for every team and rule with any."""
        with self.reader() as conn:
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


def _driver_columns(
    conn: Connection, table: Any, columns: Sequence[str], rows: Sequence[dict[str, Any]]
) -> list[list[Any]]:
    """The values of ``columns`` in ``rows``, one list per column, converted once per column by the
    columns' own types for the driver (SQLAlchemy's executemany converts them row by row)."""
    values = [[row[c] for row in rows] for c in columns]
    for i, column in enumerate(columns):
        process = table.c[column].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        if process is not None:
            values[i] = _each_once(process, values[i])
    return values


def _each_once(process: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    """``[process(v) for v in values]``, converting a value once while the next ones are the same object
    (a write's ``ingested_at``, the ``None`` of a column nobody set, the ``False`` of a flag)."""
    out: list[Any] = []
    last: Any = _NOTHING
    done: Any = None
    for value in values:
        if value is not last:
            last, done = value, process(value)
        out.append(done)
    return out


_NOTHING = object()


def _copy_rows(conn: Connection, table: str, columns: Sequence[str], values: list[list[Any]]) -> None:
    """PostgreSQL: ``COPY`` the rows whose ``columns`` hold ``values`` into ``table`` (a quoted name)."""
    names = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in zip(*values, strict=True):
            copy.write_row(row)


def _insert_columns(
    conn: Connection, table: Any, columns: list[str], values: list[list[Any]], tail: str
) -> None:
    """``INSERT`` of the rows whose ``columns`` hold ``values`` (one driver-ready list per column), with
    ``tail`` (an ``ON CONFLICT`` clause) after it."""
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    if _as_arrays(conn, values[0]):
        arrays = _arrays(conn, table, columns)
        _bulk(
            conn, f"INSERT INTO {quote(table.name)} ({names}) SELECT * FROM unnest({arrays}) {tail}", values
        )
        return
    marks = ", ".join("?" if conn.dialect.name == "sqlite" else "%s" for _ in columns)
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks}) {tail}"
    conn.exec_driver_sql(sql, list(zip(*values, strict=True)))


def _update_many(conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """``UPDATE table SET ... WHERE id = ...`` for each row (all with the same keys, ``id`` last), in bulk
    (see :func:`_bulk`)."""
    columns = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    values = _driver_columns(conn, table, columns, rows)
    if _as_arrays(conn, rows):
        sets = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in columns[:-1])
        named = ", ".join(quote(c) for c in columns)
        arrays = _arrays(conn, table, columns)
        sql = (
            f"UPDATE {quote(table.name)} SET {sets} FROM unnest({arrays}) AS v({named}) "
            f"WHERE {quote(table.name)}.{quote(columns[-1])} = v.{quote(columns[-1])}"
        )
        _bulk(conn, sql, values)
        return
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    sets = ", ".join(f"{quote(c)} = {mark}" for c in columns[:-1])
    sql = f"UPDATE {quote(table.name)} SET {sets} WHERE {quote(columns[-1])} = {mark}"
    conn.exec_driver_sql(sql, list(zip(*values, strict=True)))


_ARRAYS_ABOVE = 20
"""PostgreSQL: more rows than this are written as one statement of arrays, not one statement per row."""


def _as_arrays(conn: Connection, rows: Sequence[Any]) -> bool:
    return conn.dialect.name == "postgresql" and len(rows) > _ARRAYS_ABOVE


def _arrays(conn: Connection, table: Any, columns: Sequence[str]) -> str:
    """One array parameter per column, cast to the column's type (PostgreSQL ``unnest``)."""
    return ", ".join(f"%s::{table.c[c].type.compile(dialect=conn.dialect)}[]" for c in columns)


def _bulk(conn: Connection, sql: str, values: list[list[Any]]) -> None:
    """Run ``sql`` (``unnest`` of one array per column) for :data:`_COPY_BATCH` rows at a time: a first
    evaluation writes every item of the window, and one statement per row cost PostgreSQL 50 us a row
    (psycopg's executemany runs each row as a statement of its own)."""
    for start in range(0, len(values[0]), _COPY_BATCH):
        conn.exec_driver_sql(sql, tuple(column[start : start + _COPY_BATCH] for column in values))


@dataclass(frozen=True, slots=True)
class Timing:
    """An item's deadline and response times as the verdict core found them, for its stored row."""

    row_id: int
    due_at: datetime | None
    business_seconds: float | None
    wall_seconds: float | None


def _opened_row(t: Opened) -> dict[str, Any]:
    """The ``breach`` row of a warning or breach that opened."""
    return {
        "team": t.team,
        "rule": t.rule,
        "subject": t.subject,
        "level": t.level.value,
        "opened_at": t.at,
        "due_at": t.due_at,
        "resolved_at": t.resolved_at,
        "breached_at": t.breached_at,
        "unreadable": _join(t.unreadable),
    }


def awaiting_row(item: AwaitingItem) -> dict[str, Any]:
    """The ``awaiting`` columns an item sets (the row's id, team, channel and timings aside)."""
    return {
        "item_key": item.key,
        "conversation": item.conversation,
        "customer": item.customer,
        "received_at": item.received_at,
        "responded_at": item.responded_at,
        "acknowledged_at": item.acknowledged_at,
        "response_id": item.response_id,
        "responder": item.responder,
        "owner": item.owner,
        "attempts": item.attempts,
        "outside_hours": item.outside_hours,
        "removed_at": item.removed_at,
    }


def row_item(row: Any, shared: dict[Any, Any] | None = None) -> AwaitingItem:
    """The item an ``awaiting`` row holds (the one mapper from rows to items); ``shared`` (one dict for
    the rows of a read) holds equal names and addresses of many rows once, as :func:`message_event` does."""
    if shared is None:
        shared = {}
    response = (
        Response(row.responded_at, row.response_id or "", _one(shared, row.responder))
        if row.responded_at is not None
        else None
    )
    key = row.item_key
    return AwaitingItem(
        team=_one(shared, row.team),
        channel=Channel(row.channel),
        key=key,
        conversation=key if row.conversation == key else row.conversation,
        customer=_one(shared, row.customer),
        received_at=row.received_at,
        response=response,
        acknowledged_at=row.acknowledged_at,
        owner=_one(shared, row.owner),
        attempts=row.attempts,
        outside_hours=bool(row.outside_hours),
        removed_at=row.removed_at,
    )


def _one(shared: dict[Any, Any], value: str | None) -> Any:
    return shared.setdefault(value, value) if value else value


def call_row(call: CallEvent, now: datetime) -> dict[str, Any]:
    """The ``call`` row for an event."""
    return {
        "source": call.source,
        "external_id": call.external_id,
        "started_at": call.started_at,
        "direction": call.direction.value,
        "caller": call.caller,
        "callee": call.callee,
        "answered": call.answered,
        "answered_by": call.answered_by,
        "line": call.line,
        "wait_seconds": call.wait_seconds,
        "talk_seconds": call.talk_seconds,
        "legs": call.legs,
        "rang": ",".join(call.rang),
        "ingested_at": now,
    }


def row_call(row: Any) -> CallEvent:
    """The event a ``call`` row holds."""
    return CallEvent(
        source=row.source,
        external_id=row.external_id,
        started_at=row.started_at,
        direction=CallDirection(row.direction),
        caller=row.caller,
        callee=row.callee,
        answered=bool(row.answered),
        answered_by=row.answered_by,
        line=row.line,
        wait_seconds=row.wait_seconds,
        talk_seconds=row.talk_seconds,
        legs=row.legs,
        rang=tuple(row.rang.split(",")) if row.rang else (),
    )


def _aware(value: Any) -> datetime | None:
    """A timestamp aggregate as UTC-aware (SQLite hands aggregates of typed columns back as naive text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value  # type: ignore[no-any-return]


def _differs(known: dict[str, Any], row: dict[str, Any], columns: Sequence[str] = _MUTABLE) -> bool:
    return any(known[k] != row[k] for k in columns)
