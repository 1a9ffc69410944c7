"""Golden cases for the phone engine judged by the verdict core with ``callback_within``:
tests/phone_cases/<name>/{config.yaml,calls.yaml,expected.yaml}.

``config.yaml`` holds one team: ``calendar`` (timezone, hours), ``lines``, ``extensions`` (extension ->
member) and ``rules``. Regenerate with ``REPLYWATCH_REGEN=1 pytest tests/test_phone_cases.py`` and read
the diff.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.awaiting import EngineResult
from monitor.calendar import BusinessCalendar
from monitor.engine.phone import PhoneOptions, PhoneTeam, build_phone_awaiting
from monitor.events import CallDirection, CallEvent
from monitor.rules.base import RULES, EngineOptions, Rule
from monitor.verdict import evaluate_team

CASES = Path(__file__).with_name("phone_cases")
REGEN = os.environ.get("REPLYWATCH_REGEN") == "1"


def _dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def load_calls(spec: list[dict[str, Any]]) -> list[CallEvent]:
    return [
        CallEvent(
            source=c.get("source", "pbx"),
            external_id=str(c["id"]),
            started_at=_dt(c["at"]),
            direction=CallDirection(c["direction"]),
            caller=str(c["from"]),
            callee=str(c["to"]),
            answered=bool(c.get("answered", False)),
            answered_by=str(c["answered_by"]) if "answered_by" in c else None,
            line=c.get("line"),
            wait_seconds=float(c.get("wait", 30)),
            rang=tuple(str(e) for e in c.get("rang", ())),
        )
        for c in spec
    ]


def load_team(config: dict[str, Any]) -> tuple[PhoneTeam, list[Rule], BusinessCalendar]:
    rule_configs = [RULES.get(r["kind"]).config.model_validate(r) for r in config["rules"]]
    rules: list[Rule] = [RULES.get(c.kind).factory(c) for c in rule_configs]
    options = EngineOptions()
    for rule_config in rule_configs:
        options = options.merge(rule_config.engine_options())
    cal = config["calendar"]
    calendar = BusinessCalendar.from_config(cal["timezone"], cal["hours"])
    team = PhoneTeam(
        name=config["team"],
        lines=frozenset(config.get("lines", ())),
        extensions={str(k): v for k, v in config.get("extensions", {}).items()},
        calendar=calendar,
        options=PhoneOptions.from_rules(options),
    )
    return team, rules, calendar


def run_case(case: Path) -> dict[str, Any]:
    config = yaml.safe_load((case / "config.yaml").read_text())
    spec = yaml.safe_load((case / "calls.yaml").read_text())
    team, rules, calendar = load_team(config)
    result: EngineResult = build_phone_awaiting(load_calls(spec["calls"]), team)
    verdict = evaluate_team(result.items, rules, calendar, _dt(spec["now"]), team.name)
    levels: dict[str, dict[str, str]] = {}
    for finding in verdict.findings:
        levels.setdefault(finding.subject, {})[finding.rule] = finding.level.value
    return {
        "items": [
            {
                "key": j.item.key,
                "customer": j.item.customer,
                "received_at": _iso(j.item.received_at),
                "attempts": j.item.attempts,
                "outside_hours": j.item.outside_hours,
                "owner": j.item.owner,
                "responded_at": _iso(j.item.responded_at),
                "response_id": j.item.response_id,
                "responder": j.item.responder,
                "due_at": _iso(j.due_at),
                "business_seconds": round(j.business_seconds),
                "status": j.status.value,
                "rules": levels.get(j.item.key, {}),
            }
            for j in verdict.items
        ],
        "unopened": [{"id": u.event.external_id, "reason": u.reason} for u in result.unopened],
    }


@pytest.mark.parametrize("case", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_phone_case(case: Path) -> None:
    got = run_case(case)
    expected_file = case / "expected.yaml"
    if REGEN or not expected_file.exists():
        expected_file.write_text(yaml.safe_dump(got, sort_keys=False, allow_unicode=True))
        if not REGEN:
            pytest.fail(f"{expected_file} was missing and has been written: review it")
    assert got == yaml.safe_load(expected_file.read_text())


def test_call_order_does_not_matter() -> None:
    """The same calls in reverse order give the same items (two sources polled in any order)."""
    for case in sorted(p for p in CASES.iterdir() if p.is_dir()):
        config = yaml.safe_load((case / "config.yaml").read_text())
        calls = load_calls(yaml.safe_load((case / "calls.yaml").read_text())["calls"])
        team = load_team(config)[0]
        assert build_phone_awaiting(calls, team) == build_phone_awaiting(list(reversed(calls)), team), (
            case.name
        )
