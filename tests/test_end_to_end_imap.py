"""The daemon against a real Dovecot: right metrics, flags untouched, restarts survived, nothing twice."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import validate
from monitor.daemon import Daemon
from tests.mailfactory import make_message
from tests.servers.dovecot import DovecotServer, Mailbox

NOW = datetime.now(UTC).replace(microsecond=0)


def scrape(daemon: Daemon) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{daemon.http.port}/metrics", timeout=5).read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def fill(mailbox: Mailbox) -> None:
    mailbox.create_folder("Sent")
    inbox = [
        # Three days without an answer: breached (24h, always open).
        (
            make_message(
                msgid="late@cust.example",
                sender="Carol <carol@cust.example>",
                to="support@example.com",
                date=NOW - timedelta(days=3),
            ),
            ["\\Seen"],
        ),
        # Answered after an hour from Sent.
        (
            make_message(
                msgid="answered@cust.example",
                sender="dave@cust.example",
                to="support@example.com",
                date=NOW - timedelta(days=2),
            ),
            ["\\Seen", "\\Answered"],
        ),
        # Arrived an hour ago, unread: waiting.
        (
            make_message(
                msgid="fresh@cust.example",
                sender="erin@cust.example",
                to="support@example.com",
                date=NOW - timedelta(hours=1),
            ),
            [],
        ),
        (
            make_message(
                msgid="ooo@cust.example",
                sender="frank@cust.example",
                to="support@example.com",
                date=NOW - timedelta(hours=5),
                subject="Out of Office: re: your ticket",
                headers={"Auto-Submitted": "auto-replied"},
            ),
            [],
        ),
        (
            make_message(
                msgid="news@shop.example",
                sender="news@shop.example",
                to="support@example.com",
                date=NOW - timedelta(hours=4),
                subject="Black Friday deals",
                headers={"List-Unsubscribe": "<https://shop.example/u>", "Precedence": "bulk"},
            ),
            ["\\Flagged"],
        ),
    ]
    for raw, flags in inbox:
        mailbox.append("INBOX", raw, flags)
    reply = make_message(
        msgid="r1@example.com",
        sender="alice@example.com",
        to="dave@cust.example",
        in_reply_to="answered@cust.example",
        date=NOW - timedelta(days=2) + timedelta(hours=1),
    )
    mailbox.append("Sent", reply, ["\\Seen"])


@pytest.fixture
def setup(
    dovecot: DovecotServer, imap_mailbox: Mailbox, tmp_path: Path
) -> Iterator[tuple[Daemon, Mailbox, dict[str, Any]]]:
    fill(imap_mailbox)
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        "sources": {"support-inbox": imap_mailbox.imap_settings("implicit") | {"poll_every": "1m"}},
        "teams": {
            "support": {
                "addresses": ["support@example.com"],
                "internal_domains": ["example.com"],
                "members": [{"name": "Alice", "email": ["alice@example.com"]}],
                "sources": ["support-inbox"],
                "rules": [{"kind": "reply_within", "within": "24h"}],
            }
        },
    }
    daemon = Daemon(validate(config), listen=("127.0.0.1", 0))
    daemon.store.upgrade()
    daemon.http.start()
    daemon._apply_sources()
    yield daemon, imap_mailbox, config
    daemon.stop()
    if not dovecot.running:
        dovecot.start()


def test_daemon_against_dovecot(
    setup: tuple[Daemon, Mailbox, dict[str, Any]], dovecot: DovecotServer
) -> None:
    daemon, mailbox, config = setup
    before = {folder: mailbox.flags(folder) for folder in ("INBOX", "Sent")}

    assert daemon.poll_source("support-inbox")
    daemon.evaluate()
    m = scrape(daemon)
    assert metric(m, "replywatch_awaiting", team="support", channel="email") == 2
    assert metric(m, "replywatch_breaches_open", team="support", rule="reply_within") == 1
    assert metric(m, "replywatch_source_up", source="support-inbox") == 1
    assert (
        metric(
            m,
            "replywatch_mailbox_messages",
            team="support",
            mailbox="support-inbox",
            folder="inbox",
            state="unseen",
        )
        == 3
    )
    assert metric(m, "replywatch_response_seconds_count", team="support", channel="email") == 1
    stored = len(daemon.store.messages(["support-inbox"]))
    assert stored == 6

    # The monitor never changes a mailbox: every flag is exactly as it was.
    assert {folder: mailbox.flags(folder) for folder in ("INBOX", "Sent")} == before

    # Dovecot goes away: the source is down, the rest keeps serving; then it comes back.
    dovecot.stop()
    assert not daemon.poll_source("support-inbox")
    assert metric(scrape(daemon), "replywatch_source_up", source="support-inbox") == 0
    dovecot.start()
    daemon.supervisor.retry_now("poll:support-inbox")  # do not wait for the backoff in a test
    mailbox.append(
        "INBOX",
        make_message(
            msgid="new@cust.example",
            sender="gina@cust.example",
            to="support@example.com",
            date=NOW - timedelta(minutes=5),
        ),
    )
    assert daemon.poll_source("support-inbox")
    daemon.evaluate()
    m = scrape(daemon)
    assert metric(m, "replywatch_source_up", source="support-inbox") == 1
    assert metric(m, "replywatch_awaiting", team="support", channel="email") == 3
    assert len(daemon.store.messages(["support-inbox"])) == stored + 1  # nothing twice

    # Our own restart: the next daemon resumes from the saved cursor without re-reading anything.
    daemon.stop()
    second = Daemon(validate(config), listen=("127.0.0.1", 0))
    second._apply_sources()
    try:
        assert not second.poll_source("support-inbox")
        assert len(second.store.messages(["support-inbox"])) == stored + 1
    finally:
        second.stop()
    assert {folder: mailbox.flags(folder) for folder in ("INBOX",)}["INBOX"].keys() >= before["INBOX"].keys()
    assert all(mailbox.flags("INBOX")[uid] == flags for uid, flags in before["INBOX"].items())
