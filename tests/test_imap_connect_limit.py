"""Many IMAP sources connecting at once take turns (real Dovecot)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from imapclient import IMAPClient

from monitor.sources import imap
from monitor.sources.base import TransientSourceError
from tests.servers.dovecot import DovecotServer
from tests.test_imap_source import make_source


@pytest.mark.server
def test_connections_are_set_up_a_few_at_a_time_and_every_poll_succeeds(
    dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imap, "_CONNECTING", threading.BoundedSemaphore(3))
    lock = threading.Lock()
    setting_up = [0]
    most = [0]

    def slow_handshake(**kwargs: Any) -> Any:
        with lock:
            setting_up[0] += 1
            most[0] = max(most[0], setting_up[0])
        try:
            time.sleep(0.05)  # a remote server: a round trip or two before the greeting
            return IMAPClient(**kwargs)
        finally:
            with lock:
                setting_up[0] -= 1

    sources = []
    for _ in range(12):
        box = dovecot.new_mailbox()
        box.create_folder("Sent")
        sources.append(make_source(box, factory=slow_handshake))
    results: list[Any] = []
    errors: list[BaseException] = []

    def poll(source: imap.ImapSource) -> None:
        try:
            results.append(source.poll(None))
        except BaseException as err:  # reported below
            errors.append(err)
        finally:
            source.close()

    threads = [threading.Thread(target=poll, args=(source,)) for source in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(results) == 12
    assert most[0] == 3  # they did overlap, three at a time and never more


@pytest.mark.server
def test_a_poll_waits_for_its_turn_no_longer_than_its_deadline(
    dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections stuck elsewhere hold every turn: the poll fails within its poll_deadline, said why."""
    turns = threading.BoundedSemaphore(1)
    monkeypatch.setattr(imap, "_CONNECTING", turns)
    box = dovecot.new_mailbox()
    box.create_folder("Sent")
    source = make_source(box, poll_deadline="1s")
    assert turns.acquire()  # another source's connection, stuck
    try:
        began = time.monotonic()
        # Said either way, whichever comes first: the wait for a turn ending, or the deadline's timer.
        with pytest.raises(TransientSourceError, match="poll_deadline") as failed:
            source.poll(None)
        assert "no turn to connect" in str(failed.value) or "took longer than" in str(failed.value)
        assert time.monotonic() - began < 5
    finally:
        turns.release()
    assert source.poll(None).cursor  # its turn comes once the other connection is set up
    source.close()


@pytest.mark.server
def test_a_connection_waiting_for_its_next_poll_holds_little(
    dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon keeps one connection per mailbox: between polls it keeps no record of its lines, no
    untagged answer nobody asked for, and shares the greeting and capability lists with the others."""
    from monitor.sources import imap_connection

    monkeypatch.setattr(imap_connection, "_GREETINGS", {})
    monkeypatch.setattr(imap_connection, "_CAPABILITY_LISTS", {})
    sources, boxes, cursors = [], [], []
    for _ in range(2):
        box = dovecot.new_mailbox()
        box.create_folder("Sent")
        box.append("INBOX", b"From: carol@cust.example\r\nSubject: hi\r\n\r\nhello\r\n")
        boxes.append(box)
        sources.append(make_source(box))
    try:
        for source in sources:
            cursor = source.poll(None).cursor
            cursors.append(source.poll(cursor).cursor)  # a second poll on the same connection
        first, second = (source._client for source in sources)
        for client in (first, second):
            assert client._imap.untagged_responses == {}
            assert not getattr(client._imap, "_cmd_log", {})
        assert first._imap.welcome is second._imap.welcome
        assert first._imap.capabilities is second._imap.capabilities
        assert first._cached_capabilities is second._cached_capabilities
        assert b"IMAP4REV1" in first.capabilities()  # imapclient still answers from what it keeps
        boxes[0].append("INBOX", b"From: dan@cust.example\r\nSubject: again\r\n\r\nhello\r\n")
        assert len(sources[0].poll(cursors[0]).messages) == 1  # and polls as before
    finally:
        for source in sources:
            source.close()


@pytest.mark.server
@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_a_small_read_buffer_reads_long_headers_and_many_messages(dovecot: DovecotServer, tls: str) -> None:
    """imaplib reads through a READ_BUFFER buffer (STARTTLS: imaplib's own); header blocks several times
    longer than it and a fetch of many messages come through whole."""
    import io
    import sys

    from monitor.sources.imap_connection import READ_BUFFER

    box = dovecot.new_mailbox()
    box.create_folder("Sent")
    references = [f"<r{n:04d}.long-thread-id@cust.example>" for n in range(150)]  # about 6 KB
    box.append(
        "INBOX",
        (
            "From: carol@cust.example\r\nTo: support@example.com\r\nMessage-ID: <last@cust.example>\r\n"
            f"References: {' '.join(references)}\r\nSubject: long\r\n\r\nhello\r\n"
        ).encode(),
    )
    for n in range(60):
        message = f"From: c{n}@cust.example\r\nMessage-ID: <m{n}@cust.example>\r\n\r\nhi\r\n"
        box.append("INBOX", message.encode())
    source = make_source(box, tls=tls, batch_size=25)
    try:
        messages = source.poll(None).messages
        reader = source._client._imap.file
        small = sys.getsizeof(io.BufferedReader(io.BytesIO(), buffer_size=READ_BUFFER))
        assert (sys.getsizeof(reader) == small) is (tls == "implicit")
    finally:
        source.close()
    assert len(messages) == 61
    long = next(m for m in messages if m.message_id == "last@cust.example")
    assert list(long.references) == [r.strip("<>") for r in references]
