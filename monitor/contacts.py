"""The contact directory: which email addresses and phone numbers belong to the same customer.

Cross-channel answers need it: a call to a customer's number answers their email, an email to their address
answers their missed call. Numbers are compared in E.164 (``phonenumbers``, with the directory's default
region), addresses in lower case.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monitor.telephony.numbers import NumberKind, classify_number


class ContactsError(ValueError):
    """The contact directory cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Contact:
    """One customer's addresses and numbers."""

    emails: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ContactDirectory:
    """Addresses <-> numbers of the same customers."""

    phones_by_email: Mapping[str, frozenset[str]] = field(default_factory=dict)
    emails_by_phone: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, contacts: Iterable[Contact]) -> ContactDirectory:
        """A directory linking every address of a contact with every number of it."""
        phones: dict[str, set[str]] = defaultdict(set)
        emails: dict[str, set[str]] = defaultdict(set)
        for contact in contacts:
            for email in contact.emails:
                phones[email] |= contact.phones
            for phone in contact.phones:
                emails[phone] |= contact.emails
        return cls(
            {k: frozenset(v) for k, v in phones.items() if v},
            {k: frozenset(v) for k, v in emails.items() if v},
        )

    def phones_of(self, email: str) -> frozenset[str]:
        """The numbers of the customer writing from ``email``."""
        return self.phones_by_email.get(email.lower(), frozenset())

    def emails_of(self, phone: str) -> frozenset[str]:
        """The addresses of the customer calling from ``phone`` (E.164)."""
        return self.emails_by_phone.get(phone, frozenset())

    def __bool__(self) -> bool:
        return bool(self.phones_by_email)


def contact(emails: Iterable[str], phones: Iterable[str], default_region: str | None) -> Contact:
    """A contact with its addresses in lower case and its numbers in E.164."""
    numbers = set()
    for raw in phones:
        party = classify_number(raw, default_region)
        if party.kind is not NumberKind.OUTSIDE:
            raise ValueError(f"{raw!r} is not a customer's phone number")
        numbers.add(party.number)
    return Contact(frozenset(e.strip().lower() for e in emails if e.strip()), frozenset(numbers))


def read_contacts_csv(text: str, default_region: str | None, where: str = "contacts") -> list[Contact]:
    """Contacts from CSV with a header row naming an ``email`` and a ``phone`` column; a cell may hold
    several values separated by ``;``. Other columns (a name, a customer id) are ignored."""
    reader = csv.DictReader(io.StringIO(text))
    columns = {name.strip().lower(): name for name in reader.fieldnames or []}
    if "email" not in columns or "phone" not in columns:
        raise ContactsError(f"{where}: the header row must name an 'email' and a 'phone' column")
    out = []
    for row in reader:
        line = reader.line_num
        emails = _split(row.get(columns["email"]))
        phones = _split(row.get(columns["phone"]))
        try:
            out.append(contact(emails, phones, default_region))
        except ValueError as err:
            raise ContactsError(f"{where}, line {line}: {err}") from err
    return out


def load_contacts(path: Path, default_region: str | None) -> list[Contact]:
    """Contacts from a CSV file (see :func:`read_contacts_csv`)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise ContactsError(f"cannot read contacts file {str(path)!r}: {err.strerror}") from err
    return read_contacts_csv(text, default_region, str(path))


def _split(cell: str | None) -> list[str]:
    return [part.strip() for part in (cell or "").split(";") if part.strip()]
