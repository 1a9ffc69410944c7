"""Pure telephony layers: numbers, CDR layouts (times, zones, errors) and legs grouped into calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.events import CallDirection
from monitor.telephony.calls import CallOptions, calls_from_legs, channel_peer
from monitor.telephony.layouts import (
    ASTERISK_CSV,
    ASTERISK_CSV_NEW,
    CDR_CUSTOM_DEFAULT,
    AsteriskLayout,
    CdrLayoutError,
    CdrLeg,
    MappedLayout,
    ThreeCxLayout,
    check_date_format,
    local_to_utc,
)
from monitor.telephony.numbers import ANONYMOUS, NumberKind, Party, check_region, classify_number

LONDON = ZoneInfo("Europe/London")
GB = CallOptions(default_region="GB")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- numbers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "party"),
    [
        ("01632 960123", Party(NumberKind.OUTSIDE, "+441632960123")),
        ("+44 (0)1632 960123", Party(NumberKind.OUTSIDE, "+441632960123")),
        ("00441632960123", Party(NumberKind.OUTSIDE, "+441632960123")),
        ('"Jane Doe" <01632960123>', Party(NumberKind.OUTSIDE, "+441632960123")),
        ("201", Party(NumberKind.EXTENSION, "201")),
        ("Ext.610", Party(NumberKind.EXTENSION, "610")),
        ("client1", Party(NumberKind.EXTENSION, "client1")),
        ("*60", Party(NumberKind.EXTENSION, "*60")),
        ("anonymous", Party(NumberKind.ANONYMOUS, ANONYMOUS)),
        ("Restricted", Party(NumberKind.ANONYMOUS, ANONYMOUS)),
        ('"" <>', Party(NumberKind.ANONYMOUS, ANONYMOUS)),
        ("", Party(NumberKind.ANONYMOUS, ANONYMOUS)),
    ],
)
def test_numbers_are_normalised(raw: str, party: Party) -> None:
    assert classify_number(raw, "GB") == party


def test_a_number_without_region_keeps_its_digits_and_extension_length_is_configurable() -> None:
    assert classify_number("01632960123") == Party(NumberKind.OUTSIDE, "01632960123")
    assert classify_number("+441632960123") == Party(NumberKind.OUTSIDE, "+441632960123")
    assert classify_number("123456", "GB", extension_digits=6).kind is NumberKind.EXTENSION
    assert classify_number("123456", "GB").kind is NumberKind.OUTSIDE


def test_unknown_region_is_an_error_with_an_example() -> None:
    assert check_region("gb") == "GB"
    with pytest.raises(ValueError, match="unknown region 'UK': use an ISO 3166 country code such as 'GB'"):
        check_region("UK")


# --- layouts: times ------------------------------------------------------------------------------------


def test_unknown_date_format_is_an_error_with_an_example_never_a_guess() -> None:
    with pytest.raises(
        CdrLayoutError, match=r"unknown date format 'DD/MM/YYYY': give a strptime pattern such as"
    ):
        AsteriskLayout(date_format="DD/MM/YYYY")
    with pytest.raises(CdrLayoutError, match="unknown date format"):
        MappedLayout({"src": "From", "dst": "To", "start": "Date", "disposition": "Status"}, "%H:%M")
    assert check_date_format("%d/%m/%Y %H:%M:%S") == "%d/%m/%Y %H:%M:%S"


def test_unknown_column_is_a_layout_error() -> None:
    with pytest.raises(CdrLayoutError, match="unknown CDR column 'caller'"):
        AsteriskLayout(("caller", "src", "dst", "start"))
    with pytest.raises(CdrLayoutError, match="needs 'src', 'dst' and 'start'"):
        AsteriskLayout(("src", "dst", "uniqueid"))


def test_dst_fold_uses_the_unique_id_and_otherwise_the_first_occurrence() -> None:
    # 2026-10-25, Europe/London: clocks go back at 02:00 BST, so 01:30 happens twice.
    ambiguous = datetime(2026, 10, 25, 1, 30)
    assert local_to_utc(ambiguous, LONDON) == at("2026-10-25T00:30:00")  # first occurrence (BST)
    assert local_to_utc(ambiguous, LONDON, near=1792891800.0) == at("2026-10-25T01:30:00")  # GMT
    assert local_to_utc(ambiguous, LONDON, near=1792888200.0) == at("2026-10-25T00:30:00")
    # 2026-03-29: 01:30 never happens (01:00 GMT -> 02:00 BST); read with the offset before the change.
    assert local_to_utc(datetime(2026, 3, 29, 1, 30), LONDON) == at("2026-03-29T01:30:00")


def row(start: str, answer: str, end: str, uniqueid: str, **fields: str) -> str:
    values = {
        "src": "01632960123",
        "dst": "200",
        "dcontext": "from-pstn",
        "clid": "",
        "channel": "SIP/trunk-0001",
        "dstchannel": "SIP/201-0002",
        "lastapp": "Dial",
        "start": start,
        "answer": answer,
        "end": end,
        "duration": "30",
        "billsec": "20",
        "disposition": "ANSWERED",
        "uniqueid": uniqueid,
        "linkedid": uniqueid,
    } | fields
    return ",".join(f'"{values.get(column, "")}"' for column in ASTERISK_CSV_NEW)


def test_a_call_log_across_the_autumn_clock_change() -> None:
    """Two calls logged at 01:30 local on the night London leaves BST, one an hour after the other."""
    text = "\n".join(
        [
            row(
                "2026-10-25 00:59:00",
                "",
                "2026-10-25 00:59:30",
                "1792886340.1",
                dstchannel="",
                disposition="NO ANSWER",
                billsec="0",
            ),
            row(
                "2026-10-25 01:30:00",
                "",
                "2026-10-25 01:30:40",
                "1792888200.2",
                dstchannel="",
                disposition="NO ANSWER",
                billsec="0",
            ),
            row("2026-10-25 01:30:00", "2026-10-25 01:30:05", "2026-10-25 01:31:00", "1792891800.3"),
            row(
                "2026-10-25 02:10:00",
                "",
                "2026-10-25 02:10:30",
                "1792894200.4",
                dstchannel="",
                disposition="NO ANSWER",
                billsec="0",
            ),
        ]
    )
    parsed = AsteriskLayout(ASTERISK_CSV_NEW).parse(text, LONDON)
    assert parsed.errors == []
    starts = [leg.start for leg in parsed.legs]
    assert starts == [
        at("2026-10-24T23:59:00"),
        at("2026-10-25T00:30:00"),
        at("2026-10-25T01:30:00"),
        at("2026-10-25T02:10:00"),
    ]
    assert parsed.legs[2].answer == at("2026-10-25T01:30:05")
    calls = calls_from_legs("pbx", parsed.legs, GB)
    assert [c.started_at for c in calls] == starts
    # The answered call-back at the second 01:30 comes after the missed call at the first one.
    assert [(c.answered, c.wait_seconds) for c in calls] == [
        (False, 30.0),
        (False, 40.0),
        (True, 5.0),
        (False, 30.0),
    ]


def test_freepbx_day_first_dates_and_cr_only_lines() -> None:
    text = (
        "calldate,src,dst,duration,billsec,disposition\r"
        "1/9/2017 16:33:01,01632960123,200,27,20,ANSWERED\r\r"
        "2/9/2017 09:00:00,201,202,5,0,NO ANSWER\r"
    )
    parsed = AsteriskLayout(header=True, date_format="%d/%m/%Y %H:%M:%S").parse(text, LONDON)
    assert parsed.errors == []
    first, second = parsed.legs
    assert (first.start, first.end, first.answer) == (
        at("2017-09-01T15:33:01"),
        at("2017-09-01T15:33:28"),
        at("2017-09-01T15:33:08"),
    )
    assert (first.line_no, second.line_no) == (2, 4)
    assert first.dstchannel == "200"  # a log without dstchannel: ANSWERED names the callee
    assert second.dstchannel == ""


def test_chunks_keep_their_file_line_numbers_and_bad_rows_name_no_number() -> None:
    layout = AsteriskLayout(ASTERISK_CSV)
    good = ",".join(
        [
            '""',
            '"01632960123"',
            '"200"',
            '"from-pstn"',
            '""',
            '"SIP/t-1"',
            '""',
            '"Hangup"',
            '""',
            '"2026-01-05 10:00:00"',
            '""',
            '"2026-01-05 10:00:30"',
            "30",
            "0",
            '"NO ANSWER"',
            '"DOCUMENTATION"',
            '"1767607200.1"',
            '""',
        ]
    )
    bad = good.replace('"NO ANSWER"', '""')
    parsed = layout.parse(f"{good}\n{bad}\n", LONDON, first_line=41)
    assert [leg.line_no for leg in parsed.legs] == [41]
    assert [(e.line, e.reason) for e in parsed.errors] == [(42, "no disposition")]
    assert "01632960123" not in str(parsed.errors[0])
    assert str(parsed.errors[0]) == "line 42: no disposition"


def test_cdr_custom_default_order_reads_the_sample_mapping() -> None:
    line = (
        '"""Alice"" <201>","201","01632960123","from-internal","PJSIP/201-01","PJSIP/trunk-02","Dial",'
        '"PJSIP/x","2026-01-05 10:00:00","2026-01-05 10:00:04","2026-01-05 10:01:00","60","56","ANSWERED",'
        '"DOCUMENTATION","","1767607200.5","",7'
    )
    (leg,) = AsteriskLayout(CDR_CUSTOM_DEFAULT).parse(line, ZoneInfo("UTC")).legs
    assert (leg.clid, leg.src, leg.dst, leg.uniqueid, leg.billsec) == (
        '"Alice" <201>',
        "201",
        "01632960123",
        "1767607200.5",
        56.0,
    )


def test_threecx_v20_header_rows() -> None:
    text = (
        "cdr_id,call_history_id,source_participant_phone_number,source_dn_number,source_dn_type,"
        "destination_participant_phone_number,destination_dn_number,destination_dn_type,"
        "cdr_started_at,cdr_answered_at,cdr_ended_at,termination_reason\n"
        "a1,h1,01632960123,10000,provider,,800,queue,"
        "2024-05-02 09:00:00,2024-05-02 09:00:01,2024-05-02 09:00:40,src_participant_terminated\n"
        "a2,h1,01632960123,10000,provider,,201,extension,2024-05-02 09:00:01,,2024-05-02 09:00:40,cancelled\n"
        "a3,h2,01632960999,10000,provider,,201,extension,"
        "2024-05-02 10:00:00,2024-05-02 10:00:06,2024-05-02 10:02:00,dst_participant_terminated\n"
    )
    parsed = ThreeCxLayout(v20=True).parse(text, LONDON)
    assert parsed.errors == []
    missed, answered = calls_from_legs("3cx", parsed.legs, GB)
    assert (missed.external_id, missed.answered, missed.legs, missed.wait_seconds) == ("h1", False, 2, 40.0)
    assert (answered.answered, answered.answered_by, answered.started_at) == (
        True,
        "201",
        at("2024-05-02T09:00:00"),
    )
    with pytest.raises(CdrLayoutError, match="3CX V20 CDR header lacks 'call_history_id'"):
        ThreeCxLayout(v20=True).parse("cdr_id,cdr_started_at\n", LONDON)


def test_mapped_layout_reads_an_export_with_its_own_names() -> None:
    layout = MappedLayout(
        {
            "uniqueid": "Call SID",
            "src": "From",
            "dst": "To",
            "start": "Start Time",
            "duration": "Duration",
            "disposition": "Status",
        },
        "%Y-%m-%dT%H:%M:%S",
        answered_values=frozenset({"completed"}),
    )
    text = (
        "Call SID,From,To,Start Time,Duration,Status\n"
        "CA1,+441632960123,+442079460000,2026-06-01T10:00:00,25,no-answer\n"
        "CA2,+441632960123,+442079460000,2026-06-01T10:05:00,60,completed\n"
    )
    parsed = layout.parse(text, LONDON)
    assert parsed.errors == []
    assert [(leg.uniqueid, leg.disposition, leg.start) for leg in parsed.legs] == [
        ("CA1", "NO-ANSWER", at("2026-06-01T09:00:00")),
        ("CA2", "ANSWERED", at("2026-06-01T09:05:00")),
    ]
    with pytest.raises(CdrLayoutError, match="column 'Start Time' is not in the file's header"):
        layout.parse("Call SID,From,To,Duration,Status\n", LONDON)


# --- calls ---------------------------------------------------------------------------------------------


def legs(*rows: str) -> list[CdrLeg]:
    parsed = AsteriskLayout(ASTERISK_CSV_NEW).parse("\n".join(rows), ZoneInfo("UTC"))
    assert parsed.errors == []
    return parsed.legs


def test_ring_group_fan_out_is_one_missed_call() -> None:
    fan_out = [
        row(
            "2026-01-05 10:00:00",
            "",
            "2026-01-05 10:00:30",
            "1767607200.1",
            dstchannel=f"SIP/{ext}-0{i}",
            disposition="NO ANSWER",
            billsec="0",
        )
        for i, ext in enumerate(("201", "202", "203"))
    ]
    (call,) = calls_from_legs("pbx", legs(*fan_out), GB)
    assert (call.direction, call.answered, call.legs, call.rang, call.caller) == (
        CallDirection.INBOUND, False, 3, ("201", "202", "203"), "+441632960123",
    )  # fmt: skip
    assert call.wait_seconds == 30.0


def test_ring_group_answered_by_one_phone() -> None:
    rows = [
        row(
            "2026-01-05 10:00:00",
            "",
            "2026-01-05 10:00:08",
            "1767607200.1",
            dstchannel="SIP/201-01",
            disposition="NO ANSWER",
            billsec="0",
        ),
        row(
            "2026-01-05 10:00:00",
            "2026-01-05 10:00:08",
            "2026-01-05 10:02:00",
            "1767607200.1",
            dstchannel="SIP/202-02",
            billsec="112",
        ),
    ]
    (call,) = calls_from_legs("pbx", legs(*rows), GB)
    assert (call.answered, call.answered_by, call.wait_seconds, call.talk_seconds) == (
        True,
        "202",
        8.0,
        112.0,
    )


@pytest.mark.parametrize("app", ["Queue", "VoiceMail", "Playback", "BackGround", "AGI", "Read", "WaitExten"])
def test_a_call_answered_by_an_application_reached_nobody(app: str) -> None:
    rows = [
        row(
            "2026-01-05 10:00:00",
            "2026-01-05 10:00:00",
            "2026-01-05 10:01:00",
            "1767607200.1",
            lastapp=app,
            dstchannel="Local/vm@x-01;1",
            billsec="60",
        )
    ]
    (call,) = calls_from_legs("pbx", legs(*rows), GB)
    assert (call.answered, call.answered_by, call.wait_seconds) == (False, None, 60.0)


def test_a_queue_member_who_picks_up_answers_the_call() -> None:
    rows = [
        row(
            "2026-01-05 10:00:00",
            "2026-01-05 10:00:12",
            "2026-01-05 10:03:00",
            "1767607200.1",
            lastapp="Queue",
            dstchannel="Local/201@from-queue-00000001;1",
            billsec="168",
        )
    ]
    (call,) = calls_from_legs("pbx", legs(*rows), GB)
    assert (call.answered, call.answered_by, call.wait_seconds) == (True, "201", 12.0)


def test_the_application_list_is_configurable() -> None:
    rows = [
        row(
            "2026-01-05 10:00:00",
            "2026-01-05 10:00:02",
            "2026-01-05 10:01:00",
            "1767607200.1",
            lastapp="Queue",
            dstchannel="SIP/201-01",
        )
    ]
    (call,) = calls_from_legs(
        "pbx", legs(*rows), CallOptions(default_region="GB", machine_apps=("VoiceMail",))
    )
    assert (call.answered, call.answered_by) == (True, "201")


def test_a_queue_call_takes_the_queue_as_its_line_and_a_did_wins() -> None:
    queued = row(
        "2026-01-05 10:00:00",
        "",
        "2026-01-05 10:01:00",
        "1.1",
        lastapp="Queue",
        lastdata="support,t,,,300",
        dstchannel="",
        disposition="NO ANSWER",
        billsec="0",
    )
    plain = row(
        "2026-01-05 11:00:00",
        "",
        "2026-01-05 11:01:00",
        "1.2",
        dstchannel="",
        disposition="NO ANSWER",
        billsec="0",
    )
    first, second = calls_from_legs("pbx", legs(queued, plain), GB)
    assert (first.line, second.line) == ("support", "from-pstn")


def test_internal_outbound_and_withheld_directions() -> None:
    internal = row(
        "2026-01-05 10:00:00",
        "2026-01-05 10:00:02",
        "2026-01-05 10:01:00",
        "1.1",
        src="201",
        dst="202",
        dstchannel="SIP/202-01",
    )
    outbound = row(
        "2026-01-05 11:00:00",
        "2026-01-05 11:00:09",
        "2026-01-05 11:01:00",
        "1.2",
        src="201",
        dst="901632960123",
        dstchannel="SIP/trunk-02",
    )
    withheld = row(
        "2026-01-05 12:00:00",
        "",
        "2026-01-05 12:00:30",
        "1.3",
        src="anonymous",
        dstchannel="",
        disposition="NO ANSWER",
        billsec="0",
    )
    options = CallOptions(default_region="GB", outside_prefix="9")
    calls = calls_from_legs("pbx", legs(internal, outbound, withheld), options)
    assert [(c.direction, c.caller, c.callee, c.answered_by) for c in calls] == [
        (CallDirection.INTERNAL, "201", "202", "202"),
        (CallDirection.OUTBOUND, "201", "+441632960123", None),
        (CallDirection.INBOUND, ANONYMOUS, "200", None),
    ]


def test_channel_peers() -> None:
    assert channel_peer("SIP/301-00000004") == "301"
    assert channel_peer("PJSIP/client2-00000003") == "client2"
    assert channel_peer("Local/105@from-internal-0000000a;1") == "105"
    assert channel_peer("185") == "185"


def test_legs_without_linked_id_group_by_unique_id() -> None:
    text = "\n".join(
        ",".join(
            f'"{v}"'
            for v in (
                "",
                "01632960123",
                "200",
                "from-pstn",
                "",
                f"SIP/t-{i}",
                f"SIP/20{i}-1",
                "Dial",
                "",
                "2026-01-05 10:00:00",
                "",
                "2026-01-05 10:00:20",
                "20",
                "0",
                "NO ANSWER",
                "DOCUMENTATION",
                "1767607200.7",
                "",
            )
        )
        for i in (1, 2)
    )
    (call,) = calls_from_legs("pbx", AsteriskLayout(ASTERISK_CSV).parse(text, LONDON).legs, GB)
    assert (call.external_id, call.legs, call.started_at) == ("1767607200.7", 2, at("2026-01-05T10:00:00"))
    assert call.started_at + timedelta(seconds=call.wait_seconds) == at("2026-01-05T10:00:20")


def test_a_later_chunk_of_a_file_with_a_header_row_reads_with_that_header() -> None:
    layout = AsteriskLayout(header=True, date_format="%d/%m/%y %H:%M")
    header = ["calldate", "src", "dst", "duration", "billsec", "disposition"]
    parsed = layout.parse(
        "24/08/17 09:32,01632960123,4502,20,0,NO ANSWER\n", LONDON, first_line=7, header=header
    )
    assert [(leg.line_no, leg.start, leg.disposition) for leg in parsed.legs] == [
        (7, at("2017-08-24T08:32:00"), "NO ANSWER")
    ]
    with pytest.raises(CdrLayoutError, match="rows from line 7 on need the file's header row"):
        layout.parse("24/08/17 09:32,01632960123,4502,20,0,NO ANSWER\n", LONDON, first_line=7)


def test_threecx_2020_rows_take_the_dn_reached_as_line_and_the_final_party_as_answerer() -> None:
    text = (
        "Call 9744,04821641DEE41BB3_2501,00:05:15,"
        "2020/05/04 10:53:43,2020/05/04 10:53:43,2020/05/04 10:58:59,"
        'TerminatedByDst,01632960123,Ext.610,10000,610,610,ReplacedDst,Ext.185,185,,,,,"Chain: x",'
        "External,Internal,Internal,from disp,to disp,fin disp,\n"
    )
    (call,) = calls_from_legs("3cx", ThreeCxLayout().parse(text, LONDON).legs, GB)
    assert (call.caller, call.callee, call.line, call.answered_by, call.started_at) == (
        "+441632960123", "610", "610", "185", at("2020-05-04T09:53:43"),
    )  # fmt: skip


def test_rows_without_ids_get_one_id_per_caller_number_and_time_wherever_they_are() -> None:
    layout = AsteriskLayout(header=True, date_format="%d/%m/%y %H:%M")
    header = ["calldate", "src", "dst", "duration", "billsec", "disposition"]
    rows = "24/08/17 09:32,01632960123,4502,20,0,NO ANSWER\n24/08/17 09:32,01632960123,4502,20,0,NO ANSWER\n"
    here = layout.parse(rows, LONDON, first_line=2, header=header).legs
    there = layout.parse(rows, LONDON, first_line=900, header=header).legs
    assert here[0].uniqueid == here[1].uniqueid == there[0].uniqueid
    assert here[0].uniqueid.startswith("cdr-") and "1632960123" not in here[0].uniqueid
    other = layout.parse(
        "24/08/17 09:32,01632960123,4503,20,0,NO ANSWER\n", LONDON, first_line=2, header=header
    )
    assert other.legs[0].uniqueid != here[0].uniqueid
    assert len(calls_from_legs("pbx", here, GB)) == 1


def test_epoch_times_and_a_systemname_unique_id_settle_the_fold() -> None:
    fields = {"src": "201", "dst": "202", "start": "1792891800", "disposition": "NO ANSWER"}
    (leg,) = (
        MappedLayout({k: k for k in fields}, "epoch")
        .parse("src,dst,start,disposition\n201,202,1792891800,NO ANSWER\n", LONDON)
        .legs
    )
    assert leg.start == at("2026-10-25T01:30:00")
    text = row("2026-10-25 01:30:00", "", "2026-10-25 01:30:40", "pbx1-1792891800.2", disposition="NO ANSWER")
    (leg,) = AsteriskLayout(ASTERISK_CSV_NEW).parse(text, LONDON).legs
    assert leg.start == at("2026-10-25T01:30:00")
