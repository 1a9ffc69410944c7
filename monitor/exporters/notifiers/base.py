"""What every notifier plugin shares: its config base, the registry, and what a notifier is given to send."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from monitor.plugins import NOTIFIERS_GROUP, Plugin, PluginConfig, Registry


class NotifierConfigBase(PluginConfig):
    """Fields every notifier kind shares (a subclass narrows ``kind`` to its Literal)."""

    addressed: ClassVar[bool] = True
    """Whether the notifier delivers to people's addresses (mail); False: to one endpoint (a webhook)."""

    @property
    def carries_reports(self) -> bool:
        """Whether this notifier can deliver a team report (not every endpoint takes one)."""
        return True


@dataclass(frozen=True, slots=True)
class AlertItem:
    """One breach as an alert lists it: what is late, for whom, since when."""

    breach_id: int
    step: str
    rule: str
    level: str
    """``warning``, ``breach`` or ``resolved``."""
    subject: str
    """The subject line of the customer's mail, or what the breach is about (a call, a mailbox folder)."""
    at: datetime
    """When this point was reached: the warning, the breach, its resolution."""
    customer: str | None
    waiting_since: datetime
    due_at: datetime | None
    owner: str | None
    """The member who answers for it (None: the team)."""
    unreadable: tuple[str, ...] = ()
    """Sources that could not be read when it was judged: the verdict stands on incomplete data."""
    closed_by: str = "answered"
    """How a resolved item ended: ``answered``, or ``removed`` (its mail deleted or moved away)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to one recipient listing all their items: what a notifier sends in one go."""

    team: str
    recipient: str
    """An address, or for a webhook the step's recipients as written."""
    items: tuple[AlertItem, ...]
    key: str
    """Stable over retries (the same rows): the Message-ID's local part, the webhook's dedup key."""
    dashboard_url: str | None = None
    timezone: str = "UTC"
    """The team calendar's time zone, in which times are shown."""


@dataclass(frozen=True, slots=True)
class ReportDelivery:
    """A team report for one recipient: rendered parts, its PNG charts and its figures."""

    team: str
    period: str
    recipient: str
    subject: str
    text: str
    html: str
    """Shows each chart as ``cid:<name>``."""
    images: dict[str, bytes]
    """PNG charts by name."""
    data: dict[str, Any]
    """Every number of the report (what the JSON format writes)."""
    key: str
    """Stable over retries: the Message-ID's local part, the webhook's dedup key."""
    at: datetime
    """When it was made (the Date of the mail)."""


class NotifierError(Exception):
    """A delivery failed; ``reason`` is short and free of customer data (``refused``, ``unreachable``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Notifier(Protocol):
    """Sends deliveries; raises :class:`NotifierError` when one did not arrive (the outbox retries it)."""

    def send(self, delivery: Delivery) -> None:
        """Deliver one message."""

    def send_report(self, report: ReportDelivery) -> None:
        """Deliver one team report."""

    def probe(self) -> list[str]:
        """Check that deliveries could go out (connect, TLS, login) without sending anything; problems
        found, empty when all is well."""


NotifierFactory = Callable[[str, Any], Notifier]
"""Builds a notifier from its name and its validated config (of its own config class), without I/O."""
NotifierPlugin = Plugin[NotifierConfigBase, NotifierFactory]
"""A notifier plugin, named by an entry point of the ``replywatch.notifiers`` group."""

NOTIFIERS: Registry[NotifierConfigBase, NotifierFactory] = Registry(NOTIFIERS_GROUP, NotifierConfigBase)
"""Every notifier kind, from the ``replywatch.notifiers`` entry points."""
