"""CDR row layouts: rows of a PBX's call log -> :class:`CdrLeg` values, with local times turned into UTC.

Pure: text in, legs and typed row errors out; the caller reads files or tables. Supported layouts:
Asterisk ``cdr_csv`` (``Master.csv``, no header, 18 columns, 21 with ``newcdrcolumns``), ``cdr_custom``
through a column list, FreePBX exports (with or without a header row), 3CX CDR files (the 27-field
pre-V20 rows and V20's files with a header row) and a generic layout: a header row and a column mapping.

Local times (PBXs log in their own zone) become UTC by one deterministic rule (:func:`local_to_utc`): an
ambiguous time in the autumn fold takes the offset that puts it nearest to the row's Asterisk unique id
(``<epoch>.<n>``, written in UTC) when the row has one, else the first occurrence (summer time); a time
in the spring gap, which no clock showed, is read with the offset before the change (01:30 on the
morning London skips to BST is 01:30 GMT).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

ISO = "%Y-%m-%d %H:%M:%S"
"""Asterisk's own time format (``2024-01-27 15:07:24``)."""

_EXAMPLE = "'%d/%m/%Y %H:%M:%S' (for 1/9/2017 16:33:01) or 'iso' or 'epoch'"


class CdrError(ValueError):
    """Something about call-log rows is wrong."""


class CdrLayoutError(CdrError):
    """A layout cannot be used as configured (an unknown column, a date format that is not one): a
    config error, raised before any row is read."""


class CdrRowError(CdrError):
    """One row cannot be read: carries its line number and the reason, never the row's numbers."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CdrLeg:
    """One CDR row, normalised: what Asterisk, FreePBX and 3CX call logs have in common."""

    uniqueid: str
    """The row's id (for a log without ids, a digest of its start time, caller and dialled number)."""
    linkedid: str
    """The id shared by every leg of one call (the unique id when the log has no linked id)."""
    src: str
    dst: str
    start: datetime
    """When the leg began, UTC-aware."""
    answer: datetime | None
    end: datetime
    duration: float
    """Seconds from start to end."""
    billsec: float
    """Seconds from answer to end (0 when not answered)."""
    disposition: str
    """``ANSWERED``, ``NO ANSWER``, ``BUSY``, ``FAILED`` or ``CONGESTION``."""
    clid: str = ""
    dcontext: str = ""
    channel: str = ""
    dstchannel: str = ""
    lastapp: str = ""
    lastdata: str = ""
    did: str = ""
    """The DID (the number the caller dialled), when the log has one."""
    line_no: int = 0
    """The row's line in its file (1-based), or its position in a result set."""


@dataclass(slots=True)
class ParsedRows:
    """The legs of the rows that could be read, and an error for each row that could not."""

    legs: list[CdrLeg] = field(default_factory=list)
    errors: list[CdrRowError] = field(default_factory=list)


def check_date_format(fmt: str) -> str:
    """``fmt`` when it is ``iso``, ``epoch`` or a strptime pattern with a day and a time; a
    :class:`CdrLayoutError` with an example otherwise (a date format is never guessed)."""
    if fmt in ("iso", "epoch"):
        return fmt
    if (
        not all(directive in fmt for directive in ("%d", "%H", "%M"))
        or not ("%m" in fmt or "%b" in fmt or "%B" in fmt)
        or not ("%Y" in fmt or "%y" in fmt)
    ):
        raise CdrLayoutError(f"unknown date format {fmt!r}: give a strptime pattern such as {_EXAMPLE}")
    return fmt


def local_to_utc(naive: datetime, zone: ZoneInfo, near: float | None = None) -> datetime:
    """A PBX's naive local time in UTC (the fold and gap rule is in the module docstring)."""
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second or near is None:
        return first
    return min((first, second), key=lambda at: abs(at.timestamp() - near))


def parse_time(text: str, fmt: str, zone: ZoneInfo, near: float | None = None) -> datetime:
    """One logged time in UTC; ValueError naming the format when ``text`` does not match it."""
    text = text.strip()
    if fmt == "epoch":
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (OverflowError, OSError) as err:
            raise ValueError(f"{text!r} is out of range") from err
    if fmt == "iso" or (fmt == ISO and len(text) == 19):  # fromisoformat is C; strptime is 20x slower
        aware = datetime.fromisoformat(text)
        if aware.tzinfo is not None:
            return aware.astimezone(UTC)
        return local_to_utc(aware, zone, near)
    return local_to_utc(datetime.strptime(text, fmt), zone, near)


def _epoch_of(uniqueid: str) -> float | None:
    """The UTC epoch an Asterisk unique id (``1706368044.0``, with ``systemname``
    ``pbx1-1706368044.0``) starts with, None for other ids."""
    head = uniqueid.rpartition("-")[2].partition(".")[0]
    return float(head) if head.isdigit() and len(head) >= 9 else None


def _seconds(text: str) -> float:
    """A duration written as seconds (``27``, ``27.5``) or as ``H:MM:SS`` (3CX)."""
    text = text.strip()
    if not text:
        return 0.0
    if ":" in text:
        total = 0.0
        for part in text.split(":"):
            total = total * 60 + float(part)
        return total
    return float(text)


def _records(text: str, first_line: int, errors: list[CdrRowError]) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each is on; blank lines skipped; a BOM dropped; a line with a NUL byte
    (a file cut mid-write) reported in ``errors`` and skipped."""
    text = text.removeprefix("\ufeff")
    current = first_line

    def lines() -> Iterator[str]:
        nonlocal current
        # splitlines: CR-only (old FreePBX exports), LF and CRLF endings alike.
        for number, line in enumerate(text.splitlines(), start=first_line):
            if not line.strip():
                continue
            if "\0" in line:
                errors.append(CdrRowError(number, "the line holds a NUL byte"))
                continue
            current = number
            yield line

    for row in csv.reader(lines()):  # one reader for the whole text: a reader per line costs 3x
        yield current, row


def _header(
    records: Iterator[tuple[int, list[str]]], first_line: int, header: Sequence[str]
) -> tuple[str, ...] | None:
    """The column names of a file with a header row: its first record when ``records`` start the file,
    else ``header`` as the caller kept it; None for an empty file. CdrLayoutError for a later chunk
    without the header."""
    if first_line == 1:
        head = next(records, None)
        return None if head is None else tuple(name.strip() for name in head[1])
    if not header:
        raise CdrLayoutError(f"rows from line {first_line} on need the file's header row")
    return tuple(name.strip() for name in header)


ASTERISK_CSV = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
    "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield",
)  # fmt: skip
"""``cdr_csv``'s Master.csv columns (Asterisk's ``cdr_csv.c``)."""

ASTERISK_CSV_NEW = (*ASTERISK_CSV, "peeraccount", "linkedid", "sequence")
"""The same with ``newcdrcolumns = yes`` in ``cdr.conf``."""

CDR_CUSTOM_DEFAULT = (
    "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata", "start", "answer",
    "end", "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid", "userfield",
    "sequence",
)  # fmt: skip
"""``cdr_custom``'s mapping in Asterisk's sample ``cdr_custom.conf`` (the legacy ``Master.csv`` line)."""

FREEPBX = (
    "calldate", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata",
    "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid", "userfield", "did",
    "recordingfile", "cnum", "cnam", "outbound_cnum", "outbound_cnam", "dst_cnam",
)  # fmt: skip
"""FreePBX's ``asteriskcdrdb.cdr`` columns in table order (an export without a header row)."""

FIELDS = frozenset({*ASTERISK_CSV_NEW, *CDR_CUSTOM_DEFAULT, *FREEPBX, "calldate", "did"})
"""Every column name a column list or a mapping may use."""

_REQUIRED_ANY_START = ("start", "calldate")


@dataclass(frozen=True, slots=True)
class AsteriskLayout:
    """Asterisk-style rows: a column list (``cdr_csv``, ``cdr_custom``, FreePBX); extra trailing columns are
    ignored, so a FreePBX table with ``linkedid`` added still reads.

    ``header`` says the first row of a file names the columns (FreePBX's report export): its names then
    replace ``columns``. FreePBX's ``calldate`` stands in for ``start``; ``answer`` and ``end`` then come from
    ``duration`` and ``billsec``.
    """

    columns: tuple[str, ...] = ASTERISK_CSV
    date_format: str = ISO
    header: bool = False

    def __post_init__(self) -> None:
        check_date_format(self.date_format)
        if not self.header:
            _check_columns(self.columns)

    def parse(self, text: str, zone: ZoneInfo, first_line: int = 1, header: Sequence[str] = ()) -> ParsedRows:
        """The legs of ``text`` (rows of one file from line ``first_line``; a later chunk of a file with a
        header row needs that ``header``)."""
        out = ParsedRows()
        columns = self.columns
        records = _records(text, first_line, out.errors)
        if self.header:
            names = _header(records, first_line, header)
            if names is None:
                return out
            columns = tuple(name.lower() for name in names)
            _check_columns(tuple(c for c in columns if c in FIELDS))
        width = max(i for i, c in enumerate(columns) if c in FIELDS) + 1
        for line, row in records:
            if len(row) < width:
                out.errors.append(CdrRowError(line, f"{len(row)} columns, the layout needs {width}"))
                continue
            # Master.csv gains linkedid mid-file when newcdrcolumns is switched on: read both row widths.
            names = (
                ASTERISK_CSV_NEW if columns == ASTERISK_CSV and len(row) >= len(ASTERISK_CSV_NEW) else columns
            )
            try:
                out.legs.append(
                    leg_from_fields(dict(zip(names, row, strict=False)), self.date_format, zone, line)
                )
            except CdrRowError as err:
                out.errors.append(err)
        return out


def _check_columns(columns: Sequence[str]) -> None:
    unknown = [c for c in columns if c not in FIELDS]
    if unknown:
        raise CdrLayoutError(
            f"unknown CDR column {unknown[0]!r}: use names such as {', '.join(CDR_CUSTOM_DEFAULT)}"
        )
    if not any(c in columns for c in _REQUIRED_ANY_START) or "src" not in columns or "dst" not in columns:
        raise CdrLayoutError("a CDR layout needs 'src', 'dst' and 'start' (or 'calldate') columns")


def leg_from_fields(row: Mapping[str, str], date_format: str, zone: ZoneInfo, line: int) -> CdrLeg:
    """A leg from Asterisk-named fields (a file row or a ``cdr`` table row as text); CdrRowError if bad."""
    uniqueid = (row.get("uniqueid") or "").strip()
    near = _epoch_of(uniqueid)
    start_text = row.get("start") or row.get("calldate") or ""
    try:
        duration = _seconds(row.get("duration") or "0")
        billsec = _seconds(row.get("billsec") or "0")
    except ValueError as err:
        raise CdrRowError(line, "duration or billsec is not a number of seconds") from err
    if not start_text.strip():
        raise CdrRowError(line, "no start time")
    try:
        start = parse_time(start_text, date_format, zone, near)
    except ValueError as err:
        raise CdrRowError(line, f"start time {start_text.strip()!r} does not match {date_format!r}") from err
    answer: datetime | None
    end: datetime
    if "start" in row:
        answer = _optional_time(row.get("answer") or "", date_format, zone, line, "answer", near)
        end = _optional_time(row.get("end") or "", date_format, zone, line, "end", near) or (
            start + timedelta(seconds=duration)
        )
    else:  # FreePBX keeps calldate only: the answer is billsec before the end.
        end = start + timedelta(seconds=duration)
        answer = end - timedelta(seconds=billsec) if billsec > 0 else None
    if end < start:
        raise CdrRowError(line, "the call ends before it starts")
    disposition = (row.get("disposition") or "").strip().upper()
    if not disposition:
        raise CdrRowError(line, "no disposition")
    src = (row.get("src") or "").strip()
    dst = (row.get("dst") or "").strip()
    uniqueid = uniqueid or _content_id(start, src, dst)
    return CdrLeg(
        uniqueid=uniqueid,
        linkedid=(row.get("linkedid") or "").strip() or uniqueid,
        src=src,
        dst=dst,
        start=start,
        answer=answer,
        end=end,
        duration=duration,
        billsec=billsec,
        disposition=disposition,
        clid=row.get("clid") or "",
        dcontext=(row.get("dcontext") or "").strip(),
        channel=(row.get("channel") or "").strip(),
        dstchannel=_dstchannel(row, disposition),
        lastapp=(row.get("lastapp") or "").strip(),
        lastdata=row.get("lastdata") or "",
        did=(row.get("did") or "").strip(),
        line_no=line,
    )


def _content_id(start: datetime, src: str, dst: str) -> str:
    """An id for a row of a log without unique ids (short FreePBX reports): the same for every row of one
    caller to one number at one time, so a ring group's rows still make one call; stable whatever line
    the row is on."""
    digest = hashlib.sha256(f"{start.isoformat()}|{src}|{dst}".encode()).hexdigest()
    return f"cdr-{digest[:20]}"


def _dstchannel(row: Mapping[str, str], disposition: str) -> str:
    """The answering channel; a log without that column (a short FreePBX report) names the callee instead
    when the row is answered, so ``ANSWERED`` there still means a person answered."""
    if "dstchannel" in row:
        return (row["dstchannel"] or "").strip()
    return (row.get("dst") or "").strip() if disposition == "ANSWERED" else ""


def _optional_time(
    text: str, fmt: str, zone: ZoneInfo, line: int, name: str, near: float | None
) -> datetime | None:
    if not text.strip():
        return None
    try:
        return parse_time(text, fmt, zone, near)
    except ValueError as err:
        raise CdrRowError(line, f"{name} time {text.strip()!r} does not match {fmt!r}") from err


THREECX_2020 = (
    "historyid", "callid", "duration", "time-start", "time-answered", "time-end", "reason-terminated",
    "from-no", "to-no", "from-dn", "to-dn", "dial-no", "reason-changed", "final-number", "final-dn",
    "bill-code", "bill-rate", "bill-cost", "bill-name", "chain", "from-type", "to-type", "final-type",
    "from-dispname", "to-dispname", "final-dispname", "missed-queue-calls",
)  # fmt: skip
"""3CX's CDR fields before V20, in the order 3CX writes them when all are enabled (no header row)."""

THREECX_2020_FIELDS = {
    "callid": "callid", "start": "time-start", "answer": "time-answered", "end": "time-end",
    "from": "from-no", "from_dn": "from-dn", "to": "to-no", "to_dn": "to-dn", "final": "final-number",
    "to_type": "final-type",
}  # fmt: skip
"""Which pre-V20 field holds what a call needs."""

THREECX_V20 = {
    "callid": "call_history_id",
    "start": "cdr_started_at",
    "answer": "cdr_answered_at",
    "end": "cdr_ended_at",
    "from": "source_participant_phone_number",
    "from_dn": "source_dn_number",
    "to": "destination_participant_phone_number",
    "to_dn": "destination_dn_number",
    "to_type": "destination_dn_type",
    "final": "destination_dn_number",
}
"""Which V20 header column (``call_history_id``, ``cdr_started_at``...) holds what a call needs; a
segment's ``call_history_id`` is shared by every segment of one call."""

THREECX_DATE = "%Y/%m/%d %H:%M:%S"
"""How pre-V20 3CX writes times (``2020/05/04 10:53:43``)."""

_THREECX_PERSON = ("extension", "internal")
"""3CX types of a party that is a person's phone (pre-V20 ``Internal``, V20 ``Extension``)."""


@dataclass(frozen=True, slots=True)
class ThreeCxLayout:
    """3CX CDR files: one row per call (pre-V20, no header) or per call segment (V20, with a header).

    A segment is answered by a person when it has an answer time and its destination is a phone
    (``Internal``/``Extension``) or an outside number; 3CX's queues and IVRs answer as ``Queue``,
    ``IVR`` or ``VoiceMail`` types, which become the leg's ``lastapp``.
    """

    v20: bool = False
    date_format: str | None = None
    """How times are written (None: 3CX's own, ``2020/05/04 10:53:43`` before V20, ISO 8601 in V20)."""
    v20_columns: Mapping[str, str] = field(default_factory=lambda: dict(THREECX_V20))
    """Where a V20 header keeps each field (:data:`THREECX_V20` unless an export names them otherwise)."""

    def __post_init__(self) -> None:
        if self.date_format is not None:
            check_date_format(self.date_format)

    def parse(self, text: str, zone: ZoneInfo, first_line: int = 1, header: Sequence[str] = ()) -> ParsedRows:
        """The legs of ``text`` (rows of one file from line ``first_line``; a later chunk of a V20 file
        needs its ``header``)."""
        out = ParsedRows()
        records = _records(text, first_line, out.errors)
        columns: tuple[str, ...] = THREECX_2020
        names: Mapping[str, str] = THREECX_2020_FIELDS
        fmt = self.date_format or ("iso" if self.v20 else THREECX_DATE)
        if self.v20:
            names = self.v20_columns
            head = _header(records, first_line, header)
            if head is None:
                return out
            columns = tuple(c.lower() for c in head)
            missing = [c for c in names.values() if c not in columns]
            if missing:
                raise CdrLayoutError(f"3CX V20 CDR header lacks {missing[0]!r}")
        index = {key: columns.index(name) for key, name in names.items()}
        for line, row in records:
            if len(row) < len(columns) - 1:
                out.errors.append(CdrRowError(line, f"{len(row)} columns, 3CX writes {len(columns)}"))
                continue
            fields = {key: row[i].strip() if i < len(row) else "" for key, i in index.items()}
            try:
                out.legs.append(_threecx_leg(fields, fmt, zone, line))
            except CdrRowError as err:
                out.errors.append(err)
        return out


def _threecx_leg(fields: Mapping[str, str], fmt: str, zone: ZoneInfo, line: int) -> CdrLeg:
    """A leg from one 3CX row (its fields under :data:`THREECX_V20`'s keys)."""
    if not fields["callid"]:
        raise CdrRowError(line, "no call id")
    try:
        start = parse_time(fields["start"], fmt, zone)
        answer = parse_time(fields["answer"], fmt, zone) if fields["answer"] else None
        end = parse_time(fields["end"], fmt, zone) if fields["end"] else start
    except ValueError as err:
        raise CdrRowError(line, f"a time does not match {fmt!r}") from err
    if end < start:
        raise CdrRowError(line, "the call ends before it starts")
    to_type = fields["to_type"].lower()
    person = to_type in _THREECX_PERSON or to_type in ("external", "outside", "provider")
    answered = answer is not None and person
    dialled = fields["to"] or fields["to_dn"]
    final = fields["final"] or dialled  # pre-V20 rows end where a transfer or a ring group put the call
    return CdrLeg(
        uniqueid=fields["callid"],
        linkedid=fields["callid"],
        src=fields["from"] or fields["from_dn"],
        dst=dialled,
        start=start,
        answer=answer,
        end=end,
        duration=(end - start).total_seconds(),
        billsec=(end - answer).total_seconds() if answer is not None else 0.0,
        disposition="ANSWERED" if answered else "NO ANSWER",
        dcontext=fields["to_dn"],  # the DN the call reached first (a queue, ring group or phone): its line
        dstchannel=final.removeprefix("Ext.") if answered else "",
        lastapp="" if person else fields["to_type"],
        line_no=line,
    )


@dataclass(frozen=True, slots=True)
class MappedLayout:
    """A CSV with a header row (Twilio's or Aircall's exports): ``mapping`` names, for each Asterisk field
    (``src``, ``dst``, ``start``, ``disposition``...), the header column that holds it."""

    mapping: Mapping[str, str]
    date_format: str
    answered_values: frozenset[str] = frozenset({"answered", "completed"})
    """Values of the ``disposition`` column that mean a person answered (compared in lower case)."""

    def __post_init__(self) -> None:
        check_date_format(self.date_format)
        _check_columns(tuple(self.mapping))

    def parse(self, text: str, zone: ZoneInfo, first_line: int = 1, header: Sequence[str] = ()) -> ParsedRows:
        """The legs of ``text`` (rows of one file from line ``first_line``; a later chunk needs the file's
        ``header``)."""
        out = ParsedRows()
        records = _records(text, first_line, out.errors)
        head = _header(records, first_line, header)
        if head is None:
            return out
        columns = list(head)
        missing = [v for v in self.mapping.values() if v not in columns]
        if missing:
            raise CdrLayoutError(f"column {missing[0]!r} is not in the file's header")
        index = {field_name: columns.index(column) for field_name, column in self.mapping.items()}
        for line, row in records:
            if len(row) < len(columns):
                out.errors.append(CdrRowError(line, f"{len(row)} columns, the header has {len(columns)}"))
                continue
            fields = {name: row[i] for name, i in index.items()}
            raw = fields.get("disposition", "").strip().lower()
            fields["disposition"] = "ANSWERED" if raw in self.answered_values else (raw or "no answer")
            try:
                out.legs.append(leg_from_fields(fields, self.date_format, zone, line))
            except CdrRowError as err:
                out.errors.append(err)
        return out
