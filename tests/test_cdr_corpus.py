"""Every CDR corpus file parses; its rows, calls, missed calls and returns within 24 h are pinned.

Read by hand (the rows named here):
- ``cdr_csv-standard-linkedid.csv``: 4 missed calls. Rows 1-5 are one customer trying five times
  (rows 1-3 answered by the dialplan's ``Hangup`` with nobody on the line, 27/27/11 s; rows 4-6 a ring
  group of 301 and a second PBX, ``NO ANSWER``): one item with 5 attempts, never returned. Rows 32-33
  (03:34:03, 03:34:43, 10 s each, again ``Hangup`` without a person) are one item of 2 attempts, returned
  when the same number's call at 03:39:25 (rows 39-40, one leg answered by ``SIP/301``) was answered:
  the one return within 24 h. Row 21 (01:13:18, exactly 10 s) is not a short abandon (under 10 s is).
- ``cdr_new.csv`` / ``g9telecom.csv`` (CR-only line endings, ``24/08/17 09:32`` dates): rows 8, 17 and 18
  are the only unanswered outside callers, ringing 4, 7 and 9 s: short abandons, so no missed call.
- ``3cx-cdr-2020.csv``: 56 unanswered inbound calls, all ended within 1 s of arriving (``00:00:00``
  durations): short abandons. With ``short_abandon: 0s`` they are 48 missed calls (some numbers tried
  again), 30 returned within 24 h: ``Call 9754`` (line 11) hung up at once at 11:03:23 and the same
  number's ``Call 9766`` (line 23) at 11:12:19 was answered and put through to ``Ext.185``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.calendar import BusinessCalendar
from monitor.engine.phone import PhoneOptions, PhoneTeam, build_phone_awaiting
from monitor.rules.callback_within import CallbackWithin, CallbackWithinConfig
from monitor.telephony.calls import calls_from_legs
from monitor.telephony.layouts import (
    ASTERISK_CSV_NEW,
    CDR_CUSTOM_DEFAULT,
    FREEPBX,
    AsteriskLayout,
    ThreeCxLayout,
)
from monitor.verdict import ItemStatus, evaluate_team
from tests.corpus import corpora_root

UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class Figures:
    """What one corpus file holds."""

    layout: AsteriskLayout | ThreeCxLayout
    rows: int
    calls: int
    missed: int
    returned_within_24h: int


CORPUS: dict[str, Figures] = {
    "asterisk/cdr_csv-standard-linkedid.csv": Figures(AsteriskLayout(ASTERISK_CSV_NEW), 84, 36, 4, 1),
    "asterisk/cdr_custom-layout.csv": Figures(AsteriskLayout(CDR_CUSTOM_DEFAULT), 14, 14, 0, 0),
    "asterisk/freepbx-exports/cdr.csv": Figures(
        AsteriskLayout(FREEPBX, date_format="%d/%m/%Y %H:%M:%S"), 856, 856, 0, 0
    ),
    "asterisk/freepbx-exports/cdr__1504525205ucoip.g9telecom.pt.csv": Figures(
        AsteriskLayout(header=True), 100, 100, 0, 0
    ),
    "asterisk/freepbx-exports/cdr__1504541678ucoip.g9telecom.pt.csv": Figures(
        AsteriskLayout(header=True), 100, 100, 0, 0
    ),
    "asterisk/freepbx-exports/cdr__1504542198ucoip.g9telecom.pt.csv": Figures(
        AsteriskLayout(header=True), 100, 100, 0, 0
    ),
    "asterisk/freepbx-exports/cdr_new.csv": Figures(
        AsteriskLayout(header=True, date_format="%d/%m/%y %H:%M"), 25, 25, 0, 0
    ),
    "asterisk/freepbx-exports/g9telecom.csv": Figures(
        AsteriskLayout(header=True, date_format="%d/%m/%y %H:%M"), 100, 100, 0, 0
    ),
    "3cx/3cx-cdr-2020.csv": Figures(ThreeCxLayout(), 1404, 1404, 0, 0),
}

LATER = datetime(2030, 1, 1, tzinfo=UTC)
WALL_24H = CallbackWithin(CallbackWithinConfig(kind="callback_within", business_hours=False))


def figures(path: Path, layout: AsteriskLayout | ThreeCxLayout, options: PhoneOptions) -> tuple[int, ...]:
    parsed = layout.parse(path.read_bytes().decode("utf-8"), UTC_ZONE)
    assert parsed.errors == []
    calls = calls_from_legs("pbx", parsed.legs)
    result = build_phone_awaiting(calls, PhoneTeam("support", options=options))
    verdict = evaluate_team(result.items, [WALL_24H], BusinessCalendar.always_open(), LATER, "support")
    returned = verdict.counts().get(ItemStatus.ANSWERED_ON_TIME, 0)
    return (len(parsed.legs), len(calls), len(result.items), returned)


def test_every_corpus_file_has_pinned_figures() -> None:
    root = corpora_root("cdr")
    files = {str(p.relative_to(root)) for p in root.rglob("*.csv")}
    assert files == set(CORPUS)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file_figures(name: str) -> None:
    want = CORPUS[name]
    got = figures(corpora_root("cdr", name), want.layout, PhoneOptions())
    assert got == (want.rows, want.calls, want.missed, want.returned_within_24h)


def test_3cx_short_abandons_count_when_configured() -> None:
    path = corpora_root("cdr", "3cx/3cx-cdr-2020.csv")
    every_missed = PhoneOptions(short_abandon=timedelta(0))
    assert figures(path, ThreeCxLayout(), every_missed) == (1404, 1404, 48, 30)


def test_a_bad_row_is_reported_and_the_good_rows_kept() -> None:
    text = corpora_root("cdr", "asterisk/cdr_csv-standard-linkedid.csv").read_text().splitlines()
    text.insert(2, '"","+441632960123","200","from-pstn"')
    text[10] = text[10].replace('"2024-01-27 16:16:36"', '"27.01.2024 16:16:36"', 1)
    text[20] = text[20][:40] + "\0"  # a line cut mid-write
    parsed = AsteriskLayout(ASTERISK_CSV_NEW).parse("\n".join(text), UTC_ZONE)
    assert [(e.line, e.reason) for e in parsed.errors] == [
        (3, "4 columns, the layout needs 21"),
        (11, "start time '27.01.2024 16:16:36' does not match '%Y-%m-%d %H:%M:%S'"),
        (21, "the line holds a NUL byte"),
    ]
    assert len(parsed.legs) == 82
    assert all("1632960123" not in str(e) and "81399320234" not in str(e) for e in parsed.errors)


def test_master_csv_reads_rows_before_and_after_newcdrcolumns_was_switched_on() -> None:
    lines = corpora_root("cdr", "asterisk/cdr_csv-standard-linkedid.csv").read_text().splitlines()
    old_row = lines[0].rsplit(",", 3)[0]  # the same call written without peeraccount, linkedid, sequence
    parsed = AsteriskLayout().parse("\n".join([old_row, *lines[6:9]]), UTC_ZONE)
    assert parsed.errors == []
    # Rows 7-9: the Local/ channels of a ring group have their own unique ids but the call's linked id.
    assert [(leg.uniqueid, leg.linkedid) for leg in parsed.legs] == [
        ("1706368044.0", "1706368044.0"),
        ("1706372196.14", "1706372196.12"),
        ("1706372196.16", "1706372196.12"),
        ("1706372196.12", "1706372196.12"),
    ]
    assert len(calls_from_legs("pbx", parsed.legs)) == 2
