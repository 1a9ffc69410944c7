"""Golden cases for breach reconciliation: tests/breach_cases/<name>/{case,expected}.yaml.

Each case is a sequence of evaluations (``steps``: ``now`` and the rules' findings) over a breach table that
starts with ``open`` rows and a ``history``. The pure :func:`monitor.breaches.reconcile` gives each step's
transitions; the same steps written through the real store must leave the same open breaches.
Regenerate with ``REPLYWATCH_REGEN=1 pytest tests/test_breach_cases.py`` and read the diff.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.breaches import BecameBreach, OpenBreach, Opened, Resolved, Transition, history_needed, reconcile
from monitor.rules.base import Finding, Level
from monitor.store.db import Store

CASES = Path(__file__).with_name("breach_cases")
REGEN = os.environ.get("REPLYWATCH_REGEN") == "1"


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _finding(spec: dict[str, Any]) -> Finding:
    return Finding(
        rule=spec["rule"],
        subject=spec["subject"],
        level=Level(spec["level"]),
        due_at=_dt(spec.get("due_at")),
        since=_dt(spec.get("since")),
        resolved_at=_dt(spec.get("resolved_at")),
        once=spec.get("once", True),
    )


def _open(team: str, spec: dict[str, Any]) -> OpenBreach:
    return OpenBreach(
        id=spec["id"],
        team=team,
        rule=spec["rule"],
        subject=spec["subject"],
        level=Level(spec["level"]),
        opened_at=_dt(spec["opened_at"]),  # type: ignore[arg-type]
        due_at=_dt(spec.get("due_at")),
    )


def _describe(t: Transition) -> dict[str, Any]:
    if isinstance(t, Opened):
        opened = {
            "opened": t.subject,
            "rule": t.rule,
            "level": t.level.value,
            "at": _iso(t.at),
            "breached_at": _iso(t.breached_at),
            "resolved_at": _iso(t.resolved_at),
        }
        return opened | ({"unreadable": list(t.unreadable)} if t.unreadable else {})
    if isinstance(t, BecameBreach):
        became = {"became_breach": t.subject, "rule": t.rule, "id": t.breach_id, "at": _iso(t.at)}
        return became | ({"unreadable": list(t.unreadable)} if t.unreadable else {})
    return {
        "resolved": t.subject,
        "rule": t.rule,
        "id": t.breach_id,
        "level": t.level.value,
        "at": _iso(t.at),
    }


class _Table:
    """The breach table as reconcile's caller keeps it: open rows and the history of breaches."""

    def __init__(self, team: str, case: dict[str, Any]) -> None:
        self.team = team
        self.open = {b.id: b for b in (_open(team, spec) for spec in case.get("open", []))}
        self.history = {tuple(pair) for pair in case.get("history", [])}
        self.history |= {(b.rule, b.subject) for b in self.open.values() if b.level is Level.BREACH}
        self.next_id = max(self.open, default=0) + 1

    def apply(self, transitions: list[Transition]) -> None:
        for t in transitions:
            if isinstance(t, Opened):
                if t.level is Level.BREACH:
                    self.history.add((t.rule, t.subject))
                if t.resolved_at is None:
                    self.open[self.next_id] = OpenBreach(
                        self.next_id, t.team, t.rule, t.subject, t.level, t.at, unreadable=t.unreadable
                    )
                self.next_id += 1
            elif isinstance(t, BecameBreach):
                self.open[t.breach_id] = replace(
                    self.open[t.breach_id], level=Level.BREACH, unreadable=t.unreadable
                )
                self.history.add((t.rule, t.subject))
            elif isinstance(t, Resolved):
                del self.open[t.breach_id]


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    team = case["team"]
    table = _Table(team, case)
    steps = []
    for step in case["steps"]:
        now = _dt(step["now"])
        assert now is not None
        findings = [_finding(f) for f in step["findings"]]
        open_rows = list(table.open.values())
        needed = history_needed(open_rows, findings)
        history = {p for p in table.history if p in needed}
        transitions = reconcile(team, open_rows, findings, history, now, step.get("unreadable", ()))
        table.apply(transitions)
        steps.append({"now": _iso(now), "transitions": [_describe(t) for t in transitions]})
    final = sorted((b.rule, b.subject, b.level.value) for b in table.open.values())
    got: dict[str, Any] = {"steps": steps, "open_after": [list(row) for row in final]}
    marked = _marked(table.open.values())
    return got | ({"unreadable_after": marked} if marked else {})


def _marked(rows: Iterable[OpenBreach]) -> list[list[Any]]:
    """Open rows judged on incomplete data: [rule, subject, unreadable sources]."""
    return sorted([b.rule, b.subject, list(b.unreadable)] for b in rows if b.unreadable)


def _cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_breach_case(case: Path) -> None:
    got = run_case(yaml.safe_load((case / "case.yaml").read_text()))
    expected_file = case / "expected.yaml"
    if REGEN or not expected_file.exists():
        expected_file.write_text(yaml.safe_dump(got, sort_keys=False))
        if not REGEN:
            pytest.fail(f"{expected_file} was missing and has been written: review it")
    assert got == yaml.safe_load(expected_file.read_text())


@pytest.mark.parametrize(
    "case",
    [p for p in _cases() if "open" not in yaml.safe_load((p / "case.yaml").read_text())],
    ids=lambda p: p.name,
)
def test_breach_case_through_the_store(case: Path, store: Store) -> None:
    """The store, fed each step's transitions, holds the same open breaches and history as the pure run."""
    spec = yaml.safe_load((case / "case.yaml").read_text())
    team = spec["team"]
    seeded = [tuple(pair) for pair in spec.get("history", [])]
    store.apply_transitions(
        [
            Opened(
                team,
                rule,
                subject,
                Level.BREACH,
                datetime(2026, 1, 1, tzinfo=UTC),
                None,
                datetime(2026, 1, 2, tzinfo=UTC),
            )
            for rule, subject in seeded
        ]
    )
    for step in spec["steps"]:
        now = _dt(step["now"])
        assert now is not None
        findings = [_finding(f) for f in step["findings"]]
        open_rows = store.open_breaches(team)
        history = store.breach_history(team, history_needed(open_rows, findings))
        store.apply_transitions(
            reconcile(team, open_rows, findings, history, now, step.get("unreadable", ()))
        )
    expected = run_case(spec)["open_after"]
    assert [[b.rule, b.subject, b.level.value] for b in store.open_breaches(team)] == expected
    assert _marked(store.open_breaches(team)) == run_case(spec).get("unreadable_after", [])
