"""Junk and spam folders, which replywatch never reads: what a spam filter set aside opens no item (issue 8).

A junk folder holds mail the mail system judged to be spam. Watching it would turn every spam into a
customer waiting; a message wrongly filtered there is the mail system's mistake to fix, not a deadline.
"""

from __future__ import annotations

JUNK_NAMES: frozenset[str] = frozenset(
    {
        "junk",
        "spam",
        "junk e-mail",
        "junk email",
        "junk mail",
        "bulk mail",
        "[gmail]/spam",
        "[google mail]/spam",
        "inbox.junk",
        "inbox/junk",
        "inbox.spam",
        "inbox/spam",
        "inbox.junk e-mail",
        "junk-e-mail",
        "junk-mail",
        "spam-verdacht",
        "courrier indésirable",
        "correo no deseado",
        "posta indesiderata",
        "ongewenste e-mail",
        "skräppost",
        "uønsket e-post",
        "wiadomości-śmieci",
    }
)
"""Folder names (lower case) that hold spam on the usual servers, when no ``\\Junk`` attribute says so."""
GRAPH_JUNK: frozenset[str] = frozenset({"junkemail"})
"""Microsoft Graph's well-known name of the Junk Email folder."""


def is_junk_name(name: str) -> bool:
    """Whether a folder's name says it holds spam (``Junk``, ``Spam``, ``[Gmail]/Spam``...)."""
    return name.strip().lower() in JUNK_NAMES


def junk_refusal(name: str) -> str:
    """The error for a watched junk folder."""
    return (
        f"{name!r} is a junk (spam) folder: replywatch never reads one, since every spam in it would "
        "count as a customer waiting; watch the inbox instead"
    )
