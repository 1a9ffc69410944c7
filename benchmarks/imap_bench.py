"""IMAP source benchmarks against a real Dovecot: initial sync and no-change polls, each vs. raw imapclient.

Run: ``uv run python benchmarks/imap_bench.py`` (``--help`` for sizes). Targets: initial sync <= 1.5x a raw
fetch of the same header fields, with and without saving the result into a fresh SQLite store; a no-change
poll <= 1.3x raw STATUS of the same folders. The initial sync runs twice, with ``text_preview`` (the default)
and without it, and prints what the preview costs.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.sources.base import PollResult
from monitor.sources.imap import DEFAULT_BATCH_SIZE, ImapConfig, ImapSource
from monitor.store.db import Store
from tests.servers.dovecot import DovecotServer, Mailbox, running_dovecot

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Chloé",
    "Dmitri",
    "Eva",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemal",
    "Lena",
]
LAST_NAMES = [
    "Müller",
    "Smith",
    "Dubois",
    "Rossi",
    "Nowak",
    "Svensson",
    "García",
    "O'Brien",
    "Tanaka",
    "Novák",
]
DOMAINS = ["example.org", "mail.example.net", "kunde.example.de", "client.example.fr", "shop.example.co.uk"]
TOPICS = ["Order {n} not delivered", "Invoice {n}: wrong amount", "Cannot log in", "Refund for order {n}",
          "Question about contract {n}", "Address change", "Damaged parcel {n}", "Termin am Montag",
          "Réclamation commande {n}", "Your ticket #{n}"]  # fmt: skip


def raw_header_fetch(client: Any, header_items: Any, expected: int) -> float:
    """The raw baseline: imapclient fetching the same header items from INBOX and Sent, in the daemon's
    batch size, read-only; seconds taken."""
    began = time.perf_counter()
    total = 0
    for folder in ("INBOX", "Sent"):
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        for i in range(0, len(uids), DEFAULT_BATCH_SIZE):
            total += len(client.fetch(uids[i : i + DEFAULT_BATCH_SIZE], header_items))
        client.unselect_folder()
    assert total == expected, total
    return time.perf_counter() - began


def realistic_message(rng: random.Random, n: int, when: datetime, *, outbound: bool) -> bytes:
    """A message with the headers real mail carries (Received, DKIM, MIME); threads, lists, auto-replies."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    customer = f"{first.lower()}.{n}@{rng.choice(DOMAINS)}"
    topic = rng.choice(TOPICS).format(n=10_000 + n)
    team = "Support <support@example.com>"
    kind = rng.random()
    lines = [
        f"Received: from mx{n % 7}.example.com (mx{n % 7}.example.com [192.0.2.{n % 250}])"
        f" by imap.example.com with ESMTPS id {n:08x}; {when:%a, %d %b %Y %H:%M:%S} +0000",
        f"DKIM-Signature: v=1; a=rsa-sha256; d={customer.split('@')[1]}; s=s1; h=from:to:subject:date; "
        f"bh={'x' * 44}; b={'y' * 120}",
        f"Date: {when:%a, %d %b %Y %H:%M:%S} +0000",
        f"Message-ID: <{n}.{rng.getrandbits(40):x}@{'example.com' if outbound else customer.split('@')[1]}>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="b1"',
    ]
    if outbound:
        lines += [f"From: {team}", f'To: "{first} {last}" <{customer}>', f"Subject: Re: {topic}"]
        parent = f"<{n - 1}.q@{customer.split('@')[1]}>"
        lines += [f"In-Reply-To: {parent}", f"References: <{n - 3}.q@example.org> {parent}"]
    else:
        name = f"=?utf-8?q?{first}_{last}?=" if rng.random() < 0.3 else f'"{first} {last}"'
        lines += [f"From: {name} <{customer}>", "To: support@example.com", f"Subject: {topic}"]
        if rng.random() < 0.2:
            lines += ["Cc: Accounts <accounts@example.com>, sales@example.com"]
        if rng.random() < 0.3:
            lines += [
                f"In-Reply-To: <{n - 1}.r@example.com>",
                f"References: <{n - 2}.q@example.org> <{n - 1}.r@example.com>",
            ]
        if kind < 0.05:
            lines += ["Auto-Submitted: auto-replied", "X-Autoreply: yes"]
        elif kind < 0.15:
            lines += ["List-Unsubscribe: <mailto:unsubscribe@news.example.net>", "Precedence: bulk"]
            lines += ["Feedback-ID: 1234:news:example"]
    body = (
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n"
        + "Some text. " * 40
        + "\r\n--b1--\r\n"
    )
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def seen_or_not(rng: random.Random) -> list[str]:
    """Flags of a message most of which have been read."""
    return ["\\Seen"] if rng.random() < 0.7 else []


@contextmanager
def _server(server: DovecotServer | None) -> Iterator[DovecotServer]:
    if server is not None:
        yield server
    else:
        with running_dovecot() as started:
            yield started


def _source(mailbox: Mailbox, folders: dict[str, Any], text_preview: bool = True) -> ImapSource:
    config = ImapConfig.model_validate(
        {**mailbox.imap_settings("implicit"), "folders": folders, "text_preview": text_preview}
    )
    return ImapSource("bench", config)


def _median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def bench_initial_sync(
    store_callback: Callable[[PollResult], object] | None = None,
    *,
    messages: int = 10_000,
    runs: int = 3,
    server: DovecotServer | None = None,
    text_preview: bool = True,
) -> dict[str, float]:
    """Time a first poll of ``messages`` messages (INBOX 80 %, Sent 20 %) against a raw imapclient fetch
    of the same items (headers, and the first 4 KB of text with ``text_preview``).

    ``store_callback`` (optional) receives the PollResult; its time is reported as ``store_s`` and
    included in ``poll_store_s``. Connections are opened before the clock starts, for both sides.
    """
    rng = random.Random(20261102)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with _server(server) as dovecot:
        mailbox = dovecot.new_mailbox()
        inbound = int(messages * 0.8)
        for folder, count, offset, outbound in (
            ("INBOX", inbound, 0, False),
            ("Sent", messages - inbound, inbound, True),
        ):
            times = [start + timedelta(minutes=7 * (offset + i)) for i in range(count)]
            mailbox.write_messages(
                folder,
                (
                    (realistic_message(rng, offset + i, when, outbound=outbound), seen_or_not(rng), when)
                    for i, when in enumerate(times)
                ),
            )
        folders = {"inbox": "INBOX", "sent": "Sent"}
        header_item = _source(mailbox, folders, text_preview)._fetch_items()

        raw_client = mailbox.client("implicit")
        raw_fetch = functools.partial(raw_header_fetch, raw_client, header_item, messages)

        raw_fetch()  # Dovecot builds its indexes and header cache on the first read: not what we measure

        stored: list[float] = []

        def source_poll() -> float:
            source = _source(mailbox, folders, text_preview)
            assert source.check() == []  # connect and log in before the clock starts
            began = time.perf_counter()
            result = source.poll(None)
            polled = time.perf_counter()
            if store_callback is not None:
                store_callback(result)
            stored.append(time.perf_counter() - polled)
            source.close()
            assert len(result.messages) == messages, len(result.messages)
            return polled - began

        raw_times, poll_times = [], []
        for _ in range(runs):  # interleaved, so that drift affects both sides alike
            raw_times.append(raw_fetch())
            poll_times.append(source_poll())
        raw_client.logout()
    raw_s, poll_s = statistics.median(raw_times), statistics.median(poll_times)
    figures = {"messages": messages, "raw_fetch_s": raw_s, "poll_s": poll_s, "ratio": poll_s / raw_s}
    if store_callback is not None:
        store_s = statistics.median(stored)
        figures |= {
            "store_s": store_s,
            "poll_store_s": poll_s + store_s,
            "ratio_with_store": (poll_s + store_s) / raw_s,
        }
    return figures


def sqlite_store_callback(directory: Path, count: int) -> tuple[Callable[[PollResult], object], list[Store]]:
    """A ``store_callback`` saving each PollResult into its own fresh SQLite store, and those stores.

    The ``count`` stores are created and migrated up front, so that only ``save_poll`` is timed.
    """
    stores = []
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        store = Store.open(f"sqlite:///{directory}/b{n}.db")
        store.upgrade()
        stores.append(store)
    fresh = list(stores)
    now = datetime.now(UTC)

    def save(result: PollResult) -> object:
        return fresh.pop(0).save_poll("bench", result, now)

    return save, stores


def bench_unchanged_poll(
    *,
    folders: int = 200,
    per_folder: int = 3,
    polls: int = 30,
    runs: int = 5,
    server: DovecotServer | None = None,
) -> dict[str, float]:
    """Time a no-change poll of an account with ``folders`` folders against raw STATUS of the same folders."""
    rng = random.Random(7)
    when = datetime(2026, 10, 1, tzinfo=UTC)
    with _server(server) as dovecot:
        mailbox = dovecot.new_mailbox()
        names = ["INBOX", "Sent", *(f"Customers/{n:03d}" for n in range(folders - 2))]
        for i, name in enumerate(names):
            mailbox.write_messages(
                name,
                (
                    (realistic_message(rng, i * 10 + k, when, outbound=name == "Sent"), [], when)
                    for k in range(per_folder)
                ),
            )
        source = _source(mailbox, {"inbox": "INBOX", "sent": "Sent", "extra": names[2:]})
        cursor = source.poll(None).cursor
        raw_client = mailbox.client("implicit")
        items = ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"]

        def raw_status() -> float:
            began = time.perf_counter()
            for _ in range(polls):
                for name in names:
                    raw_client.folder_status(name, items)
            return (time.perf_counter() - began) / polls

        def unchanged_poll() -> float:
            began = time.perf_counter()
            for _ in range(polls):
                result = source.poll(cursor)
                assert not result.messages and len(result.snapshots) == folders
            return (time.perf_counter() - began) / polls

        raw_status(), unchanged_poll()  # warm-up
        raw_times, poll_times = [], []
        for _ in range(runs):
            raw_times.append(raw_status())
            poll_times.append(unchanged_poll())
        source.close()
        raw_client.logout()
    raw_s, poll_s = statistics.median(raw_times), statistics.median(poll_times)
    return {"folders": folders, "raw_status_s": raw_s, "poll_s": poll_s, "ratio": poll_s / raw_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="messages for the initial sync")
    parser.add_argument("--folders", type=int, default=200, help="folders for the no-change poll")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side (median reported)")
    args = parser.parse_args(argv)
    with running_dovecot() as server, tempfile.TemporaryDirectory(prefix="replywatch-bench-") as tmp:
        save, stores = sqlite_store_callback(Path(tmp) / "preview", args.runs)
        bare_save, bare_stores = sqlite_store_callback(Path(tmp) / "headers", args.runs)
        try:
            sync = bench_initial_sync(save, messages=args.messages, runs=args.runs, server=server)
            bare = bench_initial_sync(
                bare_save, messages=args.messages, runs=args.runs, server=server, text_preview=False
            )
        finally:
            for store in [*stores, *bare_stores]:
                store.close()
        print(
            f"text_preview cost on the initial sync of {sync['messages']:,} messages: fetch + parse + store "
            f"{sync['poll_store_s']:.3f} s with it, {bare['poll_store_s']:.3f} s headers only "
            f"(+{(sync['poll_store_s'] / bare['poll_store_s'] - 1) * 100:.0f} %)"
        )
        print(
            f"initial sync, {sync['messages']:,} messages: raw imapclient fetch {sync['raw_fetch_s']:.3f} s, "
            f"ImapSource.poll {sync['poll_s']:.3f} s (fetch + parse + events), "
            f"ratio {sync['ratio']:.2f}x (target <= 1.5x)"
        )
        print(
            f"initial sync + SQLite store: fetch + parse + store {sync['poll_store_s']:.3f} s "
            f"(save_poll {sync['store_s']:.3f} s), ratio {sync['ratio_with_store']:.2f}x vs raw fetch "
            f"(target <= 1.5x)"
        )
        idle = bench_unchanged_poll(folders=args.folders, runs=max(args.runs, 3), server=server)
        print(
            f"no-change poll, {idle['folders']} folders: raw STATUS {idle['raw_status_s'] * 1000:.1f} ms, "
            f"ImapSource.poll {idle['poll_s'] * 1000:.1f} ms, ratio {idle['ratio']:.2f}x (target <= 1.3x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
