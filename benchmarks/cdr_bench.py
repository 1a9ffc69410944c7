"""A year of a busy PBX: 1,000,000 Master.csv rows parsed, ingested into SQLite and evaluated.

Generates a realistic Master.csv (inbound calls to two DIDs through a ring group of three phones that
writes one row per phone, missed calls returned from an extension, outbound and internal calls, newer
``linkedid`` columns), then times each step and prints the process's peak memory (max RSS) after it:
the ``asterisk_csv`` source's first poll (read, parse, group legs into calls), the store's ingest in
one transaction, the phone engine (``build_phone_awaiting``) with the verdict core, the awaiting items
written to the store, a poll of the unchanged file, and a poll after 100 appended rows.

Run: uv run python benchmarks/cdr_bench.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from monitor.calendar import BusinessCalendar
from monitor.engine.phone import PhoneTeam, build_phone_awaiting
from monitor.events import Channel
from monitor.rules.callback_within import CallbackWithin, CallbackWithinConfig
from monitor.sources.asterisk_csv import AsteriskCsvConfig, AsteriskCsvSource
from monitor.store.db import Store
from monitor.verdict import evaluate_team

START = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2027, 1, 1, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")
T = TypeVar("T")


def _fmt(at: datetime) -> str:
    """A time as the PBX writes it: London local time (the autumn hour twice, the spring hour never)."""
    return at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M:%S")


def _row(
    uid: str,
    linked: str,
    src: str,
    dst: str,
    start: datetime,
    ring: int,
    talk: int,
    dstchannel: str,
    app: str = "Dial",
    context: str = "from-pstn",
) -> str:
    answer = _fmt(start + timedelta(seconds=ring)) if talk else ""
    end = _fmt(start + timedelta(seconds=ring + talk))
    disposition = "ANSWERED" if talk else "NO ANSWER"
    return (
        f'"","{src}","{dst}","{context}","""{src}"" <{src}>","SIP/trunk-{uid}","{dstchannel}","{app}",'
        f'"{dstchannel},30","{_fmt(start)}","{answer}","{end}",{ring + talk},{talk},"{disposition}",'
        f'"DOCUMENTATION","{uid}","","","{linked}",1\n'
    )


def generate(path: Path, rows: int) -> int:
    """Write ``rows`` Master.csv rows in time order; the number of calls they make."""
    rng = random.Random(11)
    at = START
    written = calls = 0
    owed: list[str] = []
    with path.open("w") as fh:
        while written < rows:
            at += timedelta(seconds=rng.randrange(10, 130))  # 1,000,000 rows make about a year
            calls += 1
            uid = f"{int(at.timestamp())}.{calls}"  # Asterisk's unique ids start with the UTC epoch
            kind = rng.random()
            if kind < 0.6:  # inbound through the ring group: one row per phone it rang
                caller = f"01632{rng.randrange(100000, 150000)}"  # 50,000 customers
                dst = rng.choice(("01632960500", "01632960600"))
                answered_by = rng.choice((201, 202, 203, None, None))
                for n, phone in enumerate((201, 202, 203)):
                    talk = rng.randrange(30, 600) if phone == answered_by else 0
                    fh.write(
                        _row(
                            f"{uid}{n}", uid, caller, dst, at, rng.randrange(3, 25), talk, f"SIP/{phone}-{n}"
                        )
                    )
                written += 3
                if answered_by is None:
                    owed.append(caller)
            elif kind < 0.8 and owed:  # a call-back to a customer who was missed
                fh.write(
                    _row(
                        uid,
                        uid,
                        "201",
                        owed.pop(0),
                        at,
                        5,
                        rng.randrange(0, 300),
                        "SIP/trunk-out",
                        context="from-internal",
                    )
                )
                written += 1
            elif kind < 0.9:  # an outbound call
                callee = f"01632{rng.randrange(100000, 150000)}"
                fh.write(
                    _row(
                        uid,
                        uid,
                        "202",
                        callee,
                        at,
                        6,
                        rng.randrange(20, 400),
                        "SIP/trunk-out",
                        context="from-internal",
                    )
                )
                written += 1
            else:  # an internal call
                fh.write(
                    _row(
                        uid,
                        uid,
                        "201",
                        "203",
                        at,
                        4,
                        rng.randrange(10, 120),
                        "SIP/203-1",
                        context="from-internal",
                    )
                )
                written += 1
    return calls


def peak_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = fn()
    print(f"  {label:52} {time.perf_counter() - started:8.2f} s   peak {peak_mb():7.0f} MB")
    return result


def run(rows: int, tmp: Path) -> None:
    master = tmp / "Master.csv"
    calls_made = timed(f"generate {rows:,} rows", lambda: generate(master, rows))
    print(f"  {'file size':52} {master.stat().st_size / 1e6:8.1f} MB   ({calls_made:,} calls)")
    clock = lambda: NOW  # noqa: E731 - the file is long finished
    config = AsteriskCsvConfig.model_validate(
        {"kind": "asterisk_csv", "path": master, "timezone": "Europe/London", "default_region": "GB"}
    )
    source = AsteriskCsvSource("pbx", config, clock=clock)
    first = timed("asterisk_csv first poll (read, parse, group legs)", lambda: source.poll(None))
    print(f"  {'calls':52} {len(first.calls):8,d}   cursor {len(json.dumps(first.cursor)) / 1e3:.0f} kB")
    store = Store.open(f"sqlite:///{tmp / 'bench.db'}")
    store.upgrade()
    timed("ingest into SQLite (one transaction)", lambda: store.save_poll("pbx", first, NOW))
    calls = timed("read the calls back from the store", lambda: store.calls(["pbx"]))
    team = PhoneTeam(
        "support",
        lines=frozenset({"from-pstn"}),  # Master.csv has no DID: the line is the inbound context
        extensions={"201": "Alice", "202": "Bob", "203": "Carol"},
    )
    result = timed("phone engine: build_phone_awaiting", lambda: build_phone_awaiting(calls, team))
    rule = CallbackWithin(CallbackWithinConfig(kind="callback_within", business_hours=False))
    calendar = BusinessCalendar.always_open()
    verdict = timed(
        "verdict core: evaluate_team", lambda: evaluate_team(result.items, [rule], calendar, NOW, "support")
    )
    print(f"  {'missed calls (awaiting items)':52} {len(result.items):8,d}   {dict(verdict.counts())}")
    timed(
        "awaiting items into the store",
        lambda: store.replace_awaiting("support", Channel.PHONE, result.items, None, NOW),
    )
    again = timed("poll of the unchanged file", lambda: source.poll(first.cursor))
    assert again.calls == []
    with master.open("a") as fh:
        for n in range(100):
            at = START + timedelta(days=366, seconds=n * 30)
            fh.write(_row(f"9{n}.1", f"9{n}.1", "01632900000", "01632960500", at, 20, 0, "SIP/201-1"))
    after = timed("poll after 100 appended rows", lambda: source.poll(first.cursor))
    assert len(after.calls) == 100
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(args.rows, Path(tmp))


if __name__ == "__main__":
    main()
