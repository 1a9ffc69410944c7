"""The outbox: writing owed notifications with 2,000 breach transitions, reading what is due, and sending it
grouped per recipient to a real SMTP server on loopback (aiosmtpd), on SQLite.

Run: uv run python benchmarks/outbox_bench.py [--breaches 2000] [--members 5]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from monitor.breaches import Opened
from monitor.calendar import BusinessCalendar
from monitor.config import validate
from monitor.escalation import NotifyConfig
from monitor.exporters.outbox import Dispatcher, build_notifiers
from monitor.rules.base import Level
from monitor.store.db import Store
from monitor.store.outbox import Outbox

T = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


class Sink:
    """Counts accepted messages."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--breaches", type=int, default=2000)
    parser.add_argument("--members", type=int, default=5)
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    members = [{"name": f"m{i}", "email": [f"m{i}@example.com"]} for i in range(args.members)]
    notify = {"via": "mail", "escalation": [{"at": "breach", "to": ["owner", "lead"]}]}
    raw = {
        "notifiers": {
            "mail": {"kind": "smtp", "host": "127.0.0.1", "port": port, "tls": "none", "from": "rw@x.org"}
        },
        "teams": {"support": {"members": members, "notify": notify}},
    }
    config = validate(raw, check_secrets=False).config
    team = config.teams["support"]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.upgrade()
        outbox = Outbox(store)
        transitions = [
            Opened("support", "reply_within", f"m{i}@cust.example", Level.BREACH, T + timedelta(seconds=i))
            for i in range(args.breaches)
        ]

        def owe(conn: Any, ts: Any) -> None:
            assert team.notify is not None
            outbox.owe(
                conn,
                ts,
                team="support",
                notify=NotifyConfig.model_validate(team.notify.model_dump()),
                members=team.escalation_members(),
                calendar=BusinessCalendar.always_open(),
                addressed=True,
                now=T,
            )

        started = time.perf_counter()
        store.apply_transitions(transitions, then=owe)
        written = time.perf_counter() - started
        rows = sum(outbox.pending_counts().values())
        now = T + timedelta(days=1)
        started = time.perf_counter()
        due = outbox.due(now)
        read = time.perf_counter() - started
        dispatcher = Dispatcher(outbox, lambda: config, build_notifiers(config))
        started = time.perf_counter()
        sent = dispatcher.run(now)
        dispatched = time.perf_counter() - started
        store.close()
    controller.stop()
    print(f"breach transitions with their notifications: {args.breaches} -> {rows} rows in {written:.2f} s")
    print(f"due notifications read: {len(due)} in {read * 1000:.0f} ms")
    print(f"dispatched: {sent} notifications in {sink.count} messages in {dispatched:.2f} s")


if __name__ == "__main__":
    main()
