"""Reply and forward prefixes of subjects: the one list threading and the classifier share (pure)."""

from __future__ import annotations

import re

REPLY_PREFIXES: tuple[str, ...] = (
    # As clients write them in their UI languages: English, German (AW, WG), Dutch (Antw, Doorst),
    # Scandinavian (SV, VS), Italian (R, Rif), Portuguese and Spanish (Res, Enc, RV), French (TR, Ref),
    # Finnish (VL), Polish (Odp, PD), Turkish (YNT, TRS), Chinese (回复, 答复, 转发).
    "re",
    "fw",
    "fwd",
    "aw",
    "wg",
    "antw",
    "doorst",
    "sv",
    "vs",
    "r",
    "rif",
    "res",
    "enc",
    "rv",
    "ref",
    "tr",
    "vl",
    "odp",
    "pd",
    "ynt",
    "trs",
    "回复",
    "答复",
    "转发",
)
"""Reply and forward prefixes, each matched case-insensitively before a colon (ASCII or full-width)."""

# One or more prefixes, each with an optional count (``Re[2]:``) and a colon: ``Re: AW: Fwd: ...``.
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:" + "|".join(REPLY_PREFIXES) + r")\s*(?:\[\d+\])?\s*[:\uff1a]\s*)+", re.IGNORECASE
)


def has_reply_prefix(subject: str) -> bool:
    """Whether ``subject`` starts with a reply or forward prefix (someone answering or passing it on)."""
    return _REPLY_PREFIX.match(subject) is not None


def normalized_subject(subject: str) -> str:
    """The subject without reply/forward prefixes, case and spacing (``Re: AW: Order  1`` -> ``order 1``)."""
    return " ".join(_REPLY_PREFIX.sub("", subject).lower().split())
