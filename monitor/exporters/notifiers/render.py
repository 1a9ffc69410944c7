"""An alert's subject line, plain text and HTML, from Jinja2 templates a deployment can override."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

from monitor.exporters.notifiers.base import Delivery

TEXT_TEMPLATE = "alert.txt.j2"
HTML_TEMPLATE = "alert.html.j2"


@dataclass(frozen=True, slots=True)
class Rendered:
    """One alert message's parts."""

    subject: str
    text: str
    html: str


def _when(value: datetime | None, zone: str) -> str:
    """A time in the team's zone, to the minute (``-`` when unknown)."""
    if value is None:
        return "-"
    return value.astimezone(ZoneInfo(zone)).strftime("%a %d %b %Y %H:%M %Z")


def template_environment(package: str, templates: Path | None = None, *, trim: bool = False) -> Environment:
    """Jinja2 templates from ``templates`` first (a deployment's overrides), then ``package``'s built-in ones.

    HTML templates are autoescaped, an undefined name is an error, not an empty string.
    """
    loaders = [FileSystemLoader(str(templates))] if templates is not None else []
    return Environment(
        loader=ChoiceLoader([*loaders, PackageLoader(package, "templates")]),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=trim,
        lstrip_blocks=trim,
    )


def environment(templates: Path | None = None) -> Environment:
    """The alert templates: a deployment's directory first, then the built-in ones."""
    env = template_environment("monitor.exporters.notifiers", templates)
    env.filters["when"] = _when
    return env


def subject_line(delivery: Delivery) -> str:
    """``[replywatch] support: 2 customers past their deadline, 1 soon`` (no customer data)."""
    levels = [item.level for item in delivery.items]
    parts = []
    if overdue := levels.count("breach"):
        parts.append(f"{overdue} customer{'s' if overdue != 1 else ''} past the deadline")
    if soon := levels.count("warning"):
        parts.append(f"{soon} customer{'s' if soon != 1 else ''} close to the deadline")
    if resolved := levels.count("resolved"):
        parts.append(f"{resolved} resolved")
    return f"[replywatch] {delivery.team}: " + ", ".join(parts)


def render(delivery: Delivery, env: Environment) -> Rendered:
    """Subject, plain text and HTML of ``delivery``."""
    context = {
        "team": delivery.team,
        "zone": delivery.timezone,
        "title": subject_line(delivery),
        "overdue": [i for i in delivery.items if i.level == "breach"],
        "warnings": [i for i in delivery.items if i.level == "warning"],
        "resolved": [i for i in delivery.items if i.level == "resolved"],
        "dashboard_url": delivery.dashboard_url,
    }
    return Rendered(
        subject_line(delivery),
        env.get_template(TEXT_TEMPLATE).render(context),
        env.get_template(HTML_TEMPLATE).render(context),
    )
