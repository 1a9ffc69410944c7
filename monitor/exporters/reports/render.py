"""A team report as data (the JSON format), and as HTML and Markdown rendered from that same data.

The templates read only :func:`report_data`, so every number the HTML or Markdown shows is in the JSON.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment

from monitor.exporters.notifiers.render import template_environment
from monitor.exporters.reports.figures import Carried, ChannelFigures, ItemLine, PeriodFigures, TeamReport

HTML_TEMPLATE = "report.html.j2"
MARKDOWN_TEMPLATE = "report.md.j2"
CHARTS = ("response", "waiting")
"""The images of a report, by the name their ``cid:`` and file use."""
_HEADLINE = ("items", "on_time_share", "median_seconds", "p90_seconds", "breaches_total")


def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _item(line: ItemLine, per_member: bool) -> dict[str, Any]:
    return {
        "channel": line.channel,
        "customer": line.customer,
        "received_at": _iso(line.received_at),
        "responded_at": _iso(line.responded_at),
        "responder": line.responder if per_member else None,
        "business_seconds": round(line.business_seconds),
        "wall_seconds": round(line.wall_seconds),
        "status": line.status,
    }


def _headline(channel: ChannelFigures) -> dict[str, Any]:
    return {
        "items": channel.items,
        "answered": channel.answered,
        "answered_on_time": channel.answered_on_time,
        "answered_late": channel.answered_late,
        "waiting": channel.waiting,
        "breached": channel.breached,
        "removed": channel.removed,
        "removed_late": channel.removed_late,
        "on_time_share": channel.on_time_share,
        "median_seconds": channel.median_seconds,
        "p90_seconds": channel.p90_seconds,
        "breaches": channel.breaches,
        "breaches_total": sum(channel.breaches.values()),
    }


def _carried(carried: Carried | None) -> dict[str, int] | None:
    if carried is None:
        return None
    return {
        "items": carried.items,
        "answered_on_time": carried.answered_on_time,
        "answered_late": carried.answered_late,
        "breached": carried.breached,
        "waiting": carried.waiting,
        "removed": carried.removed,
    }


def _trend(now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, float | None]:
    """Change of each headline number against the previous period (None when either side has none)."""
    out: dict[str, float | None] = {}
    for key in _HEADLINE:
        a, b = now.get(key), (before or {}).get(key)
        out[key] = a - b if isinstance(a, int | float) and isinstance(b, int | float) else None
    return out


def _period(figures: PeriodFigures) -> dict[str, Any]:
    p = figures.period
    return {
        "label": p.label,
        "every": p.every,
        "first_day": p.first.isoformat(),
        "last_day": p.last.isoformat(),
        "start": _iso(p.start),
        "end": _iso(p.end),
        "timezone": p.timezone,
        "judged_at": _iso(figures.judged_at),
    }


def report_data(report: TeamReport) -> dict[str, Any]:
    """Every number of the report, JSON-ready (times ISO 8601 UTC, durations in business seconds)."""
    cur, prev = report.current, report.previous
    per_member = report.per_member
    channels = []
    for channel in cur.channels:
        before = prev.channel(channel.channel)
        headline = _headline(channel)
        previous = _headline(before) if before is not None else None
        channels.append(
            {
                "channel": channel.channel,
                "target_seconds": channel.target_seconds,
                "business_hours": channel.business_hours,
                **headline,
                "longest_waits": [_item(i, per_member) for i in channel.longest_waits],
                "carried": _carried(channel.carried),
                "previous": previous,
                "trend": _trend(headline, previous),
            }
        )
    phone = cur.channel("phone")
    data: dict[str, Any] = {
        "team": report.team,
        "period": _period(cur),
        "previous_period": _period(prev),
        "per_member": per_member,
        "statuses": dict(sorted(cur.statuses.items())),
        "channels": channels,
        "missed_calls": (
            {
                "missed": phone.items,
                "returned": phone.answered,
                "returned_on_time": phone.answered_on_time,
                "median_seconds": phone.median_seconds,
            }
            if phone is not None
            else None
        ),
        "members": (
            [
                {
                    "name": m.name,
                    "answered": m.answered,
                    "on_time": m.on_time,
                    "on_time_share": m.on_time_share,
                    "median_seconds": m.median_seconds,
                }
                for m in cur.members
            ]
            if per_member
            else None
        ),
        "wins": {
            "perfect_members": report.perfect_members,
            "fastest": [_item(i, per_member) for i in cur.fastest],
            "streak": {
                "days": cur.streak.days,
                "first_day": _iso(cur.streak.first),
                "last_day": _iso(cur.streak.last),
            },
            "previous_streak_days": prev.streak.days,
        },
        "daily": [
            {
                "day": d.day.isoformat(),
                "open": d.open,
                "answered": d.answered,
                "median_seconds": d.median_seconds,
                "waiting_at_close": d.waiting_at_close,
                "overdue_at_close": d.overdue_at_close,
                "breach": d.breach,
            }
            for d in cur.days
        ],
    }
    return data


def subject_line(data: dict[str, Any]) -> str:
    """``[replywatch] support, October 2026: 92% answered on time`` (no customer data)."""
    decided = on_time = 0
    for channel in data["channels"]:
        on_time += channel["answered_on_time"]
        missed = channel["answered_late"] + channel["breached"] + channel["removed_late"]
        decided += channel["answered_on_time"] + missed
    share = f"{round(100 * on_time / decided)}% answered on time" if decided else "no customer waited"
    return f"[replywatch] {data['team']}, {period_title(data['period'])}: {share}"


def period_title(period: dict[str, Any]) -> str:
    """``October 2026`` or ``week 44 of 2026 (26 Oct - 1 Nov)``."""
    first, last = date.fromisoformat(period["first_day"]), date.fromisoformat(period["last_day"])
    if period["every"] == "month":
        return f"{first:%B %Y}"
    year, week, _ = first.isocalendar()
    return f"week {week} of {year} ({first.day} {first:%b} - {last.day} {last:%b})"


def duration(seconds: float | None) -> str:
    """``1h 25m``, ``74h``, ``40s``; ``-`` when there is none.

    Never days: most durations in a report are business time, where a day is not 24 hours (32 business
    hours read ``32h``, as in ``status``).
    """
    if seconds is None:
        return "-"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    minutes, _ = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        return f"{hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def share(value: float | None) -> str:
    """``92%`` (``-`` without a value)."""
    return "-" if value is None else f"{round(100 * value)}%"


def delta(value: float | None, kind: str = "count") -> str:
    """A trend as text: ``+4 pts``, ``-12m``, ``+3``; empty when there is no previous value."""
    if value is None:
        return ""
    if kind == "share":
        points = round(100 * value)
        return f"{points:+d} pts" if points else "same"
    if kind == "duration":
        if round(value) == 0:
            return "same"
        return ("+" if value > 0 else "-") + duration(abs(value))
    return f"{round(value):+d}" if round(value) else "same"


def environment(templates: Path | None = None) -> Environment:
    """The report templates: a deployment's directory first, then the built-in ones."""
    env = template_environment("monitor.exporters.reports", templates, trim=True)
    env.filters.update(duration=duration, share=share, delta=delta)
    env.globals["period_title"] = period_title
    return env


def _when(zone: str) -> Any:
    def when(value: str | None) -> str:
        if value is None:
            return "-"
        at = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
        return f"{at:%a %d %b %H:%M}"

    return when


def _day(value: str) -> str:
    return f"{date.fromisoformat(value):%a %d %b}"


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """A report's subject, text and HTML, and the PNG charts the HTML shows (by ``cid`` name)."""

    subject: str
    text: str
    html: str
    images: dict[str, bytes]


def _render(env: Environment, template: str, data: dict[str, Any], images: dict[str, str]) -> str:
    env.filters.update(when=_when(data["period"]["timezone"]), day=_day)
    return env.get_template(template).render(r=data, images=images, title=subject_line(data))


def chart_images(report: TeamReport) -> dict[str, bytes]:
    """The PNG charts of a report (matplotlib loaded here, not before)."""
    from monitor.exporters.reports.charts import response_chart, waiting_chart

    first = report.current.channels[0] if report.current.channels else None
    target = (first.channel, first.target_seconds) if first and first.target_seconds else None
    return {
        "response": response_chart(report.current.days, target),
        "waiting": waiting_chart(report.current.days),
    }


def html_file(data: dict[str, Any], images: dict[str, bytes], templates: Path | None = None) -> str:
    """A standalone HTML page: the charts inline as ``data:`` URIs."""
    sources = {
        name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in images.items()
    }
    return _render(environment(templates), HTML_TEMPLATE, data, sources)


def mail(data: dict[str, Any], images: dict[str, bytes], templates: Path | None = None) -> RenderedReport:
    """The mail: HTML whose charts are ``cid:`` parts, and a plain-text part."""
    env = environment(templates)
    html = _render(env, HTML_TEMPLATE, data, {name: f"cid:{name}" for name in images})
    text = _render(env, MARKDOWN_TEMPLATE, data, {})  # Markdown reads well as plain text
    return RenderedReport(subject_line(data), text, html, images)


def markdown(data: dict[str, Any], templates: Path | None = None) -> str:
    """The report as Markdown (no charts: the daily numbers as a table)."""
    return _render(environment(templates), MARKDOWN_TEMPLATE, data, {})
