"""The pure IMAP FETCH response parser: imaplib's records in, imapclient's typed values out.

imapclient lexes each FETCH response byte by byte in Python, the header-field list that the server
echoes for every message (``BODY[HEADER.FIELDS (MESSAGE-ID DATE ...)]``) included: most of a first
sync's time. The bulk header fetch instead takes imaplib's records (imaplib reads ``{n}`` literals by
size), cuts each response into tokens with one regular expression and types the items as imapclient
does. Anything unexpected raises FetchParseError, and the batch is read again through imapclient.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from imapclient.datetime_util import parse_to_datetime
from imapclient.fixed_offset import FixedOffset

_ATOM_CHARS = rb'[^\x00-\x20()"\[\x7f]'
_FETCH_TOKEN = re.compile(
    rb"[ ]*("
    rb"[()\x00]"  # parentheses; NUL stands for a literal (see fetch_responses)
    rb'|"[^"\\]*(?:\\.[^"\\]*)*"'  # quoted string
    # atom, number, or item name with its [section] and <origin>
    rb"|" + _ATOM_CHARS + rb"+(?:\[[^\]]*\]" + _ATOM_CHARS + rb"*)*"
    rb"|[^ ])",  # anything else: an error
    re.DOTALL,
)
_QUOTED_PAIR = re.compile(rb'\\([\\"])')
_NIL = b"NIL"
# RFC 3501 date-time, as servers write INTERNALDATE: "DD-Mon-YYYY HH:MM:SS +ZZZZ" (the day may be
# space-padded). Only this exact form takes the fast path; any other text goes to imapclient.
_DATE_TIME = re.compile(
    rb"[ ]?([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-][0-9]{4})"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        (b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"), 1
    )
}
_ZONES: dict[bytes, FixedOffset] = {}
"""imapclient's zone object for each ``+ZZZZ`` seen (under 24 hours: at most 4,800), built once."""


class FetchParseError(ValueError):
    """A FETCH response the fast parser does not read (its batch is then fetched through imapclient)."""


def fetch_responses(records: Sequence[Any]) -> list[tuple[bytes, list[bytes]]]:
    """Group imaplib's FETCH records into responses: ``(text with NUL where each literal was, literals)``.

    imaplib stores ``* 12 FETCH (... {5}\r\nhello ...)`` as ``(b"12 (... {5}", b"hello")`` followed by
    the rest of the line (``b" ...)"``): a record that starts with a digit starts a new response.
    """
    out: list[tuple[bytes, list[bytes]]] = []
    parts: list[bytes] = []
    literals: list[bytes] = []
    for record in records:
        if record is None:  # imaplib's "no FETCH response at all"
            continue
        literal: bytes | None = None
        text = record[0] if isinstance(record, tuple) else record
        if type(text) is not bytes or b"\x00" in text:
            raise FetchParseError("unexpected record")
        if isinstance(record, tuple):
            literal = record[1]
            marker = text.rfind(b"{")
            size = text[marker + 1 : -1]
            if marker < 0 or not text.endswith(b"}") or not size.isdigit() or int(size) != len(literal):
                raise FetchParseError("literal does not match its {size}")
            text = text[:marker] + b"\x00"
        if text[:1].isdigit():
            if parts:
                out.append((b"".join(parts), literals))
                parts, literals = [], []
        elif not parts:
            raise FetchParseError("continuation record without a response")
        parts.append(text)
        if literal is not None:
            literals.append(literal)
    if parts:
        out.append((b"".join(parts), literals))
    return out


def _tokens_to_values(text: bytes, literals: Sequence[bytes]) -> list[Any]:
    """The values of one response: numbers as int, NIL as None, strings as bytes, lists as tuples."""
    top: list[Any] = []
    stack = [top]
    current = top
    unused = iter(literals)
    for token in _FETCH_TOKEN.findall(text):
        first = token[0]
        if first == 0x28:  # (
            child: list[Any] = []
            current.append(child)
            stack.append(child)
            current = child
        elif first == 0x29:  # )
            if len(stack) == 1:
                raise FetchParseError("unbalanced ')'")
            stack.pop()
            current = stack[-1]
            current[-1] = tuple(current[-1])
        elif first == 0:
            literal = next(unused, None)
            if literal is None:
                raise FetchParseError("more literals announced than read")
            current.append(literal)
        elif first == 0x22:  # "
            if len(token) < 2 or token[-1] != 0x22:
                raise FetchParseError("unterminated quoted string")
            value = token[1:-1]
            current.append(_QUOTED_PAIR.sub(rb"\1", value) if b"\\" in value else value)
        elif token == _NIL:
            current.append(None)
        elif token.isdigit() and (first != 0x30 or len(token) == 1):  # "0123" stays bytes, as imapclient
            current.append(int(token))
        elif len(token) == 1 and (first < 0x20 or first in b"[\x7f"):
            raise FetchParseError(f"unexpected byte {token!r}")
        else:
            current.append(token)
    if len(stack) != 1:
        raise FetchParseError("unbalanced '('")
    if next(unused, None) is not None:
        raise FetchParseError("literal without a place")
    return top


def parse_fetch_response(text: bytes, literals: Sequence[bytes] = ()) -> tuple[int | None, dict[bytes, Any]]:
    """One FETCH response (``b"12 (UID 5 FLAGS (\\Seen) ...)"``) -> ``(UID or None, {item: value})``.

    Items come in any order; values are typed as imapclient's fetch() types them (``SEQ`` added, UID
    kept out, INTERNALDATE a datetime or None, FLAGS a tuple of bytes, lists as tuples, NIL None).
    """
    values = _tokens_to_values(text, literals)
    if len(values) != 2 or not isinstance(values[0], int) or not isinstance(values[1], tuple):
        raise FetchParseError("not a FETCH response")
    seq, items = values
    if len(items) % 2:
        raise FetchParseError("item without a value")
    uid: int | None = None
    data: dict[bytes, Any] = {b"SEQ": seq}
    pairs = iter(items)
    for name, value in zip(pairs, pairs, strict=True):
        if type(name) is not bytes:
            raise FetchParseError("item name is not an atom")
        word = name.upper()
        if word == b"UID":
            if type(value) is not int:
                raise FetchParseError("UID is not a number")
            uid = value
        elif word == b"FLAGS":
            data[word] = _flag_atoms(value)
        elif word == b"INTERNALDATE":
            data[word] = _internal_date(value)
        else:
            data[word] = value
    return uid, data


def _flag_atoms(value: Any) -> tuple[bytes, ...]:
    """FLAGS as a tuple of bytes (a keyword made of digits too, which imapclient turns into an int)."""
    if type(value) is not tuple:
        raise FetchParseError("FLAGS is not a list")
    for flag in value:
        if type(flag) is not bytes:
            if type(flag) is not int:
                raise FetchParseError("FLAGS holds something else than atoms")
            return tuple(str(f).encode() if type(f) is int else f for f in value)
    return value


def _internal_date(value: Any) -> datetime | None:
    """INTERNALDATE as imapclient reads it (zone kept: ``normalise_times`` is off); None when unreadable."""
    if value is None:
        return None
    if not isinstance(value, bytes):
        raise FetchParseError("INTERNALDATE is not a string")
    try:
        found = _DATE_TIME.fullmatch(value)
        month = _MONTHS.get(found[2].lower()) if found is not None else None
        if found is not None and month is not None:
            return _date_time(found, month)
        parsed: datetime = parse_to_datetime(value, normalise=False)
        parsed.astimezone(UTC)  # a zone of 24 hours or more, or a time past year 1 or 9999 in UTC
    except (ValueError, OverflowError):  # that, or a year too large for C (issue 7): the Date decides
        return None
    return parsed


def _date_time(found: re.Match[bytes], month: int) -> datetime:
    """The fast path of :func:`_internal_date`, a datetime equal to imapclient's and with its zone object.

    imapclient reads the text with ``email.utils.parsedate_tz``, which takes a year below 100 as 19xx or
    20xx (``0026`` is 2026) and ``-0000`` as ``+0000``; its zone is a ``FixedOffset`` of the offset's
    seconds / 60, the seconds being ``hh * 3600 + mm * 60`` (``+0060`` is one hour). An out-of-range field
    (a day 32, an hour 24) raises ValueError from ``datetime`` as there. Unlike imapclient's, a time that
    cannot be taken to UTC (a zone of 24 hours or more, which imapclient keeps and ``datetime`` refuses only
    when asked for the offset; the last hours of year 9999 behind UTC) raises too: the message is kept,
    dated by its Date header.
    """
    day, _month, year, hour, minute, second, zone = found.groups()
    tz = _ZONES.get(zone)
    if tz is None:
        hhmm = int(zone[1:])
        seconds = (hhmm // 100) * 3600 + (hhmm % 100) * 60
        if seconds >= 86_400:  # imapclient keeps it, and the time cannot be taken to UTC
            raise ValueError("a zone of 24 hours or more")
        tz = _ZONES[zone] = FixedOffset((-seconds if zone[:1] == b"-" else seconds) / 60)
    number = int(year)
    if number < 100:
        number += 1900 if number > 68 else 2000
    when = datetime(number, month, int(day), int(hour), int(minute), int(second), tzinfo=tz)
    if number in (1, 9999):
        when.astimezone(UTC)  # OverflowError: before year 1 or after 9999 in UTC
    return when


def parse_fetch_records(records: Sequence[Any], uids: Sequence[int]) -> dict[int, dict[bytes, Any]]:
    """imaplib's FETCH records -> ``{uid: items}`` of the requested ``uids``, in their order.

    Only responses carrying one of ``uids`` and a ``BODY[...]`` section count: unsolicited FETCH
    responses (flag updates, other messages, no UID) are left out, never mixed in. A requested message
    answered without its section is a FetchParseError (imapclient's path decides what it becomes).
    """
    wanted = set(uids)
    found: dict[int, dict[bytes, Any]] = {}
    answered: set[int] = set()
    try:
        for text, literals in fetch_responses(records):
            uid, data = parse_fetch_response(text, literals)
            if uid in wanted:
                answered.add(uid)
                for key in data:
                    if key[:5] == b"BODY[":
                        found[uid] = data
                        break
    except FetchParseError:
        raise
    except (ValueError, TypeError, IndexError, AttributeError, ArithmeticError) as err:
        raise FetchParseError(type(err).__name__) from err
    if len(answered) != len(found):
        raise FetchParseError("a requested message came without its header section")
    return {uid: found[uid] for uid in uids if uid in found}
