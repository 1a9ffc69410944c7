"""The ``smtp`` notifier: alert mail through a relay, TLS verified, marked as automatic mail."""

from __future__ import annotations

import smtplib
import ssl
from datetime import timedelta
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
from monitor.exporters.notifiers.base import Delivery, NotifierConfigBase, NotifierError, NotifierPlugin
from monitor.exporters.notifiers.render import environment, render
from monitor.plugins import SecretRef

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
    """A directory whose ``alert.txt.j2`` / ``alert.html.j2`` replace the built-in templates."""
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
        sender = getaddresses([self.config.sender])[0][1]
        msg = EmailMessage()
        msg["From"] = self.config.sender
        msg["To"] = Address(addr_spec=delivery.recipient) if "@" in delivery.recipient else delivery.recipient
        if self.config.reply_to:
            msg["Reply-To"] = self.config.reply_to
        msg["Subject"] = rendered.subject
        msg["Date"] = format_datetime(max(item.at for item in delivery.items))
        msg["Message-ID"] = f"<{delivery.key}@{sender.rpartition('@')[2]}>"
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        msg.set_content(rendered.text)
        msg.add_alternative(rendered.html, subtype="html")
        return msg

    def send(self, delivery: Delivery) -> None:
        """Deliver one message; :class:`NotifierError` when the relay is unreachable or refuses it."""
        msg = self.message(delivery)
        cfg = self.config
        timeout = cfg.timeout.total_seconds()
        try:
            context = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
            smtp: smtplib.SMTP
            if cfg.tls == "implicit":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.effective_port, timeout=timeout, context=context)
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.effective_port, timeout=timeout)
            with smtp:
                if cfg.tls == "starttls":
                    smtp.starttls(context=context)
                if cfg.username:
                    password = cfg.password.reveal().get_secret_value() if cfg.password else ""
                    smtp.login(cfg.username, password)
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as err:
            from monitor.sources.hints import login_refused, server_text

            origin = cfg.password.origin if cfg.password else "no password"
            said = f"{err.smtp_code} {server_text(err.smtp_error)}"
            raise NotifierError("auth", login_refused(cfg.host, cfg.username or "", origin, said)) from err
        except smtplib.SMTPResponseException as err:
            raise NotifierError("refused", f"{cfg.host} answered {err.smtp_code}") from err
        except smtplib.SMTPRecipientsRefused as err:
            raise NotifierError("refused", f"{cfg.host} refused the recipient") from err
        except (smtplib.SMTPException, ssl.SSLError) as err:
            hint = self._hint(err)
            raise NotifierError("protocol", hint or f"{cfg.host}: {type(err).__name__}") from err
        except OSError as err:
            hint = self._hint(err)
            raise NotifierError(
                "unreachable", hint or f"{cfg.host}:{cfg.effective_port}: {err.strerror or err}"
            ) from err

    def _hint(self, err: BaseException) -> str | None:
        """What a failed connection means and the setting to change (the sources' hints)."""
        from monitor.sources.hints import connection_hint

        cfg = self.config
        return connection_hint(err, host=cfg.host, port=cfg.effective_port, tls=cfg.tls, ca_file=cfg.ca_file)


PLUGIN = NotifierPlugin(SmtpConfig, SmtpNotifier)
"""The ``smtp`` notifier plugin (entry point ``replywatch.notifiers: smtp``)."""
