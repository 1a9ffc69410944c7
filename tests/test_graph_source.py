"""The graph source against a local HTTPS server replaying Microsoft's recorded delta pages.

The real client code runs (msal for the token, httpx for Graph); the server checks what it sent: paths,
``$select``, ``Prefer``, the token's audience.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main
from monitor.sources.base import AuthSourceError, PermanentSourceError, SourceError, TransientSourceError
from monitor.sources.graph import SELECT, GraphConfig
from monitor.sources.graph_source import GraphSource
from tests.corpus import corpora_root
from tests.servers.replay import CLIENT_ID, CLIENT_SECRET, TENANT, Answer, ReplayServer, Seen

MAILBOX = "support@contoso.com"
USERS = f"/v1.0/users/{MAILBOX}/mailFolders"
INBOX_ROUND1 = "/v1.0/me/mailfolders('AQMkADNkNAAAgEMAAAA')/messages/delta"
INBOX_DELTA = INBOX_ROUND1 + "?$deltatoken=GwcBoTmPuoGNlgXgF1nyUNMXY"
SENT_ROUND1 = "/v1.0/me/mailFolders/AAMkAGUwNc4LTMzAAA=/messages/delta"
SENT_DELTA = SENT_ROUND1 + "?$deltatoken=P4lmXpjPRrjB6haAQ_37roqIbjXe66KoV7SMlLH--Jgi8"


def corpus(name: str) -> Path:
    return corpora_root("graph", "delta-docs", name)


def settings(server: ReplayServer, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "graph",
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "client_secret_env": "GRAPH_SECRET",
        "mailboxes": [MAILBOX],
        "authority": server.base,
        "graph_url": server.base,
        "ca_file": str(server.ca_file),
        "page_size": 50,
        **extra,
    }


def source(server: ReplayServer, **extra: Any) -> GraphSource:
    return GraphSource("m365", GraphConfig.model_validate(settings(server, **extra)))


def load_round1(server: ReplayServer) -> None:
    """The recorded first rounds: five inbox messages over three pages, four sent over two."""
    g = server.graph
    g[f"{USERS}/inbox/messages/delta"] = [Answer(body=server.recorded(corpus("ex1_round1_page1.json")))]
    g[INBOX_ROUND1 + "?$skiptoken=GwcBoTmPuoTQWfcsAbkYM"] = [
        Answer(body=server.recorded(corpus("ex1_round1_page2.json")))
    ]
    g[INBOX_ROUND1 + "?$skiptoken=GwcBoTmPKILK4jLH7mAd1lLU"] = [
        Answer(body=server.recorded(corpus("ex1_round1_page3_final.json")))
    ]
    g[f"{USERS}/sentitems/messages/delta"] = [
        Answer(body=server.recorded(corpus("ex2_changeType_created_page1.json")))
    ]
    g[SENT_ROUND1 + "?$skiptoken=P4lmXpjPRrjB6haAQzSkpK89jYTVD2kVtOeXNRnfYzPbCs"] = [
        Answer(body=server.recorded(corpus("ex2_changeType_created_page2_final.json")))
    ]


def unchanged(server: ReplayServer, path: str) -> Answer:
    """What Graph answers to a delta link when nothing changed: no items, the same link."""
    return Answer(body={"value": [], "@odata.deltaLink": server.base + path})


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_SECRET", CLIENT_SECRET)


def select_checked(server: ReplayServer, *, headers: bool = True) -> None:
    """A first delta request must ask for exactly the engine's properties; links carry their own query."""
    wanted = f"{SELECT},internetMessageHeaders" if headers else SELECT

    def check(seen: Seen) -> str | None:
        first = seen.path.startswith(USERS) and seen.path.endswith("/delta")
        select = seen.query.get("$select")
        if first and select != [wanted]:
            return f"$select {select!r} on {seen.path}"
        if not first and select is not None:
            return f"$select repeated on a link: {seen.path}"
        return None

    server.graph_checks.append(check)


def test_initial_sync_follows_pages_to_the_delta_link(replay: ReplayServer) -> None:
    load_round1(replay)
    select_checked(replay)
    src = source(replay)
    result = src.poll(None)
    assert replay.mistakes == []
    assert [r.path for r in replay.graph_requests()] == [
        f"{USERS}/inbox/messages/delta",
        INBOX_ROUND1,
        INBOX_ROUND1,
        f"{USERS}/sentitems/messages/delta",
        SENT_ROUND1,
    ]
    assert all("odata.maxpagesize=50" in r.headers["prefer"] for r in replay.graph_requests())
    inbox = [m for m in result.messages if m.folder == "inbox"]
    sent = [m for m in result.messages if m.folder == "sent"]
    assert len(inbox) == 5 and len(sent) == 4
    first = inbox[0]
    assert first.external_id == f"{MAILBOX}/AAMkADNkNAAASq35xAAA="
    assert first.subject == "Holiday hours update"
    assert first.from_addr is None  # $select asked for "from"; the recorded sample has only "sender"
    assert first.sender_addr == "danas@contoso.com"
    assert "seen" not in first.flags and "seen" in inbox[1].flags
    snapshots = {s.folder: s for s in result.snapshots}
    assert (snapshots["inbox"].total, snapshots["inbox"].unseen) == (5, 1)
    assert (snapshots["sent"].total, snapshots["sent"].unseen) == (4, 0)
    assert result.cursor["folders"]["inbox"]["delta_link"] == replay.base + INBOX_DELTA
    assert result.removed == [] and not result.resync
    assert replay.tokens_issued == 1  # msal keeps the token for the next requests


def test_second_round_reports_removals_and_updates(replay: ReplayServer) -> None:
    load_round1(replay)
    src = source(replay)
    cursor = src.poll(None).cursor
    replay.graph[INBOX_DELTA] = [Answer(body=replay.recorded(corpus("ex1_round2_removed_and_updated.json")))]
    replay.graph[SENT_DELTA] = [Answer(body=replay.recorded(corpus("ex2_round2_created.json")))]
    before = len(replay.graph_requests())
    result = src.poll(cursor)
    assert replay.mistakes == []
    assert len(replay.graph_requests()) - before == 2
    assert result.removed == [f"{MAILBOX}/AAMkADk0MGFkODE3LWE4MmYtNDRhOS0Dh_6qB-pB2Sa2pUum19a6YAAKnLuxoAAA="]
    updated = [m for m in result.messages if m.folder == "inbox"]
    assert [m.subject for m in updated] == ["Holiday hours update"]
    assert "seen" in updated[0].flags  # the recorded sample's "isRead": "true" (a string)
    snapshots = {s.folder: s for s in result.snapshots}
    assert snapshots["inbox"].unseen == 0
    assert snapshots["sent"].total == 5  # one new message, one already known


def test_no_change_poll_is_one_request_per_folder_and_keeps_the_cursor(replay: ReplayServer) -> None:
    load_round1(replay)
    src = source(replay)
    cursor = src.poll(None).cursor
    replay.graph[INBOX_DELTA] = [unchanged(replay, INBOX_DELTA)]
    replay.graph[SENT_DELTA] = [unchanged(replay, SENT_DELTA)]
    before = len(replay.graph_requests())
    result = src.poll(cursor)
    assert replay.mistakes == []
    assert [r.path + "?" + r.query["$deltatoken"][0] for r in replay.graph_requests()[before:]] == [
        INBOX_DELTA.replace("?$deltatoken=", "?"),
        SENT_DELTA.replace("?$deltatoken=", "?"),
    ]
    assert result.messages == [] and result.cursor == cursor
    assert {s.folder: s.total for s in result.snapshots} == {"inbox": 5, "sent": 4}


def test_gone_delta_link_reads_the_folder_again_with_the_same_ids(replay: ReplayServer) -> None:
    load_round1(replay)
    src = source(replay)
    first = src.poll(None)
    replay.graph[INBOX_DELTA] = [Answer(410, {"error": {"code": "SyncStateNotFound", "message": "gone"}})]
    replay.graph[SENT_DELTA] = [unchanged(replay, SENT_DELTA)]
    result = src.poll(first.cursor)
    assert replay.mistakes == []
    assert result.resync
    again = [m.external_id for m in result.messages]
    assert again == [m.external_id for m in first.messages if m.folder == "inbox"]
    assert {s.folder: s.total for s in result.snapshots}["inbox"] == 5  # not ten


@pytest.mark.parametrize(("status", "header", "wait"), [(429, "7", 7), (503, "120", 120)])
def test_throttling_carries_retry_after(replay: ReplayServer, status: int, header: str, wait: int) -> None:
    replay.graph[f"{USERS}/inbox/messages/delta"] = [
        Answer(
            status, {"error": {"code": "TooManyRequests", "message": "slow down"}}, {"Retry-After": header}
        )
    ]
    with pytest.raises(TransientSourceError) as caught:
        source(replay).poll(None)
    assert caught.value.retry_after == timedelta(seconds=wait)
    assert str(caught.value).startswith("source m365 folder inbox: Graph answered")


def test_a_wrong_secret_is_an_auth_error_without_the_secret(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_SECRET", "wrong-secret")
    with pytest.raises(AuthSourceError) as caught:
        source(replay).poll(None)
    assert "AADSTS7000215" in str(caught.value) and "wrong-secret" not in str(caught.value)
    assert replay.graph_requests() == []


def test_a_token_for_another_audience_is_refused(replay: ReplayServer) -> None:
    load_round1(replay)
    src = source(replay)
    src.config = src.config.model_copy(update={"graph_url": replay.base + "/other"})
    with pytest.raises(SourceError):
        src.poll(None)
    assert replay.graph_requests() == []  # the link is outside the configured Graph: never sent a token


def test_certificate_credential_signs_an_assertion(replay: ReplayServer) -> None:
    load_round1(replay)
    cfg = settings(replay, certificate_file=str(replay.client_cert))
    del cfg["client_secret_env"]
    result = GraphSource("m365", GraphConfig.model_validate(cfg)).poll(None)
    assert replay.mistakes == [] and len(result.messages) == 9
    token_form = next(s for s in replay.seen if s.path.endswith("/token")).body.decode()
    assert "client_assertion=" in token_form and "client_secret" not in token_form


def test_ca_file_wins_over_the_environment(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_text(Path(__import__("certifi").where()).read_text())
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, str(other))
    load_round1(replay)
    assert len(source(replay).poll(None).messages) == 9


def test_internet_headers_thread_and_classify_like_imap(replay: ReplayServer) -> None:
    item = {
        "id": "AAMkAD-immutable-1",
        "internetMessageId": "<reply-2@contoso.com>",
        "conversationId": "AAQkAD-conv",
        "subject": "RE: order 1182",
        "from": {"emailAddress": {"name": "Shop", "address": "noreply@shop.example"}},
        "toRecipients": [{"emailAddress": {"name": "", "address": MAILBOX}}],
        "receivedDateTime": "2026-11-30T09:15:00Z",
        "sentDateTime": "2026-11-30T09:14:58Z",
        "isRead": False,
        "internetMessageHeaders": [
            {"name": "In-Reply-To", "value": "<order-1182@contoso.com>"},
            {"name": "References", "value": "<order-1182@contoso.com>"},
            {"name": "Auto-Submitted", "value": "auto-replied"},
        ],
    }
    replay.graph[f"{USERS}/inbox/messages/delta"] = [
        Answer(body={"value": [item], "@odata.deltaLink": replay.base + INBOX_DELTA})
    ]
    replay.graph[f"{USERS}/sentitems/messages/delta"] = [unchanged(replay, SENT_DELTA)]
    select_checked(replay)
    (event,) = source(replay).poll(None).messages
    assert replay.mistakes == []
    assert event.message_id == "reply-2@contoso.com"
    assert event.in_reply_to == "order-1182@contoso.com"
    assert event.references == ("order-1182@contoso.com",)
    assert event.thread_id is None and event.automated  # threaded by its references, as over IMAP
    assert event.to_addrs == (MAILBOX,)
    assert event.date.isoformat() == "2026-11-30T09:14:58+00:00"


def test_without_internet_headers_the_select_is_smaller(replay: ReplayServer) -> None:
    load_round1(replay)
    select_checked(replay, headers=False)
    source(replay, internet_headers=False).poll(None)
    assert replay.mistakes == []


def test_several_mailboxes_have_their_own_folders(replay: ReplayServer) -> None:
    load_round1(replay)
    other = "sales@contoso.com"
    replay.graph[f"/v1.0/users/{other}/mailFolders/inbox/messages/delta"] = [unchanged(replay, INBOX_DELTA)]
    replay.graph[f"/v1.0/users/{other}/mailFolders/sentitems/messages/delta"] = [
        unchanged(replay, SENT_DELTA)
    ]
    result = source(replay, mailboxes=[MAILBOX, other]).poll(None)
    assert list(result.cursor["folders"]) == [
        f"{MAILBOX}/inbox",
        f"{MAILBOX}/sent",
        f"{other}/inbox",
        f"{other}/sent",
    ]
    # Each message names the folder its snapshot counts, so replywatch's unanswered count finds it.
    assert {m.folder for m in result.messages} == {f"{MAILBOX}/inbox", f"{MAILBOX}/sent"}
    assert {s.folder for s in result.snapshots} == set(result.cursor["folders"])


def test_config_needs_one_credential_and_https() -> None:
    base = {"kind": "graph", "tenant_id": TENANT, "client_id": CLIENT_ID, "mailboxes": [MAILBOX]}
    with pytest.raises(ValueError, match="exactly one of"):
        GraphConfig.model_validate(base)
    with pytest.raises(ValueError, match="https"):
        GraphConfig.model_validate(base | {"client_secret_env": "X", "graph_url": "http://graph"})
    with pytest.raises(ValueError, match="twice"):
        GraphConfig.model_validate(base | {"client_secret_env": "X", "mailboxes": [MAILBOX, MAILBOX.upper()]})
    cfg = GraphConfig.model_validate(base | {"client_secret_env": "X"})
    assert (cfg.authority, cfg.graph_url, cfg.scope) == (
        "https://login.microsoftonline.com",
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/.default",
    )


def test_probe(replay: ReplayServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for folder in ("inbox", "sentitems"):
        replay.graph[f"{USERS}/{folder}"] = [Answer(body={"id": folder, "totalItemCount": 3})]
    replay.graph[f"/v1.0/users/{MAILBOX}/mailFolders/nosuch"] = [
        Answer(404, {"error": {"code": "ErrorInvalidIdMalformed", "message": "Id is malformed."}})
    ]
    good = settings(replay)
    bad = settings(replay, folders={"sent": "nosuch"})
    path = tmp_path / "replywatch.yaml"
    doc = {"sources": {"good": good, "bad": bad}, "teams": {"support": {"sources": ["good", "bad"]}}}
    path.write_text(yaml.safe_dump(doc))
    assert main(["check-config", "-c", str(path), "--probe"]) == 2
    out = capsys.readouterr()
    assert "sources.good: ok" in out.out and "sources.bad: FAILED" in out.out
    assert "folder sent: Graph has no such mailbox or folder (404): ErrorInvalidIdMalformed" in out.err
    assert CLIENT_SECRET not in out.out + out.err


def test_errors_are_classified(replay: ReplayServer) -> None:
    for status, kind in ((403, AuthSourceError), (404, PermanentSourceError), (500, TransientSourceError)):
        replay.graph[f"{USERS}/inbox/messages/delta"] = [Answer(status, json.loads('{"error": {}}'))]
        with pytest.raises(kind):
            source(replay).poll(None)


def test_connection_errors_say_which_setting_to_change(replay: ReplayServer, tmp_path: Path) -> None:
    """Graph shares the IMAP source's connection hints (issue 8): a CA nobody configured, a closed port."""
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(TransientSourceError) as caught:
        source(replay, ca_file=str(other)).poll(None)
    assert "the server's certificate is not signed by the CAs in ca_file" in str(caught.value)
    assert str(caught.value).endswith("set `ca_file` to the PEM file of the CA that signed it")

    from tests.servers.dovecot import free_port

    closed = f"https://127.0.0.1:{free_port()}"
    with pytest.raises(TransientSourceError) as caught:
        source(replay, authority=closed, graph_url=closed).poll(None)
    assert str(caught.value).endswith(
        f"{closed.removeprefix('https://')}: connection refused: nothing listens there; check `authority`"
    )
