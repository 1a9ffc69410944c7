"""The exchange (EWS) source against a local HTTPS server replaying recorded EWS answers.

exchangelib runs for real; the server checks every SOAP request it receives (operation, folder, mailbox,
sync state, the fields asked for, the login, impersonation).
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main
from monitor.sources.base import AuthSourceError, TransientSourceError
from monitor.sources.exchange import ExchangeConfig
from monitor.sources.exchange_source import ExchangeSource
from tests.corpus import corpora_root
from tests.servers.replay import CLIENT_ID, CLIENT_SECRET, TENANT, Answer, ReplayServer, Seen

MAILBOX = "support@contoso.com"
SYNC_CREATES = "SyncFolderItemsResponse__how-to-synchronize-items-by-using-ews-in-exchange__2.xml"
SYNC_UPDATES = "SyncFolderItemsResponse__how-to-synchronize-items-by-using-ews-in-exchange__4.xml"
SYNC_BAD_STATE = "SyncFolderItemsResponse__syncfolderitems-operation__2.xml"


def ews(name: str) -> Path:
    folder = "ews-viewpoint" if not name.startswith(("Sync", "Get", "Find")) else "ews-msdocs"
    return corpora_root("exchange", folder, name)


def recorded(server: ReplayServer, name: str) -> Answer:
    return Answer(body=server.recorded_ews(ews(name)))


def no_changes(server: ReplayServer) -> Answer:
    """A recorded sync answer with its changes taken out: what a folder that did not change returns."""
    body = server.recorded_ews(ews(SYNC_CREATES))
    return Answer(body=re.sub(rb"<m:Changes>.*</m:Changes>", b"<m:Changes />", body, flags=re.S))


def settings(server: ReplayServer, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "exchange",
        "service_endpoint": f"{server.base}/EWS/Exchange.asmx",
        "username": "CONTOSO\\svc-replywatch",
        "password_env": "EWS_PASSWORD",
        "auth": "basic",
        "version": "15.1",
        "mailboxes": [MAILBOX],
        "ca_file": str(server.ca_file),
        **extra,
    }


def source(server: ReplayServer, **extra: Any) -> ExchangeSource:
    return ExchangeSource("onprem", ExchangeConfig.model_validate(settings(server, **extra)))


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EWS_PASSWORD", "pw-1")


def basic_auth_checked(server: ReplayServer) -> None:
    def check(seen: Seen) -> str | None:
        auth = seen.headers.get("authorization", "")
        return None if auth == "Basic Q09OVE9TT1xzdmMtcmVwbHl3YXRjaDpwdy0x" else f"authorization {auth!r}"

    server.ews_checks.append(check)


def bodies(server: ReplayServer) -> list[str]:
    return [s.body.decode() for s in server.ews_requests()]


def test_initial_sync_asks_ids_then_fetches_only_the_new_items(replay: ReplayServer) -> None:
    replay.ews["SyncFolderItems"] = [recorded(replay, SYNC_CREATES)]
    replay.ews["GetItem"] = [recorded(replay, "get_item_bad_character_response.xml")]
    basic_auth_checked(replay)
    result = source(replay).poll(None)
    assert replay.mistakes == []
    sync, get, *_ = bodies(replay)
    assert "<m:SyncFolderItems>" in sync and "<t:BaseShape>IdOnly</t:BaseShape>" in sync
    assert '<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>support@contoso.com' in sync
    assert "<m:SyncState>" not in sync and "<t:AdditionalProperties>" not in sync
    # The recorded sample lists one id twice: four distinct created items, each fetched once.
    assert "<m:GetItem>" in get and get.count("<t:ItemId ") == 4
    for field in ("message:InternetMessageId", "item:InternetMessageHeaders", "message:References"):
        assert f'FieldURI="{field}"' in get
    assert "item:Body" not in get and "item:MimeContent" not in get
    (event, *_) = [m for m in result.messages if m.folder == "inbox"]
    # The recorded answer's subject holds "&#x10;", invalid in XML 1.0: the item is still read.
    assert "Introduction Alex" in event.subject
    assert event.in_reply_to == "3673FD18-F1E6-4C04-A339-79ED9076341F@test.com"
    assert event.external_id.startswith(f"{MAILBOX}/AAMkADBhYzVhZmNh")
    assert result.cursor["folders"]["inbox"]["sync_state"] == "H4sIAAA=="


def test_next_poll_sends_the_sync_state_and_an_unchanged_folder_costs_one_request(
    replay: ReplayServer,
) -> None:
    replay.ews["SyncFolderItems"] = [recorded(replay, SYNC_CREATES)]
    replay.ews["GetItem"] = [recorded(replay, "get_item_bad_character_response.xml")]
    src = source(replay)
    cursor = src.poll(None).cursor
    replay.ews["SyncFolderItems"] = [no_changes(replay)]
    before = len(replay.ews_requests())
    result = src.poll(cursor)
    after = bodies(replay)[before:]
    assert replay.mistakes == []
    assert len(after) == 2 and all("<m:SyncState>H4sIAAA==</m:SyncState>" in b for b in after)
    assert result.messages == [] and result.cursor == cursor
    assert {s.folder: s.total for s in result.snapshots} == {"inbox": 1, "sent": 1}


def changes(name: str) -> dict[str, list[str]]:
    """Item ids per change type in a recorded SyncFolderItems answer."""
    text = ews(name).read_text()
    found: dict[str, list[str]] = {}
    for kind, block in re.findall(r"<t:(Create|Update|Delete|ReadFlagChange)>(.*?)</t:\1>", text, re.S):
        found.setdefault(kind, []).extend(re.findall(r'ItemId Id="([^"]*)"', block))
    return found


def test_updates_are_fetched_again_and_deletions_reported(replay: ReplayServer) -> None:
    replay.ews["SyncFolderItems"] = [recorded(replay, SYNC_UPDATES), no_changes(replay)]
    replay.ews["GetItem"] = [recorded(replay, "GetItemResponse__getitem-operation-email-message__1.xml")]
    result = source(replay).poll(None)
    assert replay.mistakes == []
    recorded_changes = changes(SYNC_UPDATES)
    deleted = recorded_changes["Delete"]
    wanted = {i for k in ("Create", "Update") for i in recorded_changes[k]} - set(
        deleted
    )  # read flags: no fetch
    get = next(b for b in bodies(replay) if "<m:GetItem>" in b)
    assert set(re.findall(r'<t:ItemId Id="([^"]*)"', get)) == wanted
    assert result.removed == [f"{MAILBOX}/{i}" for i in deleted]
    assert result.messages  # the recorded message, read through the same event builder as IMAP


def test_a_sync_state_the_server_refuses_reads_the_folder_again(replay: ReplayServer) -> None:
    replay.ews["SyncFolderItems"] = [recorded(replay, SYNC_CREATES)]
    replay.ews["GetItem"] = [recorded(replay, "get_item_bad_character_response.xml")]
    src = source(replay)
    first = src.poll(None)
    replay.ews["SyncFolderItems"] = [
        recorded(replay, SYNC_BAD_STATE),
        recorded(replay, SYNC_CREATES),
        no_changes(replay),
    ]
    result = src.poll(first.cursor)
    assert replay.mistakes == []
    assert result.resync
    assert [m.external_id for m in result.messages if m.folder == "inbox"] == [
        m.external_id for m in first.messages if m.folder == "inbox"
    ]


SERVER_BUSY = b"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
<faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>
<faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring>
<detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>
<e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">Try again later.</e:Message>
<t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
<t:Value Name="BackOffMilliseconds">29000</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>"""
"""The fault Exchange 2016 sends when EWS throttling stops a request (documented shape; no recording)."""


def test_server_busy_carries_its_back_off(replay: ReplayServer) -> None:
    replay.ews["SyncFolderItems"] = [Answer(500, SERVER_BUSY)]
    with pytest.raises(TransientSourceError) as caught:
        source(replay).poll(None)
    assert caught.value.retry_after == timedelta(seconds=29)
    assert "ErrorServerBusy" in str(caught.value)


def test_impersonation_names_the_mailbox_in_every_request(replay: ReplayServer) -> None:
    replay.ews["SyncFolderItems"] = [no_changes(replay)]
    source(replay, access="impersonation").poll(None)
    assert replay.mistakes == []
    for body in bodies(replay):
        assert "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>support@contoso.com" in body


def test_a_refused_login_is_an_auth_error(replay: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> None:
    replay.ews_checks.append(lambda seen: None)
    replay.ews["SyncFolderItems"] = [Answer(401, b"")]
    monkeypatch.setenv("EWS_PASSWORD", "wrong")
    with pytest.raises(AuthSourceError) as caught:
        source(replay).poll(None)
    assert "wrong" not in str(caught.value).replace("svc-replywatch", "")
    assert "with the secret from password_env 'EWS_PASSWORD'" in str(caught.value)


def test_a_certificate_of_another_ca_says_set_ca_file(replay: ReplayServer, tmp_path: Path) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(TransientSourceError) as caught:
        source(replay, ca_file=str(other)).poll(None)
    assert "the server's certificate is not signed by the CAs in ca_file" in str(caught.value)
    assert str(caught.value).endswith("set `ca_file` to the PEM file of the CA that signed it")


def test_config_needs_exactly_one_place() -> None:
    base = {"kind": "exchange", "username": "u", "password_env": "X", "mailboxes": [MAILBOX]}
    with pytest.raises(ValueError, match="exactly one of server"):
        ExchangeConfig.model_validate(base)
    with pytest.raises(ValueError, match="exactly one of server"):
        ExchangeConfig.model_validate(base | {"server": "mail.example.com", "autodiscover": True})
    cfg = ExchangeConfig.model_validate(base | {"server": "mail.example.com"})
    assert cfg.endpoint == "https://mail.example.com/EWS/Exchange.asmx"


def test_probe(replay: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    replay.ews["SyncFolderItems"] = [no_changes(replay)]
    path = tmp_path / "replywatch.yaml"
    doc = {"sources": {"onprem": settings(replay)}, "teams": {"support": {"sources": ["onprem"]}}}
    path.write_text(yaml.safe_dump(doc))
    assert main(["check-config", "-c", str(path), "--probe"]) == 0
    assert "sources.onprem: ok" in capsys.readouterr().out
    assert replay.mistakes == []


# -- OAuth: an app registration's token (client credentials) ------------------------------------------

EWS_SCOPE = "https://outlook.office365.com/.default"


def oauth_settings(server: ReplayServer, **extra: Any) -> dict[str, Any]:
    cfg = settings(server, tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env="EWS_APP_SECRET",
                   authority=server.base, **extra)  # fmt: skip
    for key in ("username", "password_env", "auth"):
        del cfg[key]
    return cfg


def bearer_checked(server: ReplayServer) -> None:
    """Every EWS request carries the app's token for the EWS resource, impersonates the mailbox and
    names it in X-AnchorMailbox (what Exchange Online routes app-only requests by)."""

    def check(seen: Seen) -> str | None:
        problem = server.token_problem(seen.headers.get("authorization"), EWS_SCOPE)
        if problem:
            return problem
        if seen.headers.get("x-anchormailbox") != MAILBOX:
            return f"X-AnchorMailbox {seen.headers.get('x-anchormailbox')!r}"
        if (
            f"<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{MAILBOX}"
            not in seen.body.decode()
        ):
            return "no ExchangeImpersonation header"
        return None

    server.ews_checks.append(check)


def test_oauth_gets_an_app_token_for_ews_and_sends_it(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EWS_APP_SECRET", CLIENT_SECRET)
    replay.ews["SyncFolderItems"] = [recorded(replay, SYNC_CREATES), no_changes(replay)]
    replay.ews["GetItem"] = [recorded(replay, "get_item_bad_character_response.xml")]
    bearer_checked(replay)
    cfg = ExchangeConfig.model_validate(oauth_settings(replay))
    assert (cfg.login, cfg.access_type) == ("oauth", "impersonation")
    src = ExchangeSource("online", cfg)
    result = src.poll(None)
    assert replay.mistakes == []
    assert [m for m in result.messages if m.folder == "inbox"]
    (form,) = replay.token_requests()  # one token for every request of the poll
    assert form["grant_type"] == "client_credentials" and form["client_id"] == CLIENT_ID
    assert form["scope"] == EWS_SCOPE and form["client_secret"] == CLIENT_SECRET
    assert len(replay.ews_requests()) == 3  # sync inbox, GetItem, sync sent
    src.poll(result.cursor)
    assert replay.mistakes == [] and replay.tokens_issued == 1  # msal keeps the token


def test_oauth_token_expiry_gets_a_new_token(replay: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EWS_APP_SECRET", CLIENT_SECRET)
    replay.token_lifetime = 1  # msal renews a token that expires within five minutes: every time asked
    replay.ews["SyncFolderItems"] = [no_changes(replay)]
    bearer_checked(replay)
    src = ExchangeSource("online", ExchangeConfig.model_validate(oauth_settings(replay)))
    cursor = src.poll(None).cursor
    issued = replay.tokens_issued
    time.sleep(1.2)  # the session's token has expired: exchangelib must not send it
    src.poll(cursor)
    assert replay.mistakes == []
    assert replay.tokens_issued > issued
    assert len(replay.ews_requests()) == 4  # no request refused, none sent twice


def test_oauth_with_a_certificate(replay: ReplayServer) -> None:
    replay.ews["SyncFolderItems"] = [no_changes(replay)]
    bearer_checked(replay)
    cfg = oauth_settings(replay, certificate_file=str(replay.client_cert))
    del cfg["client_secret_env"]
    ExchangeSource("online", ExchangeConfig.model_validate(cfg)).poll(None)
    assert replay.mistakes == []
    (form,) = replay.token_requests()
    assert "client_assertion" in form and "client_secret" not in form


def test_oauth_wrong_secret_is_an_auth_error_and_nothing_reaches_ews(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EWS_APP_SECRET", "not-the-secret")
    replay.ews["SyncFolderItems"] = [no_changes(replay)]
    with pytest.raises(AuthSourceError) as caught:
        ExchangeSource("online", ExchangeConfig.model_validate(oauth_settings(replay))).poll(None)
    assert "AADSTS7000215" in str(caught.value) and "not-the-secret" not in str(caught.value)
    assert replay.ews_requests() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password_env": "P"}, "give exactly one of password_env, password_file, client_secret_env, "
         "client_secret_file, certificate_file (got password and client_secret)"),
        ({"auth": "ntlm"}, "auth ntlm logs in with password_env or password_file, not an app's "
         "client_secret"),
        ({"tenant_id": None}, "auth oauth: give tenant_id"),
        ({"username": "svc"}, "auth oauth: username is not used"),
        ({"access": "delegate"}, "auth oauth: an app's token reads mailboxes by impersonation"),
    ],
)  # fmt: skip
def test_oauth_config_needs_one_credential_kind(change: dict[str, Any], message: str) -> None:
    base = {"kind": "exchange", "server": "outlook.office365.com", "mailboxes": [MAILBOX],
            "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret_env": "S"}  # fmt: skip
    doc = {k: v for k, v in (base | change).items() if v is not None}
    with pytest.raises(ValueError, match=re.escape(message)):
        ExchangeConfig.model_validate(doc)


def test_probe_with_oauth(
    replay: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EWS_APP_SECRET", CLIENT_SECRET)
    replay.ews["SyncFolderItems"] = [no_changes(replay)]
    bearer_checked(replay)
    path = tmp_path / "replywatch.yaml"
    doc = {"sources": {"online": oauth_settings(replay)}, "teams": {"support": {"sources": ["online"]}}}
    path.write_text(yaml.safe_dump(doc))
    assert main(["check-config", "-c", str(path), "--probe"]) == 0
    assert "sources.online: ok" in capsys.readouterr().out
    assert replay.mistakes == [] and replay.tokens_issued == 1
    monkeypatch.setenv("EWS_APP_SECRET", "wrong")
    assert main(["check-config", "-c", str(path), "--probe"]) == 2
    out = capsys.readouterr()
    assert "sources.online: FAILED" in out.out and "AADSTS7000215" in out.err and "wrong" not in out.err
