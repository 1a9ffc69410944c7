"""Header parsing and decoding, bytes in, values out: the fast paths agree with the stdlib on the corpora."""

from __future__ import annotations

import email.parser
import email.policy
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import Header, decode_header, make_header
from email.utils import getaddresses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.mail.headers import (
    MAX_DECODED_CHARS,
    MAX_HEADER_CHARS,
    _fields,
    address_pairs,
    decoded,
    first_mailbox,
    header_text,
    message_date,
    message_ids,
    parse_header_block,
)
from tests.corpus import corpora_root

STDLIB = email.parser.BytesParser(policy=email.policy.compat32)


def corpus_files() -> list[Path]:
    return sorted(p for p in corpora_root("email").rglob("*") if p.is_file())


def test_header_block_equals_the_stdlib_on_the_whole_corpus() -> None:
    files = corpus_files()
    assert len(files) > 3000
    for path in files:
        raw = path.read_bytes()
        ours, theirs = parse_header_block(raw), STDLIB.parsebytes(raw, headersonly=True)
        cut = set(getattr(ours, "truncated", ()))
        # A field over the cap is the stdlib's value cut at MAX_HEADER_CHARS (flanker's 200 KB Subject).
        assert [(k, v) for k, v in ours.items() if k not in cut] == [
            (k, v) for k, v in theirs.items() if k not in cut
        ], path
        for name in cut:
            assert str(theirs[name]).startswith(ours[name]) and len(ours[name]) == MAX_HEADER_CHARS
        for name in ("From", "to", "MESSAGE-ID", "Subject", "X-Missing"):
            value = theirs.get(name)
            if name.lower() in {c.lower() for c in cut}:
                assert value.startswith(ours.get(name)), (path, name)
            elif isinstance(value, str) or value is None:
                assert ours.get(name) == value, (path, name)
            else:  # raw 8-bit text: the stdlib wraps it in an unknown-8bit Header, we give Unicode
                ours.get(name).encode("utf-8")  # a str without surrogate escapes


def test_address_fast_path_equals_the_stdlib_on_the_whole_corpus() -> None:
    checked = 0
    for path in corpus_files():
        msg = STDLIB.parsebytes(path.read_bytes(), headersonly=True)
        for header in ("From", "To", "Cc", "Reply-To", "Sender"):
            for value in msg.get_all(header) or []:
                ours = [(n, a.strip().lower()) for n, a in address_pairs(str(value)) if "@" in a]
                theirs = [(n, a.strip().lower()) for n, a in getaddresses([str(value)]) if "@" in a]
                assert ours == theirs, (path, header, value)
                checked += 1
    assert checked > 5000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Subject: a\r\n\r\nbody: not a header\r\n", [("Subject", "a")]),
        (b"From someone@example.com Mon Nov 16\nSubject: mbox\n\n", [("Subject", "mbox")]),
        (
            b"Subject: folded\n  on two lines\nTo: x@y\n\n",
            [("Subject", "folded\n  on two lines"), ("To", "x@y")],
        ),
        (b"   \nSubject: after a stray continuation\n\n", [("Subject", "after a stray continuation")]),
        (b"Subject: a\nthis line is no header\nTo: x@y\n", [("Subject", "a")]),
        (b"Subject: caf\xc3\xa9\n\n", [("Subject", "caf\udcc3\udca9")]),
        (b"", []),
    ],
)
def test_header_block_edge_cases(raw: bytes, expected: list[tuple[str, str]]) -> None:
    assert parse_header_block(raw)._headers == expected  # type: ignore[attr-defined]
    assert STDLIB.parsebytes(raw, headersonly=True)._headers == expected  # type: ignore[attr-defined]


BLOCK_LINES = st.sampled_from(
    ["Subject: a", "To:x@y", "X-Empty:", "Received: from a", " folded", "\tfolded", "   ", "",
     "From sender@x Mon Nov 16", "no field here", ": no name", "Sübject: 8-bit name", "Subject: caf\xe9",
     "Subject: odd\x0bbreak", "Subject: \r inside"]
)  # fmt: skip


@given(
    st.lists(st.tuples(BLOCK_LINES, st.sampled_from(["\r\n", "\n", "\r"])), max_size=8),
    st.booleans(),
)
def test_header_block_fast_path_equals_the_line_reader(lines: list[tuple[str, str]], one_end: bool) -> None:
    raw = "".join(text + (lines[0][1] if one_end else end) for text, end in lines)
    block = parse_header_block(raw.encode("latin-1"))
    text = raw.encode("latin-1").decode("ascii", "surrogateescape")
    cut = [i for i in (text.find("\n\n"), text.find("\r\n\r\n"), text.find("\r\r")) if i >= 0]
    headers, whole = _fields(text[: min(cut) + 2] if cut else text)
    assert block._headers == headers  # type: ignore[attr-defined]
    assert block.whole == whole  # type: ignore[attr-defined]


def test_message_ids() -> None:
    assert message_ids("<a@x> <b@y>\r\n <a@x>") == ("a@x", "b@y")
    assert message_ids("bare@id") == ("bare@id",)
    assert message_ids("two bare words") == ()
    assert message_ids(None) == ()


ARRIVED = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Mon, 16 Nov 2026 09:30:00 +0100", datetime(2026, 11, 16, 8, 30, tzinfo=UTC)),
        ("Mon, 16 Nov 2026 09:30:00 -0000", datetime(2026, 11, 16, 9, 30, tzinfo=UTC)),  # RFC 5322 §3.3
        ("16 Nov 2026 09:30", datetime(2026, 11, 16, 9, 30, tzinfo=UTC)),  # no zone: UTC
        ("yesterday", ARRIVED),  # unparsable
        ("Mon, 16 Nov 1970 09:30:00 +0000", ARRIVED),  # absurdly old
        ("Mon, 16 Nov 2099 09:30:00 +0000", ARRIVED),  # in the future
        (None, ARRIVED),  # missing
    ],
)
def test_message_date(date: str | None, expected: datetime) -> None:
    raw = b"Subject: x\n" + (f"Date: {date}\n".encode() if date else b"") + b"\n"
    assert message_date(parse_header_block(raw), ARRIVED) == expected


ADDRESS_PARTS = st.sampled_from(
    ["a@b.example", "Carol <c@d.example>", '"Smith, Carol" <c@d.example>', '"A \\"B\\"" <x@y.example>',
     "Jürgen <j@x.example>", "(comment) e@f.example", "group: g@h.example;", "<i@j.example>",
     "k@l.example (K)", "bad@", "", "  ", '"unterminated <m@n.example>', "@route:o@p.example"]
)  # fmt: skip


@given(st.lists(ADDRESS_PARTS, min_size=1, max_size=4), st.sampled_from([",", ", ", " ,", ",,"]))
def test_address_fast_path_equals_the_stdlib_on_mixtures(parts: list[str], separator: str) -> None:
    value = separator.join(parts)
    ours = [(n, a.strip().lower()) for n, a in address_pairs(value) if "@" in a]
    theirs = [(n, a.strip().lower()) for n, a in getaddresses([value]) if "@" in a]
    assert ours == theirs


def test_a_remembered_address_list_is_reported_at_every_read(monkeypatch: pytest.MonkeyPatch) -> None:
    value = "(a comment the full parser reads) remembered@x.example"
    expected = address_pairs(value)
    assert expected == getaddresses([value])

    def broken(_values: list[str]) -> list[tuple[str, str]]:
        raise RecursionError

    monkeypatch.setattr("monitor.mail.headers.getaddresses", broken)
    assert address_pairs(value) == expected  # parsed once: the value is remembered
    unreadable = "(an unreadable list) unreadable@x.example, other@y.example"
    for _ in range(2):  # a remembered value's problem is reported again at every read
        problems: list[str] = []
        assert address_pairs(unreadable, problems) == [("", "unreadable@x.example"), ("", "other@y.example")]
        assert problems == ["unreadable address list (RecursionError), bare addresses kept"]
    assert first_mailbox(unreadable) == ("unreadable@x.example", "")
    long_value = "(" + "c" * 1000 + ") long@x.example"  # too long to be remembered: parsed at every read
    problems = []
    assert address_pairs(long_value, problems) == [("", "long@x.example")]
    assert problems == ["unreadable address list (RecursionError), bare addresses kept"]


def test_decoded_equals_the_stdlib_where_the_stdlib_decodes() -> None:
    """Encoded-words joined and spaced as ``str(make_header(decode_header(v)))`` on every corpus header."""
    checked = 0
    for path in corpus_files():
        msg = parse_header_block(path.read_bytes())
        for name in ("Subject", "From", "To", "Cc", "Thread-Topic"):
            for value in msg.get_all(name) or []:
                if "=?" not in value or not value.isascii():
                    continue
                value = value[:MAX_DECODED_CHARS]  # decoded() reads no further (flanker's 200 KB Subject)
                try:
                    theirs = str(make_header(decode_header(value)))
                except (ValueError, LookupError, HeaderParseError):
                    continue  # undecodable to the stdlib: see test_decoded_reads_what_the_stdlib_cannot
                assert decoded(value) == " ".join(theirs.split()), (path, name, value)
                checked += 1
    assert checked >= 100


HEADER_PIECES = st.sampled_from(
    ["=?utf-8?q?caf=C3=A9?=", "=?iso-8859-1?q?Gr=FC=DFe?=", "=?utf-8?b?w7w=?=", "Re:",
     "plain", "(comment)", "a\\b", "=?utf-8?q?x?=y", "", "=?koi8-r?b?8NLJ18XU?="]
)  # fmt: skip


@given(st.lists(HEADER_PIECES, min_size=1, max_size=5), st.sampled_from(["", " ", "  ", "\r\n "]))
def test_decoded_equals_the_stdlib_on_mixtures(pieces: list[str], separator: str) -> None:
    value = separator.join(pieces)
    assert decoded(value) == " ".join(str(make_header(decode_header(value))).split())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?utf-8?Q?Re:_caf=E9?=", "Re: café"),  # labelled UTF-8, written in Windows-1252
        ("=?x-no-such-charset?Q?Abwesenheitsnotiz=3A?= x", "Abwesenheitsnotiz: x"),
        ("=?gb2312?B?xOO6w6Gq?=", "你好—"),  # "—" is GBK, outside GB 2312: read with the gb18030 decoder
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # RFC 2047 §6.2: white space between encoded-words goes
        ("Re:=?utf-8?q?x?=y", "Re: x y"),
        ("Re: =?utf-8?B?abcde?=", "Re: =?utf-8?B?abcde?="),  # not base64: the raw text stays
        ("plain\r\n  folded", "plain folded"),
        (None, ""),
    ],
)
def test_decoded_reads_what_the_stdlib_cannot(value: str | None, expected: str) -> None:
    assert decoded(value) == expected


def test_decoded_reads_the_stdlib_wrapper_of_raw_8bit_values() -> None:
    msg = STDLIB.parsebytes(b"Subject: R\xe9ponse =?utf-8?q?caf=C3=A9?=\nTo: J\xc3\xbcrgen <j@x.example>\n\n")
    assert isinstance(msg["Subject"], Header)  # compat32 wraps 8-bit values as unknown-8bit
    assert decoded(msg["Subject"]) == "Réponse =?utf-8?q?caf=C3=A9?="
    assert header_text(msg["To"]) == "Jürgen <j@x.example>"
    assert (
        decoded(parse_header_block(b"Subject: R\xe9ponse =?utf-8?q?caf=C3=A9?=\n\n")["Subject"])
        == "Réponse café"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "=?utf-8?q?Mail_Delivery_System?= <MAILER-DAEMON@mx.example>",
            ("mailer-daemon@mx.example", "Mail Delivery System"),
        ),
        ("MAILER-DAEMON", ("mailer-daemon", "")),  # no domain: still the mail system's mailbox
        ("=?utf-8?q?Smith=2C_Carol?= <c@x.example>, d@x.example", ("c@x.example", "Smith, Carol")),
        ("", ("", "")),
        (None, ("", "")),
    ],
)
def test_first_mailbox_parses_then_decodes(value: str | None, expected: tuple[str, str]) -> None:
    assert first_mailbox(value) == expected
