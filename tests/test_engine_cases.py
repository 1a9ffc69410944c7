"""Golden cases for the engine and the verdict core: tests/engine_cases/<name>/{config,events,expected}.yaml.

Regenerate with ``REPLYWATCH_REGEN=1 pytest tests/test_engine_cases.py`` and read the diff.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import validate
from monitor.engine import build_awaiting
from monitor.evaluate import build_rules, team_context
from monitor.events import MessageEvent
from monitor.verdict import evaluate_team

CASES = Path(__file__).with_name("engine_cases")
REGEN = os.environ.get("REPLYWATCH_REGEN") == "1"


def _dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def load_messages(spec: list[dict[str, Any]]) -> list[MessageEvent]:
    out = []
    for i, m in enumerate(spec):
        out.append(
            MessageEvent(
                source=m.get("source", "inbox"),
                folder=m.get("folder", "inbox"),
                external_id=m.get("external_id", f"{m.get('folder', 'inbox')}/{i}"),
                message_id=m.get("id"),
                date=_dt(m["date"]),
                from_addr=m.get("from"),
                sender_addr=m.get("sender"),
                reply_to=_tuple(m.get("reply_to")),
                to_addrs=_tuple(m.get("to")),
                cc_addrs=_tuple(m.get("cc")),
                subject=m.get("subject", ""),
                in_reply_to=m.get("in_reply_to"),
                references=_tuple(m.get("references")),
                thread_id=m.get("thread_id"),
                automated=m.get("automated"),
                bulk_precedence=bool(m.get("bulk_precedence", False)),
                holding_marker=bool(m.get("holding", False)),
                preview=m.get("text", ""),
                removed_at=_dt(m["removed"]) if "removed" in m else None,
            )
        )
    return out


def run_case(case: Path) -> dict[str, Any]:
    config = yaml.safe_load((case / "config.yaml").read_text())
    events = yaml.safe_load((case / "events.yaml").read_text())
    loaded = validate(config, check_secrets=False)
    now = _dt(events["now"])
    out: dict[str, Any] = {}
    messages = load_messages(events["messages"])
    for team, team_cfg in loaded.config.teams.items():
        mine = [m for m in messages if m.source in team_cfg.sources]
        result = build_awaiting(mine, team_context(loaded.config, team))
        calendar = loaded.config.team_calendar(team)
        verdict = evaluate_team(result.items, build_rules(loaded.config, team), calendar, now, team)
        judged = verdict.items
        verdicts: dict[str, dict[str, str]] = {}
        for f in verdict.findings:
            verdicts.setdefault(f.subject, {})[f.rule] = f.level.value
        out[team] = {
            "items": [
                {
                    "key": j.item.key,
                    "customer": j.item.customer,
                    "received_at": _iso(j.item.received_at),
                    "responded_at": _iso(j.item.responded_at),
                    "responder": j.item.responder,
                    "owner": j.item.owner,
                    "acknowledged_at": _iso(j.item.acknowledged_at),
                    "due_at": _iso(j.due_at),
                    "business_seconds": round(j.business_seconds),
                    "status": j.status.value,
                    "rules": verdicts.get(j.item.key, {}),
                }
                for j in judged
            ],
            "unopened": sorted(
                (
                    {"id": getattr(u.event, "message_id", None) or u.event.external_id, "reason": u.reason}
                    for u in result.unopened
                ),
                key=lambda d: d["id"],
            ),
        }
    return out


@pytest.mark.parametrize("case", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_engine_case(case: Path) -> None:
    got = run_case(case)
    expected_file = case / "expected.yaml"
    if REGEN or not expected_file.exists():
        expected_file.write_text(yaml.safe_dump(got, sort_keys=False, allow_unicode=True))
        if not REGEN:
            pytest.fail(f"{expected_file} was missing and has been written: review it")
    expected = yaml.safe_load(expected_file.read_text())
    assert got == expected


def test_order_does_not_matter() -> None:
    """The same messages in reverse arrival order give the same items (Sent polled before INBOX)."""
    for case in sorted(p for p in CASES.iterdir() if p.is_dir()):
        config = yaml.safe_load((case / "config.yaml").read_text())
        events = yaml.safe_load((case / "events.yaml").read_text())
        loaded = validate(config, check_secrets=False)
        messages = load_messages(events["messages"])
        for team, team_cfg in loaded.config.teams.items():
            ctx = team_context(loaded.config, team)
            mine = [m for m in messages if m.source in team_cfg.sources]
            forward = build_awaiting(mine, ctx).items
            backward = build_awaiting(list(reversed(mine)), ctx).items
            assert forward == backward, case.name
