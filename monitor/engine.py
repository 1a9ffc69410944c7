"""Messages -> conversations -> awaiting items: who waits for the team, since when, answered by whom.

Pure: the same messages always give the same items, in any order they arrived.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.events import MessageEvent
from monitor.mail.classify import matches_sender_pattern
from monitor.mail.preview import is_closing_thanks, matches_phrase
from monitor.mail.subject import normalized_subject

EMAIL = "email"


@dataclass(frozen=True, slots=True)
class TeamContext:
    """What the engine must know about a team to tell customers from colleagues."""

    name: str
    addresses: frozenset[str] = frozenset()
    members: Mapping[str, str] = field(default_factory=dict)
    """Member address -> member name."""
    internal_domains: frozenset[str] = frozenset()
    no_reply_senders: tuple[str, ...] = ()
    """The team's own patterns of automated senders, on top of the classifier's defaults."""
    holding_phrases: tuple[str, ...] = ()
    """Phrases that make a team message an acknowledgment (a holding reply), not a full answer."""
    closing_thanks: bool = False
    """A customer's short "thanks!" after an answer opens no new item (needs the message's text)."""
    internal_forward_is_response: bool = False
    """A team member's forward of the conversation to a colleague counts as the team's response."""

    def is_holding(self, message: MessageEvent) -> bool:
        """Whether a team message is an acknowledgment rather than an answer."""
        if message.holding_marker:
            return True
        return bool(self.holding_phrases) and matches_phrase(
            f"{message.subject} {message.preview}", self.holding_phrases
        )

    def automated(self, message: MessageEvent) -> str | None:
        """Why ``message`` is automated (the source's verdict, else the team's no-reply patterns)."""
        if message.automated:
            return message.automated
        if (
            self.no_reply_senders
            and message.from_addr
            and matches_sender_pattern(message.from_addr, self.no_reply_senders)
        ):
            return "no_reply_sender"
        return None

    def role(self, address: str | None) -> str:
        """``team``, ``internal`` or ``customer`` for one address (``unknown`` when missing)."""
        if not address:
            return "unknown"
        if address in self.addresses or address in self.members:
            return "team"
        domain = address.rpartition("@")[2]
        for internal in self.internal_domains:
            if domain == internal or domain.endswith("." + internal):
                return "internal"
        return "customer"

    def responder(self, message: MessageEvent) -> str | None:
        """The member (or team address) that sent ``message``; Sender wins for "on behalf of" mail."""
        for address in (message.sender_addr, message.from_addr):
            if address and address in self.members:
                return self.members[address]
        if message.from_addr in self.addresses:
            return message.from_addr
        return None


@dataclass(slots=True)
class AwaitingItem:
    """One customer contact waiting for the team (open while ``responded_at`` is None)."""

    team: str
    channel: str
    key: str
    """The opening message's Message-ID (its source id when it has none)."""
    conversation: str
    customer: str
    received_at: datetime
    responded_at: datetime | None = None
    response_id: str | None = None
    responder: str | None = None
    acknowledged_at: datetime | None = None
    addresses: frozenset[str] = frozenset()
    """Every address the customer wrote from or asked replies to (From and Reply-To)."""


@dataclass(frozen=True, slots=True)
class Unopened:
    """A message that opened no awaiting item, and why."""

    message: MessageEvent
    reason: str
    """``automated:<reason>``, ``internal``, ``outbound``, ``internal_forward``, ``duplicate``,
    ``follow_up``, ``closing_thanks``, ``response``, ``acknowledgment``, ``no_sender``."""


@dataclass(slots=True)
class EngineResult:
    """The awaiting items of a set of messages, and what happened to every other message."""

    items: list[AwaitingItem] = field(default_factory=list)
    unopened: list[Unopened] = field(default_factory=list)


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


def _order(message: MessageEvent) -> tuple[datetime, int, str]:
    # Inbound before outbound at the same second: a reply cannot precede what it answers.
    return (message.date, 0 if message.folder != "sent" else 1, message_key(message))


SUBJECT_WINDOW = timedelta(days=14)
"""How far apart two messages may be for the subject fallback to join them."""


def thread(messages: Iterable[MessageEvent], team: TeamContext | None = None) -> dict[str, str]:
    """Message key -> conversation key.

    In-Reply-To first, and References only where they agree with it (their last entry is the
    In-Reply-To parent) or stand in for it (RFC 5322 §3.6.4: a client that drops In-Reply-To still lists
    the parent last); the source's own thread id (Gmail X-GM-THRID, Outlook Thread-Index) groups too.
    A message with none of these joins an earlier conversation only with the same normalized subject,
    the same customer and within :data:`SUBJECT_WINDOW`: never merging unrelated customers.
    """
    threads = _Threads()
    ordered = sorted(messages, key=_order)
    keys = []
    by_subject: dict[tuple[str, str], tuple[str, datetime]] = {}
    for message in ordered:
        key = message_key(message)
        keys.append(key)
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
        if team is None:
            continue
        subject = normalized_subject(message.subject)
        if not subject:
            continue
        counterparts = _counterparts(message, team)
        if not (parent or refs or known_thread):
            for address in counterparts:
                earlier = by_subject.get((subject, address))
                if earlier is not None and message.date - earlier[1] <= SUBJECT_WINDOW:
                    threads.union(key, earlier[0])
                    break
        for address in counterparts:
            by_subject[(subject, address)] = (key, message.date)
    return {key: threads.find(key) for key in keys}


def _counterparts(message: MessageEvent, team: TeamContext) -> tuple[str, ...]:
    """The customer addresses a message was exchanged with (its sender, or its customer recipients)."""
    if team.role(message.from_addr) == "customer":
        return tuple(a for a in (*message.reply_to, message.from_addr) if a)
    return tuple(a for a in (*message.to_addrs, *message.cc_addrs) if team.role(a) == "customer")


def build_awaiting(messages: Iterable[MessageEvent], team: TeamContext) -> EngineResult:
    """Turn a team's messages into awaiting items (next-reply semantics) and reasons for the rest."""
    result = EngineResult()
    unique: list[MessageEvent] = []
    seen: set[str] = set()
    for message in sorted(messages, key=_order):
        if message.message_id is not None:
            if message.message_id in seen:
                result.unopened.append(Unopened(message, "duplicate"))
                continue
            seen.add(message.message_id)
        unique.append(message)

    conversations = thread(unique, team)
    by_conversation: dict[str, list[MessageEvent]] = defaultdict(list)
    for message in unique:
        by_conversation[conversations[message_key(message)]].append(message)

    for conversation, members in by_conversation.items():
        _walk(conversation, members, team, result)
    result.items.sort(key=lambda item: (item.received_at, item.key))
    return result


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


def _walk(conversation: str, messages: list[MessageEvent], team: TeamContext, result: EngineResult) -> None:
    """Walk one conversation in time order, opening and closing items per customer."""
    open_items: dict[str, AwaitingItem] = {}
    answered: set[str] = set()
    written_by: dict[str, str] = {}
    """Message key -> the customer who wrote it, for replies that go to a list instead of the customer."""
    for message in messages:  # already in time order
        automated = team.automated(message)
        sender = message.sender_addr if team.role(message.sender_addr) == "team" else message.from_addr
        role = team.role(sender)
        if automated and not (automated == "no_reply_sender" and role == "customer"):
            result.unopened.append(Unopened(message, f"automated:{automated}"))
            continue
        if role == "team":
            reason = _respond(message, team, open_items, answered, written_by)
            result.unopened.append(Unopened(message, reason))
            continue
        if role == "internal":
            result.unopened.append(Unopened(message, "internal"))
            continue
        if role == "unknown":
            result.unopened.append(Unopened(message, "no_sender"))
            continue
        found = _customer(message, team, automated)
        if found is None:
            result.unopened.append(Unopened(message, f"automated:{automated}"))
            continue
        customer, addresses = found
        written_by[message_key(message)] = customer
        if customer in open_items:
            open_items[customer].addresses |= addresses
            result.unopened.append(Unopened(message, "follow_up"))
            continue
        if team.closing_thanks and customer in answered and is_closing_thanks(message.preview):
            result.unopened.append(Unopened(message, "closing_thanks"))
            continue
        item = AwaitingItem(
            team=team.name,
            channel=EMAIL,
            key=message_key(message),
            conversation=conversation,
            customer=customer,
            received_at=message.date,
            addresses=addresses,
        )
        open_items[customer] = item
        result.items.append(item)


def _respond(
    message: MessageEvent,
    team: TeamContext,
    open_items: dict[str, AwaitingItem],
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
        item.responded_at = message.date
        item.response_id = message_key(message)
        item.responder = team.responder(message)
        answered.add(customer)
        del open_items[customer]
    if not touched:
        if to_colleagues_only:
            return "internal_forward" if open_items else "internal"
        return "outbound"
    return "acknowledgment" if holding else "response"
