"""What a failed connection means and which setting fixes it, for every network client (issue 8).

IMAP sources, the SMTP notifier and the HTTP sources (Graph, EWS) all fail the same few ways: a certificate
nobody told us to trust, TLS spoken to a clear-text port (or the reverse), nothing listening, a wrong
password. The library's own text (``[SSL: WRONG_VERSION_NUMBER]``, ``b'[AUTHENTICATIONFAILED] ...'``) says
what broke, not what to change; :func:`connection_hint` adds that.
"""

from __future__ import annotations

import errno
import socket
import ssl
from pathlib import Path

IMPLICIT_TLS_PORTS = frozenset({993, 995, 465, 443})
"""Ports where the server expects TLS from the first byte (IMAPS, POP3S, SMTPS, HTTPS)."""


def server_text(value: object) -> str:
    """A server's answer as plain text, without the ``b'...'`` of a bytes value printed as text."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace").strip()
    text = str(value).strip()
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        return text[2:-1].strip()
    return text


def _reason(err: BaseException) -> str:
    """The error's own words, without errno numbers or the ``_ssl.c`` line."""
    if isinstance(err, ssl.SSLError):
        text = getattr(err, "verify_message", None) or err.reason or str(err)
        return str(text).replace("_", " ").lower() if text == err.reason else str(text)
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def connection_hint(
    err: BaseException,
    *,
    host: str,
    port: int,
    tls: str,
    ca_file: Path | str | None = None,
    port_speaks_tls: bool | None = None,
) -> str | None:
    """One sentence saying what ``err`` (raised while connecting) means and which setting to change.

    ``tls`` is the client's mode: ``implicit`` (TLS from the first byte), ``starttls`` or ``none``;
    ``port_speaks_tls`` what :func:`speaks_tls` found after a timeout (None: not probed, the port number
    decides). None when the error is none of the known connection failures.
    """
    where = f"{host}:{port}"
    text = str(err)
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(err, ssl.SSLCertVerificationError):
        detail = _reason(err)
        if "hostname" in detail.lower() or "ip address mismatch" in detail.lower():
            return (
                f"{where}: the server's certificate is not for {host!r} ({detail}); "
                "set `host` to a name the certificate lists"
            )
        if "expired" in detail.lower() or "not yet valid" in detail.lower():
            return f"{where}: the server's certificate is out of date ({detail}); the server must renew it"
        trusted = f"the CAs in ca_file {str(ca_file)!r}" if ca_file else "the system's CAs"
        return (
            f"{where}: the server's certificate is not signed by {trusted} ({detail}); "
            "set `ca_file` to the PEM file of the CA that signed it"
        )
    if "WRONG_VERSION_NUMBER" in text or "UNKNOWN_PROTOCOL" in text or "record layer failure" in text:
        if tls == "implicit":
            return (
                f"{where}: the server did not answer in TLS: `tls: implicit` does not match the port "
                f"({port} greets in clear text); use `tls: starttls` there, or the server's TLS port"
            )
        return f"{where}: the server did not answer in TLS: `tls` does not match the port"
    if isinstance(err, ConnectionRefusedError) or getattr(err, "errno", None) == errno.ECONNREFUSED:
        return f"{where}: connection refused: nothing listens there; check `host` and `port`"
    if isinstance(err, socket.gaierror):
        return f"{host!r}: the name does not resolve ({_reason(err)}); check `host`"
    if isinstance(err, TimeoutError):
        tls_port = port in IMPLICIT_TLS_PORTS if port_speaks_tls is None else port_speaks_tls
        if tls != "implicit" and tls_port:
            return (
                f"{where}: no greeting in clear text: port {port} expects TLS from the first byte; "
                "use `tls: implicit`"
            )
        return f"{where}: no answer in time: check `host`, `port` and the firewall"
    if isinstance(err, OSError) and err.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"{where}: {_reason(err)}; check `host` and the network"
    return None


GREETING_SECONDS = 10.0
"""The longest wait for a server's first words (IMAP servers greet at once)."""


def greeting_timeout(timeout: float) -> float:
    """How long to wait to connect and be greeted: seconds, not the whole command ``timeout``.

    A client speaking clear text to an implicit-TLS port (STARTTLS to 993) waits for a greeting the
    server never sends, since the server waits for a TLS hello; it should fail in seconds and say why.
    """
    return min(timeout, GREETING_SECONDS)


def speaks_tls(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether ``host:port`` answers a TLS hello (a diagnostic after a silent server; sends no secret)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


def login_refused(host: str, username: str, secret_origin: str, server_said: object) -> str:
    """The message of a refused login: who, where the secret came from, and the server's own words."""
    said = server_text(server_said)
    return (
        f"{host} refused the login of {username!r} with the secret from {secret_origin}"
        + (f": {said}" if said else "")
        + "; check the user name and that secret"
    )


def missing_folder(folder: str, host: str, existing: list[str], setting: str = "folders") -> str:
    """A folder that does not exist, with the folders that do (so the right name can be copied)."""
    shown = ", ".join(repr(name) for name in existing[:30])
    more = f" and {len(existing) - 30} more" if len(existing) > 30 else ""
    listing = f"; folders there: {shown}{more}" if existing else ""
    return f"folder {folder!r} not found on {host}{listing}; set `{setting}` to one of them"


def url_hint(
    err: BaseException, url: str, ca_file: Path | str | None = None, setting: str = "url"
) -> str | None:
    """:func:`connection_hint` for an HTTP client's error (httpx, requests), found in its chain of causes;
    ``setting`` names the URL's config key, which replaces ``host`` and ``port`` in the advice."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or url
    tls = "implicit" if parts.scheme == "https" else "none"
    port = parts.port or (443 if tls == "implicit" else 80)
    cause = _root_cause(err)
    if cause is None:
        return None
    hint = connection_hint(cause, host=host, port=port, tls=tls, ca_file=ca_file)
    return (
        hint.replace("`host` and `port`", f"`{setting}`").replace("`host`", f"`{setting}`") if hint else None
    )


def _root_cause(err: BaseException) -> BaseException | None:
    """The first TLS or socket error among ``err``'s causes, contexts, ``reason`` and arguments."""
    seen: set[int] = set()
    queue: list[BaseException] = [err]
    while queue:
        current = queue.pop(0)
        if id(current) in seen or len(seen) > 50:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | ConnectionRefusedError | socket.gaierror | TimeoutError):
            return current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        queue.extend(e for e in linked if isinstance(e, BaseException))
    return None
