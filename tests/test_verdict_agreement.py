"""``replay``, ``status`` and the daemon's metrics judge the same Dovecot mailbox the same way.

All three go through the one verdict core; this test runs each on its own path (replay reads the mailbox
afresh, the daemon polls it into the store, status reads the store) and compares per-item status, ``due_at``,
business seconds and the counts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main
from monitor.config import validate
from monitor.daemon import Daemon
from monitor.status import render_status, waiting_verdicts
from monitor.verdict import ItemStatus
from tests.mailfactory import make_message
from tests.servers.dovecot import DovecotServer, Mailbox
from tests.test_daemon import Clock, scrape, value

NOW = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)  # Thursday 15:00 in London (GMT)
WED = datetime(2026, 11, 18, tzinfo=UTC)


def _customer(mailbox: Mailbox, name: str, at: datetime, subject: str = "Question") -> None:
    raw = make_message(msgid=f"{name}@cust.example", sender=f"{name}@cust.example", to="support@example.com",
                       date=at, subject=subject)  # fmt: skip
    mailbox.append("INBOX", raw, [], at)


def _answer(mailbox: Mailbox, name: str, at: datetime, body: str = "Here is the answer.") -> None:
    raw = make_message(
        msgid=f"re-{name}@example.com",
        sender="alice@example.com",
        to=f"{name}@cust.example",
        date=at,
        subject="Re: Question",
        in_reply_to=f"{name}@cust.example",
        body=body,
    )
    mailbox.append("Sent", raw, ["\\Seen"], at)


def fill(mailbox: Mailbox) -> None:
    mailbox.create_folder("Sent")
    _customer(mailbox, "ontime", WED + timedelta(hours=9))
    _answer(mailbox, "ontime", WED + timedelta(hours=10, minutes=30))
    _customer(mailbox, "late", WED + timedelta(hours=8))  # before opening: counts from 09:00
    _answer(mailbox, "late", WED + timedelta(days=1, hours=11))
    _customer(mailbox, "breached", WED + timedelta(hours=11))  # due Thursday 11:00
    _customer(mailbox, "warned", WED + timedelta(hours=15))  # due Thursday 15:00+, warning from 13:00+
    _customer(mailbox, "fresh", NOW - timedelta(hours=1))
    _customer(mailbox, "acked", NOW - timedelta(hours=5))
    _answer(mailbox, "acked", NOW - timedelta(hours=4, minutes=50), body="We have received your message.")


@pytest.fixture
def config(dovecot: DovecotServer, imap_mailbox: Mailbox, tmp_path: Path) -> Iterator[dict[str, Any]]:
    fill(imap_mailbox)
    yield {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        "calendars": {"london": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:00"}}},
        "sources": {"support-inbox": imap_mailbox.imap_settings("implicit") | {"text_preview": True}},
        "teams": {
            "support": {
                "calendar": "london",
                "addresses": ["support@example.com"],
                "internal_domains": ["example.com"],
                "members": [{"name": "Alice", "email": ["alice@example.com"]}],
                "sources": ["support-inbox"],
                "rules": [
                    {"kind": "reply_within", "within": "8h", "warn_before": "2h"},
                    {"kind": "holding_reply", "within": "2h"},
                ],
            }
        },
    }
    if not dovecot.running:
        dovecot.start()


def test_replay_status_and_metrics_agree(
    config: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The daemon: poll, evaluate, scrape.
    daemon = Daemon(validate(config), clock=Clock(NOW), listen=("127.0.0.1", 0))
    try:
        daemon.store.upgrade()
        daemon.http.start()
        daemon._apply_sources()
        assert daemon.poll_source("support-inbox")
        daemon.evaluate()
        metrics = scrape(daemon)
        stored = {row.item_key: row for row in daemon.store.awaiting("support")}
        breaches = daemon.store.open_breaches("support")
        # status, on the daemon's store
        waiting = {
            v.item.key: v for v in waiting_verdicts(daemon.loaded.config, daemon.store, "support", NOW)
        }
        text = io.StringIO()
        overdue = render_status(daemon.loaded.config, daemon.store, NOW, text)
    finally:
        daemon.stop()

    # replay, reading the mailbox afresh
    config_file = tmp_path / "replywatch.yaml"
    config_file.write_text(yaml.safe_dump(config))
    out = tmp_path / "replay.csv"
    assert main(["replay", "-c", str(config_file), "--now", NOW.isoformat(), "--out", str(out)]) == 1
    replayed = {row["id"]: row for row in csv.DictReader(out.open())}

    expected = {
        "ontime@cust.example": "answered_on_time",
        "late@cust.example": "answered_late",
        "breached@cust.example": "breached",
        "warned@cust.example": "waiting",
        "fresh@cust.example": "waiting",
        "acked@cust.example": "waiting",
    }
    assert {key: row["status"] for key, row in replayed.items()} == expected
    assert set(stored) == set(replayed)

    # Per item: the store's due_at and business seconds (daemon) agree with replay and status.
    for key, row in replayed.items():
        item = stored[key]
        if row["responded_at"]:
            assert item.business_seconds == pytest.approx(float(row["business_seconds"]), abs=1), key
            assert item.wall_seconds == pytest.approx(float(row["wall_seconds"]), abs=1), key
            assert key not in waiting
        else:
            verdict = waiting[key]
            assert verdict.status.value == row["status"], key
            assert verdict.due_at == item.due_at, key
            assert verdict.business_seconds == pytest.approx(float(row["business_seconds"]), abs=1), key
    assert waiting["warned@cust.example"].warning
    assert not waiting["fresh@cust.example"].warning
    assert waiting["breached@cust.example"].due_at == datetime(2026, 11, 19, 11, 0, tzinfo=UTC)
    assert stored["late@cust.example"].business_seconds == 10 * 3600  # Wed 09-17 + Thu 09-11

    # Counts: the metrics, the status table and replay.
    statuses = [row["status"] for row in replayed.values()]
    open_count = statuses.count("waiting") + statuses.count("breached")
    assert value(metrics, "replywatch_awaiting", team="support", channel="email") == open_count
    assert overdue == statuses.count("breached") == 1
    assert text.getvalue().count("OVERDUE") == 1 and f"team support: {open_count} waiting" in text.getvalue()
    by_rule = {(b.rule, b.level.value) for b in breaches}
    assert value(metrics, "replywatch_breaches_open", team="support", rule="reply_within") == 1
    assert ("reply_within", "breach") in by_rule and ("reply_within", "warning") in by_rule
    late_or_breached = statuses.count("breached") + statuses.count("answered_late")
    assert (
        value(metrics, "replywatch_breaches_total", team="support", rule="reply_within") == late_or_breached
    )
    answered = [row for row in replayed.values() if row["responded_at"]]
    assert value(metrics, "replywatch_response_seconds_count", team="support", channel="email") == len(
        answered
    )
    assert value(
        metrics, "replywatch_response_seconds_sum", team="support", channel="email"
    ) == pytest.approx(sum(float(row["business_seconds"]) for row in answered), abs=2)
    # holding_reply: breached's and warned's customers were never told (fresh is inside 2 business hours,
    # acked was acknowledged); the late answer came after its 2 hours too.
    holding = {b.subject for b in breaches if b.rule == "holding_reply"}
    assert holding == {"breached@cust.example", "warned@cust.example"}
    assert value(metrics, "replywatch_breaches_total", team="support", rule="holding_reply") == 3
    assert "holding_reply breaches 3" in capsys.readouterr().out
    assert [v.status for v in waiting.values()].count(ItemStatus.BREACHED) == 1
