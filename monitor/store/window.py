"""The stored messages of a window as the engine reads them: every one, in date order, streamed; the copies
of messages held more than once; and chosen rows, a slice at a time.

A plain driver read: SQLAlchemy's row objects and per-row processing cost six times the read itself, and a
rebuild reads every message of the window.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from monitor.events import MessageEvent
from monitor.store.models import Message

MESSAGE = Message.__table__  # type: ignore[attr-defined]
_FETCH = 5_000
"""Rows fetched from the driver at once: never every raw row and every event of a read at once."""
_SHARED_LIMIT = 50_000
"""Shared values one read holds at most (see :func:`message_event`): a read streamed through, never held
whole, must not keep every Message-ID it met."""
_ROWS_PER_QUERY = 900
"""Row ids per ``IN`` list (SQLite's bound-parameter limit is 999 on old builds)."""


EVENT_COLUMNS = (
    "source", "folder", "external_id", "message_id", "date", "from_addr", "from_name", "sender_addr",
    "reply_to", "to_addrs", "cc_addrs", "subject", "in_reply_to", "references", "thread_id", "automated",
    "bulk_precedence", "flags", "holding_marker", "preview", "removed_at",
)  # fmt: skip


def message_event(
    values: Sequence[Any], shared: dict[Any, Any] | None = None, convert: Callable[[Any], Any] | None = None
) -> MessageEvent:
    """The event of a ``message`` row's values in the order of :data:`EVENT_COLUMNS`: the one mapping
    from stored row to event.

    ``shared`` (one dict for all the rows of a read) makes equal values of many rows one object: a read of
    every message of a window holds each address, folder name and address list once, not once a row.
    ``convert``: the driver's value of a timestamp column to a datetime, where the driver does not do it.
    """
    (source, folder, external_id, message_id, date, from_addr, from_name, sender_addr, reply_to, to_addrs,
     cc_addrs, subject, in_reply_to, references, thread_id, automated, bulk_precedence, flags,
     holding_marker, preview, removed_at) = values  # fmt: skip
    if shared is None:
        shared = {}
    if convert is not None:
        date = convert(date)
        if removed_at is not None:
            removed_at = convert(removed_at)
    one = shared.setdefault
    return MessageEvent(
        source=one(source, source),
        folder=one(folder, folder),
        external_id=external_id,
        message_id=one(message_id, message_id) if message_id else message_id,
        date=date,
        from_addr=one(from_addr, from_addr) if from_addr else from_addr,
        from_name=one(from_name, from_name) if from_name else from_name,
        sender_addr=one(sender_addr, sender_addr) if sender_addr else sender_addr,
        reply_to=_shared_split(shared, reply_to),
        to_addrs=_shared_split(shared, to_addrs),
        cc_addrs=_shared_split(shared, cc_addrs),
        subject=subject,
        in_reply_to=one(in_reply_to, in_reply_to) if in_reply_to else in_reply_to,
        references=_shared_split(shared, references),
        thread_id=one(thread_id, thread_id) if thread_id else thread_id,
        automated=one(automated, automated) if automated else automated,
        bulk_precedence=bool(bulk_precedence),
        flags=_shared_flags(shared, flags),
        holding_marker=bool(holding_marker),
        preview=preview,
        removed_at=removed_at,
    )


def _shared(shared: dict[Any, Any], value: str | None) -> Any:
    if not value:
        return value
    return shared.setdefault(value, value)


def _shared_split(shared: dict[Any, Any], value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    key = ("split", value)
    found = shared.get(key)
    if found is None:
        found = shared[key] = tuple(_shared(shared, part) for part in value.split())
    return found


def _shared_flags(shared: dict[Any, Any], value: str | None) -> frozenset[str]:
    key = ("flags", value)
    found = shared.get(key)
    if found is None:
        found = shared[key] = frozenset(value.split()) if value else frozenset()
    return found


class MessageWindow:
    """The messages of ``sources`` dated at or after ``since`` (every date when None).

    Used as a context manager, every read sees the store as it was at the first one (one read-only
    transaction, ``REPEATABLE READ`` on PostgreSQL): a rebuild that reads the window twice never meets a
    message written, changed or deleted by a poll in between. Outside one, each read is a snapshot of its
    own.
    """

    def __init__(self, engine: Engine, sources: Sequence[str], since: Any = None) -> None:
        self.engine = engine
        self.sources = list(sources)
        self.since = since
        self._held: Connection | None = None
        self._cursors = itertools.count()
        self._open: list[Any] = []
        """Cursors of reads not finished yet."""

    def __enter__(self) -> MessageWindow:
        conn = self.engine.connect()
        try:
            if self.engine.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            raw: Any = conn.connection.dbapi_connection
            if self.engine.dialect.name == "sqlite":
                raw.execute("BEGIN")  # the driver begins none before a SELECT: each read would be a snapshot
        except BaseException:
            conn.close()
            raise
        self._held = conn
        return self

    def __exit__(self, *_: object) -> None:
        conn, self._held = self._held, None
        # A read left unfinished (an error in the middle of a rebuild) closes its cursor now, on this
        # connection, not later on whatever transaction the connection serves by then.
        while self._open:
            self._open.pop().close()
        if conn is not None:
            conn.close()  # rolls the read-only transaction back

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection]:
        if self._held is not None:
            yield self._held
            return
        with self.engine.connect() as conn:
            yield conn

    def count(self) -> int:
        """How many messages the window holds."""
        if not self.sources:
            return 0
        where, params = self._where()
        sql = f"SELECT COUNT(*) FROM {self._quote(MESSAGE.name)} WHERE {where}"
        with self._connection() as conn:
            raw: Any = conn.connection.dbapi_connection
            cursor = raw.cursor()
            try:
                cursor.execute(sql, tuple(params))
                return int(cursor.fetchone()[0])
            finally:
                cursor.close()

    def in_date_order(self) -> Iterator[tuple[int, MessageEvent]]:
        """(row id, event) of every message, oldest first (equal dates in no given order), streamed."""
        return self._read("", [], order=True)

    def all(self) -> list[MessageEvent]:
        """Every message, held (in no given order)."""
        return [event for _, event in self._read("", [], order=False)]

    def copies(self) -> list[tuple[int, MessageEvent]]:
        """(row id, event) of every message whose Message-ID the window holds more than once (one message
        in several folders, or in several sources)."""
        inside, params = self._where()
        quote = self._quote
        where = (
            f"{quote('message_id')} IN (SELECT {quote('message_id')} FROM {quote(MESSAGE.name)}"
            f" WHERE {inside} AND {quote('message_id')} IS NOT NULL"
            f" GROUP BY {quote('message_id')} HAVING COUNT(*) > 1)"
        )
        return list(self._read(where, params, order=False))

    def by_row(self, rows: Sequence[int]) -> Iterator[tuple[int, MessageEvent]]:
        """(row id, event) of the messages stored in ``rows`` (in no given order): looked up by row id
        alone, as the window's own conditions would make the database scan its date or source index."""
        mark = self._mark
        for start in range(0, len(rows), _ROWS_PER_QUERY):
            chunk = rows[start : start + _ROWS_PER_QUERY]
            where = f"{self._quote('id')} IN ({', '.join(mark for _ in chunk)})"
            yield from self._read(where, list(chunk), order=False, window=False)

    @property
    def _quote(self) -> Callable[[str], str]:
        return self.engine.dialect.identifier_preparer.quote

    @property
    def _mark(self) -> str:
        return "?" if self.engine.dialect.name == "sqlite" else "%s"

    def _where(self) -> tuple[str, list[Any]]:
        """The window's condition and its parameters."""
        quote, mark, dialect = self._quote, self._mark, self.engine.dialect
        where = f"{quote('source')} IN ({', '.join(mark for _ in self.sources)})"
        params: list[Any] = list(self.sources)
        if self.since is not None:
            where += f" AND {quote('date')} >= {mark}"
            to_db = MESSAGE.c.date.type.dialect_impl(dialect).bind_processor(dialect)
            params.append(to_db(self.since) if to_db is not None else self.since)
        return where, params

    def _read(
        self, where: str, params: list[Any], *, order: bool, window: bool = True
    ) -> Iterator[tuple[int, MessageEvent]]:
        """Stream (row id, event) of the rows matching ``where``, inside the window when ``window``."""
        if not self.sources:
            return
        quote = self._quote
        if window:
            inside, window_params = self._where()
            where = f"{inside} AND {where}" if where else inside
            params = [*window_params, *params]
        columns = ", ".join(quote(c) for c in ("id", *EVENT_COLUMNS))
        sql = f"SELECT {columns} FROM {quote(MESSAGE.name)} WHERE {where}"
        if order:
            sql += f" ORDER BY {quote('date')}"
        dialect = self.engine.dialect
        from_db = MESSAGE.c.date.type.dialect_impl(dialect).result_processor(dialect, None)
        with self._connection() as conn:
            raw: Any = conn.connection.dbapi_connection
            # PostgreSQL: a server-side cursor, else the driver holds the whole result before the first row.
            if dialect.name == "postgresql":
                cursor = raw.cursor(name=f"replywatch_window_{next(self._cursors)}")
            else:
                cursor = raw.cursor()
            self._open.append(cursor)
            try:
                cursor.execute(sql, tuple(params))
                shared: dict[Any, Any] = {}  # equal values of many rows held once (dropped with the read)
                while rows := cursor.fetchmany(_FETCH):
                    if len(shared) > _SHARED_LIMIT:
                        shared.clear()
                    for row in rows:
                        yield row[0], message_event(row[1:], shared, from_db)
            finally:
                if cursor in self._open:
                    self._open.remove(cursor)
                    cursor.close()
