"""Build RFC 5322 messages and drop them into maildirs for tests."""

from __future__ import annotations

import itertools
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

_counter = itertools.count()


def make_message(
    *,
    msgid: str,
    sender: str,
    to: str | list[str],
    date: datetime,
    subject: str = "Question about my order",
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    body: str = "Hello,\n\ncould you help me with this?\n\nThanks\n",
) -> bytes:
    """A plain-text message as bytes."""
    msg = EmailMessage()
    msg["Message-ID"] = f"<{msgid}>"
    msg["Date"] = format_datetime(date)
    msg["From"] = sender
    msg["To"] = ", ".join(to) if isinstance(to, list) else to
    msg["Subject"] = subject
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes()


def make_maildir(root: Path) -> Path:
    """An empty Maildir++ with a ``.Sent`` folder."""
    for folder in (root, root / ".Sent"):
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    return root


def deliver(root: Path, raw: bytes, *, folder: str = "", flags: str = "S") -> Path:
    """Write one message into ``cur/`` of a maildir folder with the given flags."""
    n = next(_counter)
    path = root / folder / "cur" / f"1763280000.M{n}P1.test:2,{flags}"
    path.write_bytes(raw)
    return path
