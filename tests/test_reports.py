"""Team reports: periods, and a replayed month whose report agrees number for number with ``replay``."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main
from monitor.config import validate
from monitor.daemon import Daemon
from monitor.exporters.reports.period import last_complete, parse_period
from monitor.exporters.reports.render import duration
from tests.report_month import Month, month_config, write_month
from tests.test_daemon import Clock

POLLED_AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_months_and_weeks_in_the_team_zone() -> None:
    october = parse_period("2026-10", "Europe/London")
    assert (october.first, october.last) == (date(2026, 10, 1), date(2026, 10, 31))
    assert october.start == datetime(2026, 9, 30, 23, 0, tzinfo=UTC)  # BST
    assert october.end == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)  # GMT again
    assert october.previous().label == "2026-09"
    assert parse_period("2026-01", "UTC").previous().label == "2025-12"
    week = parse_period("2026-W44", "Europe/London")
    assert (week.first, week.last) == (date(2026, 10, 26), date(2026, 11, 1))
    assert len(week.days()) == 7
    assert parse_period("2027-W01", "UTC").previous().label == "2026-W53"  # 2026 has 53 ISO weeks
    monday_morning = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert last_complete("month", monday_morning, "Europe/London").label == "2026-10"
    assert last_complete("week", monday_morning, "Europe/London").label == "2026-W44"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("2026-13", "invalid period '2026-13': month 13 does not exist"),
        ("2025-W53", "invalid period '2025-W53': 2025 has no ISO week 53"),
        ("October", "invalid period 'October': expected a month (2026-10) or an ISO week (2026-W44)"),
        ("9999-12", "invalid period '9999-12': out of range"),
        ("0001-01", "invalid period '0001-01': out of range"),
    ],
)
def test_invalid_periods_are_quoted(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        parse_period(text, "UTC")


def nearest_rank(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1] if ordered else None


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Month, Path]]:
    """Two generated months polled into a store by the daemon, and the config file."""
    root = tmp_path_factory.mktemp("month")
    generated = write_month(root)
    config = month_config(
        generated,
        f"sqlite:///{root / 'rw.db'}",
        report={"every": "month", "to": ["lead"], "per_member": True},
    )
    config["notifiers"] = {
        "mail": {"kind": "smtp", "host": "127.0.0.1", "port": 25, "tls": "none", "from": "rw@example.com"}
    }
    config["teams"]["support"]["notify"] = {"via": "mail", "escalation": [{"at": "breach", "to": ["owner"]}]}
    path = root / "replywatch.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    daemon = Daemon(validate(config), clock=Clock(POLLED_AT), listen=("127.0.0.1", 0))
    try:
        daemon.store.upgrade()
        daemon._apply_sources()
        assert daemon.poll_source("support-inbox") and daemon.poll_source("pbx")
    finally:
        daemon.stop()
    yield generated, path


def replay_rows(path: Path, tmp: Path, label: str) -> tuple[list[dict[str, str]], str]:
    """Replay over exactly the period (its zone's midnights), judged at its end."""
    period = parse_period(label, "Europe/London")
    out = tmp / f"replay-{label}.csv"
    since, until = period.start.isoformat(), period.end.isoformat()
    main(["replay", "-c", str(path), "--since", since, "--until", until, "--out", str(out)])
    return list(csv.DictReader(out.open(encoding="utf-8"))), out.name


def report_json(path: Path, tmp: Path, label: str) -> dict[str, Any]:
    out = tmp / f"report-{label}.json"
    args = ["report", "-c", str(path), "--team", "support", "--period", label]
    assert main([*args, "--format", "json", "--out", str(out)]) == 0
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def channel_from_replay(rows: list[dict[str, str]], channel: str) -> dict[str, Any]:
    mine = [r for r in rows if r["channel"] == channel]
    count = {s: sum(1 for r in mine if r["status"] == s) for s in
             ("answered_on_time", "answered_late", "waiting", "breached")}  # fmt: skip
    answered = [float(r["business_seconds"]) for r in mine if r["responded_at"]]
    decided = count["answered_on_time"] + count["answered_late"] + count["breached"]
    longest = sorted(mine, key=lambda r: (-float(r["business_seconds"]), r["received_at"]))[:5]
    return {
        "items": len(mine),
        **count,
        "answered": len(answered),
        "on_time_share": count["answered_on_time"] / decided if decided else None,
        "median_seconds": nearest_rank(answered, 0.5),
        "p90_seconds": nearest_rank(answered, 0.9),
        "longest": [(r["customer"], round(float(r["business_seconds"]))) for r in longest],
    }


def breaches_from_summary(output: str, csv_name: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if csv_name in line)
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+) breaches (\d+)", line)}


@pytest.mark.parametrize("label", ["2026-10", "2026-W43"])
def test_report_numbers_equal_replay_over_the_same_period(
    month: tuple[Month, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], label: str
) -> None:
    _, path = month
    data = report_json(path, tmp_path, label)
    capsys.readouterr()
    rows, name = replay_rows(path, tmp_path, label)
    breaches = breaches_from_summary(capsys.readouterr().out, name)
    previous_rows, _ = replay_rows(path, tmp_path, data["previous_period"]["label"])

    assert data["period"]["label"] == label
    assert sum(data["statuses"].values()) == len(rows) > 20
    reported_breaches: dict[str, int] = {}
    for channel in data["channels"]:
        expected = channel_from_replay(rows, channel["channel"])
        for key in ("items", "answered", "answered_on_time", "answered_late", "waiting", "breached",
                    "on_time_share", "median_seconds", "p90_seconds"):  # fmt: skip
            assert channel[key] == pytest.approx(expected[key], abs=1), (channel["channel"], key)
        longest = [(i["customer"], i["business_seconds"]) for i in channel["longest_waits"]]
        assert longest == expected["longest"]
        before = channel_from_replay(previous_rows, channel["channel"])
        for key in ("items", "answered_on_time", "median_seconds"):
            assert channel["previous"][key] == pytest.approx(before[key], abs=1), ("previous", key)
        assert channel["trend"]["items"] == expected["items"] - before["items"]
        for rule, n in channel["breaches"].items():
            reported_breaches[rule] = reported_breaches.get(rule, 0) + n
    assert reported_breaches == breaches
    assert {c["channel"] for c in data["channels"]} == {"email", "phone"}

    phone = channel_from_replay(rows, "phone")
    assert data["missed_calls"]["missed"] == phone["items"]
    assert data["missed_calls"]["returned"] == phone["answered"]
    for member in data["members"]:
        theirs = [r for r in rows if r["responder"] == member["name"]]
        assert member["answered"] == len(theirs)
        assert member["on_time"] == sum(1 for r in theirs if r["status"] == "answered_on_time")
    assert sum(m["answered"] for m in data["members"]) == sum(1 for r in rows if r["responder"])
    perfect = [m["name"] for m in data["members"] if m["answered"] and m["on_time"] == m["answered"]]
    assert data["wins"]["perfect_members"] == sorted(perfect)


def test_markdown_and_html_show_the_json_numbers(month: tuple[Month, Path], tmp_path: Path) -> None:
    _, path = month
    data = report_json(path, tmp_path, "2026-10")
    md = tmp_path / "report.md"
    html = tmp_path / "report.html"
    base = ["report", "-c", str(path), "--team", "support", "--period", "2026-10"]
    assert main([*base, "--format", "md", "--out", str(md)]) == 0
    assert main([*base, "--out", str(html)]) == 0
    text, page = md.read_text(encoding="utf-8"), html.read_text(encoding="utf-8")
    assert text.startswith("# support: October 2026\n")
    for channel in data["channels"]:
        share = f"{round(100 * channel['on_time_share'])}%"
        assert f"| On time | {share} |" in text
        assert f"| Median response | {duration(channel['median_seconds'])} |" in text
        assert f">{share}<" in page and f">{duration(channel['p90_seconds'])}<" in page
    for member in data["members"]:
        assert f"| {member['name']} | {member['answered']} |" in text
    assert page.count('src="data:image/png;base64,') == 2


def test_per_member_off_names_nobody(month: tuple[Month, Path], tmp_path: Path) -> None:
    _, path = month
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["teams"]["support"]["report"]["per_member"] = False
    private = tmp_path / "private.yaml"
    private.write_text(yaml.safe_dump(config, allow_unicode=True))
    data = report_json(private, tmp_path, "2026-10")
    assert data["members"] is None and data["wins"]["perfect_members"] == []
    text = json.dumps(data, ensure_ascii=False)
    for name in ("Alice Smith", "Bob Jones", "Chloé Martin"):
        assert name not in text
    out = tmp_path / "private.md"
    args = ["report", "-c", str(private), "--team", "support", "--period", "2026-10", "--format", "md"]
    assert main([*args, "--out", str(out)]) == 0
    assert "Alice Smith" not in out.read_text(encoding="utf-8")


def test_report_usage_errors(
    month: tuple[Month, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = month
    base = ["report", "-c", str(path)]
    assert main([*base, "--team", "sales", "--period", "2026-10"]) == 1
    assert "unknown team 'sales' (known: support)" in capsys.readouterr().err
    assert main([*base, "--team", "support", "--period", "2026/10"]) == 1
    assert "--period: invalid period '2026/10'" in capsys.readouterr().err
    empty = yaml.safe_load(path.read_text(encoding="utf-8"))
    empty["store"]["url"] = f"sqlite:///{tmp_path / 'empty.db'}"
    other = tmp_path / "empty.yaml"
    other.write_text(yaml.safe_dump(empty, allow_unicode=True))
    assert main(["db", "upgrade", "-c", str(other)]) == 0
    assert main(["report", "-c", str(other), "--team", "support", "--period", "2026-10"]) == 2
    assert "no source of team 'support' has been polled" in capsys.readouterr().err


def test_streak_counts_open_days_without_a_missed_deadline() -> None:
    from monitor.exporters.reports.figures import Day, _longest_streak, percentile

    def day(n: int, *, breach: bool = False, open_: bool = True) -> Day:
        return Day(date(2026, 10, n), 0, None, 0, 0, breach, open_)

    days = [day(1), day(2, breach=True), day(3), day(4, open_=False), day(5, open_=False), day(6), day(7),
            day(8, breach=True), day(9)]  # fmt: skip
    streak = _longest_streak(days)
    assert (streak.days, streak.first, streak.last) == (3, date(2026, 10, 3), date(2026, 10, 7))
    assert _longest_streak([day(1, breach=True)]).days == 0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 11)], 0.9) == 9.0
    assert percentile([], 0.5) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (40, "40s"),
        (600, "10m"),
        (5100, "1h 25m"),
        (7200, "2h"),
        (32 * 3600, "32h"),
        (90000, "25h"),
    ],
)
def test_durations_read_in_hours_never_days(seconds: float | None, text: str) -> None:
    """Business durations: 32 business hours are "32h", not "1d 8h" (a business day is not 24 hours)."""
    assert duration(seconds) == text


_EDGE_CONFIG = """
calendars:
  ldn: {timezone: Europe/London, hours: {mon-fri: "09:00-17:00"}}
sources:
  inbox: {kind: mbox, path: /srv/x.mbox}
teams:
  support:
    calendar: ldn
    addresses: [support@example.com]
    internal_domains: [example.com]
    members: [{name: Alice, email: [alice@example.com]}]
    sources: [inbox]
    rules:
      - {kind: reply_within, within: 24h}
"""


def _edge_figures(messages: list[dict[str, Any]], label: str, now: str) -> Any:
    from monitor.exporters.reports.figures import team_report
    from tests.test_engine_cases import load_messages

    config = validate(yaml.safe_load(_EDGE_CONFIG)).config
    events = load_messages(messages)
    at = datetime.fromisoformat(now)
    period = parse_period(label, "Europe/London")
    return team_report(config, "support", events, [], period, at, per_member=False).current


def test_a_customer_waiting_at_the_period_end_is_carried_into_the_next_report() -> None:
    """Mail on the last Friday of October, answered six business days late in November: October shows it
    waiting within its deadline (as replay over October does), November's report says what became of it."""
    messages = [
        {"id": "c1@cust", "from": "carol@cust.example", "to": "support@example.com", "subject": "Invoice",
         "date": "2026-10-30T15:00:00Z"},
        {"id": "r1@example.com", "folder": "sent", "from": "alice@example.com", "to": "carol@cust.example",
         "in_reply_to": "c1@cust", "subject": "Re: Invoice", "date": "2026-11-10T10:00:00Z"},
    ]  # fmt: skip
    october = _edge_figures(messages, "2026-10", "2026-12-02T09:00:00+00:00").channel("email")
    assert (october.items, october.waiting, october.carried) == (1, 1, None)
    november = _edge_figures(messages, "2026-11", "2026-12-02T09:00:00+00:00").channel("email")
    assert november.items == 0
    carried = november.carried
    assert carried is not None
    assert (carried.items, carried.answered_late, carried.answered_on_time, carried.waiting) == (1, 1, 0, 0)


def test_mail_deleted_after_its_deadline_stays_a_miss_in_the_share() -> None:
    """One customer answered on time, one never answered whose mail was deleted three days after its
    deadline: the share is 50%, not 100%; a deletion after the period's end is not seen in its report."""
    messages = [
        {"id": "c1@cust", "from": "carol@cust.example", "to": "support@example.com", "subject": "A",
         "date": "2026-11-02T10:00:00Z"},
        {"id": "r1@example.com", "folder": "sent", "from": "alice@example.com", "to": "carol@cust.example",
         "in_reply_to": "c1@cust", "subject": "Re: A", "date": "2026-11-02T11:00:00Z"},
        {"id": "c2@cust", "from": "dave@cust.example", "to": "support@example.com", "subject": "B",
         "date": "2026-11-03T10:00:00Z", "removed": "2026-11-09T10:00:00Z"},
    ]  # fmt: skip
    email = _edge_figures(messages, "2026-11", "2026-12-02T09:00:00+00:00").channel("email")
    assert (email.removed, email.removed_late, email.on_time_share) == (1, 1, 0.5)
    late = [dict(m, removed="2026-12-01T10:00:00Z") if m["id"] == "c2@cust" else m for m in messages]
    email = _edge_figures(late, "2026-11", "2026-12-02T09:00:00+00:00").channel("email")
    assert (email.removed, email.breached, email.on_time_share) == (0, 1, 0.5)
