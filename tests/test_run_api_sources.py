"""``replywatch run`` as a real process against the Graph and EWS replay servers, and against Dovecot logging
in with XOAUTH2 as Gmail is read.

The daemon starts, polls and judges: ``/metrics`` shows the team's awaiting items, the source up and
replywatch's own unanswered count per folder. Then it keeps polling an unchanged mailbox, and the replay
server's request log shows what each of those polls cost: one request per folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.servers.dovecot import Mailbox
from tests.servers.replay import CLIENT_ID, CLIENT_SECRET, TENANT, Answer, ReplayServer
from tests.test_api_sources_golden import ENVELOPE, TEAM, conversations, ews_message, graph_message
from tests.test_run_process import free_port, wait_for

SALES = "sales@example.com"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def config(tmp_path: Path, port: int, source: dict[str, Any], **rules: Any) -> Path:
    doc = {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        "http": {"listen": f"127.0.0.1:{port}"},
        "engine": {"evaluate_every": "1s"},
        "sources": {"mail": source | {"poll_every": "1s"}},
        "teams": {
            "support": {
                "addresses": [TEAM],
                "internal_domains": ["example.com"],
                "sources": ["mail"],
                "rules": [
                    {"kind": "reply_within", "within": "24h"},
                    {"kind": "inbox_nearly_empty", "max_unanswered": 0, **rules},
                ],
            }
        },
    }
    path = tmp_path / "replywatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@contextmanager
def running(path: Path, tmp_path: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "replywatch.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(path)],
        stdout=log,
        stderr=log,
        env=os.environ | env | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        yield proc
        proc.terminate()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.seek(0)
        text = log.read()
        log.close()
        assert "Traceback" not in text, text
        for address in ("carol@cust.example", "dave@cust.example", "erin@cust.example"):
            assert address not in text  # no customer in the log lines


def judged(port: int) -> Samples:
    """The metrics once the team has been judged after the first poll."""
    awaiting = {"team": "support", "channel": "email"}
    wait_for(lambda: value(scrape(port), "replywatch_awaiting", **awaiting) == 2, timeout=60)
    return scrape(port)


def assert_judged(m: Samples, *inboxes: tuple[str, float]) -> None:
    """Two customers wait (the golden set's carol and erin's follow-up); each inbox's unanswered count."""
    assert value(m, "replywatch_source_up", source="mail") == 1
    for folder, unanswered in inboxes:
        labels = {"team": "support", "mailbox": "mail", "folder": folder}
        assert value(m, "replywatch_mailbox_messages", state="unanswered", **labels) == unanswered, folder
    breaches = 1 if any(n for _, n in inboxes) else 0
    assert value(m, "replywatch_breaches_open", team="support", rule="inbox_nearly_empty") == breaches


# --- Graph ------------------------------------------------------------------------------------------


def load_graph(server: ReplayServer) -> dict[str, str]:
    """Each folder's first round (the golden set in support's mailbox, nothing in sales'), then its delta
    link answering "no change"; returns folder -> delta link path."""
    links = {}
    for mailbox in (TEAM, SALES):
        for role, folder in (("inbox", "inbox"), ("sent", "sentitems")):
            path = f"/v1.0/users/{mailbox}/mailFolders/{folder}/messages/delta"
            mine = [(n, raw) for n, (f, raw) in enumerate(conversations()) if f == role and mailbox == TEAM]
            link = f"{path}?$deltatoken={role}-{mailbox}"
            server.graph[path] = [
                Answer(
                    body={
                        "value": [graph_message(n, r) for n, r in mine],
                        "@odata.deltaLink": server.base + link,
                    }
                )
            ]
            server.graph[f"{path}?$deltatoken={role}-{mailbox}"] = [
                Answer(body={"value": [], "@odata.deltaLink": server.base + link})
            ]
            links[f"{mailbox}/{role}"] = path
    return links


def test_run_against_graph(replay: ReplayServer, tmp_path: Path) -> None:
    links = load_graph(replay)
    port = free_port()
    source = {
        "kind": "graph", "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret_env": "RUN_GRAPH_SECRET",
        "mailboxes": [TEAM, SALES], "authority": replay.base, "graph_url": replay.base,
        "ca_file": str(replay.ca_file),
    }  # fmt: skip
    path = config(tmp_path, port, source)
    with running(path, tmp_path, {"RUN_GRAPH_SECRET": CLIENT_SECRET}):
        m = judged(port)
        assert_judged(m, (f"{TEAM}/inbox", 2), (f"{SALES}/inbox", 0))
        labels = {"team": "support", "mailbox": "mail"}
        assert value(m, "replywatch_mailbox_messages", folder=f"{TEAM}/inbox", state="total", **labels) == 5
        assert value(m, "replywatch_mailbox_messages", folder=f"{TEAM}/sent", state="total", **labels) == 2
        assert (
            value(m, "replywatch_mailbox_messages", folder=f"{TEAM}/sent", state="unanswered", **labels)
            is None
        )

        first_round = len(links)
        # Every later poll of the unchanged folders asks each folder's delta link, once.
        wait_for(lambda: len(replay.graph_requests()) >= first_round + 3 * len(links), timeout=60)
    assert replay.mistakes == []
    later = replay.graph_requests()[first_round:]
    assert all("$deltatoken" in r.query for r in later)
    per_folder = Counter(r.path for r in later)
    assert set(per_folder) == set(links.values())
    assert max(per_folder.values()) - min(per_folder.values()) <= 1  # one request per folder and poll
    assert replay.tokens_issued == 1


# --- EWS (with OAuth, as Exchange Online) -----------------------------------------------------------

EWS_SCOPE = "https://outlook.office365.com/.default"


def ews_answers(server: ReplayServer) -> None:
    """Inbox then Sent Items of the golden set, then every sync answering "no change" with its state."""
    syncs, gets = [], []
    for role in ("inbox", "sent"):
        mine = [(n, raw) for n, (f, raw) in enumerate(conversations()) if f == role]
        creates = "".join(
            f'<t:Create><t:Message><t:ItemId Id="AAMkEWSgolden{n}=" ChangeKey="CQAAAB{n}"/>'
            "</t:Message></t:Create>"
            for n, _ in mine
        )
        syncs.append(sync_answer(f"H4sI{role}", creates))
        items = "".join(ews_message(n, raw) for n, raw in mine)
        gets.append(Answer(body=ENVELOPE.format(op="GetItem", body=items).encode()))
    server.ews["SyncFolderItems"] = [*syncs, sync_answer("H4sIsame", "")]
    server.ews["GetItem"] = gets


def sync_answer(state: str, changes: str) -> Answer:
    body = (
        '<m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
        f"<m:SyncState>{state}</m:SyncState><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
        f"<m:Changes>{changes}</m:Changes></m:SyncFolderItemsResponseMessage>"
    )
    return Answer(body=ENVELOPE.format(op="SyncFolderItems", body=body).encode())


def test_run_against_ews_with_an_app_token(replay: ReplayServer, tmp_path: Path) -> None:
    ews_answers(replay)
    replay.ews_checks.append(lambda seen: replay.token_problem(seen.headers.get("authorization"), EWS_SCOPE))
    port = free_port()
    source = {
        "kind": "exchange", "service_endpoint": f"{replay.base}/EWS/Exchange.asmx", "version": "15.1",
        "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret_env": "RUN_EWS_SECRET",
        "authority": replay.base, "mailboxes": [TEAM], "ca_file": str(replay.ca_file),
    }  # fmt: skip
    path = config(tmp_path, port, source)
    with running(path, tmp_path, {"RUN_EWS_SECRET": CLIENT_SECRET}):
        m = judged(port)
        assert_judged(m, ("inbox", 2))
        labels = {"team": "support", "mailbox": "mail"}
        assert value(m, "replywatch_mailbox_messages", folder="inbox", state="total", **labels) == 5
        assert value(m, "replywatch_mailbox_messages", folder="sent", state="unseen", **labels) == 2
        first_round = 4  # a sync and a GetItem per folder
        wait_for(lambda: len(replay.ews_requests()) >= first_round + 3 * 2, timeout=60)
    assert replay.mistakes == []
    later = [r.body.decode() for r in replay.ews_requests()[first_round:]]
    assert all("<m:SyncFolderItems>" in b and "<m:SyncState>" in b for b in later)  # no GetItem
    per_folder = Counter(re.search(r'DistinguishedFolderId Id="(\w+)"', b).group(1) for b in later)  # type: ignore[union-attr]
    assert set(per_folder) == {"inbox", "sentitems"}
    assert max(per_folder.values()) - min(per_folder.values()) <= 1
    (form, *_) = replay.token_requests()
    assert form["scope"] == EWS_SCOPE and form["grant_type"] == "client_credentials"


# --- Gmail: IMAP with XOAUTH2 ------------------------------------------------------------------------


def test_run_against_dovecot_with_xoauth2(imap_mailbox: Mailbox, tmp_path: Path) -> None:
    """Gmail is read as IMAP with an XOAUTH2 token; this Dovecot checks the bearer token like a password
    (Dovecot has no X-GM-EXT-1, so X-GM-THRID is covered by the IMAP source's own tests)."""
    imap_mailbox.create_folder("Sent")
    for folder, raw in conversations():
        imap_mailbox.append("INBOX" if folder == "inbox" else "Sent", raw)
    settings = imap_mailbox.imap_settings("implicit")
    source = {k: v for k, v in settings.items() if k != "password_file"}
    source["oauth2_token_file"] = settings["password_file"]
    port = free_port()
    path = config(tmp_path, port, source)
    with running(path, tmp_path, {}):
        m = judged(port)
        assert_judged(m, ("inbox", 2))
    log = imap_mailbox.server.log_text()
    assert f"Login: user=<{imap_mailbox.user}>, method=XOAUTH2" in log, log[-2000:]
