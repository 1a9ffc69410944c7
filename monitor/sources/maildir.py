"""Maildir / Maildir++ source: reads a local mailbox's files without ever renaming or changing them."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from monitor.events import MessageEvent, archive_role
from monitor.mail.event import to_event
from monitor.mail.headers import parse_header_block
from monitor.mail.preview import preview
from monitor.sources.base import (
    FOLDER_COUNTS,
    Cursor,
    Folder,
    FolderRead,
    FolderSource,
    FolderState,
    PermanentSourceError,
    SourceConfigBase,
    SourcePlugin,
    TransientSourceError,
)
from monitor.sources.files import read_header_block, read_prefix
from monitor.sources.junk import is_junk_name, junk_refusal

SENT_NAMES: tuple[str, ...] = (
    ".Sent",
    ".Sent Items",
    ".Sent Messages",
    ".Sent Mail",
    ".sent-mail",
    ".INBOX.Sent",
    ".INBOX.Sent Items",
    ".[Gmail].Sent Mail",
    "Sent",
)
"""Folder names ``sent: auto`` looks for, in this order, matched case-insensitively."""

# Maildir info flags (https://cr.yp.to/proto/maildir.html, "2," semantics) -> event flag names.
# P (passed) has no IMAP system flag; lower-case letters are Dovecot keywords: both are ignored.
FLAG_NAMES: dict[str, str] = {"S": "seen", "R": "answered", "F": "flagged", "T": "deleted", "D": "draft"}

# A directory modified this recently may still change within the same mtime tick (coarse
# timestamps, FAT's 2 s, NFS): its listing is not trusted to be complete and is read again next poll.
_RACY_NS = 2_000_000_000


class MaildirFolders(BaseModel):
    """Which Maildir++ folders hold the team's inbox and its sent mail."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    inbox: str = ""
    """The inbox: ``""`` is the maildir's root (INBOX); else a subfolder such as ``.Support``."""
    sent: str | None = "auto"
    """The Sent folder: ``auto`` finds ``.Sent``, ``.Sent Items``...; or a name such as ``.Sent``; or null."""
    archive: list[str] = []
    """Folders where the team files handled mail (such as ``.Archive``): a message moved there is not
    removed, and mail found only there neither opens an item nor answers one."""

    @field_validator("archive")
    @classmethod
    def _archive_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or name.upper() == "INBOX" or "/" in name or "\\" in name or name in (".", ".."):
                raise ValueError(f"archive folder {name!r} must be one directory name under the maildir")
        if len(set(value)) != len(value):
            raise ValueError("archive folders must be distinct")
        return value

    @field_validator("inbox")
    @classmethod
    def _inbox_alias(cls, value: str) -> str:
        # IMAP habits: "INBOX" names the maildir's root, as Dovecot and Courier map it.
        return "" if value.upper() == "INBOX" else value

    @field_validator("inbox", "sent")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is None or value in ("", "auto"):
            return value
        if "/" in value or "\\" in value or value in (".", "..") or "\0" in value:
            raise ValueError(f"folder {value!r} must be one directory name under the maildir (like '.Sent')")
        if is_junk_name(value.removeprefix(".")):  # Maildir++ names a folder ".Junk"
            raise ValueError(junk_refusal(value))
        return value


class MaildirConfig(SourceConfigBase):
    """A local Maildir (Maildir++ subfolders), read without changing a file."""

    mailbox_counts: ClassVar[frozenset[str]] = FOLDER_COUNTS

    kind: Literal["maildir"] = "maildir"
    """Selects this source plugin."""
    path: Path
    """The maildir's root: the directory holding ``cur/``, ``new/`` and ``tmp/``."""
    folders: MaildirFolders = MaildirFolders()
    """Where the inbox and the Sent folder are."""
    text_preview: bool = True
    """Also read the first words of each message's text (for ``closing_thanks`` and holding-reply phrases)."""


@dataclass(frozen=True, slots=True)
class MaildirEntry:
    """One message file as the directory listing shows it."""

    key: str
    """The unique name: the file name before the ``:`` info part (stable across moves and flag changes)."""
    subdir: str
    """``new`` or ``cur``."""
    filename: str
    flags: str
    """The system flag letters of its ``:2,`` info, sorted (``RS``); empty in ``new/``."""


def split_filename(filename: str) -> tuple[str, str]:
    """A maildir file name's unique key and its sorted system flag letters (``"123.M1P2.host:2,SR"``)."""
    key, sep, info = filename.partition(":")
    if not sep or not info.startswith("2,"):
        return key, ""
    return key, "".join(sorted({c for c in info[2:] if c in FLAG_NAMES}))


def flag_names(letters: str) -> frozenset[str]:
    """Event flag names for maildir flag letters."""
    return frozenset(FLAG_NAMES[c] for c in letters if c in FLAG_NAMES)


def list_folder(folder: Path) -> dict[str, MaildirEntry]:
    """The messages of one maildir folder by key: ``new/`` listed before ``cur/``, ``cur/`` wins.

    Listing ``new/`` first means a file that an MUA moves to ``cur/`` while we list is seen at least
    once (possibly twice, then deduplicated) rather than not at all.
    """
    found: dict[str, MaildirEntry] = {}
    for subdir in ("new", "cur"):
        with os.scandir(folder / subdir) as listing:
            for entry in listing:
                if entry.name.startswith("."):
                    continue  # editors' and NFS's hidden files, never messages
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue  # a symbolic link may point out of the maildir (/etc/shadow): never read
                except OSError:
                    continue
                key, flags = split_filename(entry.name)
                found[key] = MaildirEntry(key, subdir, entry.name, flags)
    return found


def _key_hash(key: str, flags: str) -> int:
    data = f"{key}\0{flags}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def encode_known(hashes: set[int]) -> str:
    """Pack 64-bit hashes of (key, flags) into a compact string: 8 bytes each, sorted, base64."""
    packed = b"".join(h.to_bytes(8, "big") for h in sorted(hashes))
    return base64.b64encode(packed).decode("ascii")


def decode_known(text: str) -> set[int]:
    """The inverse of :func:`encode_known`."""
    packed = base64.b64decode(text.encode("ascii"))
    return {int.from_bytes(packed[i : i + 8], "big") for i in range(0, len(packed) - 7, 8)}


def _safe_text(value: str) -> str:
    # File names are bytes; undecodable ones arrive with surrogates that a database cannot store.
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _utc_from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


def is_maildir(folder: Path) -> bool:
    """True when ``folder`` has the ``cur/`` and ``new/`` directories of a maildir."""
    return (folder / "cur").is_dir() and (folder / "new").is_dir()


class MaildirState(FolderState):
    """One maildir folder's saved state (``name`` is its directory)."""

    mtimes: list[int] | None
    """``new/`` and ``cur/`` mtimes when the listing was complete; None: list again next poll."""
    known: str
    """:func:`encode_known` hashes of the (key, flags) already emitted."""
    total: int
    unseen: int
    unanswered: int
    oldest: tuple[int, str] | None
    """(mtime_ns, key) of the oldest file."""


class MaildirSource(FolderSource[MaildirState]):
    """Polls the inbox and Sent folders of one maildir; incremental by directory mtimes and key hashes.

    The state keeps, per folder, the ``new/`` and ``cur/`` mtimes, the folder's counts and a set of
    64-bit hashes of (key, flags) of the files already emitted (8 bytes each, about 11 characters of
    JSON per message). An unchanged folder costs two ``stat`` calls; a changed one a listing, and only
    files whose key is new or whose flags changed are opened.
    """

    cursor_version = 2
    state_type = MaildirState

    def __init__(
        self, name: str, config: MaildirConfig, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(name, clock=clock)
        self.config = config
        self._sent_missing_logged = False

    # -- folders ---------------------------------------------------------------------------------
    def _find_sent(self) -> str | None:
        """The Sent folder's directory name under the root, or None when there is none."""
        sent = self.config.folders.sent
        root = self.config.path
        if sent is None:
            return None
        if sent != "auto":
            for candidate in (sent, f".{sent}") if not sent.startswith(".") else (sent,):
                if is_maildir(root / candidate):
                    return candidate
            return None
        try:
            names = {e.name.lower(): e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False)}
        except OSError:
            return None
        for wanted in SENT_NAMES:
            actual = names.get(wanted.lower())
            if actual is not None and is_maildir(root / actual):
                return actual
        return None

    def folders(self) -> list[Folder]:
        """The inbox and, when there is one, the Sent folder (named by their directories)."""
        root = self.config.path
        if not root.is_dir():
            raise PermanentSourceError(f"maildir path '{root}' not found")
        folders = [Folder("inbox", str(root / self.config.folders.inbox))]
        sent = self._find_sent()
        if sent is not None:
            folders.append(Folder("sent", str(root / sent)))
            self._sent_missing_logged = False
        elif self.config.folders.sent is not None and not self._sent_missing_logged:
            self.log.warning(
                "no Sent folder %r under %s; polling the inbox only", self.config.folders.sent, root
            )
            self._sent_missing_logged = True
        folders.extend(Folder(archive_role(name), str(root / name)) for name in self.config.folders.archive)
        return folders

    # -- Source protocol -------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Verify that the maildir and its folders exist and can be read."""
        root = self.config.path
        if not root.is_dir():
            return [f"maildir path '{root}' not found"]
        problems: list[str] = []
        inbox = self.config.folders.inbox
        inbox_dir = root / inbox
        if not is_maildir(inbox_dir):
            where = f"'{root}'" if not inbox else f"folder '{inbox}' under '{root}'"
            problems.append(f"{where} is not a maildir: no cur/ and new/")
        elif not os.access(inbox_dir / "cur", os.R_OK | os.X_OK):
            problems.append(f"maildir '{inbox_dir}' is not readable by this user")
        sent = self.config.folders.sent
        if sent is not None and self._find_sent() is None:
            if sent == "auto":
                looked = ", ".join(SENT_NAMES)
                problems.append(
                    f"no Sent folder found under '{root}' (looked for {looked}); "
                    f"set folders.sent to its name, or null for none"
                )
            else:
                problems.append(f"folders.sent: folder '{sent}' not found under '{root}'")
        for name in self.config.folders.archive:
            if not is_maildir(root / name):
                problems.append(f"folders.archive: folder '{name}' is not a maildir under '{root}'")
        return problems

    def close(self) -> None:
        """Nothing to release: every poll opens and closes its own files."""

    def upgrade(self, cursor: Cursor, folders: Sequence[Folder]) -> dict[str, Any] | None:
        """States from the first cursor layout (``{"v": 1, "path": root, "folders": {role: {dir, ...}}}``)."""
        old = cursor.get("folders")
        if cursor.get("v") != 1 or cursor.get("path") != str(self.config.path) or not isinstance(old, dict):
            return None
        states: dict[str, Any] = {}
        for role, state in old.items():
            if not isinstance(state, dict) or not isinstance(state.get("dir"), str):
                return None
            rest = {k: v for k, v in state.items() if k != "dir"}
            states[role] = {**rest, "name": str(self.config.path / state["dir"])}
        return states

    # -- one folder ------------------------------------------------------------------------------
    def read_folder(
        self, folder: Folder, state: MaildirState | None, now: datetime
    ) -> FolderRead[MaildirState]:
        """Emit the folder's messages that are new or whose flags changed since ``state``, and its counts."""
        path = Path(folder.name)
        try:
            # stat before listing: a change during the listing then shows as a newer mtime next poll.
            mtimes = [os.stat(path / "new").st_mtime_ns, os.stat(path / "cur").st_mtime_ns]
        except FileNotFoundError as err:
            raise PermanentSourceError(f"maildir folder '{path}' has no cur/ or new/") from err
        except OSError as err:
            raise TransientSourceError(f"cannot stat maildir folder '{path}': {err.strerror}") from err
        if state is not None and state["mtimes"] == mtimes:
            return self._counted(state, [])
        try:
            listing = list_folder(path)
        except FileNotFoundError as err:
            raise TransientSourceError(f"maildir folder '{path}' vanished while listed") from err
        except PermissionError as err:
            raise PermanentSourceError(f"maildir folder '{path}' is not readable: {err.strerror}") from err
        except OSError as err:
            raise TransientSourceError(f"cannot list maildir folder '{path}': {err.strerror}") from err

        known = decode_known(state["known"]) if state is not None else set()
        still_known: set[int] = set()
        messages: list[MessageEvent] = []
        read_mtimes: dict[str, int] = {}
        complete = True
        for entry in listing.values():
            digest = _key_hash(entry.key, entry.flags)
            if digest in known:
                still_known.add(digest)
                continue
            file = path / entry.subdir / entry.filename
            try:
                raw, stat = (
                    read_prefix(file, nofollow=True)
                    if self.config.text_preview
                    else read_header_block(file, nofollow=True)
                )
            except FileNotFoundError:
                complete = False  # renamed or moved since the listing: picked up by the next poll
                continue
            except OSError as err:
                # Unreadable (permissions, I/O error): skipped once, not retried until it changes.
                self.log.warning("cannot read %s: %s; skipped", _safe_text(str(file)), err.strerror)
                still_known.add(digest)
                continue
            read_mtimes[entry.key] = stat.st_mtime_ns
            messages.append(self._event(folder.role, entry, raw, stat.st_mtime_ns, now))
            still_known.add(digest)

        # The real clock, not the injected one: it is compared with the filesystem's timestamps.
        racy = time.time_ns() - max(mtimes) < _RACY_NS
        trusted = complete and not racy
        # A (key, flags) pair no longer listed: a file was removed, or only renamed with new flags (which
        # the listing tells apart by its key). A listing that may be incomplete never reports a removal:
        # the pairs stay known until a trusted listing decides.
        gone = known - still_known
        new_state = MaildirState(
            name=folder.name,
            mtimes=mtimes if trusted else None,
            known=encode_known(still_known if trusted else still_known | gone),
            total=len(listing),
            unseen=sum(1 for e in listing.values() if "S" not in e.flags),
            unanswered=sum(1 for e in listing.values() if "R" not in e.flags),
            oldest=self._oldest(path, listing, state, read_mtimes),
        )
        read = self._counted(new_state, messages)
        if trusted and (gone or state is None):
            read.remaining = frozenset(self._external_id(folder.role, key) for key in listing)
        return read

    @staticmethod
    def _counted(state: MaildirState, messages: list[MessageEvent]) -> FolderRead[MaildirState]:
        oldest = state["oldest"]
        return FolderRead(
            state,
            messages,
            state["total"],
            state["unseen"],
            state["unanswered"],
            _utc_from_ns(oldest[0]) if oldest else None,
        )

    def _oldest(
        self,
        folder: Path,
        listing: dict[str, MaildirEntry],
        prev: MaildirState | None,
        read_mtimes: dict[str, int],
    ) -> tuple[int, str] | None:
        """(mtime_ns, key) of the folder's oldest file; stats every file only when the old one left."""
        candidates: list[tuple[int, str]] = [(ns, key) for key, ns in read_mtimes.items()]
        prev_oldest = prev["oldest"] if prev is not None else None
        if prev_oldest and prev_oldest[1] in listing:
            candidates.append((int(prev_oldest[0]), str(prev_oldest[1])))
        elif len(read_mtimes) < len(listing):
            for entry in (e for k, e in listing.items() if k not in read_mtimes):
                try:
                    ns = os.stat(folder / entry.subdir / entry.filename).st_mtime_ns
                except OSError:
                    continue
                candidates.append((ns, entry.key))
        if not candidates:
            return None
        return min(candidates)

    def _event(
        self, role: str, entry: MaildirEntry, raw: bytes, mtime_ns: int, now: datetime
    ) -> MessageEvent:
        return to_event(
            parse_header_block(raw),
            preview=preview(raw) if self.config.text_preview else "",
            source=self.name,
            folder=role,
            external_id=self._external_id(role, entry.key),
            internal_date=_utc_from_ns(mtime_ns),
            flags=sorted(flag_names(entry.flags)),
            now=now,
            report=self.log.reporter(f"folder {role} file {_safe_text(entry.key)}"),
        )

    @staticmethod
    def _external_id(role: str, key: str) -> str:
        """A message's id: its folder's role and its unique name (the same in ``new/`` and ``cur/``)."""
        return f"{role}/{_safe_text(key)}"


PLUGIN = SourcePlugin(MaildirConfig, MaildirSource)
"""The ``maildir`` source plugin (entry point ``maildir`` of ``replywatch.sources``)."""
