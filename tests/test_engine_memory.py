"""The engine's memory-saving structures give the same conversations and items as the plain ones.

The subject fallback forgets (subject, customer) pairs older than its window, duplicates are grouped without
a list per message and equal address sets are shared: checked on a randomized mailbox full of reused
subjects, customers, copies and archive copies against a plain reference.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from monitor.engine import TeamContext, build_awaiting
from monitor.engine.email import (
    SUBJECT_WINDOW,
    _counterparts,
    _Threads,
    message_key,
    message_order,
    thread,
    unique_copies,
)
from monitor.events import MessageEvent
from monitor.mail.subject import normalized_subject

TEAM = TeamContext(
    name="support",
    addresses=frozenset({"support@example.org"}),
    members={"ann@example.org": "Ann", "bob@example.org": "Bob"},
    internal_domains=frozenset({"example.org"}),
)
T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def mailbox(seed: int, count: int = 1_500) -> list[MessageEvent]:
    rng = random.Random(seed)
    out: list[MessageEvent] = []
    for n in range(count):
        at = T0 + timedelta(minutes=rng.randrange(60 * 24 * 60))
        customer = f"c{rng.randrange(40)}@customer.example"
        subject = (
            rng.choice(["Order", "Re: Order", "Invoice", "help", "AW: Help", ""]) + f" {rng.randrange(4)}"
        )
        earlier = rng.choice(out) if out and rng.random() < 0.3 else None
        parent = earlier.message_id if earlier is not None and rng.random() < 0.5 else None
        folder = rng.choice(["inbox", "inbox", "sent", "archive:old"])
        sent = folder == "sent"
        message_id = rng.choice(out).message_id if out and rng.random() < 0.05 else f"m{n}@x"
        out.append(
            MessageEvent(
                source=rng.choice(["a", "b"]),
                folder=folder,
                external_id=f"{folder}/{n}",
                message_id=None if rng.random() < 0.03 else message_id,
                date=at,
                from_addr=rng.choice(["ann@example.org", "bob@example.org"]) if sent else customer,
                reply_to=(f"alias{rng.randrange(3)}@customer.example",) if rng.random() < 0.1 else (),
                to_addrs=(customer,) if sent else ("support@example.org",),
                subject=subject,
                in_reply_to=parent,
                references=(parent,) if parent and rng.random() < 0.5 else (),
                thread_id=f"t{rng.randrange(30)}" if rng.random() < 0.1 else None,
                removed_at=at + timedelta(days=1) if rng.random() < 0.1 else None,
            )
        )
    return out


def reference_thread(messages: list[MessageEvent], team: TeamContext) -> dict[str, str]:
    """:func:`thread` as first written: every (subject, customer) pair ever seen is kept."""
    threads = _Threads()
    keys = []
    seen: dict[tuple[str, str], tuple[str, datetime]] = {}
    for message in sorted(messages, key=message_order):
        key = message_key(message)
        keys.append(key)
        threads.find(key)
        parent, refs = message.in_reply_to, message.references
        if parent:
            threads.union(key, parent)
            if refs and refs[-1] == parent:
                for ancestor in refs:
                    threads.union(key, ancestor)
        elif refs:
            for ancestor in refs:
                threads.union(key, ancestor)
        known = False
        if message.thread_id:
            node = f"thread:{message.source}:{message.thread_id}"
            known = node in threads.parent
            threads.union(key, node)
        subject = normalized_subject(message.subject)
        if not subject:
            continue
        counterparts = _counterparts(message, team)
        if not (parent or refs or known):
            for address in counterparts:
                earlier = seen.get((subject, address))
                if earlier is not None and message.date - earlier[1] <= SUBJECT_WINDOW:
                    threads.union(key, earlier[0])
                    break
        for address in counterparts:
            seen[(subject, address)] = (key, message.date)
    return {key: threads.find(key) for key in keys}


def test_subject_fallback_forgetting_old_pairs_threads_alike() -> None:
    for seed in range(8):
        unique = unique_copies(mailbox(seed), [])
        assert thread(unique, TEAM) == reference_thread(unique, TEAM)


def test_items_do_not_depend_on_arrival_order_and_share_address_sets() -> None:
    for seed in range(4):
        messages = mailbox(seed)
        first = build_awaiting(messages, TEAM)
        again = build_awaiting(list(reversed(messages)), TEAM)
        assert first.items == again.items
        assert sorted((u.event.external_id, u.reason) for u in first.unopened) == sorted(
            (u.event.external_id, u.reason) for u in again.unopened
        )
        assert sum(u.reason == "duplicate" for u in first.unopened) > 0
        by_value: dict[frozenset[str], frozenset[str]] = {}
        for item in first.items:
            assert by_value.setdefault(item.addresses, item.addresses) is item.addresses


def test_items_without_reasons_are_the_same() -> None:
    messages = mailbox(3)
    assert build_awaiting(messages, TEAM, reasons=False).items == build_awaiting(messages, TEAM).items
    assert build_awaiting(messages, TEAM, reasons=False).unopened == []
