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


class NotifierError(Exception):
    """A delivery failed; ``reason`` is short and free of customer data (``refused``, ``unreachable``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Notifier(Protocol):
    """Sends deliveries; raises :class:`NotifierError` when one did not arrive (the outbox retries it)."""

    def send(self, delivery: Delivery) -> None:
        """Deliver one message."""


NotifierFactory = Callable[[str, Any], Notifier]
"""Builds a notifier from its name and its validated config (of its own config class), without I/O."""
NotifierPlugin = Plugin[NotifierConfigBase, NotifierFactory]
"""A notifier plugin, named by an entry point of the ``replywatch.notifiers`` group."""

NOTIFIERS: Registry[NotifierConfigBase, NotifierFactory] = Registry(NOTIFIERS_GROUP, NotifierConfigBase)
"""Every notifier kind, from the ``replywatch.notifiers`` entry points."""
