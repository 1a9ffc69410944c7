"""The ``webhook`` notifier: Alertmanager v2 alerts, plain JSON, Slack- or Teams-style incoming webhooks."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from jinja2 import Environment
from pydantic import Field, field_validator

from monitor.config import is_loopback
from monitor.durations import Duration
from monitor.exporters.notifiers.base import (
    AlertItem,
    Delivery,
    NotifierConfigBase,
    NotifierError,
    NotifierPlugin,
    ReportDelivery,
)
from monitor.exporters.notifiers.render import environment, render

_SEVERITY = {"warning": "warning", "breach": "critical", "resolved": "critical"}


class WebhookConfig(NotifierConfigBase):
    """An HTTP endpoint alerts are posted to, and the shape it expects."""

    addressed: ClassVar[bool] = False

    kind: Literal["webhook"]
    url: str
    """``https://``; ``http://`` only to this machine."""
    format: Literal["alertmanager", "json", "slack", "teams"] = "json"
    """``alertmanager``: ``POST /api/v2/alerts``; ``json``: the delivery as it is; ``slack``/``teams``: a
    text message for an incoming webhook."""
    ca_file: Path | None = None
    timeout: Duration = Field(default_factory=lambda: timedelta(seconds=15))

    @property
    def carries_reports(self) -> bool:
        """Alertmanager takes alerts only; the other formats carry a report's figures or text."""
        return self.format != "alertmanager"

    @field_validator("url")
    @classmethod
    def _secure(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"invalid url {value!r}: expected https://host/path")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError(
                "http:// is allowed only to this machine (localhost/127.0.0.1/::1): use https://"
            )
        return value


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def alertmanager_alerts(delivery: Delivery) -> list[dict[str, Any]]:
    """One Alertmanager v2 alert per item (resolved ones with ``endsAt``)."""
    alerts = []
    for item in delivery.items:
        alert: dict[str, Any] = {
            "labels": {
                "alertname": "ReplywatchBreach" if item.level != "warning" else "ReplywatchWarning",
                "team": delivery.team,
                "rule": item.rule,
                "severity": _SEVERITY[item.level],
                "breach": str(item.breach_id),
                "step": item.step.split("+")[0],
            },
            "annotations": {
                "summary": item.subject,
                "customer": item.customer or "",
                "owner": item.owner or delivery.team,
                "waiting_since": _iso(item.waiting_since),
                "due": _iso(item.due_at) if item.due_at else "",
            },
            "startsAt": _iso(item.waiting_since if item.level == "resolved" else item.at),
        }
        if item.unreadable:  # judged on incomplete data: say which sources could not be read
            alert["annotations"]["unreadable"] = " ".join(item.unreadable)
        if item.level == "resolved":
            alert["endsAt"] = _iso(item.at)
            alert["annotations"]["closed_by"] = item.closed_by
        if delivery.dashboard_url:
            alert["generatorURL"] = delivery.dashboard_url
        alerts.append(alert)
    return alerts


def _item(item: AlertItem) -> dict[str, Any]:
    return {
        "breach": item.breach_id,
        "step": item.step,
        "rule": item.rule,
        "level": item.level,
        "subject": item.subject,
        "customer": item.customer,
        "owner": item.owner,
        "at": _iso(item.at),
        "waiting_since": _iso(item.waiting_since),
        "due_at": _iso(item.due_at) if item.due_at else None,
        "unreadable": list(item.unreadable),
        "closed_by": item.closed_by if item.level == "resolved" else None,
    }


class WebhookNotifier:
    """Posts each delivery as JSON in the configured format."""

    def __init__(self, name: str, config: WebhookConfig) -> None:
        self.name = name
        self.config = config

    @cached_property
    def _templates(self) -> Environment:
        return environment()

    def payload(self, delivery: Delivery) -> Any:
        """The JSON body for ``delivery``."""
        fmt = self.config.format
        if fmt == "alertmanager":
            return alertmanager_alerts(delivery)
        if fmt == "json":
            return {
                "team": delivery.team,
                "recipients": delivery.recipient,
                "key": delivery.key,
                "dashboard_url": delivery.dashboard_url,
                "items": [_item(i) for i in delivery.items],
            }
        rendered = render(delivery, self._templates)
        if fmt == "slack":
            return {"text": f"*{rendered.subject}*\n{rendered.text}"}
        return {"title": rendered.subject, "text": rendered.text}

    def send(self, delivery: Delivery) -> None:
        """POST the payload; :class:`NotifierError` on a network error or a non-2xx answer."""
        self._post(self.payload(delivery), delivery.key)

    def send_report(self, report: ReportDelivery) -> None:
        """POST a report: its figures as JSON (``json``), or its text (``slack``/``teams``); Alertmanager
        takes alerts only, so an ``alertmanager`` webhook refuses reports."""
        fmt = self.config.format
        if fmt == "alertmanager":
            raise NotifierError("config", "an alertmanager webhook cannot carry reports")
        payload: Any
        if fmt == "json":
            payload = {"report": report.period, "key": report.key, **report.data}
        elif fmt == "slack":
            payload = {"text": f"*{report.subject}*\n{report.text}"}
        else:
            payload = {"title": report.subject, "text": report.text}
        self._post(payload, report.key)

    def probe(self) -> list[str]:
        """Open a connection to the endpoint (TCP, and TLS verified for https) without sending a request."""
        parts = urlsplit(self.config.url)
        host = parts.hostname or ""
        timeout = self.config.timeout.total_seconds()
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            context = ssl.create_default_context(
                cafile=str(self.config.ca_file) if self.config.ca_file else None
            )
            connection = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=context)
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
        try:
            connection.connect()
        except ssl.SSLError as err:
            return [f"{host}: TLS failed: {err.reason or err}"]
        except OSError as err:
            return [f"{host}:{connection.port}: {err.strerror or err}"]
        finally:
            connection.close()
        return []

    def _post(self, payload: Any, key: str) -> None:
        body = json.dumps(payload).encode()
        request = urllib.request.Request(
            self.config.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
        )
        context = ssl.create_default_context(cafile=str(self.config.ca_file) if self.config.ca_file else None)
        host = urlsplit(self.config.url).hostname
        try:
            with urllib.request.urlopen(
                request, timeout=self.config.timeout.total_seconds(), context=context
            ):
                pass
        except urllib.error.HTTPError as err:
            raise NotifierError("refused", f"{host} answered HTTP {err.code}") from err
        except urllib.error.URLError as err:
            raise NotifierError("unreachable", f"{host}: {err.reason}") from err
        except OSError as err:
            raise NotifierError("unreachable", f"{host}: {err}") from err


PLUGIN = NotifierPlugin(WebhookConfig, WebhookNotifier)
"""The ``webhook`` notifier plugin (entry point ``replywatch.notifiers: webhook``)."""
