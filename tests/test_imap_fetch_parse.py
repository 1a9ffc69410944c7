"""The IMAP source's fast FETCH parser: recorded response shapes in, imapclient's values out; same events."""

from __future__ import annotations

import imaplib
import io
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imapclient import IMAPClient
from imapclient.datetime_util import parse_to_datetime
from imapclient.response_parser import parse_fetch_response as imapclient_parse

from monitor.sources import imap as imap_source
from monitor.sources.imap import ImapSource
from monitor.sources.imap_fetch import (
    FetchParseError,
    fetch_responses,
    parse_fetch_records,
    parse_fetch_response,
)
from tests.servers.dovecot import Mailbox
from tests.test_imap_source import MALFORMED, Recorder, RecordingClient, make_source, message

HEADER_KEY = b"BODY[HEADER.FIELDS (MESSAGE-ID DATE FROM SUBJECT)]"
DOVECOT_HEADERS = b"Message-ID: <q1@example.org>\r\nSubject: Order 17\r\n\r\n"


# --- imaplib replaying a recorded answer ----------------------------------------------------------


class ReplayedIMAP(imaplib.IMAP4):
    """imaplib reading a server's recorded answer from memory; what it sends is kept, not sent."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.sent: list[bytes] = []
        super().__init__()

    def open(self, host: str = "", port: int = 0, timeout: float | None = None) -> None:
        self.file = io.BytesIO(self.reply)

    def _connect(self) -> None:
        self.tagpre = b"A"
        self.tagre = re.compile(rb"(?P<tag>A\d+) (?P<type>[A-Z]+) (?P<data>.*)", re.ASCII)
        self._cmd_log_len, self._cmd_log_idx, self._cmd_log = 10, 0, {}
        self.state = "SELECTED"

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def shutdown(self) -> None:
        pass


def lit(data: bytes) -> bytes:
    """``data`` as an IMAP literal."""
    return b"{%d}\r\n" % len(data) + data


def answer(*untagged: bytes, status: bytes = b"OK") -> bytes:
    """A server's answer to the first command: untagged lines (``* `` added), then the tagged status."""
    return b"".join(b"* " + line + b"\r\n" for line in untagged) + b"A0 " + status + b" done\r\n"


def records(*untagged: bytes) -> list[Any]:
    """What imaplib hands over for a UID FETCH answered with ``untagged``."""
    typ, data = ReplayedIMAP(answer(*untagged)).uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    return list(data)


def imapclient_view(data: list[Any], uids: list[int]) -> dict[int, dict[bytes, Any]]:
    """What ``IMAPClient.fetch`` returns for the same records (with ``normalise_times`` off)."""
    parsed = imapclient_parse(data, False, True)
    return {uid: parsed[uid] for uid in uids if uid in parsed}


# --- recorded shapes ------------------------------------------------------------------------------


def test_dovecot_shape() -> None:
    """As Dovecot answers: FLAGS, INTERNALDATE, then the header literal, then ')' on the next line."""
    data = records(
        b'1 FETCH (UID 1 FLAGS (\\Seen \\Recent) INTERNALDATE "02-Nov-2026 09:31:00 +0100" '
        + HEADER_KEY
        + b" "
        + lit(DOVECOT_HEADERS)
        + b")",
        b'2 FETCH (UID 7 FLAGS () INTERNALDATE "02-Nov-2026 09:32:00 +0000" ' + HEADER_KEY + b" {0}\r\n)",
    )
    assert data[0] == (
        b'1 (UID 1 FLAGS (\\Seen \\Recent) INTERNALDATE "02-Nov-2026 09:31:00 +0100" '
        + HEADER_KEY
        + b" {%d}" % len(DOVECOT_HEADERS),
        DOVECOT_HEADERS,
    )

    parsed = parse_fetch_records(data, [1, 7])

    assert list(parsed) == [1, 7]
    first = parsed[1]
    assert first[b"FLAGS"] == (b"\\Seen", b"\\Recent")
    assert first[b"INTERNALDATE"] == datetime(2026, 11, 2, 8, 31, tzinfo=UTC)
    assert first[b"INTERNALDATE"].utcoffset() == timedelta(hours=1)  # the zone kept, as imapclient keeps it
    assert first[HEADER_KEY] == DOVECOT_HEADERS
    assert first[b"SEQ"] == 1 and b"UID" not in first
    assert parsed[7][HEADER_KEY] == b"" and parsed[7][b"FLAGS"] == ()
    assert parsed == imapclient_view(data, [1, 7])


@pytest.mark.parametrize(
    "line",
    [
        # UID last, after the literal (on the continuation line), MODSEQ and Gmail's thread id.
        b"3 FETCH (FLAGS (\\Answered $Forwarded) "
        + HEADER_KEY
        + b" "
        + lit(DOVECOT_HEADERS)
        + b' INTERNALDATE "02-Nov-2026 09:31:00 +0100" MODSEQ (12345) X-GM-THRID 1780000000000000005 UID 5)',
        # The literal first, lower-case item names.
        b"3 FETCH (" + HEADER_KEY + b" " + lit(DOVECOT_HEADERS) + b" uid 5 flags (\\Answered $Forwarded) "
        b'internaldate "02-Nov-2026 09:31:00 +0100" x-gm-thrid 1780000000000000005 modseq (12345))',
        # Everything on one line: the headers as a quoted string.
        b'3 FETCH (X-GM-THRID 1780000000000000005 UID 5 MODSEQ (12345) INTERNALDATE "02-Nov-2026 09:31:00 '
        b'+0100" FLAGS (\\Answered $Forwarded) ' + HEADER_KEY + b' "Message-ID: <q1@example.org>")',
    ],
    ids=["uid-last", "literal-first", "quoted-body"],
)
def test_items_in_any_order(line: bytes) -> None:
    data = records(line)

    parsed = parse_fetch_records(data, [5])

    item = parsed[5]
    assert item[b"FLAGS"] == (b"\\Answered", b"$Forwarded")
    assert item[b"INTERNALDATE"] == datetime(2026, 11, 2, 8, 31, tzinfo=UTC)
    assert item[b"MODSEQ"] == (12345,)
    assert item[b"X-GM-THRID"] == 1_780_000_000_000_000_005
    assert item[HEADER_KEY].startswith(b"Message-ID: <q1@example.org>")
    assert parsed == imapclient_view(data, [5])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"NIL", None),
        (b"{0}\r\n", b""),
        (b'""', b""),
        (b'"Subject: a \\"quoted\\" word, a \\\\ and \\x"', b'Subject: a "quoted" word, a \\ and \\x'),
        (
            lit(b'Subject: ) ( "{5}\r\n * 9 FETCH (UID 9)\r\n\r\n'),
            b'Subject: ) ( "{5}\r\n * 9 FETCH (UID 9)\r\n\r\n',
        ),
    ],
    ids=["nil", "empty-literal", "empty-quoted", "quoted-escapes", "literal-looking-like-imap"],
)
def test_header_section_forms(body: bytes, expected: bytes | None) -> None:
    data = records(b"1 FETCH (UID 4 FLAGS () " + HEADER_KEY + b" " + body + b")")

    parsed = parse_fetch_records(data, [4])

    assert parsed[4][HEADER_KEY] == expected
    assert parsed == imapclient_view(data, [4])


def test_unsolicited_fetch_responses_are_left_out() -> None:
    """Flag updates without UID, other messages, a late update of ours: never mixed into our messages."""
    data = records(
        b"7 FETCH (FLAGS (\\Seen))",
        b"1 FETCH (UID 2 FLAGS () " + HEADER_KEY + b" " + lit(b"Subject: two\r\n\r\n") + b")",
        b"2 FETCH (MODSEQ (5) FLAGS (\\Flagged \\Recent))",  # Dovecot's unsolicited update: no UID
        b"3 FETCH (UID 9 FLAGS (\\Deleted))",  # another message
        b"4 FETCH (UID 4 FLAGS (\\Seen) " + HEADER_KEY + b" " + lit(b"Subject: four\r\n\r\n") + b")",
        b"4 FETCH (UID 4 FLAGS (\\Seen \\Answered))",  # ours again, without the header section
    )

    parsed = parse_fetch_records(data, [4, 2])

    assert list(parsed) == [4, 2]  # the order asked for
    assert parsed[2][b"FLAGS"] == () and parsed[2][HEADER_KEY] == b"Subject: two\r\n\r\n"
    assert parsed[4][b"FLAGS"] == (b"\\Seen",) and parsed[4][HEADER_KEY] == b"Subject: four\r\n\r\n"
    # imapclient keys the update without UID by its sequence number, 2: UID 2 gets another's \Flagged.
    assert imapclient_view(data, [2])[2][b"FLAGS"] == (b"\\Flagged", b"\\Recent")


def test_messages_not_answered_are_missing_not_invented() -> None:
    data = records(b"1 FETCH (UID 2 FLAGS () " + HEADER_KEY + b" NIL)")
    assert list(parse_fetch_records(data, [1, 2, 3])) == [2]
    assert parse_fetch_records([None], [1, 2]) == {}  # imaplib's "no FETCH response at all"


def test_a_requested_message_without_its_header_section_is_an_error() -> None:
    data = records(b"1 FETCH (UID 2 FLAGS (\\Seen))")
    with pytest.raises(FetchParseError, match="without its header section"):
        parse_fetch_records(data, [2])


def test_keywords_made_of_digits_stay_bytes() -> None:
    _uid, item = parse_fetch_response(b"1 (UID 3 FLAGS (\\Seen 1234 $0) " + HEADER_KEY + b" NIL)")
    assert item[b"FLAGS"] == (b"\\Seen", b"1234", b"$0")


@pytest.mark.parametrize(
    "data",
    [
        [b"1 (UID 2 FLAGS (\\Seen) " + HEADER_KEY + b" NIL"],  # no closing parenthesis
        [b"1 (UID 2 FLAGS (\\Seen)) " + HEADER_KEY + b" NIL)"],  # one too many
        [b'1 (UID 2 FLAGS () BODY[HEADER] "unterminated)'],
        [b"1 (UID 2 FLAGS () BODY[HEADER NIL)"],  # unterminated section
        [b"1 (UID 2 FLAGS () BODY[HEADER] NIL INTERNALDATE)"],  # an item without a value
        [b"1 (UID two FLAGS () BODY[HEADER] NIL)"],
        [b"1 (UID 2 FLAGS \\Seen BODY[HEADER] NIL)"],
        [b"1 (UID 2 FLAGS ((\\Seen)) BODY[HEADER] NIL)"],
        [b"1 (UID 2 INTERNALDATE 17 BODY[HEADER] NIL)"],
        [b"1 (UID 2 FLAGS () BODY[HEADER] NIL) 3"],  # something after the response
        [b"1 (UID 2 FLAGS () \x01 BODY[HEADER] NIL)"],
        [b"(UID 2 BODY[HEADER] NIL)"],  # no sequence number
        [b" UID 2)"],  # a continuation without a response
        [(b"1 (UID 2 BODY[HEADER] {5}", b"four"), b")"],  # literal shorter than announced
        [(b"1 (UID 2 BODY[HEADER] {x}", b"four"), b")"],
        [(b"1 (UID 2 BODY[HEADER] {4}", b"four"), b" X {2}"],  # a literal announced but not read
        [b"1 (UID 2 BODY[HEADER] \x00)"],
        ["1 (UID 2 BODY[HEADER] NIL)"],  # str, not bytes
    ],
)
def test_malformed_responses_raise_fetch_parse_error(data: list[Any]) -> None:
    with pytest.raises(FetchParseError):
        parse_fetch_records(data, [2])


def test_records_are_grouped_into_responses() -> None:
    data = records(
        b"1 FETCH (UID 1 A " + lit(b"x") + b" B " + lit(b"yy") + b" C 3)",
        b"2 FETCH (UID 2 FLAGS ())",
    )
    assert fetch_responses(data) == [
        (b"1 (UID 1 A \x00 B \x00 C 3)", [b"x", b"yy"]),
        (b"2 (UID 2 FLAGS ())", []),
    ]


# --- the same values as imapclient, on generated responses ----------------------------------------

_FLAG = st.sampled_from(
    [b"\\Seen", b"\\Answered", b"\\Flagged", b"\\Draft", b"\\Recent", b"$Forwarded", b"Junk"]
)
_ZONE = st.sampled_from([b"+0000", b"+0100", b"-0700", b"+0530"])
_HEADER_BYTES = st.binary(max_size=300).map(lambda b: b.replace(b"\r\n", b"\n"))
_QUOTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.encode)


def _quoted(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


@st.composite
def fetch_response(draw: Callable[..., Any], seq: int, uid: int) -> bytes:
    """One FETCH response line (``N FETCH (...)``) with its items in a random order."""
    when = draw(st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2037, 1, 1)))
    date = when.strftime("%d-%b-%Y %H:%M:%S ").encode() + draw(_ZONE)
    body_kind = draw(st.sampled_from(["literal", "quoted", "nil"]))
    if body_kind == "literal":
        body = lit(draw(_HEADER_BYTES))
    elif body_kind == "quoted":
        body = _quoted(draw(_QUOTABLE))
    else:
        body = b"NIL"
    items = [
        b"UID %d" % uid,
        b"FLAGS (" + b" ".join(draw(st.lists(_FLAG, unique=True, max_size=4))) + b")",
        b'INTERNALDATE "' + date + b'"',
        HEADER_KEY + b" " + body,
    ]
    if draw(st.booleans()):
        items.append(b"MODSEQ (%d)" % draw(st.integers(1, 2**63 - 1)))
    if draw(st.booleans()):
        items.append(b"X-GM-THRID %d" % draw(st.integers(1, 2**64 - 1)))
    return b"%d FETCH (" % seq + b" ".join(draw(st.permutations(items))) + b")"


@st.composite
def fetch_answer(draw: Callable[..., Any]) -> tuple[list[bytes], list[int]]:
    """Several responses for distinct UIDs (sequence numbers unlike UIDs)."""
    uids = draw(st.lists(st.integers(100, 10_000), unique=True, min_size=1, max_size=6))
    return [draw(fetch_response(seq, uid)) for seq, uid in enumerate(uids, start=1)], uids


@settings(max_examples=300, deadline=None)
@given(fetch_answer())
def test_values_equal_imapclients(generated: tuple[list[bytes], list[int]]) -> None:
    lines, uids = generated
    data = records(*lines)
    assert parse_fetch_records(data, uids) == imapclient_view(data, uids)


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 1, 1)), _ZONE)
def test_internaldate_is_imapclients(when: datetime, zone: bytes) -> None:
    text = when.strftime("%d-%b-%Y %H:%M:%S ").encode() + zone
    _uid, item = parse_fetch_response(b'1 (UID 1 INTERNALDATE "' + text + b'")')
    assert item[b"INTERNALDATE"] == parse_to_datetime(text, normalise=False)
    assert item[b"INTERNALDATE"].utcoffset() == parse_to_datetime(text, normalise=False).utcoffset()


def test_an_unreadable_internaldate_is_none_as_with_imapclient() -> None:
    _uid, item = parse_fetch_response(b'1 (UID 1 INTERNALDATE "not a date" ' + HEADER_KEY + b" NIL)")
    assert item[b"INTERNALDATE"] is None


def test_an_internaldate_zone_too_large_for_c_is_none_not_a_failed_poll() -> None:
    # A hostile server's offset overflows a C int: OverflowError, not ValueError (issue 7).
    huge = b'1 (UID 1 INTERNALDATE "01-Jan-2026 00:00:00 +99999999999999999999" ' + HEADER_KEY + b" NIL)"
    _uid, item = parse_fetch_response(huge)
    assert item[b"INTERNALDATE"] is None


# --- the source's fast path around the parser -----------------------------------------------------


def _source(**settings: Any) -> ImapSource:
    config = imap_source.ImapConfig(host="127.0.0.1", tls="none", username="u", password_env="P", **settings)
    return ImapSource("support", config)


@pytest.mark.parametrize("status", [b"NO", b"BAD"])
def test_a_refused_fast_fetch_leaves_no_responses_behind(status: bytes) -> None:
    imap = ReplayedIMAP(
        answer(
            b"1 FETCH (UID 1 FLAGS () " + HEADER_KEY + b" " + lit(b"Subject: x\r\n\r\n") + b")", status=status
        )
    )
    with pytest.raises(imaplib.IMAP4.error):
        _source()._fetch_records(imap, [1, 2], ["FLAGS", "BODY.PEEK[HEADER.FIELDS (Subject)]"])
    assert "FETCH" not in imap.untagged_responses  # imapclient's fetch, asked next, sees none of them
    assert imap.sent == [b"A0 UID FETCH 1,2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"]


def test_imaplib_trace_is_quieted_only_while_nobody_listens(caplog: pytest.LogCaptureFixture) -> None:
    line = b"1 FETCH (UID 1 FLAGS () " + HEADER_KEY + b" " + lit(b"Subject: x\r\n\r\n") + b")"
    seen: list[int] = []

    class Watching(ReplayedIMAP):
        def _get_response(self) -> Any:
            seen.append(self.debug)
            return super()._get_response()

    imap = Watching(answer(line))
    imap.debug = 5  # as imapclient sets it
    records = _source()._fetch_records(imap, [1], ["FLAGS"])
    assert set(seen) == {0} and imap.debug == 5
    # No response line went into imaplib's ring of the last lines either (formatted for a trace only).
    assert [entry for entry, _ in imap._cmd_log.values() if entry.startswith("<")] == []
    assert "_get_line" not in vars(imap)  # imaplib's own line reader again, for every other command
    assert records == imaplib_records(answer(line))

    seen.clear()
    imap = Watching(answer(line))
    imap.debug = 5
    imap._mesg = logging.getLogger("imapclient.imaplib").debug  # type: ignore[method-assign]
    with caplog.at_level(logging.DEBUG, logger="imapclient.imaplib"):
        _source()._fetch_records(imap, [1], ["FLAGS"])
    assert set(seen) == {5} and "A0 UID FETCH 1 (FLAGS)" in caplog.text
    assert "< b'* 1 FETCH (UID 1 FLAGS ()" in caplog.text  # the answer's lines, traced


def imaplib_records(reply: bytes) -> list[Any]:
    """What imaplib itself reads of ``reply`` to ``UID FETCH 1 (FLAGS)``, its trace left on."""
    imap = ReplayedIMAP(reply)
    typ, records = imap.uid("FETCH", "1", "(FLAGS)")
    assert typ == "OK"
    assert [entry for entry, _ in imap._cmd_log.values() if entry.startswith("<")]
    return list(records)


def test_a_line_cut_short_is_a_lost_connection_without_its_text() -> None:
    imap = ReplayedIMAP(b"* 1 FETCH (UID 1 FLAGS () " + HEADER_KEY + b" {5000}\r\nSubject: private")
    with pytest.raises(imaplib.IMAP4.abort) as raised:
        _source()._fetch_records(imap, [1], ["FLAGS"])
    assert "private" not in str(raised.value)
    assert "_get_line" not in vars(imap)
    imap = ReplayedIMAP(b"* 1 FETCH (UID 1 FLAGS (\\Seen private)")  # no CRLF: the server stopped
    with pytest.raises(imaplib.IMAP4.abort, match="unterminated line") as raised:
        _source()._fetch_records(imap, [1], ["FLAGS"])
    assert "private" not in str(raised.value)


# --- against Dovecot: the fast path's events are imapclient's -------------------------------------

_BIG_REFERENCES = "\r\n ".join(f"<ref{n:03d}.{'x' * 24}@lists.example.org>" for n in range(400))
VARIED: list[tuple[bytes, list[str], datetime]] = [
    (message("Plain question", msgid="p1@example.org"), [], datetime(2026, 10, 1, 8, 0, tzinfo=UTC)),
    (
        (
            "From: Jörg Müller <joerg@example.de>\r\nTo: support@example.com\r\n"
            "Subject: Grüße aus Köln \u2013 Rückfrage\r\nMessage-ID: <utf8@example.de>\r\n"
            "Date: Thu, 01 Oct 2026 10:00:00 +0200\r\n\r\nHallo\r\n"
        ).encode(),
        ["\\Seen"],
        datetime(2026, 10, 1, 8, 1, tzinfo=timezone(timedelta(hours=2))),
    ),
    (
        b"From: Fran\xe7ois <francois@example.fr>\r\nSubject: R\xe9clamation\r\n"
        b"Message-ID: <latin1@example.fr>\r\n\r\nBonjour\r\n",
        ["\\Seen", "\\Answered"],
        datetime(2026, 10, 1, 8, 2, tzinfo=UTC),
    ),
    (
        b"From: =?utf-8?q?Ana_Garc=C3=ADa?= <ana@example.es>\r\n"
        b"To: support@example.com,\r\n\tsales@example.com,\r\n  Accounts <accounts@example.com>\r\n"
        b"Subject: =?utf-8?b?UHJvYmxlbWEgY29uIGVsIHBlZGlkbw==?=\r\n"
        b" continued on a folded line\r\n\tand another\r\nMessage-ID:\r\n <folded@example.es>\r\n"
        b"Date: Thu, 1 Oct 2026\r\n 12:00:00 +0000\r\n\r\nHola\r\n",
        ["\\Flagged"],
        datetime(2026, 10, 1, 8, 3, tzinfo=UTC),
    ),
    (message("No date", msgid="nodate@example.org", date=None), [], datetime(2026, 10, 1, 8, 4, tzinfo=UTC)),
    (message("No message id"), ["$Forwarded"], datetime(2026, 10, 1, 8, 5, tzinfo=UTC)),
    (
        message(
            "Re: a long thread",
            sender="Support <support@example.com>",
            msgid="long@example.com",
            extra=f"In-Reply-To: <ref399.{'x' * 24}@lists.example.org>\nReferences: {_BIG_REFERENCES}",
        ),
        ["\\Seen", "Junk"],
        datetime(2026, 10, 1, 8, 6, tzinfo=UTC),
    ),
    (
        message(
            'Looks like IMAP: ) ( "{12}" * 3 FETCH (UID 99 FLAGS (\\Deleted)) NIL ]',
            sender='"O\'Brien, Pat (Sales)" <pat@example.ie>',
            msgid="imapish@example.ie",
            extra="Auto-Submitted: auto-replied\nX-Autoreply: yes\n"
            "Thread-Index: AdkZ1234567890abcdefghijklmnopqrstuvw==",
        ),
        ["\\Draft"],
        datetime(2026, 10, 1, 8, 7, tzinfo=UTC),
    ),
    (
        message(
            "Newsletter",
            sender="News <news@shop.example.net>",
            msgid="nl@shop.example.net",
            extra="List-Unsubscribe: <mailto:u@shop.example.net>\nPrecedence: bulk\n"
            "List-Id: <news.shop.example.net>",
        ),
        ["\\Seen"],
        datetime(2026, 10, 1, 8, 8, tzinfo=UTC),
    ),
    (
        b"X-Unrelated: only headers we do not fetch\r\n\r\nbody\r\n",
        [],
        datetime(2026, 10, 1, 8, 9, tzinfo=UTC),
    ),
    *((raw, [], datetime(2026, 10, 1, 9, n, tzinfo=UTC)) for n, raw in enumerate(MALFORMED)),
]


def _fill(mailbox: Mailbox) -> None:
    mailbox.create_folder("Sent")
    for raw, flags, when in VARIED:
        mailbox.append("INBOX", raw, flags=flags, internal_date=when)
    mailbox.append(
        "Sent",
        message("Re: Plain question", sender="support@example.com", msgid="r1@example.com",
                extra="In-Reply-To: <p1@example.org>\nReferences: <p1@example.org>"),
        flags=["\\Seen"],
    )  # fmt: skip


def _imapclient_fallbacks(source: ImapSource, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the batch sizes that ``source`` reads through imapclient instead of the fast path."""
    calls: list[int] = []
    original = source._fetch_batch_imapclient

    def spy(client: Any, folder: str, uids: Any, items: Any, fetched: Any) -> Any:
        calls.append(len(uids))
        return original(client, folder, uids, items, fetched)

    monkeypatch.setattr(source, "_fetch_batch_imapclient", spy)
    return calls


@pytest.mark.server
@pytest.mark.parametrize(
    ("batch_size", "hide"),
    [(500, ()), (3, ()), (4, ("CONDSTORE",))],
    ids=["one-batch", "batches-of-3", "no-condstore"],
)
def test_fast_path_events_equal_imapclient_events(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, batch_size: int, hide: tuple[str, ...]
) -> None:
    _fill(imap_mailbox)
    fast = make_source(imap_mailbox, batch_size=batch_size, factory=Recorder(hide=hide))
    slow = make_source(imap_mailbox, batch_size=batch_size, factory=Recorder(hide=hide))
    slow.fast_fetch = False
    fallbacks = _imapclient_fallbacks(fast, monkeypatch)

    first_fast, first_slow = fast.poll(None), slow.poll(None)

    assert len(first_fast.messages) == len(VARIED) + 1
    assert first_fast.messages == first_slow.messages
    assert first_fast.snapshots == first_slow.snapshots
    assert first_fast.cursor == first_slow.cursor
    assert first_fast.cursor["folders"]["inbox"]["skipped"] == []
    assert fallbacks == []  # every batch was read by the fast parser
    by_id = {m.message_id: m for m in first_fast.messages}
    assert len(by_id["long@example.com"].references) == 400
    assert by_id["folded@example.es"].subject.startswith("Problema con el pedido continued on")
    assert by_id["folded@example.es"].to_addrs == (
        "support@example.com",
        "sales@example.com",
        "accounts@example.com",
    )
    assert by_id["latin1@example.fr"].from_addr == "francois@example.fr"
    assert {m.message_id for m in first_fast.messages} >= {"utf8@example.de", "nodate@example.org", None}

    # Changed flags and new mail: the incremental fetch takes the same path.
    imap_mailbox.add_flags("INBOX", [1, 5], ["\\Answered"])
    imap_mailbox.append("INBOX", message("Later", msgid="later@example.org"), flags=["\\Seen"])
    second_fast, second_slow = fast.poll(first_fast.cursor), slow.poll(first_slow.cursor)

    assert [m.external_id.rsplit("/", 1)[1] for m in second_fast.messages] == ["1", "5", str(len(VARIED) + 1)]
    assert second_fast.messages == second_slow.messages
    assert second_fast.cursor == second_slow.cursor
    assert fallbacks == []


@pytest.mark.server
def test_a_batch_the_fast_parser_cannot_read_is_read_by_imapclient(
    imap_mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(imap_mailbox)
    slow = make_source(imap_mailbox)
    slow.fast_fetch = False
    expected = slow.poll(None)

    def unreadable(records: Any, uids: Any) -> Any:
        raise FetchParseError("unexpected token")

    monkeypatch.setattr(imap_source, "parse_fetch_records", unreadable)
    fast = make_source(imap_mailbox, batch_size=5)
    fallbacks = _imapclient_fallbacks(fast, monkeypatch)
    with caplog.at_level(logging.DEBUG, logger="monitor.sources.imap"):
        result = fast.poll(None)

    assert result.messages == expected.messages
    assert result.cursor == expected.cursor
    assert fallbacks == [5, 5, 4, 1]  # INBOX in three batches, Sent in one
    assert "fast FETCH of 5 messages not usable (FetchParseError: unexpected token), using imapclient" in (
        caplog.text
    )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.server
def test_flag_updates_arriving_during_the_fetch_go_to_their_own_message(imap_mailbox: Mailbox) -> None:
    """Another client flags a message while the source fetches: the untagged update names it by sequence
    number only (Dovecot sends no UID), which here equals the UID of a message in the batch."""
    imap_mailbox.create_folder("Sent")
    for n in range(6):
        imap_mailbox.append("INBOX", message(f"question {n}", msgid=f"q{n}@example.org"))
    with imap_mailbox.client() as admin:  # UIDs 3-6 are now messages 1-4: UID 3 is not message 3
        admin.select_folder("INBOX")
        admin.delete_messages([1, 2])
        admin.expunge()

    flagged: list[bool] = []

    class FlaggedMeanwhile(RecordingClient):
        def search(self, criteria: Any = "ALL", charset: Any = None) -> Any:
            found = self._client.search(criteria, charset)
            if criteria == "ALL" and not flagged:
                flagged.append(True)
                imap_mailbox.add_flags("INBOX", [5], ["\\Flagged"])  # message 3, fetched in the 2nd batch
            return found

    source = make_source(
        imap_mailbox, batch_size=2, factory=lambda **kw: FlaggedMeanwhile(IMAPClient(**kw), [])
    )

    result = source.poll(None)

    assert flagged, "the flags were changed during the poll"
    flags = {int(m.external_id.rsplit("/", 1)[1]): m.flags for m in result.messages if m.folder == "inbox"}
    assert flags == {3: frozenset(), 4: frozenset(), 5: frozenset({"flagged"}), 6: frozenset()}
