"""What every rule plugin implements (findings from awaiting items and now), its config base, the registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from monitor.awaiting import AwaitingItem
from monitor.calendar import BusinessCalendar
from monitor.events import Channel, MailboxSnapshot
from monitor.plugins import RULES_GROUP, Plugin, PluginConfig, Registry


class Level(StrEnum):
    """A finding's verdict on its subject."""

    OK = "ok"
    WARNING = "warning"
    BREACH = "breach"


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's verdict on one subject at ``now``.

    ``since`` is when the current level began (the deadline that passed, for a breach), so a breach
    found late is still dated when it really started. ``resolved_at`` is set for a breach that is
    already over (answered late).
    """

    rule: str
    subject: str
    level: Level
    due_at: datetime | None = None
    since: datetime | None = None
    resolved_at: datetime | None = None
    once: bool = True
    """The subject can breach only once (an awaiting item); False for a subject that can breach, recover
    and breach again (a mailbox folder), each time its own breach."""
    stable_until: datetime | None = None
    """Until when this finding stays as it is if its item does not change (:data:`FOREVER`: it never
    changes by itself, such as an answer). The daemon judges an unchanged item again only from then on.
    None: the rule does not say, so the item is judged again at every evaluation."""


FOREVER = datetime.max.replace(tzinfo=UTC)
"""A :attr:`Finding.stable_until` for a finding that only a change of its item can change."""


@dataclass(frozen=True, slots=True)
class TeamView:
    """What a rule may read: the team's awaiting items, its calendar and its folders' counts. No I/O."""

    team: str
    calendar: BusinessCalendar
    awaiting: Sequence[AwaitingItem]
    mailboxes: Sequence[MailboxSnapshot] = ()
    """The latest counts of every folder of the team's sources; ``unanswered`` is replywatch's own
    judgement (open awaiting items whose opening message is in the folder), not IMAP ``\\Answered``."""


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """What a team's rules ask of the engine when it builds awaiting items (merged over the team's rules)."""

    holding_phrases: tuple[str, ...] = ()
    """Text that makes a team message an acknowledgment (a holding reply), not a full answer."""
    short_abandon: timedelta | None = None
    """A missed call that rang for less than this opens no item (None: the engine's default)."""
    unanswered_attempt_counts: bool | None = None
    """Whether a call-back the customer did not pick up answers a missed call (None: the default)."""

    def merge(self, other: EngineOptions) -> EngineOptions:
        """Both sets of options together (for a phone option, ``other``'s when it sets one)."""
        return EngineOptions(
            holding_phrases=tuple(dict.fromkeys((*self.holding_phrases, *other.holding_phrases))),
            short_abandon=other.short_abandon if other.short_abandon is not None else self.short_abandon,
            unanswered_attempt_counts=(
                other.unanswered_attempt_counts
                if other.unanswered_attempt_counts is not None
                else self.unanswered_attempt_counts
            ),
        )


class RuleConfigBase(PluginConfig):
    """Fields every rule kind shares: its subclass narrows ``kind`` and ``channel`` to Literals."""

    channel: str
    """Which awaiting items the rule judges (``email``, ``phone``)."""

    def engine_options(self) -> EngineOptions:
        """What this rule needs from the engine (the one hook through which rule options reach it)."""
        return EngineOptions()

    def source_counts(self) -> dict[str, str]:
        """Each set option that needs a folder count from the rule's sources (option -> count name, as in
        a source config's ``mailbox_counts``): check-config refuses it for a source that lacks the count."""
        return {}


class Rule(Protocol):
    """A rule plugin: pure; ``now`` and a read-only view in, findings out.

    The rule whose ``deadline_channel`` is a channel owns that channel's deadlines: the verdict core takes
    each item's ``due_at`` from its findings and counts response times in its clock (``business_hours``).
    """

    name: str
    deadline_channel: Channel | None
    business_hours: bool

    def evaluate(self, view: TeamView, now: datetime) -> list[Finding]:
        """Return a finding for every subject the rule judges."""


RuleFactory = Callable[[Any], Rule]
"""Builds a rule from its validated config (of the plugin's own config class)."""
RulePlugin = Plugin[RuleConfigBase, RuleFactory]
"""A rule plugin, named by an entry point of the ``replywatch.rules`` group."""

RULES: Registry[RuleConfigBase, RuleFactory] = Registry(RULES_GROUP, RuleConfigBase)
"""Every rule kind, from the ``replywatch.rules`` entry points."""
