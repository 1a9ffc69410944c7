"""What every rule plugin implements: findings from (awaiting items, now); and the rule registry."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel

from monitor.calendar import BusinessCalendar


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


RULE_KINDS: dict[str, tuple[type[BaseModel], Any]] = {}
"""kind -> (Config class, factory(config) -> Rule)."""

BUILTIN = ("reply_within", "holding_reply")
_loaded = False


def register(kind: str, config_class: type[BaseModel], factory: Any) -> None:
    """Make a rule kind available to configs."""
    RULE_KINDS[kind] = (config_class, factory)


def registered_kinds() -> dict[str, tuple[type[BaseModel], Any]]:
    """All rule kinds, importing the built-in plugins on first use."""
    global _loaded
    if not _loaded:
        for name in BUILTIN:
            importlib.import_module(f"monitor.rules.{name}")
        _loaded = True
    return RULE_KINDS
