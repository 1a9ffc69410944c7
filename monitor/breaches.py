"""Breach reconciliation: open breaches + new findings -> typed transitions. Pure; the store writes them.

A finding at warning or breach level opens a row; a warning whose deadline passes becomes a breach; a subject
found ok again, or no longer judged, is resolved. A subject that can breach only once (an awaiting item) is
never opened again once it had a breach (a re-read of old mail must not count history twice); a subject that
can recover and breach again (a mailbox folder) gets a new breach each time.

A team is reconciled only on complete data, or once a source has been missing past the outage limit
(:mod:`monitor.freshness`); then every breach that opens or becomes a breach names the ``unreadable``
sources, so that nobody is blamed for mail replywatch could not see.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.rules.base import Finding, Level


@dataclass(frozen=True, slots=True)
class OpenBreach:
    """An unresolved warning or breach as the store holds it."""

    id: int
    team: str
    rule: str
    subject: str
    level: Level
    opened_at: datetime
    due_at: datetime | None = None
    breached_at: datetime | None = None
    """When it became a breach (None while a warning)."""
    unreadable: tuple[str, ...] = ()
    """Sources that could not be read when it was judged (empty: judged on complete data)."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A new warning or breach (``resolved_at`` set when it is already over: an answer that came late)."""

    team: str
    rule: str
    subject: str
    level: Level
    at: datetime
    due_at: datetime | None = None
    resolved_at: datetime | None = None
    unreadable: tuple[str, ...] = ()
    """Sources that could not be read when it was judged (judged on incomplete data)."""

    @property
    def breached_at(self) -> datetime | None:
        """When it became a breach: at once for a breach, not yet for a warning."""
        return self.at if self.level is Level.BREACH else None


@dataclass(frozen=True, slots=True)
class BecameBreach:
    """An open warning whose deadline passed."""

    breach_id: int
    team: str
    rule: str
    subject: str
    at: datetime
    unreadable: tuple[str, ...] = ()
    """Sources that could not be read when it was judged (judged on incomplete data)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """An open warning or breach that is over."""

    breach_id: int
    team: str
    rule: str
    subject: str
    level: Level
    """The level it had when it was resolved (after any :class:`BecameBreach` in the same batch)."""
    at: datetime


Transition = Opened | BecameBreach | Resolved


def history_needed(open_breaches: Sequence[OpenBreach], findings: Sequence[Finding]) -> list[tuple[str, str]]:
    """The (rule, subject) pairs whose breach history :func:`reconcile` needs: new breaches of one-time
    subjects."""
    open_keys = {(b.rule, b.subject) for b in open_breaches}
    return [
        (f.rule, f.subject)
        for f in findings
        if f.level is Level.BREACH and f.once and (f.rule, f.subject) not in open_keys
    ]


def reconcile(
    team: str,
    open_breaches: Sequence[OpenBreach],
    findings: Sequence[Finding],
    history: Collection[tuple[str, str]],
    now: datetime,
    unreadable: Sequence[str] = (),
) -> list[Transition]:
    """The transitions that bring ``open_breaches`` in line with ``findings`` at ``now``.

    ``history`` holds the (rule, subject) pairs that ever had a breach, at least those that
    :func:`history_needed` names. Open rows of a rule or subject no longer judged are resolved at ``now``.
    ``unreadable`` names the team's sources that could not be read: what opens or becomes a breach
    carries them.
    """
    gaps = tuple(unreadable)
    open_by = {(b.rule, b.subject): b for b in open_breaches}
    seen: set[tuple[str, str]] = set()
    out: list[Transition] = []
    for f in findings:
        key = (f.rule, f.subject)
        seen.add(key)
        row = open_by.get(key)
        since = f.since or now
        if f.level is Level.BREACH:
            if row is None:
                if f.once and key in history:
                    continue  # recorded before (answered late, then re-read)
                out.append(
                    Opened(team, f.rule, f.subject, Level.BREACH, since, f.due_at, f.resolved_at, gaps)
                )
                continue
            if row.level is not Level.BREACH:
                out.append(BecameBreach(row.id, team, f.rule, f.subject, since, gaps))
            if f.resolved_at is not None:
                out.append(Resolved(row.id, team, f.rule, f.subject, Level.BREACH, f.resolved_at))
        elif f.level is Level.WARNING:
            if row is None:
                out.append(Opened(team, f.rule, f.subject, Level.WARNING, since, f.due_at, None, gaps))
        elif row is not None:
            out.append(Resolved(row.id, team, f.rule, f.subject, row.level, now))
    for key, row in open_by.items():
        if key not in seen:
            out.append(Resolved(row.id, team, row.rule, row.subject, row.level, now))
    return out
