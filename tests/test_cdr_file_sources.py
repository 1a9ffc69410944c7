"""The call-log file sources on real files appended to, cut mid-line, rotated and rewritten between polls."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.events import CallDirection
from monitor.sources.asterisk_csv import AsteriskCsvConfig, AsteriskCsvSource
from monitor.sources.base import Cursor, PermanentSourceError
from monitor.sources.calls_csv import CallsCsvConfig, CallsCsvSource
from monitor.sources.cdr_file import CdrFileSource
from monitor.sources.threecx_csv import ThreeCxCsvConfig, ThreeCxCsvSource
from tests.corpus import corpora_root

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def row(
    uid: str,
    src: str,
    dst: str,
    start: str,
    disposition: str,
    *,
    billsec: int = 0,
    dstchannel: str = "",
    lastapp: str = "Dial",
    linkedid: str = "",
    seconds: int = 20,
) -> str:
    """One Master.csv line in cdr_csv's order with newcdrcolumns (21 fields)."""
    begin = datetime.fromisoformat(start)
    end = (begin + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")
    answer = (begin + timedelta(seconds=seconds - billsec)).strftime("%Y-%m-%d %H:%M:%S") if billsec else ""
    fields = [
        "",
        src,
        dst,
        "from-pstn",
        f'"" <{src}>',
        "SIP/trunk-1",
        dstchannel,
        lastapp,
        "",
        start,
        answer,
        end,
        str(seconds),
        str(billsec),
        disposition,
        "DOCUMENTATION",
        uid,
        "",
        "",
        linkedid or uid,
        "1",
    ]
    return ",".join(f'"{f}"' if not f.isdigit() else f for f in fields) + "\n"


def asterisk(path: Path, **extra: object) -> AsteriskCsvSource:
    config = AsteriskCsvConfig.model_validate({"kind": "asterisk_csv", "path": path, **extra})
    return AsteriskCsvSource("pbx", config, clock=lambda: NOW)


def age(path: Path, seconds: float = 60) -> None:
    """Make the file look quiet (last written ``seconds`` before NOW)."""
    at = NOW.timestamp() - seconds
    os.utime(path, (at, at))


def polled(source: CdrFileSource, cursor: Cursor | None) -> tuple[list[str], Cursor]:
    result = source.poll(cursor)
    return [call.external_id for call in result.calls], result.cursor


def test_appended_rows_are_read_once_and_a_half_written_line_waits(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    first = row("100.1", "01632960123", "200", "2026-03-02 09:00:00", "NO ANSWER")
    second = row(
        "100.2",
        "01632960124",
        "200",
        "2026-03-02 09:05:00",
        "ANSWERED",
        billsec=10,
        dstchannel="SIP/201-0001",
    )
    master.write_text(first + second[:30])
    source = asterisk(master, default_region="GB")
    os.utime(master, (NOW.timestamp(), NOW.timestamp()))  # just written: the cut line is still growing
    ids, cursor = polled(source, None)
    assert ids == ["100.1"]
    with master.open("a") as fh:
        fh.write(second[30:])
    os.utime(master, (NOW.timestamp(), NOW.timestamp()))
    ids, cursor = polled(source, cursor)
    assert ids == ["100.2"]
    assert cursor["line"] == 3
    result = source.poll(cursor)
    assert result.calls == [] and result.cursor is cursor  # unchanged file: nothing read


def test_a_last_line_without_newline_is_read_once_the_file_is_quiet(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(row("100.1", "01632960123", "200", "2026-03-02 09:00:00", "NO ANSWER").rstrip("\n"))
    age(master)
    ids, cursor = polled(asterisk(master), None)
    assert ids == ["100.1"]
    assert polled(asterisk(master), cursor)[0] == []


def test_rotation_reads_the_rest_of_the_old_file_then_the_new_one(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(row("1.1", "01632960123", "200", "2026-03-02 09:00:00", "NO ANSWER"))
    age(master)
    source = asterisk(master)
    ids, cursor = polled(source, None)
    assert ids == ["1.1"]
    with master.open("a") as fh:  # written after the poll, before logrotate moved the file
        fh.write(row("1.2", "01632960124", "200", "2026-03-02 09:01:00", "NO ANSWER"))
    master.rename(tmp_path / "Master.csv.1")
    master.write_text(row("1.3", "01632960125", "200", "2026-03-02 09:02:00", "NO ANSWER"))
    age(master)
    result = source.poll(cursor)
    assert [c.external_id for c in result.calls] == ["1.2", "1.3"]
    assert not result.resync
    assert result.cursor["line"] == 2
    assert polled(source, result.cursor)[0] == []


def test_rotation_with_the_old_file_gone_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(row("1.1", "01632960123", "200", "2026-03-02 09:00:00", "NO ANSWER"))
    age(master)
    source = asterisk(master)
    _, cursor = polled(source, None)
    (tmp_path / "archive").mkdir()
    master.rename(tmp_path / "archive" / "Master.csv.1")  # moved away (compressed, archived)
    master.write_text(row("1.3", "01632960125", "200", "2026-03-02 09:02:00", "NO ANSWER"))
    age(master)
    with caplog.at_level(logging.WARNING):
        result = source.poll(cursor)
    assert [c.external_id for c in result.calls] == ["1.3"] and result.resync
    assert "no longer beside it" in caplog.text


def test_a_file_rewritten_in_place_is_read_again(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(row("1.1", "01632960123", "200", "2026-03-02 09:00:00", "NO ANSWER"))
    age(master, 120)
    source = asterisk(master)
    _, cursor = polled(source, None)
    master.write_text(row("2.1", "01632960199", "200", "2026-03-02 10:00:00", "NO ANSWER") * 2)
    age(master)
    result = source.poll(cursor)
    assert result.resync and [c.external_id for c in result.calls] == ["2.1"]


def test_a_ring_group_written_across_polls_is_one_call_emitted_again(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(
        row(
            "5.2",
            "01632960123",
            "600",
            "2026-03-02 09:00:00",
            "NO ANSWER",
            dstchannel="SIP/201-1",
            linkedid="5.1",
        )
    )
    age(master)
    source = asterisk(master, default_region="GB")
    first = source.poll(None)
    assert [(c.external_id, c.legs, c.answered) for c in first.calls] == [("5.1", 1, False)]
    with master.open("a") as fh:
        fh.write(
            row(
                "5.3",
                "01632960123",
                "600",
                "2026-03-02 09:00:00",
                "ANSWERED",
                billsec=12,
                dstchannel="SIP/202-2",
                linkedid="5.1",
            )
        )
    age(master)
    again = source.poll(first.cursor)
    [call] = again.calls
    assert (call.external_id, call.legs, call.answered, call.answered_by) == ("5.1", 2, True, "202")
    assert call.rang == ("201", "202") and call.caller == "+441632960123"
    assert call.direction is CallDirection.INBOUND


def test_calls_older_than_the_regroup_window_leave_the_cursor(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(
        row("1.1", "01632960123", "200", "2026-03-02 07:00:00", "NO ANSWER")
        + row("1.2", "01632960124", "200", "2026-03-02 09:00:00", "NO ANSWER")
    )
    age(master)
    result = asterisk(master, regroup_window="1h").poll(None)
    assert set(result.cursor["recent"]) == {"1.2"}


def test_a_bad_row_is_reported_once_with_its_line_and_the_rest_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    master = tmp_path / "Master.csv"
    good = row("1.1", "01632960123", "200", "2026-03-02 09:00:00", "NO ANSWER")
    bad = row("1.2", "01632960124", "200", "2026-03-02 09:01:00", "NO ANSWER").replace(
        '"2026-03-02 09:01:00"', '"02.03.2026 09:01"'
    )
    master.write_text(good + bad + good.replace("1.1", "1.3"))
    age(master)
    source = asterisk(master)
    with caplog.at_level(logging.WARNING):
        ids, cursor = polled(source, None)
        with master.open("a") as fh:
            fh.write(row("1.4", "01632960125", "200", "2026-03-02 09:03:00", "NO ANSWER"))
        age(master)
        ids2, _ = polled(source, cursor)
    assert ids == ["1.1", "1.3"] and ids2 == ["1.4"]
    bad_lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert bad_lines == [
        f"{master} line 2: start time '02.03.2026 09:01' does not match '%Y-%m-%d %H:%M:%S'; row skipped"
    ]
    assert "01632960124" not in caplog.text


def test_a_dst_change_inside_the_log(tmp_path: Path) -> None:
    """London, 25 Oct 2026: 01:00-02:00 happens twice; the unique id (UTC epoch) says which."""
    master = tmp_path / "Master.csv"
    first = int(datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp())  # 01:30 BST
    second = int(datetime(2026, 10, 25, 1, 30, tzinfo=UTC).timestamp())  # 01:30 GMT
    master.write_text(
        row(f"{first}.1", "01632960123", "200", "2026-10-25 01:30:00", "NO ANSWER")
        + row(f"{second}.2", "01632960123", "200", "2026-10-25 01:30:00", "NO ANSWER")
        + row(f"{second + 3600}.3", "01632960123", "200", "2026-10-25 02:30:00", "NO ANSWER")
    )
    age(master)
    result = asterisk(master, timezone="Europe/London").poll(None)
    assert [c.started_at for c in result.calls] == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 30, tzinfo=UTC),
    ]


def test_config_errors_say_what_to_write() -> None:
    with pytest.raises(ValidationError, match=r"unknown date format .dd/mm/yyyy..*such as"):
        AsteriskCsvConfig.model_validate({"kind": "asterisk_csv", "path": "/x", "date_format": "dd/mm/yyyy"})
    with pytest.raises(ValidationError, match="unknown CDR column 'caller'"):
        AsteriskCsvConfig.model_validate({"kind": "asterisk_csv", "path": "/x", "columns": ["caller", "dst"]})
    with pytest.raises(ValidationError, match="unknown time zone 'London'"):
        AsteriskCsvConfig.model_validate({"kind": "asterisk_csv", "path": "/x", "timezone": "London"})
    with pytest.raises(ValidationError, match="unknown region 'UK'"):
        AsteriskCsvConfig.model_validate({"kind": "asterisk_csv", "path": "/x", "default_region": "UK"})
    with pytest.raises(ValidationError, match="date_format"):
        CallsCsvConfig.model_validate({"kind": "calls_csv", "path": "/x", "columns": {"src": "From"}})


def test_a_missing_file_is_a_config_error_and_check_says_so(tmp_path: Path) -> None:
    source = asterisk(tmp_path / "Master.csv")
    assert source.check() == [f"path: call log '{tmp_path / 'Master.csv'}' not found"]
    with pytest.raises(PermanentSourceError, match="not found"):
        source.poll(None)


def test_check_reports_a_layout_that_does_not_fit(tmp_path: Path) -> None:
    master = tmp_path / "Master.csv"
    master.write_text(row("1.1", "01632960123", "200", "2026-03-02 09:00:00", "NO ANSWER"))
    assert asterisk(master).check() == []
    problems = asterisk(master, date_format="%d/%m/%Y %H:%M:%S").check()
    assert len(problems) == 1 and "does not match '%d/%m/%Y %H:%M:%S'" in problems[0]


def test_calls_csv_reads_an_export_through_its_mapping(tmp_path: Path) -> None:
    export = tmp_path / "calls.csv"
    export.write_text(
        "Call ID,From,To,Started,Status,Ring seconds\n"
        "c1,+441632960123,+441632960500,02/03/2026 09:00:00,missed,25\n"
        "c2,+441632960500,+441632960123,02/03/2026 10:00:00,completed,60\n"
    )
    age(export)
    columns = {
        "uniqueid": "Call ID",
        "src": "From",
        "dst": "To",
        "start": "Started",
        "disposition": "Status",
        "duration": "Ring seconds",
    }
    config = CallsCsvConfig.model_validate(
        {
            "kind": "calls_csv",
            "path": export,
            "columns": columns,
            "date_format": "%d/%m/%Y %H:%M:%S",
            "timezone": "Europe/London",
            "extension_digits": 3,
        }
    )
    source = CallsCsvSource("aircall", config, clock=lambda: NOW)
    result = source.poll(None)
    assert [(c.external_id, c.answered, c.started_at.hour) for c in result.calls] == [
        ("c1", False, 9),
        ("c2", False, 10),  # 'completed' but nobody's phone is named: not a person's answer
    ]
    with export.open("a") as fh:
        fh.write("c3,+441632960124,+441632960500,02/03/2026 11:00:00,missed,5\n")
    age(export)
    assert [c.external_id for c in source.poll(result.cursor).calls] == ["c3"]


CORPUS = {
    "asterisk/cdr_csv-standard-linkedid.csv": ("asterisk_csv", {}, 36),
    "asterisk/cdr_custom-layout.csv": (
        "asterisk_csv",
        {
            "columns": [
                "clid",
                "src",
                "dst",
                "dcontext",
                "channel",
                "dstchannel",
                "lastapp",
                "lastdata",
                "start",
                "answer",
                "end",
                "duration",
                "billsec",
                "disposition",
                "amaflags",
                "accountcode",
                "uniqueid",
                "userfield",
                "sequence",
            ]
        },
        14,
    ),
    "asterisk/freepbx-exports/cdr.csv": (
        "asterisk_csv",
        {
            "columns": [
                "calldate",
                "clid",
                "src",
                "dst",
                "dcontext",
                "channel",
                "dstchannel",
                "lastapp",
                "lastdata",
                "duration",
                "billsec",
                "disposition",
                "amaflags",
                "accountcode",
                "uniqueid",
                "userfield",
                "did",
                "recordingfile",
                "cnum",
                "cnam",
                "outbound_cnum",
                "outbound_cnam",
                "dst_cnam",
            ],
            "date_format": "%d/%m/%Y %H:%M:%S",
        },
        856,
    ),
    "asterisk/freepbx-exports/cdr__1504525205ucoip.g9telecom.pt.csv": ("asterisk_csv", {"header": True}, 100),
    "asterisk/freepbx-exports/cdr__1504541678ucoip.g9telecom.pt.csv": ("asterisk_csv", {"header": True}, 100),
    "asterisk/freepbx-exports/cdr__1504542198ucoip.g9telecom.pt.csv": ("asterisk_csv", {"header": True}, 100),
    "asterisk/freepbx-exports/cdr_new.csv": (
        "asterisk_csv",
        {"header": True, "date_format": "%d/%m/%y %H:%M"},
        25,
    ),
    "asterisk/freepbx-exports/g9telecom.csv": (
        "asterisk_csv",
        {"header": True, "date_format": "%d/%m/%y %H:%M"},
        100,
    ),
    "3cx/3cx-cdr-2020.csv": ("threecx_csv", {"format": "legacy"}, 1404),
}


def test_every_corpus_file_is_covered() -> None:
    root = corpora_root("cdr")
    assert {str(p.relative_to(root)) for p in root.rglob("*.csv")} == set(CORPUS)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file_through_its_source_in_two_halves(name: str, tmp_path: Path) -> None:
    """Each file written in two parts (cut mid-line) gives the same calls as the file read at once."""
    kind, extra, calls = CORPUS[name]
    data = corpora_root("cdr", name).read_bytes()
    copy = tmp_path / "cdr.csv"
    plugin = {
        "asterisk_csv": (AsteriskCsvConfig, AsteriskCsvSource),
        "threecx_csv": (ThreeCxCsvConfig, ThreeCxCsvSource),
    }[kind]
    config = plugin[0].model_validate({"kind": kind, "path": copy, **extra})
    source = plugin[1]("pbx", config, clock=lambda: NOW)  # type: ignore[arg-type]
    copy.write_bytes(data)
    age(copy)
    whole = {c.external_id: c for c in source.poll(None).calls}
    assert len(whole) == calls
    half = len(data) // 2 + 7
    copy.write_bytes(data[:half])
    os.utime(copy, (NOW.timestamp(), NOW.timestamp()))
    first = source.poll(None)
    with copy.open("ab") as fh:
        fh.write(data[half:])
    age(copy)
    second = source.poll(first.cursor)
    joined = {c.external_id: c for c in first.calls} | {c.external_id: c for c in second.calls}
    assert joined == whole


def test_threecx_v20_segments_with_a_header_across_polls(tmp_path: Path) -> None:
    """V20 writes a header row, then one row per call segment; a queue's segment is no person's answer."""
    cdr = tmp_path / "cdr.log"
    header = (
        "cdr_id,call_history_id,source_participant_phone_number,source_dn_number,"
        "destination_participant_phone_number,destination_dn_number,destination_dn_type,"
        "cdr_started_at,cdr_answered_at,cdr_ended_at\n"
    )
    queue = (
        "1,h1,+441632960123,10000,,800,queue,2026-03-02T09:00:00Z,2026-03-02T09:00:01Z,2026-03-02T09:00:40Z\n"
    )
    cdr.write_text(header + queue)
    age(cdr)
    config = ThreeCxCsvConfig.model_validate(
        {"kind": "threecx_csv", "path": cdr, "format": "v20", "timezone": "Europe/London"}
    )
    source = ThreeCxCsvSource("3cx", config, clock=lambda: NOW)
    first = source.poll(None)
    assert [(c.external_id, c.answered) for c in first.calls] == [("h1", False)]
    assert first.cursor["header"][1] == "call_history_id"
    with cdr.open("a") as fh:
        fh.write(
            "2,h1,+441632960123,10000,,201,extension,2026-03-02T09:00:40Z,2026-03-02T09:00:45Z,"
            "2026-03-02T09:03:00Z\n"
        )
    age(cdr)
    [call] = source.poll(first.cursor).calls
    assert (call.external_id, call.legs, call.answered, call.answered_by) == ("h1", 2, True, "201")
