"""The classifier's and the preview's shortcuts read exactly as the full reading.

``classify`` skips the lookups of fields a message does not have and finds out whether a message is a
discussion-list post only when that decides something; ``new_text`` skips the quote expression on lines
that cannot start a quote and the white space collapse of text that has nothing to collapse; the MIME
walker remembers the part headers it parsed. Each case below is read as an IMAP header block, as a
standard library message and as a message whose lookups the classifier does not know (so it looks up
every field), and must give the same, written-out verdict.
"""

from __future__ import annotations

import email.policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

import pytest

from monitor.mail.classify import Verdict, classify, spam_verdict
from monitor.mail.headers import parse_header_block
from monitor.mail.mime_walk import first_text
from monitor.mail.preview import _QUOTE_START, PREVIEW_CHARS, new_text

FROM = "From: Anna <anna@customer.example>"
TO_LIST = "To: list@lists.example"


class _OwnLookups(Message):
    """A message with its own ``get``: the classifier cannot know which fields it lacks."""

    def get(self, name: str, failobj: Any = None) -> Any:
        return super().get(name, failobj)


def _readings(raw: bytes) -> list[Message]:
    parser = BytesParser(policy=email.policy.compat32)
    own = parser.parsebytes(raw, headersonly=True)
    own.__class__ = _OwnLookups
    return [parse_header_block(raw), parser.parsebytes(raw, headersonly=True), parser.parsebytes(raw), own]


CASES: list[tuple[tuple[str, ...], Verdict]] = [
    # Precedence: bulk without List-Unsubscribe: the discussion-list test runs only at the end.
    ((FROM, TO_LIST, "Precedence: bulk"), Verdict(None, ("precedence:bulk",), bulk_precedence=True)),
    (
        (FROM, TO_LIST, "Sender: list@lists.example", "Precedence: bulk"),
        Verdict(None, ("precedence:bulk",), bulk_precedence=False),
    ),
    (  # the Sender is the From: no list resent it
        ("From: list@lists.example", TO_LIST, "Sender: list@lists.example", "Precedence: list"),
        Verdict(None, ("precedence:list",), bulk_precedence=True),
    ),
    (
        (FROM, "To: team@example.com", "Cc: List <LIST@lists.example>", "X-BeenThere: list@lists.example",
         "Precedence: list"),
        Verdict(None, ("precedence:list",), bulk_precedence=False),
    ),
    (  # the list's owner as Sender, a post addressed to the list
        (FROM, TO_LIST, "Sender: owner-list@lists.example", "Precedence: junk"),
        Verdict(None, ("precedence:junk",), bulk_precedence=False),
    ),
    ((FROM, "Sender: owner-list@lists.example", "Precedence: bulk"),
     Verdict(None, ("precedence:bulk",), bulk_precedence=True)),
    ((FROM, TO_LIST, "X-BeenThere: other@lists.example", "Precedence: bulk"),
     Verdict(None, ("precedence:bulk",), bulk_precedence=True)),
    ((FROM, TO_LIST, "Mailing-List: list list@lists.example", "Precedence: bulk"),
     Verdict(None, ("precedence:bulk",), bulk_precedence=False)),
    # List-Unsubscribe: a discussion post keeps it as a hint, anything else is bulk.
    ((FROM, TO_LIST, "List-Unsubscribe: <mailto:u@lists.example>"), Verdict("bulk")),
    (
        (FROM, TO_LIST, "X-Auto-Response-Suppress: All", "Precedence: bulk", "List-Id: <list.lists.example>",
         "List-Unsubscribe: <mailto:u@lists.example>", "List-Post: <mailto:list@lists.example>"),
        Verdict(None, ("x-auto-response-suppress", "precedence:bulk", "list-id", "list-unsubscribe")),
    ),
    ((FROM, "List-Unsubscribe: <mailto:u@x>", "List-Post: NO"), Verdict("bulk")),
    ((FROM, "List-Unsubscribe: <mailto:u@x>", "List-Post: (announcements only) No"), Verdict("bulk")),
    ((FROM, "List-Unsubscribe: <mailto:u@x>", "Mailing-List: list x@y"),
     Verdict(None, ("list-unsubscribe",))),
    ((FROM, TO_LIST, "Sender: list@lists.example", "List-Unsubscribe: x"),
     Verdict(None, ("list-unsubscribe",))),
    # Feedback-ID decides whatever the list headers say.
    ((FROM, "List-Post: <mailto:l@x>", "List-Unsubscribe: x", "Feedback-ID: 1:2:3", "Precedence: bulk"),
     Verdict("bulk", ("precedence:bulk",))),
    ((FROM, "x-bulkmail: 1"), Verdict("bulk")),
    # Rare fields: present, empty, falsy, odd-cased, encoded.
    ((FROM, "X-Failed-Recipients:"), Verdict("bounce")),
    ((FROM, "X-MS-Exchange-Message-Is-Ndr:"), Verdict(None)),
    ((FROM, "X-MS-Exchange-Message-Is-Ndr: false"), Verdict(None)),
    ((FROM, "x-ms-exchange-message-is-ndr: True"), Verdict("bounce")),
    ((FROM, "X-Autoreply: no"), Verdict(None)),
    ((FROM, "X-Autoreply:"), Verdict(None)),
    ((FROM, "x-autorespond: yes"), Verdict("auto_reply")),
    ((FROM, "X-AUTORESPONDER: =?utf-8?q?on?="), Verdict("auto_reply")),
    ((FROM, "X-Autoresponder: =?utf-8?q?no?="), Verdict(None)),
    ((FROM, "X-Apple-Action: =?utf-8?q?VACATION?="), Verdict("auto_reply")),
    ((FROM, "X-Mailer: Vacation/1.2"), Verdict("auto_reply")),
    ((FROM, "X-Mailer: phplist 2.10"), Verdict("bulk")),
    ((FROM, "Auto-Submitted: (by a person) no"), Verdict(None)),
    ((FROM, "auto-submitted: auto-replied (vacation)"), Verdict("auto_reply")),
    ((FROM, "Precedence: Auto_Reply"), Verdict("auto_reply")),
    # Return-Path: <> makes a "Read:" subject a read receipt; without it the subject is a person's.
    ((FROM, "Subject: Read: chapter 3", "Return-Path: <>"), Verdict("read_receipt")),
    ((FROM, "Subject: Read: chapter 3"), Verdict(None)),
    ((FROM, "Subject: Read: chapter 3", "return-path: <MAILER-DAEMON>"), Verdict("read_receipt")),
    ((FROM, "Return-Path: <R-1-270241-abc@mailer.example>"), Verdict("bulk")),
    # Spam verdicts of the mail system.
    ((FROM, "X-MS-Exchange-Organization-SCL: 5"), Verdict("spam")),
    ((FROM, "X-MS-Exchange-Organization-SCL: 4"), Verdict(None)),
    ((FROM, "x-spam-flag: YES"), Verdict("spam")),
    ((FROM, "X-Spam-Status: No, score=1.2"), Verdict(None)),
    ((FROM, "X-Spam: =?utf-8?q?true?="), Verdict("spam")),
    ((FROM, "X-Spamd-Result: default: True [12.40 / 15.00]"), Verdict("spam")),
    ((FROM, "X-Forefront-Antispam-Report: CIP:1.2.3.4;SFV:SPM;"), Verdict("spam")),
    # No fields at all, no From, an MTA's From.
    ((), Verdict(None)),
    (("Subject: Undeliverable: your order",), Verdict("bounce")),
    (("From: <>",), Verdict("bounce")),
    (("From: =?utf-8?q?Mail_Delivery_System?= <bounces@mta.example>",), Verdict("bounce")),
    (("From: noreply@shop.example", "Precedence: bulk"), Verdict("no_reply_sender", ("precedence:bulk",))),
    ((FROM, "Subject: Automatic reply: holiday", "X-Auto-Response-Suppress: All"),
     Verdict("out_of_office", ("x-auto-response-suppress",))),
]  # fmt: skip


@pytest.mark.parametrize(("lines", "expected"), CASES)
def test_targeted_header_combinations(lines: tuple[str, ...], expected: Verdict) -> None:
    raw = "".join(line + "\r\n" for line in lines).encode() + b"\r\nbody\r\n"
    for msg in _readings(raw):
        assert classify(msg) == expected, type(msg).__name__


def test_eight_bit_values_of_rare_fields() -> None:
    raw = (
        "From: Jörg <joerg@customer.example>\r\nPrecedence: bülk\r\nX-Autoreply: jä\r\n"
        "List-Post: <mailto:lïst@lists.example>\r\nList-Unsubscribe: <mailto:u@x>\r\n\r\n"
    ).encode()
    for msg in _readings(raw):
        assert classify(msg) == Verdict("auto_reply", ("list-unsubscribe",)), type(msg).__name__


def test_spam_verdict_alone() -> None:
    for msg in _readings(b"From: a@b.example\r\nX-Spam-Flag: yes\r\n\r\n"):
        assert spam_verdict(msg)
    for msg in _readings(b"From: a@b.example\r\nX-Spam-Flag: no\r\n\r\n"):
        assert not spam_verdict(msg)


def _reference_new_text(body: str) -> str:
    """new_text as it reads without its shortcuts."""
    out = []
    for line in body.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if stripped == "--" or _QUOTE_START.match(stripped):
            break
        if stripped.startswith(">"):
            continue
        out.append(stripped)
    return " ".join(" ".join(out).split())[:PREVIEW_CHARS]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\n\n",
        "Hello there,\n\nthanks a lot.\n\nAnna",
        "Tabs\tinside\tthe line\r\nand  two  spaces",
        "No-break\u00a0space and\u2003em space\u3000ideographic",
        "Odd\x1cbreak and \x0bvertical tab and a lone \r in a line",
        "   leading and trailing   \n\t\t",
        "Ok\n> quoted\nmore",
        "Thanks\n--\nsignature",
        "Thanks\n -- \nsignature",
        "Merci\nLe 3 mars 2026 à 10:00, Support a écrit :\n> x",
        "Danke\nVON: support@example.com\nmore",
        "Fine\n___________\nold",
        "Great\n----- original message -----\nold",
        "ÉL 3 de marzo escribió: not a quote start?\nrest",
        "Über alles\nrest",
        "on monday at 10:00 someone wrote:\nquoted",
        "x " * 700,
    ],
)
def test_new_text_reads_as_without_shortcuts(body: str) -> None:
    assert new_text(body) == _reference_new_text(body)


def test_remembered_part_headers_read_each_message_on_its_own() -> None:
    """Two messages with the same part header block: each gets its own text, also when cut short."""
    outer = parse_header_block(b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n')
    part = b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    first = first_text(outer, b"\r\n" + part + b"SGVsbG8=\r\n--b1--\r\n")
    second = first_text(outer, b"\r\n" + part + b"QnllIQ==\r\n--b1--\r\n")
    assert first == ("text/plain", "utf-8", b"Hello")
    assert second == ("text/plain", "utf-8", b"Bye!")
    # A part header block too long to be remembered reads the same.
    long_part = part.replace(b"\r\n\r\n", b"\r\nX-Long: " + b"x" * 600 + b"\r\n\r\n")
    assert first_text(outer, b"\r\n" + long_part + b"SGVsbG8=\r\n--b1--\r\n") == first
    # A part header the walker cannot read exactly stays unreadable to it, every time.
    odd = part.replace(b"charset=utf-8", b"charset*=utf-8''x")
    for _ in range(2):
        assert first_text(outer, b"\r\n" + odd + b"SGVsbG8=\r\n--b1--\r\n") is None
