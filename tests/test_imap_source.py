"""The IMAP source against a real Dovecot: incremental, read-only, resilient to restarts and bad mail."""

from __future__ import annotations

import logging
import re
import ssl
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import trustme
from imapclient import IMAPClient
from pydantic import ValidationError

from monitor.mail import event as mail_event
from monitor.sources import imap as imap_source
from monitor.sources.base import (
    SOURCES,
    AuthSourceError,
    PermanentSourceError,
    PollResult,
    SourcePlugin,
    TransientSourceError,
)
from monitor.sources.imap import ImapConfig, ImapSource, parse_uid_set, uid_set
from tests.servers.dovecot import DovecotServer, Mailbox, TlsMode

pytestmark = pytest.mark.server

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
WRITES = {
    "append",
    "add_flags",
    "remove_flags",
    "set_flags",
    "expunge",
    "uid_expunge",
    "delete_messages",
    "move",
}
WRITES |= {"copy", "create_folder", "delete_folder", "rename_folder", "add_gmail_labels", "set_gmail_labels"}


def message(
    subject: str,
    *,
    sender: str = "Customer <customer@example.org>",
    to: str = "support@example.com",
    msgid: str | None = None,
    date: datetime | None = datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
    extra: str = "",
) -> bytes:
    """A small RFC 5322 message."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}"]
    if msgid:
        lines.append(f"Message-ID: <{msgid}>")
    if date:
        lines.append("Date: " + date.strftime("%a, %d %b %Y %H:%M:%S +0000"))
    if extra:
        lines.extend(extra.strip().splitlines())
    return ("\r\n".join(lines) + "\r\n\r\nHello,\r\nplease help.\r\n").encode()


class RecordingClient:
    """A real IMAPClient that records each method called on it, optionally hiding capabilities."""

    def __init__(
        self,
        client: IMAPClient,
        calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
        hide: Iterable[str] = (),
    ) -> None:
        object.__setattr__(self, "_client", client)
        object.__setattr__(self, "_calls", calls)
        object.__setattr__(self, "_hide", {h.upper().encode() for h in hide})

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append((name, args, kwargs))
            return attr(*args, **kwargs)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._client, name, value)

    def capabilities(self) -> tuple[bytes, ...]:
        self._calls.append(("capabilities", (), {}))
        return tuple(c for c in self._client.capabilities() if c.upper() not in self._hide)

    def has_capability(self, capability: str) -> bool:
        return capability.upper().encode() in self.capabilities()


class Recorder:
    """A client_factory that builds RecordingClients and keeps their calls."""

    def __init__(self, hide: Iterable[str] = ()) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.wire: list[str] = []
        """Every command imaplib sent (the source's fast paths send some without imapclient)."""
        self.clients: list[RecordingClient] = []
        self.hide = tuple(hide)

    def __call__(self, **kwargs: Any) -> RecordingClient:
        real = IMAPClient(**kwargs)
        simple_command = real._imap._simple_command

        def recorded(name: str, *args: Any) -> Any:
            self.wire.append(name)
            return simple_command(name, *args)

        real._imap._simple_command = recorded
        client = RecordingClient(real, self.calls, self.hide)
        self.clients.append(client)
        return client

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def reset(self) -> None:
        self.calls.clear()
        self.wire.clear()


def make_source(
    mailbox: Mailbox,
    *,
    tls: TlsMode = "implicit",
    folders: dict[str, Any] | None = None,
    factory: Callable[..., Any] | None = None,
    batch_size: int = 500,
    **settings: Any,
) -> ImapSource:
    config = ImapConfig.model_validate(
        {**mailbox.imap_settings(tls), "folders": folders or {"sent": "Sent"}, **settings}
    )
    return ImapSource("support", config, client_factory=factory, clock=lambda: NOW, batch_size=batch_size)


def ids(result: PollResult) -> list[str]:
    return [m.external_id for m in result.messages]


@pytest.fixture
def team(imap_mailbox: Mailbox) -> Mailbox:
    """A mailbox with customer mail in INBOX and the team's reply in Sent."""
    imap_mailbox.create_folder("Sent")
    arrived = datetime(2026, 11, 2, 9, 31, tzinfo=UTC)
    imap_mailbox.append("INBOX", message("Order 17 missing", msgid="q1@example.org"), internal_date=arrived)
    imap_mailbox.append(
        "INBOX",
        message(
            "We received your message",
            sender="Bob <bob@example.org>",
            msgid="ar1@example.org",
            extra="Auto-Submitted: auto-replied",
        ),
        internal_date=arrived + timedelta(minutes=1),
    )
    imap_mailbox.append(
        "INBOX",
        message(
            "Our November deals",
            sender="Shop <news@shop.example.net>",
            msgid="nl1@shop.example.net",
            extra="List-Unsubscribe: <mailto:unsub@shop.example.net>\nPrecedence: bulk",
        ),
        flags=["\\Seen"],
        internal_date=arrived + timedelta(minutes=2),
    )
    imap_mailbox.append(
        "Sent",
        message(
            "Re: Order 17 missing",
            sender="Support <support@example.com>",
            to="customer@example.org",
            msgid="r1@example.com",
            date=datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
            extra="In-Reply-To: <q1@example.org>\nReferences: <q1@example.org>",
        ),
        flags=["\\Seen"],
        internal_date=datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
    )
    return imap_mailbox


# --- first poll -----------------------------------------------------------------------------------


def test_first_poll_reports_every_message_with_roles_dates_and_verdicts(team: Mailbox) -> None:
    source = make_source(team)
    result = source.poll(None)

    inbox_validity, sent_validity = team.uidvalidity("INBOX"), team.uidvalidity("Sent")
    assert ids(result) == [
        f"INBOX/{inbox_validity}/1",
        f"INBOX/{inbox_validity}/2",
        f"INBOX/{inbox_validity}/3",
        f"Sent/{sent_validity}/1",
    ]
    by_id = {m.message_id: m for m in result.messages}
    question, auto_reply, newsletter, reply = (
        by_id[k] for k in ("q1@example.org", "ar1@example.org", "nl1@shop.example.net", "r1@example.com")
    )
    assert {m.folder for m in (question, auto_reply, newsletter)} == {"inbox"}
    assert reply.folder == "sent"
    assert question.date == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    assert question.from_addr == "customer@example.org"
    assert question.automated is None
    assert auto_reply.automated == "auto_reply"
    assert newsletter.automated == "bulk"
    assert newsletter.flags == frozenset({"seen"})
    assert reply.in_reply_to == "q1@example.org"
    assert reply.flags == frozenset({"seen"})
    assert result.resync is False

    snapshots = {s.folder: s for s in result.snapshots}
    assert (snapshots["inbox"].total, snapshots["inbox"].unseen, snapshots["inbox"].unanswered) == (3, 2, 3)
    assert snapshots["inbox"].oldest == datetime(2026, 11, 2, 9, 31, tzinfo=UTC)
    assert snapshots["inbox"].at == NOW
    assert (snapshots["sent"].total, snapshots["sent"].unseen) == (1, 0)

    inbox = result.cursor["folders"]["inbox"]
    assert inbox["uidvalidity"] == inbox_validity
    assert inbox["last_uid"] == 3
    assert inbox["highestmodseq"] > 0
    assert inbox["skipped"] == []


def sent_commands(caplog: pytest.LogCaptureFixture, client: Any) -> list[str]:
    """The commands ``client`` sent, untagged, from imaplib's own trace (logger ``imapclient.imaplib``)."""
    prefix = client._imap.tagpre.decode()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"> b'{prefix}")]
    return [re.sub(r"^> b'\w+ (.*?)'?$", r"\1", line) for line in lines]  # LOGIN's is cut short


def test_first_poll_fetches_in_batches_of_explicit_uids(
    imap_mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    imap_mailbox.create_folder("Sent")
    for n in range(10):
        imap_mailbox.append("INBOX", message(f"question {n}", msgid=f"b{n}@example.org"))
    recorder = Recorder()
    source = make_source(imap_mailbox, factory=recorder, batch_size=3)

    with caplog.at_level(logging.DEBUG, logger="imapclient.imaplib"):
        result = source.poll(None)

    assert sorted(m.message_id or "" for m in result.messages) == sorted(
        f"b{n}@example.org" for n in range(10)
    )
    assert len(set(ids(result))) == 10
    header_fetches = [
        re.match(r"UID FETCH ([\d,]+) \(", line)
        for line in sent_commands(caplog, recorder.clients[0])
        if "BODY.PEEK[HEADER.FIELDS" in line
    ]
    fetched = [[int(uid) for uid in found.group(1).split(",")] for found in header_fetches if found]
    assert [len(uids) for uids in fetched] == [3, 3, 3, 1]
    assert sorted(uid for uids in fetched for uid in uids) == list(range(1, 11))


# --- incremental polls ----------------------------------------------------------------------------


def test_unchanged_poll_sends_one_status_per_folder_and_nothing_else(team: Mailbox) -> None:
    recorder = Recorder()
    source = make_source(team, factory=recorder)
    first = source.poll(None)
    recorder.reset()

    second = source.poll(first.cursor)

    assert second.messages == []
    assert second.cursor == first.cursor
    assert [s.folder for s in second.snapshots] == ["inbox", "sent"]
    assert [(s.total, s.unseen, s.unanswered, s.oldest) for s in second.snapshots] == [
        (s.total, s.unseen, s.unanswered, s.oldest) for s in first.snapshots
    ]
    assert recorder.names() == []  # nothing through imapclient: STATUS goes through the fast path
    assert recorder.wire == ["STATUS", "STATUS"]  # one command per folder, nothing else on the wire
    source.fast_fetch = False
    recorder.reset()
    assert source.poll(first.cursor).cursor == first.cursor  # imapclient's path: the same answer
    assert recorder.names() == ["folder_status", "folder_status"]
    assert recorder.wire == ["STATUS", "STATUS"]


def test_new_mail_is_reported_once(team: Mailbox) -> None:
    source = make_source(team)
    first = source.poll(None)
    uid = team.append("INBOX", message("Still waiting", msgid="q2@example.org"))

    second = source.poll(first.cursor)
    third = source.poll(second.cursor)

    assert ids(second) == [f"INBOX/{team.uidvalidity('INBOX')}/{uid}"]
    assert second.messages[0].message_id == "q2@example.org"
    assert second.cursor["folders"]["inbox"]["last_uid"] == uid
    assert {s.folder: s.total for s in second.snapshots}["inbox"] == 4
    assert third.messages == []


def test_flags_set_by_another_client_are_reported_with_headers(team: Mailbox) -> None:
    source = make_source(team)
    first = source.poll(None)
    team.add_flags("INBOX", [1], ["\\Seen", "\\Answered"])

    second = source.poll(first.cursor)

    assert ids(second) == [f"INBOX/{team.uidvalidity('INBOX')}/1"]
    changed = second.messages[0]
    assert changed.flags == frozenset({"seen", "answered"})
    assert changed.message_id == "q1@example.org"  # the whole event again: the store upserts it
    assert changed.subject == "Order 17 missing"
    inbox = {s.folder: s for s in second.snapshots}["inbox"]
    assert (inbox.unseen, inbox.unanswered) == (1, 2)


def test_without_condstore_flags_are_compared_with_the_cursor(team: Mailbox) -> None:
    """A server without CONDSTORE, SORT and UNSELECT (like many Exchange versions)."""
    recorder = Recorder(hide=["CONDSTORE", "SORT", "UNSELECT"])
    team.append("INBOX", message("Deleted but not expunged", msgid="del@example.org"), flags=["\\Deleted"])
    source = make_source(team, factory=recorder)
    first = source.poll(None)
    assert first.cursor["folders"]["inbox"]["highestmodseq"] is None
    assert parse_uid_set(first.cursor["folders"]["inbox"]["flags"]["\\Seen"]) == {3}

    team.add_flags("INBOX", [2], ["\\Answered"])
    new_uid = team.append("INBOX", message("New question", msgid="q3@example.org"))
    second = source.poll(first.cursor)

    validity = team.uidvalidity("INBOX")
    assert ids(second) == [f"INBOX/{validity}/2", f"INBOX/{validity}/{new_uid}"]
    assert second.messages[0].flags == frozenset({"answered"})
    assert source.poll(second.cursor).messages == []
    assert "close_folder" in recorder.names()  # CLOSE after EXAMINE expunges nothing (RFC 3501 §6.4.2)
    assert 4 in team.flags("INBOX")
    assert "\\Deleted" in team.flags("INBOX")[4]


def test_expunged_oldest_message_moves_the_snapshots_oldest(team: Mailbox) -> None:
    source = make_source(team)
    first = source.poll(None)
    with team.client() as admin:
        admin.select_folder("INBOX")
        admin.delete_messages([1])
        admin.expunge()

    second = source.poll(first.cursor)

    inbox = {s.folder: s for s in second.snapshots}["inbox"]
    assert inbox.total == 2
    assert inbox.oldest == datetime(2026, 11, 2, 9, 32, tzinfo=UTC)


# --- read-only by construction --------------------------------------------------------------------


def test_polls_leave_every_flag_exactly_as_it_was(team: Mailbox, caplog: pytest.LogCaptureFixture) -> None:
    before = {folder: team.flags(folder) for folder in ("INBOX", "Sent")}
    recorder = Recorder()
    source = make_source(team, factory=recorder)
    with caplog.at_level(logging.DEBUG, logger="imapclient.imaplib"):
        cursor = source.poll(None).cursor
        cursor = source.poll(cursor).cursor
        new_uid = team.append("INBOX", message("One more", msgid="q9@example.org"))
        cursor = source.poll(cursor).cursor
        source.check()
        source.close()

    after = {folder: team.flags(folder) for folder in ("INBOX", "Sent")}
    assert after["INBOX"].pop(new_uid) == frozenset()  # not \Seen: the monitor only peeked
    assert after == before
    assert not WRITES & set(recorder.names())
    assert all(
        kwargs.get("readonly") or args[1:2] == (True,)
        for name, args, kwargs in recorder.calls
        if name == "select_folder"
    )

    # What went over the wire, from imaplib's own trace of this connection's commands.
    sent = sent_commands(caplog, recorder.clients[0])
    verbs = Counter(re.sub(r"^((?:UID )?[A-Z]+).*", r"\1", line) for line in sent)
    assert set(verbs) <= {
        "LOGIN",
        "CAPABILITY",
        "ENABLE",
        "STATUS",
        "EXAMINE",
        "UID SEARCH",
        "UID FETCH",
        "UNSELECT",
        "LIST",
        "LOGOUT",
    }
    assert verbs["EXAMINE"] == 3  # first poll: both folders; third poll: INBOX only
    fetches = [line for line in sent if line.startswith("UID FETCH ")]
    assert fetches and all("BODY.PEEK[HEADER.FIELDS" in line for line in fetches)


# --- UIDVALIDITY, restarts ------------------------------------------------------------------------


def test_uidvalidity_change_resyncs_the_folder_without_duplicates(team: Mailbox) -> None:
    source = make_source(team)
    first = source.poll(None)
    old_validity = team.uidvalidity("Sent")
    team.delete_folder("Sent")
    team.create_folder("Sent")
    for n in range(2):
        team.append("Sent", message(f"Re: {n}", sender="support@example.com", msgid=f"r{n}b@example.com"))

    second = source.poll(first.cursor)

    new_validity = team.uidvalidity("Sent")
    assert new_validity != old_validity
    assert second.resync is True
    assert ids(second) == [f"Sent/{new_validity}/1", f"Sent/{new_validity}/2"]
    everything = ids(first) + ids(second)
    assert len(everything) == len(set(everything))
    assert second.cursor["folders"]["sent"]["uidvalidity"] == new_validity
    assert second.cursor["folders"]["inbox"] == first.cursor["folders"]["inbox"]
    assert source.poll(second.cursor).resync is False


def test_server_restart_fails_one_poll_then_resumes_without_duplicates(
    dovecot: DovecotServer, team: Mailbox
) -> None:
    source = make_source(team)
    first = source.poll(None)

    dovecot.stop()
    try:
        with pytest.raises(TransientSourceError, match=r"127\.0\.0\.1"):
            source.poll(first.cursor)
    finally:
        dovecot.start()
    second = source.poll(first.cursor)
    assert second.messages == []
    assert second.cursor == first.cursor

    # Restarted between two polls: the stale connection is replaced within the poll, no error.
    dovecot.restart()
    uid = team.append("INBOX", message("After the restart", msgid="q5@example.org"))
    third = source.poll(second.cursor)
    assert ids(third) == [f"INBOX/{team.uidvalidity('INBOX')}/{uid}"]


# --- TLS and login --------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_tls_is_verified_against_the_configured_ca(team: Mailbox, tls: TlsMode) -> None:
    recorder = Recorder()
    source = make_source(team, tls=tls, factory=recorder)

    assert len(source.poll(None).messages) == 4

    sock = recorder.clients[0].socket()
    assert isinstance(sock, ssl.SSLSocket)
    peer = sock.getpeercert()
    assert peer and peer["subjectAltName"]  # verified: only then does getpeercert() return fields


def test_plain_connection_allowed_to_loopback(team: Mailbox) -> None:
    assert len(make_source(team, tls="none").poll(None).messages) == 4


def test_a_different_ca_is_refused(team: Mailbox, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    source = make_source(team, ca_file=str(other_ca))

    with pytest.raises(
        TransientSourceError, match=r"certificate is not signed by the CAs in ca_file .*; set `ca_file`"
    ):
        source.poll(None)


def test_tls_none_to_a_remote_host_is_rejected_by_the_config() -> None:
    with pytest.raises(ValidationError, match=r"not 'imap\.example\.com'"):
        ImapConfig(host="imap.example.com", tls="none", username="u", password_env="P")


def test_wrong_password_is_an_auth_error(team: Mailbox, tmp_path: Path) -> None:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password\n")
    source = make_source(team, password_file=str(wrong))

    with pytest.raises(AuthSourceError, match=f"refused the login of '{team.user}'"):
        source.poll(None)
    problems = source.check()
    assert len(problems) == 1 and "refused the login" in problems[0]


def test_missing_password_variable_is_named(team: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLYWATCH_TEST_NO_SUCH_VAR", raising=False)
    source = make_source(team, password_file=None, password_env="REPLYWATCH_TEST_NO_SUCH_VAR")

    with pytest.raises(AuthSourceError, match="'REPLYWATCH_TEST_NO_SUCH_VAR' is not set"):
        source.poll(None)


def test_password_from_environment(team: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLYWATCH_TEST_IMAP_PASSWORD", team.password)
    source = make_source(team, password_file=None, password_env="REPLYWATCH_TEST_IMAP_PASSWORD")
    assert len(source.poll(None).messages) == 4


@pytest.mark.parametrize("how", ["file", "command"])
def test_xoauth2_login(team: Mailbox, how: str) -> None:
    # This Dovecot checks an XOAUTH2 bearer token like a password, which is enough to drive the mechanism.
    setting: dict[str, Any] = (
        {"oauth2_token_file": str(team.password_file)}
        if how == "file"
        else {"oauth2_token_command": f"cat {team.password_file}"}
    )
    recorder = Recorder()
    source = make_source(team, factory=recorder, password_file=None, **setting)

    assert len(source.poll(None).messages) == 4
    assert "oauth2_login" in recorder.names() and "login" not in recorder.names()


def test_failing_token_command_is_an_auth_error(team: Mailbox) -> None:
    source = make_source(team, password_file=None, oauth2_token_command=["false"])
    with pytest.raises(AuthSourceError, match="exited with status 1"):
        source.poll(None)


# --- folders --------------------------------------------------------------------------------------


def test_missing_folder_is_a_permanent_error_naming_it(team: Mailbox) -> None:
    source = make_source(team, folders={"inbox": "Inbx", "sent": "Sent"})

    with pytest.raises(PermanentSourceError, match=r"folder 'Inbx' not found on 127\.0\.0\.1"):
        source.poll(None)
    assert source.check() == [
        "folder 'Inbx' not found on 127.0.0.1; folders there: 'INBOX', 'Sent'; set `folders` to one of them"
    ]


@pytest.mark.parametrize(
    ("folder", "why"),
    [
        ("Replies", "marked \\Sent by the server (RFC 6154)"),
        ("Sent Items", "a usual name"),
        ("Gesendet", "German"),
    ],
)
def test_sent_auto_finds_the_sent_folder(imap_mailbox: Mailbox, folder: str, why: str) -> None:
    imap_mailbox.create_folder("Archive")
    imap_mailbox.create_folder(folder)
    imap_mailbox.append(folder, message("Re: hi", sender="support@example.com", msgid="r@example.com"))
    source = make_source(imap_mailbox, folders={"sent": "auto"})

    result = source.poll(None)

    assert [(m.folder, m.external_id.rsplit("/", 2)[0]) for m in result.messages] == [("sent", folder)], why
    assert source.check() == []


def test_sent_auto_without_a_sent_folder_says_what_to_do(imap_mailbox: Mailbox) -> None:
    source = make_source(imap_mailbox, folders={"sent": "auto"})
    with pytest.raises(PermanentSourceError, match=r"set folders\.sent"):
        source.poll(None)


def test_extra_folders_use_their_name_as_role(team: Mailbox) -> None:
    team.create_folder("Escalations")
    team.append("Escalations", message("Complaint", msgid="c1@example.org"))
    source = make_source(team, folders={"sent": "Sent", "extra": ["Escalations"]})

    result = source.poll(None)

    assert [m.folder for m in result.messages] == ["inbox", "inbox", "inbox", "sent", "Escalations"]
    assert [s.folder for s in result.snapshots] == ["inbox", "sent", "Escalations"]


# --- bad mail -------------------------------------------------------------------------------------

MALFORMED = [
    # Broken header lines, a header without a colon, an unterminated encoded word, no Date, no Message-ID.
    b"From: broken@example.org\r\nThis line is not a header\r\n"
    b"Subject: =?utf-8?q?unterminated\r\n\r\nbody\r\n",
    # 8-bit garbage in headers (Latin-1 and invalid UTF-8), no Date.
    b"From: M\xfcller <mueller@example.org>\r\nSubject: Gr\xfc\xdfe \xff\xfe\r\n"
    b"Message-ID: <8bit@example.org>\r\n\r\n\xff\r\n",
    # Nothing but a body.
    b"\r\njust a body, no headers at all\r\n",
    # Absurd Date, address lists full of junk, duplicated Message-IDs.
    b"From: <<<@@>>>\r\nTo: ,,,;;; undisclosed-recipients:;\r\nDate: Tue, 99 Foo 20xx 25:61:61 +9999\r\n"
    b"Message-ID: <a@x> <b@y>\r\nReferences: <<<>>>\r\n\r\nx\r\n",
]


def test_malformed_messages_still_become_events(imap_mailbox: Mailbox) -> None:
    imap_mailbox.create_folder("Sent")
    arrived = datetime(2026, 10, 30, 8, 0, tzinfo=UTC)
    imap_mailbox.write_messages("INBOX", [(raw, [], arrived) for raw in MALFORMED])
    good = imap_mailbox.append("INBOX", message("Fine", msgid="fine@example.org"))
    source = make_source(imap_mailbox)

    result = source.poll(None)

    assert len(result.messages) == len(MALFORMED) + 1
    assert result.cursor["folders"]["inbox"]["skipped"] == []
    by_uid = {int(m.external_id.rsplit("/", 1)[1]): m for m in result.messages}
    assert by_uid[good].message_id == "fine@example.org"
    no_date = [m for m in result.messages if m.message_id != "fine@example.org"]
    assert all(m.date == arrived for m in no_date)  # the server's arrival time stands in for Date
    assert sum(m.message_id is None for m in result.messages) == 2


def test_a_message_that_cannot_be_turned_into_an_event_is_skipped_and_counted(
    team: Mailbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    poison = team.append("INBOX", message("POISON secret subject", sender="victim@example.org"))

    def to_event(msg: Any, **kwargs: Any) -> Any:
        if "POISON" in str(msg.get("Subject")):
            raise RuntimeError(f"cannot handle {msg.get('Subject')}")
        return mail_event.to_event(msg, **kwargs)

    monkeypatch.setattr("monitor.sources.imap_events.to_event", to_event)
    source = make_source(team)

    with caplog.at_level(logging.WARNING, logger="monitor.sources.imap"):
        first = source.poll(None)

    assert len(first.messages) == 4
    inbox = first.cursor["folders"]["inbox"]
    assert inbox["skipped"] == [poison]
    assert inbox["last_uid"] == poison  # advanced past it: it must not block the folder
    assert f"uid {poison}" in caplog.text and "RuntimeError" in caplog.text
    assert "secret" not in caplog.text and "victim" not in caplog.text
    assert source.poll(first.cursor).messages == []


@pytest.mark.parametrize("fast", [True, False], ids=["fast-fetch", "imapclient-only"])
def test_a_message_whose_fetch_fails_costs_only_itself(
    team: Mailbox, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    """A response imapclient cannot parse (or a NO for one message) breaks its batch: retry one by one."""
    for n in range(4):
        team.append("INBOX", message(f"more {n}", msgid=f"m{n}@example.org"))
    broken_uid = 5
    real_parse = imap_source.parse_fetch_records

    def parse_fails_too(records: Any, uids: Any) -> Any:
        if broken_uid in uids:
            raise imap_source.FetchParseError("cannot read this one either")
        return real_parse(records, uids)

    # The fast parser cannot read that batch either: imapclient reads it again, then one by one.
    monkeypatch.setattr(imap_source, "parse_fetch_records", parse_fails_too)

    class BrokenResponse(RecordingClient):
        def fetch(self, uids: list[int], items: list[str], *args: Any) -> dict[int, Any]:
            self._calls.append(("fetch", (uids, items), {}))
            if broken_uid in uids and "FLAGS" in items:
                raise ValueError("unexpected message list data")
            return cast(dict[int, Any], self._client.fetch(uids, items, *args))

    calls: list[Any] = []
    source = make_source(team, factory=lambda **kw: BrokenResponse(IMAPClient(**kw), calls), batch_size=4)
    source.fast_fetch = fast

    with caplog.at_level(logging.DEBUG, logger="monitor.sources.imap"):
        result = source.poll(None)

    inbox_uids = sorted(int(i.rsplit("/", 1)[1]) for i in ids(result) if i.startswith("INBOX/"))
    assert inbox_uids == [1, 2, 3, 4, 6, 7]
    assert result.cursor["folders"]["inbox"]["skipped"] == [broken_uid]
    assert result.cursor["folders"]["inbox"]["last_uid"] == 7
    header_fetches = [len(args[0]) for name, args, _ in calls if name == "fetch" and "FLAGS" in args[1]]
    # Fast: [1-4] and Sent's [1] need no imapclient fetch; [5-7] falls back to it, then one by one.
    assert header_fetches == ([3, 1, 1, 1] if fast else [4, 3, 1, 1, 1, 1])
    assert f"uid {broken_uid}: message skipped (ValueError)" in caplog.text
    assert ("fast FETCH of 3 messages not usable (FetchParseError" in caplog.text) is fast


def test_gmail_thread_id_is_fetched_when_the_server_offers_it(team: Mailbox) -> None:
    """Dovecot has no X-GM-EXT-1; this client adds it and answers X-GM-THRID the way Gmail does.

    Dovecot refuses the fast path's X-GM-THRID (BAD), so this also shows a refused fast FETCH being sent
    again through imapclient (the fast parser's X-GM-THRID is covered in test_imap_fetch_parse.py).
    """

    class GmailLike(RecordingClient):
        def capabilities(self) -> tuple[bytes, ...]:
            return (*super().capabilities(), b"X-GM-EXT-1")

        def fetch(self, uids: list[int], items: list[str], *args: Any) -> dict[int, Any]:
            asked = "X-GM-THRID" in items
            out = self._client.fetch(uids, [i for i in items if i != "X-GM-THRID"], *args)
            return {
                uid: {**data, b"X-GM-THRID": 1_780_000_000_000_000 + uid} if asked else data
                for uid, data in out.items()
            }

    calls: list[Any] = []
    source = make_source(team, factory=lambda **kw: GmailLike(IMAPClient(**kw), calls))

    result = source.poll(None)

    assert [m.thread_id for m in result.messages][:3] == [f"178000000000000{n}" for n in (1, 2, 3)]


# --- config ---------------------------------------------------------------------------------------


def test_config_defaults_and_registration() -> None:
    implicit = ImapConfig(host="imap.example.com", username="u", password_env="P")
    starttls = ImapConfig.model_validate(
        {"host": "imap.example.com", "tls": "starttls", "username": "u", "password_env": "P"}
    )
    assert (implicit.port, starttls.port) == (993, 143)
    assert implicit.folders.inbox == "INBOX" and implicit.folders.sent == "auto"
    assert implicit.timeout == timedelta(seconds=30)
    assert SOURCES.get("imap") == SourcePlugin(ImapConfig, ImapSource)


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        (
            {"password_env": "P", "oauth2_token_command": "get-token"},
            "got password_env and oauth2_token_command",
        ),
        ({}, "got none"),
        (
            {"password_env": "P", "folders": {"inbox": "INBOX", "sent": "Sent", "trash": "Trash"}},
            "Extra inputs",
        ),
        ({"password_env": "P", "folders": {"extra": ["INBOX"]}}, "folder 'INBOX' is already watched"),
        ({"password_env": "P", "timeout": "30"}, "invalid duration"),
        ({"password_env": "P", "port": 0}, "greater than or equal to 1"),
    ],
)
def test_config_errors(settings: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        ImapConfig.model_validate({"host": "imap.example.com", "username": "u", **settings})


def test_both_keys_of_one_secret_is_one_error() -> None:
    with pytest.raises(ValidationError) as err:
        ImapConfig.model_validate(
            {"host": "imap.example.com", "username": "u", "password_env": "P", "password_file": "/p"}
        )
    assert [e["msg"] for e in err.value.errors()] == ["give either password_env or password_file, not both"]


def test_uid_sets_round_trip() -> None:
    assert uid_set([7, 1, 2, 3, 9, 10]) == "1:3,7,9:10"
    assert parse_uid_set("1:3,7,9:10") == {1, 2, 3, 7, 9, 10}
    assert uid_set([]) == "" and parse_uid_set("") == set()
