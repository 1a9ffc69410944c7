"""Hostile headers (issue 7): linear parsing, capped fields, and no message dropped for a bad field."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from monitor.events import MessageEvent
from monitor.mail.event import parse_event, to_event
from monitor.mail.headers import (
    MAX_HEADER_CHARS,
    MAX_ID_CHARS,
    address_pairs,
    message_ids,
    parse_header_block,
)

ARRIVAL = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _seconds(raw: bytes) -> float:
    start = time.perf_counter()
    parse_event(raw, source="s", folder="inbox", external_id="1", internal_date=ARRIVAL)
    return time.perf_counter() - start


def test_a_to_header_padded_with_spaces_parses_at_once() -> None:
    # Cubic before: 1,000 spaces took 0.5 s and 5,000 about a minute.
    raw = b"From: c@d.example\r\nTo: support@example.com," + b" " * 5000 + b"x\r\n\r\n"
    assert _seconds(raw) < 0.5


def test_a_long_reply_to_of_words_parses_at_once() -> None:
    raw = b"From: c@d.example\r\nReply-To: " + b"a " * 15000 + b"\r\n\r\n"
    assert _seconds(raw) < 0.5


def test_address_and_id_patterns_have_one_way_to_match() -> None:
    assert address_pairs("Ann  Lee <ann@x.example>, bob@y.example") == [
        ("Ann  Lee", "ann@x.example"),
        ("", "bob@y.example"),
    ]
    assert message_ids('<a@b> <"q r"@c>') == ("a@b", '"q r"@c')
    start = time.perf_counter()
    message_ids("<" + "a@" * 20000)
    message_ids('<"' * 20000)
    assert time.perf_counter() - start < 0.5


def test_a_field_over_the_cap_is_cut_and_named() -> None:
    refs = " ".join(f"<id{i}@x.example>" for i in range(20000))
    block = parse_header_block(f"Subject: {'s' * 100_000}\r\nReferences: {refs}\r\n\r\n".encode())
    assert set(block.truncated) == {"Subject", "References"}
    assert len(block["Subject"]) == MAX_HEADER_CHARS
    assert block["References"].startswith("<") and block["References"].endswith("<id19999@x.example>")
    reported: list[tuple[str, str]] = []
    event = to_event(
        block, source="s", folder="inbox", external_id="1", report=lambda f, r: reported.append((f, r))
    )
    assert event.references[-1] == "id19999@x.example"
    assert sorted(f for f, _ in reported) == ["References", "Subject"]


def _event_and_reports(raw: bytes) -> tuple[MessageEvent, list[tuple[str, str]]]:
    reported: list[tuple[str, str]] = []
    event = to_event(
        parse_header_block(raw),
        source="s",
        folder="inbox",
        external_id="1",
        internal_date=ARRIVAL,
        report=lambda f, r: reported.append((f, r)),
    )
    return event, reported


def test_nested_comments_in_from_keep_the_customer() -> None:
    event, reported = _event_and_reports(b"From: " + b"(" * 500 + b"ann@x.example\r\nSubject: help\r\n\r\n")
    assert event.from_addr == "ann@x.example"
    assert [f for f, _ in reported] == ["From"]
    assert "RecursionError" in reported[0][1]


def test_undecodable_subject_and_charset_keep_the_raw_text() -> None:
    event, _ = _event_and_reports(b"From: ann@x.example\r\nSubject: =?utf-8?b?A?=\r\n\r\n")
    assert event.subject == "=?utf-8?b?A?="
    event, _ = _event_and_reports(
        b"From: =?\xe9\xe9?q?Ann?= <ann@x.example>\r\nSubject: =?\xe9?q?hi?=\r\n\r\n"
    )
    assert event.from_addr == "ann@x.example"


def test_a_year_written_0001_falls_back_to_the_arrival() -> None:
    event, reported = _event_and_reports(
        b"From: ann@x.example\r\nDate: Mon, 01 Jan 0001 10:00:00 +0000\r\n\r\n"
    )
    assert event.date == ARRIVAL
    assert reported == [("Date", "unreadable or absurd, arrival time used")]
    event, reported = _event_and_reports(
        b"From: ann@x.example\r\nDate: Mon, 30 Nov 26 08:00:00 +0000\r\n\r\n"
    )
    assert event.date == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert reported == []


def test_a_classifier_failure_judges_the_message_as_human(monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.mail.event as event_module

    def broken(*_args: object, **_kwargs: object) -> object:
        raise RecursionError

    monkeypatch.setattr(event_module, "classify", broken)
    event, reported = _event_and_reports(b"From: ann@x.example\r\n\r\n")
    assert event.automated is None
    assert reported == [("classification", "RecursionError")]


def test_an_absurdly_long_id_is_known_by_its_hash_everywhere() -> None:
    long_id = "x" * 200_000 + "@example.com"
    original = parse_event(
        f"Message-ID: <{long_id}>\r\nFrom: ann@x.example\r\n\r\n".encode(),
        source="s",
        folder="inbox",
        external_id="1",
    )
    reply = parse_event(
        f"In-Reply-To: <{long_id}>\r\nReferences: <a@b> <{long_id}>\r\n\r\n".encode(),
        source="s",
        folder="sent",
        external_id="2",
    )
    assert original.message_id is not None and original.message_id.startswith("sha256:")
    assert len(original.message_id) < 100
    assert reply.in_reply_to == original.message_id
    assert all(len(i) <= MAX_ID_CHARS for i in reply.references)
    id_613 = "z" * 600 + "@example.com"  # under the header cap: cited in References, it still matches
    cited = message_ids(f"<a@b> <{id_613}>")
    assert cited[-1] == message_ids(f"<{id_613}>")[0] and len(cited[-1]) < 100
    assert message_ids("<" + "y" * 600 + "@example.com>") != message_ids("<" + "y" * 601 + "@example.com>")
