"""The event builder: a header block and what the source knows in, one MessageEvent out."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.mail import classify as classify_module
from monitor.mail.classify import classify
from monitor.mail.event import parse_event, to_event
from monitor.mail.headers import HeaderBlock, decoded, parse_header_block
from monitor.mail.subject import normalized_subject


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


def test_a_header_block_built_by_a_source_becomes_an_event() -> None:
    """What an Exchange or Graph source does: render the item's fields as headers and call to_event."""
    block = HeaderBlock(
        [
            ("Message-ID", "<g1@example.net>"),
            ("From", "=?utf-8?q?Caf=C3=A9_Owner?= <Owner@Cafe.example>"),
            ("To", "support@example.com"),
            ("Subject", "=?utf-8?Q?Re:_caf=E9?="),
        ]
    )
    arrived = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
    event = to_event(
        block,
        source="m365",
        folder="inbox",
        external_id="AAMk1",
        flags=["\\Seen", "\\Flagged"],
        internal_date=arrived,
        preview="Thanks!",
    )
    assert (event.source, event.folder, event.external_id) == ("m365", "inbox", "AAMk1")
    assert (event.message_id, event.from_addr, event.from_name) == (
        "g1@example.net",
        "owner@cafe.example",
        "Café Owner",
    )
    assert event.subject == "Re: café"  # labelled UTF-8 but written in Windows-1252: still decoded
    assert (event.date, event.flags, event.preview) == (arrived, {"seen", "flagged"}, "Thanks!")


def test_the_stored_subject_and_the_classifier_read_the_same_text() -> None:
    """A mislabelled encoded-word is decoded once, the same way, for the event and for the verdict."""
    for encoded, verdict in (
        ("=?utf-8?Q?Unzustellbar:_caf=E9?=", "bounce"),  # an Exchange NDR subject prefix
        ("=?utf-8?Q?Re:_Unzustellbar:_caf=E9?=", None),  # a person replying about it
        ("=?utf-8?Q?R=E9ponse_automatique_:_caf=E9?=", "out_of_office"),
    ):
        raw = f"From: a@customer.example\nTo: support@example.com\nSubject: {encoded}\n\n".encode()
        event = parse_event(raw, source="s", folder="inbox", external_id="1")
        assert event.subject == decoded(encoded) and "=?" not in event.subject
        assert classify(parse_header_block(raw)).automated == event.automated == verdict, encoded
    assert normalized_subject(decoded("=?utf-8?Q?Re:_caf=E9?=")) == "café"


def test_the_classifier_has_no_decoder_or_address_parser_of_its_own() -> None:
    for name in ("_decode", "_bytes_to_text", "_first_address", "_addresses", "_REPLY_PREFIX"):
        assert not hasattr(classify_module, name), name
