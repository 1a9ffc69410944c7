"""Escalation policy: who is told at which point of a breach, and when. Pure: transitions in, due steps out.

A team's ``notify:`` names a notifier and a list of steps, each ``at`` a point of a breach (``warning``,
``breach``, ``breach+4h``, ``resolved``) and ``to`` recipients (``owner``, ``team``, ``lead`` or an address).
Delays after the breach count in the team's business time; a step that falls outside the team's hours waits
for the next opening unless it is ``urgent``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field, ValidationInfo, field_validator

from monitor.breaches import BecameBreach, Opened, Resolved, Transition
from monitor.calendar import BusinessCalendar
from monitor.durations import Duration, parse_duration
from monitor.plugins import StrictConfig
from monitor.rules.base import Level

WARNING = "warning"
BREACH = "breach"
RESOLVED = "resolved"
ROLES = frozenset({"owner", "team", "lead"})
"""Recipients named by their role in the team rather than by address."""
_AT = re.compile(r"(warning|breach|resolved)(?:\+(\S+))?")


def parse_at(text: str) -> tuple[str, timedelta]:
    """``breach+4h`` -> ("breach", 4h); ValueError quotes a point that is not one."""
    match = _AT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid step {text!r}: expected warning, breach, breach+<duration> or resolved")
    point, delay = match.group(1), match.group(2)
    if delay is not None and point != BREACH:
        raise ValueError(f"invalid step {text!r}: only breach takes a delay (breach+4h)")
    try:
        return point, parse_duration(delay) if delay else timedelta(0)
    except ValueError as err:
        raise ValueError(f"invalid step {text!r}: {err}") from None


class EscalationStep(StrictConfig):
    """One step: at which point of a breach, to whom, and whether it may go out outside business hours."""

    at: str
    """``warning``, ``breach``, ``breach+<duration>`` (business time) or ``resolved``."""
    to: list[str] = Field(min_length=1)
    """``owner``, ``team``, ``lead`` or an email address."""
    urgent: bool = False
    """Send at once even outside the team's hours."""

    @field_validator("at")
    @classmethod
    def _point(cls, value: str) -> str:
        parse_at(value)
        return value.strip()

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        out = []
        for entry in value:
            entry = entry.strip().lower()
            if entry not in ROLES and "@" not in entry:
                raise ValueError(f"invalid recipient {entry!r}: expected owner, team, lead or an address")
            out.append(entry)
        return out


class NotifyConfig(StrictConfig):
    """A team's alerting: which notifier carries it and the escalation steps."""

    via: str
    """Name of a notifier under ``notifiers``."""
    escalation: list[EscalationStep] = Field(min_length=1)
    expire_after: Duration = Field(default_factory=lambda: timedelta(days=2))
    """An alert not delivered this long after it was due is dropped with one logged error."""
    dashboard_url: str | None = None
    """Link to the team's Grafana dashboard, shown in every alert."""

    @field_validator("via")
    @classmethod
    def _known_notifier(cls, value: str, info: ValidationInfo) -> str:
        known = getattr(info.context, "notifiers", None)  # the names under ``notifiers`` (config.ConfigScope)
        if known is not None and value not in known:
            raise ValueError(f"unknown notifier {value!r} (known: {', '.join(sorted(known)) or 'none'})")
        return value


@dataclass(frozen=True, slots=True)
class Member:
    """What escalation needs to know of a configured member."""

    name: str
    email: str | None
    lead: bool = False


@dataclass(frozen=True, slots=True)
class DueStep:
    """A notification owed for one breach: the step, one recipient, when it may go out."""

    breach_id: int
    step: str
    recipient: str
    due_at: datetime


def send_time(at: datetime, urgent: bool, calendar: BusinessCalendar) -> datetime:
    """When a step due ``at`` may go out: at once if urgent or in business hours, else at the next opening."""
    if urgent or calendar.is_open(at):
        return at
    return calendar.next_opening(at)


def recipients(to: Sequence[str], owner: str | None, members: Sequence[Member]) -> list[str]:
    """The addresses ``to`` names, in order, each once: owner (else the team), team, lead, addresses."""
    by_name = {m.name: m for m in members}
    team = [m.email for m in members if m.email]
    out: list[str] = []
    for entry in to:
        if entry == "owner":
            member = by_name.get(owner) if owner else None
            found = [member.email] if member is not None and member.email else team
        elif entry == "team":
            found = team
        elif entry == "lead":
            found = [m.email for m in members if m.lead and m.email] or team
        else:
            found = [entry]
        out.extend(address for address in found if address not in out)
    return out


def due_steps(
    steps: Sequence[EscalationStep],
    transitions: Sequence[tuple[int, Transition]],
    owners: Mapping[int, str | None],
    members: Sequence[Member],
    calendar: BusinessCalendar,
    *,
    addressed: bool = True,
) -> list[DueStep]:
    """The notifications owed for ``transitions`` (each with its breach id) under ``steps``.

    A warning gets the ``warning`` steps; a breach (opened as one or a warning whose deadline passed) the
    ``breach`` and ``breach+<delay>`` steps, the delays counted in business time; a resolved breach the
    ``resolved`` steps. A breach already over when found (answered late) is owed nothing. ``addressed``
    False (a webhook): one row per step, its recipient the step's ``to`` as written.
    """
    out: list[DueStep] = []
    for breach_id, t in transitions:
        point, base = _point(t)
        if point is None or base is None:
            continue
        for step in steps:
            kind, delay = parse_at(step.at)
            if kind != point:
                continue
            at = calendar.add_business_seconds(base, delay.total_seconds()) if delay else base
            when = send_time(at, step.urgent, calendar)
            names = recipients(step.to, owners.get(breach_id), members) if addressed else [",".join(step.to)]
            out.extend(DueStep(breach_id, step.at, name, when) for name in names)
    return out


def _point(t: Transition) -> tuple[str | None, datetime | None]:
    """Which point of a breach a transition is, and when it happened."""
    if isinstance(t, Opened):
        if t.resolved_at is not None:
            return None, None
        return (BREACH if t.level is Level.BREACH else WARNING), t.at
    if isinstance(t, BecameBreach):
        return BREACH, t.at
    if isinstance(t, Resolved) and t.level is Level.BREACH:
        return RESOLVED, t.at
    return None, None
