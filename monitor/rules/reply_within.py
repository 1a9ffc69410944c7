"""Rule ``reply_within``: every awaiting email is answered within a time, with an optional warning."""

from __future__ import annotations

from typing import Literal

from monitor.events import Channel
from monitor.rules.base import RulePlugin
from monitor.rules.deadline import DeadlineConfig, DeadlineRule


class ReplyWithinConfig(DeadlineConfig):
    """Settings of ``reply_within``."""

    kind: Literal["reply_within"]
    channel: Literal["email"] = "email"
    """Which awaiting items the rule judges."""


class ReplyWithin(DeadlineRule):
    """Judges each awaiting item of its channel against its deadline; owns that channel's deadlines."""

    def __init__(self, config: ReplyWithinConfig) -> None:
        super().__init__("reply_within", Channel(config.channel), config)
        self.config = config


PLUGIN = RulePlugin(ReplyWithinConfig, ReplyWithin)
"""The ``reply_within`` rule plugin (entry point ``reply_within`` of ``replywatch.rules``)."""
