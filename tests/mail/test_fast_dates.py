"""The fast paths of the per-message work agree with the slow paths they stand in front of.

INTERNALDATE (``imap_fetch._internal_date``) against imapclient's ``parse_to_datetime``, a Date header
(``headers._date_of``) against ``parsedate_to_datetime`` with the written-year rule, and a plain header
block (``headers._plain_fields``) against the line-by-line reader: on the corpora's Date headers and blocks,
and on generated variants of every part (weekday, day, month, year, time, zone, trailing text, spacing).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache

import pytest
from imapclient.datetime_util import parse_to_datetime

from monitor.mail import event as event_module
from monitor.mail import headers
from monitor.mail.event import to_event
from monitor.mail.headers import _date_of, _fields, _plain_fields, parse_header_block
from monitor.sources import imap_fetch
from monitor.sources.imap_fetch import _internal_date
from tests.corpus import corpora_root
from tests.hostile.test_hostile_headers import _event_and_reports


@cache
def corpus_blocks() -> list[bytes]:
    """The header block of every corpus file (as the IMAP header fetch gives it)."""
    out = []
    for path in sorted(p for p in corpora_root("email").rglob("*") if p.is_file()):
        raw = path.read_bytes()
        cut = [i for i in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n"), raw.find(b"\r\r")) if i >= 0]
        out.append(raw[: min(cut) + 2] if cut else raw)
    assert len(out) > 3000
    return out


@cache
def corpus_dates() -> list[str]:
    dates = sorted({str(d) for raw in corpus_blocks() if (d := parse_header_block(raw).get("Date"))})
    assert len(dates) > 2500
    return dates


def same_time(ours: datetime | None, theirs: datetime | None) -> bool:
    """The same wall time in the same zone (the offset and the zone object's type and name), or both None."""
    if ours is None or theirs is None:
        return ours is theirs
    return (
        ours.replace(tzinfo=None) == theirs.replace(tzinfo=None)
        and zone(ours) == zone(theirs)
        and type(ours.tzinfo) is type(theirs.tzinfo)
        and ours.tzname() == theirs.tzname()
    )


def zone(when: datetime) -> object:
    """The UTC offset, or the error asking for it gives: imapclient keeps a zone of 24 hours or more in a
    datetime whose offset then cannot be read (``_internal_date`` makes that None)."""
    try:
        return when.utcoffset()
    except ValueError as err:
        return str(err)


# --- INTERNALDATE --------------------------------------------------------------------------------------


def imapclient_internal_date(value: bytes) -> datetime | None:
    """imapclient's reading, None when it raises or when the time it read cannot be taken to UTC."""
    try:
        parsed: datetime = parse_to_datetime(value, normalise=False)
        parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed


def internal_date_variants() -> Iterator[str]:
    days = ["1", " 1", "01", "09", "31", "30", "29", "00", "0", "32", "001", "  1"]
    months = ["Jan", "Feb", "Dec", "dec", "DEC", "jAn", "Foo", "Sept", "December"]
    years = ["2026", "0026", "0069", "0068", "0001", "0000", "9999", "1900", "26", "20260"]
    times = ["19:33:21", "00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "9:05:00", "12:00"]
    zones = ["+0000", "-0000", "+0530", "-1200", "+2359", "-2359", "+2400", "-2400", "+9999", "+0060"]
    zones += ["+0099", "+000", "0000", "+00000", "UTC", "GMT", "", "+99999999999999999999"]
    tails = ["", " ", "x", " x", "  "]
    rng = random.Random(3501)
    for _ in range(30000):
        sep = rng.choice([" ", " ", "  ", "\t"])
        yield (
            f"{rng.choice(days)}-{rng.choice(months)}-{rng.choice(years)}{sep}{rng.choice(times)}"
            f" {rng.choice(zones)}".rstrip(" ")
            + rng.choice(tails)
        )
    # every zone and year on a plain day, and the forms servers write
    for year, zone in itertools.product(years, zones):
        yield f"01-Dec-{year} 19:33:21 {zone}"
    yield from ("01-Nov-2026 19:33:21 +0000", " 1-Dec-2026 08:00:00 -0700", "31-Dec-9999 23:59:59 -2359")


def test_internaldate_fast_path_is_imapclients_on_generated_dates() -> None:
    checked = 0
    for text in internal_date_variants():
        value = text.encode()
        assert same_time(_internal_date(value), imapclient_internal_date(value)), text
        checked += 1
    assert checked > 30000


def test_internaldate_fast_path_is_imapclients_on_the_corpus_dates() -> None:
    """Each corpus Date as it stands (mostly not the IMAP form: imapclient reads it) and in the IMAP form."""
    for text in corpus_dates():
        value = text.encode("utf-8", "surrogateescape")
        assert same_time(_internal_date(value), imapclient_internal_date(value)), text
        written = imapclient_internal_date(value)
        if written is not None and written.year >= 1000:
            imap = f"{written:%d-%b-%Y %H:%M:%S} {written:%z}"[:26].encode()
            assert same_time(_internal_date(imap), imapclient_internal_date(imap)), imap
            padded = imap.replace(b"0", b" ", 1) if imap.startswith(b"0") else imap
            assert same_time(_internal_date(padded), imapclient_internal_date(padded)), padded


def test_the_rfc3501_form_does_not_reach_imapclient(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(value: bytes, normalise: bool = True) -> datetime:
        raise AssertionError(f"slow path taken for {value!r}")

    monkeypatch.setattr(imap_fetch, "parse_to_datetime", refuse)
    got = _internal_date(b" 2-Nov-2026 09:31:00 +0130")
    assert got == datetime(2026, 11, 2, 8, 1, tzinfo=UTC)
    assert got is not None and got.tzname() == "+0130"
    assert _internal_date(b"02-nov-0026 09:31:00 -0000") == datetime(2026, 11, 2, 9, 31, tzinfo=UTC)
    assert _internal_date(b"32-Nov-2026 09:31:00 +0000") is None  # read, then refused by datetime
    assert _internal_date(b"02-Nov-2026 09:31:00 +2400") is None  # no offset: the Date decides


# --- Date header ---------------------------------------------------------------------------------------


stdlib_date_of = headers._stdlib_date_of
"""What ``dated`` did before the fast path: parsedate_to_datetime, then the written-year rule."""


def date_variants() -> Iterator[str]:
    weekdays = ["", "Tue, ", "Tue,", "Tue ", "tue, ", "Tue,  ", "Tuesday, ", "Xyz, ", "Tue , ", "\tTue, "]
    days = ["1", "01", " 1", "31", "30", "29", "00", "0", "32", "001", "7"]
    months = ["Dec", "dec", "DEC", "Feb", "Sep", "Sept", "December", "Dec.", "Foo", "Mar"]
    years = ["2026", "26", "69", "68", "00", "0001", "0099", "0100", "1989", "1990", "9999", "026", "12345"]
    times = ["19:35:17", "19:35", "9:05:00", "00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60"]
    times += ["12:00:61", "19.35.17", "1935"]
    zones = ["+0000", "-0000", "+0530", "-0800", "+2359", "+2400", "-2400", "+9999", "+0060", "+0099"]
    zones += ["GMT", "UT", "UTC", "gmt", "EST", "Z", "", "+000", "0000", "+00000", "(UTC)", "+0000(UTC)"]
    tails = ["", " ", "  ", " (UTC)", " (PST)", "\t(GMT+02:00)", " x y z", " Jan 0001", "\r\n (UTC)", "x"]
    rng = random.Random(5322)
    for _ in range(40000):
        spaces = [rng.choice([" ", " ", " ", "  ", "\t"]) for _ in range(4)]
        yield (
            f"{rng.choice(weekdays)}{rng.choice(days)}{spaces[0]}{rng.choice(months)}{spaces[1]}"
            f"{rng.choice(years)}{spaces[2]}{rng.choice(times)}{spaces[3]}{rng.choice(zones)}"
            + rng.choice(tails)
        )
    # every zone, year and time on the commonest shape
    for year, zone, time in itertools.product(years, zones, times):
        yield f"Tue, 01 Dec {year} {time} {zone}"


def test_date_fast_path_is_the_stdlibs_on_generated_dates() -> None:
    checked = 0
    for text in date_variants():
        assert same_time(_date_of(text), stdlib_date_of(text)), text
        checked += 1
    assert checked > 40000


def test_date_fast_path_is_the_stdlibs_on_the_corpus_dates() -> None:
    for text in corpus_dates():
        assert same_time(_date_of(text), stdlib_date_of(text)), text
        cut = text[:200]
        assert same_time(_date_of(cut), stdlib_date_of(cut)), cut


def test_the_common_date_form_does_not_reach_the_stdlib(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> datetime:
        raise AssertionError(f"slow path taken for {text!r}")

    monkeypatch.setattr(headers, "parsedate_to_datetime", refuse)
    got = _date_of("Tue, 01 Dec 2026 19:35:17 +0530 (IST)")
    assert got == datetime(2026, 12, 1, 14, 5, 17, tzinfo=UTC) and got.utcoffset() is not None
    naive = _date_of("1 Dec 26 19:35 -0000")  # RFC 5322 §3.3: zone unknown, a naive time as the stdlib gives
    assert naive == datetime(2026, 12, 1, 19, 35) and naive.tzinfo is None
    assert _date_of("Mon, 01 Jan 0001 00:30:00 +0100") is None  # read as 2001: the written year says no
    assert _date_of("Tue, 31 Feb 2026 19:35:17 +0000") is None
    assert _date_of("Tue, 01 Dec 2026 19:35:17 +2400") is None


# --- header blocks -------------------------------------------------------------------------------------


def block_variants() -> Iterator[str]:
    """The corpus blocks in both line ends, and with breaks and junk put in at random places."""
    pieces = ["\r\n", "\n", "\r", "\v", "\f", "\x1c", "\x1e", " ", "\t", ":", "From ", "\r\n ", "\n\t"]
    pieces += ["\udce9", "X-A: b", "\r\n\r\n", "\n\n", " \t"]
    rng = random.Random(822)
    for raw in corpus_blocks():
        text = raw.decode("ascii", "surrogateescape")
        yield text
        yield text.replace("\r\n", "\n")
        yield text.replace("\r\n", "\n").replace("\n", "\r\n")
        for _ in range(3):
            chars = list(text[:2000])
            for _ in range(rng.randint(1, 3)):
                chars.insert(rng.randrange(len(chars) + 1), rng.choice(pieces))
            yield "".join(chars)
    for _ in range(50000):
        yield "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))


def test_plain_blocks_read_as_the_line_reader_reads_them() -> None:
    plain = other = 0
    for text in block_variants():
        fields = _plain_fields(text)
        if fields is None:
            other += 1
            continue
        plain += 1
        assert (fields, True) == _fields(text), repr(text[:300])
    assert plain > 6000 and other > 10000


@pytest.mark.parametrize("odd", ["\v", "\f", "\x1c", "\x1d", "\x1e", "\r", "\n"])
def test_a_block_with_an_odd_or_mixed_break_takes_the_line_reader(odd: str) -> None:
    text = f"Subject: a{odd}b\r\nTo: x@y\r\n\r\n"
    assert _plain_fields(text) is None
    assert parse_header_block(text.encode()).items() == _fields(text)[0]


# --- the event's fields --------------------------------------------------------------------------------


def test_a_field_whose_reader_raises_falls_back_and_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: object) -> None:
        raise RecursionError

    raw = b"From: A <a@x.org>\nSender: s@x.org\nTo: t@x.org\nSubject: =?utf-8?q?caf=C3=A9?=  d\nDate: x\n\n"
    monkeypatch.setattr(event_module, "first_address", boom)
    monkeypatch.setattr(event_module, "decoded", boom)
    monkeypatch.setattr(event_module, "addresses", boom)
    event, reports = _event_and_reports(raw)
    assert (event.from_addr, event.from_name, event.sender_addr) == (None, "", None)
    assert event.to_addrs == event.cc_addrs == event.reply_to == ()
    assert event.subject == "=?utf-8?q?caf=C3=A9?= d"  # the raw text, white space folded
    assert reports == [
        ("From", "RecursionError"),
        ("Sender", "RecursionError"),
        ("Date", "unreadable or absurd, arrival time used"),
        ("Reply-To", "RecursionError"),
        ("To", "RecursionError"),
        ("Cc", "RecursionError"),
        ("Subject", "RecursionError"),
    ]


@pytest.mark.parametrize(
    "internal", [b"01-Dec-2026 10:00:00 +2400", b"31-Dec-9999 23:00:00 -0200", b"1-Dec-2026 10:00:00 -9959"]
)
def test_an_arrival_time_utc_cannot_hold_leaves_the_message_dated_by_its_date(internal: bytes) -> None:
    from monitor.sources.imap_events import FolderFetch, build_events

    read = FolderFetch("mail", "inbox", "INBOX", 1, False, datetime(2026, 12, 1, tzinfo=UTC))
    data = {
        b"FLAGS": (),
        b"INTERNALDATE": _internal_date(internal),  # as parse_fetch_records hands it on
        b"BODY[HEADER.FIELDS (DATE FROM)]": (
            b"Date: Tue, 01 Dec 2026 09:00:00 +0000\r\nFrom: a@example.org\r\n\r\n"
        ),
    }
    (built,) = build_events({7: data}, read)
    assert built.event is not None and built.error == ""
    assert built.internal_date is None
    assert built.event.date == datetime(2026, 12, 1, 9, tzinfo=UTC)


def test_a_date_utc_cannot_hold_is_nonsense_and_the_arrival_time_is_used() -> None:
    arrival = datetime(2026, 12, 1, 9, tzinfo=UTC)
    block = parse_header_block(b"Date: Fri, 31 Dec 9999 23:00:00 -0200\r\n\r\n")
    assert headers.dated(block, arrival) == (arrival, True)
    event = to_event(block, source="m", folder="inbox", external_id="x", internal_date=arrival)
    assert event.date == arrival
