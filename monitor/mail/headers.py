"""The one header decoder: header blocks, RFC 2047 text, addresses, message ids and dates (pure)."""

from __future__ import annotations

import email.parser
import email.policy
import functools
import hashlib
import re
from collections.abc import Iterable, KeysView
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header, decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

# Only the headers the engine needs; IMAP fetches exactly these (BODY.PEEK[HEADER.FIELDS (...)]).
WANTED_HEADERS: tuple[str, ...] = (
    "Message-ID",
    "Date",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "In-Reply-To",
    "References",
    "Thread-Index",
    "Thread-Topic",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponder",
    "X-Auto-Response-Suppress",
    "Precedence",
    "List-Id",
    "List-Post",
    "List-Unsubscribe",
    "Feedback-ID",
    "Return-Path",
    "Content-Type",
    "Content-Transfer-Encoding",
    "X-Failed-Recipients",
    "X-Replywatch-Holding",
)

# RFC 5322 §3.6.4 msg-id, and the obsolete quoted local part (§4.5.4) that X.400 gateways still write.
# Possessive quantifiers and no overlap between the parts keep every match linear in the input (issue 7).
_MSGID = re.compile(r'<((?:"[^"<>]*+"|[^<>\s"@])++@[^<>\s]++|[^<>\s]++)>')
# A Date more than a day in the future or before 1990 is a broken client clock, not a fact.
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_FUTURE_SLACK = timedelta(days=1)
_ABSURD_FUTURE = timedelta(days=366)
# The year as written: the stdlib reads years below 100 as 19xx/20xx (RFC 5322 §4.3), so ``0001`` would
# become 2001; a year written with three or more digits is taken as written.
_WRITTEN_YEAR = re.compile(r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d+)\b")
MAX_DECODED_CHARS = 4096
"""How much of a header value with RFC 2047 encoded-words is decoded as text."""
MAX_HEADER_CHARS = 32 * 1024
"""The most of one header value that is read; longer values are cut there and the cut is reported.

Postfix accepts 100 KB headers; no header the engine reads needs more than a few KB, and the cap
bounds what one field may cost every parser after this one."""

_parser = email.parser.BytesParser(policy=email.policy.compat32)
# RFC 5322 §2.2: a field name is printable ASCII except colon; feedparser accepts the same.
_ODD_BREAKS = re.compile(r"[\v\f\x1c\x1d\x1e]")
_HEADER_LINE = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")
_LINES = re.compile(r"(?<=\r\n)|(?<=\r)(?!\n)|(?<=\n)")


class HeaderBlock(Message):
    """A header-only message whose lookups are dictionary reads.

    ``email.message.Message.get`` lower-cases and scans every header on each call; a message is asked
    for some forty fields, so the index is built once instead. Values are the same as the stdlib's
    (compat32: folded lines joined as they were), which a test checks on the whole corpus, except that
    raw 8-bit text comes back as Unicode instead of an ``unknown-8bit`` ``Header`` that garbles it.
    """

    _index: dict[str, list[str]]
    truncated: tuple[str, ...]
    """The names of fields cut at :data:`MAX_HEADER_CHARS`."""
    whole: bool
    """True when the block ended at its blank line or its end (not at a line that is no field)."""

    def __init__(
        self, headers: list[tuple[str, str]], truncated: tuple[str, ...] = (), *, whole: bool = True
    ) -> None:
        super().__init__(policy=email.policy.compat32)
        self.truncated = truncated
        self.whole = whole
        self._headers = headers
        index: dict[str, list[str]] = {}
        for name, value in headers:
            index.setdefault(name.lower(), []).append(value)
        self._index = index

    def field_names(self) -> KeysView[str]:
        """The lower-cased names of its fields: a lookup of any other name finds nothing."""
        return self._index.keys()

    def get(self, name: str, failobj: Any = None) -> Any:
        """The first value of ``name`` (as ``Message.get``; 8-bit text as Unicode: :func:`unicode_text`)."""
        values = self._index.get(name.lower())
        if not values:
            return failobj
        value = values[0]
        return value if value.isascii() else unicode_text(value)

    def get_all(self, name: str, failobj: Any = None) -> Any:
        """Every value of ``name`` (as ``Message.get_all``; 8-bit text as Unicode)."""
        values = self._index.get(name.lower())
        if not values:
            return failobj
        return [unicode_text(v) for v in values]

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __setitem__(self, name: str, val: Any) -> None:
        super().__setitem__(name, val)
        self._index.setdefault(name.lower(), []).append(self._headers[-1][1])

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        self._index.pop(name.lower(), None)


def parse_header_block(raw: bytes) -> Message:
    """Parse the header part of ``raw`` (a whole message or only its headers), never raising.

    Equivalent to ``BytesParser(policy=compat32).parsebytes(raw, headersonly=True)`` for the headers,
    about five times faster: the header block is split here, lines as feedparser splits them.
    """
    cut = [i for i in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n"), raw.find(b"\r\r")) if i >= 0]
    if cut:  # only the header block is split into lines (a whole message may follow)
        raw = raw[: min(cut) + 2]
    text = raw.decode("ascii", "surrogateescape")
    headers = _plain_fields(text)
    if headers is None:
        headers, whole = _fields(text)
    else:
        whole = True
    truncated: dict[str, None] = {}
    if len(text) > MAX_HEADER_CHARS:  # else no value can be longer
        for i, (field_name, value) in enumerate(headers):
            if len(value) > MAX_HEADER_CHARS:
                headers[i] = (field_name, _cut(field_name, value))
                truncated[field_name] = None
    return HeaderBlock(headers, tuple(truncated), whole=whole)


# A field and its continuation lines, in a block whose every line ends the same way; the blanks that begin
# its value are left out (compat32's lstrip). A value holds no \r or \n, nor the odd breaks that only
# str.splitlines breaks at (such a block goes to _fields): a block holding one has text between matches.
_VALUE_LINE = r"[^\r\n\v\f\x1c\x1d\x1e]*+"
_PLAIN_FIELD = {
    eol: re.compile(rf"([\041-\071\073-\176]+):[ \t]*+({_VALUE_LINE}(?:{eol}[\t ]{_VALUE_LINE})*+){eol}")
    for eol in ("\r\n", "\n")
}


def _plain_fields(text: str) -> list[tuple[str, str]] | None:
    """The fields of a block made of nothing but fields (then its blank line, or its end) whose lines all
    end alike, as :func:`_fields` reads them; None for any other block (it goes to :func:`_fields`).

    One ``split`` cuts the block into ``[gap, name, value, gap, name, value, ..., rest]``: the block is
    plain when no gap holds anything and the rest is nothing or the blank line. A lone ``\r`` or ``\n`` in a
    CRLF block, or an odd break, falls in a gap.
    """
    eol = "\r\n" if "\r" in text else "\n"
    parts = _PLAIN_FIELD[eol].split(text)
    rest = parts.pop()
    if (rest and rest != eol) or any(parts[::3]):
        return None
    return list(zip(parts[1::3], parts[2::3], strict=True))


def _fields(text: str) -> tuple[list[tuple[str, str]], bool]:
    """The fields of a header block, lines as feedparser splits them; and whether the block ended at its
    blank line or its end (not at a line that is no field)."""
    # str.splitlines also breaks at \v, \f and \x1c-\x1e, which feedparser does not.
    lines = _LINES.split(text) if _ODD_BREAKS.search(text) else text.splitlines(keepends=True)
    headers: list[tuple[str, str]] = []
    name: str | None = None
    parts: list[str] = []
    whole = True
    for line in lines:  # line ends kept, as feedparser keeps them
        if not _HEADER_LINE.match(line):
            whole = line in ("\r\n", "\n", "\r")
            break  # the blank line, or the first line that is neither a field nor a continuation
        if line[0] in " \t":
            if name is not None:
                parts.append(line)
            continue  # a continuation before any field is dropped (a defect to feedparser too)
        if name is not None:
            headers.append(_field(name, parts))
            name = None
        if line.startswith("From "):
            continue  # an mbox envelope line, not a field
        colon = line.find(":")
        if colon > 0:
            name, parts = line[:colon], [line[colon + 1 :]]
    if name is not None:
        headers.append(_field(name, parts))
    return headers, whole


def _field(name: str, parts: list[str]) -> tuple[str, str]:
    # compat32's header_source_parse: first line's value left-stripped, continuation lines kept as they
    # were (joined with the line breaks feedparser keeps), trailing line break removed.
    value = parts[0].lstrip(" \t") + "".join(parts[1:])
    return name, value.rstrip("\r\n")


def _cut(name: str, value: str) -> str:
    # References lists the thread's ids oldest first (RFC 5322 §3.6.4): its newest, most useful ids are
    # at the end, so that one keeps its tail; every other field keeps its head.
    if name.lower() == "references":
        tail = value[-MAX_HEADER_CHARS:]
        start = tail.find("<")
        return tail[start:] if start > 0 else tail
    return value[:MAX_HEADER_CHARS]


def message_ids(value: str | None) -> tuple[str, ...]:
    """The ids in a Message-ID / In-Reply-To / References value, without angle brackets, in order."""
    if not value:
        return ()
    value = unicode_text(str(value))
    found = [_short_id(i) for i in _MSGID.findall(value)]
    if found:
        return tuple(dict.fromkeys(found))
    # Some clients write a bare id without brackets.
    bare = value.strip()
    return (_short_id(bare),) if bare and " " not in bare else ()


MAX_ID_CHARS = 250
"""Longer message ids (real ones are under 100 characters) are replaced by :func:`_short_id`'s hash."""


def _short_id(msgid: str) -> str:
    # An id keys rows and indexes (PostgreSQL's btree takes about 2.7 KB per row): a hostile 200,000-
    # character id is known by its digest, the same in every header that cites it (issue 7).
    if len(msgid) <= MAX_ID_CHARS:
        return msgid
    return "sha256:" + hashlib.sha256(msgid.encode("utf-8", "surrogatepass")).hexdigest()


def unicode_text(text: str) -> str:
    """Valid Unicode for a header value parsed from bytes.

    Raw 8-bit header bytes come out of the parser as surrogate escapes, which no database can store.
    RFC 6532 §3.2 headers are UTF-8; older clients wrote their own 8-bit charset, most often
    Windows-1252: read as UTF-8 when it is, else as Windows-1252.
    """
    if text.isascii():
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def decoded(value: str | Header | None, problems: list[str] | None = None) -> str:
    """A header value's text: RFC 2047 encoded-words decoded, white space folded ('' when missing).

    Each encoded-word is read in its declared charset, else as UTF-8, else as Windows-1252 (the rule
    :func:`unicode_text` applies to raw 8-bit bytes): a mislabelled word still gives readable text and
    never the raw ``=?...?=`` form. Values the stdlib wraps in an ``unknown-8bit`` Header are read alike.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        value = unicode_text(value)
        if "=?" not in value:
            return " ".join(value.split())
        # The stdlib's encoded-word split grows faster than the text; no one reads a subject or a name
        # past its first few KB, so only those are decoded and the cost stays bounded (issue 7).
        value = value[:MAX_DECODED_CHARS]
    try:
        chunks = decode_header(value)
    except Exception as err:  # malformed encoded-words (HeaderParseError, bad base64...): keep the raw text
        if problems is not None:
            problems.append(f"not decodable ({type(err).__name__}), raw text kept")
        return " ".join(unicode_text(str(value)).split())
    return " ".join(_joined(chunks).split())


def _joined(chunks: list[tuple[bytes | str, str | None]]) -> str:
    # As email.header.Header.__str__: a space between an encoded-word and plain text that touch.
    out: list[str] = []
    last_plain, last_space = True, False
    for chunk, charset in chunks:
        text = chunk if isinstance(chunk, str) else _chunk_text(chunk, charset)
        plain = charset in (None, "us-ascii")
        if out and last_plain != plain:
            spaced = (bool(text) and _is_break(text[0])) if plain else last_space
            if not spaced:
                out.append(" ")
        out.append(text)
        last_plain, last_space = plain, bool(text) and _is_break(text[-1])
    return "".join(out)


def _is_break(char: str) -> bool:
    return char.isspace() or char in "()\\"


# Labels senders use for a wider charset than they name: WHATWG Encoding Standard §4.2 reads gb2312 and
# gbk with the gb18030 decoder, as mail clients do.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030"}


def _chunk_text(chunk: bytes, charset: str | None) -> str:
    if charset is None:
        # decode_header gives text outside encoded-words as raw-unicode-escape bytes: undo exactly that.
        try:
            return chunk.decode("raw-unicode-escape")
        except UnicodeDecodeError:
            return chunk.decode("latin-1")
    charset = charset.lower()
    if charset not in {"unknown-8bit", "x-unknown"}:
        try:
            return chunk.decode(_SUPERSETS.get(charset, charset))
        except (LookupError, ValueError):  # an unknown charset, or bytes it cannot hold
            pass
    return unicode_text(chunk.decode("ascii", "surrogateescape"))


# The forms nearly all mail uses: ``addr@host`` or ``Display Name <addr@host>``, with no quotes,
# comments, groups or routes. Anything else goes to the stdlib's full RFC 5322 parser.
_ATOMS = r"[^\s\"(),:;<>@\[\]\\]+"
# One address, then a comma or the end: ``addr@host``, ``Name <addr@host>`` or ``"Quoted, Name" <addr@host>``.
# Possessive quantifiers, and a display name made of words separated by white space, leave one way to
# match any input: the match is linear in its length (a lazy name beside ``\s*`` was cubic, issue 7).
_WORD = r"[^\s\"(),:;<>@\[\]\\]++"
_SIMPLE_ADDRESS = re.compile(
    rf"\s*+(?:(?:\"((?:[^\"\\]|\\.)*+)\"|((?:{_WORD}(?:\s++{_WORD})*+)?))\s*+<({_ATOMS}@{_ATOMS})>"
    rf"|({_ATOMS}+@{_ATOMS}+))\s*+(?:,|$)"
)
# What an address list that even the stdlib cannot read still shows: its addr-specs, split out in one pass.
_ADDR_DELIMITERS = re.compile(r"[\s\"(),:;<>\[\]\\]+")
_QUOTED_PAIR = re.compile(r"\\(.)")


MAX_CACHED_CHARS = 1000
"""Address header values up to this length are parsed once and remembered (a message's From is read by
the classifier and the event builder alike, and a team's own address comes with every message)."""


def address_pairs(value: str, problems: list[str] | None = None) -> list[tuple[str, str]]:
    """(display name, addr-spec) pairs of one address header value, as ``email.utils.getaddresses``.

    The forms nearly all mail uses are matched directly; comments, groups, routes and anything unusual
    go to the stdlib's full RFC 5322 parser. A test compares both on every address in the corpora.
    A value even that parser cannot read (500 nested comments raise RecursionError) gives its bare
    addr-specs, and the reason is appended to ``problems``.
    """
    if len(value) > MAX_CACHED_CHARS:
        return _address_pairs(value, problems)
    pairs, problem = _remembered_pairs(value)
    if problem is not None and problems is not None:
        problems.append(problem)
    return list(pairs)


@functools.lru_cache(maxsize=4096)
def _remembered_pairs(value: str) -> tuple[tuple[tuple[str, str], ...], str | None]:
    problems: list[str] = []
    pairs = _address_pairs(value, problems)
    return tuple(pairs), problems[0] if problems else None


def _address_pairs(value: str, problems: list[str] | None) -> list[tuple[str, str]]:
    pairs = []
    pos = 0
    end = len(value)
    while pos < end:
        match = _SIMPLE_ADDRESS.match(value, pos)
        if match is None or match.end() == pos:
            return _full_parse(value, problems)
        quoted, plain, bracketed, bare = match.groups()
        if bare is not None:
            pairs.append(("", bare))
        elif quoted is not None:
            pairs.append((_QUOTED_PAIR.sub(r"\1", quoted), bracketed))
        else:
            pairs.append((plain, bracketed))
        pos = match.end()
        if value.endswith(",", 0, pos) and not value[pos:].strip():
            return _full_parse(value, problems)  # a trailing comma: let the stdlib decide what it means
    return pairs


def _full_parse(value: str, problems: list[str] | None) -> list[tuple[str, str]]:
    try:
        return getaddresses([value])
    except (RecursionError, ValueError, TypeError, IndexError) as err:
        if problems is not None:
            problems.append(f"unreadable address list ({type(err).__name__}), bare addresses kept")
        words = _ADDR_DELIMITERS.split(value)
        return [("", w) for w in words if w.count("@") == 1 and not w.startswith("@") and not w.endswith("@")]


def addresses(values: Iterable[str | None], problems: list[str] | None = None) -> tuple[str, ...]:
    """Lower-cased addr-specs from address headers, duplicates removed, order kept."""
    out: dict[str, None] = {}
    for value in values:
        if not value:
            continue
        for _name, addr in address_pairs(str(value), problems):
            addr = unicode_text(addr.strip().lower())
            if "@" in addr:
                out[addr] = None
    return tuple(out)


def first_address(value: str | None, problems: list[str] | None = None) -> tuple[str | None, str]:
    """The first address (with an ``@``) of a header and its decoded display name."""
    if not value:
        return None, ""
    for name, addr in address_pairs(str(value), problems):
        addr = unicode_text(addr.strip().lower())
        if "@" in addr:
            return addr, decoded(name, problems) if name else ""
    return None, ""


def first_mailbox(value: str | None) -> tuple[str, str]:
    """The first mailbox of a header, with or without a domain (``MAILER-DAEMON``), and its decoded name.

    The address is lower-cased; ``("", "")`` when the header names none.
    """
    if not value:
        return "", ""
    if len(value) > MAX_CACHED_CHARS:
        return _first_mailbox(value)
    return _remembered_first_mailbox(value)


def _first_mailbox(value: str) -> tuple[str, str]:
    pairs = address_pairs(value)
    if not pairs:
        return "", ""
    name, addr = pairs[0]
    return unicode_text(addr.strip().strip("<>").lower()), decoded(name) if name else ""


_remembered_first_mailbox = functools.lru_cache(maxsize=4096)(_first_mailbox)


def header_text(value: str | Header) -> str:
    """A header value as Unicode, encoded-words left as they are (8-bit bytes as :func:`unicode_text`)."""
    if isinstance(value, Header):  # the stdlib's wrapper of a raw 8-bit value (charset unknown-8bit)
        value = "".join(
            chunk.decode("ascii", "surrogateescape") if isinstance(chunk, bytes) else chunk
            for chunk, _charset in decode_header(value)
        )
    return unicode_text(value)


def message_date(msg: Message, internal_date: datetime | None, now: datetime | None = None) -> datetime:
    """When the message was sent: its Date header, else the server's arrival time.

    RFC 5322 §3.3: ``-0000`` means the zone is unknown; Python returns a naive datetime for it, which
    we read as UTC, like a Date without any zone. A missing, unparsable or absurd Date (before 1990 or
    more than a day after the arrival) falls back to ``internal_date``.
    A year written with three or more digits below 1990 (``0001``) is absurd, not 2001.
    """
    return dated(msg, internal_date, now)[0]


def dated(msg: Message, internal_date: datetime | None, now: datetime | None = None) -> tuple[datetime, bool]:
    """:func:`message_date`, and whether a Date header was there but is nonsense (unparsable, before 1990
    or more than a year after the arrival): a source says so once."""
    fallback = _aware(internal_date) if internal_date is not None else None
    limit = (fallback or now or datetime.now(UTC)) + _FUTURE_SLACK
    value = msg.get("Date")
    parsed: datetime | None = None
    if value:
        text = str(value)[:200]  # a Date is about 40 characters; the rest cannot make it better
        parsed = _date_of(text)
    if parsed is not None:
        try:
            parsed = _aware(parsed)
        except OverflowError:  # the last hours of year 9999 behind UTC: nonsense, never a lost message
            parsed = None
    if parsed is not None and _EARLIEST <= parsed <= limit:
        return parsed, False
    # A clock a few days or months fast is common and not worth a word; nonsense is.
    unused = bool(value) and (parsed is None or parsed < _EARLIEST or parsed > limit + _ABSURD_FUTURE)
    if fallback is not None:
        return fallback, unused
    return (parsed, unused) if parsed is not None else (now or datetime.now(UTC), unused)


def _date_of(text: str) -> datetime | None:
    """A Date header's time as ``parsedate_to_datetime`` reads it (naive for ``-0000``), None when it
    cannot, or when a year written with three or more digits is not the year it read."""
    found = _COMMON_DATE.fullmatch(text)
    if found is not None:
        month = _MONTH_NUMBERS.get(found[2].lower())
        if month is not None:
            return _common_date(found, month)
    return _stdlib_date_of(text)


def _stdlib_date_of(text: str) -> datetime | None:
    """:func:`_date_of` by the standard library's parser alone: every form the fast path does not take."""
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    year = _WRITTEN_YEAR.search(text)
    written = year.group(1) if year is not None else ""
    if len(written) >= 3 and int(written) != parsed.year:
        return None
    return parsed


# The form nearly every Date has (RFC 5322 §3.3): ``[Tue, ]1 Dec 2026 19:35[:17] +0000``, maybe followed by
# a comment such as ``(UTC)``. parsedate_to_datetime splits the text at white space and reads only its
# first five words (after a weekday): the words after the zone never change what it reads.
_COMMON_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?[ \t]+)?([0-9]{1,2})[ \t]+([A-Za-z]{3})[ \t]+([0-9]{4}|[0-9]{2})"
    r"[ \t]+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?[ \t]+([+-][0-9]{4}|GMT|UTC?)(?:[ \t]+.*)?",
    re.DOTALL,
)
_MONTH_NUMBERS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DATE_ZONES: dict[str, timezone | None] = {"-0000": None, "GMT": UTC, "UT": UTC, "UTC": UTC}
"""The zone object of each zone seen (under 24 hours: at most 4,804): built once, not per message.
``-0000`` is None: the zone is unknown (RFC 5322 §3.3) and parsedate_to_datetime gives a naive time."""


def _common_date(found: re.Match[str], month: int) -> datetime | None:
    """The fast path of :func:`_date_of` for :data:`_COMMON_DATE`, read exactly as the stdlib reads it.

    A two-digit year is 19xx from 69 on, else 20xx (RFC 5322 §4.3); a four-digit year below 100 (``0001``)
    is read so too by the stdlib, which :data:`_WRITTEN_YEAR` rejects: None (that rule's first match is this
    month and year, as no weekday name begins like a month). The zone's seconds are
    ``hh * 3600 + mm * 60``; an impossible field or a zone of 24 hours or more is None, as a ValueError is.
    """
    day, _month, year, hour, minute, second, zone = found.groups()
    number = int(year)
    if number < 100:
        if len(year) > 2:
            return None
        number += 1900 if number > 68 else 2000
    if zone in _DATE_ZONES:
        tz = _DATE_ZONES[zone]
    else:
        hhmm = int(zone[1:])
        seconds = (hhmm // 100) * 3600 + (hhmm % 100) * 60
        try:
            tz = timezone(timedelta(seconds=-seconds if zone[0] == "-" else seconds))
        except ValueError:
            return None
        _DATE_ZONES[zone] = tz
    try:
        return datetime(number, month, int(day), int(hour), int(minute), int(second or 0), tzinfo=tz)
    except ValueError:
        return None


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def thread_index_root(value: str | None) -> str | None:
    """The conversation part of an Outlook ``Thread-Index`` (its first 22 bytes, base64 of 16+6)."""
    if not value:
        return None
    value = value.strip()
    # The first 22 bytes are a FILETIME (6) + GUID (16); base64 of 22 bytes is 30 chars (with padding '==').
    return value[:30] if len(value) >= 30 else None
