"""Reports by mail through a real SMTP server (aiosmtpd, STARTTLS, AUTH): ``report --send`` and the
daemon's scheduled report, once per period and recipient, in the team's business hours, through an outage
and a restart. Tests parse what arrived."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main
from monitor.config import validate
from monitor.daemon import Daemon
from monitor.store.outbox import Outbox
from tests.report_month import Month, month_config, write_month
from tests.servers.smtp import PASSWORD, USER, SmtpServer
from tests.test_daemon import Clock

RECIPIENTS = ["alice@example.com", "bob@example.com", "ops@example.com"]
"""lead (Alice Smith), the member Bob Jones by name, an address."""


def report_config(month: Month, smtp: SmtpServer, store_url: str) -> dict[str, Any]:
    config = month_config(
        month, store_url, report={"every": "month", "to": ["lead", "Bob Jones", "ops@example.com"],
                                  "per_member": True},
    )  # fmt: skip
    config["notifiers"] = {
        "mail": {
            "kind": "smtp",
            "host": "127.0.0.1",
            "port": smtp.port,
            "tls": "starttls",
            "ca_file": str(smtp.ca_file),
            "username": USER,
            "password_env": "REPORT_SMTP_PASSWORD",
            "from": "replywatch <replywatch@example.com>",
        }
    }
    config["teams"]["support"]["notify"] = {"via": "mail", "escalation": [{"at": "breach", "to": ["owner"]}]}
    return config


def poll(config: dict[str, Any], at: datetime) -> None:
    daemon = Daemon(validate(config), clock=Clock(at), listen=("127.0.0.1", 0))
    try:
        daemon.store.upgrade()
        daemon._apply_sources()
        assert daemon.poll_source("support-inbox") and daemon.poll_source("pbx")
    finally:
        daemon.stop()


def check_report_mail(message: EmailMessage, recipient: str) -> dict[str, str]:
    """The parts of one report mail, after checking its headers and structure."""
    assert message["To"] == recipient
    assert message["From"] == "replywatch <replywatch@example.com>"
    assert re.fullmatch(r"\[replywatch\] support, October 2026: \d+% answered on time", message["Subject"])
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert re.fullmatch(r"<replywatch\.report\.[0-9a-f]{32}@example\.com>", message["Message-ID"])
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()  # type: ignore[misc]
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, *images = related.get_payload()
    assert html.get_content_type() == "text/html"
    body = html.get_content()
    cids = sorted(re.findall(r'src="cid:([^"]+)"', body))
    assert cids == ["response", "waiting"]
    assert sorted(i["Content-ID"] for i in images) == ["<response>", "<waiting>"]
    for image in images:
        assert image.get_content_type() == "image/png"
        assert image.get_content_disposition() == "inline"
        assert image.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    assert "data:image" not in body  # mail clients show cid: parts, not data: URIs
    return {"text": plain.get_content(), "html": body, "id": message["Message-ID"]}


def test_report_send_mails_each_recipient_once(
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REPORT_SMTP_PASSWORD", PASSWORD)
    month = write_month(tmp_path)
    config = report_config(month, smtp_server, f"sqlite:///{tmp_path / 'rw.db'}")
    poll(config, datetime(2026, 11, 20, tzinfo=UTC))
    path = tmp_path / "replywatch.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    base = ["report", "-c", str(path), "--team", "support", "--period", "2026-10"]
    assert main([*base, "--format", "json", "--out", str(tmp_path / "r.json")]) == 0
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    capsys.readouterr()

    assert main([*base, "--send"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{r}: sent" for r in RECIPIENTS]
    received = smtp_server.received
    assert [r.rcpt_tos for r in received] == [[r] for r in RECIPIENTS]
    parts = [check_report_mail(r.message, to) for r, to in zip(received, RECIPIENTS, strict=True)]
    assert len({p["id"] for p in parts}) == 3  # one Message-ID per recipient
    email = next(c for c in data["channels"] if c["channel"] == "email")
    share = f"{round(100 * email['on_time_share'])}%"
    for p in parts:
        assert f"| On time | {share} |" in p["text"]
        assert f">{share}<" in p["html"]
        assert "Chloé Martin" in p["text"]  # per_member: true
    assert received[0].message["Subject"].endswith(f"{round(100 * _overall(data))}% answered on time")

    # Sent once per period: again is a no-op that says so.
    assert main([*base, "--send"]) == 0
    assert "sent before; nothing sent again" in capsys.readouterr().out
    assert len(smtp_server.received) == 3
    # A period that has not ended cannot be sent.
    assert main(["report", "-c", str(path), "--team", "support", "--period", "2099-01", "--send"]) == 1
    assert "has not ended yet" in capsys.readouterr().err


def _overall(data: dict[str, Any]) -> float:
    on_time = sum(c["answered_on_time"] for c in data["channels"])
    decided = sum(c["answered_on_time"] + c["answered_late"] + c["breached"] for c in data["channels"])
    return float(on_time / decided)


def test_scheduled_report_goes_out_once_in_business_hours_through_an_outage_and_a_restart(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REPORT_SMTP_PASSWORD", PASSWORD)
    month = write_month(tmp_path)
    config = report_config(month, smtp_server, f"sqlite:///{tmp_path / 'rw.db'}")
    poll(config, datetime(2026, 11, 1, tzinfo=UTC))
    monday_early = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)  # London opens at 09:00 (GMT)

    clock = Clock(monday_early)
    daemon = Daemon(validate(config), clock=clock, listen=("127.0.0.1", 0))

    def dispatch_fresh() -> None:
        """Poll every source first: a report waits while its team's sources are not read."""
        for source in ("support-inbox", "pbx"):
            daemon.poll_source(source)
        daemon.dispatch()

    try:
        daemon.store.upgrade()
        daemon._apply_sources()
        dispatch_fresh()
        outbox = Outbox(daemon.store)
        assert outbox.reports("support") == [("2026-10", r, "pending") for r in RECIPIENTS]
        assert smtp_server.received == []  # owed, not yet due: the team is closed

        smtp_server.stop()
        clock.now = datetime(2026, 11, 2, 9, 0, 30, tzinfo=UTC)
        dispatch_fresh()
        assert outbox.reports("support") == [("2026-10", r, "pending") for r in RECIPIENTS]
        assert daemon.dispatcher.snapshot() == {("mail", "failed"): 3}

        smtp_server.start()
        clock.now += timedelta(minutes=5)  # past the first retry wait
        dispatch_fresh()
        assert outbox.reports("support") == [("2026-10", r, "sent") for r in RECIPIENTS]
    finally:
        daemon.stop()
    received = smtp_server.received
    assert [r.rcpt_tos for r in received] == [[r] for r in RECIPIENTS]
    first_ids = [check_report_mail(r.message, to)["id"] for r, to in zip(received, RECIPIENTS, strict=True)]

    # A restart, later in November: the October report is not owed again; December's is not due yet.
    restarted = Daemon(validate(config), clock=Clock(datetime(2026, 11, 16, 10, tzinfo=UTC)),
                       listen=("127.0.0.1", 0))  # fmt: skip
    try:
        restarted.dispatch()
        assert len(smtp_server.received) == 3
        assert Outbox(restarted.store).reports("support") == [("2026-10", r, "sent") for r in RECIPIENTS]
    finally:
        restarted.stop()
    # `report --send` for the same period finds it sent (same rows, same Message-IDs had it gone again).
    path = tmp_path / "replywatch.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    assert main(["report", "-c", str(path), "--team", "support", "--period", "2026-10", "--send"]) == 0
    assert len(smtp_server.received) == 3 and len(set(first_ids)) == 3
