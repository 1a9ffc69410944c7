"""The stored messages of a window as the engine reads them: every one, in date order, streamed; the copies
of messages held more than once; and chosen rows, a slice at a time.

A plain driver read: SQLAlchemy's row objects and per-row processing cost six times the read itself, and a
rebuild reads every message of the window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

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


_EVENT_COLUMNS = (
    "source", "folder", "external_id", "message_id", "date", "from_addr", "from_name", "sender_addr",
    "reply_to", "to_addrs", "cc_addrs", "subject", "in_reply_to", "references", "thread_id", "automated",
    "bulk_precedence", "flags", "holding_marker", "preview", "removed_at",
)  # fmt: skip
_EVENT_TIMES = ("date", "removed_at")


def _event(row: Sequence[Any], convert: Callable[[Any], Any] | None, shared: dict[Any, Any]) -> MessageEvent:
    """The event of a plain ``message`` row of :data:`_EVENT_COLUMNS` (``convert``: the driver's value of
    a timestamp column to a datetime, where the driver does not do it itself; ``shared``: the values of the
    rows read so far, see :func:`message_event`)."""
    values = dict(zip(_EVENT_COLUMNS, row, strict=True))
    if convert is not None:
        for name in _EVENT_TIMES:
            if values[name] is not None:
                values[name] = convert(values[name])
    return message_event(values, shared)


_SHARED_TEXT = (
    "source", "folder", "message_id", "from_addr", "from_name", "sender_addr", "in_reply_to", "thread_id",
    "automated",
)  # fmt: skip
"""Text columns whose equal values many rows of one read hold (a source's name, a customer's address, the
Message-ID a reply names): one string for them all."""


def message_event(values: Mapping[str, Any], shared: dict[Any, Any] | None = None) -> MessageEvent:
    """The event of a ``message`` row's values by column name: the one mapping from stored row to event.

    ``shared`` (one dict for all the rows of a read) makes equal values of many rows one object: a read of
    every message of a window holds each address, folder name and address list once, not once a row.
    """
    if shared is None:
        shared = {}
    text = {name: _shared(shared, values[name]) for name in _SHARED_TEXT}
    return MessageEvent(
        source=text["source"],
        folder=text["folder"],
        external_id=values["external_id"],
        message_id=text["message_id"],
        date=values["date"],
        from_addr=text["from_addr"],
        from_name=text["from_name"],
        sender_addr=text["sender_addr"],
        reply_to=_shared_split(shared, values["reply_to"]),
        to_addrs=_shared_split(shared, values["to_addrs"]),
        cc_addrs=_shared_split(shared, values["cc_addrs"]),
        subject=values["subject"],
        in_reply_to=text["in_reply_to"],
        references=_shared_split(shared, values["references"]),
        thread_id=text["thread_id"],
        automated=text["automated"],
        bulk_precedence=bool(values["bulk_precedence"]),
        flags=_shared_flags(shared, values["flags"]),
        holding_marker=bool(values["holding_marker"]),
        preview=values["preview"],
        removed_at=values["removed_at"],
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
    """The messages of ``sources`` dated at or after ``since`` (every date when None)."""

    def __init__(self, engine: Engine, sources: Sequence[str], since: Any = None) -> None:
        self.engine = engine
        self.sources = list(sources)
        self.since = since

    def count(self) -> int:
        """How many messages the window holds."""
        if not self.sources:
            return 0
        where, params = self._where()
        with self.engine.connect() as conn:
            sql = f"SELECT COUNT(*) FROM {self._quote(MESSAGE.name)} WHERE {where}"
            return int(conn.exec_driver_sql(sql, tuple(params)).scalar_one())

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
        columns = ", ".join(quote(c) for c in ("id", *_EVENT_COLUMNS))
        sql = f"SELECT {columns} FROM {quote(MESSAGE.name)} WHERE {where}"
        if order:
            sql += f" ORDER BY {quote('date')}"
        dialect = self.engine.dialect
        from_db = MESSAGE.c.date.type.dialect_impl(dialect).result_processor(dialect, None)
        with self.engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            # PostgreSQL: a server-side cursor, else the driver holds the whole result before the first row.
            cursor = raw.cursor(name="replywatch_window") if dialect.name == "postgresql" else raw.cursor()
            try:
                cursor.execute(sql, tuple(params))
                shared: dict[Any, Any] = {}  # equal values of many rows held once (dropped with the read)
                while rows := cursor.fetchmany(_FETCH):
                    if len(shared) > _SHARED_LIMIT:
                        shared.clear()
                    for row in rows:
                        yield row[0], _event(row[1:], from_db, shared)
            finally:
                cursor.close()
