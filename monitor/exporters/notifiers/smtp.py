"""The ``smtp`` notifier: alert mail through a relay, TLS verified, marked as automatic mail."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from functools import cached_property
from pathlib import Path
from typing import Literal

from jinja2 import Environment
from pydantic import Field, field_validator, model_validator

from monitor.config import is_loopback
from monitor.durations import Duration
from monitor.exporters.notifiers.base import (
    Delivery,
    NotifierConfigBase,
    NotifierError,
    NotifierPlugin,
    ReportDelivery,
)
from monitor.exporters.notifiers.render import environment, render
from monitor.plugins import SecretRef
from monitor.sources.hints import connection_hint, login_refused, server_text

_DEFAULT_PORTS = {"implicit": 465, "starttls": 587, "none": 25}


class SmtpConfig(NotifierConfigBase):
    """An SMTP relay and the sender alerts come from."""

    kind: Literal["smtp"]
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default: 465 (implicit), 587 (starttls), 25 (none)."""
    tls: Literal["implicit", "starttls", "none"] = "starttls"
    """``none`` only to a relay on this machine (loopback)."""
    ca_file: Path | None = None
    """CA bundle to verify the relay with (default: the system's)."""
    username: str | None = None
    password: SecretRef | None = None
    """``password_env`` or ``password_file``."""
    sender: str = Field(alias="from")
    """``From:``, e.g. ``replywatch <replywatch@example.com>``."""
    reply_to: str | None = None
    templates: Path | None = None
    """A directory whose ``alert.txt.j2`` / ``alert.html.j2`` (alerts) and ``report.html.j2`` /
    ``report.md.j2`` (reports) replace the built-in templates."""
    timeout: Duration = Field(default_factory=lambda: timedelta(seconds=30))

    @field_validator("sender", "reply_to")
    @classmethod
    def _one_address(cls, value: str | None) -> str | None:
        if value is not None and (len(getaddresses([value])) != 1 or "@" not in getaddresses([value])[0][1]):
            raise ValueError(f"invalid address {value!r}")
        return value

    @model_validator(mode="after")
    def _plain_only_to_loopback(self) -> SmtpConfig:
        if self.tls == "none" and not is_loopback(self.host):
            raise ValueError("tls: none is allowed only to a relay on this machine (localhost/127.0.0.1/::1)")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self

    @property
    def effective_port(self) -> int:
        """The configured port or the default of the TLS mode."""
        return self.port or _DEFAULT_PORTS[self.tls]


class SmtpNotifier:
    """Sends each delivery as one multipart (plain + HTML) message."""

    def __init__(self, name: str, config: SmtpConfig) -> None:
        self.name = name
        self.config = config

    @cached_property
    def _templates(self) -> Environment:
        return environment(self.config.templates)

    def message(self, delivery: Delivery) -> EmailMessage:
        """The message for ``delivery``: stable Message-ID, automatic-mail headers, both parts."""
        rendered = render(delivery, self._templates)
        at = max(item.at for item in delivery.items)
        msg = self._headers(delivery.recipient, rendered.subject, at, delivery.key)
        msg.set_content(rendered.text)
        msg.add_alternative(rendered.html, subtype="html")
        return msg

    def report_message(self, report: ReportDelivery) -> EmailMessage:
        """A report as mail: plain text, and HTML whose PNG charts are related parts named by Content-ID
        (RFC 2387 multipart/related), which Outlook and Gmail show inline."""
        msg = self._headers(report.recipient, report.subject, report.at, report.key)
        msg.set_content(report.text)
        msg.add_alternative(report.html, subtype="html")
        html_part = msg.get_body(preferencelist=("html",))
        assert isinstance(html_part, EmailMessage)
        for name, png in report.images.items():
            html_part.add_related(png, "image", "png", cid=f"<{name}>", disposition="inline",
                                  filename=f"{name}.png")  # fmt: skip
        return msg

    def _headers(self, recipient: str, subject: str, at: datetime, key: str) -> EmailMessage:
        sender = getaddresses([self.config.sender])[0][1]
        msg = EmailMessage()
        msg["From"] = self.config.sender
        msg["To"] = Address(addr_spec=recipient) if "@" in recipient else recipient
        if self.config.reply_to:
            msg["Reply-To"] = self.config.reply_to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(at)
        msg["Message-ID"] = f"<{key}@{sender.rpartition('@')[2]}>"
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
        msg["X-Auto-Response-Suppress"] = "All"  # Exchange/Outlook: no out-of-office, no read receipts
        return msg

    def send(self, delivery: Delivery) -> None:
        """Deliver one message; :class:`NotifierError` when the relay is unreachable or refuses it."""
        self._deliver(self.message(delivery))

    def send_report(self, report: ReportDelivery) -> None:
        """Deliver one report; :class:`NotifierError` like :meth:`send`."""
        self._deliver(self.report_message(report))

    def probe(self) -> list[str]:
        """Connect, start TLS and log in, then quit without sending anything."""
        try:
            with self._session():
                pass
        except NotifierError as err:
            return [str(err)]
        return []

    def _deliver(self, msg: EmailMessage) -> None:
        with self._session() as smtp:
            try:
                smtp.send_message(msg)
            except smtplib.SMTPRecipientsRefused as err:
                raise NotifierError("refused", f"{self.config.host} refused the recipient") from err
            except smtplib.SMTPResponseException as err:
                raise NotifierError("refused", f"{self.config.host} answered {err.smtp_code}") from err
            except (smtplib.SMTPException, OSError) as err:
                raise NotifierError("protocol", f"{self.config.host}: {type(err).__name__}") from err

    @contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        """A logged-in connection to the relay (TLS verified); errors become :class:`NotifierError`."""
        cfg = self.config
        timeout = cfg.timeout.total_seconds()
        try:
            context = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
            smtp: smtplib.SMTP
            if cfg.tls == "implicit":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.effective_port, timeout=timeout, context=context)
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.effective_port, timeout=timeout)
        except OSError as err:  # smtplib.SMTPException and ssl.SSLError are OSErrors
            raise _connection_error(cfg, err) from err
        try:
            try:
                if cfg.tls == "starttls":
                    smtp.starttls(context=context)
                if cfg.username:
                    password = cfg.password.reveal().get_secret_value() if cfg.password else ""
                    smtp.login(cfg.username, password)
            except smtplib.SMTPAuthenticationError as err:
                origin = cfg.password.origin if cfg.password else "no password"
                said = f"{err.smtp_code} {server_text(err.smtp_error)}"
                refused = login_refused(cfg.host, cfg.username or "", origin, said)
                raise NotifierError("auth", refused) from err
            except smtplib.SMTPResponseException as err:
                raise NotifierError("refused", f"{cfg.host} answered {err.smtp_code}") from err
            except OSError as err:
                raise _connection_error(cfg, err) from err
            yield smtp
        finally:
            # What the relay says to QUIT no longer matters: the message (if any) was accepted already,
            # and an error here must not make the dispatcher send it again.
            with suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()


PLUGIN = NotifierPlugin(SmtpConfig, SmtpNotifier)
"""The ``smtp`` notifier plugin (entry point ``replywatch.notifiers: smtp``)."""


def _connection_error(cfg: SmtpConfig, err: OSError) -> NotifierError:
    """A protocol or TLS failure, or a relay that cannot be reached, as the dispatcher's error class, with
    what it means and the setting to change where that is known (the sources' connection hints)."""
    hint = connection_hint(err, host=cfg.host, port=cfg.effective_port, tls=cfg.tls, ca_file=cfg.ca_file)
    if isinstance(err, smtplib.SMTPException | ssl.SSLError):
        return NotifierError("protocol", hint or f"{cfg.host}: {type(err).__name__}")
    return NotifierError("unreachable", hint or f"{cfg.host}:{cfg.effective_port}: {err.strerror or err}")
