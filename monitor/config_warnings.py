"""Warnings about a valid config that probably does not do what its author meant (``check-config``)."""

from __future__ import annotations

from monitor.config import Config


def config_warnings(config: Config) -> list[str]:
    """Every warning about ``config``, each prefixed with the path it is about."""
    out: list[str] = []
    used = {team.calendar for team in config.teams.values() if team.calendar}
    for name, team in config.teams.items():
        if not team.calendar and config.calendars:
            out.append(
                f"teams.{name}: no calendar, while calendars exist ({', '.join(sorted(config.calendars))}): "
                "its waiting time is counted around the clock, weekends included; set `calendar:`"
            )
        if not team.members:
            out.append(
                f"teams.{name}: no members: mail from or to a member's own address cannot be told apart "
                "from a customer's, and no response is credited to a person"
            )
    for name in sorted(set(config.calendars) - used):
        out.append(f"calendars.{name}: no team uses this calendar")
    return out
