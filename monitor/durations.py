"""Durations as written in configs: ``90s``, ``15m``, ``4h``, ``2d``, ``1w`` (and sums like ``1h30m``)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"(?:\d+[smhdw])+")


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``/``15m``/``4h``/``2d``/``1w`` or a sum such as ``1h30m``; ValueError quotes bad input."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text.strip()):
        raise ValueError(f"invalid duration {text!r}")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text.strip()))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest config spelling of ``value`` (``1d2h``); ``0s`` for zero."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in sorted(_UNITS.items(), key=lambda kv: -kv[1]):
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            out.append(f"{count}{unit}")
    return "".join(out)


def _coerce(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: write a unit, e.g. '{int(value)}s' or '{int(value)}h'")
    return parse_duration(value)  # type: ignore[arg-type]


Duration = Annotated[timedelta, BeforeValidator(_coerce), PlainSerializer(format_duration, return_type=str)]
"""A pydantic field type for durations written as text."""


def _at_least_a_second(value: timedelta) -> timedelta:
    if value < timedelta(seconds=1):
        raise ValueError(f"must be at least 1s, not {format_duration(value)}")
    return value


Interval = Annotated[Duration, AfterValidator(_at_least_a_second)]
"""A duration between repeated jobs (polls, evaluations): at least one second."""
