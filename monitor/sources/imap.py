"""IMAP source: watches folders read-only (EXAMINE, BODY.PEEK) and reports messages and folder counts.

Cost grows with change, not with size: a poll sends one STATUS per folder and stops there when
nothing changed; a changed folder is EXAMINEd and only new or changed messages are fetched, in
batches of explicit UIDs. With CONDSTORE (RFC 7162) ``UID SEARCH MODSEQ`` names exactly the messages
whose flags changed; without it the cursor keeps each flag's UID set and a changed folder's FLAGS are
compared against it.

Messages deleted or moved away are looked for only when a folder holds fewer messages than the cursor's
count and the new ones make: with QRESYNC (RFC 7162 §3.2) one ``UID FETCH ... (CHANGEDSINCE m VANISHED)``
names the UIDs expunged since the cursor's HIGHESTMODSEQ; without it one ``UID SEARCH ALL`` lists what
remains, and the store compares.

Header fetches skip imapclient's generic response parser, which lexes every byte in Python: the UID
FETCH goes through imapclient's own imaplib connection and :func:`parse_fetch_records` reads exactly the
items asked for. A batch it cannot read is fetched again through imapclient.
"""

from __future__ import annotations

import functools
import imaplib
import re
import shlex
import socket
import ssl
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, NotRequired

from imapclient import SocketTimeout
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.imap_utf7 import encode as encode_utf7
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from monitor import gc_pause
from monitor.config import is_loopback
from monitor.durations import Duration
from monitor.events import MessageEvent, archive_role
from monitor.mail.classify import HEADERS_USED
from monitor.mail.headers import WANTED_HEADERS, first_address, parse_header_block
from monitor.plugins import SecretError, SecretRef
from monitor.sources import parse_pool
from monitor.sources.base import (
    FOLDER_COUNTS,
    AuthSourceError,
    Cursor,
    Folder,
    FolderRead,
    FolderSource,
    FolderState,
    PermanentSourceError,
    PollResult,
    SourceConfigBase,
    SourceError,
    SourcePlugin,
    TransientSourceError,
)
from monitor.sources.deadlines import DEADLINES
from monitor.sources.hints import (
    connection_hint,
    greeting_timeout,
    login_refused,
    missing_folder,
    server_text,
    speaks_tls,
)
from monitor.sources.imap_answers import untraced
from monitor.sources.imap_connection import Client, keep_less
from monitor.sources.imap_events import Built, FolderFetch, as_utc, build_events, flags_of, parse_and_build
from monitor.sources.imap_fetch import FetchParseError, parse_fetch_records
from monitor.sources.junk import is_junk_name, junk_refusal

_STATUS_ITEMS = re.compile(rb"\(([A-Za-z0-9 ]*)\)\s*\Z")  # the item list closing a STATUS response

FETCH_HEADERS: tuple[str, ...] = tuple(dict.fromkeys((*WANTED_HEADERS, *HEADERS_USED)))
"""Header fields fetched with ``BODY.PEEK[HEADER.FIELDS (...)]``: what the engine and the classifier read."""
HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS ({})]".format(" ".join(FETCH_HEADERS))
TEXT_PREVIEW_BYTES = 4096
"""How much of a message's text ``text_preview`` fetches (the new text is rarely longer)."""

SENT_NAMES: tuple[str, ...] = (
    "Sent",
    "Sent Items",
    "Sent Messages",
    "Sent Mail",
    "INBOX.Sent",
    "INBOX/Sent",
    "INBOX.Sent Items",
    "INBOX.Sent Messages",
    "[Gmail]/Sent Mail",
    "[Google Mail]/Sent Mail",
    "Gesendet",
    "Gesendete Objekte",
    "Gesendete Elemente",
    "INBOX.Gesendet",
    "Envoyés",
    "Éléments envoyés",
    "Messages envoyés",
    "Enviados",
    "Elementos enviados",
    "Posta inviata",
    "Inviati",
    "Verzonden",
    "Verzonden items",
    "Skickat",
    "Skickade objekt",
    "Sendt",
    "Sendte elementer",
    "Wysłane",
    "Odeslaná pošta",
)
"""Sent folder names tried in order when no folder carries the ``\\Sent`` special-use attribute."""

DEFAULT_BATCH_SIZE = 500
MAX_SKIPPED_IN_CURSOR = 1000

ClientFactory = Callable[..., Any]
"""Builds an IMAPClient-like client from ``host=, port=, ssl=, ssl_context=, timeout=``."""


# --- config -----------------------------------------------------------------------------------


class ImapFolders(BaseModel):
    """Which folders to watch and the role each one plays."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    inbox: str = "INBOX"
    """Where customers' mail arrives."""
    sent: str = "auto"
    """Where the team's replies are kept: a folder name, or ``auto`` (the ``\\Sent`` special-use folder,
    RFC 6154, else a usual name such as ``Sent`` or ``Sent Items``)."""
    extra: list[str] = Field(default_factory=list)
    """More folders to watch (events carry the folder's name as their role)."""
    archive: list[str] = Field(default_factory=list)
    """Folders where the team files handled mail: a message moved there is not removed, and mail found
    only there neither opens an item nor answers one (events carry ``archive:<name>`` as their role)."""

    @field_validator("inbox", "sent")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("folder name must not be empty")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> ImapFolders:
        for name in (self.inbox, self.sent, *self.extra):
            if is_junk_name(name):
                raise ValueError(junk_refusal(name))
        seen = {self.inbox}
        if self.sent != "auto":
            if self.sent == self.inbox:
                raise ValueError(f"sent: {self.sent!r} is already the inbox")
            seen.add(self.sent)
        for name in self.extra:
            if not name.strip():
                raise ValueError("extra: folder name must not be empty")
            if name.lower() in ("inbox", "sent") or name in seen:
                raise ValueError(f"extra: folder {name!r} is already watched or names a role")
            seen.add(name)
        for name in self.archive:
            if not name.strip():
                raise ValueError("archive: folder name must not be empty")
            if name in seen:
                raise ValueError(f"archive: folder {name!r} is already watched")
            seen.add(name)
        return self


_CREDENTIALS = (
    "password_env",
    "password_file",
    "oauth2_token_env",
    "oauth2_token_file",
    "oauth2_token_command",
)


class ImapConfig(SourceConfigBase):
    """An IMAP mailbox watched read-only."""

    mailbox_counts: ClassVar[frozenset[str]] = FOLDER_COUNTS

    kind: Literal["imap"] = "imap"
    """Selects this plugin."""
    host: str
    """Server name or address."""
    port: int = Field(default=993, ge=1, le=65535)
    """TCP port; default 993 with ``tls: implicit``, 143 otherwise."""
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    """``implicit`` (TLS from the first byte), ``starttls`` (upgrade; never falls back to clear text) or
    ``none`` (clear text, allowed only to a loopback host)."""
    ca_file: Path | None = None
    """PEM file of CA certificates to trust instead of the system's."""
    username: str
    """Login name."""
    password: SecretRef | None = None
    """The password (LOGIN): ``password_env`` (an environment variable) or ``password_file`` (a file, its
    first line)."""
    oauth2_token: SecretRef | None = None
    """An OAuth2 access token (XOAUTH2): ``oauth2_token_env`` or ``oauth2_token_file`` (a file kept fresh by
    another process)."""
    oauth2_token_command: list[str] | None = None
    """Command printing a fresh OAuth2 access token, run (without a shell) at each connection (XOAUTH2)."""
    folders: ImapFolders = Field(default_factory=ImapFolders)
    """Folders to watch: ``{inbox: INBOX, sent: auto, extra: []}``."""
    timeout: Duration = Field(default_factory=lambda: timedelta(seconds=30))
    """How long to wait for the server to connect or answer one command."""
    poll_deadline: Duration = Field(default_factory=lambda: timedelta(minutes=5))
    """The longest one poll may take in all (a server may answer each command in time, a byte at a time)."""
    text_preview: bool = True
    """Also fetch the first 4 KB of each message's text (``BODY.PEEK[TEXT]<0.4096>``, still read-only) for
    ``closing_thanks`` and holding-reply phrases; off, only headers are fetched."""

    @model_validator(mode="before")
    @classmethod
    def _default_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("port") is None:
            data = {k: v for k, v in data.items() if k != "port"}
            if data.get("tls", "implicit") != "implicit":
                data["port"] = 143
        return data

    @field_validator("oauth2_token_command", mode="before")
    @classmethod
    def _split_command(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = shlex.split(value)
        if isinstance(value, list) and not value:
            raise ValueError("command must not be empty")
        return value

    @model_validator(mode="after")
    def _check(self) -> ImapConfig:
        given = [ref.key for ref in (self.password, self.oauth2_token) if ref is not None]
        if self.oauth2_token_command is not None:
            given.append("oauth2_token_command")
        if len(given) != 1:
            found = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(f"give exactly one of {', '.join(_CREDENTIALS)} ({found})")
        return self

    @field_validator("tls")
    @classmethod
    def _clear_text_only_to_loopback(cls, value: str, info: ValidationInfo) -> str:
        host = info.data.get("host")
        if value == "none" and isinstance(host, str) and not is_loopback(host):
            raise ValueError(
                f"'none' sends the password in clear text: allowed only to a loopback host, not {host!r}"
            )
        return value

    @property
    def uses_oauth2(self) -> bool:
        """True when the source logs in with XOAUTH2 rather than a password."""
        return self.password is None


# --- TLS ------------------------------------------------------------------------------------------

_SSL_CONTEXTS: dict[str, ssl.SSLContext] = {}
_SSL_LOCK = threading.Lock()


def shared_ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """One verifying client context per CA file, shared by all sources (building one costs ~15 ms)."""
    key = str(ca_file) if ca_file is not None else ""
    with _SSL_LOCK:
        context = _SSL_CONTEXTS.get(key)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
            except (OSError, ssl.SSLError) as err:
                reason = getattr(err, "strerror", None) or str(err)
                raise PermanentSourceError(f"ca_file {key!r} cannot be used: {reason}") from err
            _SSL_CONTEXTS[key] = context
        return context


# --- connecting ----------------------------------------------------------------------------------

CONNECTS_AT_ONCE = 32
"""IMAP connections set up at the same time (connect, TLS, login) in one process; the others wait their turn
before their connect timeout starts. A daemon starting with 1,000 mailboxes otherwise opened all 1,000 at
once: the TLS handshakes took turns on two CPUs, and more than half the greetings came later than their
timeout and were reported as failed connections."""

_CONNECTING = threading.BoundedSemaphore(CONNECTS_AT_ONCE)


# --- UID sets (RFC 3501 §9 sequence-set), kept in the cursor for servers without CONDSTORE ---------


def uid_set(uids: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1:3,7"``."""
    out: list[str] = []
    ordered = sorted(set(uids))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(out)


def parse_uid_set(text: str) -> set[int]:
    """``"1:3,7"`` -> ``{1, 2, 3, 7}``."""
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        low, _, high = part.partition(":")
        out.update(range(int(low), int(high or low) + 1))
    return out


_CAPABILITIES: dict[frozenset[bytes], frozenset[bytes]] = {}
"""Each distinct CAPABILITY answer, held once for every connection that got it."""


def _batches(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


RAMP_SMALLEST = 50
"""The smallest batch of a ramp (:func:`_ramped`): below it, a FETCH's round trip costs more than it saves."""


def _ramped(items: Sequence[int], size: int) -> list[Sequence[int]]:
    """Batches of ``size`` for the parse workers, smaller at both ends of the fetch.

    The first worker starts once the first batch is read, the second once the next one is: with full
    batches both waited for 500 messages to come over the wire (some 30 ms a folder at a start). At the end,
    the last full batch kept one worker busy while the other had nothing left. So a fetch starts with
    ``size``/8, /4, /2 and ends with /2, /4, /8 (none under :data:`RAMP_SMALLEST`).
    """
    ramp: list[int] = []
    step = size // 2
    while step >= RAMP_SMALLEST and len(ramp) < 3:
        ramp.append(step)
        step //= 2
    if len(items) < 2 * (size + sum(ramp)):
        return list(_batches(items, size))
    head, tail = ramp[::-1], ramp
    sizes = [*head, *[size] * ((len(items) - 2 * sum(ramp)) // size)]
    rest = len(items) - sum(sizes) - sum(tail)
    sizes += [rest] if rest else []
    sizes += tail
    out: list[Sequence[int]] = []
    start = 0
    for n in sizes:
        out.append(items[start : start + n])
        start += n
    return out


# --- the source -----------------------------------------------------------------------------------


class _ConnectionLost(TransientSourceError):
    """The server closed the connection (a reused one may just have gone stale)."""


class ImapState(FolderState):
    """One IMAP folder's saved state (``name`` is the folder's name on the server)."""

    uidvalidity: int
    uidnext: int
    last_uid: int
    """The highest UID read (skipped messages included)."""
    highestmodseq: int | None
    """With CONDSTORE (RFC 7162): the folder's HIGHESTMODSEQ when read; else None."""
    messages: int
    unseen: int
    unanswered: int
    oldest: str | None
    """ISO time of the earliest INTERNALDATE."""
    skipped: list[int]
    """UIDs of messages that could not be read (the last :data:`MAX_SKIPPED_IN_CURSOR`)."""
    flags: NotRequired[dict[str, str]]
    """Without CONDSTORE: flag -> UID set of the messages carrying it."""


class ImapSource(FolderSource[ImapState]):
    """Polls one IMAP account over one reused connection; never changes a message or a flag."""

    cursor_version = 1
    state_type = ImapState
    fast_fetch = True
    """Read bulk header fetches with :func:`parse_fetch_records` (False: imapclient's parser only)."""

    def __init__(
        self,
        name: str,
        config: ImapConfig,
        *,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], datetime] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(name, clock=clock)
        self.config = config
        self._client_factory: ClientFactory = client_factory or Client
        self._ssl_context = ssl_context
        self._batch_size = batch_size
        self._client: Any = None
        self._deadline: float | None = None
        """When the poll under way must end (``time.monotonic()``); None outside a poll."""
        self._capabilities: frozenset[bytes] = frozenset()
        self._sent_folder: str | None = None
        self._junk_checked = False

    # -- public API --------------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Log in and look up every folder; return the problems found (empty when all is well)."""
        problems: list[str] = []
        try:
            client = self._connection()
            for _role, folder in self._folders(client):
                try:
                    self._status(client, folder)
                except PermanentSourceError as err:
                    problems.append(str(err))
        except SourceError as err:
            problems.append(str(err))
        return problems

    def sent_senders(self, limit: int = 50) -> list[str]:
        """The From address of each of the newest ``limit`` messages in the Sent folder (read-only, for
        ``check-config --probe``: one EXAMINE, one UID SEARCH and one FETCH of the From field)."""
        client = self._connection()
        sent = dict(self._folders(client))["sent"]
        with self._talking(f"reading {sent!r}"):
            client.select_folder(sent, readonly=True)
            try:
                newest = sorted(client.search(["ALL"]))[-limit:]
                fetched = client.fetch(newest, ["BODY.PEEK[HEADER.FIELDS (FROM)]"]) if newest else {}
            finally:
                self._unselect(client)
        out = []
        for item in fetched.values():
            raw = item.get(b"BODY[HEADER.FIELDS (FROM)]") or b""
            address, _name = first_address(parse_header_block(raw).get("From"))
            if address:
                out.append(address)
        return out

    def poll(self, cursor: Cursor | None) -> PollResult:
        """Report messages new or changed since ``cursor`` and each folder's counts, within ``poll_deadline``.

        ``timeout`` bounds each command; a server that answers a byte every few seconds never trips it,
        so the whole poll has a deadline too: when it passes, the connection is shut down from a timer
        thread, which ends any read in progress, and the poll fails as a transient error (issue 7).
        """
        expired = threading.Event()
        limit = self.config.poll_deadline.total_seconds()
        self._deadline = time.monotonic() + limit
        timer = DEADLINES.watch(limit, functools.partial(self._expire, expired))
        try:
            return self._poll_reconnecting(cursor, expired)
        except SourceError as err:
            if expired.is_set():
                raise TransientSourceError(
                    f"poll of {self.config.host} took longer than poll_deadline ({limit:.0f} s)"
                ) from err
            raise
        finally:
            DEADLINES.cancel(timer)
            self._deadline = None
            try:
                keep_less(self._client)  # kept open until the next poll: as little as it can hold
            except Exception:  # never instead of the poll's result or its own error
                self.log.debug("could not trim the connection's state", exc_info=True)

    def _expire(self, expired: threading.Event) -> None:
        expired.set()
        client = self._client
        sock = getattr(client, "socket", None) if client is not None else None
        with suppress(Exception):  # shutting a socket down is what wakes a thread blocked reading it
            sock().shutdown(socket.SHUT_RDWR)  # type: ignore[misc]

    def _poll_reconnecting(self, cursor: Cursor | None, expired: threading.Event) -> PollResult:
        reused = self._client is not None
        try:
            return super().poll(cursor)
        except _ConnectionLost:
            if not reused or expired.is_set():
                raise
            # An idle connection may have been closed by the server or a NAT box since the last poll:
            # that is not worth an error (and a backoff); one fresh connection decides.
            self.log.debug("connection to %s lost, reconnecting", self.config.host)
            return super().poll(cursor)

    def close(self) -> None:
        """Log out and drop the connection."""
        client, self._client = self._client, None
        if client is not None:
            with suppress(Exception):
                client.logout()

    # -- connection --------------------------------------------------------------------------------

    @contextmanager
    def _talking(self, doing: str) -> Iterator[None]:
        """Translate a client's exceptions into :class:`SourceError` and drop a broken connection."""
        host = self.config.host
        try:
            yield
        except SourceError:
            raise
        except LoginError as err:
            self._drop()
            text = server_text(err)
            if "UNAVAILABLE" in text:  # RFC 5530: the server cannot log anyone in right now
                raise TransientSourceError(f"{doing} on {host}: {text}") from err
            raise AuthSourceError(
                login_refused(host, self.config.username, self._secret_origin(), text)
            ) from err
        except (IMAPClientAbortError, ConnectionError, ssl.SSLEOFError, EOFError) as err:
            self._drop()
            raise _ConnectionLost(f"{doing} on {host}: connection lost ({err})") from err
        except (OSError, ssl.SSLError) as err:  # includes socket timeouts and certificate failures
            self._drop()
            raise TransientSourceError(f"{doing} on {host}: {err}") from err
        except (IMAPClientError, ValueError) as err:
            self._drop()
            raise TransientSourceError(f"{doing} on {host}: {err}") from err

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with suppress(Exception):
                client.shutdown()

    def _connection(self) -> Any:
        if self._client is not None:
            return self._client
        cfg = self.config
        context = None
        if cfg.tls != "none":
            context = self._ssl_context or shared_ssl_context(cfg.ca_file)
        secret = self._secret()
        timeout = cfg.timeout.total_seconds()
        failed: OSError | None = None
        with self._connect_turn(), self._talking("connecting"):
            try:
                # Connecting and the greeting get seconds, not ``timeout``: STARTTLS spoken to an
                # implicit-TLS port would otherwise wait the whole timeout for a greeting that never comes.
                client = self._client_factory(
                    host=cfg.host,
                    port=cfg.port,
                    ssl=cfg.tls == "implicit",
                    ssl_context=context,
                    timeout=SocketTimeout(connect=greeting_timeout(timeout), read=timeout),
                )
                self._client = client
                client.normalise_times = False  # keep INTERNALDATE's zone; we convert to UTC ourselves
                if cfg.tls == "starttls":
                    if not client.has_capability("STARTTLS"):
                        self._drop()
                        raise PermanentSourceError(
                            f"{cfg.host}:{cfg.port} does not offer STARTTLS (tls: starttls)"
                        )
                    client.starttls(context)
            except (OSError, ssl.SSLError) as err:
                self._drop()
                failed = err  # explained after the turn is given back (the explanation may probe the port)
            else:
                if cfg.uses_oauth2:
                    client.oauth2_login(cfg.username, secret)
                else:
                    client.login(cfg.username, secret)
                found = frozenset(c.upper() for c in client.capabilities())
                # One set per distinct server: 1,000 mailboxes on one server held 1,000 copies (4 KB each).
                self._capabilities = _CAPABILITIES.setdefault(found, found)
                if b"ENABLE" in self._capabilities:
                    # RFC 7162 §3.1: makes EXAMINE report HIGHESTMODSEQ. QRESYNC implies CONDSTORE and lets
                    # a FETCH name the UIDs expunged since a modseq (VANISHED); nothing is written either way.
                    if b"QRESYNC" in self._capabilities and b"CONDSTORE" in self._capabilities:
                        client.enable("QRESYNC")
                    elif b"CONDSTORE" in self._capabilities:
                        client.enable("CONDSTORE")
        if failed is not None:
            raise self._connect_error(failed) from failed
        self.log.debug("connected to %s:%d", cfg.host, cfg.port)
        return client

    @contextmanager
    def _connect_turn(self) -> Iterator[None]:
        """A turn to set up a connection (:data:`CONNECTS_AT_ONCE`), waited for no longer than what is left
        of the poll's ``poll_deadline``: connections stuck elsewhere cannot hold this poll past it."""
        deadline = self._deadline
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not _CONNECTING.acquire(timeout=wait):
            raise TransientSourceError(
                f"connecting to {self.config.host}: no turn to connect within poll_deadline "
                f"({CONNECTS_AT_ONCE} connections were being set up)"
            )
        try:
            yield
        finally:
            _CONNECTING.release()

    def _connect_error(self, err: OSError) -> SourceError:
        """The error of a failed connection, with what it means and the setting that fixes it."""
        cfg = self.config
        probed = None
        if isinstance(err, TimeoutError) and cfg.tls != "implicit":
            probed = speaks_tls(cfg.host, cfg.port)
        hint = connection_hint(
            err, host=cfg.host, port=cfg.port, tls=cfg.tls, ca_file=cfg.ca_file, port_speaks_tls=probed
        )
        return TransientSourceError(f"connecting to {hint}" if hint else f"connecting on {cfg.host}: {err}")

    def _secret_origin(self) -> str:
        """Where the password or token came from (the setting and its variable, file or command)."""
        cfg = self.config
        if cfg.oauth2_token_command is not None:
            return f"oauth2_token_command {cfg.oauth2_token_command[0]!r}"
        ref = cfg.password or cfg.oauth2_token
        return ref.origin if ref is not None else "(none)"

    def _secret(self) -> str:
        """The password or token, read now (never stored, never logged)."""
        cfg = self.config
        if cfg.oauth2_token_command is not None:
            return self._run_token_command(cfg.oauth2_token_command)
        ref = cfg.password or cfg.oauth2_token
        assert ref is not None  # the config guarantees one credential
        try:
            return ref.reveal().get_secret_value()
        except SecretError as err:
            raise AuthSourceError(str(err)) from err

    def _run_token_command(self, command: list[str]) -> str:
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=self.config.timeout.total_seconds(),
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise AuthSourceError(f"oauth2_token_command {command[0]!r} could not run: {err}") from err
        token = done.stdout.strip()
        if done.returncode != 0 or not token:
            raise AuthSourceError(
                f"oauth2_token_command {command[0]!r} exited with status {done.returncode}"
                + ("" if token else " and printed no token")
            )
        return token.splitlines()[0]

    def _has(self, capability: bytes) -> bool:
        return capability in self._capabilities

    # -- folders -----------------------------------------------------------------------------------

    def _folders(self, client: Any) -> list[tuple[str, str]]:
        """``(role, server name)`` of every watched folder."""
        folders = self.config.folders
        sent = folders.sent
        if (sent == "auto" and self._sent_folder is None) or not self._junk_checked:
            with self._talking("listing folders"):
                listing = client.list_folders()
            if sent == "auto" and self._sent_folder is None:
                self._sent_folder = self._find_sent(listing)
            watched = [folders.inbox, self._sent_folder if sent == "auto" else sent, *folders.extra]
            self._refuse_junk(listing, watched)
            self._junk_checked = True
        if sent == "auto":
            assert self._sent_folder is not None
            sent = self._sent_folder
        return [
            ("inbox", folders.inbox),
            ("sent", sent),
            *((name, name) for name in folders.extra),
            *((archive_role(name), name) for name in folders.archive),
        ]

    def _refuse_junk(
        self, listing: Sequence[tuple[Sequence[bytes], Any, str]], watched: list[str | None]
    ) -> None:
        """A watched folder the server marks ``\\Junk`` (RFC 6154 §2) is a configuration error."""
        for flags, _sep, name in listing:
            if str(name) in watched and any(flag.lower() == b"\\junk" for flag in flags):
                raise PermanentSourceError(
                    f"folder {str(name)!r} on {self.config.host} is marked \\Junk: " + junk_refusal(str(name))
                )

    def _find_sent(self, listing: Sequence[tuple[Sequence[bytes], Any, str]]) -> str:
        # RFC 6154 §2: the \Sent attribute names the folder whatever its (localized) name is. Dovecot,
        # Gmail, Cyrus and Exchange send it in a plain LIST, so one LIST serves both ways of finding it.
        for flags, _sep, name in listing:
            if any(flag.lower() == b"\\sent" for flag in flags):
                return str(name)
        by_lower = {str(name).lower(): str(name) for flags, _sep, name in listing}
        for candidate in SENT_NAMES:
            if candidate.lower() in by_lower:
                return by_lower[candidate.lower()]
        raise PermanentSourceError(
            f"no Sent folder found on {self.config.host}: none is marked \\Sent (RFC 6154) and none has a "
            f"usual name; set folders.sent"
        )

    def _status(self, client: Any, folder: str) -> dict[bytes, int]:
        items = ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"]
        if self._has(b"CONDSTORE"):
            items.append("HIGHESTMODSEQ")
        try:
            with self._talking(f"STATUS {folder!r}"):
                try:
                    fast = self._status_fast(client, folder, items)
                    if fast is not None:
                        return fast
                    return dict(client.folder_status(folder, items))
                except IMAPClientAbortError:
                    raise
                except IMAPClientError as err:
                    raise self._folder_error(folder, err, client) from err
        except PermanentSourceError:
            if self.config.folders.sent == "auto" and folder == self._sent_folder:
                self._sent_folder = None  # look it up again next time
            raise

    def _status_fast(self, client: Any, folder: str, items: list[str]) -> dict[bytes, int] | None:
        """STATUS sent and read by imaplib, its one line parsed here; None: imapclient must do it (an
        error answer, a folder name sent as a literal, anything unusual) and sends the command again.

        A no-change poll is two STATUS commands: imapclient's generic response lexer and imaplib's
        protocol trace (formatted even when nobody listens) were most of its CPU time.
        """
        imap = getattr(client, "_imap", None) if self.fast_fetch else None
        if not isinstance(imap, imaplib.IMAP4):
            return None
        with untraced(imap):
            typ, data = imap.status(_quoted_folder(client, folder), "({})".format(" ".join(items)))
        line = data[-1] if typ == "OK" and data else None
        found = _STATUS_ITEMS.search(line) if isinstance(line, bytes) else None
        if found is None:
            return None
        words = found.group(1).split()
        try:  # the item list holds letters, digits and spaces: int() takes digits only here
            status = {words[i].upper(): int(words[i + 1]) for i in range(0, len(words), 2)}
        except (ValueError, IndexError):
            return None
        for item in items:
            if item.encode() not in status:
                return None
        return status

    def _folder_error(self, folder: str, err: Exception, client: Any) -> SourceError:
        text = server_text(err)
        lowered = text.lower()
        # RFC 5530 response codes; older servers only say it in words.
        if any(word in lowered for word in ("exist", "not found", "no such", "unknown mailbox", "cannot]")):
            existing: list[str] = []
            with suppress(Exception):  # the listing only helps the message; its failure changes nothing
                existing = sorted(str(name) for _flags, _sep, name in client.list_folders())
            if folder not in existing:
                return PermanentSourceError(missing_folder(folder, self.config.host, existing))
        if any(code in text for code in ("UNAVAILABLE", "SERVERBUG", "INUSE", "LIMIT")):
            return TransientSourceError(f"folder {folder!r} on {self.config.host}: {text}")
        return PermanentSourceError(f"folder {folder!r} on {self.config.host} cannot be read: {text}")

    # -- polling -----------------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        """Connect (or reuse the connection) and name every watched folder."""
        return [Folder(role, name) for role, name in self._folders(self._connection())]

    def upgrade(self, cursor: Cursor, folders: Sequence[Folder]) -> dict[str, Any] | None:
        """States from the first cursor layout (``{"folders": {server folder name: state}}``)."""
        old = cursor.get("folders")
        if not isinstance(old, dict) or not all(isinstance(state, dict) for state in old.values()):
            return None
        return {
            folder.role: {"skipped": [], **old[folder.name], "name": folder.name}
            for folder in folders
            if folder.name in old
        }

    def read_folder(self, folder: Folder, state: ImapState | None, now: datetime) -> FolderRead[ImapState]:
        """STATUS one folder and, when it changed, fetch its new and changed messages."""
        client = self._connection()
        status = self._status(client, folder.name)
        if state is not None and self._unchanged(state, status):
            return _counted(state, [])
        return self._poll_folder(client, folder, state, status, now)

    @staticmethod
    def _unchanged(state: ImapState, status: dict[bytes, int]) -> bool:
        return (
            state["uidvalidity"] == status.get(b"UIDVALIDITY")
            and state["uidnext"] == status.get(b"UIDNEXT")
            and state["messages"] == status.get(b"MESSAGES")
            and state["unseen"] == status.get(b"UNSEEN")
            and state["highestmodseq"] == status.get(b"HIGHESTMODSEQ")
        )

    def _poll_folder(
        self, client: Any, folder: Folder, state: ImapState | None, status: dict[bytes, int], now: datetime
    ) -> FolderRead[ImapState]:
        with self._talking(f"reading {folder.name!r}"):
            try:
                selected = client.select_folder(folder.name, readonly=True)  # EXAMINE: never changes \Seen
            except IMAPClientAbortError:
                raise
            except IMAPClientError as err:
                raise self._folder_error(folder.name, err, client) from err
            try:
                return self._read_changes(client, folder, state, status, selected, now)
            finally:
                self._unselect(client)

    def _unselect(self, client: Any) -> None:
        # Leave no folder selected between polls: STATUS on the selected folder is discouraged
        # (RFC 3501 §6.3.10). CLOSE after EXAMINE expunges nothing (RFC 3501 §6.4.2).
        if self._has(b"UNSELECT"):
            client.unselect_folder()
        else:
            client.close_folder()

    def _read_changes(
        self,
        client: Any,
        folder: Folder,
        state: ImapState | None,
        status: dict[bytes, int],
        selected: dict[bytes, Any],
        now: datetime,
    ) -> FolderRead[ImapState]:
        # The cursor records what EXAMINE reported, a lower bound of what the searches below see: a
        # message arriving meanwhile makes the next STATUS differ, and is then fetched (again).
        uidvalidity = int(selected[b"UIDVALIDITY"])
        exists = int(selected.get(b"EXISTS", status.get(b"MESSAGES", 0)))
        modseq = selected.get(b"HIGHESTMODSEQ") if self._has(b"CONDSTORE") else None
        resync = state is not None and state["uidvalidity"] != uidvalidity
        if resync:
            self.log.warning(
                "folder %s: UIDVALIDITY changed, reading the folder again from the start", folder.name
            )
            state = None
        last_uid = state["last_uid"] if state else 0
        known_flags: dict[int, frozenset[bytes]] = {}
        changed: list[int] = []
        listed: list[int] | None = None
        if state is None:
            new = sorted(client.search("ALL"))
            listed = new
        elif modseq is not None and state["highestmodseq"] is not None:
            # RFC 7162 §3.1.5: every message whose flags changed or that arrived since the last poll.
            touched = client.search(["MODSEQ", state["highestmodseq"] + 1])
            new = sorted(uid for uid in touched if uid > last_uid)
            changed = sorted(uid for uid in touched if uid <= last_uid)
        else:
            # "UID n:*" also matches the highest UID when n is above it (RFC 3501 §6.4.8): filter.
            new = sorted(uid for uid in client.search(f"UID {last_uid + 1}:*") if uid > last_uid)
            known_flags, changed = self._flags_changed(client, state, last_uid)

        # Fewer messages than the cursor's and the new ones make: some left (expunged, moved away). One
        # UID SEARCH ALL then lists what remains; a folder that only grew costs nothing more.
        expunged = state is not None and exists < state["messages"] + len(new)
        vanished: list[int] | None = None
        if expunged:
            assert state is not None
            vanished = self._vanished(client, state, last_uid)
            if vanished is None:
                listed = list(client.search("ALL"))
        fetched = self._fetch(client, folder.role, folder.name, uidvalidity, [*changed, *new], now)
        skipped = {*(state["skipped"] if state else []), *fetched.skipped}
        oldest = self._oldest(client, state, exists, expunged, fetched.dates)
        new_state = ImapState(
            name=folder.name,
            uidvalidity=uidvalidity,
            uidnext=int(selected.get(b"UIDNEXT", status.get(b"UIDNEXT", 0))),
            last_uid=max([last_uid, *new]),  # past skipped messages too: a poison one must not block
            highestmodseq=modseq,
            messages=exists,
            unseen=int(status.get(b"UNSEEN", 0)),
            unanswered=len(client.search("UNANSWERED")),
            oldest=oldest.isoformat() if oldest else None,
            skipped=sorted(skipped)[-MAX_SKIPPED_IN_CURSOR:],
        )
        if modseq is None:
            new_state["flags"] = _flag_sets({**known_flags, **fetched.flags})
        read = _counted(new_state, fetched.events)
        read.resync = resync
        if listed is not None:
            read.remaining = frozenset(f"{folder.name}/{uidvalidity}/{uid}" for uid in listed)
        if vanished:
            read.removed = [f"{folder.name}/{uidvalidity}/{uid}" for uid in vanished]
        return read

    def _vanished(self, client: Any, state: ImapState, last_uid: int) -> list[int] | None:
        """With QRESYNC: the UIDs up to ``last_uid`` expunged since the cursor's HIGHESTMODSEQ (RFC 7162
        §3.2.6, ``VANISHED (EARLIER)``); None when the server cannot say (the caller lists the folder)."""
        imap = getattr(client, "_imap", None)
        modseq = state["highestmodseq"]
        if not self._has(b"QRESYNC") or modseq is None or not last_uid or not isinstance(imap, imaplib.IMAP4):
            return None
        imap.untagged_responses.pop("VANISHED", None)  # unsolicited ones from earlier commands
        try:
            typ, _ = imap.uid("FETCH", f"1:{last_uid}", "(UID)", f"(CHANGEDSINCE {modseq} VANISHED)")
        except IMAPClientAbortError:
            raise
        except IMAPClientError:
            typ = "BAD"
        finally:
            imap.untagged_responses.pop("FETCH", None)  # flag changes: read by SEARCH MODSEQ already
        lines = imap.untagged_responses.pop("VANISHED", [])
        if typ != "OK":
            return None
        uids: set[int] = set()
        for line in lines:
            text = line.decode("ascii", "replace").strip() if isinstance(line, bytes) else str(line)
            if text.upper().startswith("(EARLIER)"):
                text = text[len("(EARLIER)") :].strip()
            try:
                uids |= parse_uid_set(text)
            except ValueError:
                return None
        return sorted(uid for uid in uids if uid <= last_uid)

    def _flags_changed(
        self, client: Any, state: ImapState, last_uid: int
    ) -> tuple[dict[int, frozenset[bytes]], list[int]]:
        """Without CONDSTORE: every known message's FLAGS, and the UIDs whose flags differ from the cursor."""
        known = [uid for uid in client.search(f"UID 1:{last_uid}") if uid <= last_uid] if last_uid else []
        flags_now: dict[int, frozenset[bytes]] = {}
        for batch in _batches(known, self._batch_size):
            for uid, data in client.fetch(list(batch), ["FLAGS"]).items():
                flags_now[uid] = flags_of(data)
        before = {flag: parse_uid_set(uids) for flag, uids in (state.get("flags") or {}).items()}
        after = {flag: parse_uid_set(uids) for flag, uids in _flag_sets(flags_now).items()}
        changed: set[int] = set()
        for flag in before.keys() | after.keys():
            changed |= before.get(flag, set()) ^ after.get(flag, set())
        return flags_now, sorted(uid for uid in changed if uid in flags_now)

    def _oldest(
        self, client: Any, state: ImapState | None, exists: int, expunged: bool, dates: list[datetime]
    ) -> datetime | None:
        """The earliest INTERNALDATE in the folder: carried in the cursor, searched for after expunges."""
        if exists == 0:
            return None
        if state is None:
            if dates:
                return min(dates)
        else:
            oldest = state["oldest"]
            previous = datetime.fromisoformat(oldest) if oldest else None
            candidates = [d for d in (previous, *dates) if d is not None]
            if not expunged and candidates:
                return min(candidates)
        # RFC 5256: SORT ARRIVAL orders by INTERNALDATE, so its first UID is the oldest message.
        uids = list(client.sort(["ARRIVAL"]))[:1] if self._has(b"SORT") else list(client.search("ALL"))
        earliest: datetime | None = None
        for batch in _batches(uids, self._batch_size):
            for data in client.fetch(list(batch), ["INTERNALDATE"]).values():
                when = data.get(b"INTERNALDATE")
                if isinstance(when, datetime):
                    earliest = as_utc(when) if earliest is None else min(earliest, as_utc(when))
        return earliest

    # -- fetching ----------------------------------------------------------------------------------

    def _fetch_items(self) -> list[str]:
        items = ["FLAGS", "INTERNALDATE", HEADER_ITEM]
        if self.config.text_preview:
            items.append(f"BODY.PEEK[TEXT]<0.{TEXT_PREVIEW_BYTES}>")
        if self._has(b"X-GM-EXT-1"):
            items.append("X-GM-THRID")  # Gmail's conversation id
        return items

    def _fetch(
        self, client: Any, role: str, folder: str, uidvalidity: int, uids: Sequence[int], now: datetime
    ) -> _Fetched:
        """Fetch the headers of ``uids`` in batches and turn each message into an event."""
        fetched = _Fetched()
        read = FolderFetch(self.name, role, folder, uidvalidity, self.config.text_preview, now)
        with gc_pause.paused_for(len(uids)):  # the events live on: no collector walking them meanwhile
            for built in self._built(client, read, uids, fetched):
                for one in built:
                    for name, reason in one.problems:
                        self.log.odd_field(f"folder {folder} uid {one.uid}", name, reason)
                    if one.event is None:
                        self._skip(folder, one.uid, one.error, fetched)
                        continue
                    fetched.events.append(one.event)
                    fetched.flags[one.uid] = one.flags
                    if one.internal_date is not None:
                        fetched.dates.append(one.internal_date)
        return fetched

    def _built(
        self, client: Any, read: FolderFetch, uids: Sequence[int], fetched: _Fetched
    ) -> Iterator[list[Built]]:
        """Each batch's messages as events, batch after batch: a large fetch is parsed by the parse workers
        (:mod:`monitor.sources.parse_pool`), a small one in this thread."""
        items = self._fetch_items()
        fast = self._fast_imap(client) is not None
        with parse_pool.leased() if fast and len(uids) >= parse_pool.MIN_MESSAGES else _NO_POOL as pool:
            if pool is not None:
                ramped = _ramped(uids, self._batch_size)
                yield from _WorkerFetch(self, client, pool, read, items, fetched).batches(ramped)
                return
        batches = list(_batches(uids, self._batch_size))
        for answered in self._read_ahead(client, read.folder, batches, items, fetched):
            yield build_events(answered, read)

    def _fast_imap(self, client: Any) -> imaplib.IMAP4 | None:
        """imapclient's own imaplib connection, when FETCH answers are read by the fast parser."""
        imap = getattr(client, "_imap", None) if self.fast_fetch else None
        return imap if isinstance(imap, imaplib.IMAP4) else None

    def _read_ahead(
        self, client: Any, folder: str, batches: Sequence[Sequence[int]], items: list[str], fetched: _Fetched
    ) -> Iterator[dict[int, Any]]:
        """The FETCH answers of ``batches``, one after another: while the caller parses one batch, a
        thread reads the next one (waiting on the server and the socket costs no parsing time).

        Only that thread talks to the server while the caller iterates; an error ends the iteration
        with the batch it came from, as a plain loop would.
        """
        if len(batches) < 2:
            for batch in batches:
                yield self._fetch_batch(client, folder, batch, items, fetched)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fetch-{self.name}") as reader:
            pending = reader.submit(self._fetch_batch, client, folder, batches[0], items, fetched)
            for batch in batches[1:]:
                answered = pending.result()
                pending = reader.submit(self._fetch_batch, client, folder, batch, items, fetched)
                yield answered
            yield pending.result()

    def _fetch_batch(
        self, client: Any, folder: str, uids: Sequence[int], items: list[str], fetched: _Fetched
    ) -> dict[int, Any]:
        got = self._fetch_raw(client, folder, uids, items, fetched)
        if isinstance(got, dict):
            return got
        try:
            return parse_fetch_records(got, uids)
        except FetchParseError as err:
            self._fast_refused(folder, uids, err)
        return self._fetch_batch_imapclient(client, folder, uids, items, fetched)

    def _fetch_raw(
        self, client: Any, folder: str, uids: Sequence[int], items: list[str], fetched: _Fetched
    ) -> list[Any] | dict[int, Any]:
        """The batch's raw FETCH records for the fast parser; imapclient's answers instead when there is no
        fast path or the server refused the fast read."""
        imap = self._fast_imap(client)
        if imap is not None:
            try:
                return self._fetch_records(imap, uids, items)
            except (IMAPClientAbortError, OSError):
                raise
            except IMAPClientError as err:
                self._fast_refused(folder, uids, err)
        return self._fetch_batch_imapclient(client, folder, uids, items, fetched)

    def _fast_refused(self, folder: str, uids: Sequence[int], err: Exception) -> None:
        # Correctness never depends on the fast parser: imapclient reads the batch again.
        self.log.debug(
            "folder %s: fast FETCH of %d messages not usable (%s: %s), using imapclient",
            folder,
            len(uids),
            type(err).__name__,
            str(err)[:200],  # our parser's reasons and the server's words: no message content
        )

    def _fetch_records(self, imap: imaplib.IMAP4, uids: Sequence[int], items: list[str]) -> list[Any]:
        """UID FETCH sent and read by imaplib: its raw records, for :func:`parse_fetch_records`."""
        # The very command imapclient's fetch() sends (same tag sequence, same wire trace).
        message_set = ",".join(str(uid) for uid in uids)
        try:
            with untraced(imap, fetch=True):
                typ, records = imap.uid("FETCH", message_set, "({})".format(" ".join(items).upper()))
        except IMAPClientAbortError:
            raise
        except IMAPClientError:  # BAD: imaplib raises, leaving what was read of the FETCH responses
            imap.untagged_responses.pop("FETCH", None)
            raise
        if typ != "OK":  # NO: imaplib returns it, and leaves the FETCH responses read so far
            imap.untagged_responses.pop("FETCH", None)
            raise IMAPClientError(f"UID FETCH answered {typ}")
        return list(records)

    def _fetch_batch_imapclient(
        self, client: Any, folder: str, uids: Sequence[int], items: list[str], fetched: _Fetched
    ) -> dict[int, Any]:
        try:
            return dict(client.fetch(list(uids), items))
        except (IMAPClientAbortError, OSError):
            raise
        except (IMAPClientError, ValueError, OverflowError) as err:
            if len(uids) == 1:
                self._skip(folder, uids[0], type(err).__name__, fetched)
                return {}
        # One message broke the batch (the server refused it, or its response cannot be parsed):
        # fetch the batch one by one so that only that message is skipped.
        out: dict[int, Any] = {}
        for uid in uids:
            out.update(self._fetch_batch_imapclient(client, folder, [uid], items, fetched))
        return out

    def _skip(self, folder: str, uid: int, error: str, fetched: _Fetched) -> None:
        """``error``: only the exception's type; its text may quote the message (addresses, subject)."""
        self.log.warning("folder %s uid %d: message skipped (%s)", folder, uid, error)
        fetched.skipped.append(uid)


class _WorkerFetch:
    """One large fetch parsed by the parse workers: this thread sends each batch's raw FETCH answers to a
    worker as soon as the reader thread has them and hands the events on in batch order.

    Only the reader thread talks to the server. A batch the fast parser cannot read is fetched again
    through imapclient (by the reader, after what it was asked to read before) and parsed here, as are
    the batches read before the workers were up and every batch once the pool broke.
    """

    AHEAD = 2
    """Batches the reader reads ahead of the one handed to a worker."""

    def __init__(
        self,
        source: ImapSource,
        client: Any,
        pool: parse_pool.ParsePool,
        read: FolderFetch,
        items: list[str],
        fetched: _Fetched,
    ) -> None:
        self.source, self.client = source, client
        self.pool: parse_pool.ParsePool | None = pool
        self.read, self.items, self.fetched = read, items, fetched

    def batches(self, batches: Sequence[Sequence[int]]) -> Iterator[list[Built]]:
        name = f"fetch-{self.source.name}"
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as self._reader:
            reads = deque(self._reader.submit(self._fetch_raw, batch) for batch in batches[: self.AHEAD])
            parsing: deque[tuple[Sequence[int], Any, Future[list[Built]]]] = deque()
            try:
                for index, batch in enumerate(batches):
                    raw = reads.popleft().result()
                    if index + self.AHEAD < len(batches):
                        reads.append(self._reader.submit(self._fetch_raw, batches[index + self.AHEAD]))
                    parsing.append((batch, raw, self._parsing(batch, raw)))
                    while parsing and (len(parsing) > self._in_flight() or parsing[0][2].done()):
                        yield self._result(*parsing.popleft())
                while parsing:
                    yield self._result(*parsing.popleft())
            finally:  # after an error: what was not started yet is not done
                for read in reads:
                    read.cancel()
                for _, _, parsed in parsing:
                    parsed.cancel()

    def _fetch_raw(self, batch: Sequence[int]) -> list[Any] | dict[int, Any]:
        source, read = self.source, self.read
        return source._fetch_raw(self.client, read.folder, batch, self.items, self.fetched)

    def _in_flight(self) -> int:
        """Batches handed on and not yet taken back: one more than the workers, so none waits for work."""
        return self.pool.workers + 1 if self.pool is not None else 1

    def _parsing(self, batch: Sequence[int], raw: list[Any] | dict[int, Any]) -> Future[list[Built]]:
        """The batch handed to a worker; parsed here (a future already done) when no worker can take it."""
        pool = self._ready_pool()
        if pool is not None and not isinstance(raw, dict):
            try:
                return pool.submit(parse_and_build, raw, batch, self.read)
            except BrokenProcessPool as err:
                self._drop(err)
        here: Future[list[Built]] = Future()
        here.set_result(self._here(batch, raw))
        return here

    def _ready_pool(self) -> parse_pool.ParsePool | None:
        """The pool, once its workers are up (None until then, and for good once it broke)."""
        if self.pool is None:
            return None
        error = self.pool.start_error()
        if error is not None:  # the workers could not start: said once, parsed here
            self._drop(error)
            return None
        return self.pool if self.pool.ready() else None

    def _drop(self, err: BaseException) -> None:
        if self.pool is not None:
            parse_pool.broken(self.pool, err)
            self.pool = None

    def _here(self, batch: Sequence[int], raw: list[Any] | dict[int, Any]) -> list[Built]:
        if isinstance(raw, dict):  # imapclient's answers: the fast read was refused
            return build_events(raw, self.read)
        try:
            return parse_and_build(raw, batch, self.read)
        except FetchParseError as err:
            return self._refetched(batch, err)

    def _refetched(self, batch: Sequence[int], err: FetchParseError) -> list[Built]:
        """A batch the fast parser could not read, fetched again through imapclient and parsed here."""
        self.source._fast_refused(self.read.folder, batch, err)
        source, read = self.source, self.read
        again = self._reader.submit(
            source._fetch_batch_imapclient, self.client, read.folder, batch, self.items, self.fetched
        )
        return build_events(again.result(), read)

    def _result(self, batch: Sequence[int], raw: Any, future: Future[list[Built]]) -> list[Built]:
        try:
            return future.result()
        except FetchParseError as err:  # from a worker
            return self._refetched(batch, err)
        except BrokenProcessPool as err:
            self._drop(err)
            return self._here(batch, raw)


@dataclass
class _Fetched:
    """What one folder's fetch produced."""

    events: list[MessageEvent] = field(default_factory=list)
    flags: dict[int, frozenset[bytes]] = field(default_factory=dict)
    dates: list[datetime] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


_NO_POOL: nullcontext[None] = nullcontext()
"""A small fetch's pool: none (parsed in the source's thread)."""


def _quoted_folder(client: Any, folder: str) -> str:
    """A folder name as imapclient sends it: modified UTF-7 (RFC 3501 §5.1.3), then quoted."""
    return _quoted_name(folder, bool(getattr(client, "folder_encode", True)))


@functools.lru_cache(maxsize=1024)
def _quoted_name(folder: str, encode: bool) -> str:
    name = encode_utf7(folder).decode("ascii") if encode else folder
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _counted(state: ImapState, messages: list[MessageEvent]) -> FolderRead[ImapState]:
    oldest = state["oldest"]
    return FolderRead(
        state,
        messages,
        state["messages"],
        state["unseen"],
        state["unanswered"],
        datetime.fromisoformat(oldest) if oldest else None,
    )


def _flag_sets(flags_by_uid: dict[int, frozenset[bytes]]) -> dict[str, str]:
    """flag -> UID set of the messages carrying it (what the cursor keeps without CONDSTORE)."""
    by_flag: dict[str, list[int]] = {}
    for uid, flags in flags_by_uid.items():
        for flag in flags:
            by_flag.setdefault(flag.decode("ascii", "replace"), []).append(uid)
    return {flag: uid_set(uids) for flag, uids in sorted(by_flag.items())}


PLUGIN = SourcePlugin(ImapConfig, ImapSource)
"""The ``imap`` source plugin (entry point ``imap`` of ``replywatch.sources``)."""
