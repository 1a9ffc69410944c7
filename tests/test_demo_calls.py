"""The demo's call log reads as the generator meant: each missed call's status, attempts and reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.calendar import BusinessCalendar
from monitor.demo_calls import LINE, MEMBERS, write_demo_call_log
from monitor.engine.phone import PhoneTeam, build_phone_awaiting
from monitor.rules.callback_within import CallbackWithin, CallbackWithinConfig
from monitor.telephony.calls import CallOptions, calls_from_legs
from monitor.telephony.layouts import AsteriskLayout
from monitor.verdict import evaluate_team

CALENDARS = {
    "always open": BusinessCalendar.always_open(),
    "London weekdays": BusinessCalendar.from_config("Europe/London", {"mon-fri": "09:00-17:30"}),
}


@pytest.mark.parametrize("calendar", list(CALENDARS), ids=list(CALENDARS))
@pytest.mark.parametrize(
    "now", [datetime(2026, 11, 18, 11, tzinfo=UTC), datetime(2026, 11, 22, 3, tzinfo=UTC)]
)
def test_the_demo_call_log_reads_as_meant(tmp_path: Path, calendar: str, now: datetime) -> None:
    summary = write_demo_call_log(tmp_path / "Master.csv", now=now)
    parsed = AsteriskLayout().parse(summary.path.read_text(), ZoneInfo("UTC"))
    assert parsed.errors == [] and len(parsed.legs) == summary.rows
    calls = calls_from_legs("pbx", parsed.legs, CallOptions(default_region="GB"))
    assert len(calls) == summary.calls
    team = PhoneTeam(
        name="support", lines=frozenset({LINE}), extensions=MEMBERS, calendar=CALENDARS[calendar]
    )
    result = build_phone_awaiting(calls, team)
    rule = CallbackWithin(CallbackWithinConfig.model_validate({"kind": "callback_within", "within": "24h"}))
    verdict = evaluate_team(result.items, [rule], CALENDARS[calendar], now, "support")
    assert {v.item.key: v.status.value for v in verdict.items} == summary.statuses
    assert {i.key: i.attempts for i in result.items if i.attempts > 1} == summary.attempts
    reasons = {u.event.external_id: u.reason for u in result.unopened}
    assert {key: reasons[key] for key in summary.reasons} == summary.reasons
    responders = {i.key: i.responder for i in result.items if i.response is not None}
    assert sorted(responders.values()) == ["Alice Smith", "Bob Jones", "Bob Jones"]
