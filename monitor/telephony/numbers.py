"""Telephone numbers as the engine compares them: E.164 for outside numbers, extensions kept as they are.

A PBX writes the same customer as ``01632 960123``, ``+441632960123`` or ``0044...`` depending on the
trunk; :func:`classify_number` turns every spelling into one E.164 string with the ``phonenumbers``
package and the PBX's ``default_region``, so a call-back to the number matches the missed call from it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

ANONYMOUS = "anonymous"
"""The customer of a call whose number was withheld."""

WITHHELD = frozenset(
    {"", "anonymous", "unknown", "unavailable", "restricted", "private", "withheld", "blocked", "<unknown>"}
)
"""Caller ids that PBXs and carriers write for a withheld or missing number (compared in lower case)."""

DEFAULT_EXTENSION_DIGITS = 5
"""Internal numbers have at most this many digits; longer ones are outside numbers."""

_ANGLE = re.compile(r"<([^<>]*)>\s*$")
_DIALLABLE = re.compile(r"^\+?[0-9]+$")


class NumberKind(StrEnum):
    """What a number in a call log stands for."""

    EXTENSION = "extension"
    """A phone, queue or service of the PBX itself (short digits, a SIP peer name, ``*60``)."""
    OUTSIDE = "outside"
    """A number outside the PBX: a customer, a supplier."""
    ANONYMOUS = "anonymous"
    """A caller who withheld the number."""


@dataclass(frozen=True, slots=True)
class Party:
    """One end of a call: its kind and the number in the form the engine compares."""

    kind: NumberKind
    number: str
    """E.164 (``+441632960123``) for a placeable outside number, the digits for one ``phonenumbers``
    cannot place, the extension as written, or :data:`ANONYMOUS`."""

    @property
    def is_outside(self) -> bool:
        """True for a customer's side of a call (an outside number or a withheld one)."""
        return self.kind is not NumberKind.EXTENSION


def caller_id_number(text: str) -> str:
    """The number of a caller id such as ``"Alice" <201>`` (the text itself when it has no angle brackets)."""
    match = _ANGLE.search(text)
    return (match.group(1) if match else text).strip()


@functools.lru_cache(maxsize=65536)  # a call log repeats its numbers and extensions; parsing is the cost
def classify_number(
    raw: str, default_region: str | None = None, extension_digits: int = DEFAULT_EXTENSION_DIGITS
) -> Party:
    """The party a call log's number stands for.

    Withheld spellings are :data:`ANONYMOUS`; 3CX's ``Ext.201`` and any number of at most
    ``extension_digits`` digits (or a name such as a SIP peer, or a feature code like ``*60``) is an
    extension; a longer number is an outside number, in E.164 when ``phonenumbers`` can place it with
    ``default_region`` (an ISO 3166 code such as ``GB``), else its digits as written.
    """
    text = caller_id_number(raw).strip()
    if text.lower() in WITHHELD:
        return Party(NumberKind.ANONYMOUS, ANONYMOUS)
    if text.lower().startswith("ext."):
        return Party(NumberKind.EXTENSION, text[4:].strip())
    compact = re.sub(r"[\s().\-/]", "", text)
    if not _DIALLABLE.match(compact) or len(compact.lstrip("+")) <= extension_digits:
        return Party(NumberKind.EXTENSION, text)
    return Party(NumberKind.OUTSIDE, to_e164(compact, default_region))


def to_e164(number: str, default_region: str | None) -> str:
    """``number`` in E.164 when ``phonenumbers`` can place it (a possible number), else its digits."""
    import phonenumbers  # imported when a phone number is read: its metadata loads slowly

    region = default_region.upper() if default_region else None
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_possible_number(parsed):
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_region(region: str) -> str:
    """``region`` upper-cased when ``phonenumbers`` knows it; ValueError with an example otherwise."""
    import phonenumbers

    upper = region.upper()
    if upper not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {region!r}: use an ISO 3166 country code such as 'GB' or 'DE'")
    return upper
