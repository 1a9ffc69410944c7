"""Awaiting items, their responses, and what opened none: what the engine makes, the store and rules read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.events import CallEvent, Channel, MessageEvent


@dataclass(frozen=True, slots=True)
class Response:
    """What closed an awaiting item: the team's answer (a message, or a call on the phone channel)."""

    at: datetime
    id: str
    """The answering message's Message-ID (its source id when it has none), or the call's linked id."""
    responder: str | None = None
    """The configured member who answered, the team address it came from, or None when unknown."""


@dataclass(frozen=True, slots=True)
class AwaitingItem:
    """One customer contact waiting for the team: open from ``received_at`` until ``response``."""

    team: str
    channel: Channel
    key: str
    """The opening message's Message-ID (its source id when it has none), or the missed call's linked id."""
    conversation: str
    customer: str
    """An email address, or an E.164 number."""
    received_at: datetime
    response: Response | None = None
    acknowledged_at: datetime | None = None
    """When the team first told the customer it is working on it (a holding reply)."""
    addresses: frozenset[str] = frozenset()
    """Every address the customer wrote from or asked replies to (From and Reply-To)."""
    owner: str | None = None
    """The configured member who answers for it: the one whose own address or extension the customer
    reached, else the one who last answered that customer, else None (the team as a whole)."""
    attempts: int = 1
    """How many times the customer tried while waiting (repeated missed calls from one number)."""
    outside_hours: bool = False
    """The customer called while the team's calendar was closed."""
    removed_at: datetime | None = None
    """When every message of the unanswered item was deleted or moved out of every watched folder: the
    item is closed as ``removed`` (not an answer, not a breach). None while any copy remains, and always
    None once answered."""

    @property
    def closed_at(self) -> datetime | None:
        """When the item stopped waiting: its response, else its removal; None while the customer waits."""
        return self.response.at if self.response is not None else self.removed_at

    @property
    def responded_at(self) -> datetime | None:
        """When the team answered, or None while the customer waits."""
        return self.response.at if self.response is not None else None

    @property
    def response_id(self) -> str | None:
        """The id of the answer, or None while the customer waits."""
        return self.response.id if self.response is not None else None

    @property
    def responder(self) -> str | None:
        """Who answered, or None while waiting or when unknown."""
        return self.response.responder if self.response is not None else None


@dataclass(frozen=True, slots=True)
class Unopened:
    """A message or call that opened no awaiting item, and why."""

    event: MessageEvent | CallEvent
    reason: str
    """``automated:<reason>``, ``internal``, ``outbound``, ``internal_forward``, ``duplicate``,
    ``follow_up``, ``closing_thanks``, ``response``, ``acknowledgment``, ``no_sender``, ``archived`` (found
    in archive folders only); for calls
    ``internal``, ``answered``, ``short_abandon``, ``outbound``, ``callback``, ``follow_up``, ``other_line``,
    ``anonymous``."""

    @property
    def channel(self) -> Channel:
        """The channel of the event."""
        return self.event.channel


@dataclass(slots=True)
class EngineResult:
    """The awaiting items of a set of events, and what happened to every other event."""

    items: list[AwaitingItem]
    unopened: list[Unopened]
