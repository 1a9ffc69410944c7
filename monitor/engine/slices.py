"""The email engine over a window too large to hold: threads a stream, then walks conversations a slice at a
time.

:func:`monitor.engine.email.build_awaiting` holds every message of the window as an event while it threads and
walks. Over a store of hundreds of thousands of messages that is most of the daemon's memory, so a rebuild
reads the window twice instead: once in time order, threading each message and keeping only its row and its
key, and once more a slice of conversations at a time, walking each. The items are the same as
:func:`build_awaiting`'s for the same messages (tested side by side). A window of at most ``hold`` messages is
kept from the first read and not read again.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from monitor.awaiting import AwaitingItem
from monitor.engine.email import Dropped, Threader, Walker, message_order, unique_copies
from monitor.engine.team import TeamContext
from monitor.events import MessageEvent, is_archive

HOLD = 50_000
"""Messages a rebuild keeps from its first read; the messages of a larger window are read again."""
SLICE = 5_000
"""Messages read and walked at once in the second read."""

Row = tuple[int, MessageEvent]
"""A stored message: its row id and its event."""


class Window(Protocol):
    """The messages of a window, as the store reads them."""

    def count(self) -> int:
        """How many messages the window holds."""

    def in_date_order(self) -> Iterator[Row]:
        """Every message, oldest first (equal dates in no given order)."""

    def copies(self) -> list[Row]:
        """Every message whose Message-ID the window holds more than once."""

    def by_row(self, rows: Sequence[int]) -> Iterator[Row]:
        """The messages of ``rows``, in no given order."""


def build_awaiting_in_slices(
    window: Window, team: TeamContext, *, hold: int = HOLD, slice_size: int = SLICE
) -> list[AwaitingItem]:
    """The awaiting items of the window's messages (as ``build_awaiting(..., reasons=False).items``)."""
    copies = window.copies()
    # The copies of one message are decided together, as build_awaiting decides them: the copy kept
    # carries the removal of the last copy removed; each stands in its place in time among the others.
    row_of = {(event.source, event.external_id): row for row, event in copies}
    copied = {event.message_id for _, event in copies}
    kept = [(row_of[(e.source, e.external_id)], e) for e in unique_copies([e for _, e in copies], Dropped())]
    del copies, row_of
    singles = (
        (row, event)
        for row, event in window.in_date_order()
        if event.message_id not in copied and not is_archive(event.folder)
    )
    known = dict(kept)
    """Events not read again: the kept copies, and the whole window while it is no larger than ``hold``."""
    threader = Threader(team)
    rows = array("q")  # each message's row, in time order (an array: a list would hold an int object each)
    keys: list[str] = []
    holding = window.count() <= hold
    ordered = _in_order(singles)
    if kept:
        ordered = heapq.merge(ordered, kept, key=lambda pair: message_order(pair[1]))
    for row, event in ordered:
        keys.append(threader.add(event))
        rows.append(row)
        if holding:
            known[row] = event
    del kept
    # Each message's conversation by number (in order of each conversation's first message), then the rows
    # grouped by conversation, each group in time order (a counting sort: two arrays, no list per group).
    numbers: dict[str, int] = {}
    conversation_of = array("q", (numbers.setdefault(threader.root(key), len(numbers)) for key in keys))
    names = list(numbers)
    del threader, keys, numbers
    ends = array("q", bytes(8 * (len(names) + 1)))
    for number in conversation_of:
        ends[number + 1] += 1
    for number in range(len(names)):
        ends[number + 1] += ends[number]
    grouped = array("q", bytes(8 * len(rows)))
    fill = array("q", ends)
    for row, number in zip(rows, conversation_of, strict=True):
        grouped[fill[number]] = row
        fill[number] += 1
    del rows, conversation_of, fill

    walker = Walker(team, Dropped())
    first = 0
    for last in range(1, len(names) + 1):
        if ends[last] - ends[first] >= slice_size or last == len(names):
            _walk_part(window, walker, names[first:last], grouped, ends[first : last + 1], known)
            first = last
    return walker.finish()


def _walk_part(
    window: Window,
    walker: Walker,
    names: list[str],
    grouped: array[int],
    ends: array[int],
    known: dict[int, MessageEvent],
) -> None:
    """Read the messages of a few conversations (those not known already) and walk each conversation:
    conversation ``names[n]`` is the rows ``grouped[ends[n]:ends[n + 1]]``, in time order as they were
    threaded (each conversation's walk order)."""
    rows = grouped[ends[0] : ends[-1]]
    missing = [row for row in rows if row not in known]
    read = dict(window.by_row(missing)) if missing else {}
    if read:
        read.update((row, known[row]) for row in rows if row in known)
    else:
        read = known
    for n, conversation in enumerate(names):
        walker.walk(conversation, [read[row] for row in grouped[ends[n] : ends[n + 1]]])


def _in_order(rows: Iterable[Row]) -> Iterator[Row]:
    """``rows`` (oldest first) in :func:`message_order`: the messages of one date sorted among themselves."""
    run: list[Row] = []
    for row in rows:
        if run and row[1].date != run[0][1].date:
            if row[1].date < run[0][1].date:
                raise RuntimeError("the store returned messages out of date order")
            run.sort(key=lambda pair: message_order(pair[1]))
            yield from run
            run = []
        run.append(row)
    run.sort(key=lambda pair: message_order(pair[1]))
    yield from run
