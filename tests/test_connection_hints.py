"""``check-config --probe`` against a real Dovecot says what is wrong and which setting fixes it (issue 8).

Every message is the whole line the user reads on stderr, checked word for word where it is ours.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from monitor.cli import main
from monitor.sources.hints import connection_hint, server_text
from tests.servers.dovecot import HOST, DovecotServer, Mailbox, free_port


def probe(tmp_path: Path, settings: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "replywatch.yaml"
    path.write_text(
        yaml.safe_dump({"sources": {"mail": settings}, "teams": {"support": {"sources": ["mail"]}}}),
        encoding="utf-8",
    )
    code = main(["check-config", "-c", str(path), "--probe"])
    out = capsys.readouterr()
    return code, out.err.strip()


def test_a_certificate_of_another_ca_says_set_ca_file(
    imap_mailbox: Mailbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    settings = imap_mailbox.imap_settings("implicit") | {"ca_file": str(other_ca)}
    code, err = probe(tmp_path, settings, capsys)
    assert code == 2
    port = settings["port"]
    assert err == (
        f"sources.mail: connecting to {HOST}:{port}: the server's certificate is not signed by the CAs in "
        f"ca_file {str(other_ca)!r} (unable to get local issuer certificate); set `ca_file` to the PEM file "
        "of the CA that signed it"
    )


def test_implicit_tls_on_the_clear_text_port_says_tls_does_not_match(
    imap_mailbox: Mailbox, dovecot: DovecotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = imap_mailbox.imap_settings("implicit") | {"port": dovecot.imap_port}
    code, err = probe(tmp_path, settings, capsys)
    assert code == 2
    assert err == (
        f"sources.mail: connecting to {HOST}:{dovecot.imap_port}: the server did not answer in TLS: "
        f"`tls: implicit` does not match the port ({dovecot.imap_port} greets in clear text); use "
        "`tls: starttls` there, or the server's TLS port"
    )


def test_starttls_to_the_tls_port_fails_in_seconds_and_says_use_implicit(
    imap_mailbox: Mailbox, dovecot: DovecotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = imap_mailbox.imap_settings("starttls") | {"port": dovecot.imaps_port, "timeout": "60s"}
    started = time.monotonic()
    code, err = probe(tmp_path, settings, capsys)
    elapsed = time.monotonic() - started
    assert code == 2
    assert err == (
        f"sources.mail: connecting to {HOST}:{dovecot.imaps_port}: no greeting in clear text: port "
        f"{dovecot.imaps_port} expects TLS from the first byte; use `tls: implicit`"
    )
    assert elapsed < 20, f"took {elapsed:.0f} s: the greeting wait must be seconds, not the 60 s timeout"


def test_a_closed_port_says_refused(
    imap_mailbox: Mailbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    code, err = probe(tmp_path, imap_mailbox.imap_settings("implicit") | {"port": port}, capsys)
    assert code == 2
    assert err == (
        f"sources.mail: connecting to {HOST}:{port}: connection refused: nothing listens there; "
        "check `host` and `port`"
    )


def test_a_wrong_password_names_its_file_and_prints_no_bytes(
    imap_mailbox: Mailbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    code, err = probe(tmp_path, imap_mailbox.imap_settings() | {"password_file": str(wrong)}, capsys)
    assert code == 2
    assert err == (
        f"sources.mail: {HOST} refused the login of {imap_mailbox.user!r} with the secret from "
        f"password_file {str(wrong)!r}: [AUTHENTICATIONFAILED] Authentication failed.; check the user "
        "name and that secret"
    )
    assert "b'" not in err and "not-the-password" not in err


def test_a_wrong_password_names_its_variable(
    imap_mailbox: Mailbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORT_IMAP_PASSWORD", "not-the-password")
    settings = {k: v for k, v in imap_mailbox.imap_settings().items() if k != "password_file"}
    code, err = probe(tmp_path, settings | {"password_env": "SUPPORT_IMAP_PASSWORD"}, capsys)
    assert code == 2
    assert err == (
        f"sources.mail: {HOST} refused the login of {imap_mailbox.user!r} with the secret from "
        "password_env 'SUPPORT_IMAP_PASSWORD': [AUTHENTICATIONFAILED] Authentication failed.; check the "
        "user name and that secret"
    )


def test_a_missing_folder_lists_the_folders_that_exist(
    imap_mailbox: Mailbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imap_mailbox.create_folder("Sent")
    imap_mailbox.create_folder("Archive")
    settings = imap_mailbox.imap_settings() | {"folders": {"inbox": "Inbx", "sent": "Sent"}}
    code, err = probe(tmp_path, settings, capsys)
    assert code == 2
    assert err == (
        f"sources.mail: folder 'Inbx' not found on {HOST}; folders there: 'Archive', 'INBOX', 'Sent'; set "
        "`folders` to one of them"
    )


def test_a_folder_marked_junk_is_refused(
    imap_mailbox: Mailbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imap_mailbox.create_folder("Sent")
    imap_mailbox.create_folder("Quarantine")  # \Junk by special_use in the server's config
    settings = imap_mailbox.imap_settings() | {"folders": {"sent": "Sent", "extra": ["Quarantine"]}}
    code, err = probe(tmp_path, settings, capsys)
    assert code == 2
    assert err == (
        f"sources.mail: folder 'Quarantine' on {HOST} is marked \\Junk: 'Quarantine' is a junk (spam) "
        "folder: replywatch never reads one, since every spam in it would count as a customer waiting; "
        "watch the inbox instead"
    )
    # The same mailbox without it probes fine: the refusal is about that folder only.
    settings["folders"] = {"sent": "Sent"}
    assert probe(tmp_path, settings, capsys) == (0, "")


# --- the hint itself, for the other clients that share it -------------------------------------------


def test_hints_for_errors_as_other_clients_raise_them() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    assert connection_hint(refused, host="smtp.example.com", port=587, tls="starttls") == (
        "smtp.example.com:587: connection refused: nothing listens there; check `host` and `port`"
    )
    assert connection_hint(TimeoutError("timed out"), host="imap.example.com", port=993, tls="starttls") == (
        "imap.example.com:993: no greeting in clear text: port 993 expects TLS from the first byte; "
        "use `tls: implicit`"
    )
    assert connection_hint(ValueError("odd"), host="h", port=1, tls="none") is None
    assert server_text(b"[AUTHENTICATIONFAILED] Failed.") == "[AUTHENTICATIONFAILED] Failed."
    assert server_text("b'[AUTHENTICATIONFAILED] Failed.'") == "[AUTHENTICATIONFAILED] Failed."


def test_a_real_wrong_version_error_gets_the_tls_hint(dovecot: DovecotServer) -> None:
    context = ssl.create_default_context()
    with (
        socket.create_connection((HOST, dovecot.imap_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError) as caught,
    ):
        context.wrap_socket(raw, server_hostname=HOST)
    hint = connection_hint(caught.value, host=HOST, port=dovecot.imap_port, tls="implicit")
    assert hint is not None and "`tls: implicit` does not match the port" in hint


# --- after --probe: who writes from the team's Sent folder --------------------------------------------


def _sent(sender: str, n: int) -> bytes:
    return (
        f"From: {sender}\r\nTo: customer@example.net\r\nSubject: Re: order {n}\r\n"
        f"Message-ID: <s{n}@example.com>\r\nDate: Mon, 16 Nov 2026 10:00:00 +0000\r\n\r\nDone.\r\n"
    ).encode()


def test_sent_mail_from_an_address_nobody_declared_is_a_warning(
    imap_mailbox: Mailbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imap_mailbox.create_folder("Sent")
    for n, sender in enumerate(
        ["Alice <alice@example.com>", "support@example.com", "Bob <bob@example.com>", "bob@example.com"]
    ):
        imap_mailbox.append("Sent", _sent(sender, n))
    team = {
        "addresses": ["support@example.com"],
        "members": [{"name": "Alice", "email": ["alice@example.com"]}],
        "sources": ["mail"],
    }
    path = tmp_path / "replywatch.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "sources": {"mail": imap_mailbox.imap_settings() | {"folders": {"sent": "Sent"}}},
                "teams": {"support": team},
            }
        ),
        encoding="utf-8",
    )
    assert main(["check-config", "-c", str(path), "--probe"]) == 0  # a warning, not an error
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "sources.mail: ok",
        "warning: teams.support: 2 of the last 4 messages in the Sent folder of source 'mail' come from "
        "bob@example.com, which is neither a member's nor a team address: those replies are credited to "
        "nobody; add it to a member's `email` or to `addresses`",
    ]
    # Declared, the warning goes.
    team["members"].append({"name": "Bob", "email": ["bob@example.com"]})  # type: ignore[attr-defined]
    path.write_text(
        yaml.safe_dump(
            {
                "sources": {"mail": imap_mailbox.imap_settings() | {"folders": {"sent": "Sent"}}},
                "teams": {"support": team},
            }
        ),
        encoding="utf-8",
    )
    assert main(["check-config", "-c", str(path), "--probe"]) == 0
    assert capsys.readouterr().out.splitlines() == ["sources.mail: ok"]


def _handshake_error(cert: Any, ca: trustme.CA) -> tuple[ssl.SSLError, int]:
    """The error a verifying client gets from a real TLS server presenting ``cert``."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError):
            server_context.wrap_socket(conn, server_side=True)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    try:
        with (
            socket.create_connection((HOST, port), timeout=10) as raw,
            pytest.raises(ssl.SSLCertVerificationError) as caught,
        ):
            client_context.wrap_socket(raw, server_hostname=HOST)
    finally:
        thread.join(timeout=10)
        listener.close()
    return caught.value, port


def test_a_certificate_for_another_name_says_set_host() -> None:
    ca = trustme.CA()
    err, port = _handshake_error(ca.issue_cert("mail.other.example"), ca)
    assert connection_hint(err, host=HOST, port=port, tls="implicit") == (
        f"{HOST}:{port}: the server's certificate is not for {HOST!r} (IP address mismatch, certificate is "
        f"not valid for '{HOST}'.); set `host` to a name the certificate lists"
    )


def test_an_expired_certificate_is_the_servers_to_renew() -> None:
    ca = trustme.CA()
    past = datetime.now(UTC) - timedelta(days=10)
    cert = ca.issue_cert(HOST, not_before=past - timedelta(days=30), not_after=past)
    err, port = _handshake_error(cert, ca)
    assert connection_hint(err, host=HOST, port=port, tls="implicit", ca_file="/etc/ca.pem") == (
        f"{HOST}:{port}: the server's certificate is out of date (certificate has expired); the server must "
        "renew it"
    )
