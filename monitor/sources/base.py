"""What every source plugin implements, its errors, the folder-source template, and the registry of kinds.

A folder source (imap, maildir, mbox) subclasses :class:`FolderSource` and implements only what differs:
which folders it watches (:meth:`FolderSource.folders`) and how one folder's changes are read from its
saved state (:meth:`FolderSource.read_folder`). The template owns the folder loop, the snapshots, the
versioned cursor envelope ``{"version": N, "folders": {role: state}}``, resync and the error prefix.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from monitor.durations import Interval
from monitor.events import CallEvent, Channel, MailboxSnapshot, MessageEvent
from monitor.freshness import default_stale_after
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


FOLDER_COUNTS: frozenset[str] = frozenset({"messages", "unseen", "oldest"})
"""Every count a folder source reads (STATUS MESSAGES and UNSEEN, maildir and mbox flags, arrival times)."""


@dataclass(slots=True)
class PollResult:
    """What one poll found: new or changed messages or calls, folder counts and the cursor after them."""

    messages: list[MessageEvent] = field(default_factory=list)
    calls: list[CallEvent] = field(default_factory=list)
    snapshots: list[MailboxSnapshot] = field(default_factory=list)
    cursor: Cursor = field(default_factory=dict)
    resync: bool = False
    """True when the source discarded its old position (e.g. UIDVALIDITY changed)."""
    removed: list[str] = field(default_factory=list)
    """External ids of messages the server reported deleted or moved out of their folder."""
    remaining: dict[str, frozenset[str]] = field(default_factory=dict)
    """Folder role -> the external ids of every message now in that folder, for folders whose listing was
    compared (a removal suspected, or a resync): the store marks its other rows of that folder removed."""


class SourceConfigBase(PluginConfig):
    """Fields every source kind shares."""

    channel: ClassVar[Channel] = Channel.EMAIL
    """The channel the source's events are on (a call log sets :attr:`Channel.PHONE`)."""

    mailbox_counts: ClassVar[frozenset[str]] = frozenset()
    """Which folder counts the source reports (``messages``, ``unseen``, ``oldest``): a limit of
    ``inbox_nearly_empty`` on a count the source cannot give is refused by check-config."""

    poll_every: Interval = Field(default=timedelta(minutes=1))
    """How often to poll, as a duration (``90s``, ``1m``); at least one second."""
    stale_after: Interval | None = None
    """How long after its last successful poll the source's data counts as missing, so that its teams are
    not judged (default: three ``poll_every``, at least five minutes)."""

    @property
    def staleness_limit(self) -> timedelta:
        """``stale_after``, or its default derived from ``poll_every``."""
        return self.stale_after or default_stale_after(self.poll_every)


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


class SourceLog(logging.LoggerAdapter[logging.Logger]):
    """A plugin's logger: every record carries the ``source`` field, merged with the call's own ``extra``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        """Add the source's fields to those given with the call."""
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs

    def odd_field(self, where: str, field: str, reason: str) -> None:
        """Say once that a message's ``field`` could not be read as it is; the message is kept and judged.

        ``where`` names the message by folder and UID, file or offset, never by its content (issue 7).
        """
        self.info("%s: %s %s; message kept", where, field, reason)

    def reporter(self, where: str) -> Callable[[str, str], None]:
        """:meth:`odd_field` for one message, as the ``report`` callback of ``to_event``."""
        return functools.partial(self.odd_field, where)


def source_log(module: str, source: str) -> SourceLog:
    """The logger of the plugin module ``module`` for the source named ``source``."""
    return SourceLog(logging.getLogger(module), {"source": source})


# --- the folder-source template -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Folder:
    """One folder a source watches: the role its events carry and where it is."""

    role: str
    """``inbox``, ``sent`` or an extra folder's own name: events' and snapshots' ``folder``."""
    name: str
    """Where it is (an IMAP folder name, a directory, a file): a saved state for another place is not used."""


class FolderState(TypedDict):
    """What every plugin's saved state of one folder holds; plugins extend it with their own fields."""

    name: str
    """:attr:`Folder.name` of the folder the state was read from."""


StateT = TypeVar("StateT", bound=FolderState)


@dataclass(slots=True)
class FolderRead(Generic[StateT]):
    """What reading one folder found: its state after the read, new or changed messages and its counts."""

    state: StateT
    messages: list[MessageEvent]
    total: int
    unseen: int
    unanswered: int
    oldest: datetime | None
    """When its oldest message arrived (None when empty or unknown)."""
    resync: bool = False
    """True when the folder's old position no longer held (e.g. UIDVALIDITY changed, a file rewritten)."""
    removed: list[str] = field(default_factory=list)
    """External ids of messages the server reported gone from the folder since ``state``."""
    remaining: frozenset[str] | None = None
    """When the folder was listed whole (a removal suspected, a resync): the external ids of every message
    in it, so that the store finds those removed. None when not listed (the no-change poll's case)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FolderSource(ABC, Generic[StateT]):
    """A source that watches folders: the folder loop, snapshots, cursor envelope, resync and error prefix.

    The cursor is ``{"version": cursor_version, "folders": {role: state}}``, each state a ``state_type``
    (a :class:`FolderState`) validated when read. A cursor of another version, a broken envelope or a
    state that does not validate is dropped: every folder concerned is read again from the start and
    the poll says ``resync`` (ingest is idempotent, so a re-read never counts a message twice). A
    cursor without a version is offered to :meth:`upgrade` first. A :class:`SourceError` raised while
    polling names the source, and the folder when one was being read, at the start of its message.
    """

    cursor_version: ClassVar[int]
    """Bumped whenever ``state_type`` changes shape: older cursors are then upgraded or dropped."""
    state_type: ClassVar[type[FolderState]]
    """The TypedDict of one folder's saved state."""
    _states: ClassVar[TypeAdapter[Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "state_type" in cls.__dict__:
            cls._states = TypeAdapter(cls.state_type)

    def __init__(self, name: str, *, clock: Callable[[], datetime] | None = None) -> None:
        self.name = name
        self._clock = clock or _utc_now
        self.log = source_log(type(self).__module__, name)

    # -- what a plugin implements ------------------------------------------------------------------

    @abstractmethod
    def folders(self) -> list[Folder]:
        """Every folder to poll now, in order (may look them up; raises :class:`SourceError`)."""

    @abstractmethod
    def read_folder(self, folder: Folder, state: StateT | None, now: datetime) -> FolderRead[StateT]:
        """Read one folder's changes since ``state`` (None: everything), raising :class:`SourceError`."""

    def upgrade(self, cursor: Cursor, folders: Sequence[Folder]) -> dict[str, Any] | None:
        """Per-role states from a cursor saved before the envelope existed, or None when it is not one."""
        return None

    # -- the template --------------------------------------------------------------------------------

    def poll(self, cursor: Cursor | None) -> PollResult:
        """Report what is new or changed in every folder since ``cursor``, and each folder's counts."""
        try:
            folders = self.folders()
        except SourceError as err:
            _locate(err, f"source {self.name}")
            raise
        saved, resync = self._saved_states(cursor, folders)
        now = self._clock()
        result = PollResult()
        states: dict[str, Any] = {}
        for folder in folders:
            raw = saved.get(folder.role)
            state, dropped = self._saved_state(folder, raw)
            try:
                read = self.read_folder(folder, state, now)
            except SourceError as err:
                _locate(err, f"source {self.name} folder {folder.role}")
                raise
            resync = resync or dropped or read.resync
            # An unchanged folder keeps its saved JSON as it was: no serializing on a poll that found nothing.
            unchanged = state is not None and read.state is state
            states[folder.role] = raw if unchanged else self._states.dump_python(read.state, mode="json")
            result.messages.extend(read.messages)
            result.removed.extend(read.removed)
            if read.remaining is not None:
                result.remaining[folder.role] = read.remaining
            result.snapshots.append(
                MailboxSnapshot(
                    self.name, folder.role, now, read.total, read.unseen, read.unanswered, read.oldest
                )
            )
        result.cursor = {"version": self.cursor_version, "folders": states}
        result.resync = resync
        return result

    def _saved_states(
        self, cursor: Cursor | None, folders: Sequence[Folder]
    ) -> tuple[Mapping[str, Any], bool]:
        """The raw per-role states of ``cursor``, and whether it had to be dropped."""
        if not cursor:
            return {}, False
        if not isinstance(cursor, dict):  # a cursor column edited by hand or damaged
            self.log.warning("cursor is not a JSON object; reading every folder again")
            return {}, True
        version = cursor.get("version")
        if version == self.cursor_version:
            states = cursor.get("folders")
            if isinstance(states, dict):
                return states, False
            self.log.warning("cursor has no folder states; reading every folder again")
            return {}, True
        if version is None:
            upgraded = self.upgrade(cursor, folders)
            if upgraded is not None:
                return upgraded, False
        self.log.warning(
            "cursor of version %r is not readable (this version writes %d); reading every folder again",
            version,
            self.cursor_version,
        )
        return {}, True

    def _saved_state(self, folder: Folder, raw: Any) -> tuple[StateT | None, bool]:
        """The typed state of one folder, or None; True when a saved state had to be dropped."""
        if raw is None:
            return None, False  # a folder polled for the first time
        try:
            state: StateT = self._states.validate_python(raw)
        except ValidationError as err:
            self.log.warning(
                "folder %s: saved state is not readable (%d errors); reading the folder again",
                folder.role,
                err.error_count(),
            )
            return None, True
        if state["name"] != folder.name:
            self.log.info(
                "folder %s is now %r (was %r); reading it from the start",
                folder.role,
                folder.name,
                state["name"],
            )
            return None, True
        return state, False


def _locate(err: SourceError, where: str) -> None:
    """Put ``where`` (source, folder) at the start of ``err``'s message, keeping its class and fields."""
    err.args = (f"{where}: {err}", *err.args[1:])


SOURCES: Registry[SourceConfigBase, SourceFactory] = Registry(SOURCES_GROUP, SourceConfigBase)
"""Every source kind, from the ``replywatch.sources`` entry points."""
