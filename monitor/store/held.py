"""A source's first sync, held from its save until the next evaluation: the rebuild reads it from memory.

A first start reads every message of a mailbox, stores them, and the evaluation that follows reads them all
back from the store to build the awaiting items: at 50,000 messages the read-back is about a third of a
second of the time until the first verdict, spent on events the daemon held a moment before. So a save that
wrote a source's messages into an empty store keeps them (at most :data:`HELD_MAX`), and a rebuild whose
every mail source is held reads its window from them (:class:`HeldWindow`, the same events in the same order
as the store would give, tested side by side).

What is held is exactly what the store holds: it is dropped before any other write of the source's messages
begins (a rebuild that meets the store changed after its engine stamp was read never finds the old events
held), and let go after the evaluation that follows (:meth:`HeldMessages.release`), so it outlives none.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime

from monitor.events import MessageEvent

HELD_MAX = 50_000
"""Messages held at most (over every held source): as many as a rebuild keeps from its first read
(:data:`monitor.engine.slices.HOLD`); a larger first sync is read back from the store in slices."""

Row = tuple[int, MessageEvent]
_WHITE_SPACE = re.compile(r"\s")
"""What a split at white space cuts at; an empty value, which a split loses, is looked for apart."""


class HeldMessages:
    """The messages each source stored on its first sync, until the next evaluation ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, list[MessageEvent]] = {}
        self._kept_at: dict[str, int] = {}
        self._keeps = 0

    def drop(self, source: str) -> None:
        """Forget ``source``'s messages: called before any write of them."""
        with self._lock:
            self._held.pop(source, None)

    def keep(self, source: str, messages: Sequence[MessageEvent]) -> None:
        """Hold ``messages``, just stored as every message of ``source`` (a first sync, nothing removed);
        not when they would exceed :data:`HELD_MAX` or two share an id (the store kept one of them)."""
        fits = len(messages) <= HELD_MAX and len({e.external_id for e in messages}) == len(messages)
        events = [as_stored(event) for event in messages] if fits else []
        with self._lock:
            held = sum(len(kept) for name, kept in self._held.items() if name != source)
            if not fits or held + len(events) > HELD_MAX:
                self._held.pop(source, None)
                return
            self._held[source] = events
            self._keeps += 1
            self._kept_at[source] = self._keeps

    def mark(self) -> int:
        """Where the keeps stand now: :meth:`release` with it lets go of what was held by then."""
        with self._lock:
            return self._keeps

    def window(self, sources: Sequence[str], since: datetime | None) -> HeldWindow | None:
        """The messages of ``sources`` dated at or after ``since`` when every one of them is held."""
        with self._lock:
            if not sources or any(source not in self._held for source in sources):
                return None
            held = [self._held[source] for source in dict.fromkeys(sources)]
        return HeldWindow([e for events in held for e in events if since is None or e.date >= since])

    def release(self, upto: int | None = None) -> None:
        """Let go of what was held at :meth:`mark` ``upto`` (an evaluation's start), or of everything: a
        first sync kept while an evaluation ran stays for the next one, which its poll asked for."""
        with self._lock:
            for source in list(self._held):
                if upto is None or self._kept_at.get(source, 0) <= upto:
                    del self._held[source]

    def __len__(self) -> int:
        with self._lock:
            return sum(len(events) for events in self._held.values())


def as_stored(event: MessageEvent) -> MessageEvent:
    """``event`` as the store gives it back: its lists are stored joined by spaces and split again, its
    flags too, and a message is stored as not removed (:func:`monitor.store.db.message_row`)."""
    parts = (*event.reply_to, *event.to_addrs, *event.cc_addrs, *event.references, *event.flags)
    if event.removed_at is None and "" not in parts and _WHITE_SPACE.search("".join(parts)) is None:
        return event  # nearly always: no value is empty or holds white space
    changed: dict[str, object] = {}
    for name in ("reply_to", "to_addrs", "cc_addrs", "references"):
        values: tuple[str, ...] = getattr(event, name)
        if values:
            split = tuple(" ".join(values).split())
            if split != values:
                changed[name] = split
    if event.flags:
        flags = frozenset(" ".join(event.flags).split())
        if flags != event.flags:
            changed["flags"] = flags
    if event.removed_at is not None:
        changed["removed_at"] = None
    return replace(event, **changed) if changed else event  # type: ignore[arg-type]


class HeldWindow:
    """A window of held messages, read as :class:`monitor.store.window.MessageWindow` reads the store: the
    same events, oldest first; row numbers are positions, not store rows."""

    def __init__(self, messages: list[MessageEvent]) -> None:
        self._messages = sorted(messages, key=_date)

    def __enter__(self) -> HeldWindow:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def count(self) -> int:
        """How many messages the window holds."""
        return len(self._messages)

    def in_date_order(self) -> Iterator[Row]:
        """(row, event) of every message, oldest first (equal dates in the order they were stored)."""
        return iter(enumerate(self._messages))

    def all(self) -> list[MessageEvent]:
        """Every message."""
        return list(self._messages)

    def copies(self) -> list[Row]:
        """(row, event) of every message whose Message-ID the window holds more than once."""
        seen: dict[str, int] = {}
        for event in self._messages:
            if event.message_id is not None:
                seen[event.message_id] = seen.get(event.message_id, 0) + 1
        rows = enumerate(self._messages)
        return [(row, e) for row, e in rows if e.message_id is not None and seen[e.message_id] > 1]

    def by_row(self, rows: Sequence[int]) -> Iterator[Row]:
        """(row, event) of the messages at ``rows``."""
        return ((row, self._messages[row]) for row in rows)


def _date(event: MessageEvent) -> datetime:
    return event.date
