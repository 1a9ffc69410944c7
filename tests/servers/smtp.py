"""A real SMTP server on loopback (aiosmtpd) with STARTTLS and AUTH, keeping every message it accepted.

The server offers STARTTLS with a trustme certificate, refuses AUTH before TLS and accepts one user; tests
parse what arrived. ``stop()``/``start()`` take it down and bring it back on the same port.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

USER = "replywatch"
PASSWORD = "s3cret-smtp"


@dataclass
class Received:
    """One accepted message: its envelope recipients and the parsed message."""

    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    quit_reply: str = "221 Bye"
    """What the server answers to QUIT (some relays answer 250)."""

    async def handle_QUIT(self, server: Any, session: Session, envelope: Envelope) -> str:
        return self.quit_reply

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.received.append(Received(list(envelope.rcpt_tos), message))
        return "250 OK"


def _authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with STARTTLS required for AUTH."""

    def __init__(self, root: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = root / "smtp-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.tls)
        self.port = _free_port()
        self.handler = _Handler()
        self._controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        """Every message accepted so far."""
        with self.handler.lock:
            return list(self.handler.received)

    def start(self) -> None:
        """Listen (again) on the same port."""
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=self.tls,
            require_starttls=True,
            authenticator=_authenticate,
            auth_required=True,
            auth_require_tls=True,
            server_hostname="localhost",
        )
        self._controller.start()

    def stop(self) -> None:
        """Stop listening (clients get connection refused)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    """A running SMTP server for one test."""
    server = SmtpServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
