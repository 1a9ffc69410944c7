"""Source plugin ``graph``: Exchange Online mailboxes read through Microsoft Graph ``messages/delta``.

Per mailbox and folder (a folder is mailbox x role) the source keeps Graph's ``@odata.deltaLink`` as its
saved state: a poll of an unchanged folder is one request. Items come with a ``$select`` of only what the
engine reads, immutable ids (``Prefer: IdType="ImmutableId"``) and a page size. ``@removed`` entries are
reported in :attr:`FolderRead.removed`; 410 Gone reads the folder again from the start (ingest is
idempotent on the immutable id, so nothing is counted twice); 429 and 503 carry ``Retry-After`` to the
supervisor. Tokens come from msal (client secret or certificate) for ``{graph_url}/.default``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.durations import Duration
from monitor.plugins import SecretRef
from monitor.sources.base import (
    FOLDER_COUNTS,
    Source,
    SourceConfigBase,
    SourcePlugin,
)
from monitor.sources.junk import GRAPH_JUNK, is_junk_name, junk_refusal

SELECT = (
    "id,internetMessageId,conversationId,subject,from,sender,toRecipients,ccRecipients,replyTo,"
    "receivedDateTime,sentDateTime,isRead"
)
"""The message properties a poll asks for: only what the engine reads."""
HEADERS = "internetMessageHeaders"
"""Added to :data:`SELECT` when ``internet_headers`` is on (the classifier's and threading's headers)."""
ID_TYPE = 'IdType="ImmutableId"'
"""Ids that survive a move between folders, so a message keeps its external id."""


class GraphFolders(BaseModel):
    """Which well-known folder (or folder id) plays each role in every mailbox."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    inbox: str = "inbox"
    """Where customers' mail arrives."""
    sent: str = "sentitems"
    """Where the team's replies are kept."""

    @field_validator("inbox", "sent")
    @classmethod
    def _not_junk(cls, value: str) -> str:
        if value.strip().lower() in GRAPH_JUNK or is_junk_name(value):
            raise ValueError(junk_refusal(value))
        return value


class GraphConfig(SourceConfigBase):
    """Exchange Online mailboxes read through Microsoft Graph with an app's own (application) permission."""

    mailbox_counts: ClassVar[frozenset[str]] = FOLDER_COUNTS
    """Every folder count: the delta's first round lists every message of the folder and later rounds every
    change (read flags included), so the items kept with the delta link give the folder's message and unread
    counts and its oldest arrival without another request."""

    kind: Literal["graph"] = "graph"
    """Selects this plugin."""
    tenant_id: str
    """The directory (tenant) id or a verified domain."""
    client_id: str
    """The app registration's application (client) id."""
    client_secret: SecretRef | None = None
    """The app's client secret: ``client_secret_env`` or ``client_secret_file``."""
    certificate_file: Path | None = None
    """A PEM file holding the app's private key and its certificate (instead of a client secret)."""
    mailboxes: list[str] = Field(min_length=1)
    """The mailboxes (user principal names or addresses) to read."""
    folders: GraphFolders = Field(default_factory=GraphFolders)
    """Folders per mailbox: ``{inbox: inbox, sent: sentitems}``."""
    authority: str = "https://login.microsoftonline.com"
    """The sign-in host; a national cloud's (``https://login.microsoftonline.us``) or a test server's."""
    graph_url: str = "https://graph.microsoft.com"
    """The Graph host; a national cloud's (``https://graph.microsoft.us``) or a test server's."""
    ca_file: Path | None = None
    """PEM file of CA certificates to trust instead of the system's (wins over the environment's)."""
    page_size: int = Field(default=100, ge=1, le=1000)
    """Messages per delta page (``Prefer: odata.maxpagesize``)."""
    internet_headers: bool = True
    """Also read each new message's ``internetMessageHeaders`` (In-Reply-To, References, Auto-Submitted,
    List-Id...): threading by references and the automated-mail signals need them."""
    timeout: Duration = Field(default_factory=lambda: timedelta(seconds=30))
    """How long to wait for one request."""

    @field_validator("authority", "graph_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/")

    @field_validator("mailboxes")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        lowered = [v.strip().lower() for v in value]
        if any(not v for v in lowered):
            raise ValueError("mailbox must not be empty")
        if len(set(lowered)) != len(lowered):
            raise ValueError("a mailbox is listed twice")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> GraphConfig:
        given = [
            key
            for key, value in (
                ("client_secret", self.client_secret),
                ("certificate_file", self.certificate_file),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of client_secret_env, client_secret_file, certificate_file"
                f" (got {' and '.join(given) or 'none'})"
            )
        return self

    @property
    def scope(self) -> str:
        """The token scope: every application permission granted on ``graph_url``."""
        return f"{self.graph_url}/.default"


def _build(name: str, config: GraphConfig) -> Source:
    """Build the source; its client libraries are imported only when a config uses this kind."""
    from monitor.sources.graph_source import GraphSource

    return GraphSource(name, config)


PLUGIN = SourcePlugin(GraphConfig, _build)
"""The ``graph`` source plugin (entry point ``graph`` of ``replywatch.sources``)."""
