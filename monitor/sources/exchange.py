"""Source plugin ``exchange``: Exchange Server mailboxes read through EWS (exchangelib) with SyncFolderItems.

One service account reads many mailboxes by delegation or impersonation. Per mailbox and folder the
saved state is EWS's sync state: a poll of an unchanged folder is one SyncFolderItems request. The sync
asks for ids only; the fields and internet headers the engine needs are fetched (GetItem) only for items
created, changed or marked read since. ``ErrorServerBusy`` carries its back-off to the supervisor; the
invalid XML character references real servers send (``&#x2;``) are removed by exchangelib's parser.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from monitor.plugins import SecretRef
from monitor.sources.base import (
    FOLDER_COUNTS,
    Source,
    SourceConfigBase,
    SourcePlugin,
)

FIELDS = (
    "message_id",
    "in_reply_to",
    "references",
    "conversation_id",
    "subject",
    "author",
    "sender",
    "to_recipients",
    "cc_recipients",
    "reply_to",
    "datetime_received",
    "datetime_sent",
    "is_read",
    "headers",
)
"""exchangelib's names of the fields fetched for a new or changed item (InternetMessageHeaders included)."""


class ExchangeConfig(SourceConfigBase):
    """Exchange Server mailboxes read through EWS by one service account."""

    mailbox_counts: ClassVar[frozenset[str]] = FOLDER_COUNTS
    """Every folder count: the first SyncFolderItems round lists every item of the folder and later rounds
    every change (read flags included), so the items kept with the sync state give the folder's message and
    unread counts and its oldest arrival without another request."""

    kind: Literal["exchange"] = "exchange"
    """Selects this plugin."""
    server: str | None = None
    """The Exchange server's host name (EWS at ``https://<server>/EWS/Exchange.asmx``)."""
    service_endpoint: str | None = None
    """The full EWS URL, instead of ``server``."""
    autodiscover: bool = False
    """Find the EWS URL by Autodiscover from the first mailbox's address, instead of ``server``."""
    username: str
    """The service account: ``DOMAIN\\user`` or ``user@domain``."""
    password: SecretRef | None = None
    """Its password: ``password_env`` or ``password_file``."""
    auth: Literal["ntlm", "basic"] = "ntlm"
    """How the account logs in (``basic`` only over TLS, which EWS always is here)."""
    mailboxes: list[str] = Field(min_length=1)
    """Primary SMTP addresses of the mailboxes to read."""
    access: Literal["delegate", "impersonation"] = "delegate"
    """``delegate`` (FullAccess on each mailbox) or ``impersonation`` (the ApplicationImpersonation role)."""
    version: str | None = None
    """The server's version: ``15.1`` (2016), ``15.2`` (2019, SE); unset, exchangelib asks the server."""
    ca_file: Path | None = None
    """PEM file of CA certificates to trust instead of the system's (wins over the environment's)."""
    page_size: int = Field(default=100, ge=1, le=512)
    """Changes per SyncFolderItems request (``MaxChangesReturned``)."""

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None:
            major, _, minor = value.partition(".")
            if not (major.isdigit() and minor.isdigit()):
                raise ValueError("expected MAJOR.MINOR, e.g. 15.2")
        return value

    @model_validator(mode="after")
    def _where(self) -> ExchangeConfig:
        given = [k for k in ("server", "service_endpoint") if getattr(self, k)]
        if self.autodiscover:
            given.append("autodiscover")
        if len(given) != 1:
            raise ValueError(
                "give exactly one of server, service_endpoint, autodiscover"
                f" (got {' and '.join(given) or 'none'})"
            )
        if self.service_endpoint and not self.service_endpoint.startswith("https://"):
            raise ValueError("service_endpoint must be an https:// URL")
        if self.password is None:
            raise ValueError("give password_env or password_file")
        return self

    @property
    def endpoint(self) -> str | None:
        """The EWS URL (None with autodiscover)."""
        if self.service_endpoint:
            return self.service_endpoint
        return f"https://{self.server}/EWS/Exchange.asmx" if self.server else None


def _build(name: str, config: ExchangeConfig) -> Source:
    """Build the source; its client libraries are imported only when a config uses this kind."""
    from monitor.sources.exchange_source import ExchangeSource

    return ExchangeSource(name, config)


PLUGIN = SourcePlugin(ExchangeConfig, _build)
"""The ``exchange`` source plugin (entry point ``exchange`` of ``replywatch.sources``)."""
