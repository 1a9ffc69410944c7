"""The daemon in-process: polls, evaluation, breach transitions, /metrics, failing sources, restart."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import validate
from monitor.daemon import Daemon
from monitor.evaluate import Evaluator
from monitor.sources.base import PollResult, TransientSourceError
from tests.mailfactory import deliver, make_maildir, make_message

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def config_for(
    tmp_path: Path, maildir: Path, extra_sources: dict[str, object] | None = None
) -> dict[str, object]:
    sources: dict[str, object] = {"mail": {"kind": "maildir", "path": str(maildir), "poll_every": "1m"}}
    sources.update(extra_sources or {})
    return {
        "store": {"url": f"sqlite:///{tmp_path / 'rw.db'}"},
        "calendars": {"london": {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:00"}}},
        "sources": sources,
        "teams": {
            "support": {
                "calendar": "london",
                "addresses": ["support@example.com"],
                "internal_domains": ["example.com"],
                "members": [{"name": "Alice", "email": ["alice@example.com"]}],
                "sources": list(sources),
                "member_metrics": True,
                "rules": [{"kind": "reply_within", "within": "8h", "warn_before": "2h"}],
            }
        },
    }


def scrape(daemon: Daemon) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{daemon.http.port}/metrics", timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return make_maildir(tmp_path / "mail")


@pytest.fixture
def running(tmp_path: Path, maildir: Path) -> Iterator[tuple[Daemon, Clock]]:
    clock = Clock(NOW)
    daemon = Daemon(validate(config_for(tmp_path, maildir)), clock=clock, listen=("127.0.0.1", 0))
    daemon.store.upgrade()
    daemon.http.start()
    daemon._apply_sources()
    yield daemon, clock
    daemon.stop()


def test_waiting_breach_and_resolution(running: tuple[Daemon, Clock], maildir: Path) -> None:
    daemon, clock = running
    # Monday 10:00 -> due Tuesday 10:00 (8 business hours, 09:00-17:00): breached by Wednesday noon.
    deliver(
        maildir,
        make_message(
            msgid="c1@cust.example",
            sender="carol@cust.example",
            to="support@example.com",
            date=datetime(2026, 11, 16, 10, 0, tzinfo=UTC),
        ),
    )
    # Wednesday 08:00 -> counts from 09:00; 3 business hours so far: waiting.
    deliver(
        maildir,
        make_message(
            msgid="c2@cust.example",
            sender="dave@cust.example",
            to="support@example.com",
            date=datetime(2026, 11, 18, 8, 0, tzinfo=UTC),
        ),
    )
    deliver(
        maildir,
        make_message(
            msgid="ooo@cust.example",
            sender="erin@cust.example",
            to="support@example.com",
            date=datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
            subject="Automatic reply: your ticket",
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )
    deliver(
        maildir,
        make_message(
            msgid="news@shop.example",
            sender="news@shop.example",
            to="support@example.com",
            date=datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
            subject="Our November deals",
            headers={"List-Unsubscribe": "<mailto:unsub@shop.example>", "Precedence": "bulk"},
        ),
    )
    assert daemon.poll_source("mail")
    daemon.evaluate()
    m = scrape(daemon)
    assert value(m, "replywatch_awaiting", team="support", channel="email") == 2
    assert value(m, "replywatch_awaiting_oldest_timestamp_seconds", team="support", channel="email") == (
        datetime(2026, 11, 16, 10, 0, tzinfo=UTC).timestamp()
    )
    assert value(m, "replywatch_breaches_open", team="support", rule="reply_within") == 1
    assert value(m, "replywatch_breaches_total", team="support", rule="reply_within") == 1
    assert value(m, "replywatch_source_up", source="mail") == 1
    assert (
        value(m, "replywatch_mailbox_messages", team="support", mailbox="mail", folder="inbox", state="total")
        == 4
    )

    # Alice answers Carol late (Wednesday 12:30): the breach resolves, the total stays.
    clock.now = NOW + timedelta(minutes=30)
    deliver(
        maildir,
        make_message(
            msgid="r1@example.com",
            sender="alice@example.com",
            to="carol@cust.example",
            in_reply_to="c1@cust.example",
            date=clock.now,
        ),
        folder=".Sent",
    )
    assert daemon.poll_source("mail")
    daemon.evaluate()
    daemon.evaluate()  # a second run changes nothing
    m = scrape(daemon)
    assert value(m, "replywatch_awaiting", team="support", channel="email") == 1
    assert value(m, "replywatch_breaches_open", team="support", rule="reply_within") == 0
    assert value(m, "replywatch_breaches_total", team="support", rule="reply_within") == 1
    # 16 business hours: Mon 10-17 (7h) + Tue 9-17 (8h) + Wed 9-12:30 (3.5h) = 18.5h.
    assert value(m, "replywatch_response_seconds_count", team="support", channel="email") == 1
    assert value(m, "replywatch_response_seconds_sum", team="support", channel="email") == 18.5 * 3600
    assert value(m, "replywatch_member_response_seconds_count", team="support", member="Alice") == 1
    (breach,) = [b for b in daemon.store.open_breaches()] or [None]
    assert breach is None


def test_warning_escalates_to_breach(running: tuple[Daemon, Clock], maildir: Path) -> None:
    daemon, clock = running
    # Wednesday 09:00 arrival: warning from 15:00 (6h), breach after 17:00.
    deliver(
        maildir,
        make_message(
            msgid="c1@cust.example",
            sender="carol@cust.example",
            to="support@example.com",
            date=datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
        ),
    )
    daemon.poll_source("mail")
    daemon.evaluate()
    assert daemon.store.open_breaches() == []
    clock.now = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)
    daemon.evaluate()
    (row,) = daemon.store.open_breaches()
    assert (row.level, row.opened_at) == ("warning", datetime(2026, 11, 18, 15, 0, tzinfo=UTC))
    clock.now = datetime(2026, 11, 19, 9, 30, tzinfo=UTC)
    daemon.evaluate()
    (row,) = daemon.store.open_breaches()
    assert (row.level, row.breached_at) == ("breach", datetime(2026, 11, 18, 17, 0, tzinfo=UTC))
    assert daemon.store.breach_counts() == [("support", "reply_within", 1, 1)]


def test_one_failing_source_does_not_stop_the_others(tmp_path: Path, maildir: Path) -> None:
    cfg = config_for(tmp_path, maildir, {"broken": {"kind": "maildir", "path": str(tmp_path / "missing")}})
    teams: Any = cfg["teams"]
    teams["support"]["sources"] = ["mail"]  # the broken source is another team's
    teams["billing"] = {**teams["support"], "addresses": ["billing@example.com"], "sources": ["broken"]}
    daemon = Daemon(validate(cfg), clock=Clock(NOW), listen=("127.0.0.1", 0))
    daemon.store.upgrade()
    daemon.http.start()
    daemon._apply_sources()
    try:
        deliver(
            maildir,
            make_message(
                msgid="c1@cust.example",
                sender="carol@cust.example",
                to="support@example.com",
                date=NOW - timedelta(hours=1),
            ),
        )
        assert not daemon.poll_source("broken")
        assert daemon.poll_source("mail")
        daemon.evaluate()
        m = scrape(daemon)
        assert value(m, "replywatch_source_up", source="broken") == 0
        assert value(m, "replywatch_source_up", source="mail") == 1
        errors = {k: v for k, v in m.items() if k[0] == "replywatch_source_errors_total"}
        assert sum(errors.values()) == 1
        assert value(m, "replywatch_awaiting", team="support", channel="email") == 1
        assert value(m, "replywatch_team_complete", team="support") == 1
        assert value(m, "replywatch_team_complete", team="billing") == 0
    finally:
        daemon.stop()


def _customer_answered_from_a_member_mailbox(tmp_path: Path, maildir: Path) -> tuple[Daemon, Clock, Path]:
    """Team support reads its shared inbox and Alice's own mailbox, where the answer is."""
    alice = make_maildir(tmp_path / "alice")
    cfg = config_for(tmp_path, maildir, {"alice-mail": {"kind": "maildir", "path": str(alice)}})
    deliver(
        maildir,
        make_message(
            msgid="c1@cust.example",
            sender="carol@cust.example",
            to="support@example.com",
            date=datetime(2026, 11, 16, 10, 0, tzinfo=UTC),  # due Tuesday 10:00: long past at NOW
        ),
    )
    deliver(
        alice,
        make_message(
            msgid="r1@example.com",
            sender="alice@example.com",
            to="carol@cust.example",
            date=datetime(2026, 11, 16, 11, 0, tzinfo=UTC),
            in_reply_to="c1@cust.example",
        ),
    )
    clock = Clock(NOW)
    daemon = Daemon(validate(cfg), clock=clock, listen=("127.0.0.1", 0))
    daemon.store.upgrade()
    daemon.http.start()
    daemon._apply_sources()
    return daemon, clock, alice


@pytest.mark.parametrize("start", range(3))
def test_a_team_is_not_judged_before_every_source_was_read(tmp_path: Path, maildir: Path, start: int) -> None:
    daemon, _clock, _ = _customer_answered_from_a_member_mailbox(tmp_path, maildir)
    ready = f"http://127.0.0.1:{daemon.http.port}/-/ready"
    try:
        # Evaluations may run at any moment of a fresh start: before, between and after the two polls.
        polls = ["mail", "alice-mail"]
        for step in range(3):
            if step == start:
                daemon.evaluate()
                m = scrape(daemon)
                assert value(m, "replywatch_breaches_total", team="support", rule="reply_within") == 0
            if step < len(polls):
                assert daemon.poll_source(polls[step])
        if start < len(polls):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(ready, timeout=5)
            assert err.value.code == 503  # not judged once on complete data yet
        daemon.evaluate()
        m = scrape(daemon)
        assert value(m, "replywatch_team_complete", team="support") == 1
        assert value(m, "replywatch_breaches_total", team="support", rule="reply_within") == 0
        assert value(m, "replywatch_awaiting", team="support", channel="email") == 0
        assert urllib.request.urlopen(ready, timeout=5).status == 200
    finally:
        daemon.stop()


def test_a_failing_member_mailbox_opens_no_breach_until_the_outage_limit(
    tmp_path: Path, maildir: Path
) -> None:
    daemon, clock, alice = _customer_answered_from_a_member_mailbox(tmp_path, maildir)
    alice.rename(tmp_path / "gone")  # Alice's mailbox cannot be read
    try:
        assert daemon.poll_source("mail")
        assert not daemon.poll_source("alice-mail")
        daemon.evaluate()
        m = scrape(daemon)
        assert value(m, "replywatch_team_complete", team="support") == 0
        assert value(m, "replywatch_breaches_total", team="support", rule="reply_within") == 0
        assert daemon.store.open_breaches() == []
        clock.now = NOW + timedelta(minutes=59)
        daemon.poll_source("mail")
        daemon.evaluate()
        assert daemon.store.open_breaches() == []
        clock.now = NOW + timedelta(hours=1)  # engine.judge_incomplete_after: judged on what can be read
        daemon.poll_source("mail")
        daemon.evaluate()
        (row,) = daemon.store.open_breaches()
        assert (row.subject, row.level, row.unreadable) == ("c1@cust.example", "breach", ("alice-mail",))
        assert value(scrape(daemon), "replywatch_team_complete", team="support") == 0
    finally:
        daemon.stop()


def test_restart_resumes_from_the_cursor(tmp_path: Path, maildir: Path) -> None:
    deliver(
        maildir,
        make_message(
            msgid="c1@cust.example",
            sender="carol@cust.example",
            to="support@example.com",
            date=NOW - timedelta(hours=1),
        ),
    )
    loaded = validate(config_for(tmp_path, maildir))
    first = Daemon(loaded, clock=Clock(NOW), listen=("127.0.0.1", 0))
    first.store.upgrade()
    first._apply_sources()
    assert first.poll_source("mail")
    first.stop()
    second = Daemon(loaded, clock=Clock(NOW), listen=("127.0.0.1", 0))
    second._apply_sources()
    try:
        assert not second.poll_source("mail")  # nothing new: the saved cursor was used
        assert len(second.store.messages(["mail"])) == 1
    finally:
        second.stop()


def test_metric_labels_never_carry_customer_data(running: tuple[Daemon, Clock], maildir: Path) -> None:
    daemon, _ = running
    deliver(
        maildir,
        make_message(
            msgid="secret-id@cust.example",
            sender="carol@cust.example",
            to="support@example.com",
            subject="Private matter",
            date=NOW - timedelta(days=3),
        ),
    )
    daemon.poll_source("mail")
    daemon.evaluate()
    body = urllib.request.urlopen(f"http://127.0.0.1:{daemon.http.port}/metrics", timeout=5).read().decode()
    for secret in ("carol", "cust.example", "secret-id", "Private"):
        assert secret not in body


def test_http_paths(running: tuple[Daemon, Clock]) -> None:
    daemon, _ = running
    base = f"http://127.0.0.1:{daemon.http.port}"
    assert urllib.request.urlopen(base + "/-/healthy", timeout=5).status == 200
    with pytest.raises(urllib.error.HTTPError) as not_ready:
        urllib.request.urlopen(base + "/-/ready", timeout=5)
    assert not_ready.value.code == 503  # no team judged on complete data yet
    daemon.poll_source("mail")
    daemon.evaluate()
    assert urllib.request.urlopen(base + "/-/ready", timeout=5).status == 200
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(base + "/nope", timeout=5)
    assert err.value.code == 404


def test_config_file_round_trip(tmp_path: Path, maildir: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config_for(tmp_path, maildir)))
    from monitor.config import load

    assert load(path).config.teams["support"].rules[0].within == timedelta(hours=8)


def test_an_item_older_than_the_lookback_still_closes(tmp_path: Path, maildir: Path) -> None:
    cfg = config_for(tmp_path, maildir)
    cfg["engine"] = {"lookback": "1d"}
    clock = Clock(NOW)
    daemon = Daemon(validate(cfg), clock=clock, listen=("127.0.0.1", 0))
    daemon.store.upgrade()
    daemon._apply_sources()
    try:
        deliver(
            maildir,
            make_message(
                msgid="old@cust.example",
                sender="carol@cust.example",
                to="support@example.com",
                date=NOW - timedelta(hours=12),
            ),
        )
        daemon.poll_source("mail")
        daemon.evaluate()
        assert [r.item_key for r in daemon.store.awaiting("support", open_only=True)] == ["old@cust.example"]
        clock.now = NOW + timedelta(days=3)  # the wait is now longer than the lookback
        deliver(
            maildir,
            make_message(
                msgid="late@example.com",
                sender="alice@example.com",
                to="carol@cust.example",
                in_reply_to="old@cust.example",
                date=clock.now,
            ),
            folder=".Sent",
        )
        daemon.poll_source("mail")
        daemon.evaluate()
        assert daemon.store.awaiting("support", open_only=True) == []
        assert daemon.store.open_breaches() == []
    finally:
        daemon.stop()


def test_a_failing_source_logs_once_and_once_on_recovery(
    tmp_path: Path, maildir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "later"
    cfg = config_for(tmp_path, maildir, {"later": {"kind": "maildir", "path": str(missing)}})
    clock = Clock(NOW)
    daemon = Daemon(validate(cfg), clock=clock, listen=("127.0.0.1", 0))
    daemon.store.upgrade()
    daemon._apply_sources()
    caplog.set_level("INFO", logger="monitor.supervisor")
    try:
        for minute in range(6):  # failing polls, spaced past any backoff
            clock.now = NOW + timedelta(hours=minute)
            assert not daemon.poll_source("later")
        make_maildir(missing)
        clock.now = NOW + timedelta(hours=7)
        daemon.poll_source("later")
        clock.now = NOW + timedelta(hours=8)
        daemon.poll_source("later")
    finally:
        daemon.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "monitor.supervisor"]
    assert sum(m.startswith("source failed") for m in messages) == 1
    assert messages.count("source recovered") == 1
    assert daemon.supervisor.snapshot()["poll:later"].errors == {"config": 6}


def test_one_teams_failing_evaluation_does_not_stop_the_others(
    tmp_path: Path, maildir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    billing_mail = make_maildir(tmp_path / "billing")
    cfg = config_for(tmp_path, maildir)
    support = cfg["teams"]["support"]  # type: ignore[index]
    cfg["sources"]["billing-mail"] = {"kind": "maildir", "path": str(billing_mail)}  # type: ignore[index]
    billing = {**support, "addresses": ["billing@example.com"], "sources": ["billing-mail"]}
    cfg["teams"] = {"billing": billing, "support": support}  # billing first: it fails, support still runs
    for box, team in ((billing_mail, "billing"), (maildir, "support")):
        arrived = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # Monday: breached by Wednesday noon
        deliver(
            box,
            make_message(
                msgid=f"{team}@cust.example",
                sender="carol@cust.example",
                to=f"{team}@example.com",
                date=arrived,
            ),
        )
    clock = Clock(NOW)
    daemon = Daemon(validate(cfg), clock=clock, listen=("127.0.0.1", 0))
    daemon.store.upgrade()
    daemon._apply_sources()
    real_run_team = Evaluator.run_team

    def run_team(self: Evaluator, team: str, now: datetime, *fresh: Any) -> int | None:
        if team == "billing":
            raise RuntimeError("rule exploded")
        return real_run_team(self, team, now, *fresh)

    monkeypatch.setattr(Evaluator, "run_team", run_team)
    caplog.set_level("INFO", logger="monitor.supervisor")
    try:
        assert daemon.poll_source("mail") and daemon.poll_source("billing-mail")
        for hour in range(3):  # each attempt past any backoff
            clock.now = NOW + timedelta(hours=hour)
            daemon.evaluate()
        assert [r.item_key for r in daemon.store.awaiting("support", open_only=True)] == [
            "support@cust.example"
        ]
        assert [b.team for b in daemon.store.open_breaches()] == ["support"]
        assert daemon.store.awaiting("billing", open_only=True) == []
        assert daemon.supervisor.snapshot()["evaluate:billing"].errors == {"internal": 3}

        monkeypatch.setattr(Evaluator, "run_team", real_run_team)
        clock.now = NOW + timedelta(hours=4)
        daemon.evaluate()
        assert sorted(b.team for b in daemon.store.open_breaches()) == ["billing", "support"]
    finally:
        daemon.stop()
    lines = [(r.getMessage(), vars(r).get("team")) for r in caplog.records if r.name == "monitor.supervisor"]
    assert lines == [
        ("evaluation failed: RuntimeError: rule exploded", "billing"),
        ("evaluation recovered", "billing"),
    ]


class BusyThenFineSource:
    """A source whose server first answers "busy, retry after 1 s" (as Graph does with 429 Retry-After)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.polled_at: list[float] = []

    def check(self) -> list[str]:
        return []

    def poll(self, cursor: dict[str, object] | None) -> PollResult:
        self.polled_at.append(time.monotonic())
        if len(self.polled_at) == 1:
            raise TransientSourceError("429 Too Many Requests", retry_after=timedelta(seconds=1))
        return PollResult(cursor={"seen": len(self.polled_at)})

    def close(self) -> None:
        pass


def test_a_scheduled_poll_is_retried_when_the_server_said(tmp_path: Path, maildir: Path) -> None:
    cfg = config_for(tmp_path, maildir)
    cfg["sources"]["mail"]["poll_every"] = "1h"  # type: ignore[index]
    sources: list[BusyThenFineSource] = []

    def factory(name: str, _cfg: object) -> BusyThenFineSource:
        sources.append(BusyThenFineSource(name))
        return sources[-1]

    daemon = Daemon(validate(cfg), source_factory=factory, listen=("127.0.0.1", 0))  # the real clock
    daemon.start()
    try:
        deadline = time.monotonic() + 10
        while len(sources[0].polled_at) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        daemon.stop()
    first, second = sources[0].polled_at[:2]  # the second poll came after 1 s, not after the hour
    assert 1.0 <= second - first < 5
    assert daemon.supervisor.snapshot()["poll:mail"].up


def test_a_store_that_is_down_is_logged_once_at_scrape(
    tmp_path: Path, maildir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config_for(tmp_path, maildir)
    folder = tmp_path / "db"
    cfg["store"] = {"url": f"sqlite:///{folder / 'rw.db'}"}
    daemon = Daemon(validate(cfg), clock=Clock(NOW), listen=("127.0.0.1", 0))
    folder.rmdir()  # the store cannot be opened: its folder is gone
    daemon.http.start()
    caplog.set_level("INFO", logger="monitor.exporters.prometheus")
    base = f"http://127.0.0.1:{daemon.http.port}"
    try:
        for _ in range(3):
            m = scrape(daemon)
            assert value(m, "replywatch_config_last_reload_successful") == 1
            assert not any(name == "replywatch_awaiting" for name, _ in m)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/-/ready", timeout=5)
        assert err.value.code == 503
        folder.mkdir()
        daemon.store.upgrade()
        for _ in range(2):
            assert value(scrape(daemon), "replywatch_awaiting", team="support", channel="email") == 0
        daemon._apply_sources()
        daemon.poll_source("mail")
        daemon.evaluate()  # ready once every team was judged on complete data
        assert urllib.request.urlopen(base + "/-/ready", timeout=5).status == 200
    finally:
        daemon.stop()
    records = [r for r in caplog.records if r.name == "monitor.exporters.prometheus"]
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in records] == [
        ("ERROR", "cannot read the store for /metrics"),
        ("INFO", "the store can be read for /metrics again"),
    ]
    assert "unable to open database file" in records[0].getMessage()


def test_a_reload_that_fixes_a_source_retries_it_at_once(tmp_path: Path, maildir: Path) -> None:
    from monitor.config import load

    cfg = config_for(tmp_path, maildir, {"later": {"kind": "maildir", "path": str(tmp_path / "typo")}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    daemon = Daemon(load(path), clock=Clock(NOW), listen=("127.0.0.1", 0))
    daemon.store.upgrade()
    daemon._apply_sources()
    try:
        daemon.poll_source("later")
        assert daemon.supervisor.snapshot()["poll:later"].next_attempt == NOW + timedelta(minutes=15)
        cfg["sources"]["later"]["path"] = str(make_maildir(tmp_path / "fixed"))  # type: ignore[index]
        path.write_text(yaml.safe_dump(cfg))
        assert daemon.reload()
        daemon.poll_source("later")  # same instant: the config error's 15 minutes are not waited out
        health = daemon.supervisor.snapshot()["poll:later"]
        assert (health.up, health.failures, health.next_attempt) == (True, 0, None)
    finally:
        daemon.stop()


def test_a_poll_that_found_nothing_writes_nothing(running: tuple[Daemon, Clock], maildir: Path) -> None:
    daemon, clock = running
    message = make_message(
        msgid="c1@cust.example", sender="carol@cust.example", to="support@example.com", date=NOW
    )
    deliver(maildir, message)
    saves: list[datetime] = []
    save_poll = daemon.store.save_poll

    def counting(source: str, result: PollResult, now: datetime) -> Any:
        saves.append(now)
        return save_poll(source, result, now)

    daemon.store.save_poll = counting  # type: ignore[method-assign]
    assert daemon.poll_source("mail")
    assert len(saves) == 1 and daemon.store.last_polls()["mail"] == NOW
    for seconds in (60, 120, 149):  # nothing changed: neither the cursor nor the counts are written again
        clock.now = NOW + timedelta(seconds=seconds)
        assert not daemon.poll_source("mail")
    assert len(saves) == 1 and daemon.store.last_polls()["mail"] == NOW
    # The stored last poll is refreshed at half the staleness limit (5 minutes here), so that `status`
    # beside the daemon never sees a source that is polled and unchanged as stale: that time alone.
    cursor, counts = daemon.store.load_cursor("mail"), daemon.store.mailbox_counts(["mail"])
    clock.now = NOW + timedelta(seconds=151)
    assert not daemon.poll_source("mail")
    assert len(saves) == 1 and daemon.store.last_polls()["mail"] == clock.now
    assert daemon.store.load_cursor("mail") == cursor and daemon.store.mailbox_counts(["mail"]) == counts
    for seconds in (211, 300):  # the next refresh is half the limit after this one
        clock.now = NOW + timedelta(seconds=seconds)
        assert not daemon.poll_source("mail")
    assert daemon.store.last_polls()["mail"] == NOW + timedelta(seconds=151)
    clock.now = NOW + timedelta(seconds=302)
    assert not daemon.poll_source("mail")
    assert len(saves) == 1 and daemon.store.last_polls()["mail"] == clock.now
    deliver(
        maildir,
        make_message(msgid="c2@cust.example", sender="dan@cust.example", to="support@example.com", date=NOW),
    )
    clock.now = NOW + timedelta(seconds=310)
    assert daemon.poll_source("mail")  # something new: written at once
    assert len(saves) == 2 and len(daemon.store.messages(["mail"])) == 2
    clock.now = NOW + timedelta(seconds=370)
    assert not daemon.poll_source("mail") and len(saves) == 2


def test_a_poll_that_changes_data_during_an_evaluation_is_evaluated_before_it_ends(
    running: tuple[Daemon, Clock], maildir: Path
) -> None:
    """No evaluation asked for by a poll is skipped because one was running: the running one goes again."""
    daemon, clock = running
    clock.now = NOW + timedelta(hours=1)
    deliver(
        maildir,
        make_message(
            msgid="c1@cust.example", sender="carol@cust.example", to="support@example.com", date=NOW
        ),
    )
    assert daemon.poll_source("mail")
    run_team = daemon.evaluator.run_team
    runs: list[str] = []

    def then_new_mail(team: str, now: datetime, freshness: Any = None) -> int | None:
        runs.append(team)
        judged = run_team(team, now, freshness)
        if len(runs) == 1:  # a poll finds new mail while this evaluation runs
            clock.now += timedelta(seconds=1)
            deliver(
                maildir,
                make_message(
                    msgid="c2@cust.example", sender="dan@cust.example", to="support@example.com", date=NOW
                ),
            )
            assert daemon.poll_source("mail")
        return judged

    daemon.evaluator.run_team = then_new_mail  # type: ignore[method-assign]
    daemon.evaluate()
    assert runs == ["support", "support"]
    assert [count for _, _, count, _ in daemon.store.awaiting_summary()] == [2]
    daemon.evaluate()
    assert len(runs) == 3  # nothing asked meanwhile: once


def test_evaluations_asked_for_by_many_polls_are_never_skipped_nor_lost(
    tmp_path: Path, maildir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """At a start with many mailboxes every poll asks for an evaluation. However the asks fall around a
    running one (before it judges, while it judges, as it ends), none is reported as skipped, and the
    last ask is followed by an evaluation that starts after it."""
    import random
    import threading

    cfg = config_for(tmp_path, maildir)
    cfg["sources"]["mail"]["poll_every"] = "1h"  # type: ignore[index]
    daemon = Daemon(validate(cfg), listen=("127.0.0.1", 0))  # the real clock and scheduler
    run_team = daemon.evaluator.run_team
    started: list[float] = []

    def slow(team: str, now: datetime, freshness: Any = None) -> int | None:
        started.append(time.monotonic())
        time.sleep(0.01)
        return run_team(team, now, freshness)

    daemon.evaluator.run_team = slow  # type: ignore[method-assign]
    evaluate = daemon.evaluate

    def loaded() -> None:  # a busy machine: the run's thread starts late, and ends late after judging
        time.sleep(0.005)
        evaluate()
        time.sleep(0.005)

    daemon.evaluate = loaded  # type: ignore[method-assign]
    asked: list[float] = []
    daemon.start()
    try:

        def polls(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(150):
                time.sleep(rng.uniform(0, 0.012))
                asked.append(time.monotonic())
                daemon._evaluate_soon()

        threads = [threading.Thread(target=polls, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        last = max(asked)
        deadline = time.monotonic() + 5
        while not (started and started[-1] > last) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        daemon.stop()
    assert started[-1] > last, "the last poll's evaluation never came"
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped == []
    assert len(started) < len(asked) / 2  # asks that fall on a waiting run share it
