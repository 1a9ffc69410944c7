"""``replywatch replay`` over an mbox export and over a real IMAP mailbox: the CSV contract."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from monitor.cli import main
from monitor.replay import HEADER
from tests.mailfactory import make_message
from tests.servers.dovecot import Mailbox

T0 = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in London (BST)


def mbox_of(messages: list[bytes]) -> bytes:
    out = b""
    for raw in messages:
        out += b"From someone@example.net Mon Oct  5 09:00:00 2026\n" + raw.replace(b"\r\n", b"\n") + b"\n"
    return out


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == HEADER
        return list(reader)


def write_config(tmp_path: Path, sources: dict[str, object]) -> str:
    config = {
        "calendars": {"office": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:00"}}},
        "sources": sources,
        "teams": {"support": {"calendar": "office", "addresses": ["support@example.com"],
                              "members": [{"name": "Alice", "email": ["alice@example.com"]}],
                              "sources": list(sources), "rules": [{"kind": "reply_within", "within": "8h"}]}},
    }  # fmt: skip
    path = tmp_path / "replywatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_replay_an_mbox_export_for_a_month(tmp_path: Path) -> None:
    mail = [
        make_message(msgid="c1@cust.example", sender="carol@cust.example", to="support@example.com", date=T0),
        make_message(msgid="r1@example.com", sender="alice@example.com", to="carol@cust.example",
                     in_reply_to="c1@cust.example", date=T0 + timedelta(hours=2)),
        make_message(msgid="c2@cust.example", sender="dave@cust.example", to="support@example.com",
                     date=T0 + timedelta(days=1)),
        make_message(msgid="news@shop.example", sender="news@shop.example", to="support@example.com",
                     date=T0, subject="Deals", headers={"List-Unsubscribe": "<mailto:u@shop.example>"}),
        make_message(msgid="sept@cust.example", sender="erin@cust.example", to="support@example.com",
                     date=T0 - timedelta(days=10)),
    ]  # fmt: skip
    export = tmp_path / "support.mbox"
    export.write_bytes(mbox_of(mail))
    config = write_config(tmp_path, {"export": {"kind": "mbox", "path": str(export)}})
    out = tmp_path / "october.csv"
    code = main(["replay", "-c", config, "--since", "2026-10-01", "--until", "2026-11-01",
                 "--now", "2026-10-08T12:00:00Z", "--out", str(out), "--all"])  # fmt: skip
    assert code == 1  # a breach: findings
    got = {r["id"]: r for r in rows(out)}
    assert "sept@cust.example" not in got  # before --since
    c1 = got["c1@cust.example"]
    assert (c1["status"], c1["responded_at"], c1["response_id"], c1["responder"]) == (
        "answered_on_time",
        "2026-10-05T10:00:00Z",
        "r1@example.com",
        "Alice",
    )
    assert (c1["business_seconds"], c1["wall_seconds"], c1["customer"]) == (
        "7200",
        "7200",
        "carol@cust.example",
    )
    assert got["c2@cust.example"]["status"] == "breached"
    assert got["news@shop.example"]["reason"] == "automated:bulk"
    assert got["r1@example.com"]["reason"] == "response"
    out_only = tmp_path / "items.csv"
    assert main(["replay", "-c", config, "--until", "2026-10-06", "--out", str(out_only)]) == 1
    assert [(r["id"], r["status"]) for r in rows(out_only)] == [
        ("sept@cust.example", "breached"),  # judged at --until: ten days without an answer
        ("c1@cust.example", "answered_on_time"),
    ]


def test_replay_reads_a_real_imap_mailbox(imap_mailbox: Mailbox, tmp_path: Path) -> None:
    imap_mailbox.create_folder("Sent")
    imap_mailbox.append("INBOX", make_message(msgid="c1@cust.example", sender="carol@cust.example",
                                              to="support@example.com", date=T0))  # fmt: skip
    imap_mailbox.append("Sent", make_message(msgid="r1@example.com", sender="alice@example.com",
                                             to="carol@cust.example", in_reply_to="c1@cust.example",
                                             date=T0 + timedelta(hours=9)))  # fmt: skip
    before = imap_mailbox.flags("INBOX")
    config = write_config(tmp_path, {"imap": imap_mailbox.imap_settings("starttls")})
    out = tmp_path / "imap.csv"
    assert main(["replay", "-c", config, "--now", "2026-10-07T00:00:00Z", "--out", str(out)]) == 1
    (row,) = rows(out)
    # 09:00 Monday (London) + 8 business hours = 17:00; answered at 18:00: late, after 8 business hours.
    assert (row["id"], row["status"], row["business_seconds"]) == (
        "c1@cust.example",
        "answered_late",
        "28800",
    )
    assert imap_mailbox.flags("INBOX") == before
