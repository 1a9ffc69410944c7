"""CDR legs -> calls: legs grouped by linked id, with direction, whether a person answered, and who.

Pure. A call is answered only when a person answered it: a leg with a destination channel (a phone
picked up) whose last application is not one that answers for the PBX itself (IVR, queue, voicemail,
announcements; :data:`MACHINE_APPS`). A ring group writes one ``NO ANSWER`` row per phone it rang: those
rows share the call's linked id and make one call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.events import CallDirection, CallEvent
from monitor.telephony.layouts import CdrLeg
from monitor.telephony.numbers import DEFAULT_EXTENSION_DIGITS, NumberKind, Party, classify_number

MACHINE_APPS = (
    "AGI", "EAGI", "FastAGI", "AsyncAGI", "Queue", "Playback", "BackGround", "Background", "VoiceMail",
    "VoiceMailMain", "Read", "WaitExten", "Wait", "Answer", "Hangup", "Record", "MeetMe", "ConfBridge",
    "Echo", "SayDigits", "SayNumber", "Festival", "MusicOnHold", "Congestion", "Busy", "Directory",
)  # fmt: skip
"""Asterisk applications that answer a call without a person (their rows are ``ANSWERED`` too)."""

_PEER = re.compile(r"^[A-Za-z0-9_]+/(?P<peer>[^-@;/]+)")


@dataclass(frozen=True, slots=True)
class CallOptions:
    """How a source turns its legs into calls."""

    default_region: str | None = None
    """ISO 3166 region for outside numbers written without a country code."""
    extension_digits: int = DEFAULT_EXTENSION_DIGITS
    """Internal numbers have at most this many digits."""
    machine_apps: tuple[str, ...] = MACHINE_APPS
    """``lastapp`` values that answer without a person (compared without case)."""

    outside_prefix: str = ""
    """The digits dialled for an outside line (``9``), removed from dialled numbers that carry them."""

    def party(self, raw: str) -> Party:
        """The party a logged number stands for."""
        return classify_number(raw, self.default_region, self.extension_digits)

    def dialled(self, raw: str) -> Party:
        """The party a dialled number stands for, without the outside-line prefix."""
        if self.outside_prefix and raw.startswith(self.outside_prefix):
            party = self.party(raw[len(self.outside_prefix) :])
            if party.kind is NumberKind.OUTSIDE:
                return party
        return self.party(raw)


def channel_peer(channel: str) -> str:
    """The device or peer of an Asterisk channel name: ``SIP/301-00000004`` -> ``301``,
    ``Local/105@from-internal-0a;1`` -> ``105``; a bare value (3CX's extension) as it is."""
    match = _PEER.match(channel)
    return match.group("peer") if match else channel


def group_legs(legs: Iterable[CdrLeg]) -> dict[str, list[CdrLeg]]:
    """Legs by the call they belong to (linked id, which layouts fill with the unique id without one)."""
    calls: dict[str, list[CdrLeg]] = {}
    for leg in legs:
        calls.setdefault(leg.linkedid, []).append(leg)
    return calls


def calls_from_legs(
    source: str, legs: Iterable[CdrLeg], options: CallOptions | None = None
) -> list[CallEvent]:
    """One :class:`CallEvent` per call, ordered by start time then id."""
    options = options or CallOptions()
    calls = [build_call(source, key, group, options) for key, group in group_legs(legs).items()]
    return sorted(calls, key=lambda call: (call.started_at, call.external_id))


def build_call(source: str, key: str, legs: Sequence[CdrLeg], options: CallOptions) -> CallEvent:
    """The call made of ``legs`` (all with the linked id ``key``)."""
    ordered = sorted(legs, key=lambda leg: (leg.start, leg.line_no))
    first = ordered[0]
    machines = {app.lower() for app in options.machine_apps}
    caller = options.party(first.src)
    callee = options.dialled(first.dst)
    rang: list[str] = []
    answering: CdrLeg | None = None
    for leg in ordered:
        peer = channel_peer(leg.dstchannel) if leg.dstchannel else ""
        if peer and options.party(peer).kind is NumberKind.EXTENSION and peer not in rang:
            rang.append(peer)
        person = (
            leg.disposition == "ANSWERED"
            and bool(leg.dstchannel)
            and (leg.lastapp.lower() not in machines or _queue_member(leg, peer))
        )
        if person and leg.billsec > 0 and answering is None:
            answering = leg
    direction = _direction(caller, callee, ordered, options)
    started = first.start
    ended = max(leg.end for leg in ordered)
    if answering is not None and answering.answer is not None:
        wait = (answering.answer - started).total_seconds()
    else:
        wait = (ended - started).total_seconds()
    answered_by = channel_peer(answering.dstchannel) if answering is not None else None
    return CallEvent(
        source=source,
        external_id=key,
        started_at=started,
        direction=direction,
        caller=caller.number,
        callee=_callee(callee, ordered, options).number,
        answered=answering is not None,
        answered_by=answered_by if direction is not CallDirection.OUTBOUND else None,
        line=_line(ordered),
        wait_seconds=max(wait, 0.0),
        talk_seconds=answering.billsec if answering is not None else 0.0,
        legs=len(ordered),
        rang=tuple(rang),
    )


def _queue_member(leg: CdrLeg, peer: str) -> bool:
    """A queue row whose destination is a member's phone: the member picked up (the queue itself answering
    leaves no destination, and a voicemail box is a named Local channel, not an extension number)."""
    return leg.lastapp.lower() == "queue" and peer.isdigit()


def _direction(caller: Party, callee: Party, legs: Sequence[CdrLeg], options: CallOptions) -> CallDirection:
    """Inbound from an outside (or withheld) caller; outbound to an outside number; internal otherwise."""
    if caller.is_outside:
        return CallDirection.INBOUND
    if callee.kind is NumberKind.OUTSIDE:
        return CallDirection.OUTBOUND
    if any(options.dialled(leg.dst).kind is NumberKind.OUTSIDE for leg in legs):
        return CallDirection.OUTBOUND
    return CallDirection.INTERNAL


def _callee(callee: Party, legs: Sequence[CdrLeg], options: CallOptions) -> Party:
    """The dialled party; for a call that reached outside through a later leg, that outside number."""
    if callee.kind is NumberKind.OUTSIDE:
        return callee
    for leg in legs:
        party = options.dialled(leg.dst)
        if party.kind is NumberKind.OUTSIDE:
            return party
    return callee


def _line(legs: Sequence[CdrLeg]) -> str | None:
    """The line the call came in on: the DID when logged, else the queue it waited in, else the context."""
    for leg in legs:
        if leg.did:
            return leg.did
    for leg in legs:
        if leg.lastapp.lower() == "queue" and leg.lastdata:
            return leg.lastdata.split(",")[0].strip()
    return legs[0].dcontext or None
