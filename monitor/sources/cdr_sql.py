"""cdr_sql source: reads Asterisk's ``cdr`` table (or FreePBX's ``asteriskcdrdb.cdr``) incrementally.

The table may be in MariaDB/MySQL (``mysql+pymysql://``, the ``mysql`` extra) or PostgreSQL
(``postgresql+psycopg://``, the ``postgresql`` extra). Its time column is ``start`` (Asterisk's
``cdr_adaptive_odbc``/alembic schema) or ``calldate`` (``cdr_mysql``, FreePBX), naive PBX-local times.

Asterisk writes a row when a call *ends*, stamped with when it *began*: rows arrive late, by as long
as the call lasted. Each poll therefore reads again every row that began within ``overlap`` before the
newest one seen (lowered by an hour across an autumn DST fold, when local times repeat) and skips the
rows it already read, known by a digest of their values kept in the cursor. When a new row joins a
call whose other legs were read before, the call's legs are read again by their linked id and the
call is emitted whole; the store's upsert refreshes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

from pydantic import Field, model_validator
from sqlalchemy import Column, MetaData, Table, create_engine, select
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError

from monitor.durations import Duration
from monitor.events import CallEvent
from monitor.plugins import SecretError, SecretRef
from monitor.sources.base import (
    AuthSourceError,
    Cursor,
    PermanentSourceError,
    PollResult,
    SourcePlugin,
    TransientSourceError,
    source_log,
)
from monitor.sources.call_log import CallLogConfig
from monitor.telephony.calls import calls_from_legs
from monitor.telephony.layouts import CdrLeg, CdrRowError, leg_from_fields

CURSOR_VERSION = 1
"""Bumped when the cursor changes shape; an older one is dropped and the table read again."""
FOLD_MARGIN = timedelta(hours=2)
"""Digests of rows kept this long beyond ``overlap``: the autumn DST change re-reads up to an hour more."""
IN_BATCH = 500
"""Linked ids asked for in one ``IN (...)`` query."""
STREAM_ROWS = 5000
"""Rows fetched from the server at a time."""

_AUTH_HINTS = ("access denied", "password authentication failed", "authentication failed")


class CdrSqlConfig(CallLogConfig):
    """A CDR table in MariaDB/MySQL or PostgreSQL, read with a read-only user."""

    kind: Literal["cdr_sql"] = "cdr_sql"
    """Selects this source plugin."""
    url: str
    """SQLAlchemy URL without the password: ``mysql+pymysql://replywatch@pbx.example.com/asteriskcdrdb``
    or ``postgresql+psycopg://replywatch@db.example.com/asterisk``."""
    password: SecretRef | None = None
    """The database password: ``password_env`` (an environment variable) or ``password_file``."""
    table: str = "cdr"
    """The CDR table (``cdr`` in Asterisk's and FreePBX's schemas)."""
    overlap: Duration = Field(default=timedelta(hours=2))
    """Rows written up to this long after their call began are still read: at least your longest calls."""

    @model_validator(mode="after")
    def _url(self) -> Self:
        try:
            url = make_url(self.url)
        except ArgumentError as err:
            raise ValueError(
                f"invalid database URL {self.url!r}: use e.g. 'mysql+pymysql://replywatch@pbx/asteriskcdrdb'"
            ) from err
        if url.password is not None:
            raise ValueError("url must not hold the password: give it as password_env or password_file")
        if url.get_backend_name() not in ("mysql", "mariadb", "postgresql"):
            raise ValueError(
                f"database {url.get_backend_name()!r} is not supported: use mysql, mariadb or postgresql"
            )
        return self


def _utc_now() -> datetime:
    return datetime.now(UTC)


def row_key(values: Sequence[Any]) -> str:
    """A digest of a row's values: tells a row read again in the overlap from a new one."""
    return hashlib.sha1(repr(tuple(values)).encode(), usedforsecurity=False).hexdigest()[:20]


def _text(value: Any) -> str:
    """A column value as the CSV layouts' text (times in ISO 8601, NULL as empty)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


class CdrSqlSource:
    """Polls one CDR table (module docstring: the overlap, the digests, late legs)."""

    def __init__(
        self,
        name: str,
        config: CdrSqlConfig,
        *,
        clock: Callable[[], datetime] | None = None,
        engine_factory: Callable[[URL], Engine] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._clock = clock or _utc_now
        self._engine_factory = engine_factory or _create_engine
        self._engine: Engine | None = None
        self._table: Table | None = None
        self.log = source_log(__name__, name)

    # -- connection ----------------------------------------------------------------------------------

    def _url(self) -> URL:
        url = make_url(self.config.url)
        if self.config.password is None:
            return url
        try:
            return url.set(password=self.config.password.reveal().get_secret_value())
        except SecretError as err:
            raise AuthSourceError(str(err)) from err

    def _connect(self) -> tuple[Engine, Table]:
        """The engine and the reflected table (both kept for the next polls)."""
        if self._engine is None:
            try:
                self._engine = self._engine_factory(self._url())
            except (NoSuchModuleError, ModuleNotFoundError) as err:
                raise PermanentSourceError(
                    f"no database driver for {self.config.url.split(':', 1)[0]!r}: install replywatch[mysql] "
                    "or replywatch[postgresql]"
                ) from err
        if self._table is None:
            try:
                table = Table(self.config.table, MetaData(), autoload_with=self._engine)
            except NoSuchTableError as err:
                raise PermanentSourceError(f"table {self.config.table!r} not found") from err
            except SQLAlchemyError as err:
                raise _source_error(err, self.config.password) from err
            missing = [c for c in ("src", "dst", "disposition", "uniqueid") if c not in table.c]
            if missing or not ("calldate" in table.c or "start" in table.c):
                raise PermanentSourceError(
                    f"table {self.config.table!r} is not a CDR table: it lacks "
                    f"{missing[0] if missing else 'start or calldate'!r}"
                )
            self._table = table
        return self._engine, self._table

    def check(self) -> list[str]:
        """Connect, find the table and read one row."""
        try:
            engine, table = self._connect()
            with engine.connect() as conn:
                conn.execute(select(table).limit(1)).fetchall()
        except PermanentSourceError as err:
            return [f"table: {err}"]
        except AuthSourceError as err:
            return [f"password: {err}"]
        except (TransientSourceError, SQLAlchemyError) as err:
            return [f"url: cannot read {self.config.table!r}: {_reason(err)}"]
        return []

    def close(self) -> None:
        """Close the connection pool."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._table = None

    # -- polling -------------------------------------------------------------------------------------

    def poll(self, cursor: Cursor | None) -> PollResult:
        """The calls of the rows written since ``cursor`` (with every leg of each)."""
        newest, seen, resync = self._load(cursor)
        engine, table = self._connect()
        time_col = table.c["calldate"] if "calldate" in table.c else table.c["start"]
        group_col = table.c["linkedid"] if "linkedid" in table.c else table.c["uniqueid"]
        query = select(table).order_by(time_col, table.c["uniqueid"])
        if newest is not None:
            query = query.where(time_col >= self._since(newest))
        new_legs: list[CdrLeg] = []
        try:
            with engine.connect() as conn:
                rows = conn.execution_options(stream_results=True, yield_per=STREAM_ROWS).execute(query)
                for position, row in enumerate(rows, start=1):
                    key = row_key(row)
                    if key in seen:
                        continue
                    leg = self._leg(row._mapping, position, report=True)
                    seen[key] = leg.start.timestamp() if leg is not None else self._clock().timestamp()
                    if leg is not None:
                        new_legs.append(leg)
                calls = self._calls(conn, table, group_col, new_legs, whole=newest is None)
        except SQLAlchemyError as err:
            raise _source_error(err, self.config.password) from err
        if new_legs:
            newest = max([leg.start for leg in new_legs] + ([newest] if newest is not None else []))
        return PollResult(calls=calls, cursor=self._cursor(newest, seen), resync=resync)

    def _since(self, newest: datetime) -> datetime:
        """The naive PBX-local time from which rows are read again."""
        zone = self.config.zone
        lower = newest - self.config.overlap
        since = lower.astimezone(zone).replace(tzinfo=None)
        went_back = (lower.astimezone(zone).utcoffset() or timedelta()) - (
            self._clock().astimezone(zone).utcoffset() or timedelta()
        )
        return since - max(went_back, timedelta())

    def _leg(self, row: Mapping[Any, Any], position: int, *, report: bool) -> CdrLeg | None:
        fields = {str(name): _text(value) for name, value in row.items()}
        try:
            return leg_from_fields(fields, "iso", self.config.zone, position)
        except CdrRowError as err:
            if report:  # a row is new once: reported once
                self.log.warning(
                    "table %s row uniqueid=%r: %s; row skipped",
                    self.config.table,
                    fields.get("uniqueid", ""),
                    err.reason,
                )
            return None

    def _calls(
        self, conn: Any, table: Table, group_col: Column[Any], new_legs: Sequence[CdrLeg], *, whole: bool
    ) -> list[CallEvent]:
        """The calls the new legs belong to; unless the whole table was just read, with their other legs
        read again by linked id (a leg that joins a call read in an earlier poll)."""
        options = self.config.call_options
        if whole or not new_legs:
            return calls_from_legs(self.name, new_legs, options)
        keys = sorted({leg.linkedid for leg in new_legs})
        legs: list[CdrLeg] = []
        for batch in _batches(keys, IN_BATCH):
            rows = conn.execute(select(table).where(group_col.in_(batch)))
            for position, row in enumerate(rows, start=1):
                leg = self._leg(row._mapping, position, report=False)
                if leg is not None:
                    legs.append(leg)
        return calls_from_legs(self.name, legs, options)

    # -- the cursor ----------------------------------------------------------------------------------

    def _load(self, cursor: Cursor | None) -> tuple[datetime | None, dict[str, float], bool]:
        if not cursor:
            return None, {}, False
        try:
            if cursor.get("version") != CURSOR_VERSION or cursor.get("table") != self.config.table:
                raise ValueError("another version or table")
            newest = datetime.fromisoformat(cursor["newest"]) if cursor["newest"] else None
            seen = {str(k): float(v) for k, v in cursor["seen"].items()}
        except (AttributeError, KeyError, TypeError, ValueError):
            self.log.warning(
                "cursor is not readable; reading table %s again from the start", self.config.table
            )
            return None, {}, True
        return newest, seen, False

    def _cursor(self, newest: datetime | None, seen: dict[str, float]) -> Cursor:
        if newest is not None:
            horizon = (newest - self.config.overlap - FOLD_MARGIN).timestamp()
            seen = {key: at for key, at in seen.items() if at >= horizon}
        return {
            "version": CURSOR_VERSION,
            "table": self.config.table,
            "newest": newest.isoformat() if newest is not None else None,
            "seen": seen,
        }


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for begin in range(0, len(items), size):
        yield items[begin : begin + size]


def _create_engine(url: URL) -> Engine:
    timeout = {"connect_timeout": 10}
    return create_engine(url, pool_pre_ping=True, connect_args=timeout)


def _reason(err: BaseException) -> str:
    """The database's own message without the SQL statement (which SQLAlchemy appends)."""
    orig = getattr(err, "orig", None)
    return str(orig if orig is not None else err).splitlines()[0]


def _source_error(err: SQLAlchemyError, password: SecretRef | None) -> Exception:
    reason = _reason(err)
    if any(hint in reason.lower() for hint in _AUTH_HINTS):
        origin = (
            f" with the password from {password.origin}" if password is not None else " without a password"
        )
        return AuthSourceError(f"the database refused the login{origin}: {reason}")
    return TransientSourceError(f"database error: {reason}")


PLUGIN = SourcePlugin(CdrSqlConfig, CdrSqlSource)
"""The ``cdr_sql`` source plugin (entry point ``cdr_sql`` of ``replywatch.sources``)."""
