"""The outbox on SQLite and PostgreSQL: rows written with their transitions, once each; the dispatcher
cancels what is no longer true, expires what cannot be delivered (one error line), and sends the rest."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.breaches import BecameBreach, Opened, Resolved
from monitor.calendar import BusinessCalendar
from monitor.config import Config, validate
from monitor.escalation import Member, NotifyConfig
from monitor.exporters.outbox import Dispatcher, build_notifiers
from monitor.rules.base import Level
from monitor.store.db import Store
from monitor.store.outbox import Outbox
from tests.servers.smtp import PASSWORD, USER, SmtpServer

T = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
ALWAYS = BusinessCalendar.always_open()
MEMBERS = [Member("Alice", "alice@example.com", lead=True), Member("Bob", "bob@example.com")]
NOTIFY = NotifyConfig.model_validate(
    {
        "via": "mail",
        "escalation": [
            {"at": "warning", "to": ["owner"]},
            {"at": "breach", "to": ["owner", "team"]},
            {"at": "breach+1h", "to": ["lead"]},
        ],
        "expire_after": "1h",
    }
)


def config(smtp: SmtpServer, **team: Any) -> Config:
    raw: dict[str, Any] = {
        "notifiers": {
            "mail": {
                "kind": "smtp",
                "host": "127.0.0.1",
                "port": smtp.port,
                "ca_file": str(smtp.ca_file),
                "username": USER,
                "password_env": "OUTBOX_SMTP_PASSWORD",
                "from": "rw@example.com",
            }
        },
        "teams": {
            "support": {
                "members": [
                    {"name": "Alice", "email": ["alice@example.com"], "role": "lead"},
                    {"name": "Bob", "email": ["bob@example.com"]},
                ],
                "notify": NOTIFY.model_dump(),
                **team,
            }
        },
    }
    return validate(raw, check_secrets=False).config


def apply(outbox: Outbox, store: Store, transitions: list[Any], now: datetime) -> None:
    def owe(conn: Any, ts: Any) -> None:
        outbox.owe(
            conn, ts, team="support", notify=NOTIFY, members=MEMBERS, calendar=ALWAYS, addressed=True, now=now
        )

    store.apply_transitions(transitions, then=owe)


def test_rows_are_written_once_per_breach_step_and_recipient(store: Store) -> None:
    outbox = Outbox(store)
    apply(
        outbox, store, [Opened("support", "reply_within", "m1", Level.WARNING, T, T + timedelta(hours=2))], T
    )
    [breach] = store.open_breaches("support")
    apply(
        outbox, store, [BecameBreach(breach.id, "support", "reply_within", "m1", T + timedelta(hours=2))], T
    )
    # The same transition again (a re-run after a crash) owes nothing new.
    with store.engine.begin() as conn:
        outbox.owe(
            conn,
            [BecameBreach(breach.id, "support", "reply_within", "m1", T + timedelta(hours=2))],
            team="support",
            notify=NOTIFY,
            members=MEMBERS,
            calendar=ALWAYS,
            addressed=True,
            now=T,
        )
    assert outbox.all() == [
        (breach.id, "warning", "alice@example.com", "mail", "pending"),  # no owner on record: the team
        (breach.id, "warning", "bob@example.com", "mail", "pending"),
        (breach.id, "breach", "alice@example.com", "mail", "pending"),
        (breach.id, "breach", "bob@example.com", "mail", "pending"),
        (breach.id, "breach+1h", "alice@example.com", "mail", "pending"),
    ]
    assert outbox.pending_counts() == {"mail": 5}
    assert [n.step for n in outbox.due(T + timedelta(hours=2))] == ["warning", "warning", "breach", "breach"]


def test_dispatcher_cancels_stale_expires_undeliverable_and_sends_the_rest(
    store: Store, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OUTBOX_SMTP_PASSWORD", PASSWORD)
    outbox = Outbox(store)
    cfg = config(smtp_server)
    dispatcher = Dispatcher(outbox, lambda: cfg, build_notifiers(cfg))
    apply(
        outbox, store, [Opened("support", "reply_within", "m1", Level.WARNING, T, T + timedelta(hours=2))], T
    )
    [breach] = store.open_breaches("support")
    at = T + timedelta(hours=2)
    apply(outbox, store, [BecameBreach(breach.id, "support", "reply_within", "m1", at)], at)

    # The warning never went out and is no longer true: cancelled, not sent.
    smtp_server.stop()
    assert dispatcher.run(at) == 0
    assert [o for *_, o in outbox.all()] == ["cancelled"] * 2 + ["pending"] * 3
    assert dispatcher.snapshot() == {("mail", "cancelled"): 2, ("mail", "failed"): 2}

    # An hour later the relay is still down: the breach rows expire with one error line.
    caplog.clear()
    later = at + timedelta(hours=1, minutes=1)
    assert dispatcher.run(later) == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["alerts expired undelivered"] * 2  # one per recipient
    assert dispatcher.snapshot()[("mail", "expired")] == 2

    # The lead's step (due at breach+1h) goes out once the relay is back; the resolution cancels nothing sent.
    smtp_server.start()
    assert dispatcher.run(later + timedelta(minutes=1)) == 1
    assert [r.rcpt_tos for r in smtp_server.received] == [["alice@example.com"]]
    apply(outbox, store, [Resolved(breach.id, "support", "reply_within", "m1", Level.BREACH, later)], later)
    assert dispatcher.run(later + timedelta(minutes=2)) == 0
    assert [o for *_, o in outbox.all()] == ["cancelled"] * 2 + ["expired"] * 2 + ["sent"]
    assert outbox.pending_counts() == {}


def test_a_breach_judged_on_incomplete_data_says_which_mailbox_could_not_be_read(
    store: Store, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTBOX_SMTP_PASSWORD", PASSWORD)
    outbox = Outbox(store)
    cfg = config(smtp_server)
    dispatcher = Dispatcher(outbox, lambda: cfg, build_notifiers(cfg))
    opened = Opened("support", "reply_within", "m1", Level.BREACH, T, T, unreadable=("sales-inbox", "pbx"))
    apply(outbox, store, [opened, Opened("support", "reply_within", "m2", Level.BREACH, T, T)], T)
    rows = outbox.due(T)
    assert sorted({row.unreadable for row in rows}) == ["", "sales-inbox pbx"]
    assert dispatcher.run(T) == 4  # two breaches to each of two recipients, one message each
    for received in smtp_server.received:
        text = received.message.get_body(preferencelist=("plain",))
        html = received.message.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        # Only the breach judged on incomplete data carries the line, naming both sources.
        assert text.get_content().count("judged on incomplete data: could not read sales-inbox, pbx") == 1
        assert html.get_content().count("replywatch could not read sales-inbox, pbx") == 1


def test_report_rows_are_owed_once_per_team_period_and_recipient(store: Store) -> None:
    outbox = Outbox(store)
    due = T + timedelta(hours=1)
    assert (
        outbox.owe_report("support", "mail", "2026-10", ["alice@example.com", "ops@example.com"], due, T) == 2
    )
    # Owed again (the next run, a restart, `report --send`): nothing new, the first due time stays.
    again = Outbox(store)
    assert again.owe_report("support", "mail", "2026-10", ["alice@example.com"], T, T) == 0
    assert again.owe_report("support", "mail", "2026-W44", ["alice@example.com"], due, T) == 1
    assert again.owe_report("sales", "mail", "2026-10", ["alice@example.com"], due, T) == 1
    assert outbox.due_reports(T) == []
    assert [(r.team, r.period, r.recipient) for r in outbox.due_reports(due, "support", "2026-10")] == [
        ("support", "2026-10", "alice@example.com"),
        ("support", "2026-10", "ops@example.com"),
    ]
    assert outbox.due(due) == []  # alerts only: report rows belong to no breach
    assert outbox.pending_counts() == {"mail": 4}
    assert outbox.reports("support") == [
        ("2026-10", "alice@example.com", "pending"),
        ("2026-10", "ops@example.com", "pending"),
        ("2026-W44", "alice@example.com", "pending"),
    ]


def test_a_period_ended_long_ago_is_not_owed(store: Store, smtp_server: SmtpServer) -> None:
    """Reports turned on (or a first start) weeks after the last period ended: that report is not owed at
    all, rather than owed and dropped as expired (which counts as a failed delivery and alerts admins).
    A period that ended within the expiry is owed once."""
    from monitor.exporters.reports.build import owe_scheduled_reports

    with_report = config(smtp_server, report={"every": "month", "to": ["lead"]})
    outbox = Outbox(store)
    owe_scheduled_reports(outbox, with_report, datetime(2026, 11, 20, 10, tzinfo=UTC))
    assert outbox.reports("support") == []
    owe_scheduled_reports(outbox, with_report, datetime(2026, 12, 2, 10, tzinfo=UTC))
    assert outbox.reports("support") == [("2026-11", "alice@example.com", "pending")]


def test_a_report_waits_while_its_team_is_incomplete(
    store: Store, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A report is sent once and never corrected: while a source of the team is not read, it is held (no
    attempt, no failure counted), and goes out once the team is complete again."""
    monkeypatch.setenv("OUTBOX_SMTP_PASSWORD", PASSWORD)
    cfg = config(smtp_server, report={"every": "month", "to": ["lead"]})
    outbox = Outbox(store)
    dispatcher = Dispatcher(outbox, lambda: cfg, build_notifiers(cfg))
    due = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert outbox.owe_report("support", "mail", "2026-11", ["alice@example.com"], due, due) == 1
    with caplog.at_level(logging.INFO):
        for minutes in (0, 1):
            assert dispatcher.run(due + timedelta(minutes=minutes), incomplete={"support"}) == 0
    assert smtp_server.received == []
    assert outbox.reports("support") == [("2026-11", "alice@example.com", "pending")]
    assert [r.message for r in caplog.records].count("report held until the team's sources are read") == 1
    assert dispatcher.counts == Counter()
    assert dispatcher.run(due + timedelta(hours=1)) == 1
    assert [r.rcpt_tos for r in smtp_server.received] == [["alice@example.com"]]
    assert outbox.reports("support") == [("2026-11", "alice@example.com", "sent")]
