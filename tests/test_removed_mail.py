"""Mail deleted or moved away, against a real Dovecot: the item closes as ``removed`` within one poll.

A colleague's mail client deletes (STORE \\Deleted + EXPUNGE) or moves messages from a separate
connection while replywatch watches read-only: the waiting customer leaves ``replywatch_awaiting`` and
``replywatch_breaches_open`` at the next poll, ``replywatch_removed_total`` counts it, ``status`` says so
and ``replay --all`` shows it as ``removed``. A message moved to a watched archive folder is not removed.
"""

from __future__ import annotations

import csv
import io
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.cli import main
from monitor.config import validate
from monitor.daemon import Daemon
from monitor.status import render_status
from tests.mailfactory import make_message
from tests.servers.dovecot import DovecotServer, Mailbox

pytestmark = pytest.mark.server

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


def customer(mailbox: Mailbox, msgid: str, sender: str, ago: timedelta) -> None:
    mailbox.append(
        "INBOX", make_message(msgid=msgid, sender=sender, to="support@example.com", date=NOW - ago)
    )


def uid_of(client: Any, msgid: str) -> int:
    found = client.search(["HEADER", "Message-ID", f"<{msgid}>"])
    assert len(found) == 1, f"{msgid}: {found}"
    return int(found[0])


def expunge(mailbox: Mailbox, folder: str, msgid: str) -> None:
    """Delete a message as a mail client does: SELECT, STORE +FLAGS \\Deleted, EXPUNGE."""
    with mailbox.client() as client:
        client.select_folder(folder)
        client.add_flags([uid_of(client, msgid)], [b"\\Deleted"])
        client.expunge()


def move(mailbox: Mailbox, folder: str, msgid: str, to: str) -> None:
    """Move a message as a mail client does (RFC 6851 MOVE)."""
    with mailbox.client() as client:
        client.select_folder(folder)
        client.move([uid_of(client, msgid)], to)


@pytest.fixture
def setup(
    dovecot: DovecotServer, imap_mailbox: Mailbox, tmp_path: Path
) -> Iterator[tuple[Daemon, Mailbox, Path]]:
    for folder in ("Sent", "Archive", "Trash"):
        imap_mailbox.create_folder(folder)
    customer(imap_mailbox, "late@cust.example", "Carol <carol@cust.example>", timedelta(days=3))
    customer(imap_mailbox, "fresh@cust.example", "erin@cust.example", timedelta(hours=1))
    customer(imap_mailbox, "filed@cust.example", "frank@cust.example", timedelta(hours=2))
    customer(imap_mailbox, "binned@cust.example", "gina@cust.example", timedelta(minutes=30))
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        "sources": {
            "support-inbox": imap_mailbox.imap_settings("implicit")
            | {"folders": {"sent": "Sent", "archive": ["Archive"]}}
        },
        "teams": {
            "support": {
                "addresses": ["support@example.com"],
                "internal_domains": ["example.com"],
                "sources": ["support-inbox"],
                "rules": [{"kind": "reply_within", "within": "24h"}],
            }
        },
    }
    config_file = tmp_path / "replywatch.yaml"
    config_file.write_text(yaml.safe_dump(config))
    daemon = Daemon(validate(config), listen=("127.0.0.1", 0))
    daemon.store.upgrade()
    daemon.http.start()
    daemon._apply_sources()
    yield daemon, imap_mailbox, config_file
    daemon.stop()


def poll(daemon: Daemon, changed: bool = True) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    assert daemon.poll_source("support-inbox") is changed
    daemon.evaluate()
    return scrape(daemon)


def counts(m: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> tuple[float, float, float]:
    return (
        metric(m, "replywatch_awaiting", team="support", channel="email"),
        metric(m, "replywatch_breaches_open", team="support", rule="reply_within"),
        metric(m, "replywatch_removed_total", team="support", channel="email"),
    )


def test_deleted_and_moved_mail_closes_as_removed_within_one_poll(
    setup: tuple[Daemon, Mailbox, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon, mailbox, config_file = setup
    assert counts(poll(daemon)) == (4, 1, 0)  # late@ is three days old: breached
    before_removals = datetime.now(UTC)

    # A colleague deletes the breached customer's message: off awaiting and breaches_open at once.
    expunge(mailbox, "INBOX", "late@cust.example")
    assert counts(poll(daemon)) == (3, 0, 1)
    (breach,) = [b for b in daemon.store.awaiting("support") if b.item_key == "late@cust.example"]
    assert breach.removed_at is not None and breach.responded_at is None
    text = io.StringIO()
    render_status(daemon.loaded.config, daemon.store, datetime.now(UTC), text)
    assert "team support: 3 waiting, 1 removed" in text.getvalue()
    assert "late@cust.example" not in text.getvalue()

    # Handled mail filed in the watched archive folder is not removed: it still waits.
    move(mailbox, "INBOX", "filed@cust.example", "Archive")
    assert counts(poll(daemon)) == (3, 0, 1)

    # Moved to a folder nobody watches: removed.
    move(mailbox, "INBOX", "binned@cust.example", "Trash")
    assert counts(poll(daemon)) == (2, 0, 2)

    # A poll with nothing new changes nothing.
    assert counts(poll(daemon, changed=False)) == (2, 0, 2)
    open_keys = {row.item_key for row in daemon.store.awaiting("support", open_only=True)}
    assert open_keys == {"fresh@cust.example", "filed@cust.example"}

    # replay --all reads the mailbox afresh and the store's removals: the same verdicts.
    out = tmp_path / "replay.csv"
    main(["replay", "-c", str(config_file), "--out", str(out), "--all"])
    rows = {row["id"]: row for row in csv.DictReader(out.open()) if row["status"]}
    assert {key: row["status"] for key, row in rows.items()} == {
        "late@cust.example": "removed",
        "binned@cust.example": "removed",
        "fresh@cust.example": "waiting",
        "filed@cust.example": "waiting",
    }
    assert rows["late@cust.example"]["responded_at"] == ""
    assert "removed 2" in capsys.readouterr().out

    # Judged at a moment before the removals (`--now`): the mail was still there then.
    main(["replay", "-c", str(config_file), "--out", str(out), "--now", before_removals.isoformat()])
    rows = {row["id"]: row for row in csv.DictReader(out.open()) if row["status"]}
    assert rows["late@cust.example"]["status"] == "breached"
    assert rows["binned@cust.example"]["status"] == "waiting"


def test_a_deleted_message_that_comes_back_waits_again(setup: tuple[Daemon, Mailbox, Path]) -> None:
    """Moved away and back (an undo): removed for a poll, then waiting again under its new UID."""
    daemon, mailbox, _ = setup
    assert counts(poll(daemon))[:2] == (4, 1)
    move(mailbox, "INBOX", "fresh@cust.example", "Trash")
    assert counts(poll(daemon)) == (3, 1, 1)
    move(mailbox, "Trash", "fresh@cust.example", "INBOX")
    assert counts(poll(daemon)) == (4, 1, 0)
