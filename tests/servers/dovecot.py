"""A real Dovecot IMAP server run as a child process on free loopback ports, for tests and benchmarks.

``DovecotServer`` writes a self-contained config (temp ``base_dir``, Maildir++ mailboxes, a passwd-file
for users, a trustme CA and server certificate), starts ``dovecot -F -c <config>`` and waits until a
login succeeds. Users can be added while it runs (passwd-file is re-read when it changes), which is how
``new_mailbox()`` hands every test an empty account.

Run as root (CI), Dovecot refuses to run login processes as root and to access mail as root
("Mail access not allowed for root", and passwd-file rejects UID 0), so the services use Debian's
``dovecot``/``dovenull`` users and mail belongs to ``nobody``; run as anyone else, everything runs as
that user.
"""

from __future__ import annotations

import contextlib
import grp
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import trustme
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

HOST = "127.0.0.1"
SENT_SPECIAL_USE = ("Sent", "Replies")
"""Folder names the config marks ``\\Sent`` (RFC 6154); ``Replies`` has no common Sent name on purpose."""
SEPARATOR = "/"
_MAILDIR_FLAG_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")

TlsMode = Literal["implicit", "starttls", "none"]


class DovecotError(RuntimeError):
    """Dovecot could not be started or stopped; the message carries its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def dovecot_binary() -> str:
    """The dovecot executable, or a DovecotError saying how to install it."""
    found = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
    )
    if not found:
        raise DovecotError(
            "dovecot is not installed: run scripts/test-servers.sh (Debian package dovecot-imapd)"
        )
    return found


@dataclass(frozen=True)
class _Identity:
    """Which system users Dovecot's services and the mail files run as."""

    internal_user: str
    internal_group: str
    login_user: str
    mail_uid: int
    mail_gid: int

    @classmethod
    def for_current_user(cls) -> _Identity:
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            return cls(me, group, me, os.geteuid(), os.getegid())
        try:
            internal = pwd.getpwnam("dovecot")
            pwd.getpwnam("dovenull")
            nobody = pwd.getpwnam("nobody")
        except KeyError as err:
            raise DovecotError(
                f"system user {err.args[0]} is missing: dovecot-core creates 'dovecot' and 'dovenull' "
                "when installed (run scripts/test-servers.sh)"
            ) from err
        return cls("dovecot", grp.getgrgid(internal.pw_gid).gr_name, "dovenull", nobody.pw_uid, nobody.pw_gid)


@dataclass
class Mailbox:
    """One account on a running :class:`DovecotServer`, with helpers that act as a mail client would."""

    server: DovecotServer
    user: str
    password: str

    @property
    def password_file(self) -> Path:
        """A file holding this account's password (for ``password_file:`` settings)."""
        return self.server.root / "secrets" / self.user

    def imap_settings(self, tls: TlsMode = "implicit") -> dict[str, Any]:
        """Connection settings in the shape of an ``imap`` source config (host, port, tls, ca_file...)."""
        return self.server.imap_settings(self.user, tls)

    def client(self, tls: TlsMode = "implicit") -> IMAPClient:
        """A logged-in admin connection of this user (close it, or use it in a ``with``)."""
        return self.server.client(self.user, tls)

    def append(
        self,
        folder: str,
        message: bytes,
        flags: Sequence[str] = (),
        internal_date: datetime | None = None,
    ) -> int:
        """APPEND a message; return its UID."""
        return self.server.append(self.user, folder, message, flags, internal_date)

    def flags(self, folder: str) -> dict[int, frozenset[str]]:
        """UID -> flags of every message in ``folder`` (read with EXAMINE, without ``\\Recent``)."""
        return self.server.flags(self.user, folder)

    def add_flags(self, folder: str, uids: Sequence[int], flags: Sequence[str]) -> None:
        """Set flags on messages as another client would (STORE +FLAGS)."""
        self.server.add_flags(self.user, folder, uids, flags)

    def create_folder(self, name: str) -> None:
        """CREATE a folder (``Sent`` and ``Replies`` get the ``\\Sent`` special-use)."""
        self.server.create_folder(self.user, name)

    def delete_folder(self, name: str) -> None:
        """DELETE a folder with its messages."""
        self.server.delete_folder(self.user, name)

    def uidvalidity(self, folder: str) -> int:
        """The folder's current UIDVALIDITY."""
        with self.client() as client:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def write_messages(self, folder: str, messages: Iterable[tuple[bytes, Sequence[str], datetime]]) -> int:
        """Write messages straight into the folder's Maildir (fast bulk load); return how many."""
        return self.server.write_messages(self.user, folder, messages)


class DovecotServer:
    """A Dovecot instance of its own: config, users, mail and certificates under one temp directory."""

    def __init__(
        self, root: Path | None = None, *, spare_mailboxes: int = 64, start_timeout: float = 20.0
    ) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="replywatch-dovecot-")) if root is None else root
        # Dovecot's own users must be able to walk to base_dir, the passwd-file and the mail.
        self.root.chmod(0o755)
        self.identity = _Identity.for_current_user()
        self.host = HOST
        self.imap_port = free_port()
        """Plain IMAP port (STARTTLS, or no TLS on loopback)."""
        self.imaps_port = free_port()
        """Implicit-TLS port (like 993)."""
        self.start_timeout = start_timeout
        self.ca = trustme.CA()
        self.ca_file = self.root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        cert = self.ca.issue_cert(HOST, "localhost")
        cert.private_key_pem.write_to_path(str(self.root / "server.key"))
        with open(self.root / "server.pem", "wb") as fh:
            for blob in cert.cert_chain_pems:
                fh.write(blob.bytes())
        self.passwords: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        for sub in ("run", "state", "secrets"):
            (self.root / sub).mkdir(exist_ok=True)
        (self.root / "secrets").chmod(0o700)
        self.mail_root.mkdir(exist_ok=True)
        os.chown(self.mail_root, self.identity.mail_uid, self.identity.mail_gid)
        self.config_file = self.root / "dovecot.conf"
        self.config_file.write_text(self._config())
        self.add_user("probe")
        # passwd-file is re-read at most once a second, so accounts handed out while the server runs are
        # created up front; new_mailbox() falls back to adding one and waiting when they run out.
        self._spare = [self.add_user(f"user{n:04d}") for n in range(1, spare_mailboxes + 1)]
        self._numbers = itertools.count(spare_mailboxes + 1)
        self._deliveries = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def mail_root(self) -> Path:
        """Where every user's Maildir lives (``<mail_root>/<user>``)."""
        return self.root / "mail"

    @property
    def log_file(self) -> Path:
        """Dovecot's log."""
        return self.root / "dovecot.log"

    def _config(self) -> str:
        ident = self.identity
        sent = "\n".join(f"  mailbox {name} {{\n    special_use = \\Sent\n  }}" for name in SENT_SPECIAL_USE)
        # A junk folder known only by its attribute (RFC 6154 \Junk), under a name no list of junk names has.
        sent += "\n  mailbox Quarantine {\n    special_use = \\Junk\n  }"
        return f"""# Written by tests/servers/dovecot.py; one instance per test session.
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = replywatch-test-{self.imap_port}
protocols = imap
listen = {HOST}
log_path = {self.log_file}
auth_verbose = yes
# A refused login answers at once (the default waits 2 s), so wrong-password tests stay fast.
auth_failure_delay = 0
default_internal_user = {ident.internal_user}
default_internal_group = {ident.internal_group}
default_login_user = {ident.login_user}
first_valid_uid = {ident.mail_uid}
first_valid_gid = {ident.mail_gid}
default_process_limit = 400
default_client_limit = 4000
mail_max_userip_connections = 100
mail_location = maildir:~
mail_fsync = never
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
ssl = yes
ssl_cert = <{self.root}/server.pem
ssl_key = <{self.root}/server.key
ssl_min_protocol = TLSv1.2
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.root}/passwd
}}
namespace inbox {{
  inbox = yes
  separator = {SEPARATOR}
{sent}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No auth penalty: failed logins from 127.0.0.1 (wrong-password tests) must not slow later ones.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

    def start(self) -> None:
        """Start Dovecot (same ports and mail as before) and wait until a login succeeds."""
        if self.running:
            return
        stdout = open(self.root / "dovecot.stdout", "ab")  # noqa: SIM115 - the child keeps it open
        try:
            self.process = subprocess.Popen(
                [dovecot_binary(), "-F", "-c", str(self.config_file)],
                stdout=stdout,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            stdout.close()
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise DovecotError(
                    f"dovecot exited with status {self.process.returncode} before accepting logins:\n"
                    + self.log_text()
                )
            try:
                with self.client("probe", "none", timeout=2) as client:
                    client.noop()
                return
            except (OSError, IMAPClientError) as err:
                last_error = err
                time.sleep(0.05)
        self.stop()
        raise DovecotError(
            f"dovecot did not accept a login on {HOST}:{self.imap_port} within {self.start_timeout:.0f}s "
            f"(last error: {last_error!r}):\n" + self.log_text()
        )

    @property
    def running(self) -> bool:
        """True while the Dovecot master process runs."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop Dovecot and its children; connected clients see the server go away."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        # Children (imap, imap-login, auth) share the master's process group: make sure none outlives it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def restart(self) -> None:
        """Stop and start again on the same ports with the same mail."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory (when this object created it)."""
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_text(self, limit: int = 20_000) -> str:
        """The end of Dovecot's log and console output."""
        parts = []
        for path in (self.log_file, self.root / "dovecot.stdout"):
            if path.exists():
                parts.append(path.read_text(errors="replace")[-limit:])
        return "\n".join(parts) or "(dovecot wrote no log)"

    # -- accounts ----------------------------------------------------------------------------------

    def add_user(self, user: str, password: str | None = None) -> Mailbox:
        """Add an account (usable at once: passwd-file is re-read when it changes)."""
        password = password or f"{user}-pw"
        home = self.mail_root / user
        ident = self.identity
        with open(self.root / "passwd", "a", encoding="utf-8") as fh:
            fh.write(f"{user}:{{PLAIN}}{password}:{ident.mail_uid}:{ident.mail_gid}::{home}::\n")
        (self.root / "passwd").chmod(0o644)
        (self.root / "secrets" / user).write_text(password + "\n", encoding="utf-8")
        self.passwords[user] = password
        return Mailbox(self, user, password)

    def new_mailbox(self) -> Mailbox:
        """A fresh, empty account with a unique name."""
        if self._spare:
            return self._spare.pop(0)
        mailbox = self.add_user(f"user{next(self._numbers):04d}")
        if self.running:
            self._wait_for_login(mailbox.user)
        return mailbox

    def _wait_for_login(self, user: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.client(user, "none", timeout=2):
                    return
            except IMAPClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def imap_settings(self, user: str, tls: TlsMode = "implicit") -> dict[str, Any]:
        """Settings in the shape of an ``imap`` source config for ``user``."""
        return {
            "kind": "imap",
            "host": HOST,
            "port": self.imaps_port if tls == "implicit" else self.imap_port,
            "tls": tls,
            "ca_file": str(self.ca_file),
            "username": user,
            "password_file": str(self.root / "secrets" / user),
        }

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's CA."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def client(self, user: str, tls: TlsMode = "implicit", *, timeout: float = 10) -> IMAPClient:
        """A logged-in connection for ``user``."""
        if tls == "implicit":
            client = IMAPClient(
                HOST, self.imaps_port, ssl=True, ssl_context=self.ssl_context(), timeout=timeout
            )
        else:
            client = IMAPClient(HOST, self.imap_port, ssl=False, timeout=timeout)
            if tls == "starttls":
                client.starttls(self.ssl_context())
        try:
            client.login(user, self.passwords[user])
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        return client

    # -- mail --------------------------------------------------------------------------------------

    def append(
        self,
        user: str,
        folder: str,
        message: bytes,
        flags: Sequence[str] = (),
        internal_date: datetime | None = None,
    ) -> int:
        """APPEND ``message`` to ``folder``; return its UID (from APPENDUID, RFC 4315)."""
        with self.client(user) as client:
            response = client.append(folder, message, flags=list(flags), msg_time=internal_date)
        found = _APPENDUID.search(response)
        if not found:
            raise AssertionError(f"APPEND to {folder!r} returned no APPENDUID: {response!r}")
        return int(found.group(2))

    def flags(self, user: str, folder: str) -> dict[int, frozenset[str]]:
        """UID -> flags of every message in ``folder``, read with EXAMINE; ``\\Recent`` left out."""
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
        return {
            uid: frozenset(f.decode() for f in data[b"FLAGS"] if f != b"\\Recent")
            for uid, data in fetched.items()
        }

    def add_flags(self, user: str, folder: str, uids: Sequence[int], flags: Sequence[str]) -> None:
        """STORE +FLAGS from a separate connection, as a colleague's mail client would."""
        with self.client(user) as client:
            client.select_folder(folder)
            client.add_flags(list(uids), list(flags))

    def create_folder(self, user: str, name: str) -> None:
        """CREATE ``name`` for ``user``."""
        with self.client(user) as client:
            client.create_folder(name)

    def delete_folder(self, user: str, name: str) -> None:
        """DELETE ``name`` for ``user``."""
        with self.client(user) as client:
            client.delete_folder(name)

    def maildir(self, user: str, folder: str) -> Path:
        """The Maildir++ directory of ``folder`` (INBOX is the user's root)."""
        base = self.mail_root / user
        if folder.upper() == "INBOX":
            return base
        return base / ("." + folder.replace(SEPARATOR, "."))

    def write_messages(
        self, user: str, folder: str, messages: Iterable[tuple[bytes, Sequence[str], datetime]]
    ) -> int:
        """Write ``(raw, flags, internal_date)`` messages straight into ``cur/``; Dovecot assigns UIDs.

        Much faster than APPEND for thousands of messages. Maildir keeps INTERNALDATE in the file's
        mtime and the flags in the name's ``:2,`` info (https://cr.yp.to/proto/maildir.html).
        """
        ident = self.identity
        base = self.mail_root / user
        target = self.maildir(user, folder)
        created = [p for p in (base, target) if not p.exists()]
        for sub in ("cur", "new", "tmp"):
            (target / sub).mkdir(parents=True, exist_ok=True)
        for path in [*created, target / "cur", target / "new", target / "tmp"]:
            os.chown(path, ident.mail_uid, ident.mail_gid)
        stamp = int(time.time())
        count = 0
        for raw, flags, internal_date in messages:
            count += 1
            letters = "".join(sorted(_MAILDIR_FLAG_LETTERS[f] for f in flags))
            unique = f"{stamp}.M{next(self._deliveries)}P{os.getpid()}.replywatch,S={len(raw)}"
            # Written in tmp/ and renamed: a reader never sees half a message.
            path = target / "tmp" / unique
            path.write_bytes(raw)
            when = internal_date.astimezone(UTC).timestamp()
            os.utime(path, (when, when))
            os.chown(path, ident.mail_uid, ident.mail_gid)
            path.rename(target / "cur" / f"{unique}:2,{letters}")
        return count


@contextlib.contextmanager
def running_dovecot() -> Iterator[DovecotServer]:
    """Start a Dovecot for the duration of a ``with`` block."""
    server = DovecotServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


# --- pytest fixtures (imported by tests/conftest.py) ----------------------------------------------


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One running Dovecot for the whole session; a failed start fails the tests with Dovecot's log."""
    with running_dovecot() as server:
        yield server


@pytest.fixture
def imap_mailbox(dovecot: DovecotServer) -> Iterator[Mailbox]:
    """An empty account of its own on the session's Dovecot (the server is running again afterwards)."""
    yield dovecot.new_mailbox()
    if not dovecot.running:  # a test that stopped the server leaves it usable for the next one
        dovecot.start()
