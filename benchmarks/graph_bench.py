"""Graph source benchmark on the local replay server: a 10,000-message mailbox synced, then polled unchanged.

Run: ``uv run python benchmarks/graph_bench.py`` (``--help`` for sizes). Prints the initial sync's request
count and time (pages of ``--page-size``) and a no-change poll's requests, which must be one per folder.
The server runs in this process over loopback HTTPS, so the figures are the client's own cost (token,
TLS, JSON, event building) without Microsoft's latency: a real initial sync adds one round trip per page.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.sources.graph import GraphConfig
from monitor.sources.graph_source import GraphSource
from tests.servers.replay import CLIENT_ID, CLIENT_SECRET, TENANT, Answer, ReplayServer

MAILBOX = "support@contoso.com"


def message(n: int, start: datetime) -> dict[str, Any]:
    """One message as Graph returns it with the source's ``$select``."""
    when = (start + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "@odata.etag": f'W/"CQAAABYAAAAR{n:08d}"',
        "id": f"AAMkAGI2TG93AAA{n:08d}=",
        "internetMessageId": f"<m{n}@customer{n % 700}.example>",
        "conversationId": f"AAQkAGI2TG93{n // 3:08d}=",
        "subject": f"Order {n // 3} question",
        "from": {"emailAddress": {"name": f"Customer {n % 700}", "address": f"c{n % 700}@customer.example"}},
        "sender": {
            "emailAddress": {"name": f"Customer {n % 700}", "address": f"c{n % 700}@customer.example"}
        },
        "toRecipients": [{"emailAddress": {"name": "Support", "address": MAILBOX}}],
        "ccRecipients": [],
        "replyTo": [],
        "receivedDateTime": when,
        "sentDateTime": when,
        "isRead": n % 4 != 0,
        "internetMessageHeaders": [
            {"name": "Message-ID", "value": f"<m{n}@customer{n % 700}.example>"},
            {"name": "References", "value": f"<m{n - 1}@customer{(n - 1) % 700}.example>"},
            {"name": "Content-Type", "value": "text/plain; charset=utf-8"},
        ],
    }


def load(server: ReplayServer, folder: str, count: int, page_size: int) -> None:
    """``count`` messages in pages of ``page_size`` behind ``folder``'s first delta request."""
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    base = f"/v1.0/users/{MAILBOX}/mailFolders/{folder}/messages/delta"
    delta = f"{base}?$deltatoken=round1"
    pages = max(1, -(-count // page_size))
    for page in range(pages):
        items = [message(n, start) for n in range(page * page_size, min(count, (page + 1) * page_size))]
        link = (
            {"@odata.nextLink": f"{server.base}{base}?$skiptoken={page + 1}"}
            if page + 1 < pages
            else {"@odata.deltaLink": server.base + delta}
        )
        key = base if page == 0 else f"{base}?$skiptoken={page}"
        server.graph[key] = [Answer(body={"value": items, **link})]
    server.graph[delta] = [Answer(body={"value": [], "@odata.deltaLink": server.base + delta})]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="messages in the inbox")
    parser.add_argument("--sent", type=int, default=2_000, help="messages in sent items")
    parser.add_argument("--page-size", type=int, default=100, help="Prefer: odata.maxpagesize")
    parser.add_argument("--polls", type=int, default=20, help="no-change polls to time")
    args = parser.parse_args()
    os.environ["GRAPH_BENCH_SECRET"] = CLIENT_SECRET
    with tempfile.TemporaryDirectory() as directory:
        server = ReplayServer(Path(directory))
        try:
            load(server, "inbox", args.messages, args.page_size)
            load(server, "sentitems", args.sent, args.page_size)
            config = GraphConfig.model_validate(
                {
                    "kind": "graph",
                    "tenant_id": TENANT,
                    "client_id": CLIENT_ID,
                    "client_secret_env": "GRAPH_BENCH_SECRET",
                    "mailboxes": [MAILBOX],
                    "authority": server.base,
                    "graph_url": server.base,
                    "ca_file": str(server.ca_file),
                    "page_size": args.page_size,
                }
            )
            source = GraphSource("bench", config)
            began = time.perf_counter()
            first = source.poll(None)
            took = time.perf_counter() - began
            total = args.messages + args.sent
            assert len(first.messages) == total, len(first.messages)
            print(
                f"initial sync: {total} messages ({args.messages} inbox, {args.sent} sent), "
                f"page size {args.page_size}: {source.requests} requests, {took:.2f} s "
                f"({total / took:,.0f} messages/s), {server.tokens_issued} token request"
            )
            cursor = first.cursor
            before = source.requests
            times = []
            for _ in range(args.polls):
                began = time.perf_counter()
                result = source.poll(cursor)
                times.append(time.perf_counter() - began)
                assert not result.messages and result.cursor == cursor
            per_poll = (source.requests - before) / args.polls
            times.sort()
            print(
                f"no-change poll: {per_poll:g} requests for 2 folders (one per folder), "
                f"median {times[len(times) // 2] * 1000:.1f} ms over {args.polls} polls"
            )
            assert per_poll == 2, per_poll
            assert not server.mistakes, server.mistakes[:3]
            source.close()
        finally:
            server.close()


if __name__ == "__main__":
    main()
