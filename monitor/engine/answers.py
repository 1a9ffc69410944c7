"""Cross-channel answers: a call answers an email, an email answers a missed call (for linked contacts).

Pure. Runs after each channel's own engine, only for teams with ``cross_channel``. An item is answered by
the earliest response on either channel: its own channel's response, or, for a customer whose address
and number are linked in the contact directory,
- an email item: a call from the team to one of the customer's numbers (answered, or not when unanswered
  attempts count) or an answered call from one of them, after the email arrived;
- a phone item: a message from the team addressed to one of the customer's addresses, after the call.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from monitor.awaiting import AwaitingItem, Response
from monitor.contacts import ContactDirectory
from monitor.engine.email import message_key
from monitor.engine.phone import PhoneTeam
from monitor.engine.team import TeamContext
from monitor.events import CallDirection, CallEvent, Channel, MessageEvent

_Answers = dict[str, list[tuple[datetime, str, str | None]]]
"""Customer address or number -> time-ordered (when, response id, responder)."""


def answer_across_channels(
    items: Sequence[AwaitingItem],
    messages: Iterable[MessageEvent],
    calls: Iterable[CallEvent],
    team: TeamContext,
    phone_team: PhoneTeam,
    directory: ContactDirectory,
) -> list[AwaitingItem]:
    """``items`` with every earlier answer from the other channel applied (the same items otherwise)."""
    if not directory:
        return list(items)
    by_phone = _calls_answering(calls, phone_team)
    by_email = _mail_answering(messages, team)
    out = []
    for item in items:
        if item.channel is Channel.EMAIL:
            candidates = [
                a for phone in directory.phones_of(item.customer) for a in _after(by_phone, phone, item)
            ]
        else:
            candidates = [
                a for email in directory.emails_of(item.customer) for a in _after(by_email, email, item)
            ]
        out.append(_earliest(item, candidates))
    return out


def _calls_answering(calls: Iterable[CallEvent], team: PhoneTeam) -> _Answers:
    """Calls that answer a customer's number: the team calling it, or an answered call from it."""
    found: _Answers = defaultdict(list)
    for call in calls:
        if call.direction is CallDirection.OUTBOUND and (
            call.answered or team.options.unanswered_attempt_counts
        ):
            caller = call.caller
            found[call.callee].append((call.started_at, call.external_id, team.member(caller)))
        elif call.direction is CallDirection.INBOUND and call.answered and team.owns_line(call.line):
            found[call.caller].append((call.started_at, call.external_id, team.member(call.answered_by)))
    for answers in found.values():
        answers.sort()
    return found


def _mail_answering(messages: Iterable[MessageEvent], team: TeamContext) -> _Answers:
    """Human team messages, by every customer address they were sent to."""
    found: _Answers = defaultdict(list)
    for message in messages:
        sender = message.sender_addr if team.role(message.sender_addr) == "team" else message.from_addr
        if team.role(sender) != "team" or team.automated(message) or team.is_holding(message):
            continue
        for address in (*message.to_addrs, *message.cc_addrs):
            if team.role(address) == "customer":
                found[address].append((message.date, message_key(message), team.responder(message)))
    for answers in found.values():
        answers.sort()
    return found


def _after(answers: _Answers, customer: str, item: AwaitingItem) -> list[tuple[datetime, str, str | None]]:
    """The first answer to ``customer`` at or after the item arrived (a list of at most one)."""
    found = answers.get(customer, [])
    i = bisect.bisect_left(found, (item.received_at, ""))
    return found[i : i + 1]


def _earliest(item: AwaitingItem, candidates: list[tuple[datetime, str, str | None]]) -> AwaitingItem:
    if not candidates:
        return item
    at, response_id, responder = min(candidates, key=lambda c: c[0])
    if item.response is not None and item.response.at <= at:
        return item
    return replace(item, response=Response(at, response_id, responder), removed_at=None)
