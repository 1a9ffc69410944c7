"""A command's answer read without imaplib's trace, its FETCH lines without imaplib's response parser: what
the command returns and what it leaves behind are imaplib's own, for plain and odd answers alike."""

from __future__ import annotations

import imaplib
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sources.imap_answers import untraced
from tests.test_imap_fetch_parse import HEADER_KEY, ReplayedIMAP, answer, lit

HEADER = b"Message-ID: <a@example.org>\r\nSubject: {3}\r\n\r\n"
TEXT = b"Hello,\r\nthe order {12} never came.\r\n"

ANSWERS: dict[str, bytes] = {
    "header and text literals": answer(
        b"1 FETCH (UID 11 FLAGS (\\Seen) "
        + HEADER_KEY
        + b" "
        + lit(HEADER)
        + b" BODY[TEXT]<0> "
        + lit(TEXT)
        + b")",
        b"2 FETCH (UID 12 FLAGS () " + HEADER_KEY + b" " + lit(b"") + b" BODY[TEXT]<0> " + lit(b"x") + b")",
    ),
    "no literal": answer(b'3 FETCH (UID 13 FLAGS (\\Answered) INTERNALDATE "01-Oct-2026 08:00:00 +0000")'),
    "a FETCH with nothing after it": answer(b"4 FETCH", b"5 FETCH ", b"6 FETCH (UID 16)"),
    "a type that only starts with FETCH": answer(
        b"1 FETCHES (UID 11)", b"2 FETCH-X (UID 12)", b"3 FETCH(UID 13)"
    ),
    "two spaces after the star": answer(b" 1 FETCH (UID 11 " + HEADER_KEY + b" " + lit(HEADER) + b")"),
    "other answers between": answer(
        b"3 EXISTS",
        b"1 FETCH (UID 11 " + HEADER_KEY + b" " + lit(HEADER) + b")",
        b"OK [HIGHESTMODSEQ 7] still here",
        b"1 EXPUNGE",
        b"FLAGS (\\Seen \\Answered)",
        b"2 FETCH (UID 12 FLAGS (\\Seen))",
    ),
    "braces that are no literal": answer(
        b'1 FETCH (UID 11 BODY[HEADER.FIELDS (SUBJECT)] "Re: {12}" FLAGS ())',
        b'2 FETCH (UID 12 X-NOTE "a}")',
        b'3 FETCH (UID 13 X-NOTE "{x}")',
        b'4 FETCH (UID 14 X-NOTE "1}")',
        b"5 FETCH (UID 15 BODY[] " + lit(b"x") + b"12}",  # what follows a literal ends like one, without "{"
    ),
    "a literal of a literal's text": answer(
        b"1 FETCH (UID 11 "
        + HEADER_KEY
        + b" "
        + lit(b"{5}\r\n")
        + b" BODY[TEXT]<0> "
        + lit(b"* 2 FETCH (UID 9)\r\n")
        + b")"
    ),
    "NO": answer(b"1 FETCH (UID 11 " + HEADER_KEY + b" " + lit(HEADER) + b")", status=b"NO [SERVERBUG] oops"),
}


def read(
    reply: bytes, *, fast: bool, connection: type[ReplayedIMAP] = ReplayedIMAP
) -> tuple[Any, dict[str, Any], list[bytes]]:
    """(what ``UID FETCH`` returned or raised, what stayed in ``untagged_responses``, what was sent)."""
    imap = connection(reply)
    try:
        if fast:
            with untraced(imap, fetch=True):
                result: Any = imap.uid("FETCH", "1:*", "(FLAGS)")
        else:
            result = imap.uid("FETCH", "1:*", "(FLAGS)")
    except (imaplib.IMAP4.error, TimeoutError) as err:
        result = (type(err), str(err))
    assert "_get_line" not in vars(imap) and "_get_response" not in vars(imap)
    return result, dict(imap.untagged_responses), imap.sent


@pytest.mark.parametrize("name", list(ANSWERS))
def test_a_fetch_answer_reads_as_imaplib_reads_it(name: str) -> None:
    assert read(ANSWERS[name], fast=True) == read(ANSWERS[name], fast=False)


@pytest.mark.parametrize(
    "reply",
    [
        answer(b"1 FETCH (UID 11)", status=b"BAD [PARSE] no"),  # imaplib raises its error
        b"* 1 FETCH (UID 11 " + HEADER_KEY + b" {500}\r\nSubject: cut",  # the connection ends in a literal
        b"* 1 FETCH (UID 11)\r\n* BYE shutting down\r\n",  # the server says goodbye, then closes
        b"* 1 fetch (UID 11)\r\nA0 OK done\r\n",  # not imaplib's FETCH (lower case): its own error
        b"+ go ahead\r\nA0 OK done\r\n",  # a continuation: imaplib's own handling
        b"* 1 FETCH (UID 11 FLAGS (\\Seen private)",  # the line never ends: the connection dropped
    ],
)
def test_broken_and_odd_answers_end_as_imaplib_ends_them(reply: bytes) -> None:
    fast, plain = read(reply, fast=True), read(reply, fast=False)
    if isinstance(plain[0], tuple) and "unterminated" in plain[0][1]:
        assert "private" in plain[0][1]
    assert_same_ending(fast, plain)


def assert_same_ending(fast: Any, plain: Any) -> None:
    """Both reads returned or raised alike and left the same behind; a line cut short is reported
    without its text by the fast read."""
    if isinstance(plain[0], tuple) and "unterminated" in plain[0][1]:
        assert fast[0][0] is plain[0][0] and fast[0][1].endswith("unterminated line")
        assert fast[1:] == plain[1:]
    else:
        assert fast == plain


_TEXT = st.binary(max_size=12).map(lambda b: b.replace(b"\n", b" ")) | st.sampled_from(
    [b"", b" ", b"(UID 11", b")", b"{", b"}", b"{3}", b"{x}", b"12}", b'"{4}"', b"FLAGS (\\Seen)", b"\r"]
)


@st.composite
def _untagged(draw: st.DrawFn) -> bytes:
    """One untagged answer line, literals and what follows them included, FETCH or something near it."""
    star = draw(st.sampled_from([b"* ", b"*  ", b"*"]))
    number = draw(st.sampled_from([b"1", b"12", b"007", b"", b"x"]))
    kind = draw(st.sampled_from([b" FETCH", b" FETCHES", b" FETCH-X", b" fetch", b" EXISTS", b" FLAGS", b""]))
    line = star + number + kind + draw(st.sampled_from([b" ", b"", b"("]))
    for _ in range(draw(st.integers(0, 3))):
        line += b"".join(draw(st.lists(_TEXT, max_size=3)))
        if draw(st.booleans()):
            data = draw(st.binary(max_size=20) | st.sampled_from([b"* 2 FETCH (UID 9)\r\n", b"{5}\r\n"]))
            declared = len(data) + draw(st.sampled_from([0, 0, 0, -1, 1, 50]))
            line += b"{%d}\r\n" % max(declared, 0) + data
    return line + b"".join(draw(st.lists(_TEXT, max_size=3))) + b"\r\n"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_untagged(), max_size=5),
    st.sampled_from([b"A0 OK done\r\n", b"A0 NO [SERVERBUG] oops\r\n", b"A0 BAD no\r\n", b"+ go\r\n", b""]),
    st.integers(0, 400) | st.none(),
)
def test_any_answer_reads_as_imaplib_reads_it(lines: list[bytes], status: bytes, cut: int | None) -> None:
    """Generated answers, near-FETCH lines, wrong literal sizes and cut connections included: the fast read
    returns, raises and leaves behind what imaplib does."""
    reply = b"".join(lines) + status
    if cut is not None:
        reply = reply[:cut]
    assert_same_ending(read(reply, fast=True), read(reply, fast=False))


class TimingOut(ReplayedIMAP):
    """A connection whose read of a literal times out."""

    def read(self, size: int) -> bytes:
        raise TimeoutError("timed out")


@pytest.mark.parametrize("before", [b"", b"* 3 EXISTS\r\n* 1 FETCH (UID 11 FLAGS ())\r\n"])
def test_a_literal_read_that_fails_leaves_behind_what_imaplib_leaves(before: bytes) -> None:
    reply = before + b"* 2 FETCH (UID 12 " + HEADER_KEY + b" {50}\r\nSubject: cut"
    fast, plain = read(reply, fast=True, connection=TimingOut), read(reply, fast=False, connection=TimingOut)
    assert plain[0] == (TimeoutError, "timed out")
    assert fast == plain


def test_the_fast_read_is_off_while_imaplib_traces(caplog: pytest.LogCaptureFixture) -> None:
    imap = ReplayedIMAP(ANSWERS["header and text literals"])
    seen: list[Any] = []
    with caplog.at_level(logging.DEBUG, logger="imapclient.imaplib"), untraced(imap, fetch=True):
        seen.append(vars(imap).get("_get_line"))
        seen.append(vars(imap).get("_get_response"))
        typ, _ = imap.uid("FETCH", "1:*", "(FLAGS)")
    assert (typ, seen) == ("OK", [None, None])
    assert [entry for entry, _ in imap._cmd_log.values() if entry.startswith("<")]  # imaplib's ring
