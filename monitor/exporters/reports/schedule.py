"""A team's scheduled report: its config, its recipients, and which period is owed when (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field, ValidationInfo, field_validator

from monitor.calendar import BusinessCalendar
from monitor.escalation import Member, recipients
from monitor.exporters.reports.period import Every, Period, last_complete
from monitor.plugins import StrictConfig

REPORT_EXPIRY = timedelta(days=7)
"""A report not delivered this long after it was due is dropped (a week-old report is still worth reading),
and a period that ended longer ago than this is not owed at all (a first start, reports just turned on)."""
REPORT_ROLES = frozenset({"team", "lead"})


class ReportConfig(StrictConfig):
    """A team's report: how often, to whom, through which notifier, and whether it names members."""

    every: Every = "month"
    """``month`` (sent after the last day of each month) or ``week`` (after each Sunday)."""
    to: list[str] = Field(min_length=1)
    """``lead``, ``team``, a member's name or an email address."""
    per_member: bool = False
    """Show each member's answers, on-time share and median, and name them in the wins (off: the team's
    figures only, no member named)."""
    via: str | None = None
    """Name of a notifier under ``notifiers`` (default: the one of the team's ``notify``)."""

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        out = []
        for entry in value:
            entry = entry.strip()
            if entry.lower() in REPORT_ROLES or "@" in entry:
                entry = entry.lower()
            elif not entry:
                raise ValueError("invalid recipient '': expected lead, team, a member's name or an address")
            out.append(entry)
        return out

    @field_validator("via")
    @classmethod
    def _known_notifier(cls, value: str | None, info: ValidationInfo) -> str | None:
        known = getattr(info.context, "notifiers", None)  # the names under ``notifiers`` (config.ConfigScope)
        if value is not None and known is not None and value not in known:
            raise ValueError(f"unknown notifier {value!r} (known: {', '.join(sorted(known)) or 'none'})")
        return value

    def unknown_members(self, names: Sequence[str]) -> list[str]:
        """Entries of ``to`` that are neither a role, an address nor one of ``names``."""
        return [e for e in self.to if e not in REPORT_ROLES and "@" not in e and e not in names]


def report_recipients(to: Sequence[str], members: Sequence[Member]) -> list[str]:
    """The addresses ``to`` names, in order, each once: a member by name, the lead, the team, addresses."""
    by_name = {m.name: m for m in members}
    out: list[str] = []
    for entry in to:
        member = by_name.get(entry)
        found = ([member.email] if member.email else []) if member else recipients([entry], None, members)
        out.extend(address for address in found if address not in out)
    return out


@dataclass(frozen=True, slots=True)
class OwedReport:
    """The period a scheduled report covers at some moment, and when it may go out."""

    period: Period
    due_at: datetime


def owed_report(every: Every, calendar: BusinessCalendar, now: datetime) -> OwedReport:
    """The latest period that has ended at ``now``, due at the team's first opening hour after its end."""
    period = last_complete(every, now, calendar.timezone)
    end = period.end
    return OwedReport(period, end if calendar.is_open(end) else calendar.next_opening(end))
