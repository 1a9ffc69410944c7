"""The daemon on call logs: an Asterisk Master.csv that grows and rotates while it runs, and a FreePBX CDR
table in a real MariaDB. Missed calls show as ``replywatch_awaiting{channel="phone"}``, breach, and resolve
when the call-back appears; internal calls, short abandons, an IVR that reached nobody and a ring group's
fan-out are read right (the demo call log holds each of them)."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from monitor.config import validate
from monitor.daemon import Daemon
from monitor.demo_calls import LINE, write_demo_call_log
from tests.test_cdr_sql_source import FREEPBX, create
from tests.test_daemon import Clock, scrape, value

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday


def _freepbx_row(uid: str, at: datetime, src: str, dst: str, disposition: str, billsec: int = 0,
                 dstchannel: str = "", did: str = "") -> dict[str, Any]:  # fmt: skip
    return {
        "calldate": at.replace(tzinfo=None), "clid": f'"" <{src}>', "src": src, "dst": dst,
        "dcontext": "from-trunk" if did else "from-internal", "channel": "SIP/trunk-1",
        "dstchannel": dstchannel, "lastapp": "Dial", "lastdata": "", "duration": billsec + 25,
        "billsec": billsec, "disposition": disposition, "uniqueid": uid, "linkedid": uid, "did": did,
    }  # fmt: skip


def _master_row(src: str, dst: str, at: datetime, dstchannel: str, talk: int = 0, uid: str = "1") -> str:
    """One Master.csv line (newcdrcolumns): a call from ``src`` to ``dst``, answered after 8 s of ringing
    (``talk`` seconds), or not after 30 s."""
    ring = 8 if talk else 30
    answer = at + timedelta(seconds=ring) if talk else None
    end = at + timedelta(seconds=ring + talk)
    linked = f"{int(at.timestamp())}.{uid}"
    row = [
        "", src, dst, LINE if src.startswith("+") else "from-internal", f'"" <{src}>', "SIP/trunk-1",
        dstchannel, "Dial", "", f"{at:%Y-%m-%d %H:%M:%S}", f"{answer:%Y-%m-%d %H:%M:%S}" if answer else "",
        f"{end:%Y-%m-%d %H:%M:%S}", str(ring + talk), str(talk), "ANSWERED" if talk else "NO ANSWER",
        "DOCUMENTATION", linked, "", "", linked, uid,
    ]  # fmt: skip
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(row)
    return out.getvalue()


def _insert(url: str, rows: list[dict[str, Any]]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for row in rows:
            names = ", ".join(row)
            conn.execute(text(f"INSERT INTO cdr ({names}) VALUES ({', '.join(':' + k for k in row)})"), row)
    engine.dispose()


def _append(path: Path, text_: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text_)


def test_daemon_on_a_growing_rotating_master_csv_and_a_mariadb_cdr_table(
    tmp_path: Path, mariadb_url: str
) -> None:
    master = tmp_path / "cdr-csv" / "Master.csv"
    demo = write_demo_call_log(master, now=NOW)
    create(mariadb_url, FREEPBX)
    sales_line = "+442079460999"
    _insert(mariadb_url, [
        _freepbx_row("1763460000.1", NOW - timedelta(hours=30), "07700900201", "600", "NO ANSWER",
                     dstchannel="SIP/203-01", did=sales_line),
    ])  # fmt: skip
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        "sources": {
            "pbx": {"kind": "asterisk_csv", "path": str(master), "timezone": "UTC", "default_region": "GB"},
            "freepbx": {"kind": "cdr_sql", "url": mariadb_url, "timezone": "UTC", "default_region": "GB"},
        },
        "teams": {
            "support": {
                "members": [
                    {"name": "Alice Smith", "phone": ["201"]},
                    {"name": "Bob Jones", "phone": ["202"]},
                ],
                "sources": ["pbx"],
                "lines": [LINE],
                "rules": [{"kind": "callback_within", "within": "24h", "business_hours": False}],
            },
            "sales": {
                "members": [{"name": "Carol", "phone": ["203"]}],
                "sources": ["freepbx"],
                "lines": [sales_line],
                "rules": [{"kind": "callback_within", "within": "24h", "business_hours": False}],
            },
        },
    }
    clock = Clock(NOW)
    daemon = Daemon(validate(config), clock=clock, listen=("127.0.0.1", 0))
    try:
        daemon.store.upgrade()
        daemon.http.start()
        daemon._apply_sources()
        assert daemon.poll_source("pbx") and daemon.poll_source("freepbx")
        daemon.evaluate()
        m = scrape(daemon)
        assert value(m, "replywatch_awaiting", team="support", channel="phone") == demo.waiting == 2
        assert value(m, "replywatch_breaches_open", team="support", rule="callback_within") == 1
        # answered late and still unanswered: two breaches ever
        assert value(m, "replywatch_breaches_total", team="support", rule="callback_within") == 2
        assert value(m, "replywatch_awaiting", team="sales", channel="phone") == 1
        assert value(m, "replywatch_breaches_open", team="sales", rule="callback_within") == 1
        assert ("replywatch_awaiting", (("channel", "email"), ("team", "support"))) not in m
        rows = {r.item_key: r for r in daemon.store.awaiting("support")}
        assert {key: ("open" if rows[key].responded_at is None else "closed") for key in demo.statuses} == {
            key: "open" if status in ("waiting", "breached") else "closed"
            for key, status in demo.statuses.items()
        }
        assert {k: rows[k].attempts for k in demo.attempts} == demo.attempts

        # Alice calls back the caller still waiting; the row is written in two parts, as a PBX flushing late.
        waiting = next(k for k, s in demo.statuses.items() if s == "waiting")
        number = rows[waiting].customer
        call_back = _master_row(
            "201", number, NOW + timedelta(minutes=5), "SIP/trunk-out", talk=172, uid="900"
        )
        _append(master, call_back[:60])
        clock.now = NOW + timedelta(minutes=10)
        daemon.poll_source("pbx")
        daemon.evaluate()
        assert (
            value(scrape(daemon), "replywatch_awaiting", team="support", channel="phone") == 2
        )  # half a row
        _append(master, call_back[60:])
        daemon.poll_source("pbx")
        daemon.evaluate()
        m = scrape(daemon)
        assert value(m, "replywatch_awaiting", team="support", channel="phone") == 1
        answered = {r.item_key: r for r in daemon.store.awaiting("support")}[waiting]
        assert answered.responder == "Alice Smith"

        # logrotate moves Master.csv away; Asterisk starts a new one with a new missed call and the call-back
        # of the caller waiting for more than a week (the breach resolves).
        os.rename(master, master.with_suffix(".csv.1"))
        breached = next(k for k, s in demo.statuses.items() if s == "breached")
        late_number = rows[breached].customer
        at = NOW + timedelta(minutes=20)
        master.write_text(
            _master_row("+447700900555", LINE, at, "SIP/201-0010", uid="950")
            + _master_row("202", late_number, at + timedelta(minutes=1), "SIP/trunk-out", talk=115, uid="951")
        )
        # ... and the sales caller is called back from the PBX behind the MariaDB table.
        _insert(mariadb_url, [
            _freepbx_row("1763470000.2", NOW + timedelta(minutes=25), "203", "07700900201", "ANSWERED",
                         billsec=60, dstchannel="SIP/trunk-2"),
        ])  # fmt: skip
        clock.now = NOW + timedelta(minutes=30)
        daemon.poll_source("pbx")
        daemon.poll_source("freepbx")
        daemon.evaluate()
        m = scrape(daemon)
        assert value(m, "replywatch_awaiting", team="support", channel="phone") == 1  # the new missed call
        assert value(m, "replywatch_breaches_open", team="support", rule="callback_within") == 0
        assert value(m, "replywatch_awaiting", team="sales", channel="phone") == 0
        assert value(m, "replywatch_breaches_open", team="sales", rule="callback_within") == 0
        calls = daemon.store.calls(["pbx"])
        assert len(calls) == demo.calls + 3  # every call once: the half-written row was not read twice
    finally:
        daemon.stop()
