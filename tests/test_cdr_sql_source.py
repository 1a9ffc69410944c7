"""cdr_sql on real servers: Asterisk's ``cdr`` schema and FreePBX's ``asteriskcdrdb.cdr``, in MariaDB
(127.0.0.1:3306, a database per test) and PostgreSQL (the session's database), filled by the test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.sources.base import AuthSourceError, PermanentSourceError
from monitor.sources.cdr_sql import CdrSqlConfig, CdrSqlSource
from tests.servers.postgres import reset_postgres

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

ASTERISK = """CREATE TABLE cdr (
    accountcode VARCHAR(80), src VARCHAR(80), dst VARCHAR(80), dcontext VARCHAR(80), clid VARCHAR(80),
    channel VARCHAR(80), dstchannel VARCHAR(80), lastapp VARCHAR(80), lastdata VARCHAR(80),
    start TIMESTAMP NULL, answer TIMESTAMP NULL, {end} TIMESTAMP NULL, duration INTEGER, billsec INTEGER,
    disposition VARCHAR(45), amaflags VARCHAR(45), userfield VARCHAR(256), uniqueid VARCHAR(150),
    linkedid VARCHAR(150), peeraccount VARCHAR(80), sequence INTEGER)"""
"""Asterisk's own schema (contrib/ast-db-manage, cdr table), ``end`` quoted where it is reserved."""

FREEPBX = """CREATE TABLE cdr (
    calldate TIMESTAMP NOT NULL, clid VARCHAR(80) NOT NULL DEFAULT '', src VARCHAR(80) NOT NULL DEFAULT '',
    dst VARCHAR(80) NOT NULL DEFAULT '', dcontext VARCHAR(80) NOT NULL DEFAULT '',
    channel VARCHAR(80) NOT NULL DEFAULT '', dstchannel VARCHAR(80) NOT NULL DEFAULT '',
    lastapp VARCHAR(80) NOT NULL DEFAULT '', lastdata VARCHAR(80) NOT NULL DEFAULT '',
    duration INTEGER NOT NULL DEFAULT 0, billsec INTEGER NOT NULL DEFAULT 0,
    disposition VARCHAR(45) NOT NULL DEFAULT '', amaflags INTEGER NOT NULL DEFAULT 0,
    accountcode VARCHAR(20) NOT NULL DEFAULT '', uniqueid VARCHAR(32) NOT NULL DEFAULT '',
    userfield VARCHAR(255) NOT NULL DEFAULT '', did VARCHAR(50) NOT NULL DEFAULT '',
    recordingfile VARCHAR(255) NOT NULL DEFAULT '', cnum VARCHAR(80) NOT NULL DEFAULT '',
    cnam VARCHAR(80) NOT NULL DEFAULT '', outbound_cnum VARCHAR(80) NOT NULL DEFAULT '',
    outbound_cnam VARCHAR(80) NOT NULL DEFAULT '', dst_cnam VARCHAR(80) NOT NULL DEFAULT '',
    linkedid VARCHAR(32) NOT NULL DEFAULT '', peeraccount VARCHAR(80) NOT NULL DEFAULT '',
    sequence INTEGER NOT NULL DEFAULT 0)"""
"""FreePBX's ``asteriskcdrdb.cdr`` (its installer's schema; TIMESTAMP for DATETIME so PostgreSQL reads it)."""


@pytest.fixture(params=["mariadb", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database on a real server, by URL."""
    if request.param == "mariadb":
        yield request.getfixturevalue("mariadb_url")
    else:
        url = request.getfixturevalue("postgres_url")
        reset_postgres(url)
        yield url


def create(url: str, schema: str) -> None:
    end = '"end"' if url.startswith("postgresql") else "`end`"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(schema.format(end=end)))
    engine.dispose()


def insert(url: str, rows: list[dict[str, Any]]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for values in rows:
            names = list(values)
            quoted = [
                '"end"' if n == "end" and url.startswith("postgresql") else f"`{n}`" if n == "end" else n
                for n in names
            ]
            conn.execute(
                text(f"INSERT INTO cdr ({', '.join(quoted)}) VALUES ({', '.join(':' + n for n in names)})"),
                values,
            )
    engine.dispose()


def asterisk_row(
    uid: str,
    src: str,
    dst: str,
    start: str,
    disposition: str,
    *,
    linkedid: str = "",
    billsec: int = 0,
    dstchannel: str = "",
    seconds: int = 20,
) -> dict[str, Any]:
    begin = datetime.fromisoformat(start)
    return {
        "src": src,
        "dst": dst,
        "dcontext": "from-pstn",
        "clid": f'"" <{src}>',
        "channel": "SIP/trunk-1",
        "dstchannel": dstchannel,
        "lastapp": "Dial",
        "lastdata": "",
        "start": begin,
        "answer": begin.replace(second=begin.second + seconds - billsec) if billsec else None,
        "end": begin.replace(second=begin.second + seconds),
        "duration": seconds,
        "billsec": billsec,
        "disposition": disposition,
        "amaflags": "DOCUMENTATION",
        "uniqueid": uid,
        "linkedid": linkedid or uid,
        "sequence": 1,
    }


def source(url: str, clock: datetime = NOW, **extra: Any) -> CdrSqlSource:
    config = CdrSqlConfig.model_validate({"kind": "cdr_sql", "url": url, "default_region": "GB", **extra})
    return CdrSqlSource("pbx-db", config, clock=lambda: clock)


def test_asterisk_table_read_incrementally_with_late_rows_and_late_legs(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    create(database, ASTERISK)
    insert(
        database,
        [
            asterisk_row("100.1", "01632960123", "200", "2026-03-02 09:00:00", "NO ANSWER"),
            asterisk_row(
                "100.3",
                "01632960124",
                "600",
                "2026-03-02 09:05:00",
                "NO ANSWER",
                linkedid="100.2",
                dstchannel="SIP/201-1",
            ),
        ],
    )
    pbx = source(database)
    first = pbx.poll(None)
    assert [(c.external_id, c.legs, c.answered) for c in first.calls] == [
        ("100.1", 1, False),
        ("100.2", 1, False),
    ]
    assert first.calls[0].caller == "+441632960123"
    again = pbx.poll(first.cursor)
    assert again.calls == []
    late = asterisk_row("100.0", "01632960125", "200", "2026-03-02 08:59:00", "NO ANSWER")  # began earlier
    joiner = asterisk_row(
        "100.4",
        "01632960124",
        "600",
        "2026-03-02 09:05:00",
        "ANSWERED",
        linkedid="100.2",
        billsec=9,
        dstchannel="SIP/202-2",
    )
    bad = asterisk_row("100.5", "01632960126", "200", "2026-03-02 09:06:00", "")
    insert(database, [late, joiner, bad])
    with caplog.at_level(logging.WARNING):
        second = pbx.poll(again.cursor)
        third = pbx.poll(second.cursor)
    assert [(c.external_id, c.legs, c.answered, c.answered_by) for c in second.calls] == [
        ("100.0", 1, False, None),
        ("100.2", 2, True, "202"),
    ]
    assert third.calls == []
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped == ["table cdr row uniqueid='100.5': no disposition; row skipped"]
    pbx.close()


def test_freepbx_table_with_calldate_in_local_time_across_the_autumn_fold(database: str) -> None:
    """London, 25 Oct 2026: 01:00-02:00 is shown twice; the unique id (UTC epoch) tells them apart, and
    a row of the second 01:10 is read although the cursor's newest call is at the first 01:30."""
    create(database, FREEPBX)
    first = int(datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp())  # 01:30 BST
    insert(
        database,
        [
            {
                "calldate": datetime(2026, 10, 25, 1, 30),
                "src": "01632960123",
                "dst": "200",
                "disposition": "NO ANSWER",
                "duration": 20,
                "uniqueid": f"{first}.1",
                "linkedid": f"{first}.1",
                "did": "01632960500",
            }
        ],
    )
    after_fold = datetime(2026, 10, 25, 1, 40, tzinfo=UTC)  # 01:40 GMT
    pbx = source(database, after_fold, timezone="Europe/London", overlap="10m")
    one = pbx.poll(None)
    assert [(c.started_at, c.line) for c in one.calls] == [
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "01632960500")
    ]
    second = int(datetime(2026, 10, 25, 1, 10, tzinfo=UTC).timestamp())  # 01:10 GMT
    insert(
        database,
        [
            {
                "calldate": datetime(2026, 10, 25, 1, 10),
                "src": "01632960124",
                "dst": "200",
                "disposition": "NO ANSWER",
                "duration": 20,
                "uniqueid": f"{second}.2",
                "linkedid": f"{second}.2",
                "did": "01632960500",
            }
        ],
    )
    two = pbx.poll(one.cursor)
    assert [c.started_at for c in two.calls] == [datetime(2026, 10, 25, 1, 10, tzinfo=UTC)]
    assert pbx.poll(two.cursor).calls == []
    pbx.close()


def test_a_read_only_user_with_its_password_from_the_environment(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grants docs/sources/phone.md gives: SELECT on the cdr table, nothing else."""
    create(mariadb_url, ASTERISK)
    insert(mariadb_url, [asterisk_row("1.1", "01632960123", "200", "2026-03-02 09:00:00", "NO ANSWER")])
    db = make_url(mariadb_url).database
    user = f"rw_{db[-12:]}"
    admin = create_engine(mariadb_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY 's3cret-pw'"))
        conn.execute(text(f"GRANT SELECT ON `{db}`.cdr TO '{user}'@'%'"))
    try:
        url = str(make_url(mariadb_url).set(username=user))
        monkeypatch.setenv("CDR_DB_PASSWORD", "s3cret-pw")
        pbx = source(url, password_env="CDR_DB_PASSWORD")
        assert pbx.check() == []
        assert [c.external_id for c in pbx.poll(None).calls] == ["1.1"]
        pbx.close()
        monkeypatch.setenv("CDR_DB_PASSWORD", "wrong")
        with pytest.raises(
            AuthSourceError, match=r"refused the login with the password from password_env .CDR_DB_PASSWORD."
        ):
            source(url, password_env="CDR_DB_PASSWORD").poll(None)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP USER '{user}'@'%'"))
        admin.dispose()


def test_a_missing_table_is_a_config_error(database: str) -> None:
    pbx = source(database, table="cdr_missing")
    assert pbx.check() == ["table: table 'cdr_missing' not found"]
    with pytest.raises(PermanentSourceError, match="not found"):
        pbx.poll(None)


def test_the_url_never_holds_the_password() -> None:
    with pytest.raises(ValueError, match="password_env"):
        CdrSqlConfig.model_validate({"kind": "cdr_sql", "url": "mysql+pymysql://u:pw@pbx/asteriskcdrdb"})
    with pytest.raises(ValueError, match="not supported"):
        CdrSqlConfig.model_validate({"kind": "cdr_sql", "url": "sqlite:///cdr.db"})
