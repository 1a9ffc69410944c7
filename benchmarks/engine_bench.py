"""Store ingest, engine rebuild, evaluation and scrape over 10,000 messages (SQLite and PostgreSQL).

Run: uv run python benchmarks/engine_bench.py [--messages 10000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import validate
from monitor.evaluate import Evaluator
from monitor.events import MessageEvent
from monitor.exporters.prometheus import DaemonState, ReplywatchCollector
from monitor.sources.base import PollResult
from monitor.store.db import Store
from monitor.supervisor import Supervisor

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def messages(count: int) -> list[MessageEvent]:
    """Customer mail over 30 days, about 90% answered by one of three members."""
    rng = random.Random(7)
    out: list[MessageEvent] = []
    n = 0
    while len(out) < count:
        n += 1
        received = NOW - timedelta(minutes=rng.randrange(30 * 24 * 60))
        customer = f"customer{rng.randrange(count // 3)}@example.net"
        out.append(
            MessageEvent(
                source="inbox", folder="inbox", external_id=f"INBOX/1/{n}", message_id=f"c{n}@example.net",
                date=received, from_addr=customer, to_addrs=("support@example.com",), subject=f"Order {n}",
            )
        )  # fmt: skip
        if rng.random() < 0.9 and len(out) < count:
            replied = received + timedelta(minutes=rng.randrange(5, 3 * 24 * 60))
            if replied < NOW:
                out.append(
                    MessageEvent(
                        source="inbox", folder="sent", external_id=f"Sent/1/{n}",
                        message_id=f"r{n}@example.com",
                        date=replied, from_addr=f"agent{n % 3}@example.com", to_addrs=(customer,),
                        subject=f"Re: Order {n}", in_reply_to=f"c{n}@example.net",
                        references=(f"c{n}@example.net",),
                    )
                )  # fmt: skip
    return out


def config(url: str) -> dict[str, object]:
    return {
        "store": {"url": url},
        "calendars": {"office": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:30"},
                                 "holidays": {"country": "GB", "subdivision": "ENG"}}},
        "sources": {"inbox": {"kind": "mbox", "path": "/dev/null"}},
        "teams": {"support": {
            "calendar": "office", "addresses": ["support@example.com"], "sources": ["inbox"],
            "members": [{"name": f"Agent {i}", "email": [f"agent{i}@example.com"]} for i in range(3)],
            "member_metrics": True,
            "rules": [{"kind": "reply_within", "within": "8h", "warn_before": "1h"},
                      {"kind": "holding_reply", "within": "2h"}],
        }},
    }  # fmt: skip


def timed(label: str, fn, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args)
    print(f"  {label:44} {time.perf_counter() - started:8.3f} s")
    return result


def run(url: str, count: int) -> None:
    print(f"{url.split(':')[0]}: {count} messages")
    loaded = validate(config(url), check_secrets=False)
    store = Store.open(url)
    store.upgrade()
    batch = messages(count)
    saved = timed("ingest (one transaction, bulk insert)", store.save_poll, "inbox", PollResult(batch), NOW)
    assert saved.inserted == len(batch)
    timed("ingest again (all known, nothing written)", store.save_poll, "inbox", PollResult(batch), NOW)
    evaluator = Evaluator(store, loaded.config)
    timed("first evaluation (rebuild + all items)", evaluator.run, NOW)
    timed("next evaluation, nothing changed", evaluator.run, NOW + timedelta(seconds=30))
    # An agent reads one message: its \Seen flag changes, nothing the engine reads does.
    seen = replace(batch[0], flags=batch[0].flags | {"seen"})
    store.save_poll("inbox", PollResult([seen]), NOW + timedelta(seconds=45))
    timed("evaluation after one \\Seen flag changed", evaluator.run, NOW + timedelta(seconds=60))
    timed("next evaluation, nothing changed", evaluator.run, NOW + timedelta(seconds=90))
    new = replace(batch[0], external_id="INBOX/1/new", message_id="new@example.net", date=NOW)
    store.save_poll("inbox", PollResult([new]), NOW + timedelta(seconds=100))
    timed("evaluation after one new message (rebuild)", evaluator.run, NOW + timedelta(seconds=120))
    timed("evaluation 1h later (open items only)", evaluator.run, NOW + timedelta(hours=1))
    registry = CollectorRegistry()
    registry.register(ReplywatchCollector(store, lambda: loaded.config, DaemonState(Supervisor(lambda: NOW))))
    body = timed("one /metrics scrape", generate_latest, registry)
    print(f"  {'scrape size':44} {len(body):8d} bytes")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/replywatch_bench")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.messages)
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(args.postgres.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        name = args.postgres.rsplit("/", 1)[1]
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        run(args.postgres, args.messages)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception as err:  # the SQLite figures still stand
        print(f"postgresql: not measured ({err.__class__.__name__}: {err})")


if __name__ == "__main__":
    main()
