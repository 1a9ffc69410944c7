"""The first words of a message's own text: quotes cut, closings and holding phrases recognised."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from monitor.mail.preview import is_closing_thanks, matches_phrase, new_text, preview
from monitor.sources.maildir import MaildirConfig, MaildirSource
from monitor.sources.mbox import MboxConfig, MboxSource
from tests.corpus import corpora_root
from tests.mailfactory import deliver, make_maildir


@pytest.mark.parametrize(
    "text",
    ["Thanks!", "thx", "Thank you so much! Anna", "Great, thanks", "Danke schön!",
     "Got it, thank you very much.", "Many thanks, Anna Smith", "Perfect, thank you!", "merci beaucoup"],
)  # fmt: skip
def test_closings(text: str) -> None:
    assert is_closing_thanks(text)


@pytest.mark.parametrize(
    "text",
    ["", "Hello", "Thanks, but it still fails. Can you check?", "Thanks. Please cancel my order.",
     "Thanks for the reply. I still need the invoice for March, please send it.", "Why?",
     "thanks " * 20],
)  # fmt: skip
def test_not_closings(text: str) -> None:
    assert not is_closing_thanks(text)


def test_new_text_cuts_quotes_and_signatures() -> None:
    body = "Thanks!\n> quoted\nBest\n-- \nAnna\n"
    assert new_text(body) == "Thanks! Best"
    reply = "Perfect.\n\nOn Mon, 16 Nov 2026 at 10:00, Support <s@example.com> wrote:\n> hi\n"
    assert new_text(reply) == "Perfect."
    assert new_text("Super.\n\nAm 16.11.2026 um 10:00 schrieb Support <s@example.com>:\n> hallo") == "Super."
    assert new_text("Ok\n-----Original Message-----\nFrom: x") == "Ok"


def test_preview_of_mime_messages() -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.net"
    msg.set_content("Thank you!\n\nOn Monday Support wrote:\n> the answer\n")
    msg.add_alternative("<p>Thank you!</p>", subtype="html")
    assert preview(msg.as_bytes()) == "Thank you!"
    html_only = EmailMessage()
    html_only.set_content("<div>We are <b>looking into it</b>.</div>", subtype="html")
    assert preview(html_only.as_bytes()) == "We are looking into it ."
    assert isinstance(preview(b"\xff\xfe garbage\x00"), str)  # never raises on garbage


def test_talon_reply_layouts_keep_only_the_new_text() -> None:
    """Real quoted-reply layouts (Outlook, Gmail...): the preview never contains the quoted original."""
    files = sorted(p for p in corpora_root("email", "talon").rglob("*") if p.is_file())
    assert files
    for path in files:
        text = preview(path.read_bytes())
        assert not text.startswith(">"), path
        assert "-----Original Message-----" not in text, path


def test_matches_phrase() -> None:
    assert matches_phrase("Re: order  WE ARE looking\ninto it now", ["we are looking into it"])
    assert not matches_phrase("we are looking", ["we are looking into it", " "])


def test_sources_read_text_unless_told_not_to(tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path / "mail")
    raw = b"Message-ID: <t@x>\nFrom: a@example.net\nDate: Mon, 16 Nov 2026 10:00:00 +0000\n\nThanks!\n"
    deliver(maildir, raw)
    plain = MaildirSource("m", MaildirConfig(kind="maildir", path=maildir, text_preview=False)).poll(None)
    assert [m.preview for m in plain.messages] == [""]
    with_text = MaildirSource("m", MaildirConfig(kind="maildir", path=maildir)).poll(None)  # the default
    assert [m.preview for m in with_text.messages] == ["Thanks!"]
    mbox = tmp_path / "a.mbox"
    mbox.write_bytes(
        b"From a@b Mon Nov 16 10:00:00 2026\nMessage-ID: <x@y>\nFrom: a@example.net\n\nThanks a lot!\n"
        b"\nOn Mon someone wrote:\n> old\n\nFrom c@d Mon Nov 16 11:00:00 2026\nMessage-ID: <z@y>\n\nHello\n"
    )
    events = MboxSource("b", MboxConfig(kind="mbox", path=mbox, text_preview=True)).poll(None).messages
    assert [(m.message_id, m.preview) for m in events] == [("x@y", "Thanks a lot!"), ("z@y", "Hello")]
