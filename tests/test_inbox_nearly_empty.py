"""Rule ``inbox_nearly_empty``: its limits, check-config's refusal of counts a source lacks, and a real
Dovecot mailbox going over its limits, back under, and over again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sqlmodel import Session, select

from monitor.calendar import BusinessCalendar
from monitor.config import ConfigError, validate
from monitor.daemon import Daemon
from monitor.events import MailboxSnapshot, folder_role
from monitor.rules.base import RULES, Finding, Level, TeamView
from monitor.rules.inbox_nearly_empty import InboxNearlyEmpty, InboxNearlyEmptyConfig
from monitor.sources.imap import ImapConfig
from monitor.store.models import Breach
from tests.mailfactory import make_message
from tests.servers.dovecot import DovecotServer, Mailbox

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
CALENDAR = BusinessCalendar.from_config("Europe/London", {"mon-fri": "09:00-17:00"})


def rule(**settings: Any) -> InboxNearlyEmpty:
    config = RULES.get("inbox_nearly_empty").config.model_validate({"kind": "inbox_nearly_empty", **settings})
    assert isinstance(config, InboxNearlyEmptyConfig)
    return InboxNearlyEmpty(config)


def snap(
    folder: str = "inbox", *, total: int = 0, unseen: int = 0, unanswered: int = 0, **kw: Any
) -> MailboxSnapshot:
    return MailboxSnapshot(kw.get("source", "mail"), folder, T0, total, unseen, unanswered, kw.get("oldest"))


def judge(r: InboxNearlyEmpty, *snaps: MailboxSnapshot, now: datetime = T0) -> list[Finding]:
    return r.evaluate(TeamView("support", CALENDAR, (), snaps), now)


def test_each_limit_breaches_only_when_exceeded() -> None:
    r = rule(max_messages=5, max_unread=0, max_unanswered=2)
    assert [f.level for f in judge(r, snap(total=5, unanswered=2))] == [Level.OK]
    for over in (snap(total=6), snap(unseen=1), snap(unanswered=3)):
        (finding,) = judge(r, over)
        assert (finding.level, finding.subject, finding.since, finding.once) == (
            Level.BREACH,
            "mail/inbox",
            T0,
            False,
        )


def test_only_the_watched_folders_of_the_named_source_are_judged() -> None:
    r = rule(source="mail", folders=["inbox", "Archive"], max_messages=0)
    found = judge(r, snap(total=1), snap("sent", total=9), snap("Archive"), snap(source="other", total=9))
    assert [(f.subject, f.level) for f in found] == [("mail/inbox", Level.BREACH), ("mail/Archive", Level.OK)]


def test_a_source_reading_several_mailboxes_has_each_inbox_judged_by_its_role() -> None:
    """Graph and EWS name a folder ``<mailbox>/<role>`` when they read several mailboxes."""
    assert folder_role("sales@example.com/inbox") == "inbox"
    assert (folder_role("inbox"), folder_role("Support/Escalations")) == ("inbox", "Support/Escalations")
    snaps = (
        snap("support@example.com/inbox", total=3, source="m365"),
        snap("sales@example.com/inbox", source="m365"),
        snap("support@example.com/sent", total=9, source="m365"),
    )
    found = judge(rule(max_messages=0), *snaps)
    assert [(f.subject, f.level) for f in found] == [
        ("m365/support@example.com/inbox", Level.BREACH),
        ("m365/sales@example.com/inbox", Level.OK),
    ]
    (one,) = judge(rule(max_messages=0, folders=["sales@example.com/inbox"]), *snaps)
    assert (one.subject, one.level) == ("m365/sales@example.com/inbox", Level.OK)


def test_max_age_in_wall_time_and_in_business_hours() -> None:
    friday_4pm = datetime(2026, 10, 30, 16, 0, tzinfo=UTC)  # London is on GMT again
    old = snap(total=1, oldest=friday_4pm)
    wall = rule(max_age="4h")
    (f,) = judge(wall, old, now=T0)
    assert (f.level, f.since) == (Level.BREACH, friday_4pm + timedelta(hours=4))
    business = rule(max_age="4h", business_hours=True)
    # One business hour on Friday, then three from Monday 09:00: too old at 12:00, not yet at 09:00.
    assert judge(business, old, now=T0)[0].level is Level.OK
    (f,) = judge(business, old, now=T0 + timedelta(hours=3, minutes=1))
    assert (f.level, f.since) == (Level.BREACH, T0 + timedelta(hours=3))
    assert judge(wall, snap(total=0), now=T0)[0].level is Level.OK  # an empty folder has no age


def test_settings_need_a_limit_and_are_strict() -> None:
    with pytest.raises(ValidationError, match="set at least one of max_messages"):
        InboxNearlyEmptyConfig.model_validate({"kind": "inbox_nearly_empty"})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        InboxNearlyEmptyConfig.model_validate({"kind": "inbox_nearly_empty", "max_unread": -1})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        InboxNearlyEmptyConfig.model_validate({"kind": "inbox_nearly_empty", "max_mesages": 3})


def config_with(limits: dict[str, Any]) -> dict[str, Any]:
    return {
        "sources": {
            "mail": {"kind": "imap", "host": "imap.example.com", "username": "u", "password_env": "P"}
        },
        "teams": {
            "support": {
                "sources": ["mail"],
                "rules": [{"kind": "inbox_nearly_empty", **limits}],
            }
        },
    }


def test_a_limit_on_a_count_the_source_cannot_give_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {"max_messages": 5, "max_unread": 0, "max_unanswered": 1, "max_age": "2d"}
    validate(config_with(limits), env={"P": "x"})
    # A source (like a Graph mailbox without counts) that reports only how many messages a folder holds.
    monkeypatch.setattr(ImapConfig, "mailbox_counts", frozenset({"messages"}))
    with pytest.raises(ConfigError) as err:
        validate(config_with(limits), env={"P": "x"})
    assert err.value.errors == [
        "teams.support.rules[0].max_unread: source 'mail' (kind imap) cannot count 'unseen'; "
        "remove max_unread or name a source that can",
        "teams.support.rules[0].max_age: source 'mail' (kind imap) cannot count 'oldest'; "
        "remove max_age or name a source that can",
    ]
    # replywatch's own count of unanswered mail needs nothing from the source.
    validate(config_with({"max_messages": 5, "max_unanswered": 1}), env={"P": "x"})


def test_graph_and_exchange_give_every_count() -> None:
    """Both keep each folder's items with their saved position: messages, unread and the oldest arrival."""
    limits = {
        "kind": "inbox_nearly_empty",
        "max_messages": 5,
        "max_unread": 0,
        "max_unanswered": 1,
        "max_age": "2d",
    }
    sources = {
        "m365": {"kind": "graph", "tenant_id": "t", "client_id": "c", "client_secret_env": "P",
                 "mailboxes": ["support@example.com"]},
        "onprem": {"kind": "exchange", "server": "mail.example.com", "username": "u", "password_env": "P",
                   "mailboxes": ["support@example.com"]},
    }  # fmt: skip
    teams = {"support": {"sources": ["m365", "onprem"], "rules": [limits]}}
    validate({"sources": sources, "teams": teams}, env={"P": "x"})


# -- a real mailbox ------------------------------------------------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def daemon(dovecot: DovecotServer, imap_mailbox: Mailbox, tmp_path: Path) -> Iterator[Daemon]:
    imap_mailbox.create_folder("Sent")
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        "sources": {"mail": imap_mailbox.imap_settings("implicit")},
        "teams": {
            "support": {
                "addresses": ["support@example.com"],
                "internal_domains": ["example.com"],
                "sources": ["mail"],
                "rules": [
                    {"kind": "reply_within", "within": "24h", "business_hours": False},
                    {"kind": "inbox_nearly_empty", "max_messages": 2, "max_unread": 0, "max_unanswered": 0},
                ],
            }
        },
    }
    d = Daemon(validate(config), listen=("127.0.0.1", 0))
    d.store.upgrade()
    d._apply_sources()
    yield d
    d.stop()


def cycle(d: Daemon) -> list[tuple[str, str | None, str]]:
    d.poll_source("mail")
    d.evaluate()
    query = select(Breach).where(Breach.rule == "inbox_nearly_empty").order_by(Breach.id)
    with Session(d.store.engine) as session:
        return [
            (row.level, None if row.resolved_at is None else "resolved", row.subject)
            for row in session.exec(query)
        ]


def customer(n: int) -> bytes:
    return make_message(
        msgid=f"c{n}@cust.example", sender=f"c{n}@cust.example", to="support@example.com", date=NOW
    )


def test_breaches_appear_clear_and_appear_again_against_dovecot(
    daemon: Daemon, imap_mailbox: Mailbox
) -> None:
    seen = ["\\Seen"]
    assert cycle(daemon) == []  # an empty inbox
    uid = imap_mailbox.append("INBOX", customer(1))
    assert cycle(daemon) == [("breach", None, "mail/inbox")]  # unread and unanswered
    imap_mailbox.add_flags("INBOX", [uid], seen)
    assert cycle(daemon) == [("breach", None, "mail/inbox")]  # read, still unanswered
    reply = make_message(
        msgid="r1@example.com",
        sender="support@example.com",
        to="c1@cust.example",
        in_reply_to="c1@cust.example",
        date=NOW + timedelta(minutes=1),
    )
    imap_mailbox.append("Sent", reply, seen)
    assert cycle(daemon) == [("breach", "resolved", "mail/inbox")]  # read and answered: under every limit
    uids = [imap_mailbox.append("INBOX", customer(n), seen) for n in (2, 3)]
    reply2 = [
        make_message(
            msgid=f"r{n}@example.com",
            sender="support@example.com",
            to=f"c{n}@cust.example",
            in_reply_to=f"c{n}@cust.example",
            date=NOW + timedelta(minutes=1),
        )
        for n in (2, 3)
    ]
    for raw in reply2:
        imap_mailbox.append("Sent", raw, seen)
    # Three messages, all read and answered: over max_messages, a breach of its own.
    assert cycle(daemon) == [("breach", "resolved", "mail/inbox"), ("breach", None, "mail/inbox")]
    with imap_mailbox.client() as client:
        client.select_folder("INBOX")
        client.delete_messages([uid, uids[0]])
        client.expunge()
    assert cycle(daemon) == [("breach", "resolved", "mail/inbox"), ("breach", "resolved", "mail/inbox")]
    samples = daemon_mailbox_metrics(daemon)
    assert samples == {"total": 1.0, "unseen": 0.0, "unanswered": 0.0}


def daemon_mailbox_metrics(d: Daemon) -> dict[str, float]:
    text = generate_latest(d.registry).decode()
    return {
        s.labels["state"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "replywatch_mailbox_messages" and s.labels["folder"] == "inbox"
    }
