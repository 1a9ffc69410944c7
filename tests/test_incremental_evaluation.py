"""Incremental evaluation (only what changed or came due is judged again) equals a full evaluation.

A random sequence of changes (customer mail, answers, holding replies, a flag read, time passing over
nights and warning points) goes into two stores. One daemon evaluator keeps its state between runs, as
the daemon does; a fresh evaluator judges the other store from scratch at every step. Breach rows and
stored timings must be the same after every step.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config import validate
from monitor.evaluate import Evaluator
from monitor.events import MessageEvent
from monitor.sources.base import PollResult
from monitor.store.db import BREACH, Store
from tests.store_fixtures import store  # noqa: F401 - fixture

START = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)  # a Monday morning


def config(url: str) -> dict[str, object]:
    return {
        "store": {"url": url},
        "engine": {"lookback": "60d"},
        "calendars": {"office": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:30"}}},
        "sources": {"inbox": {"kind": "mbox", "path": "/dev/null"}},
        "teams": {
            "support": {
                "calendar": "office",
                "addresses": ["support@example.com"],
                "sources": ["inbox"],
                "members": [{"name": "Agent", "email": ["agent@example.com"]}],
                "rules": [
                    {"kind": "reply_within", "within": "4h", "warn_before": "1h"},
                    {"kind": "holding_reply", "within": "1h", "phrases": ["we are looking into"]},
                ],
            }
        },
    }


class Mailbox:
    """A random mailbox: customers write, the team answers or acknowledges, an agent reads mail."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.messages: list[MessageEvent] = []
        self.open: list[MessageEvent] = []
        self.n = 0

    def step(self, now: datetime) -> list[MessageEvent]:
        changed: list[MessageEvent] = []
        for _ in range(self.rng.choice([0, 0, 1, 1, 2, 3])):
            roll = self.rng.random()
            self.n += 1
            if roll < 0.5 or not self.open:
                customer = f"c{self.rng.randrange(8)}@customer.example"
                message = MessageEvent(
                    source="inbox", folder="inbox", external_id=f"INBOX/1/{self.n}",
                    message_id=f"m{self.n}@customer.example",
                    date=now - timedelta(minutes=self.rng.randrange(0, 30)),
                    from_addr=customer, to_addrs=("support@example.com",), subject=f"Order {self.n}",
                )  # fmt: skip
                self.open.append(message)
            elif roll < 0.85:
                asked = self.open.pop(self.rng.randrange(len(self.open)))
                holding = self.rng.random() < 0.3
                message = MessageEvent(
                    source="inbox", folder="sent", external_id=f"Sent/1/{self.n}",
                    message_id=f"r{self.n}@example.com", date=now, from_addr="agent@example.com",
                    to_addrs=(asked.from_addr or "",), subject=f"Re: {asked.subject}",
                    in_reply_to=asked.message_id, references=(asked.message_id or "",),
                    preview="We are looking into it." if holding else "Here is your answer.",
                )  # fmt: skip
                if holding:
                    self.open.append(asked)  # acknowledged, still waiting for the answer
            else:
                read = self.rng.choice(self.messages) if self.messages else None
                if read is None:
                    continue
                message = replace(read, flags=read.flags | {"\\Seen"})
            self.messages.append(message)
            changed.append(message)
        return changed


def breaches(store_: Store) -> list[tuple[Any, ...]]:
    with store_.engine.connect() as conn:
        rows = conn.execute(BREACH.select())
        return sorted(
            (r.rule, r.subject, r.level, r.opened_at, r.due_at, r.breached_at, r.resolved_at) for r in rows
        )


def timings(store_: Store) -> list[tuple[Any, ...]]:
    return sorted(
        (r.item_key, r.responded_at, r.acknowledged_at, r.due_at, r.business_seconds, r.wall_seconds)
        for r in store_.awaiting("support")
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_evaluation_equals_a_full_one(store: Store, tmp_path: Path, seed: int) -> None:  # noqa: F811
    incremental_store = store
    full_store = Store.open(f"sqlite:///{tmp_path / 'full.db'}")
    full_store.upgrade()
    loaded = validate(config("sqlite://"), check_secrets=False)
    daemon = Evaluator(incremental_store, loaded.config)
    mailbox = Mailbox(seed)
    now = START
    judged_incrementally = 0
    try:
        for step in range(60):
            now += timedelta(minutes=random.Random(seed * 1000 + step).choice([5, 20, 45, 61, 150, 600, 900]))
            changed = mailbox.step(now)
            for target in (incremental_store, full_store):
                target.save_poll("inbox", PollResult(changed), now)
            daemon.run(now)
            Evaluator(full_store, loaded.config).run(now)
            assert breaches(incremental_store) == breaches(full_store), f"step {step} at {now}"
            assert timings(incremental_store) == timings(full_store), f"step {step} at {now}"
            judged_incrementally += not changed
        assert breaches(full_store), "the sequence opened no breach: it shows nothing"
        assert judged_incrementally > 10
    finally:
        full_store.close()
