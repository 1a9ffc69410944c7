"""The webhook notifier: a real Alertmanager shows the alert; JSON, Slack and Teams shapes as posted."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.exporters.notifiers.base import AlertItem, Delivery, NotifierError, ReportDelivery
from monitor.exporters.notifiers.webhook import WebhookConfig, WebhookNotifier
from tests.servers.alertmanager import Alertmanager

T = datetime.now(UTC).replace(microsecond=0)


def delivery(level: str = "breach", unreadable: tuple[str, ...] = ()) -> Delivery:
    item = AlertItem(
        breach_id=42,
        step="breach+4h" if level == "breach" else level,
        rule="reply_within",
        level=level,
        at=T,
        subject="Where is order 17?",
        customer="carol@cust.example",
        waiting_since=T.replace(hour=0),
        due_at=T,
        owner="Bob",
        unreadable=unreadable,
    )
    return Delivery("support", "lead", (item,), "replywatch.abc", "https://grafana.example.com/d/x")


def webhook(url: str, fmt: str) -> WebhookNotifier:
    return WebhookNotifier(
        "hook", WebhookConfig.model_validate({"kind": "webhook", "url": url, "format": fmt})
    )


def test_alertmanager_shows_the_alert(alertmanager: Alertmanager) -> None:
    webhook(f"{alertmanager.url}/api/v2/alerts", "alertmanager").send(delivery())
    [alert] = alertmanager.alerts()
    assert alert["labels"] == {
        "alertname": "ReplywatchBreach",
        "team": "support",
        "rule": "reply_within",
        "severity": "critical",
        "breach": "42",
        "step": "breach",
    }
    assert alert["annotations"]["summary"] == "Where is order 17?"
    assert alert["annotations"]["owner"] == "Bob"
    assert alert["status"]["state"] == "active"
    assert alert["generatorURL"] == "https://grafana.example.com/d/x"


def test_alertmanager_rejects_nonsense_with_a_refused_error(alertmanager: Alertmanager) -> None:
    with pytest.raises(NotifierError) as caught:
        webhook(f"{alertmanager.url}/api/v2/nothing-here", "alertmanager").send(delivery())
    assert caught.value.reason == "refused"


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[Any] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append((self.headers["Idempotency-Key"], json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[Any]]]:
    _Recorder.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Recorder.bodies
    finally:
        server.shutdown()
        server.server_close()


def test_plain_json(recorder: tuple[str, list[Any]]) -> None:
    url, bodies = recorder
    webhook(url, "json").send(delivery())
    [(key, body)] = bodies
    assert key == "replywatch.abc"
    assert body["team"] == "support"
    assert body["items"][0]["subject"] == "Where is order 17?"
    assert body["items"][0]["step"] == "breach+4h"


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_chat_webhooks_get_the_alert_text(recorder: tuple[str, list[Any]], fmt: str) -> None:
    url, bodies = recorder
    webhook(url, fmt).send(delivery())
    [(_, body)] = bodies
    assert "[replywatch] support: 1 customer past the deadline" in json.dumps(body)
    assert "Where is order 17?" in body["text"]


def test_unreachable_endpoint() -> None:
    with pytest.raises(NotifierError) as caught:
        webhook("http://127.0.0.1:9/hook", "json").send(delivery())
    assert caught.value.reason == "unreachable"


def test_plain_http_only_to_loopback() -> None:
    with pytest.raises(ValidationError, match="http:// is allowed only to this machine"):
        WebhookConfig.model_validate({"kind": "webhook", "url": "http://hooks.example.com/x"})
    WebhookConfig.model_validate({"kind": "webhook", "url": "https://hooks.example.com/x", "format": "slack"})


def test_alertmanager_alert_names_the_mailbox_that_could_not_be_read(alertmanager: Alertmanager) -> None:
    webhook(f"{alertmanager.url}/api/v2/alerts", "alertmanager").send(delivery(unreadable=("sales-inbox",)))
    [alert] = alertmanager.alerts()
    assert alert["annotations"]["unreadable"] == "sales-inbox"


def test_json_and_chat_alerts_name_the_mailbox_that_could_not_be_read(
    recorder: tuple[str, list[Any]],
) -> None:
    url, bodies = recorder
    webhook(url, "json").send(delivery(unreadable=("sales-inbox", "pbx")))
    webhook(url, "slack").send(delivery(unreadable=("sales-inbox",)))
    webhook(url, "json").send(delivery())
    [(_, as_json), (_, as_slack), (_, complete)] = bodies
    assert as_json["items"][0]["unreadable"] == ["sales-inbox", "pbx"]
    assert "judged on incomplete data: could not read sales-inbox" in as_slack["text"]
    assert complete["items"][0]["unreadable"] == []


def report(key: str = "replywatch.report.1") -> ReportDelivery:
    return ReportDelivery(
        team="support", period="2026-10", recipient="lead", subject="[replywatch] support, October 2026: 90%",
        text="# support: October 2026", html="<p>x</p>", images={"response": b"png"},
        data={"team": "support", "channels": [{"channel": "email", "items": 3}]}, key=key, at=T,
    )  # fmt: skip


def test_reports_post_their_figures_or_text(
    recorder: tuple[str, list[Any]], alertmanager: Alertmanager
) -> None:
    url, bodies = recorder
    webhook(url, "json").send_report(report())
    webhook(url, "teams").send_report(report())
    [(key, as_json), (_, as_teams)] = bodies
    assert key == "replywatch.report.1"
    assert as_json == {"report": "2026-10", "key": "replywatch.report.1", "team": "support",
                       "channels": [{"channel": "email", "items": 3}]}  # fmt: skip
    assert as_teams == {"title": "[replywatch] support, October 2026: 90%", "text": "# support: October 2026"}
    with pytest.raises(NotifierError, match="an alertmanager webhook cannot carry reports"):
        webhook(f"{alertmanager.url}/api/v2/alerts", "alertmanager").send_report(report())
    assert alertmanager.alerts() == []
