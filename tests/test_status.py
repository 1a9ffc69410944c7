"""``replywatch status``: business hours in hours, warnings marked, missing sources named, empty stores."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.awaiting import AwaitingItem
from monitor.cli import main
from monitor.config import validate
from monitor.events import Channel, MessageEvent
from monitor.sources.base import PollResult
from monitor.status import NeverPolled, render_status
from monitor.store.db import Store
from tests.mailfactory import make_maildir

NOW = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # a Friday


def config(tmp_path: Path) -> dict[str, Any]:
    return {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        "calendars": {"london": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:00"}}},
        "sources": {
            "inbox": {"kind": "maildir", "path": str(make_maildir(tmp_path / "inbox"))},
            "alice-mail": {"kind": "maildir", "path": str(make_maildir(tmp_path / "alice"))},
        },
        "teams": {
            "support": {
                "calendar": "london",
                "addresses": ["support@example.com"],
                "sources": ["inbox", "alice-mail"],
                "rules": [{"kind": "reply_within", "within": "40h", "warn_before": "10h"}],
            }
        },
    }


def test_a_store_never_polled_says_so_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path)
    path = tmp_path / "replywatch.yaml"
    path.write_text(yaml.safe_dump(cfg))
    Store.open(cfg["store"]["url"]).upgrade()
    assert main(["status", "-c", str(path)]) == 2
    captured = capsys.readouterr()
    assert "0 waiting" not in captured.out
    assert "no source has been polled into this store yet" in captured.err
    with pytest.raises(NeverPolled):
        render_status(validate(cfg).config, Store.open(cfg["store"]["url"]), NOW, io.StringIO())


def test_business_hours_warnings_and_a_missing_source(tmp_path: Path) -> None:
    cfg = validate(config(tmp_path)).config
    store = Store.open(f"sqlite:///{tmp_path / 'rw.db'}")
    store.upgrade()
    store.save_poll("inbox", PollResult(cursor={"v": 1}), NOW - timedelta(minutes=1))
    store.save_poll("alice-mail", PollResult(cursor={"v": 1}), NOW - timedelta(hours=2))
    item = AwaitingItem(
        team="support",
        channel=Channel.EMAIL,
        key="c1@cust.example",
        conversation="c1@cust.example",
        customer="carol@cust.example",
        received_at=datetime(2026, 11, 16, 16, 0, tzinfo=UTC),  # Monday 16:00: 32 business hours by now
    )
    store.replace_awaiting("support", Channel.EMAIL, [item], NOW - timedelta(days=60), NOW)
    out = io.StringIO()
    assert render_status(cfg, store, NOW, out) == 0
    text = out.getvalue()
    (row,) = [line for line in text.splitlines() if "carol@cust.example" in line]
    assert row.split()[-7:-5] == ["4d00h", "32h"]  # waiting (wall clock), business hours
    assert row.rstrip().endswith("WARNING")  # due in 8 business hours, warned 10 before
    assert "INCOMPLETE: source alice-mail not read since Fri 20 Nov 14:00 (stale after 0h05m)" in text
    assert "inbox" not in text.split("INCOMPLETE")[1]


def test_a_waiting_mail_is_named_by_its_subject(tmp_path: Path) -> None:
    cfg = validate(config(tmp_path)).config
    store = Store.open(f"sqlite:///{tmp_path / 'rw.db'}")
    store.upgrade()
    received = datetime(2026, 11, 16, 16, 0, tzinfo=UTC)
    mail = MessageEvent(
        source="inbox",
        folder="inbox",
        external_id="1",
        message_id="c1@cust.example",
        date=received,
        from_addr="carol@cust.example",
        subject="Invoice 1234 is\n wrong",
    )
    store.save_poll("inbox", PollResult(messages=[mail], cursor={"v": 1}), NOW - timedelta(minutes=1))
    store.save_poll("alice-mail", PollResult(cursor={"v": 1}), NOW - timedelta(minutes=1))
    item = AwaitingItem(
        team="support",
        channel=Channel.EMAIL,
        key="c1@cust.example",
        conversation="c1@cust.example",
        customer="carol@cust.example",
        received_at=received,
    )
    store.replace_awaiting("support", Channel.EMAIL, [item], NOW - timedelta(days=60), NOW)
    out = io.StringIO()
    render_status(cfg, store, NOW, out)
    lines = out.getvalue().splitlines()
    row = next(i for i, line in enumerate(lines) if "carol@cust.example" in line)
    assert lines[row + 1].strip() == '"Invoice 1234 is wrong"'
    assert "c1@cust.example" not in out.getvalue()
