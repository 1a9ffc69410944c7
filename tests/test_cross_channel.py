"""Cross-channel answers and the contact directory: a call answers an email, an email a missed call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import ConfigError, validate
from monitor.contacts import ContactDirectory, ContactsError, contact, read_contacts_csv
from monitor.evaluate import team_awaiting
from monitor.events import CallDirection, CallEvent, Channel, MessageEvent

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # a Monday
DANA_PHONE = "+442079460000"


def config(tmp_path: Path, cross_channel: bool = True) -> dict[str, object]:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("Name,Email,Phone\nDana,dana@cust.example,020 7946 0000;07700 900123\n")
    return {
        "contacts": {"file": str(contacts), "default_region": "GB"},
        "sources": {
            "inbox": {"kind": "mbox", "path": "/srv/inbox.mbox"},
            "sent": {"kind": "mbox", "path": "/srv/sent.mbox", "folder": "sent"},
        },
        "teams": {
            "support": {
                "addresses": ["support@example.com"],
                "internal_domains": ["example.com"],
                "members": [
                    {"name": "Alice", "email": ["alice@example.com"], "phone": ["201"]},
                    {"name": "Bob", "email": ["bob@example.com"], "phone": ["202"]},
                ],
                "sources": ["inbox", "sent"],
                "cross_channel": cross_channel,
                "rules": [
                    {"kind": "reply_within", "within": "8h"},
                    {"kind": "callback_within", "within": "8h"},
                ],
            }
        },
    }


def mail(
    n: str, at: datetime, sender: str, to: str, folder: str = "inbox", reply_to: str | None = None
) -> MessageEvent:
    return MessageEvent(
        source=folder, folder=folder, external_id=f"{folder}/{n}", message_id=f"{n}@x", date=at,
        from_addr=sender, to_addrs=(to,), subject="Order", in_reply_to=reply_to,
    )  # fmt: skip


def call(n: str, at: datetime, direction: CallDirection, caller: str, callee: str, answered: bool,
         answered_by: str | None = None) -> CallEvent:  # fmt: skip
    return CallEvent(
        source="pbx", external_id=n, started_at=at, direction=direction, caller=caller, callee=callee,
        answered=answered, answered_by=answered_by, wait_seconds=30.0,
    )  # fmt: skip


def test_directory_links_every_address_with_every_number(tmp_path: Path) -> None:
    loaded = validate(config(tmp_path), check_secrets=False)
    directory = loaded.config.contact_directory
    assert directory.phones_of("Dana@Cust.example") == {DANA_PHONE, "+447700900123"}
    assert directory.emails_of("+447700900123") == {"dana@cust.example"}
    assert directory.emails_of("+15550100") == frozenset()


def test_a_bad_directory_line_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ContactsError, match=r"contacts, line 3: '201' is not a customer's phone number"):
        read_contacts_csv("email,phone\na@x.example,020 7946 0000\nb@x.example,201\n", "GB")
    with pytest.raises(ContactsError, match="must name an 'email' and a 'phone' column"):
        read_contacts_csv("mail,number\n", "GB")
    cfg = config(tmp_path)
    cfg["contacts"] = {"file": str(tmp_path / "missing.csv")}
    with pytest.raises(ConfigError) as err:
        validate(cfg, check_secrets=False)
    assert any(e.startswith("contacts: cannot read contacts file") for e in err.value.errors), (
        err.value.errors
    )


def test_cross_channel_needs_a_directory(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    del cfg["contacts"]
    with pytest.raises(ConfigError) as err:
        validate(cfg, check_secrets=False)
    assert err.value.errors == [
        "teams.support.cross_channel: cross_channel needs a contact directory: add 'contacts' to the config"
    ]


def test_a_call_answers_an_email_and_an_email_answers_a_missed_call(tmp_path: Path) -> None:
    loaded = validate(config(tmp_path), check_secrets=False)
    messages = [
        mail("q1", T0, "dana@cust.example", "support@example.com"),
        # Alice calls Dana back at 10:00 (an outbound call to her landline): that answers the email.
        mail(
            "r1", T0 + timedelta(hours=3), "alice@example.com", "dana@cust.example", "sent", reply_to="q1@x"
        ),
        # Eve is in no directory: only her own channel answers her.
        mail("q2", T0, "eve@cust.example", "support@example.com"),
    ]
    calls = [
        call("c1", T0 + timedelta(hours=1), CallDirection.OUTBOUND, "201", DANA_PHONE, answered=True),
        # Dana's missed call on Tuesday; Bob emails her on Tuesday afternoon.
        call("m1", T0 + timedelta(days=1), CallDirection.INBOUND, "+447700900123", "200", answered=False),
        # A call to Eve's unknown number does not answer her mail.
        call("c2", T0 + timedelta(hours=1), CallDirection.OUTBOUND, "202", "+15550100", answered=True),
    ]
    messages.append(
        mail("r2", T0 + timedelta(days=1, hours=5), "bob@example.com", "dana@cust.example", "sent")
    )
    items = {i.key: i for i in team_awaiting(loaded.config, "support", messages, calls).items}
    assert items["q1@x"].response is not None
    assert (items["q1@x"].responded_at, items["q1@x"].response_id, items["q1@x"].responder) == (
        T0 + timedelta(hours=1), "c1", "Alice",
    )  # fmt: skip
    assert items["m1"].channel is Channel.PHONE
    assert (items["m1"].responded_at, items["m1"].response_id, items["m1"].responder) == (
        T0 + timedelta(days=1, hours=5), "r2@x", "Bob",
    )  # fmt: skip
    assert items["q2@x"].response is None


def test_answers_before_the_contact_or_without_cross_channel_do_not_count(tmp_path: Path) -> None:
    messages = [
        mail("q1", T0 + timedelta(hours=2), "dana@cust.example", "support@example.com"),
    ]
    calls = [call("c0", T0, CallDirection.OUTBOUND, "201", DANA_PHONE, answered=True)]  # before the mail
    loaded = validate(config(tmp_path), check_secrets=False)
    (item,) = team_awaiting(loaded.config, "support", messages, calls).items
    assert item.response is None
    later = [
        *calls,
        call("c1", T0 + timedelta(hours=3), CallDirection.OUTBOUND, "201", DANA_PHONE, answered=True),
    ]
    off = validate(config(tmp_path, cross_channel=False), check_secrets=False)
    (item,) = team_awaiting(off.config, "support", messages, later).items
    assert item.response is None


def test_directory_of_contacts_in_config() -> None:
    directory = ContactDirectory.of([contact(["A@x.example"], ["+1 202 555 0143"], None)])
    assert directory.emails_of("+12025550143") == {"a@x.example"}
    assert not ContactDirectory()
