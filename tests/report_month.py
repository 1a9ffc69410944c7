"""Two months of a support team's mail and calls (September and October 2026), generated deterministically:
a maildir and an Asterisk call log, with on-time, late and never answered customers, for the report tests."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from monitor.demo_calls import _Log
from tests.mailfactory import deliver, make_maildir, make_message

LONDON = ZoneInfo("Europe/London")
FIRST_DAY = date(2026, 9, 1)
LAST_DAY = date(2026, 10, 31)
LINE = "support"
MEMBERS = (
    ("Alice Smith", "alice@example.com", "201"),
    ("Bob Jones", "bob@example.com", "202"),
    ("Chloé Martin", "chloe@example.com", "203"),
)


@dataclass
class Month:
    """Where the generated data lives."""

    maildir: Path
    calls: Path
    messages: int
    missed_calls: int


def _answer_delay(rng: random.Random, september: bool) -> timedelta | None:
    """How long the team took: mostly within hours, sometimes days, rarely never (worse in September)."""
    roll = rng.random()
    slow = 0.1 if september else 0.0
    if roll < 0.62 - slow:
        return timedelta(minutes=rng.randint(6, 240))
    if roll < 0.88 - slow / 2:
        return timedelta(hours=rng.uniform(4, 22))
    if roll < 0.985:
        return timedelta(hours=rng.uniform(24, 80))
    return None


def write_month(root: Path, seed: int = 2026) -> Month:
    """Write the maildir and the call log under ``root``."""
    rng = random.Random(seed)
    maildir = make_maildir(root / "mail")
    log = _Log(datetime(2026, 9, 1, tzinfo=LONDON))
    messages = missed_calls = 0
    day = FIRST_DAY
    n = 0
    while day <= LAST_DAY:
        weekday = day.weekday() < 5
        september = day.month == 9
        for _ in range(rng.randint(3, 8) if weekday else rng.randint(0, 1)):
            n += 1
            at = datetime.combine(day, time(7), LONDON) + timedelta(minutes=rng.randint(0, 11 * 60))
            customer = f"customer{n}@client{n % 17}.example"
            msgid = f"q{n}@client.example"
            deliver(maildir, make_message(msgid=msgid, sender=customer, to="support@example.com", date=at,
                                          subject=f"Order {1000 + n}: question"))  # fmt: skip
            messages += 1
            delay = _answer_delay(rng, september)
            if delay is None:
                continue
            name, address, _ = rng.choice(MEMBERS)
            reply = make_message(
                msgid=f"re{n}@example.com",
                sender=f"{name} <{address}>",
                to=customer,
                date=at + delay,
                subject=f"Re: Order {1000 + n}: question",
                in_reply_to=msgid,
                body="Hello,\n\nyour order is on its way.\n\nBest regards\n",
            )
            deliver(maildir, reply, folder=".Sent")
            messages += 1
        if weekday:
            for _ in range(rng.randint(0, 2)):
                at = datetime.combine(day, time(9), LONDON) + timedelta(minutes=rng.randint(0, 8 * 60))
                caller = f"+4420794{rng.randint(0, 99999):05d}"
                linked = log.call_id(at)
                log.leg(linked, at, caller, LINE, app="Queue", data=f"{LINE},t,,,60", ring=25)
                missed_calls += 1
                if rng.random() < 0.93:
                    minutes = rng.randint(5, 150) if rng.random() < 0.85 else rng.randint(150, 20 * 60)
                    back = at + timedelta(minutes=minutes)
                    _, _, ext = rng.choice(MEMBERS)
                    log.leg(log.call_id(back), back, ext, caller, dstchannel="SIP/trunk-out", ring=6,
                            talk=120, context="from-internal")  # fmt: skip
        day += timedelta(days=1)
    calls = root / "Master.csv"
    rows = sorted(log.rows, key=lambda row: row[0])
    calls.write_text("".join(",".join(f'"{v}"' for v in row) + "\n" for _, row in rows))
    return Month(maildir, calls, messages, missed_calls)


def month_config(month: Month, store_url: str, **team: Any) -> dict[str, Any]:
    """The config of the generated team (``team`` adds or replaces team settings)."""
    return {
        "store": {"url": store_url},
        "calendars": {"london": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:30"}}},
        "sources": {
            "support-inbox": {"kind": "maildir", "path": str(month.maildir)},
            "pbx": {
                "kind": "asterisk_csv",
                "path": str(month.calls),
                "timezone": "Europe/London",
                "default_region": "GB",
            },
        },
        "teams": {
            "support": {
                "calendar": "london",
                "addresses": ["support@example.com"],
                "internal_domains": ["example.com"],
                "members": [
                    {"name": name, "email": [address], "phone": [ext], "role": "lead" if i == 0 else "member"}
                    for i, (name, address, ext) in enumerate(MEMBERS)
                ],
                "sources": ["support-inbox", "pbx"],
                "lines": [LINE],
                "rules": [
                    {"kind": "reply_within", "within": "8h", "warn_before": "2h"},
                    {"kind": "callback_within", "within": "4h"},
                ],
                **team,
            }
        },
    }
