"""The engine: events -> awaiting items per channel (email conversations, phone calls), pure."""

from __future__ import annotations

from monitor.engine.email import build_awaiting
from monitor.engine.phone import PhoneOptions, PhoneTeam, build_phone_awaiting
from monitor.engine.team import TeamContext

__all__ = ["PhoneOptions", "PhoneTeam", "TeamContext", "build_awaiting", "build_phone_awaiting"]
