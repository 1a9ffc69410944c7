"""The verdict core: the one place that decides if an item is on time, late, waiting, breached or removed.

:func:`evaluate_team` is pure (items, rules, calendar and ``now`` in; findings and per-item verdicts out) and
is used alike by the daemon's evaluation, ``replay``, ``status`` and the golden tests, so they cannot
disagree. An item's deadline comes from the findings of the rule that owns its channel (the rule whose
``deadline_channel`` it is, such as ``reply_within`` for email); response times are counted in that rule's
clock (business hours or wall time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from monitor.awaiting import AwaitingItem
from monitor.calendar import BusinessCalendar
from monitor.events import Channel, MailboxSnapshot
from monitor.rules.base import Finding, Level, Rule, TeamView


class ItemStatus(StrEnum):
    """An awaiting item's verdict at ``now`` (the ``status`` column of ``replay``)."""

    ANSWERED_ON_TIME = "answered_on_time"
    ANSWERED_LATE = "answered_late"
    WAITING = "waiting"
    BREACHED = "breached"
    REMOVED = "removed"
    """Unanswered, and every message of it was deleted or moved out of every watched folder: not an
    answer, not a breach, no longer waiting."""


@dataclass(frozen=True, slots=True)
class ItemVerdict:
    """One item judged at ``now`` under the rule that owns its channel."""

    item: AwaitingItem
    status: ItemStatus
    due_at: datetime | None
    """The deadline (None when no rule owns the channel: nothing is ever late)."""
    warning: bool
    """Still waiting, past the warning point and not yet due."""
    business_seconds: float
    """Time from arrival to the response (or ``now`` while waiting) in the team calendar's opening hours."""
    wall_seconds: float
    """The same span in wall-clock time."""


@dataclass(frozen=True, slots=True)
class TeamVerdict:
    """Every rule's findings and every item's verdict for one team at one time."""

    items: list[ItemVerdict]
    findings: list[Finding]

    def counts(self) -> dict[ItemStatus, int]:
        """How many items have each status."""
        out: dict[ItemStatus, int] = {}
        for verdict in self.items:
            out[verdict.status] = out.get(verdict.status, 0) + 1
        return out


def deadline_owners(rules: Iterable[Rule]) -> dict[Channel, Rule]:
    """The rule that owns each channel's deadlines (a team has at most one rule of each kind)."""
    owners: dict[Channel, Rule] = {}
    for rule in rules:
        if rule.deadline_channel is not None:
            owners.setdefault(rule.deadline_channel, rule)
    return owners


def counts_business_time(rules: Iterable[Rule], channel: Channel) -> bool:
    """Whether response times on ``channel`` are counted in business hours (True without an owner)."""
    owner = deadline_owners(rules).get(channel)
    return owner.business_hours if owner is not None else True


def evaluate_team(
    items: Sequence[AwaitingItem],
    rules: Sequence[Rule],
    calendar: BusinessCalendar,
    now: datetime,
    team: str = "",
    mailboxes: Sequence[MailboxSnapshot] = (),
) -> TeamVerdict:
    """Run every rule over ``items`` (and the team's folder counts) and judge each item at ``now``."""
    view = TeamView(team=team, calendar=calendar, awaiting=items, mailboxes=mailboxes)
    findings = [finding for rule in rules for finding in rule.evaluate(view, now)]
    owners = deadline_owners(rules)
    owner_names = {owner.name for owner in owners.values()}
    owned = {(f.rule, f.subject): f for f in findings if f.rule in owner_names}
    verdicts = []
    for item in items:
        owner = owners.get(item.channel)
        finding = owned.get((owner.name, item.key)) if owner is not None else None
        verdicts.append(_judge(item, finding, calendar, now))
    return TeamVerdict(verdicts, findings)


def _judge(
    item: AwaitingItem, finding: Finding | None, calendar: BusinessCalendar, now: datetime
) -> ItemVerdict:
    end = item.closed_at if item.closed_at is not None else now
    end = max(end, item.received_at)
    due = finding.due_at if finding is not None else None
    late = due is not None and end > due
    if item.response is not None:
        status = ItemStatus.ANSWERED_LATE if late else ItemStatus.ANSWERED_ON_TIME
    elif item.removed_at is not None:
        status = ItemStatus.REMOVED
    else:
        status = ItemStatus.BREACHED if late else ItemStatus.WAITING
    return ItemVerdict(
        item=item,
        status=status,
        due_at=due,
        warning=status is ItemStatus.WAITING and finding is not None and finding.level is Level.WARNING,
        business_seconds=calendar.business_seconds_between(item.received_at, end),
        wall_seconds=(end - item.received_at).total_seconds(),
    )
