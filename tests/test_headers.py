"""Header parsing, bytes in, values out: the fast paths agree with the stdlib on every corpus message."""

from __future__ import annotations

import email.parser
import email.policy
from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.headers import address_pairs, message_date, message_ids, parse_event, parse_header_block
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
        assert ours.items() == theirs.items(), path
        for name in ("From", "to", "MESSAGE-ID", "Subject", "X-Missing"):
            value = theirs.get(name)
            if isinstance(value, str) or value is None:
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


def test_event_from_bytes() -> None:
    raw = (
        b"Message-ID: <m1@example.net>\nDate: Mon, 16 Nov 2026 09:30:00 +0000\n"
        b'From: "Smith, Carol" <Carol@Example.NET>\nTo: support@example.com, "B" <b@example.com>\n'
        b"Subject: =?utf-8?q?Caf=C3=A9_order?=\nIn-Reply-To: <p@example.com>\n"
        b"References: <o@example.com> <p@example.com>\n\n"
    )
    event = parse_event(raw, source="s", folder="inbox", external_id="INBOX/1/1", flags=["\\Seen"])
    assert event.message_id == "m1@example.net"
    assert (event.from_addr, event.from_name) == ("carol@example.net", "Smith, Carol")
    assert event.to_addrs == ("support@example.com", "b@example.com")
    assert event.subject == "Café order"
    assert (event.in_reply_to, event.references) == ("p@example.com", ("o@example.com", "p@example.com"))
    assert event.flags == {"seen"}
    assert event.automated is None


def test_8bit_headers_become_unicode() -> None:
    """Raw UTF-8 (RFC 6532) and Windows-1252 header bytes give readable, storable text."""
    utf8 = parse_event(
        b'Message-ID: <x\xc3\xa9@y>\nFrom: "J\xc3\xbcrgen" <j@x.example>\nSubject: Gr\xc3\xbc\xc3\x9fe\n\n',
        source="s", folder="inbox", external_id="1",
    )  # fmt: skip
    assert (utf8.subject, utf8.from_name, utf8.message_id) == ("Grüße", "Jürgen", "xé@y")
    raw = b"From: J\xfcrgen <j@x.example>\nSubject: Gr\xfc\xdfe\n\n"
    latin = parse_event(raw, source="s", folder="inbox", external_id="2")
    assert (latin.subject, latin.from_name) == ("Grüße", "Jürgen")
    for text in (utf8.subject, utf8.from_name, latin.subject):
        text.encode("utf-8")  # no surrogates left: every database can store it


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
