"""Tests for the demo mailbox generator: realistic, deterministic, and saying what it meant."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import os
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pytest

from monitor.demo_mail import BREACHED_MIN, WAITING_MAX, DemoMember, DemoSummary, write_demo_maildir
from monitor.events import MessageEvent
from monitor.sources.maildir import MaildirConfig, MaildirSource

NOW = datetime(2026, 3, 11, 10, 17, 42, tzinfo=UTC)  # a Wednesday
ALLOWED_DOMAIN = re.compile(r"(^|\.)(example|example\.(com|org|net))$")


def files(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def messages(root: Path) -> list[tuple[Path, EmailMessage]]:
    found = []
    for folder in (root, root / ".Sent"):
        for sub in ("new", "cur"):
            for path in sorted((folder / sub).iterdir()):
                msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                assert isinstance(msg, EmailMessage)
                found.append((path, msg))
    return found


def poll_events(
    root: Path, now: datetime = NOW
) -> tuple[list[MessageEvent], dict[str, tuple[int, int, int]]]:
    src = MaildirSource("demo", MaildirConfig(path=root), clock=lambda: now)
    result = src.poll(None)
    counts = {s.folder: (s.total, s.unseen, s.unanswered) for s in result.snapshots}
    return result.messages, counts


@pytest.fixture
def demo(tmp_path: Path) -> DemoSummary:
    return write_demo_maildir(tmp_path / "demo", now=NOW)


def test_deterministic_for_now_and_seed(tmp_path: Path, demo: DemoSummary) -> None:
    again = write_demo_maildir(tmp_path / "again", now=NOW)
    assert files(demo.root) == files(again.root)
    assert again == dataclasses.replace(demo, root=again.root)
    other = write_demo_maildir(tmp_path / "other", now=NOW, seed=8)
    assert files(other.root) != files(demo.root)
    assert (other.waiting, other.breached) == (demo.waiting, demo.breached)


def test_summary_has_the_promised_mix(demo: DemoSummary) -> None:
    assert 22 <= demo.customer_messages <= 30
    assert demo.breached >= 2
    assert demo.waiting >= 2
    assert demo.answered_late >= 1
    assert demo.answered_on_time >= 5
    assert demo.awaiting == len(demo.statuses) == demo.customer_messages - demo.follow_ups_while_open
    assert demo.unanswered == demo.waiting + demo.breached
    assert demo.automated == 3 and demo.internal == 1
    assert sorted(demo.reasons.values()) == [
        "automated:bounce",
        "automated:bulk",
        "automated:out_of_office",
        "follow_up_while_open",
        "internal",
        "outbound",
    ]
    assert demo.inbox_messages == demo.customer_messages + demo.automated + demo.internal
    assert demo.sent_messages == demo.answered_on_time + demo.answered_late + 1  # + the bounced notice


def test_files_form_a_maildir_plus_plus(demo: DemoSummary) -> None:
    root = demo.root
    for folder in (root, root / ".Sent"):
        assert all((folder / sub).is_dir() for sub in ("cur", "new", "tmp"))
    assert (root / ".Sent" / "maildirfolder").exists()
    inbox = len(os.listdir(root / "cur")) + len(os.listdir(root / "new"))
    assert inbox == demo.inbox_messages
    assert len(os.listdir(root / ".Sent" / "cur")) == demo.sent_messages
    assert os.listdir(root / ".Sent" / "new") == []


def test_every_message_is_proper_mime_dated_before_now(demo: DemoSummary) -> None:
    seen_ids: set[str] = set()
    for path, msg in messages(demo.root):
        assert msg["MIME-Version"] == "1.0", path.name
        date = parsedate_to_datetime(str(msg["Date"]))
        assert date.tzinfo is not None and NOW - timedelta(days=11) < date <= NOW, path.name
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        assert date <= mtime <= NOW and mtime - date < timedelta(minutes=5), path.name
        msgid = str(msg["Message-ID"])
        assert msgid.startswith("<") and msgid.endswith(">")
        assert msgid not in seen_ids
        seen_ids.add(msgid)
        domain = msgid.strip("<>").rsplit("@", 1)[1]
        assert ALLOWED_DOMAIN.search(domain), msgid
        for header in ("From", "To", "Cc", "Reply-To", "Return-Path"):
            for _name, addr in getaddresses([str(v) for v in msg.get_all(header, [])]):
                if addr:
                    assert ALLOWED_DOMAIN.search(addr.rsplit("@", 1)[1]), f"{header}: {addr}"
        assert msg.get_body(("plain",)) is not None or msg.get_content_type() == "multipart/report"


def test_replies_are_threaded_and_from_the_team(demo: DemoSummary) -> None:
    all_ids = {str(m["Message-ID"]) for _p, m in messages(demo.root)}
    team = {demo.team_address, "alice@demo.example", "bob@demo.example"}
    for path, msg in messages(demo.root):
        if ".Sent" not in str(path):
            continue
        sender = getaddresses([str(msg["From"])])[0][1]
        assert sender in team
        if msg["In-Reply-To"]:
            assert msg["In-Reply-To"] in all_ids
            assert str(msg["References"]).split()[-1] == msg["In-Reply-To"]
            assert str(msg["Subject"]).startswith("Re: ")
    assert set(demo.responded_by.values()) == team  # both the shared address and members answer


def test_special_messages_look_like_the_real_thing(demo: DemoSummary) -> None:
    by_id = {str(m["Message-ID"]).strip("<>"): m for _p, m in messages(demo.root)}
    reason_of = {reason: by_id[mid] for mid, reason in demo.reasons.items()}
    bounce = reason_of["automated:bounce"]
    assert bounce.get_content_type() == "multipart/report"
    assert bounce.get_param("report-type") == "delivery-status"
    assert bounce["Return-Path"] == "<>"
    assert "MAILER-DAEMON" in str(bounce["From"])
    parts = [p.get_content_type() for p in bounce.iter_parts()]
    assert parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    news = reason_of["automated:bulk"]
    assert news["List-Unsubscribe"] and news["Precedence"] == "bulk"
    ooo = reason_of["automated:out_of_office"]
    assert ooo["Auto-Submitted"] == "auto-replied" and ooo["In-Reply-To"]
    internal = reason_of["internal"]
    assert str(internal["From"]).endswith("@demo.example>")


def test_maildir_source_sees_what_the_generator_meant(demo: DemoSummary) -> None:
    events, counts = poll_events(demo.root)
    assert counts["inbox"] == (demo.inbox_messages, demo.inbox_unseen, demo.inbox_unanswered)
    assert counts["sent"][0] == demo.sent_messages
    by_mid = {e.message_id: e for e in events}
    for mid, reason in demo.reasons.items():
        event = by_mid[mid]
        if reason.startswith("automated:"):
            assert event.automated is not None, reason
        else:
            assert event.automated is None, reason
    for mid in demo.statuses:
        assert by_mid[mid].automated is None
        assert by_mid[mid].folder == "inbox"


def test_statuses_follow_from_the_mail_itself(demo: DemoSummary) -> None:
    """Recompute every status from the events, independently of the generator's bookkeeping."""
    events, _counts = poll_events(demo.root)
    replies: dict[str, list[MessageEvent]] = {}
    for event in events:
        if event.folder == "sent" and event.in_reply_to:
            replies.setdefault(event.in_reply_to, []).append(event)
    for mid, status in demo.statuses.items():
        received = next(e for e in events if e.message_id == mid).date
        answer = min((r.date for r in replies.get(mid, [])), default=None)
        if answer is None:
            waited = NOW - received
            expected = "waiting" if waited < WAITING_MAX else "breached" if waited > BREACHED_MIN else "?"
        else:
            took = answer - received
            expected = "answered_on_time" if took < timedelta(hours=24) else "answered_late"
            assert took < timedelta(hours=24) or took > BREACHED_MIN
        assert status == expected, mid


def test_members_are_configurable(tmp_path: Path) -> None:
    team = write_demo_maildir(
        tmp_path / "d",
        now=NOW,
        team_address="help@shop.example",
        members=[DemoMember("Chen Li", "chen@shop.example")],
    )
    assert set(team.responded_by.values()) == {"help@shop.example", "chen@shop.example"}
    alone = write_demo_maildir(tmp_path / "e", now=NOW, team_address="help@shop.example", members=())
    assert set(alone.responded_by.values()) == {"help@shop.example"}


def test_refuses_naive_now_and_non_empty_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        write_demo_maildir(tmp_path / "d", now=datetime(2026, 3, 11, 10, 0))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        write_demo_maildir(tmp_path / "full", now=NOW)


@pytest.mark.parametrize("day", range(7))
def test_every_weekday_and_hour_gives_the_same_verdicts(tmp_path: Path, day: int) -> None:
    now = datetime(2026, 3, 9, 0, 0, tzinfo=UTC) + timedelta(days=day, hours=day * 3 + 1)
    summary = write_demo_maildir(tmp_path / "d", now=now)
    assert (summary.waiting, summary.breached, summary.answered_late) == (5, 3, 2)
    events, _ = poll_events(tmp_path / "d", now)
    assert max(e.date for e in events) <= now
