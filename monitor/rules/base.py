"""What every rule plugin implements (findings from awaiting items and now), its config base, the registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from monitor.calendar import BusinessCalendar
from monitor.plugins import RULES_GROUP, Plugin, PluginConfig, Registry


class Level(StrEnum):
    """A finding's verdict on its subject."""

    OK = "ok"
    WARNING = "warning"
    BREACH = "breach"


@dataclass(frozen=True, slots=True)
class AwaitingView:
    """A read-only awaiting item as rules see it."""

    key: str
    channel: str
    customer: str
    received_at: datetime
    responded_at: datetime | None
    acknowledged_at: datetime | None = None
    responder: str | None = None


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


@dataclass(frozen=True, slots=True)
class TeamView:
    """What a rule may read: the team's awaiting items and its calendar. No I/O."""

    team: str
    calendar: BusinessCalendar
    awaiting: Sequence[AwaitingView]


class Rule(Protocol):
    """A rule plugin: pure; ``now`` and a read-only view in, findings out."""

    name: str

    def evaluate(self, view: TeamView, now: datetime) -> list[Finding]:
        """Return a finding for every subject the rule judges."""


class RuleConfigBase(PluginConfig):
    """Fields every rule kind shares: its subclass narrows ``kind`` and ``channel`` to Literals."""

    channel: str
    """Which awaiting items the rule judges (``email``, ``phone``)."""


RuleFactory = Callable[[Any], Rule]
"""Builds a rule from its validated config (of the plugin's own config class)."""
RulePlugin = Plugin[RuleConfigBase, RuleFactory]
"""A rule plugin, named by an entry point of the ``replywatch.rules`` group."""

RULES: Registry[RuleConfigBase, RuleFactory] = Registry(RULES_GROUP, RuleConfigBase)
"""Every rule kind, from the ``replywatch.rules`` entry points."""
