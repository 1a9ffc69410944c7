"""The smtp notifier against a real SMTP server on loopback (STARTTLS, AUTH): what arrives, and failures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.exporters.notifiers.base import AlertItem, Delivery, NotifierError
from monitor.exporters.notifiers.smtp import SmtpConfig, SmtpNotifier
from tests.servers.smtp import PASSWORD, USER, SmtpServer

T = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)


def item(n: int, level: str = "breach", owner: str | None = "Bob") -> AlertItem:
    return AlertItem(
        breach_id=n,
        step=level,
        rule="reply_within",
        level=level,
        at=T,
        subject=f"Order {n} <late> & lost",
        customer=f"carol{n}@cust.example",
        waiting_since=datetime(2026, 11, 16, 7, 0, tzinfo=UTC),
        due_at=datetime(2026, 11, 16, 15, 0, tzinfo=UTC),
        owner=owner,
    )


def delivery(*items: AlertItem, recipient: str = "bob@example.com") -> Delivery:
    return Delivery(
        team="support",
        recipient=recipient,
        items=items,
        key="replywatch.0123abcd",
        dashboard_url="https://grafana.example.com/d/replywatch-team?var-team=support",
        timezone="Europe/London",
    )


def notifier(server: SmtpServer, monkeypatch: pytest.MonkeyPatch, **over: object) -> SmtpNotifier:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    raw: dict[str, object] = {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": server.port,
        "tls": "starttls",
        "ca_file": str(server.ca_file),
        "username": USER,
        "password_env": "TEST_SMTP_PASSWORD",
        "from": "replywatch <replywatch@example.com>",
        "reply_to": "support-leads@example.com",
        **over,
    }
    return SmtpNotifier("mail", SmtpConfig.model_validate(raw))


def test_one_message_lists_every_item_with_automatic_mail_headers(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier(smtp_server, monkeypatch).send(delivery(item(1), item(2), item(3, "warning")))
    [got] = smtp_server.received
    msg = got.message
    assert got.rcpt_tos == ["bob@example.com"]
    assert msg["To"] == "bob@example.com"
    assert msg["From"] == "replywatch <replywatch@example.com>"
    assert msg["Reply-To"] == "support-leads@example.com"
    assert (
        msg["Subject"]
        == "[replywatch] support: 2 customers past the deadline, 1 customer close to the deadline"
    )
    assert msg["Message-ID"] == "<replywatch.0123abcd@example.com>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for n in (1, 2, 3):
        assert f"Order {n} <late> & lost" in text
        assert f"Order {n} &lt;late&gt; &amp; lost" in html
        assert f"carol{n}@cust.example" in text and f"carol{n}@cust.example" in html
    assert "2 customers of support waited past the deadline" in text
    assert "waiting since Mon 16 Nov 2026 07:00 GMT | due Mon 16 Nov 2026 15:00 GMT | owner: Bob" in text
    assert 'href="https://grafana.example.com/d/replywatch-team?var-team=support"' in html
    assert "<late>" not in html


def test_a_deployment_overrides_the_templates(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "alert.txt.j2").write_text("Dear {{ team }}: {{ overdue|length }} late.\n")
    notifier(smtp_server, monkeypatch, templates=str(tmp_path)).send(delivery(item(1)))
    [got] = smtp_server.received
    assert got.message.get_body(("plain",)).get_content().strip() == "Dear support: 1 late."  # type: ignore[union-attr]
    assert "Order 1" in got.message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_wrong_password_is_an_auth_error(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    mail = notifier(smtp_server, monkeypatch)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    with pytest.raises(NotifierError) as caught:
        mail.send(delivery(item(1)))
    assert caught.value.reason == "auth"
    assert "wrong" not in str(caught.value)
    assert str(caught.value) == (
        f"auth: 127.0.0.1 refused the login of {USER!r} with the secret from password_env "
        "'TEST_SMTP_PASSWORD': 535 5.7.8 Authentication credentials invalid; check the user name and that "
        "secret"
    )
    assert smtp_server.received == []


def test_unverified_certificate_is_refused(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    mail = notifier(smtp_server, monkeypatch, ca_file=None)
    with pytest.raises(NotifierError) as caught:
        mail.send(delivery(item(1)))
    assert caught.value.reason in {"protocol", "unreachable"}
    assert "CERTIFICATE_VERIFY_FAILED" in repr(caught.value.__cause__)
    assert str(caught.value).endswith(
        f"127.0.0.1:{smtp_server.port}: the server's certificate is not signed by the system's CAs "
        "(unable to get local issuer certificate); set `ca_file` to the PEM file of the CA that signed it"
    )
    assert smtp_server.received == []


def test_server_down_is_unreachable(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    mail = notifier(smtp_server, monkeypatch)
    smtp_server.stop()
    with pytest.raises(NotifierError) as caught:
        mail.send(delivery(item(1)))
    assert caught.value.reason == "unreachable"
    assert str(caught.value) == (
        f"unreachable: 127.0.0.1:{smtp_server.port}: connection refused: nothing listens there; check "
        "`host` and `port`"
    )


def test_plain_smtp_only_to_loopback() -> None:
    base = {"kind": "smtp", "tls": "none", "from": "rw@example.com"}
    SmtpConfig.model_validate({**base, "host": "localhost"})
    with pytest.raises(ValidationError, match="tls: none is allowed only to a relay on this machine"):
        SmtpConfig.model_validate({**base, "host": "smtp.example.com"})
    with pytest.raises(ValidationError, match="invalid address"):
        SmtpConfig.model_validate({**base, "host": "localhost", "from": "nobody"})


def test_a_relay_answering_quit_oddly_still_delivered_once(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay accepts the message, then answers QUIT with 250 instead of 221: the delivery succeeded
    (an error would make the outbox send the same alert again at every dispatch run)."""
    smtp_server.handler.quit_reply = "250 bye"
    notifier(smtp_server, monkeypatch).send(delivery(item(1)))
    assert len(smtp_server.received) == 1


def test_a_resolved_notice_says_how_the_item_ended(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A breach that resolved because the customer's mail was deleted is not reported as answered."""
    from dataclasses import replace

    answered = replace(item(1, "resolved"), closed_by="answered")
    removed = replace(item(2, "resolved"), closed_by="removed")
    notifier(smtp_server, monkeypatch).send(delivery(answered, removed))
    [got] = smtp_server.received
    for part in ("plain", "html"):
        body = got.message.get_body((part,)).get_content()  # type: ignore[union-attr]
        assert "carol1@cust.example), answered Mon 16 Nov 2026 15:00 GMT" in body, body
        assert "carol2@cust.example), mail deleted or moved away Mon 16 Nov 2026 15:00 GMT" in body, body
