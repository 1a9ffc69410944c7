"""The daemon against a real Dovecot and a real SMTP server: warning and breach mail reach the right people,
once each, through an SMTP outage, a restart and a night."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.config import validate
from monitor.daemon import Daemon
from monitor.store.outbox import Outbox
from tests.mailfactory import make_message
from tests.servers.dovecot import Mailbox
from tests.servers.smtp import PASSWORD, USER, SmtpServer

MONDAY = datetime(2026, 11, 16, tzinfo=UTC)  # London is on GMT: its clock equals UTC


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return MONDAY.replace(day=day, hour=hour, minute=minute)


@dataclass
class Clock:
    """The daemon's injected clock, moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def alert_config(root: Path, mailbox: Mailbox, smtp: SmtpServer) -> dict[str, Any]:
    return {
        "store": {"url": f"sqlite:///{root / 'replywatch.db'}"},
        "calendars": {"london": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:00"}}},
        "sources": {"support-inbox": mailbox.imap_settings("implicit") | {"poll_every": "1m"}},
        "notifiers": {
            "mail": {
                "kind": "smtp",
                "host": "127.0.0.1",
                "port": smtp.port,
                "tls": "starttls",
                "ca_file": str(smtp.ca_file),
                "username": USER,
                "password_env": "E2E_SMTP_PASSWORD",
                "from": "replywatch <replywatch@example.com>",
            }
        },
        "teams": {
            "support": {
                "calendar": "london",
                "addresses": ["support@example.com"],
                "internal_domains": ["example.com"],
                "members": [
                    {"name": "Alice Smith", "email": ["alice@example.com"], "role": "lead"},
                    {"name": "Bob", "email": ["bob@example.com"]},
                ],
                "sources": ["support-inbox"],
                "rules": [{"kind": "reply_within", "within": "8h", "warn_before": "2h"}],
                "notify": {
                    "via": "mail",
                    "escalation": [
                        {"at": "warning", "to": ["owner"]},
                        {"at": "breach", "to": ["owner", "team"]},
                        {"at": "breach+4h", "to": ["lead"]},
                    ],
                },
            }
        },
    }


@pytest.fixture
def setup(
    imap_mailbox: Mailbox, smtp_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, Any], Clock]]:
    monkeypatch.setenv("E2E_SMTP_PASSWORD", PASSWORD)
    imap_mailbox.create_folder("Sent")
    imap_mailbox.append(
        "INBOX",
        make_message(
            msgid="order-17@cust.example",
            sender="Carol <carol@cust.example>",
            to="bob@example.com",
            date=at(16, 9),
            subject="Where is order 17?",
        ),
    )
    yield alert_config(tmp_path, imap_mailbox, smtp_server), Clock(at(16, 14))


def step(daemon: Daemon, clock: Clock, now: datetime) -> None:
    """What the scheduler does at ``now``: poll, evaluate, dispatch."""
    clock.now = now
    daemon.poll_source("support-inbox")
    daemon.evaluate()
    daemon.dispatch()


def mails(smtp: SmtpServer) -> list[tuple[str, str]]:
    return [(r.rcpt_tos[0], str(r.message["Subject"])) for r in smtp.received]


WARNING = "[replywatch] support: 1 customer close to the deadline"
BREACH = "[replywatch] support: 1 customer past the deadline"


def test_warning_then_breach_through_outage_restart_and_night(
    setup: tuple[dict[str, Any], Clock], smtp_server: SmtpServer
) -> None:
    config, clock = setup
    daemon = Daemon(validate(config), clock=clock, listen=("127.0.0.1", 0))
    daemon.store.upgrade()
    daemon._apply_sources()  # the test drives the jobs itself
    try:
        step(daemon, clock, at(16, 14))  # due at 17:00, warned from 15:00: nothing yet
        assert mails(smtp_server) == []

        step(daemon, clock, at(16, 15, 30))
        assert mails(smtp_server) == [("bob@example.com", WARNING)]
        warning = smtp_server.received[0].message
        assert "Where is order 17?" in warning.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "carol@cust.example" in warning.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert warning["Auto-Submitted"] == "auto-generated"

        step(daemon, clock, at(16, 17, 30))  # breached at 17:00, when the team's hours end: wait for morning
        assert len(smtp_server.received) == 1
        assert Outbox(daemon.store).pending_counts() == {"mail": 3}

        smtp_server.stop()
        step(daemon, clock, at(17, 9))  # hours begin, the relay is down
        assert len(smtp_server.received) == 1
        assert daemon.dispatcher.snapshot()[("mail", "failed")] == 2
        smtp_server.start()
        step(daemon, clock, at(17, 9, 0))  # still inside the retry wait: nothing
        assert len(smtp_server.received) == 1
        step(daemon, clock, at(17, 9, 1))
        assert sorted(mails(smtp_server)[1:]) == [("alice@example.com", BREACH), ("bob@example.com", BREACH)]
        assert daemon.dispatcher.snapshot()[("mail", "sent")] == 3
    finally:
        daemon.stop()

    second = Daemon(validate(config), clock=clock, listen=("127.0.0.1", 0))
    second.store.upgrade()
    second._apply_sources()
    try:
        step(second, clock, at(17, 9, 5))
        assert len(smtp_server.received) == 3  # nothing twice after the restart
        step(second, clock, at(17, 13))  # four business hours after the breach: the lead
        assert mails(smtp_server)[3:] == [("alice@example.com", BREACH)]
        step(second, clock, at(17, 16))
        assert len(smtp_server.received) == 4
        assert Outbox(second.store).pending_counts() == {}
        ids = {str(r.message["Message-ID"]) for r in smtp_server.received}
        assert len(ids) == 4
    finally:
        second.stop()
