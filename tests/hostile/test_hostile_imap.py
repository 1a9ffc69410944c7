"""A server that answers a byte at a time cannot hold a poll for ever (issue 7)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from monitor.sources.base import TransientSourceError
from monitor.sources.imap import ImapConfig, ImapSource


def _trickling_server(stop: threading.Event) -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            conn.sendall(b"* OK ready\r\n")
            tag = conn.recv(1000).split(b" ")[0]  # CAPABILITY, answered at once
            conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
            conn.recv(1000)  # LOGIN: answered a byte at a time
            for byte in b"* CAPABILITY IMAP4rev1 slowly" * 100:
                if stop.wait(0.2):
                    return
                conn.sendall(bytes([byte]))

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


def test_a_trickling_server_fails_the_poll_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRICKLE_PASSWORD", "x")
    stop = threading.Event()
    port = _trickling_server(stop)
    config = ImapConfig.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "tls": "none",
            "username": "u",
            "password_env": "TRICKLE_PASSWORD",
            "timeout": "5s",  # every byte comes well within it
            "poll_deadline": "2s",
        }
    )
    source = ImapSource("trickle", config)
    start = time.monotonic()
    try:
        with pytest.raises(TransientSourceError, match="poll_deadline"):
            source.poll(None)
    finally:
        stop.set()
        source.close()
    assert time.monotonic() - start < 4
