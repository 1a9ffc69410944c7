"""What every call-log source shares: its config fields, legs kept for late joiners, legs -> calls.

A ring group's rows, or the legs of a transferred call, may be written seconds apart and so land in
different polls. Every call-log source keeps the legs of its recent calls (those that ended within
``regroup_window`` of the newest leg seen) in its cursor; when a later leg joins a known call, the
whole call is built again and emitted again, and the store's upsert refreshes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from monitor.durations import Duration
from monitor.events import CallEvent, Channel
from monitor.sources.base import SourceConfigBase, SourceLog
from monitor.telephony.calls import MACHINE_APPS, CallOptions, calls_from_legs
from monitor.telephony.layouts import CdrLeg, CdrRowError
from monitor.telephony.numbers import DEFAULT_EXTENSION_DIGITS, check_region

MAX_ROW_WARNINGS = 20
"""Bad rows logged one by one per poll; beyond this, one line with their count."""


class CallLogConfig(SourceConfigBase):
    """Fields every call-log source shares: the PBX's clock and how its numbers are read."""

    channel: ClassVar[Channel] = Channel.PHONE

    timezone: str = "UTC"
    """IANA zone the PBX writes its local times in (``Europe/London``); DST folds are resolved."""
    default_region: str | None = None
    """ISO 3166 region of numbers written without a country code (``GB``), for E.164."""
    extension_digits: int = Field(default=DEFAULT_EXTENSION_DIGITS, ge=1, le=15)
    """Internal numbers have at most this many digits; longer ones are outside numbers."""
    outside_prefix: str = ""
    """Digits dialled for an outside line (``9``), removed from dialled numbers that carry them."""
    machine_apps: list[str] = Field(default_factory=lambda: list(MACHINE_APPS))
    """Applications that answer a call without a person (IVR, queue, voicemail): such an answer is a miss."""
    regroup_window: Duration = Field(default=timedelta(hours=1))
    """Legs of one call written up to this long apart are joined into one call across polls."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as 'Europe/London'"
            ) from err
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else check_region(value)

    @property
    def zone(self) -> ZoneInfo:
        """The PBX's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def call_options(self) -> CallOptions:
        """How this source's legs become calls."""
        return CallOptions(
            default_region=self.default_region,
            extension_digits=self.extension_digits,
            machine_apps=tuple(self.machine_apps),
            outside_prefix=self.outside_prefix,
        )


def leg_to_json(leg: CdrLeg) -> dict[str, Any]:
    """A leg as JSON for a cursor (times in ISO 8601)."""
    out = asdict(leg)
    for key in ("start", "answer", "end"):
        value = out[key]
        out[key] = value.isoformat() if value is not None else None
    return out


def leg_from_json(raw: Mapping[str, Any]) -> CdrLeg:
    """The leg :func:`leg_to_json` wrote (KeyError/TypeError/ValueError when it is not one)."""
    fields = dict(raw)
    for key in ("start", "answer", "end"):
        value = fields[key]
        fields[key] = datetime.fromisoformat(value) if value is not None else None
    return CdrLeg(**fields)


def _identity(leg: CdrLeg) -> tuple[str, str, str, str, str]:
    """What tells one row from another when a row is read twice (a re-read, an overlap)."""
    return (leg.uniqueid, leg.start.isoformat(), leg.dst, leg.dstchannel, leg.disposition)


@dataclass(slots=True)
class RecentCalls:
    """The legs of calls that may still grow, by linked id; saved in the cursor as JSON."""

    legs: dict[str, list[CdrLeg]]

    @classmethod
    def load(cls, raw: Any) -> RecentCalls:
        """From a cursor's ``recent`` (unreadable: empty, so a late leg makes a call of its own)."""
        if not isinstance(raw, dict):
            return cls({})
        try:
            return cls({key: [leg_from_json(leg) for leg in legs] for key, legs in raw.items()})
        except (KeyError, TypeError, ValueError, AttributeError):
            return cls({})

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """For the cursor."""
        return {key: [leg_to_json(leg) for leg in legs] for key, legs in self.legs.items()}

    def join(
        self, source: str, new: Sequence[CdrLeg], options: CallOptions, window: timedelta
    ) -> list[CallEvent]:
        """The calls ``new`` legs belong to, each with every leg known of it; then forget calls that
        ended more than ``window`` before the newest leg."""
        touched: dict[str, None] = {}
        for leg in new:
            known = self.legs.setdefault(leg.linkedid, [])
            if all(_identity(leg) != _identity(old) for old in known):
                known.append(leg)
                touched[leg.linkedid] = None
        legs = [leg for key in touched for leg in self.legs[key]]
        calls = calls_from_legs(source, legs, options)
        self.prune(window)
        return calls

    def prune(self, window: timedelta) -> None:
        """Forget calls whose last leg ended more than ``window`` before the newest leg's end."""
        ends = {key: max(leg.end for leg in legs) for key, legs in self.legs.items() if legs}
        if not ends:
            self.legs = {}
            return
        horizon = max(ends.values()) - window
        self.legs = {key: self.legs[key] for key, end in ends.items() if end >= horizon}


def report_bad_rows(log: SourceLog, where: str, errors: Iterable[CdrRowError]) -> int:
    """Log each bad row once (file or table and line, the reason; never the row's numbers); their count."""
    count = 0
    for err in errors:
        count += 1
        if count <= MAX_ROW_WARNINGS:
            log.warning("%s line %d: %s; row skipped", where, err.line, err.reason)
    if count > MAX_ROW_WARNINGS:
        log.warning("%s: %d more bad rows skipped", where, count - MAX_ROW_WARNINGS)
    return count
