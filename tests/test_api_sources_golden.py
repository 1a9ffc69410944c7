"""One conversation set read through IMAP (a real Dovecot), EWS and Graph gives the same awaiting items.

The messages are written once as RFC 5322 mail; Dovecot stores them as they are, and the replay server
serves them as Graph delta pages and EWS SyncFolderItems/GetItem answers in those services' shapes
(their header fields as ``internetMessageHeaders``/``InternetMessageHeaders``). Each source's events
then go through the one engine.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest

from monitor.engine.email import build_awaiting
from monitor.engine.team import TeamContext
from monitor.events import MessageEvent
from monitor.sources.exchange import ExchangeConfig
from monitor.sources.exchange_source import ExchangeSource
from monitor.sources.graph import GraphConfig
from monitor.sources.graph_source import GraphSource
from monitor.sources.imap import ImapConfig, ImapSource
from tests.mailfactory import make_message
from tests.servers.dovecot import Mailbox
from tests.servers.replay import CLIENT_ID, CLIENT_SECRET, TENANT, Answer, ReplayServer

TEAM = "support@example.com"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def conversations() -> list[tuple[str, bytes]]:
    """(folder, message): waiting, answered, answered then followed up, automated, and a colleague."""
    at = lambda hours: T0 + timedelta(hours=hours)  # noqa: E731
    return [
        ("inbox", make_message(msgid="w1@cust.example", sender="Carol <carol@cust.example>", to=TEAM,
                               date=at(0))),
        ("inbox", make_message(msgid="a1@cust.example", sender="dave@cust.example", to=TEAM, date=at(1),
                               subject="Invoice")),
        ("sent", make_message(msgid="r1@example.com", sender=TEAM, to="dave@cust.example", date=at(2),
                              subject="Re: Invoice", in_reply_to="a1@cust.example")),
        ("inbox", make_message(msgid="f1@cust.example", sender="erin@cust.example", to=TEAM, date=at(3),
                               subject="Delivery")),
        ("sent", make_message(msgid="r2@example.com", sender=TEAM, to="erin@cust.example", date=at(4),
                              subject="Re: Delivery", in_reply_to="f1@cust.example")),
        ("inbox", make_message(msgid="f2@cust.example", sender="erin@cust.example", to=TEAM, date=at(5),
                               subject="Re: Delivery", in_reply_to="r2@example.com")),
        ("inbox", make_message(msgid="n1@shop.example", sender="news@shop.example", to=TEAM, date=at(6),
                               subject="Our offers", headers={"List-Id": "<offers.shop.example>",
                                                               "Auto-Submitted": "auto-generated"})),
    ]  # fmt: skip


Item = tuple[str, str, str, datetime, datetime | None]


def awaiting(events: list[MessageEvent]) -> list[Item]:
    """Each item's customer, key, conversation, arrival and answer; the automated mail opens none."""
    result = build_awaiting(events, TeamContext(name="support", addresses=frozenset({TEAM})))
    return sorted((i.customer, i.key, i.conversation, i.received_at, i.responded_at) for i in result.items)


def parsed(raw: bytes) -> Any:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


# --- IMAP -----------------------------------------------------------------------------------------


def through_imap(mailbox: Mailbox) -> list[MessageEvent]:
    mailbox.create_folder("Sent")
    for folder, raw in conversations():
        date = parsedate_to_datetime(parsed(raw)["Date"])
        mailbox.append("INBOX" if folder == "inbox" else "Sent", raw, [], date)
    source = ImapSource("imap", ImapConfig.model_validate(mailbox.imap_settings()))
    try:
        return source.poll(None).messages
    finally:
        source.close()


# --- Graph ----------------------------------------------------------------------------------------


def graph_address(value: str) -> dict[str, Any]:
    name, address = getaddresses([value])[0]
    return {"emailAddress": {"name": name, "address": address}}


def graph_message(n: int, raw: bytes) -> dict[str, Any]:
    msg = parsed(raw)
    date = parsedate_to_datetime(msg["Date"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": f"AAMkAGolden{n}=",
        "internetMessageId": msg["Message-ID"],
        "conversationId": f"AAQkAGolden{n}=",  # Graph's own id: threading must not depend on it
        "subject": msg["Subject"],
        "from": graph_address(msg["From"]),
        "sender": graph_address(msg["From"]),
        "toRecipients": [graph_address(msg["To"])],
        "ccRecipients": [],
        "replyTo": [],
        "receivedDateTime": date,
        "sentDateTime": date,
        "isRead": False,
        "internetMessageHeaders": [{"name": k, "value": v} for k, v in msg.items()],
    }


def through_graph(server: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> list[MessageEvent]:
    monkeypatch.setenv("GOLDEN_SECRET", CLIENT_SECRET)
    for role, folder in (("inbox", "inbox"), ("sent", "sentitems")):
        path = f"/v1.0/users/{TEAM}/mailFolders/{folder}/messages/delta"
        items = [graph_message(n, raw) for n, (f, raw) in enumerate(conversations()) if f == role]
        server.graph[path] = [Answer(body={"value": items, "@odata.deltaLink": f"{server.base}{path}?d=1"})]
    config = GraphConfig.model_validate(
        {
            "kind": "graph",
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "client_secret_env": "GOLDEN_SECRET",
            "mailboxes": [TEAM],
            "authority": server.base,
            "graph_url": server.base,
            "ca_file": str(server.ca_file),
        }
    )
    return GraphSource("graph", config).poll(None).messages


# --- EWS ------------------------------------------------------------------------------------------

ENVELOPE = """<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>
<h:ServerVersionInfo MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6"
 xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body>
<m:{op}Response xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
 xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages>{body}
</m:ResponseMessages></m:{op}Response></s:Body></s:Envelope>"""


def ews_mailbox(value: str) -> str:
    name, address = getaddresses([value])[0]
    return (
        f"<t:Mailbox><t:Name>{escape(name)}</t:Name>"
        f"<t:EmailAddress>{escape(address)}</t:EmailAddress></t:Mailbox>"
    )


def ews_message(n: int, raw: bytes) -> str:
    msg = parsed(raw)
    date = parsedate_to_datetime(msg["Date"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = "".join(
        f"<t:InternetMessageHeader HeaderName={quoteattr(k)}>{escape(v)}</t:InternetMessageHeader>"
        for k, v in msg.items()
    )
    optional = "".join(
        f"<t:{tag}>{escape(msg[name])}</t:{tag}>"
        for tag, name in (("InReplyTo", "In-Reply-To"), ("References", "References"))
        if msg[name]
    )
    return (
        f'<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>'
        f'<t:Message><t:ItemId Id="AAMkEWSgolden{n}=" ChangeKey="CQAAAB{n}"/>'
        f"<t:Subject>{escape(msg['Subject'])}</t:Subject><t:DateTimeReceived>{date}</t:DateTimeReceived>"
        f"<t:InternetMessageHeaders>{headers}</t:InternetMessageHeaders><t:DateTimeSent>{date}</t:DateTimeSent>"
        f"<t:ToRecipients>{ews_mailbox(msg['To'])}</t:ToRecipients><t:IsRead>false</t:IsRead>"
        f"<t:From>{ews_mailbox(msg['From'])}</t:From>"
        f"<t:InternetMessageId>{escape(msg['Message-ID'])}</t:InternetMessageId>{optional}"
        f"</t:Message></m:Items></m:GetItemResponseMessage>"
    )


def through_ews(server: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> list[MessageEvent]:
    monkeypatch.setenv("GOLDEN_PASSWORD", "pw")
    syncs, gets = [], []
    for role in ("inbox", "sent"):
        mine = [(n, raw) for n, (f, raw) in enumerate(conversations()) if f == role]
        creates = "".join(
            f'<t:Create><t:Message><t:ItemId Id="AAMkEWSgolden{n}=" ChangeKey="CQAAAB{n}"/>'
            "</t:Message></t:Create>"
            for n, _ in mine
        )
        sync = (
            '<m:SyncFolderItemsResponseMessage ResponseClass="Success">'
            "<m:ResponseCode>NoError</m:ResponseCode>"
            f"<m:SyncState>H4sI{role}</m:SyncState><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
            f"<m:Changes>{creates}</m:Changes></m:SyncFolderItemsResponseMessage>"
        )
        syncs.append(Answer(body=ENVELOPE.format(op="SyncFolderItems", body=sync).encode()))
        items = "".join(ews_message(n, raw) for n, raw in mine)
        gets.append(Answer(body=ENVELOPE.format(op="GetItem", body=items).encode()))
    server.ews["SyncFolderItems"] = syncs
    server.ews["GetItem"] = gets
    config = ExchangeConfig.model_validate(
        {
            "kind": "exchange",
            "service_endpoint": f"{server.base}/EWS/Exchange.asmx",
            "username": "svc",
            "password_env": "GOLDEN_PASSWORD",
            "auth": "basic",
            "version": "15.1",
            "mailboxes": [TEAM],
            "ca_file": str(server.ca_file),
        }
    )
    return ExchangeSource("ews", config).poll(None).messages


@pytest.mark.server
def test_imap_ews_and_graph_agree(
    imap_mailbox: Mailbox, replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap = awaiting(through_imap(imap_mailbox))
    graph = awaiting(through_graph(replay, monkeypatch))
    ews = awaiting(through_ews(replay, monkeypatch))
    assert replay.mistakes == []
    h = lambda hours: T0 + timedelta(hours=hours)  # noqa: E731
    assert imap == [
        ("carol@cust.example", "w1@cust.example", "w1@cust.example", T0, None),
        ("dave@cust.example", "a1@cust.example", "a1@cust.example", h(1), h(2)),
        ("erin@cust.example", "f1@cust.example", "f1@cust.example", h(3), h(4)),
        ("erin@cust.example", "f2@cust.example", "f1@cust.example", h(5), None),
    ]
    assert graph == imap
    assert ews == imap
