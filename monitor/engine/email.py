"""Messages -> conversations -> awaiting items: who waits for the team, since when, answered by whom.

Pure: the same messages always give the same items, in any order they arrived.
"""

from __future__ import annotations

import bisect
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.awaiting import AwaitingItem, EngineResult, Response, Unopened
from monitor.engine.team import TeamContext
from monitor.events import Channel, MessageEvent, folder_role, is_archive
from monitor.mail.preview import is_closing_thanks
from monitor.mail.subject import normalized_subject


@dataclass(slots=True)
class _Pending:
    """An awaiting item while its conversation is walked; frozen into an :class:`AwaitingItem` after."""

    key: str
    conversation: str
    customer: str
    received_at: datetime
    addresses: frozenset[str]
    reached: str | None = None
    """The member whose own address the customer wrote to."""
    response: Response | None = None
    acknowledged_at: datetime | None = None
    removed_at: datetime | None = None
    """When the last of its customer messages was removed (meaningful only when ``live`` is False)."""
    live: bool = True
    """Whether any of its customer messages (the opening one and the follow-ups) is still in a folder."""

    def note(self, message: MessageEvent) -> None:
        """Record one customer message of the item: a live one keeps it open, removed ones may close it."""
        if message.removed_at is None:
            self.live = True
        elif self.removed_at is None or message.removed_at > self.removed_at:
            self.removed_at = message.removed_at

    def closed_by_removal(self, at: datetime) -> bool:
        """Whether the item had closed as removed by ``at``: unanswered, all its messages removed by then."""
        removed = self.removed_at
        return not self.live and self.response is None and removed is not None and removed <= at

    def freeze(self, team: str, owner: str | None) -> AwaitingItem:
        """The finished item."""
        return AwaitingItem(
            team=team,
            channel=Channel.EMAIL,
            key=self.key,
            conversation=self.conversation,
            customer=self.customer,
            received_at=self.received_at,
            response=self.response,
            acknowledged_at=self.acknowledged_at,
            addresses=self.addresses,
            owner=owner,
            removed_at=self.removed_at if not self.live and self.response is None else None,
        )


class _Threads:
    """Union-find over message ids: one root per conversation."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        root = self.parent.setdefault(node, node)
        while self.parent[root] != root:
            root = self.parent[root]
        while node != root:  # path compression, iteratively (threads can be thousands deep)
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # Keep the smaller id as root so the conversation key does not depend on arrival order.
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


def message_key(message: MessageEvent) -> str:
    """The id a message is known by: its Message-ID, else its source id."""
    return message.message_id or f"{message.source}:{message.external_id}"


def message_order(message: MessageEvent) -> tuple[datetime, int, str, str, str]:
    """The order the engine reads messages in: by date, inbound before outbound at the same second (a reply
    cannot precede what it answers), then by key, then by where it is stored (a total order: the items never
    depend on the order the messages arrived in)."""
    return (
        message.date,
        0 if folder_role(message.folder) != "sent" else 1,
        message_key(message),
        message.source,
        message.external_id,
    )


SUBJECT_WINDOW = timedelta(days=14)
"""How far apart two messages may be for the subject fallback to join them."""


def thread(messages: Iterable[MessageEvent], team: TeamContext | None = None) -> dict[str, str]:
    """Message key -> conversation key (see :class:`Threader`)."""
    threader = Threader(team)
    keys = [threader.add(message) for message in sorted(messages, key=message_order)]
    return {key: threader.root(key) for key in keys}


class Threader:
    """Joins messages into conversations, fed one at a time in :func:`message_order` (a caller that holds
    them all sorts them first, :func:`thread`; a rebuild too large to hold feeds them from a sorted read).

    In-Reply-To first, and References only where they agree with it (their last entry is the
    In-Reply-To parent) or stand in for it (RFC 5322 §3.6.4: a client that drops In-Reply-To still lists
    the parent last); the source's own thread id (Gmail X-GM-THRID, Outlook Thread-Index) groups too.
    A message with none of these joins an earlier conversation only with the same normalized subject,
    the same customer and within :data:`SUBJECT_WINDOW`: never merging unrelated customers.
    """

    def __init__(self, team: TeamContext | None = None) -> None:
        self._team = team
        self._threads = _Threads()
        self._by_subject: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._noted: deque[tuple[datetime, tuple[str, str]]] = deque()
        """When each ``_by_subject`` entry was noted, oldest first: an entry older than :data:`SUBJECT_WINDOW`
        joins nothing later (messages come in time order) and is dropped, so only a window's worth is
        held."""

    def root(self, key: str) -> str:
        """The conversation key of the message known by ``key``, given every message added so far."""
        return self._threads.find(key)

    def add(self, message: MessageEvent) -> str:
        """Thread one more message (none earlier in :func:`message_order` may follow); returns its key."""
        threads, by_subject, noted = self._threads, self._by_subject, self._noted
        while noted and message.date - noted[0][0] > SUBJECT_WINDOW:
            at, stale = noted.popleft()
            if by_subject.get(stale, (None, None))[1] == at:
                del by_subject[stale]
        key = message_key(message)
        threads.find(key)
        parent = message.in_reply_to
        refs = message.references
        if parent:
            threads.union(key, parent)
            if refs and refs[-1] == parent:
                for ancestor in refs:
                    threads.union(key, ancestor)
        elif refs:
            for ancestor in refs:  # no In-Reply-To to disagree with: every entry is an ancestor
                threads.union(key, ancestor)
        # A thread id shared with an earlier message links; a new one (the first message of an Outlook
        # conversation, or a client that starts one for every reply) says nothing about a parent.
        known_thread = False
        if message.thread_id:
            thread_node = f"thread:{message.source}:{message.thread_id}"
            known_thread = thread_node in threads.parent
            threads.union(key, thread_node)
        team = self._team
        if team is None:
            return key
        subject = normalized_subject(message.subject)
        if not subject:
            return key
        counterparts = _counterparts(message, team)
        if not (parent or refs or known_thread):
            for address in counterparts:
                earlier = by_subject.get((subject, address))
                if earlier is not None and message.date - earlier[1] <= SUBJECT_WINDOW:
                    threads.union(key, earlier[0])
                    break
        for address in counterparts:
            entry = (subject, address)
            by_subject[entry] = (key, message.date)
            noted.append((message.date, entry))
        return key


def _counterparts(message: MessageEvent, team: TeamContext) -> tuple[str, ...]:
    """The customer addresses a message was exchanged with (its sender, or its customer recipients)."""
    if team.role(message.from_addr) == "customer":
        return tuple(a for a in (*message.reply_to, message.from_addr) if a)
    return tuple(a for a in (*message.to_addrs, *message.cc_addrs) if team.role(a) == "customer")


class Dropped(list[Unopened]):
    """Where the reasons go when the caller keeps only the items: nowhere (one per message otherwise)."""

    def append(self, _: Unopened, /) -> None:
        """Drop the reason."""

    def extend(self, _: Iterable[Unopened], /) -> None:
        """Drop the reasons."""


def build_awaiting(
    messages: Iterable[MessageEvent], team: TeamContext, *, reasons: bool = True
) -> EngineResult:
    """Turn a team's messages into awaiting items (next-reply semantics) and reasons for the rest (none
    without ``reasons``: a rebuild keeps only the items)."""
    result = EngineResult([], [] if reasons else Dropped())
    unique = unique_copies(messages, result.unopened)
    conversations = thread(unique, team)
    by_conversation: dict[str, list[MessageEvent]] = defaultdict(list)
    for message in unique:
        by_conversation[conversations[message_key(message)]].append(message)
    walker = Walker(team, result.unopened)
    for conversation, members in by_conversation.items():
        walker.walk(conversation, members)
    del unique, conversations, by_conversation  # not held while the items are frozen
    result.items = walker.finish()
    return result


class Walker:
    """Walks conversations one at a time (each in :func:`message_order`) and gathers their items."""

    def __init__(self, team: TeamContext, unopened: list[Unopened]) -> None:
        self.team = team
        self.unopened = unopened
        self._pending: list[_Pending] = []
        self._address_sets: dict[frozenset[str], frozenset[str]] = {}
        """One object for equal address sets: a customer's items share theirs."""

    def walk(self, conversation: str, messages: list[MessageEvent]) -> None:
        """Walk every message of one conversation, in time order."""
        _walk(conversation, messages, self.team, self._pending, self.unopened, self._address_sets)

    def finish(self) -> list[AwaitingItem]:
        """The items of every conversation walked, in order of arrival, with their owners."""
        pending, self._pending = self._pending, []
        self._address_sets = {}
        pending.sort(key=lambda item: (item.received_at, item.key))
        return _with_owners(pending, self.team)


def unique_copies(messages: Iterable[MessageEvent], unopened: list[Unopened]) -> list[MessageEvent]:
    """One message per Message-ID, in time order; the other copies are ``duplicate``.

    A message held in several folders (moved between two watched folders, or filed in an archive folder)
    is one message: the copy kept is the first one outside archive folders, and it counts as removed only
    when every copy was removed. A message found in archive folders only opens and answers nothing
    (``archived``).
    """
    # One copy is held as itself, several in a list: most messages have one, and a list each would be
    # the largest structure of a rebuild.
    copies: dict[str, MessageEvent | list[MessageEvent]] = {}
    unique: list[MessageEvent] = []
    for message in messages:
        if message.message_id is None:
            unique.append(message)
            continue
        held = copies.get(message.message_id)
        if held is None:
            copies[message.message_id] = message
        elif isinstance(held, list):
            held.append(message)
        else:
            copies[message.message_id] = [held, message]
    for held in copies.values():
        if not isinstance(held, list):
            unique.append(held)
            continue
        found = held
        found.sort(key=lambda m: (is_archive(m.folder), message_order(m)))
        first, others = found[0], found[1:]
        unopened.extend(Unopened(other, "duplicate") for other in others)
        if others:
            removed = [c.removed_at for c in found]
            last = None if None in removed else max(r for r in removed if r is not None)
            if last != first.removed_at:
                first = replace(first, removed_at=last)
        unique.append(first)
    kept = []
    for message in unique:
        if is_archive(message.folder):
            unopened.append(Unopened(message, "archived"))
        else:
            kept.append(message)
    kept.sort(key=message_order)
    return kept


def _with_owners(pending: list[_Pending], team: TeamContext) -> list[AwaitingItem]:
    """Freeze the items with their owner: the member the customer wrote to personally, else the member who
    last answered that customer before the item arrived, else None (the team)."""
    names = set(team.members.values())
    answers: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for item in pending:
        if item.response is not None and item.response.responder in names:
            answers[item.customer].append((item.response.at, item.response.responder))
    for found in answers.values():
        found.sort()
    out = []
    pending.reverse()
    while pending:  # each pending item goes as its frozen item comes
        item = pending.pop()
        owner = item.reached
        if owner is None:
            earlier = answers.get(item.customer, [])
            i = bisect.bisect_left(earlier, (item.received_at, "")) - 1
            owner = earlier[i][1] if i >= 0 else None
        out.append(item.freeze(team.name, owner))
    return out


def _customer(
    message: MessageEvent, team: TeamContext, automated: str | None
) -> tuple[str, frozenset[str]] | None:
    """Who waits for an inbound message, and every address an answer may go to; None when nobody does.

    The customer is the sender. Reply-To names the customer instead only when the sender is a machine
    writing for someone (a web form from a no-reply address): a personal Reply-To alias (TMDA's dated
    addresses) must not turn every message into a new customer, and a Reply-To that names an address the
    message was itself sent to is a mailing list, not a person.
    """
    sent_to = set(message.to_addrs) | set(message.cc_addrs)
    reply_to = [a for a in message.reply_to if a not in sent_to and team.role(a) == "customer"]
    if automated == "no_reply_sender" and reply_to:
        return reply_to[0], frozenset(reply_to)
    if automated or not message.from_addr:
        return None
    return message.from_addr, frozenset((message.from_addr, *reply_to))


def _walk(
    conversation: str,
    messages: list[MessageEvent],
    team: TeamContext,
    items: list[_Pending],
    unopened: list[Unopened],
    address_sets: dict[frozenset[str], frozenset[str]],
) -> None:
    """Walk one conversation in time order, opening and closing items per customer (``address_sets``: one
    object for equal address sets, a customer's items sharing theirs)."""
    open_items: dict[str, _Pending] = {}
    answered: set[str] = set()
    written_by: dict[str, str] = {}
    """Message key -> the customer who wrote it, for replies that go to a list instead of the customer."""
    for message in messages:  # already in time order
        automated = team.automated(message)
        sender = message.sender_addr if team.role(message.sender_addr) == "team" else message.from_addr
        role = team.role(sender)
        if automated and not (automated == "no_reply_sender" and role == "customer"):
            unopened.append(Unopened(message, f"automated:{automated}"))
            continue
        if role == "team":
            reason = _respond(message, team, open_items, answered, written_by)
            unopened.append(Unopened(message, reason))
            continue
        if role == "internal":
            unopened.append(Unopened(message, "internal"))
            continue
        if role == "unknown":
            unopened.append(Unopened(message, "no_sender"))
            continue
        found = _customer(message, team, automated)
        if found is None:
            unopened.append(Unopened(message, f"automated:{automated}"))
            continue
        customer, addresses = found
        addresses = address_sets.setdefault(addresses, addresses)
        written_by[message_key(message)] = customer
        earlier = open_items.get(customer)
        if earlier is not None and earlier.closed_by_removal(message.date):
            # Every message of the earlier item was removed before this one came: that item closed as
            # removed then, and this message opens a new one (it does not revive the old deadline).
            del open_items[customer]
        if customer in open_items:
            merged = open_items[customer].addresses | addresses
            open_items[customer].addresses = address_sets.setdefault(merged, merged)
            open_items[customer].note(message)
            unopened.append(Unopened(message, "follow_up"))
            continue
        if team.closing_thanks and customer in answered and is_closing_thanks(message.preview):
            unopened.append(Unopened(message, "closing_thanks"))
            continue
        item = _Pending(
            message_key(message),
            conversation,
            customer,
            message.date,
            addresses,
            team.member_reached(message),
            live=False,
        )
        item.note(message)
        open_items[customer] = item
        items.append(item)


def _respond(
    message: MessageEvent,
    team: TeamContext,
    open_items: dict[str, _Pending],
    answered: set[str],
    written_by: dict[str, str],
) -> str:
    """Close (or acknowledge) the open items this team message answers; returns what it was.

    A team message answers a customer when it is addressed to them, or when it replies to their message
    (In-Reply-To, else the last References entry) and is addressed to none of the conversation's
    customers but to someone outside the team, or to nobody in particular: on a mailing list or a shared
    ticket address the answer goes to the list, not the person. A reply addressed to one customer never
    answers another.
    Returns ``response`` when it answered someone, ``acknowledgment`` when it only acknowledged,
    ``internal_forward`` when it went to colleagues only, else ``outbound``.
    """
    recipients = set(message.to_addrs) | set(message.cc_addrs)
    holding = team.is_holding(message)
    to_colleagues_only = bool(recipients) and all(team.role(a) in ("internal", "team") for a in recipients)
    forward_answers = team.internal_forward_is_response and to_colleagues_only
    parent = message.in_reply_to or (message.references[-1] if message.references else None)
    # Addressed to one of the conversation's customers by name (not a list they asked replies to go to).
    to_a_customer = bool(recipients & set(written_by.values()))
    replied_to = written_by.get(parent) if parent and not to_colleagues_only and not to_a_customer else None
    touched = False
    for customer, item in list(open_items.items()):
        if not (recipients & item.addresses or forward_answers or customer == replied_to):
            continue
        touched = True
        if holding:
            if item.acknowledged_at is None:
                item.acknowledged_at = message.date
            continue
        item.response = Response(message.date, message_key(message), team.responder(message))
        answered.add(customer)
        del open_items[customer]
    if not touched:
        if to_colleagues_only:
            return "internal_forward" if open_items else "internal"
        return "outbound"
    return "acknowledgment" if holding else "response"
