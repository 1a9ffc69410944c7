"""The store on SQLite and PostgreSQL: migrations, idempotent ingest, cursors, items, breaches."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, create_engine

from monitor.awaiting import AwaitingItem, Response
from monitor.breaches import BecameBreach, Opened, Resolved
from monitor.events import CallDirection, CallEvent, Channel, MailboxSnapshot, MessageEvent
from monitor.rules.base import Level
from monitor.sources.base import PollResult
from monitor.store.db import Store, Timing
from monitor.store.migrate import current
from monitor.store.models import UTCDateTime

T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


def msg(n: int, **kw: object) -> MessageEvent:
    base = MessageEvent(
        source="inbox",
        folder="inbox",
        external_id=f"INBOX/1/{n}",
        message_id=f"m{n}@customer.example",
        date=T0 + timedelta(minutes=n),
        from_addr=f"c{n}@customer.example",
        to_addrs=("support@example.com",),
        references=("a@x", "b@y"),
        flags=frozenset({"seen"}),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_migrations_reach_head_and_are_idempotent(store: Store) -> None:
    assert current(store.engine) == "0009"
    store.upgrade()
    assert current(store.engine) == "0009"


def test_upgrade_from_0001_keeps_breaches_and_stamps_sources(store: Store) -> None:
    from sqlalchemy import text

    from monitor.store.migrate import downgrade

    store.save_poll("inbox", PollResult(messages=[msg(1)], cursor={"uid": 1}), T0)
    store.apply_transitions(
        [
            Opened("support", "reply_within", "a", Level.BREACH, T0),
            Opened("support", "reply_within", "b", Level.WARNING, T0),
        ]
    )
    downgrade(store.engine, "0001")
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE breach SET level = 'breach', escalated_at = :at WHERE subject = 'b'"), {"at": T0}
        )
    store.upgrade()
    assert {b.subject: b.breached_at for b in store.open_breaches()} == {"a": T0, "b": T0}
    assert store.engine_stamp(["inbox"]) == T0


def test_calls_are_ingested_once_and_refreshed_when_a_leg_joins(store: Store) -> None:
    call = CallEvent(
        source="pbx",
        external_id="1700000000.1",
        started_at=T0,
        direction=CallDirection.INBOUND,
        caller="+442071234567",
        callee="200",
        answered=False,
        line="support",
        wait_seconds=25.0,
    )
    first = store.save_poll("pbx", PollResult(calls=[call], cursor={"offset": 10}), T0)
    again = store.save_poll("pbx", PollResult(calls=[call], cursor={"offset": 10}), T0 + timedelta(minutes=1))
    assert (first.inserted, again.inserted, again.updated) == (1, 0, 0)
    assert store.engine_stamp(["pbx"]) == T0
    joined = replace(call, legs=2, answered=True, answered_by="201", talk_seconds=60.0, rang=("200", "201"))
    later = T0 + timedelta(minutes=2)
    assert store.save_poll("pbx", PollResult(calls=[joined], cursor={"offset": 20}), later).updated == 1
    assert store.calls(["pbx"]) == [joined]
    assert store.calls(["pbx"], since=T0 + timedelta(seconds=1)) == []
    assert store.engine_stamp(["pbx"]) == later


def test_ingest_is_idempotent_and_saves_cursor(store: Store) -> None:
    poll = PollResult(messages=[msg(i) for i in range(1200)], cursor={"uid": 1200})
    first = store.save_poll("inbox", poll, T0)
    assert (first.inserted, first.updated) == (1200, 0)
    again = store.save_poll("inbox", poll, T0 + timedelta(minutes=1))
    assert (again.inserted, again.updated) == (0, 0)
    assert store.load_cursor("inbox") == {"uid": 1200}
    stored = store.messages(["inbox"])
    assert len(stored) == 1200
    one = next(m for m in stored if m.external_id == "INBOX/1/7")
    assert one == msg(7)  # every field round-trips, dates stay UTC-aware
    assert one.date.tzinfo is not None


@pytest.mark.parametrize("count", [3, 2500])  # a few rows, and enough for PostgreSQL's COPY path
def test_bulk_ingest_stores_what_a_row_by_row_write_stores(store: Store, count: int) -> None:
    """The bulk paths (a first sync, new rows beside known ones) store the same values as SQLAlchemy's
    own writes: dates compare and round-trip exactly, in and out of a time window."""
    first = [msg(i) for i in range(count)]
    assert store.save_poll("inbox", PollResult(messages=first), T0).inserted == count
    later = [msg(i) for i in range(count, count + 3)]
    saved = store.save_poll("inbox", PollResult(messages=[*first, *later]), T0 + timedelta(minutes=1))
    assert (saved.inserted, saved.updated) == (3, 0)
    assert sorted(store.messages(["inbox"]), key=lambda m: m.date) == [*first, *later]
    since = T0 + timedelta(minutes=count)  # a whole second: exactly the date of the first later message
    assert [m.external_id for m in store.messages(["inbox"], since)] == [m.external_id for m in later]
    other = replace(msg(0), source="other")
    assert store.save_poll("other", PollResult(messages=[other]), T0).inserted == 1
    assert store.messages(["other"]) == [other]


def test_flag_change_updates_the_row(store: Store) -> None:
    store.save_poll("inbox", PollResult(messages=[msg(1)], cursor={}), T0)
    changed = store.save_poll(
        "inbox", PollResult(messages=[msg(1, flags=frozenset({"seen", "answered"}))]), T0
    )
    assert (changed.inserted, changed.updated) == (0, 1)
    assert store.messages(["inbox"])[0].flags == {"seen", "answered"}
    assert store.engine_stamp(["inbox"]) == T0


def test_engine_stamp_moves_only_when_the_engine_has_something_new(store: Store) -> None:
    later, latest = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    store.save_poll("inbox", PollResult(messages=[msg(1)], cursor={"uid": 1}), T0)
    flagged = msg(1, flags=frozenset({"seen", "flagged"}))
    assert store.save_poll("inbox", PollResult(messages=[flagged], cursor={"uid": 1}), later).updated == 1
    assert store.engine_stamp(["inbox"]) == T0  # a \Seen flag: nothing for the engine
    store.save_poll("inbox", PollResult(messages=[msg(1, folder="archive")], cursor={"uid": 1}), later)
    assert store.engine_stamp(["inbox"]) == later  # moved folder: the engine reads it
    store.save_poll("inbox", PollResult(cursor={"uid": 2}), latest)
    assert store.engine_stamp(["inbox"]) == later  # an empty poll
    store.save_poll("inbox", PollResult(messages=[msg(2)], cursor={"uid": 2}), latest)
    assert store.engine_stamp(["inbox", "other"]) == latest
    assert store.engine_stamp(["other"]) is None


def test_a_poll_that_changed_nothing_moves_only_the_last_poll_time(store: Store) -> None:
    snap = MailboxSnapshot("inbox", "inbox", T0, total=5, unseen=2, unanswered=3, oldest=T0)
    store.save_poll("inbox", PollResult(messages=[msg(1)], snapshots=[snap], cursor={"uid": 1}), T0)
    store.save_poll("other", PollResult(cursor={"uid": 7}), T0)
    later = T0 + timedelta(minutes=3)
    assert store.touch_poll("inbox", later)
    assert store.last_polls() == {"inbox": later, "other": T0}
    assert store.load_cursor("inbox") == {"uid": 1}
    assert store.mailbox_counts() == [snap]
    assert store.engine_stamp(["inbox"]) == T0  # nothing for the engine to read again
    assert not store.touch_poll("never-saved", later)  # no cursor row: the caller saves in full
    assert "never-saved" not in store.last_polls()


def test_failed_save_keeps_the_old_cursor_and_no_events(store: Store) -> None:
    store.save_poll("inbox", PollResult(messages=[msg(1)], cursor={"uid": 1}), T0)
    bad = msg(3, date=datetime(2026, 11, 16, 10, 0))  # naive: refused by the store
    with pytest.raises(Exception, match="naive"):
        store.save_poll("inbox", PollResult(messages=[msg(2), bad], cursor={"uid": 3}), T0)
    assert store.load_cursor("inbox") == {"uid": 1}
    assert [m.external_id for m in store.messages(["inbox"])] == ["INBOX/1/1"]


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 16, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 16, 10, 0, 7, 123457, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=ZoneInfo("Europe/London")),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-11))),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
        None,
    ],
)
def test_bulk_sqlite_timestamps_are_what_sqlalchemy_binds(value: datetime | None) -> None:
    """The one-step timestamp conversion on SQLite gives the very text of SQLAlchemy's two steps."""
    dialect = create_engine("sqlite://").dialect
    column = UTCDateTime()
    assert column.dialect_impl(dialect).bind_processor(dialect) == UTCDateTime.sqlite_text  # what is used
    as_datetime = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert as_datetime is not None
    assert UTCDateTime.sqlite_text(value) == as_datetime(column.process_bind_param(value, dialect))
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime.sqlite_text(datetime(2026, 11, 16, 10, 0))


def test_snapshots_upsert(store: Store) -> None:
    snap = MailboxSnapshot("inbox", "inbox", T0, total=5, unseen=2, unanswered=3, oldest=T0)
    store.save_poll("inbox", PollResult(snapshots=[snap]), T0)
    store.save_poll("inbox", PollResult(snapshots=[replace(snap, total=4)]), T0)
    (row,) = store.mailbox_counts()
    assert (row.total, row.unseen, row.unanswered, row.oldest) == (4, 2, 3, T0)


def item(key: str, minutes: int, responded: int | None = None) -> AwaitingItem:
    return AwaitingItem(
        team="support",
        channel=Channel.EMAIL,
        key=key,
        conversation=key,
        customer=f"{key}@customer.example",
        received_at=T0 + timedelta(minutes=minutes),
        response=None if responded is None else Response(T0 + timedelta(minutes=responded), f"re-{key}"),
    )


def test_replace_awaiting_writes_only_changes(store: Store) -> None:
    assert store.replace_awaiting("support", Channel.EMAIL, [item("a", 0), item("b", 5)], None, T0) == 2
    assert store.replace_awaiting("support", Channel.EMAIL, [item("a", 0), item("b", 5)], None, T0) == 0
    # b answered, c new, a gone.
    assert store.replace_awaiting("support", Channel.EMAIL, [item("b", 5, 30), item("c", 9)], None, T0) == 3
    rows = store.awaiting("support")
    assert [(r.item_key, r.responded_at) for r in rows] == [("b", T0 + timedelta(minutes=30)), ("c", None)]
    assert [r.item_key for r in store.awaiting("support", open_only=True)] == ["c"]
    (summary,) = store.awaiting_summary()
    assert summary == ("support", "email", 1, T0 + timedelta(minutes=9))


def test_replace_awaiting_leaves_items_before_the_window(store: Store) -> None:
    store.replace_awaiting("support", Channel.EMAIL, [item("old", 0), item("new", 60)], None, T0)
    store.replace_awaiting("support", Channel.EMAIL, [item("new", 60)], T0 + timedelta(minutes=30), T0)
    assert {r.item_key for r in store.awaiting("support")} == {"old", "new"}


def test_large_rebuild_and_first_evaluation_written_in_batches(store: Store) -> None:
    """More items than one write batch: every row is written, compared, timed and breached exactly once."""
    count = 12_345
    items = [item(f"k{n}", n % 5_000) for n in range(count)]
    assert store.replace_awaiting("support", Channel.EMAIL, items, None, T0) == count
    assert store.replace_awaiting("support", Channel.EMAIL, items, None, T0) == 0
    # Every third answered, the first 100 gone, 7,000 new: changes counted once each.
    changed = [item(f"k{n}", n % 5_000, n % 5_000 + 1) if n % 3 == 0 else items[n] for n in range(100, count)]
    new = [item(f"n{n}", n % 5_000) for n in range(7_000)]
    answered = len([n for n in range(100, count) if n % 3 == 0])
    assert store.replace_awaiting("support", Channel.EMAIL, changed + new, None, T0) == 100 + answered + 7_000
    rows = store.awaiting("support")
    assert len(rows) == count - 100 + 7_000
    assert sum(r.responded_at is not None for r in rows) == answered
    due = {r.id: T0 + timedelta(minutes=r.id % 97) for r in rows}
    store.set_timings([Timing(row_id, at, None, None) for row_id, at in due.items()])
    assert {r.id: r.due_at for r in store.awaiting("support")} == due
    store.apply_transitions([Opened("support", "reply_within", r.item_key, Level.BREACH, T0) for r in rows])
    assert store.breach_counts() == [("support", "reply_within", len(rows), len(rows))]


@pytest.mark.parametrize("count", [60, 2_500])  # PostgreSQL: arrays, and enough items for COPY
def test_bulk_writes_keep_every_value(store: Store, count: int) -> None:
    """Enough rows for the bulk statements, with every kind of value and None."""
    from monitor.store.db import row_item

    items = [
        replace(
            item(f"k{n:02d}", n, n + 30 if n % 2 else None),
            owner="Alice" if n % 3 else None,
            acknowledged_at=T0 + timedelta(minutes=n, seconds=1.5) if n % 4 == 0 else None,
            removed_at=T0 + timedelta(hours=1) if n % 5 == 0 and n % 2 == 0 else None,
        )
        for n in range(count)
    ]
    assert store.replace_awaiting("support", Channel.EMAIL, items, None, T0) == count
    rows = store.awaiting("support")
    assert [row_item(r) for r in rows] == items
    timings = [
        Timing(r.id, T0 + timedelta(hours=8, microseconds=n), n * 0.25 if n % 2 else None, None)
        for n, r in enumerate(rows)
    ]
    store.set_timings(timings)
    assert [
        Timing(r.id, r.due_at, r.business_seconds, r.wall_seconds) for r in store.awaiting("support")
    ] == (timings)
    opened = [
        Opened(
            "support",
            "reply_within",
            f"k{n:02d}",
            Level.BREACH if n % 2 else Level.WARNING,
            T0 + timedelta(minutes=n),
            due_at=T0 if n % 3 else None,
            resolved_at=T0 + timedelta(hours=n) if n % 4 == 0 else None,
            unreadable=("a", "b") if n % 5 else (),
        )
        for n in range(40)
    ]
    store.apply_transitions(opened)
    still_open = {(b.subject, b.level, b.opened_at) for b in store.open_breaches("support")}
    assert still_open == {(o.subject, o.level, o.at) for o in opened if o.resolved_at is None}
    store.apply_transitions(
        [
            Resolved(b.id, b.team, b.rule, b.subject, b.level, T0 + timedelta(days=1))
            for b in store.open_breaches()
        ]
    )
    assert store.open_breaches() == []


def test_breach_transitions_and_counts(store: Store) -> None:
    store.apply_transitions(
        [
            Opened("support", "reply_within", "a", Level.WARNING, T0),
            Opened("support", "reply_within", "b", Level.BREACH, T0),
        ]
    )
    assert store.breach_counts() == [("support", "reply_within", 1, 1)]
    rows = {r.subject: r for r in store.open_breaches("support")}
    assert (rows["a"].breached_at, rows["b"].breached_at) == (None, T0)
    store.apply_transitions(
        [BecameBreach(rows["a"].id, "support", "reply_within", "a", T0 + timedelta(hours=1))]
    )
    assert store.breach_counts() == [("support", "reply_within", 2, 2)]
    assert {r.subject: r.breached_at for r in store.open_breaches()}["a"] == T0 + timedelta(hours=1)
    store.apply_transitions(
        [Resolved(rows["b"].id, "support", "reply_within", "b", Level.BREACH, T0 + timedelta(hours=2))]
    )
    assert store.breach_counts() == [("support", "reply_within", 1, 2)]
    history = store.breach_history("support", [("reply_within", s) for s in "abc"] + [("holding_reply", "a")])
    assert history == {("reply_within", "a"), ("reply_within", "b")}


def test_transitions_and_what_they_cause_are_one_transaction(store: Store) -> None:
    def fail(_conn: object, _transitions: object) -> None:
        raise RuntimeError("the outbox write failed")

    with pytest.raises(RuntimeError):
        store.apply_transitions([Opened("support", "reply_within", "a", Level.BREACH, T0)], then=fail)
    assert store.open_breaches() == []


def test_many_resolutions_are_written_at_once(store: Store) -> None:
    store.apply_transitions(
        [Opened("support", "inbox_nearly_empty", f"s{i}", Level.BREACH, T0) for i in range(600)]
    )
    open_rows = store.open_breaches("support")
    store.apply_transitions(
        [Resolved(r.id, r.team, r.rule, r.subject, r.level, T0 + timedelta(hours=1)) for r in open_rows]
    )
    assert store.open_breaches() == []
    assert store.breach_counts() == [("support", "inbox_nearly_empty", 0, 600)]


def test_response_histogram_is_cumulative(store: Store) -> None:
    store.replace_awaiting(
        "support", Channel.EMAIL, [item("a", 0, 10), item("b", 0, 100), item("c", 0)], None, T0
    )
    ids = {row.item_key: row.id for row in store.awaiting("support")}
    store.set_timings(
        [
            Timing(ids["a"], None, 600.0, 700.0),
            Timing(ids["b"], None, 6000.0, 9000.0),
            Timing(ids["c"], T0, None, None),
        ]
    )
    ((team, channel, responder, buckets, count, total),) = store.response_histogram([900, 3600, 7200])
    assert (team, channel, responder) == ("support", "email", None)
    assert buckets == [1, 1, 2]
    assert (count, total) == (2, 6600.0)
    ((*_, buckets, count, total),) = store.response_histogram([900, 3600, 7200], "wall")
    assert (buckets, count, total) == ([1, 1, 1], 2, 9700.0)
    assert store.awaiting("support", open_only=True)[0].due_at == T0


def test_only_items_whose_verdict_can_change_are_evaluated_again(store: Store) -> None:
    items = [item("answered", 0, 10), item("open", 5), item("late", 0, 500)]
    store.replace_awaiting("support", Channel.EMAIL, items, None, T0)
    store.apply_transitions([Opened("support", "reply_within", "late", Level.BREACH, T0)])
    window = T0 - timedelta(days=60)
    assert {r.item_key for r in store.awaiting_to_evaluate("support", window, None)} == {
        "answered",
        "open",
        "late",
    }
    later = T0 + timedelta(minutes=1)
    assert {r.item_key for r in store.awaiting_to_evaluate("support", window, later)} == {"open", "late"}
    # Changed at a later rebuild: evaluated again by the next run after that.
    store.replace_awaiting(
        "support", Channel.EMAIL, [item("answered", 0, 20), *items[1:]], None, later + timedelta(minutes=1)
    )
    assert {r.item_key for r in store.awaiting_to_evaluate("support", window, later)} == {
        "answered",
        "open",
        "late",
    }


def test_8bit_header_text_is_stored(store: Store) -> None:
    from monitor.mail.event import parse_event

    raw = (
        b"Message-ID: <u@x>\nFrom: J\xfcrgen <j@x.example>\nSubject: Gr\xc3\xbc\xc3\x9fe\n"
        b"Date: Mon, 16 Nov 2026 10:00 +0000\n\n"
    )
    event = parse_event(raw, source="inbox", folder="inbox", external_id="INBOX/1/1")
    store.save_poll("inbox", PollResult(messages=[event]), T0)
    (stored,) = store.messages(["inbox"])
    assert (stored.subject, stored.from_name) == ("Grüße", "Jürgen")


def test_items_round_trip_through_the_one_mapper(store: Store) -> None:
    from monitor.store.db import row_item

    answered = replace(item("a", 0, 30), owner="Alice", acknowledged_at=T0 + timedelta(minutes=5))
    waiting = item("b", 10)
    store.replace_awaiting("support", Channel.EMAIL, [answered, waiting], None, T0)
    # addresses are the engine's working set, not stored
    assert [row_item(r) for r in store.awaiting("support")] == [
        replace(answered, addresses=frozenset()),
        waiting,
    ]


def test_phone_items_keep_their_attempts_and_hours_flag(store: Store) -> None:
    from monitor.store.db import row_item

    missed = replace(
        item("1700000000.1", 0),
        channel=Channel.PHONE,
        customer="+441632960123",
        attempts=3,
        outside_hours=True,
    )
    store.replace_awaiting("support", Channel.PHONE, [missed], None, T0)
    assert [row_item(r) for r in store.awaiting("support")] == [replace(missed, addresses=frozenset())]
    assert store.replace_awaiting("support", Channel.PHONE, [replace(missed, attempts=4)], None, T0) == 1


def test_upgrade_from_0002_gives_stored_items_one_attempt_and_calls_no_rung_extensions(store: Store) -> None:
    from monitor.store.db import row_item
    from monitor.store.migrate import downgrade

    call = CallEvent("pbx", "1700000000.1", T0, CallDirection.INBOUND, "+441632960123", "800", False)
    store.save_poll("pbx", PollResult(calls=[call], cursor={"offset": 1}), T0)
    waiting = replace(item("1700000000.1", 0), channel=Channel.PHONE)
    store.replace_awaiting("support", Channel.PHONE, [waiting], None, T0)
    downgrade(store.engine, "0002")
    store.upgrade()
    assert store.calls(["pbx"]) == [call]
    assert [row_item(r) for r in store.awaiting("support")] == [replace(waiting, addresses=frozenset())]


def test_postgres_bulk_ingest_without_the_temp_privilege(postgres_url: str) -> None:
    """A database user who may not create temporary tables (no COPY staging table) still ingests in bulk."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tests.servers.postgres import reset_postgres

    reset_postgres(postgres_url)
    url = make_url(postgres_url)
    owner = Store.open(postgres_url)
    owner.upgrade()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    role = "replywatch_no_temp"
    with admin.connect() as conn:
        conn.execute(text(f"DROP OWNED BY {role}") if _role_exists(conn, role) else text("SELECT 1"))
        conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f'REVOKE TEMPORARY ON DATABASE "{url.database}" FROM PUBLIC'))
        conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
        conn.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"))
        conn.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    limited = Store.open(url.set(username=role).render_as_string(hide_password=False))
    try:
        poll = PollResult(messages=[msg(i) for i in range(2500)], cursor={"uid": 2500})
        assert limited.save_poll("inbox", poll, T0).inserted == 2500  # COPY straight into the table
        assert len(limited.messages(["inbox"])) == 2500
        assert limited.messages(["inbox"], T0 + timedelta(minutes=7))[0] is not None
        # A repeated id sends a first sync through the temporary table, which this user may not create.
        repeated = [replace(msg(i), source="other") for i in (*range(2500), 7)]
        assert limited.save_poll("other", PollResult(messages=repeated), T0).inserted == 2501
        assert len(limited.messages(["other"])) == 2500
        assert not limited._copy_allowed
    finally:
        limited.close()
        owner.close()
        with admin.connect() as conn:
            conn.execute(text(f'GRANT TEMPORARY ON DATABASE "{url.database}" TO PUBLIC'))
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def _role_exists(conn: object, role: str) -> bool:
    from sqlalchemy import text

    return bool(conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first())  # type: ignore[attr-defined]


def test_an_idle_sqlite_connection_lets_go_of_its_page_cache(tmp_path: Path) -> None:
    """A connection back in the pool keeps no page cache (up to 2 MB each, and a daemon's pool holds
    several): SQLite's own count of the memory it uses falls back once the read is done."""
    import _sqlite3
    import ctypes

    library = ctypes.CDLL(_sqlite3.__file__)  # the SQLite the sqlite3 module runs on (linked or built in)
    assert hasattr(library, "sqlite3_memory_used"), (
        f"{_sqlite3.__file__}'s SQLite does not export sqlite3_memory_used: its memory cannot be read here"
    )
    used = library.sqlite3_memory_used
    used.restype = ctypes.c_int64
    store = Store.open(f"sqlite:///{tmp_path / 'rw.db'}")
    try:
        store.upgrade()
        store.save_poll("inbox", PollResult(messages=[msg(i) for i in range(6000)], cursor={}), T0)
        before = used()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*), max(length(subject)) FROM message").one()[0] == 6000
            conn.exec_driver_sql("SELECT * FROM message").all()  # every page through this connection
            reading = used()
        after = used()
    finally:
        store.close()
    assert reading - after > 1_000_000  # the cache the read filled was let go on check-in
    assert after - before < 200_000
