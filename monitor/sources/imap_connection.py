"""The IMAP connection a source keeps open between polls, made to hold little.

A daemon keeps one connection per mailbox, so what each one holds counts a thousand times. imapclient's
own client with two changes: imaplib reads the socket through a smaller buffer (:data:`READ_BUFFER`), and
after each poll :func:`keep_less` drops what imaplib and imapclient keep for nobody.
"""

from __future__ import annotations

import imaplib
from typing import Any

from imapclient import IMAPClient, imap4, tls

READ_BUFFER = 2048
"""Bytes imaplib reads ahead from the socket (it asks for 8 KB). A FETCH answer line is one or two hundred
bytes, and a literal longer than the buffer is read straight into its bytes. 1,000 connections hold 6 MB
less; a first fetch of 50,000 headers makes four times as many reads and costs about 7 % more CPU in the
daemon's process (2.13 -> 2.27 s), once."""

_GREETINGS: dict[bytes, bytes] = {}
"""Greetings of open connections, each distinct one held once (:func:`keep_less`); at most
:data:`_SHARED_MAX` (some servers greet every connection differently, and those greetings are not kept)."""
_CAPABILITY_LISTS: dict[tuple[Any, ...], tuple[Any, ...]] = {}
"""imaplib's and imapclient's capability tuples, each distinct one held once; at most :data:`_SHARED_MAX`."""
_SHARED_MAX = 64


class _SmallReads:
    """imaplib's ``open()`` with a :data:`READ_BUFFER` read buffer, made before anything is read."""

    sock: Any
    file: Any

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        super().open(host, port, timeout)  # type: ignore[misc]
        if not isinstance(getattr(type(self), "file", None), property):  # imaplib owns it from 3.14 on
            self.file.close()  # the socket stays open: only its file's reference goes
            self.file = self.sock.makefile("rb", buffering=READ_BUFFER)


class _TlsConnection(_SmallReads, tls.IMAP4_TLS):  # type: ignore[misc]
    pass


class _PlainConnection(_SmallReads, imap4.IMAP4WithTimeout):  # type: ignore[misc]
    pass


class Client(IMAPClient):  # type: ignore[misc]
    """imapclient's client on a connection with a :data:`READ_BUFFER` read buffer (STARTTLS keeps
    imaplib's own 8 KB: imaplib makes it as it switches to TLS, and reads through it at once)."""

    def _create_IMAP4(self) -> imaplib.IMAP4:
        if self.stream:
            return super()._create_IMAP4()  # type: ignore[no-any-return]
        connect_timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _TlsConnection(self.host, self.port, self.ssl_context, connect_timeout)
        return _PlainConnection(self.host, self.port, connect_timeout)


def _shared(held: dict[Any, Any], value: Any) -> Any:
    if len(held) < _SHARED_MAX:
        return held.setdefault(value, value)
    return held.get(value, value)


def _not_kept(_line: str) -> None:
    """imaplib's record of a connection's last ten lines, for its ``print_log()``: not kept."""


def keep_less(client: Any) -> None:
    """Let a connection hold less while it waits for its next poll (after each poll; None is fine).

    imaplib keeps its last ten lines sent and read (all of a poll's, rewritten every poll) and the
    greeting, imaplib and imapclient each keep the capability list, and untagged answers no command asked
    for stay until the next SELECT. Identical greetings and capability lists are shared, the line record
    is not kept, and leftover untagged answers (never read: replywatch asks for what it reads) are
    dropped.
    """
    imap = getattr(client, "_imap", None)
    if not isinstance(imap, imaplib.IMAP4):
        return
    imap._log = _not_kept  # type: ignore[attr-defined]
    getattr(imap, "_cmd_log", {}).clear()
    imap.welcome = _shared(_GREETINGS, imap.welcome)
    imap.capabilities = _shared(_CAPABILITY_LISTS, imap.capabilities)
    cached = getattr(client, "_cached_capabilities", None)
    if cached:
        client._cached_capabilities = _shared(_CAPABILITY_LISTS, cached)
    imap.untagged_responses.clear()
