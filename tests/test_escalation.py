"""Golden cases for the escalation policy: transitions in, owed notifications (step, recipient, time) out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from monitor.breaches import BecameBreach, Opened, Resolved, Transition
from monitor.calendar import BusinessCalendar, parse_hours
from monitor.escalation import (
    EscalationStep,
    Member,
    NotifyConfig,
    due_steps,
    parse_at,
    recipients,
    send_time,
)
from monitor.rules.base import Level

# Mon-Fri 09:00-17:00 in London; 2026-11-16 is a Monday (GMT, so London time equals UTC).
LONDON = BusinessCalendar("Europe/London", parse_hours({"mon-fri": "09:00-17:00"}))
MEMBERS = [
    Member("Alice Smith", "alice@example.com", lead=True),
    Member("Bob", "bob@example.com"),
    Member("Carl", None),
]
POLICY = NotifyConfig.model_validate(
    {
        "via": "mail",
        "escalation": [
            {"at": "warning", "to": ["owner"]},
            {"at": "breach", "to": ["owner", "team"]},
            {"at": "breach+4h", "to": ["lead"]},
            {"at": "breach+1d", "to": ["ops-manager@example.com"], "urgent": True},
            {"at": "resolved", "to": ["owner"]},
        ],
    }
)


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


CASES: list[tuple[str, Transition, str | None, list[tuple[str, str, datetime]]]] = [
    (
        "warning in hours goes to the owner at once",
        Opened("support", "reply_within", "m1", Level.WARNING, t(16, 14), t(16, 16)),
        "Bob",
        [("warning", "bob@example.com", t(16, 14))],
    ),
    (
        "warning at night waits for the opening",
        Opened("support", "reply_within", "m1", Level.WARNING, t(16, 22), t(17, 11)),
        "Bob",
        [("warning", "bob@example.com", t(17, 9))],
    ),
    (
        "breach: owner and team at once, lead after 4 business hours, manager after 24 (urgent)",
        BecameBreach(7, "support", "reply_within", "m1", t(16, 15)),
        "Bob",
        [
            ("breach", "bob@example.com", t(16, 15)),
            ("breach", "alice@example.com", t(16, 15)),
            ("breach+4h", "alice@example.com", t(17, 11)),
            ("breach+1d", "ops-manager@example.com", t(19, 15)),  # 2 + 8 + 8 + 6 business hours
        ],
    ),
    (
        "a breach on Friday evening escalates on Monday morning, the delays counted in business time",
        Opened("support", "reply_within", "m1", Level.BREACH, t(20, 18), t(20, 18)),
        None,
        [
            ("breach", "alice@example.com", t(23, 9)),
            ("breach", "bob@example.com", t(23, 9)),
            ("breach+4h", "alice@example.com", t(23, 13)),
            ("breach+1d", "ops-manager@example.com", t(25, 17)),  # three 8-hour days
        ],
    ),
    (
        "a breach already over when found is owed nothing",
        Opened("support", "reply_within", "m1", Level.BREACH, t(16, 10), t(16, 10), t(16, 12)),
        "Bob",
        [],
    ),
    (
        "a resolved breach tells the owner",
        Resolved(7, "support", "reply_within", "m1", Level.BREACH, t(16, 16)),
        "Bob",
        [("resolved", "bob@example.com", t(16, 16))],
    ),
    (
        "a resolved warning is owed nothing",
        Resolved(7, "support", "reply_within", "m1", Level.WARNING, t(16, 16)),
        "Bob",
        [],
    ),
]


@pytest.mark.parametrize(("case", "transition", "owner", "expected"), CASES, ids=[c[0] for c in CASES])
def test_golden(
    case: str, transition: Transition, owner: str | None, expected: list[tuple[str, str, datetime]]
) -> None:
    steps = due_steps(POLICY.escalation, [(7, transition)], {7: owner}, MEMBERS, LONDON)
    assert [(s.step, s.recipient, s.due_at) for s in steps] == expected
    assert all(s.breach_id == 7 for s in steps)


def test_unaddressed_notifier_gets_one_row_per_step() -> None:
    steps = due_steps(
        POLICY.escalation,
        [(3, BecameBreach(3, "support", "r", "m", t(16, 10)))],
        {},
        MEMBERS,
        LONDON,
        addressed=False,
    )
    assert [(s.step, s.recipient) for s in steps] == [
        ("breach", "owner,team"),
        ("breach+4h", "lead"),
        ("breach+1d", "ops-manager@example.com"),
    ]


def test_recipients_fall_back_to_the_team() -> None:
    assert recipients(["owner"], "Carl", MEMBERS) == ["alice@example.com", "bob@example.com"]
    assert recipients(["owner"], "Someone gone", MEMBERS) == ["alice@example.com", "bob@example.com"]
    assert recipients(["lead", "owner", "x@example.com"], "Alice Smith", MEMBERS) == [
        "alice@example.com",
        "x@example.com",
    ]
    no_lead = [Member("Bob", "bob@example.com")]
    assert recipients(["lead"], None, no_lead) == ["bob@example.com"]


def test_send_time() -> None:
    assert send_time(t(21, 3), False, LONDON) == t(23, 9)  # Saturday night -> Monday 09:00
    assert send_time(t(21, 3), True, LONDON) == t(21, 3)
    assert send_time(t(18, 10), False, LONDON) == t(18, 10)


@pytest.mark.parametrize(
    ("text", "point", "seconds"),
    [
        ("warning", "warning", 0),
        ("breach", "breach", 0),
        ("breach+4h", "breach", 14400),
        ("breach+1d2h", "breach", 93600),
    ],
)
def test_parse_at(text: str, point: str, seconds: int) -> None:
    got_point, delay = parse_at(text)
    assert (got_point, delay.total_seconds()) == (point, seconds)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"at": "warning+1h", "to": ["owner"]}, "only breach takes a delay"),
        ({"at": "later", "to": ["owner"]}, "invalid step 'later'"),
        ({"at": "breach+soon", "to": ["owner"]}, "invalid duration 'soon'"),
        ({"at": "breach", "to": ["manager"]}, "invalid recipient 'manager'"),
        ({"at": "breach", "to": []}, "at least 1 item"),
    ],
)
def test_invalid_steps(step: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EscalationStep.model_validate(step)
