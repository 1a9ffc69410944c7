"""What finding removed mail costs the store, on SQLite: N messages of one folder.

Times ``Store.save_poll`` for the initial ingest of N messages without and with the folder's listing
(``remaining``: a first read lists every folder), a poll that reports a few removals by listing the
folder (IMAP without QRESYNC, maildir, mbox), the same removals named directly (QRESYNC ``VANISHED``,
Graph, EWS), and a quiet poll (nothing listed, nothing removed). Median of ``--runs``.

Run: uv run python benchmarks/removal_bench.py [--messages 10000] [--removed 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.events import MessageEvent
from monitor.sources.base import PollResult
from monitor.store.db import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def events(count: int) -> list[MessageEvent]:
    return [
        MessageEvent(
            source="support",
            folder="inbox",
            external_id=f"INBOX/1/{uid}",
            message_id=f"m{uid}@customer.example",
            date=NOW - timedelta(minutes=uid),
            from_addr=f"c{uid % 500}@customer.example",
            to_addrs=("support@example.com",),
            subject=f"Order {uid}",
        )
        for uid in range(1, count + 1)
    ]


def timed(
    runs: int, setup: Callable[[Store], PollResult | None], step: Callable[[Store, PollResult], object]
) -> float:
    """Median seconds of ``step`` on a fresh store prepared by ``setup`` (which returns the poll to save)."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as folder:
            store = Store.open(f"sqlite:///{Path(folder) / 'bench.db'}")
            store.upgrade()
            poll = setup(store)
            assert poll is not None
            start = time.perf_counter()
            step(store, poll)
            times.append(time.perf_counter() - start)
            store.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--removed", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    mail = events(args.messages)
    ids = frozenset(m.external_id for m in mail)
    gone = [m.external_id for m in mail[: args.removed]]

    def save(store: Store, poll: PollResult) -> object:
        return store.save_poll("support", poll, NOW)

    def stored(store: Store) -> None:
        store.save_poll("support", PollResult(messages=mail, cursor={"n": 1}), NOW)

    def initial(listed: bool) -> Callable[[Store], PollResult]:
        return lambda _store: PollResult(
            messages=mail, cursor={"n": 1}, remaining={"inbox": ids} if listed else {}
        )

    def then(poll: PollResult) -> Callable[[Store], PollResult]:
        def setup(store: Store) -> PollResult:
            stored(store)
            return poll

        return setup

    n, k = f"{args.messages:,}", args.removed
    print(f"initial ingest of {n} messages: {timed(args.runs, initial(False), save) * 1000:.0f} ms")
    print(
        f"initial ingest of {n} messages with the folder's listing: "
        f"{timed(args.runs, initial(True), save) * 1000:.0f} ms"
    )
    listing = PollResult(cursor={"n": 2}, remaining={"inbox": ids - set(gone)})
    print(f"{k} removed, found by listing {n}: {timed(args.runs, then(listing), save) * 1000:.1f} ms")
    named = PollResult(cursor={"n": 2}, removed=gone)
    print(f"{k} removed, named by the server: {timed(args.runs, then(named), save) * 1000:.1f} ms")
    quiet = PollResult(cursor={"n": 1})
    print(
        f"quiet poll (nothing listed, nothing removed): {timed(args.runs, then(quiet), save) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
