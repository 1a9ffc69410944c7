"""replywatch against Dovecot, scraped every second by a real Prometheus with the shipped rules, alerting a
real Alertmanager configured with the shipped route: every dashboard query returns data, and an open breach
fires in Prometheus and arrives in Alertmanager with its team label. The shipped route's receivers and
inhibitions are checked with alerts posted to a real Alertmanager."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config import validate
from monitor.daemon import Daemon
from tests.mailfactory import make_message
from tests.servers.dovecot import DovecotServer, Mailbox
from tests.servers.prometheus import Alertmanager, Prometheus, running, wait_for
from tests.servers.smtp import PASSWORD, USER, SmtpServer
from tests.test_grafana_dashboards import all_expressions, substitute

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES = [
    ROOT / "config/prometheus/replywatch-alerts.yml",
    ROOT / "config/prometheus/replywatch-rules.yml",
]
ALERTMANAGER_CONFIG = ROOT / "config/prometheus/alertmanager.yml"
NOW = datetime.now(UTC).replace(microsecond=0)


def fill(mailbox: Mailbox) -> None:
    """A customer waiting three days (a breach), one answered by a member, one unread (inbox over limit)."""
    mailbox.create_folder("Sent")
    customers = [
        ("late", NOW - timedelta(days=3), ["\\Seen"]),
        ("answered", NOW - timedelta(days=2), ["\\Seen"]),
    ]
    customers.append(("fresh", NOW - timedelta(minutes=30), []))
    for name, date, flags in customers:
        mailbox.append(
            "INBOX",
            make_message(
                msgid=f"{name}@cust.example",
                sender=f"{name}@cust.example",
                to="support@example.com",
                date=date,
            ),
            flags,
        )
    reply = make_message(
        msgid="r1@example.com",
        sender="alice@example.com",
        to="answered@cust.example",
        in_reply_to="answered@cust.example",
        date=NOW - timedelta(days=2) + timedelta(hours=1),
    )
    mailbox.append("Sent", reply, ["\\Seen"])


@pytest.fixture
def daemon(
    dovecot: DovecotServer,
    imap_mailbox: Mailbox,
    smtp_server: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Daemon]:
    fill(imap_mailbox)
    monkeypatch.setenv("E2E_SMTP_PASSWORD", PASSWORD)
    config: dict[str, Any] = {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        # The breach mail goes out through a real SMTP server: the outbox series have data.
        "notifiers": {
            "mail": {
                "kind": "smtp",
                "host": "127.0.0.1",
                "port": smtp_server.port,
                "tls": "starttls",
                "ca_file": str(smtp_server.ca_file),
                "username": USER,
                "password_env": "E2E_SMTP_PASSWORD",
                "from": "replywatch <replywatch@example.com>",
            }
        },
        "sources": {
            "support-inbox": imap_mailbox.imap_settings("implicit"),
            # A source that cannot be read: its error series feed the source-health dashboard.
            "billing-archive": {"kind": "maildir", "path": str(tmp_path / "missing")},
        },
        "teams": {
            "support": {
                "addresses": ["support@example.com"],
                "internal_domains": ["example.com"],
                "members": [{"name": "Alice", "email": ["alice@example.com"]}],
                "member_metrics": True,
                "sources": ["support-inbox"],
                # Business hours without a calendar: always open, so the late customer's three days are
                # three days of business time too; the team exports its 24-hour target.
                "rules": [
                    {"kind": "reply_within", "within": "24h", "warn_before": "2h"},
                    {"kind": "inbox_nearly_empty", "max_unread": 0},
                ],
                "notify": {"via": "mail", "escalation": [{"at": "breach", "to": ["team"]}]},
            },
            "billing": {"sources": ["billing-archive"], "rules": [{"kind": "reply_within", "within": "8h"}]},
        },
    }
    d = Daemon(validate(config), listen=("127.0.0.1", 0))
    d.store.upgrade()
    d.http.start()
    d._apply_sources()
    d.poll_source("support-inbox")
    d.poll_source("billing-archive")
    d.evaluate()
    d.dispatch()
    assert [r.rcpt_tos for r in smtp_server.received] == [["alice@example.com"]]
    yield d
    d.stop()


def firing(alerts: list[dict[str, Any]], name: str, team: str) -> dict[str, Any] | None:
    """The firing alert ``name`` of ``team`` among Prometheus's alerts, if any."""
    for alert in alerts:
        labels = alert["labels"]
        if labels.get("alertname") == name and labels.get("team") == team and alert["state"] == "firing":
            return alert
    return None


def test_dashboards_and_alerts_against_real_prometheus_and_alertmanager(
    daemon: Daemon, tmp_path: Path
) -> None:
    manager = Alertmanager(tmp_path, ALERTMANAGER_CONFIG)
    with running(manager):
        prometheus = Prometheus(
            tmp_path, f"127.0.0.1:{daemon.http.port}", RULE_FILES, f"127.0.0.1:{manager.port}"
        )
        with running(prometheus):

            def logs() -> str:
                return prometheus.log() + "\n" + manager.log()

            # The open reply_within breach fires at Prometheus's first evaluations, with its team label ...
            alert = wait_for(
                "ReplywatchCustomersPastDeadline to fire in /api/v1/alerts",
                lambda: firing(prometheus.alerts(), "ReplywatchCustomersPastDeadline", "support"),
                30.0,
                logs,
            )
            assert alert["labels"]["rule"] == "reply_within"
            assert float(alert["value"]) == 1.0
            # ... and so does the unread inbox.
            wait_for(
                "ReplywatchInboxOverLimit to fire",
                lambda: firing(prometheus.alerts(), "ReplywatchInboxOverLimit", "support"),
                30.0,
                logs,
            )

            # Both arrive in Alertmanager, with the team label it groups by.
            def delivered() -> list[dict[str, Any]] | None:
                names = {
                    (a["labels"]["alertname"], a["labels"].get("team"))
                    for a in manager.alerts()
                    if a["status"]["state"] == "active"
                }
                wanted = {
                    ("ReplywatchCustomersPastDeadline", "support"),
                    ("ReplywatchInboxOverLimit", "support"),
                }
                return manager.alerts() if wanted <= names else None

            received = wait_for(
                "the alerts to arrive in Alertmanager's /api/v2/alerts", delivered, 30.0, logs
            )
            assert all(a["labels"].get("team") != "billing" for a in received if "team" in a["labels"])

            # Several scrapes exist by now, so rates and increases have two samples: every query of every
            # dashboard parses and returns data, with the dashboard's variables substituted.
            def scrapes() -> float:
                result = prometheus.query('count_over_time(up{job="replywatch"}[1m])')["result"]
                return float(result[0]["value"][1]) if result else 0.0

            wait_for("five scrapes of replywatch", lambda: True if scrapes() >= 5 else None, 30.0, logs)
            empty: dict[str, str] = {}
            for where, expr in all_expressions().items():
                data = prometheus.query(substitute(expr))
                if not data["result"]:
                    empty[where] = substitute(expr)
            assert empty == {}, "dashboard queries without data:\n" + "\n".join(
                f"{k}: {v}" for k, v in empty.items()
            )

            # The team's own target colours the wait: three days against 24 business hours is 300 %.
            def panel_value(title: str) -> dict[str, float]:
                expr = all_expressions()[f"replywatch-team / {title} / A"]
                found = prometheus.query(substitute(expr))["result"]
                return {r["metric"].get("channel", ""): float(r["value"][1]) for r in found}

            share = panel_value("Longest wait, share of the team's target (business hours)")
            assert share.keys() == {"email"} and 3.0 <= share["email"] < 3.01, share
            assert panel_value("The team's target (business hours)") == {"email": 24.0}
            # Of the two decided customers (one answered in an hour, one three days late), one on time.
            assert panel_value("Answered within the team's target, last 7 days") == {"email": 0.5}
            assert panel_value("Figures up to date (every source read)") == {"": 1.0}
            # The breach mail went out: the outbox alert is not even pending.
            sent = prometheus.query('replywatch_notifications_total{notifier="mail",outcome="sent"}')
            assert [float(r["value"][1]) for r in sent["result"]] == [1.0]
            outbox = [a for a in prometheus.alerts() if a["labels"]["alertname"] == "ReplywatchOutboxStuck"]
            assert outbox == []
            # billing's only source cannot be read: its incomplete-team alert is pending (for 15m), and
            # only billing's.
            incomplete = [
                (a["labels"]["team"], a["state"])
                for a in prometheus.alerts()
                if a["labels"]["alertname"] == "ReplywatchTeamIncomplete"
            ]
            assert incomplete == [("billing", "pending")]


def post_alerts(manager: Alertmanager, alerts: list[dict[str, str]]) -> None:
    """Send alerts with these labels to Alertmanager as Prometheus does (``POST /api/v2/alerts``)."""
    body = json.dumps([{"labels": labels} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{manager.url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def test_shipped_route_groups_by_team_and_holds_back_alerts_of_incomplete_teams(tmp_path: Path) -> None:
    """The shipped alertmanager.yml: waiting and inbox alerts of a team judged on incomplete data are
    inhibited, only for that team and that replywatch; breach alerts never are; replywatch's own health goes
    to its admins."""
    manager = Alertmanager(tmp_path, ALERTMANAGER_CONFIG)
    with running(manager):
        a, b = {"job": "replywatch", "instance": "a:9687"}, {"job": "replywatch", "instance": "b:9687"}
        sent = {
            "billing incomplete": a | {"alertname": "ReplywatchTeamIncomplete", "team": "billing"},
            "billing late": a | {"alertname": "ReplywatchCustomersPastDeadline", "team": "billing"},
            "billing waiting": a | {"alertname": "ReplywatchCustomerWaitingTooLong", "team": "billing"},
            "billing inbox": a | {"alertname": "ReplywatchInboxOverLimit", "team": "billing"},
            # Another team of the same replywatch, and the same team name on another replywatch.
            "support late": a | {"alertname": "ReplywatchCustomersPastDeadline", "team": "support"},
            "billing late on b": b | {"alertname": "ReplywatchCustomersPastDeadline", "team": "billing"},
            "source down": a | {"alertname": "ReplywatchSourceDown", "source": "billing-mail"},
            "outbox stuck": a | {"alertname": "ReplywatchOutboxStuck", "notifier": "mail"},
            "expired": a | {"alertname": "ReplywatchNotificationsExpired", "notifier": "mail"},
        }
        post_alerts(manager, list(sent.values()))

        def by_name() -> dict[str, dict[str, Any]] | None:
            held = {}
            for alert in manager.alerts():
                for name, labels in sent.items():
                    if labels.items() <= alert["labels"].items():
                        held[name] = alert
            return held if set(held) == set(sent) else None

        alerts = wait_for("Alertmanager to hold every alert sent", by_name, 30.0, manager.log)
        states = {name: alert["status"]["state"] for name, alert in alerts.items()}
        assert states == {
            "billing incomplete": "active",
            "billing late": "active",
            "billing waiting": "suppressed",
            "billing inbox": "suppressed",
            "support late": "active",
            "billing late on b": "active",
            "source down": "active",
            "outbox stuck": "active",
            "expired": "active",
        }
        incomplete = alerts["billing incomplete"]["fingerprint"]
        assert alerts["billing waiting"]["status"]["inhibitedBy"] == [incomplete]
        assert alerts["billing late"]["status"]["inhibitedBy"] == []
        receivers = {name: [r["name"] for r in alert["receivers"]] for name, alert in alerts.items()}
        admins = {"source down", "outbox stuck", "expired"}
        assert receivers == {
            name: ["replywatch-admins"] if name in admins else ["service-desk"] for name in sent
        }
