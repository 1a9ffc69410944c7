"""Unit cases for monitor.mail.classify: raw header bytes in, verdict out."""

from __future__ import annotations

import dataclasses
import email.policy
from email.message import Message
from email.parser import BytesParser

import pytest

from monitor.mail.classify import (
    DEFAULT_NO_REPLY,
    HEADERS_USED,
    REASONS,
    Verdict,
    auto_submitted_token,
    classify,
)

HUMAN_HEADERS = b"From: Jane Customer <jane@customer.example>\r\nTo: support@example.com\r\n"


def headers_only(raw: bytes) -> Message:
    """Parse like the IMAP source: headers only, compat32."""
    return BytesParser(policy=email.policy.compat32).parsebytes(raw, headersonly=True)


def verdict(
    *lines: str | bytes, base: bytes = HUMAN_HEADERS, subject: str | None = "Question about my order"
) -> Verdict:
    extra = b"".join((line.encode() if isinstance(line, str) else line) + b"\r\n" for line in lines)
    subject_line = b"" if subject is None else b"Subject: " + subject.encode() + b"\r\n"
    return classify(headers_only(base + subject_line + extra + b"\r\nbody\r\n"))


def reason(*lines: str | bytes, **kwargs: object) -> str | None:
    return verdict(*lines, **kwargs).automated  # type: ignore[arg-type]


# --- API --------------------------------------------------------------------------------------------


def test_plain_human_mail_is_not_automated() -> None:
    result = verdict()
    assert result == Verdict(None, ())
    assert not result.is_automated


def test_verdict_is_frozen_and_reasons_are_known() -> None:
    result = Verdict("bounce", ("list-id",))
    assert result.is_automated
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.automated = None  # type: ignore[misc]
    assert set(REASONS) == {
        "auto_reply",
        "bounce",
        "feedback_report",
        "read_receipt",
        "out_of_office",
        "bulk",
        "no_reply_sender",
        "auto_generated",
        "spam",
    }


# --- RFC 3834 Auto-Submitted ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("auto-replied (rejected)", "auto-replied"),
        ("auto-generated (failure)", "auto-generated"),
        ("Auto-Replied", "auto-replied"),
        ('  auto-notified; owner-email="me@example.com"', "auto-notified"),
        ("(comment (nested \\) paren)) auto-generated", "auto-generated"),
        ("auto-replied(vacation)", "auto-replied"),
        ("no", "no"),
        ("No (human)", "no"),
        ("", None),
        ("   ", None),
        ("(unterminated comment", None),
        (None, None),
    ],
)
def test_auto_submitted_token(value: str | None, token: str | None) -> None:
    assert auto_submitted_token(value) == token


def test_auto_replied_with_comment_is_auto_reply() -> None:
    assert reason("Auto-Submitted: auto-replied (rejected)") == "auto_reply"


def test_auto_submitted_no_is_human() -> None:
    assert reason("Auto-Submitted: no") is None
    assert reason("Auto-Submitted: no (sent by a person)") is None


@pytest.mark.parametrize("value", ["auto-generated", "auto-generated (failure)", "auto-notified", "x-custom"])
def test_auto_generated_and_extensions(value: str) -> None:
    assert reason(f"Auto-Submitted: {value}") == "auto_generated"


def test_auto_generated_bounce_subject_is_a_bounce() -> None:
    # A more specific reason wins over auto_generated.
    assert (
        reason("Auto-Submitted: auto-generated (failure)", subject="Delivery problem: your message")
        == "bounce"
    )


# --- auto-responder headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "X-Autoreply: yes",
        "X-Autorespond: Thanks for your message",
        "X-Autoresponder: true",
        "X-Apple-Action: VACATION",
        "X-Mailer: vacation 1.2.7",
        "Precedence: auto_reply",
    ],
)
def test_auto_responder_headers(line: str) -> None:
    assert reason(line) == "auto_reply"


def test_autoreply_header_saying_no_is_human() -> None:
    assert reason("X-Autoreply: no") is None


def test_auto_response_suppress_is_a_hint_only() -> None:
    # Outlook puts it on mail people write (MS-OXCMAIL: it *asks* others not to auto-answer).
    result = verdict("X-Auto-Response-Suppress: All")
    assert result.automated is None
    assert result.hints == ("x-auto-response-suppress",)


def test_ordinary_x_mailer_is_human() -> None:
    assert reason("X-Mailer: Microsoft Office Outlook 16.0") is None


# --- null reverse path ------------------------------------------------------------------------------


def test_null_return_path_alone_is_auto_generated() -> None:
    assert reason("Return-Path: <>") == "auto_generated"


@pytest.mark.parametrize("value", ["<MAILER-DAEMON>", " <> "])
def test_null_return_path_variants(value: str) -> None:
    assert reason(f"Return-Path: {value}") == "auto_generated"


def test_null_return_path_with_bounce_words_is_a_bounce() -> None:
    assert reason("Return-Path: <>", subject="Message rejected by recipient server") == "bounce"


def test_ordinary_return_path_is_human() -> None:
    assert reason("Return-Path: <jane@customer.example>") is None


# --- reports (RFC 6522 multipart/report) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ('multipart/report; report-type=delivery-status; boundary="b"', "bounce"),
        ('multipart/report; report-type="delivery-status"; boundary="b"', "bounce"),
        ('Multipart/Report; Report-Type=Global-Delivery-Status; boundary="b"', "bounce"),
        ('multipart/report; report-type=feedback-report; boundary="b"', "feedback_report"),
        ('multipart/report; report-type=disposition-notification; boundary="b"', "read_receipt"),
        ('multipart/report; report-type=tlsrpt; boundary="b"', "auto_generated"),
        ('multipart/report; boundary="b"', "auto_generated"),
    ],
)
def test_report_types_from_the_header_alone(content_type: str, expected: str) -> None:
    assert reason(f"Content-Type: {content_type}", subject="Notification") == expected


def test_delivery_status_part_in_body_is_found_when_body_present() -> None:
    raw = (
        HUMAN_HEADERS + b"Subject: Notification\r\n"
        b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        b"--outer\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
        b"--outer\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.com\r\n\r\nFinal-Recipient: rfc822; x@example.org\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\n"
        b"--outer--\r\n"
    )
    whole = BytesParser(policy=email.policy.compat32).parsebytes(raw)
    assert classify(whole).automated == "bounce"
    # Headers alone do not show the part; nothing else marks this one.
    assert classify(headers_only(raw)).automated is None


# --- bounces ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "from_line",
    [
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)",
        "From: Mail Delivery Subsystem <MAILER-DAEMON@example.org>",
        "From: postmaster@example.org",
        "From: MAILER-DAEMON",
        'From: "Mail Delivery System" <bounces@relay.example.org>',
        'From: "Jetmail System" <>',
    ],
)
def test_mail_system_senders_are_bounces(from_line: str) -> None:
    base = from_line.encode() + b"\r\nTo: support@example.com\r\n"
    assert reason(base=base, subject="Your message") == "bounce"


def test_exim_failed_recipients_header_is_a_bounce() -> None:
    assert reason("X-Failed-Recipients: x@example.org", subject="whatever") == "bounce"


def test_exchange_ndr_header_is_a_bounce() -> None:
    assert reason("X-MS-Exchange-Message-Is-Ndr: ", subject="whatever") is None
    assert reason("X-MS-Exchange-Message-Is-Ndr: true", subject="whatever") == "bounce"


@pytest.mark.parametrize(
    "subject",
    [
        "Undelivered Mail Returned to Sender",
        "Delivery Status Notification (Failure)",
        "Delivery Status Notification (Delay)",
        "Mail delivery failed: returning message to sender",
        "Undeliverable: Question about my order",
        "failure notice",
        "Returned mail: see transcript for details",
        "Non-Delivery: Your message",
        "Mail could not be delivered",
        "Delivery Failure",
        "Unzustellbar: Frage",
        "Non remis : Question",
        "Onbestelbaar: Vraag",
        "No se puede entregar: Pregunta",
        "Non recapitabile: Domanda",
    ],
)
def test_bounce_subjects_decide_alone(subject: str) -> None:
    assert reason(subject=subject) == "bounce"


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Undeliverable: Question about my order",
        "Fwd: Returned mail: see transcript for details",
        "AW: Unzustellbar: Frage",
        "Delivery problem with my parcel",
        "Returned mail order #1234",
        "My delivery failed twice this week",
    ],
)
def test_replies_and_parcel_subjects_stay_human(subject: str) -> None:
    assert reason(subject=subject) is None


# --- read receipts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", ["Read: Question about my order", "Gelesen: Frage", "Lu : Question"])
def test_read_subject_alone_is_human(subject: str) -> None:
    assert reason(subject=subject) is None


@pytest.mark.parametrize("line", ["Return-Path: <>", "Auto-Submitted: auto-generated"])
def test_read_subject_with_another_signal_is_a_read_receipt(line: str) -> None:
    assert reason(line, subject="Read: Question about my order") == "read_receipt"
    assert reason(line, subject="Gelesen: Frage") == "read_receipt"


# --- out of office ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Question",
        "Out of Office AutoReply: Question",
        "Automatic reply: Question",
        "Auto reply: Question",
        "AutoReply",
        "Autosvar: Spørsmål",
        "Abwesenheitsnotiz: Frage",
        "Automatische Antwort: Frage",
        "Réponse automatique : Question",
        "Absence du bureau : Question",
        "Respuesta automática: Pregunta",
        "Fuera de la oficina: Pregunta",
        "Afwezig: Vraag",
        "Automatisch antwoord: Vraag",
        "Risposta automatica: Domanda",
        "Resposta automática: Pergunta",
        "Automaattinen vastaus: Kysymys",
        "Automatyczna odpowiedź: Pytanie",
        "Автоответ: Вопрос",
        "自動返信: 質問",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    assert reason(subject=subject) == "out_of_office"


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Automatic reply: Question",
        "Out of office next week?",
        "Our vacation policy",
        "AW: Abwesenheitsnotiz: x",
    ],
)
def test_human_subjects_about_absence_stay_human(subject: str) -> None:
    assert reason(subject=subject) is None


# --- encoded subjects -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        ("=?utf-8?q?Automatische_Antwort=3A_Frage?=", "out_of_office"),
        ("=?UTF-8?B?UsOpcG9uc2UgYXV0b21hdGlxdWUgOiBRdWVzdGlvbg==?=", "out_of_office"),
        ("=?iso-8859-1?Q?Respuesta_autom=E1tica=3A?= Pregunta", "out_of_office"),
        ("=?utf-8?B?VW5kZWxpdmVyYWJsZTogUXVlc3Rpb24=?=", "bounce"),
        ("=?utf-8?Q?Out_of_Office?= =?utf-8?Q?:_Frage?=", "out_of_office"),
        ("=?utf-8?B?RGVsaXZlcnkgZmFpbHVyZSBub3RpZmljYXRpb25=?=", "bounce"),  # bad base64 padding
    ],
)
def test_encoded_subjects_are_decoded_before_matching(encoded: str, expected: str) -> None:
    assert reason(subject=encoded) == expected


def test_unknown_charset_and_raw_8bit_subjects_do_not_raise() -> None:
    assert reason(subject="=?x-no-such-charset?Q?Abwesenheitsnotiz=3A?= x") == "out_of_office"
    # Raw 8-bit headers (RFC 6532 UTF-8, or legacy Latin-1 from old clients) are read as well.
    raw_latin1 = HUMAN_HEADERS + b"Subject: R\xe9ponse automatique : Question\r\n\r\n"
    assert classify(headers_only(raw_latin1)).automated == "out_of_office"
    raw_utf8 = HUMAN_HEADERS + "Subject: Réponse automatique : Question\r\n\r\n".encode()
    assert classify(headers_only(raw_utf8)).automated == "out_of_office"


# --- bulk -------------------------------------------------------------------------------------------

MAILMAN = (
    "List-Id: Support talk <talk.lists.example.org>",
    "List-Post: <mailto:talk@lists.example.org>",
    "List-Unsubscribe: <https://lists.example.org/listinfo/talk>, <mailto:talk-request@lists.example.org>",
    "Precedence: bulk",
)


def test_precedence_alone_is_a_hint() -> None:
    for value in ("bulk", "junk", "list"):
        result = verdict(f"Precedence: {value}")
        assert result.automated is None
        assert result.hints == (f"precedence:{value}",)


def test_precedence_on_mail_that_is_no_list_post_is_bulk_unless_addressed() -> None:
    # The verdict stays None (only the team's addresses can tell); the flag asks the engine to decide.
    for value in ("bulk", "junk", "list", " Bulk "):
        result = verdict(f"Precedence: {value}")
        assert result.automated is None and result.bulk_precedence
    assert not verdict("Precedence: first-class").bulk_precedence
    assert not verdict().bulk_precedence


def test_discussion_posts_never_carry_the_bulk_precedence_flag() -> None:
    assert not verdict(*MAILMAN).bulk_precedence
    # Mailman 2.0 without List-Post: X-BeenThere names the list the post was addressed to (easy_ham ILUG).
    ilug = b"From: Kiall <kiall@redpie.example>\r\nTo: ILUG <ilug@linux.example>\r\n"
    assert not verdict("X-BeenThere: ilug@linux.example", "Precedence: bulk", base=ilug).bulk_precedence
    # Majordomo: Sender owner-<list>@ or <list>-owner@ and the post To the list (Apache new-httpd, 1997).
    for sender in ("owner-new-httpd@apache.example", "new-httpd-owner@apache.example"):
        base = f"From: Rob <rob@lanl.example>\r\nTo: new-httpd@hyperreal.example\r\nSender: {sender}\r\n"
        base = base.encode()
        assert not verdict("Precedence: bulk", base=base).bulk_precedence
    # The owner of another list, or a list address the post was not sent to, proves nothing.
    base = (
        b"From: Deals <deals@shop.example>\r\nTo: me@customer.example\r\nSender: owner-deals@shop.example\r\n"
    )
    assert verdict("Precedence: bulk", base=base).bulk_precedence
    assert verdict("X-BeenThere: other@lists.example", "Precedence: bulk").bulk_precedence


def test_list_id_alone_is_a_hint() -> None:
    result = verdict("List-Id: <talk.lists.example.org>")
    assert result == Verdict(None, ("list-id",))


def test_discussion_list_post_with_list_unsubscribe_is_human() -> None:
    # Mailman adds List-Unsubscribe to every human post (1,441 such messages in easy_ham).
    result = verdict(*MAILMAN)
    assert result.automated is None
    assert set(result.hints) == {"precedence:bulk", "list-id", "list-unsubscribe"}


def test_yahoo_groups_post_is_human() -> None:
    lines = (
        "Mailing-List: list talk@yahoogroups.com; contact talk-owner@yahoogroups.com",
        "List-Unsubscribe: <mailto:talk-unsubscribe@yahoogroups.com>",
        "Precedence: bulk",
    )
    assert reason(*lines) is None


def test_list_resending_as_sender_is_human() -> None:
    base = (
        b"From: Bob <bob@customer.example>\r\nTo: <DNS-swap@lists.example.net>\r\n"
        b"Sender: <DNS-swap@lists.example.net>\r\n"
    )
    assert reason("List-Unsubscribe: <mailto:DNS-swap-off@lists.example.net>", base=base) is None


def test_list_unsubscribe_without_discussion_markers_is_bulk() -> None:
    assert reason("List-Unsubscribe: <mailto:leave-123@news.example.com>") == "bulk"
    assert (
        reason("List-Unsubscribe: <https://x.example/u>", "Precedence: bulk", "List-Id: <n.example>")
        == "bulk"
    )


def test_announce_only_list_is_bulk() -> None:
    # RFC 2369 §3.4: "List-Post: NO" means posting is not allowed.
    assert (
        reason("List-Unsubscribe: <mailto:u@news.example>", "List-Post: NO (posting not allowed)") == "bulk"
    )


@pytest.mark.parametrize("line", ["Feedback-ID: 1234:5678:campaign:esp", "X-Bulkmail: 2.051"])
def test_bulk_sender_headers(line: str) -> None:
    assert reason(line) == "bulk"


# --- no-reply senders -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "noreply@shop.example",
        "no-reply@shop.example",
        "NoReply-Orders@shop.example",
        "donotreply@shop.example",
        "do-not-reply@shop.example",
        "do_not_reply@shop.example",
    ],
)
def test_default_no_reply_senders(address: str) -> None:
    base = f"From: Shop <{address}>\r\nTo: support@example.com\r\n".encode()
    assert reason(base=base) == "no_reply_sender"


def test_configured_no_reply_patterns() -> None:
    def check(address: str, patterns: tuple[str, ...]) -> str | None:
        raw = f"From: <{address}>\r\nTo: support@example.com\r\nSubject: Hi\r\n\r\n".encode()
        return classify(headers_only(raw), no_reply_senders=patterns).automated

    patterns = ("*@notifications.example.com", "alerts")
    assert check("build-7@notifications.example.com", patterns) == "no_reply_sender"
    assert check("alerts@monitoring.example.net", patterns) == "no_reply_sender"
    assert check("ALERTS@monitoring.example.net", patterns) == "no_reply_sender"
    # Without wildcards a local part matches exactly.
    assert check("alerts-team@monitoring.example.net", patterns) is None
    assert check("jane@example.com", patterns) is None
    # An empty list turns the rule off.
    assert check("noreply@shop.example", ()) is None
    assert "noreply*" in DEFAULT_NO_REPLY


# --- precedence among reasons -----------------------------------------------------------------------


def test_feedback_report_beats_bounce_and_auto_generated() -> None:
    base = b"From: MAILER-DAEMON@mx.example.org\r\nTo: abuse@example.com\r\n"
    lines = (
        "Auto-Submitted: auto-generated",
        "Return-Path: <>",
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"',
    )
    assert reason(*lines, base=base, subject="Abuse report") == "feedback_report"


def test_bounce_beats_read_receipt_and_auto_reply() -> None:
    base = b"From: postmaster@example.org\r\nTo: support@example.com\r\n"
    assert reason("Auto-Submitted: auto-replied", "Return-Path: <>", base=base, subject="Read: x") == "bounce"


def test_read_receipt_beats_out_of_office() -> None:
    content_type = 'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"'
    assert reason(content_type, "X-Autoreply: yes", subject="Read: Question") == "read_receipt"


def test_out_of_office_and_auto_reply_beat_auto_generated_no_reply_and_bulk() -> None:
    base = b"From: noreply@example.org\r\nTo: support@example.com\r\n"
    lines = ("Return-Path: <>", "Auto-Submitted: auto-replied", "List-Unsubscribe: <mailto:u@example.org>")
    assert reason(*lines, base=base, subject="Automatic reply: Question") == "out_of_office"
    assert reason(*lines, base=base, subject="Thanks for writing") == "auto_reply"


def test_auto_generated_beats_no_reply_and_no_reply_beats_bulk() -> None:
    base = b"From: noreply@example.org\r\nTo: support@example.com\r\n"
    assert reason("Auto-Submitted: auto-generated", "Feedback-ID: 1:2:3", base=base) == "auto_generated"
    assert reason("Feedback-ID: 1:2:3", base=base) == "no_reply_sender"


# --- malformed input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"this line has no colon\r\nFrom: jane@customer.example\r\nSubject: hi\r\n\r\nbody",
        b"From: <<<>>>@@\r\nSubject: =?utf-8?B?====?=\r\n\r\n",
        b"From: \xff\xfe\x00garbage\r\nSubject: \x80\x81\x82\r\nAuto-Submitted: (((\r\n\r\n",
        b"Content-Type: multipart/report; report-type\r\nReturn-Path:\r\nFrom:\r\n\r\n",
        b'Content-Type: ;;;===\r\nList-Post: (((\r\nList-Unsubscribe: <\r\nSender: "unterminated\r\n\r\n',
        b"Subject: =?utf-8?Q?=E2=80?= broken utf-8 =?unknown-8bit?Q?=FF?=\r\n\r\n",
        b"From: a@b\r\n continuation without header\r\n\tmore\r\nSubject: x\r\n\r\n",
        b" leading continuation\r\nFrom: jane@customer.example\r\n\r\n",
        b"\x00\x01\x02\x03" * 100,
    ],
)
def test_malformed_headers_never_raise(raw: bytes) -> None:
    result = classify(headers_only(raw))
    assert isinstance(result, Verdict)
    assert "unreadable" not in result.hints


def test_a_message_that_raises_on_access_reads_as_unreadable_human() -> None:
    class Exploding(Message):
        def get(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
            raise RuntimeError("boom")

        def get_content_type(self) -> str:
            raise RuntimeError("boom")

    assert classify(Exploding()) == Verdict(None, ("unreadable",))


def test_headers_used_covers_every_header_the_rules_read() -> None:
    assert {"Auto-Submitted", "Return-Path", "Content-Type", "List-Unsubscribe", "Subject", "From"} <= set(
        HEADERS_USED
    )
    assert len(set(h.lower() for h in HEADERS_USED)) == len(HEADERS_USED)


# --- bulk-mail software, tracking senders, newsletter mailboxes (issue 8) ----------------------------


@pytest.mark.parametrize(
    "line",
    [
        "X-Mailer: AccuCast v5.2",
        "X-Mailer: Lyris ListManager Web Interface",
        "X-Mailer: GroupMail 5.0.0.1 (www.infacta.com)",
        "X-Mailer: sendEmail-1.56",
        "X-Mailer: MailKing 5.0",
    ],
)
def test_bulk_mail_software_is_bulk(line: str) -> None:
    assert reason(line) == "bulk"


@pytest.mark.parametrize(
    "sender",
    [
        "From: Online <Online#3.19578.34-4ab1f@newsletter.example>",
        "From: Deals <R-1-270241-8803461-2-1234-US1-bd2f@shop.example>",
        "From: Shop <newsletter@shop.example>",
        "From: Shop News <news@shop.example>",
    ],
)
def test_tracking_senders_and_newsletter_mailboxes_are_bulk(sender: str) -> None:
    assert reason(base=sender.encode() + b"\r\nTo: support@example.com\r\n") == "bulk"


def test_a_tracking_return_path_is_bulk() -> None:
    assert reason("Return-Path: <R-1-270241-8803461@bounce.shop.example>") == "bulk"


@pytest.mark.parametrize(
    "sender",
    [
        "From: Jane <jane.news@customer.example>",  # "news" inside a local part is a person's name
        "From: Bob <newsroom@customer.example>",
        "From: R2 <r-2d2@customer.example>",
    ],
)
def test_people_whose_addresses_look_alike_stay_human(sender: str) -> None:
    assert reason(base=sender.encode() + b"\r\nTo: support@example.com\r\n") is None


# --- the mail system's own spam verdict -----------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "X-Spam-Flag: YES",
        "X-Spam-Status: Yes, score=7.1 required=5.0 tests=BAYES_99",
        "X-Spam: Yes",
        "X-Spamd-Result: default: True [12.40 / 15.00]; BAYES_SPAM(5.10)[99.99%]",
        "X-Forefront-Antispam-Report: CIP:203.0.113.9;CTRY:;LANG:en;SCL:5;SRV:;IPV:NLI;SFV:SPM;",
        "X-MS-Exchange-Organization-SCL: 5",
        "X-MS-Exchange-Organization-SCL: 9",
    ],
)
def test_the_mail_systems_spam_verdict_is_honoured(line: str) -> None:
    assert reason(line) == "spam"


@pytest.mark.parametrize(
    "line",
    [
        "X-Spam-Flag: NO",
        "X-Spam-Status: No, hits=-2.1 required=5.0 tests=KNOWN_MAILING_LIST",
        "X-Spam: No",
        "X-Spamd-Result: default: False [0.40 / 15.00]; BAYES_HAM(-3.00)[99.99%]",
        "X-Forefront-Antispam-Report: CIP:203.0.113.9;CTRY:;LANG:en;SCL:1;SRV:;IPV:NLI;SFV:NSPM;",
        "X-MS-Exchange-Organization-SCL: 1",
        "X-MS-Exchange-Organization-SCL: -1",
    ],
)
def test_a_clean_spam_verdict_stays_human(line: str) -> None:
    assert reason(line) is None
