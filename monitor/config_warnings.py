"""Warnings about a valid config that probably does not do what its author meant (``check-config``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

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


def sent_folder_warnings(config: Config, senders: Mapping[str, Sequence[str]]) -> list[str]:
    """Warnings about mail in a team's Sent folders from an address that is neither a member's nor the team's.

    ``senders`` holds, per source, the From address of its newest sent messages (``check-config --probe``).
    Such a reply is the team's, yet it is credited to nobody and a customer's next message to that address
    is not known to be the team's.
    """
    out: list[str] = []
    for name, team in config.teams.items():
        known = {a.lower() for a in team.addresses}
        known |= {a.lower() for member in team.members for a in member.email}
        for source in team.sources:
            found = Counter(a.lower() for a in senders.get(source, ()))
            total = sum(found.values())
            for address, count in sorted(found.items(), key=lambda item: (-item[1], item[0])):
                if address in known:
                    continue
                out.append(
                    f"teams.{name}: {count} of the last {total} messages in the Sent folder of source "
                    f"{source!r} come from {address}, which is neither a member's nor a team address: "
                    "those replies are credited to nobody; add it to a member's `email` or to `addresses`"
                )
    return out
