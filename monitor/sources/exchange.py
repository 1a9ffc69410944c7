"""Source plugin ``exchange``: Exchange Server mailboxes read through EWS (exchangelib) with SyncFolderItems.

One service account (NTLM or basic) or one app registration (OAuth 2.0 client credentials, its tokens from
msal) reads many mailboxes by delegation or impersonation. Per mailbox and folder the
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
    """Exchange mailboxes read through EWS by one service account or one app registration (OAuth)."""

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
    username: str | None = None
    """The service account, for a password login: ``DOMAIN\\user`` or ``user@domain``."""
    password: SecretRef | None = None
    """Its password: ``password_env`` or ``password_file``."""
    auth: Literal["ntlm", "basic", "oauth"] | None = None
    """How replywatch logs in: ``ntlm`` or ``basic`` (``username`` and password), or ``oauth`` (an app
    registration's own token, OAuth 2.0 client credentials). Unset: ``oauth`` with a client secret or
    certificate, else ``ntlm``."""
    tenant_id: str | None = None
    """OAuth: the directory (tenant) id or a verified domain."""
    client_id: str | None = None
    """OAuth: the app registration's application (client) id."""
    client_secret: SecretRef | None = None
    """OAuth: the app's client secret, ``client_secret_env`` or ``client_secret_file``."""
    certificate_file: Path | None = None
    """OAuth: a PEM file holding the app's RSA private key and its certificate (instead of a secret)."""
    authority: str = "https://login.microsoftonline.com"
    """OAuth: the sign-in host; a national cloud's (``https://login.microsoftonline.us``)."""
    scope: str = "https://outlook.office365.com/.default"
    """OAuth: the token's scope, the EWS resource's ``/.default`` (``https://outlook.office365.us/.default``
    in GCC High; the on-premises EWS URL's host with hybrid modern authentication)."""
    mailboxes: list[str] = Field(min_length=1)
    """Primary SMTP addresses of the mailboxes to read."""
    access: Literal["delegate", "impersonation"] | None = None
    """``delegate`` (FullAccess on each mailbox) or ``impersonation`` (the ApplicationImpersonation role, or
    the app's ``full_access_as_app`` permission). Unset: ``impersonation`` with OAuth, else ``delegate``."""
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
        self._one_credential()
        return self

    def _one_credential(self) -> None:
        """Exactly one credential, and the settings its kind of login needs (no others)."""
        given = [
            name
            for name, value in (
                ("password", self.password),
                ("client_secret", self.client_secret),
                ("certificate_file", self.certificate_file),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of password_env, password_file, client_secret_env, client_secret_file,"
                f" certificate_file (got {' and '.join(given) or 'none'})"
            )
        if given == ["password"]:
            if self.auth == "oauth":
                raise ValueError(
                    "auth oauth logs in with client_secret_env, client_secret_file or certificate_file,"
                    " not a password"
                )
            if not self.username:
                raise ValueError(f"auth {self.login}: give the username the password belongs to")
            extra = [k for k in ("tenant_id", "client_id") if getattr(self, k)]
            if extra:
                raise ValueError(f"{' and '.join(extra)}: only for auth oauth")
            return
        if self.auth not in (None, "oauth"):
            raise ValueError(
                f"auth {self.auth} logs in with password_env or password_file, not an app's {given[0]}"
            )
        missing = [k for k in ("tenant_id", "client_id") if not getattr(self, k)]
        if missing:
            raise ValueError(f"auth oauth: give {' and '.join(missing)}")
        if self.username:
            raise ValueError("auth oauth: username is not used (the app reads the mailboxes itself)")
        if self.access == "delegate":
            raise ValueError(
                "auth oauth: an app's token reads mailboxes by impersonation; remove access: delegate"
            )
        if not self.authority.startswith("https://") or not self.scope.startswith("https://"):
            raise ValueError("authority and scope must be https:// URLs")

    @property
    def login(self) -> Literal["ntlm", "basic", "oauth"]:
        """How the source logs in (``auth``, or what the credential given implies)."""
        if self.auth is not None:
            return self.auth
        return "ntlm" if self.password is not None else "oauth"

    @property
    def access_type(self) -> Literal["delegate", "impersonation"]:
        """``access``, or its default for the login: impersonation for an app's token, else delegation."""
        if self.access is not None:
            return self.access
        return "impersonation" if self.login == "oauth" else "delegate"

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
