"""Issue 7 done: every hostile message beside ordinary mail in Dovecot, on a PostgreSQL store."""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import validate
from monitor.daemon import Daemon
from tests.servers.dovecot import Mailbox
from tests.servers.postgres import reset_postgres

ARRIVED = datetime.now(UTC) - timedelta(hours=2)


def _mail(n: int, head: bytes) -> bytes:
    base = (
        f"To: support@example.com\r\nSubject: help {n}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n".encode()
    )
    sender = f"From: Customer {n} <customer{n}@cust.example>\r\n".encode()
    msgid = f"Message-ID: <m{n}@cust.example>\r\n".encode()
    have = head.lower()
    out = head
    for name, line in ((b"from:", sender), (b"message-id:", msgid)):
        if name not in have:
            out += line
    return out + base + b"\r\nHello, I need help.\r\n"


HOSTILE = [
    b"To: support@example.com," + b" " * 5000 + b"x\r\n",  # cubic backtracking before
    b"Reply-To: " + b"a " * 20000 + b"\r\n",
    b"Message-ID: <" + b"m" * 613 + b"@cust.example>\r\n",  # varchar(500) on PostgreSQL
    b"References: <" + b"r" * 200_000 + b"@cust.example>\r\n",
    b"Subject: =?utf-8?b?A?=\r\n",  # HeaderParseError
    b"From: =?\xe9\xe9?q?Ann?= <customer5@cust.example>\r\n",  # raw-8-bit charset name
    b"From: " + b"(" * 500 + b"customer6@cust.example\r\n",  # RecursionError
    b"Date: Mon, 01 Jan 0001 10:00:00 +0000\r\n",  # read as 2001 before
]
ORDINARY = 3


def test_every_customer_waits_health_answers_and_odd_messages_are_said_once(
    imap_mailbox: Mailbox, postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reset_postgres(postgres_url)
    mails = [_mail(n, head) for n, head in enumerate(HOSTILE)]
    mails += [_mail(len(HOSTILE) + n, b"") for n in range(ORDINARY)]
    imap_mailbox.create_folder("Sent")
    imap_mailbox.write_messages("INBOX", [(raw, [], ARRIVED) for raw in mails])
    config = {
        "store": {"url": postgres_url},
        "sources": {"support-inbox": imap_mailbox.imap_settings("implicit") | {"poll_every": "1h"}},
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
    caplog.set_level(logging.INFO)
    health: list[float] = []
    try:
        poll = threading.Thread(target=daemon.poll_source, args=["support-inbox"])
        poll.start()
        while poll.is_alive() or not health:
            start = time.monotonic()
            urllib.request.urlopen(f"http://127.0.0.1:{daemon.http.port}/-/healthy", timeout=2).read()
            health.append(time.monotonic() - start)
            time.sleep(0.05)
        poll.join()
        assert daemon.supervisor.snapshot()["poll:support-inbox"].up
        daemon.evaluate()
        waiting = {row.customer for row in daemon.store.awaiting("support", open_only=True)}
    finally:
        daemon.stop()
    assert waiting == {f"customer{n}@cust.example" for n in range(len(mails))}
    assert max(health) < 2
    odd = [r.getMessage() for r in caplog.records if r.getMessage().endswith("message kept")]
    # Each said once; the long To, the 613-character id and the 8-bit charset name (read as UTF-8) are fine.
    assert len(odd) == len(set(odd)) == 5
    info = [r.getMessage() for r in caplog.records if r.levelno <= logging.INFO]
    assert not [line for line in info if "cust.example" in line]
