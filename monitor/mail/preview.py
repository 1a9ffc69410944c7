"""The first words of a message's own text: for "thanks!" closings and holding-reply phrases (pure)."""

from __future__ import annotations

import email.parser
import email.policy
import html
import re
from collections.abc import Sequence
from email.message import Message

from monitor.mail.headers import HeaderBlock
from monitor.mail.mime_walk import first_text

PREVIEW_CHARS = 1000
"""How much of a message's new text is kept (and stored): enough for a phrase, not a whole letter."""
MAX_READ = 64 * 1024
"""Bytes of a message read to find its text part."""

# Where the quoted original starts in a reply, in the forms common clients write.
_QUOTE_START = re.compile(
    r"^(?:On .{3,200} wrote:|Am .{3,200} schrieb .{1,200}:|Le .{3,200} a écrit\s?:|El .{3,200} escribió:"
    r"|-{2,}\s*Original Message\s*-{2,}|-{2,}\s*Ursprüngliche Nachricht\s*-{2,}|_{10,}"
    r"|From:\s.+|Von:\s.+|De\s?:\s.+)\s*$",
    re.IGNORECASE,
)
# The ASCII characters a _QUOTE_START match can begin with (any case); a line beginning with another ASCII
# character is no quote start, and the expression is not tried on it.
_QUOTE_FIRST = frozenset("OoAaLlEe-_FfVvDd")
_TAGS = re.compile(r"<[^>]+>")
# A closing is made of these words, plus at most a signature (a name or two).
_CLOSING_WORDS = frozenset(
    (
        "thanks",
        "thank",
        "you",
        "thx",
        "ty",
        "cheers",
        "many",
        "great",
        "ok",
        "okay",
        "perfect",
        "awesome",
        "brilliant",
        "super",
        "cool",
        "all",
        "good",
        "got",
        "it",
        "so",
        "much",
        "very",
        "a",
        "lot",
        "again",
        "for",
        "the",
        "your",
        "help",
        "reply",
        "quick",
        "answer",
        "support",
        "and",
        "kind",
        "best",
        "regards",
        "wishes",
        "merci",
        "beaucoup",
        "danke",
        "schön",
        "schoen",
        "sehr",
        "vielen",
        "dank",
        "gracias",
        "muchas",
        "grazie",
        "mille",
        "obrigado",
        "obrigada",
        "je",
        "wel",
        "bedankt",
        "tack",
        "så",
        "mycket",
        "takk",
        "tak",
        "sorted",
        "fixed",
        "works",
        "now",
        "that",
        "worked",
        "problem",
        "solved",
        "appreciated",
        "appreciate",
        "really",
    )
)
_GRATITUDE = frozenset(
    (
        "thanks",
        "thank",
        "thx",
        "ty",
        "cheers",
        "merci",
        "danke",
        "dank",
        "gracias",
        "grazie",
        "obrigado",
        "obrigada",
        "bedankt",
        "tack",
        "takk",
        "tak",
        "appreciated",
        "appreciate",
        "solved",
        "worked",
        "sorted",
    )
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def new_text(body: str) -> str:
    """The text the sender wrote, without the quoted original, signature or ``>`` lines."""
    out: list[str] = []
    for line in body.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if not stripped:
            continue  # a blank line adds nothing once white space is collapsed
        first = stripped[0]
        if stripped == "--" or (
            (first in _QUOTE_FIRST or not first.isascii()) and _QUOTE_START.match(stripped)
        ):
            break
        if first == ">":
            continue
        out.append(stripped)
    text = " ".join(out)
    # White space collapsed: a text whose only white space is single spaces between words already is.
    if "  " in text or not text.isprintable():  # every white space but " " is unprintable
        text = " ".join(text.split())
    return text[:PREVIEW_CHARS]


def text_part(msg: Message) -> str:
    """The first text/plain part's decoded text (text/html with tags removed when there is no plain part)."""
    html_text = None
    for part in msg.walk() if msg.is_multipart() else [msg]:
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or part.get_filename():
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:
            continue
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:
            text = payload.decode("utf-8", errors="replace")
        if ctype == "text/plain":
            return text
        if html_text is None:
            html_text = html.unescape(_TAGS.sub("\n", text))
    return html_text or ""


def preview(raw: bytes) -> str:
    """The new text of a raw message (at most :data:`MAX_READ` bytes are looked at)."""
    try:
        msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw[:MAX_READ])
        return new_text(text_part(msg))
    except Exception:
        return ""


def preview_of_parts(header: bytes, block: Message, text: bytes) -> str:
    """``preview(header + b"\r\n" + text)`` (an IMAP header block and the start of the text), with
    ``block`` the already parsed ``header``: most messages are read by :func:`first_text`'s walker, the
    others by the standard library's parser, with the same result."""
    if (
        isinstance(block, HeaderBlock)
        and block.whole
        and not block.truncated
        and (not header or header.endswith((b"\r\n\r\n", b"\n\n")))
        and len(header) + 2 + len(text) <= MAX_READ
    ):
        found = first_text(block, b"\r\n" + text if header else text)
        if found is not None:
            ctype, charset, payload = found
            if not ctype:
                return ""
            try:
                decoded = payload.decode(charset.lower() if charset else "utf-8", errors="replace")
            except LookupError:
                decoded = payload.decode("utf-8", errors="replace")
            except Exception:
                return ""
            try:
                if ctype == "text/html":
                    decoded = html.unescape(_TAGS.sub("\n", decoded))
                return new_text(decoded)
            except Exception:
                return ""
    return preview(header + b"\r\n" + text)


def is_closing_thanks(text: str, max_words: int = 12, signature_words: int = 2) -> bool:
    """True for a short closing with no new question: "Thanks!", "Got it, thank you very much. Anna"."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words or "?" in text or len(words) > max_words:
        return False
    if not any(w in _GRATITUDE for w in words):
        return False
    return sum(w not in _CLOSING_WORDS for w in words) <= signature_words


def matches_phrase(text: str, phrases: Sequence[str]) -> bool:
    """True when ``text`` contains one of ``phrases`` (case and spacing ignored)."""
    folded = " ".join(text.lower().split())
    return any(" ".join(p.lower().split()) in folded for p in phrases if p.strip())
