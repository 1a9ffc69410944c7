"""Calls -> awaiting items on the phone channel: missed inbound calls a person should return.

Pure: the same calls always give the same items, in any order they arrived. A missed call (inbound, not
answered by a person, not a short abandon, on one of the team's lines) opens an item keyed by the call's
linked id; more missed calls from the number while it waits add attempts to that item; the first
call-back to the number (or an answered call from it) closes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.awaiting import AwaitingItem, EngineResult, Response, Unopened
from monitor.calendar import BusinessCalendar
from monitor.events import CallDirection, CallEvent, Channel
from monitor.rules.base import EngineOptions
from monitor.telephony.numbers import ANONYMOUS

DEFAULT_SHORT_ABANDON = timedelta(seconds=10)
"""Callers who hang up sooner than this (a misdial, a pocket call) are not owed a call-back."""


@dataclass(frozen=True, slots=True)
class PhoneOptions:
    """What a team's rules ask of the phone engine."""

    short_abandon: timedelta = DEFAULT_SHORT_ABANDON
    """A missed call that rang for less than this opens no item (``0s``: every missed call does)."""
    unanswered_attempt_counts: bool = True
    """A call-back the customer did not pick up still answers the missed call."""

    @classmethod
    def from_rules(cls, options: EngineOptions) -> PhoneOptions:
        """The options a team's rules asked for (merged :class:`EngineOptions`), defaults for the rest."""
        default = cls()
        return cls(
            short_abandon=options.short_abandon
            if options.short_abandon is not None
            else default.short_abandon,
            unanswered_attempt_counts=(
                options.unanswered_attempt_counts
                if options.unanswered_attempt_counts is not None
                else default.unanswered_attempt_counts
            ),
        )


@dataclass(frozen=True, slots=True)
class PhoneTeam:
    """A team as the phone engine sees it: its lines, its members' extensions, its hours."""

    name: str
    lines: frozenset[str] = frozenset()
    """The lines, queues or DIDs whose calls are the team's (empty: every line)."""
    extensions: Mapping[str, str] = field(default_factory=dict)
    """Extension -> member name."""
    calendar: BusinessCalendar | None = None
    """The team's hours; calls outside them are flagged (None: nothing is flagged)."""
    options: PhoneOptions = PhoneOptions()

    def owns_line(self, line: str | None) -> bool:
        """Whether a call on ``line`` is the team's."""
        return not self.lines or line in self.lines

    def member(self, extension: str | None) -> str | None:
        """The member at ``extension``, if any."""
        return self.extensions.get(extension) if extension is not None else None


@dataclass(slots=True)
class _Missed:
    """An item while the calls are walked; frozen into an :class:`AwaitingItem` after."""

    call: CallEvent
    owner: str | None
    outside_hours: bool
    attempts: int = 1
    response: Response | None = None

    def freeze(self, team: str) -> AwaitingItem:
        """The finished item."""
        return AwaitingItem(
            team=team,
            channel=Channel.PHONE,
            key=self.call.external_id,
            conversation=self.call.external_id,
            customer=self.call.caller,
            received_at=self.call.started_at,
            response=self.response,
            owner=self.owner,
            attempts=self.attempts,
            outside_hours=self.outside_hours,
        )


def _order(call: CallEvent) -> tuple[datetime, str, str]:
    return (call.started_at, call.source, call.external_id)


def build_phone_awaiting(calls: Iterable[CallEvent], team: PhoneTeam) -> EngineResult:
    """The team's awaiting items from its calls, and why every other call opened none."""
    items: list[_Missed] = []
    waiting: dict[str, _Missed] = {}  # customer number -> the item it waits on
    last_member: dict[str, str] = {}  # customer number -> the member who last spoke to or called them
    unopened: list[Unopened] = []
    for call in sorted(calls, key=_order):
        if call.direction is CallDirection.INTERNAL:
            unopened.append(Unopened(call, "internal"))
        elif call.direction is CallDirection.OUTBOUND:
            unopened.append(Unopened(call, _outbound(call, team, waiting, last_member)))
        elif not team.owns_line(call.line):
            unopened.append(Unopened(call, "other_line"))
        elif call.answered:
            member = team.member(call.answered_by)
            _close(waiting, call.caller, call, member)
            if member is not None:
                last_member[call.caller] = member
            unopened.append(Unopened(call, "answered"))
        elif call.caller == ANONYMOUS:
            unopened.append(Unopened(call, "anonymous"))
        elif call.wait_seconds < team.options.short_abandon.total_seconds():
            unopened.append(Unopened(call, "short_abandon"))
        elif call.caller in waiting:
            waiting[call.caller].attempts += 1
            unopened.append(Unopened(call, "follow_up"))
        else:
            missed = _Missed(
                call,
                owner=_reached(call, team) or last_member.get(call.caller),
                outside_hours=team.calendar is not None and not team.calendar.is_open(call.started_at),
            )
            items.append(missed)
            waiting[call.caller] = missed
    return EngineResult([item.freeze(team.name) for item in items], unopened)


def _outbound(
    call: CallEvent, team: PhoneTeam, waiting: dict[str, _Missed], last_member: dict[str, str]
) -> str:
    """Note a call to a customer; returns ``callback`` when it answered a missed call, else ``outbound``."""
    member = team.member(call.caller)
    if member is not None:
        last_member[call.callee] = member
    if call.callee in waiting and (call.answered or team.options.unanswered_attempt_counts):
        _close(waiting, call.callee, call, member)
        return "callback"
    return "outbound"


def _close(waiting: dict[str, _Missed], customer: str, call: CallEvent, responder: str | None) -> None:
    """Close the item ``customer`` waits on, if any, with ``call``."""
    missed = waiting.pop(customer, None)
    if missed is not None:
        missed.response = Response(call.started_at, call.external_id, responder)


def _reached(call: CallEvent, team: PhoneTeam) -> str | None:
    """The member whose extension the call was put straight through to: dialled, or the one phone it rang
    (a ring group or queue reaches the team, not a member)."""
    direct = team.member(call.callee)
    if direct is not None:
        return direct
    return team.member(call.rang[0]) if len(call.rang) == 1 else None
