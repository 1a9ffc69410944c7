"""``text_preview`` on IMAP: the first words of each message's text, fetched with BODY.PEEK only."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from monitor.sources.imap import ImapConfig, ImapSource
from tests.servers.dovecot import Mailbox

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def mime(msgid: str, text: str, *, html: bool = False, cte: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["Message-ID"] = f"<{msgid}>"
    msg["From"] = "carol@cust.example"
    msg["To"] = "support@example.com"
    msg["Date"] = "Mon, 16 Nov 2026 10:00:00 +0000"
    msg["Subject"] = "Re: your order"
    msg.set_content(text, cte=cte)
    if html:
        msg.add_alternative(f"<p>{text}</p>", subtype="html")
        msg.add_attachment(b"%PDF-1.4 " * 2000, maintype="application", subtype="pdf", filename="invoice.pdf")
    return msg.as_bytes()


@pytest.mark.parametrize("fast", [True, False], ids=["fast-fetch", "imapclient-fetch"])
def test_previews_without_touching_flags(
    imap_mailbox: Mailbox, fast: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="monitor.sources.imap")
    imap_mailbox.create_folder("Sent")
    imap_mailbox.append("INBOX", mime("t1@cust.example", "Thanks a lot!\n\nOn Monday Support wrote:\n> done"))
    imap_mailbox.append("INBOX", mime("t2@cust.example", "Great, thank you.", html=True), ["\\Flagged"])
    imap_mailbox.append("INBOX", mime("t3@cust.example", "Where is my parcel? " * 500))
    # A single-part message in base64 (or quoted-printable): the encoding is a header of the message itself,
    # so the preview decodes it only when that header was fetched with the others.
    imap_mailbox.append("INBOX", mime("t4@cust.example", "Merci beaucoup ! Ça marche.", cte="base64"))
    imap_mailbox.append("INBOX", mime("t5@cust.example", "Danke schön, alles klar.", cte="quoted-printable"))
    before = imap_mailbox.flags("INBOX")
    monkeypatch.setattr(ImapSource, "fast_fetch", fast)
    config = ImapConfig.model_validate(imap_mailbox.imap_settings("implicit") | {"text_preview": True})
    source = ImapSource("support", config, clock=lambda: NOW + timedelta(seconds=1))
    try:
        events = {e.message_id: e for e in source.poll(None).messages}
    finally:
        source.close()
    assert events["t1@cust.example"].preview == "Thanks a lot!"
    assert events["t2@cust.example"].preview == "Great, thank you."
    assert events["t3@cust.example"].preview.startswith("Where is my parcel?")
    assert len(events["t3@cust.example"].preview) == 1000  # PREVIEW_CHARS, from a 4 KB partial fetch
    assert events["t4@cust.example"].preview == "Merci beaucoup ! Ça marche."
    assert events["t5@cust.example"].preview == "Danke schön, alles klar."
    assert events["t1@cust.example"].subject == "Re: your order"  # headers still parsed as before
    assert imap_mailbox.flags("INBOX") == before  # \Seen never set: BODY.PEEK only
    assert ("not usable" in caplog.text) is False  # the fast path read the text sections itself


def test_the_preview_is_on_by_default() -> None:
    config = ImapConfig.model_validate({"kind": "imap", "host": "h", "username": "u", "password_env": "P"})
    assert config.text_preview is True  # closing_thanks (on by default) needs the text


def test_turned_off_only_headers_are_fetched(imap_mailbox: Mailbox) -> None:
    imap_mailbox.create_folder("Sent")
    imap_mailbox.append("INBOX", mime("t1@cust.example", "Thanks!"))
    settings = {**imap_mailbox.imap_settings("implicit"), "text_preview": False}
    source = ImapSource("support", ImapConfig.model_validate(settings))
    try:
        (event,) = source.poll(None).messages
    finally:
        source.close()
    assert event.preview == ""
    assert "BODY.PEEK[TEXT]" not in " ".join(source._fetch_items())
