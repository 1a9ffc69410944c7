"""What every source plugin implements, its errors, and the registry of source kinds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Protocol

from pydantic import Field

from monitor.durations import Interval
from monitor.events import CallEvent, Channel, MailboxSnapshot, MessageEvent
from monitor.plugins import SOURCES_GROUP, Plugin, PluginConfig, Registry

Cursor = dict[str, Any]
"""A source's position, JSON-serializable; saved in the same transaction as the events it covers."""


class SourceError(Exception):
    """A poll failed; ``reason`` is a short label for ``replywatch_source_errors_total{reason}``."""

    reason: ClassVar[str] = "error"

    def __init__(self, *args: object, retry_after: timedelta | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after
        """How long the server asked to wait (HTTP 429/503 ``Retry-After``, EWS ``ErrorServerBusy``)."""


class TransientSourceError(SourceError):
    """The server dropped or timed out: retry with backoff."""

    reason = "transient"


class AuthSourceError(SourceError):
    """The server refused the credentials: the user must fix them; retried slowly (every 15 minutes)."""

    reason = "auth"


class PermanentSourceError(SourceError):
    """The source's configuration does not match the server (folder missing, bad path); retried slowly."""

    reason = "config"


@dataclass(slots=True)
class PollResult:
    """What one poll found: new or changed messages or calls, folder counts and the cursor after them."""

    messages: list[MessageEvent] = field(default_factory=list)
    calls: list[CallEvent] = field(default_factory=list)
    snapshots: list[MailboxSnapshot] = field(default_factory=list)
    cursor: Cursor = field(default_factory=dict)
    resync: bool = False
    """True when the source discarded its old position (e.g. UIDVALIDITY changed)."""


class SourceConfigBase(PluginConfig):
    """Fields every source kind shares."""

    channel: ClassVar[Channel] = Channel.EMAIL
    """The channel the source's events are on (a call log sets :attr:`Channel.PHONE`)."""

    poll_every: Interval = Field(default=timedelta(minutes=1))
    """How often to poll, as a duration (``90s``, ``1m``); at least one second."""


class Source(Protocol):
    """A source plugin: built from its config without I/O, then polled."""

    name: str

    def check(self) -> list[str]:
        """Connect and verify folders; return problems found (empty when fine)."""

    def poll(self, cursor: Cursor | None) -> PollResult:
        """Return everything new since ``cursor`` (None: from the beginning)."""

    def close(self) -> None:
        """Release connections."""


SourceFactory = Callable[[str, Any], Source]
"""Builds a source from its name and its validated config (of the plugin's own config class), without I/O."""
SourcePlugin = Plugin[SourceConfigBase, SourceFactory]
"""A source plugin, named by an entry point of the ``replywatch.sources`` group."""

SOURCES: Registry[SourceConfigBase, SourceFactory] = Registry(SOURCES_GROUP, SourceConfigBase)
"""Every source kind, from the ``replywatch.sources`` entry points."""
