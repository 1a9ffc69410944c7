"""Rule ``callback_within``: every missed inbound call is returned within a time (24 h by default)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from monitor.durations import Duration
from monitor.engine.phone import DEFAULT_SHORT_ABANDON
from monitor.events import Channel
from monitor.rules.base import EngineOptions, RulePlugin
from monitor.rules.deadline import DeadlineConfig, DeadlineRule


class CallbackWithinConfig(DeadlineConfig):
    """Settings of ``callback_within``."""

    kind: Literal["callback_within"]
    channel: Literal["phone"] = "phone"
    """Which awaiting items the rule judges: missed calls."""
    short_abandon: Duration = Field(default=DEFAULT_SHORT_ABANDON)
    """A caller who hung up sooner than this is not owed a call-back (``0s``: every missed call is)."""
    unanswered_attempt_counts: bool = True
    """A call-back the customer did not pick up still returns the missed call."""

    def engine_options(self) -> EngineOptions:
        """The phone engine's short-abandon threshold and call-back counting."""
        return EngineOptions(
            short_abandon=self.short_abandon,
            unanswered_attempt_counts=self.unanswered_attempt_counts,
        )


class CallbackWithin(DeadlineRule):
    """Judges each missed call against its call-back deadline; owns the phone channel's deadlines."""

    def __init__(self, config: CallbackWithinConfig) -> None:
        super().__init__("callback_within", Channel.PHONE, config)
        self.config = config


PLUGIN = RulePlugin(CallbackWithinConfig, CallbackWithin)
"""The ``callback_within`` rule plugin (entry point ``callback_within`` of ``replywatch.rules``)."""
