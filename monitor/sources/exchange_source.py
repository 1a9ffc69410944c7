"""The exchange source itself: exchangelib accounts, SyncFolderItems and GetItem (config: ``exchange``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    OAUTH2,
    Account,
    Configuration,
    Credentials,
    OAuth2Credentials,
)
from exchangelib import errors as ews_errors
from exchangelib.credentials import BaseCredentials
from exchangelib.folders import Inbox, Root, SentItems
from exchangelib.properties import DistinguishedFolderId, Mailbox
from exchangelib.protocol import BaseProtocol
from exchangelib.version import Build, Version

from monitor.mail.event import to_event
from monitor.plugins import SecretError
from monitor.sources.base import (
    AuthSourceError,
    Folder,
    FolderRead,
    FolderSource,
    PermanentSourceError,
    SourceError,
    TransientSourceError,
)
from monitor.sources.entra import AppLogin, Tokens
from monitor.sources.exchange import FIELDS, ExchangeConfig
from monitor.sources.hints import url_hint
from monitor.sources.mail_item import ItemsState, MailItem, folder_counts, items_read

# --- TLS: the configured CA file per EWS host, whatever the environment says ----------------------

_CA_FILES: dict[str, str] = {}
_CA_LOCK = threading.Lock()


class _CaFileAdapter(BaseProtocol.HTTP_ADAPTER_CLS):  # type: ignore[misc]
    """exchangelib's HTTP adapter verifying a configured host with its source's ``ca_file``."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send, verifying with the CA file configured for the request's host (if any)."""
        ca_file = _CA_FILES.get(urlsplit(request.url or "").netloc.lower())
        if ca_file is not None:
            kwargs["verify"] = ca_file
        response: requests.Response = super().send(request, **kwargs)
        return response


BaseProtocol.HTTP_ADAPTER_CLS = _CaFileAdapter


# --- OAuth: exchangelib's client-credentials login with msal's tokens --------------------------------


class AppCredentials(OAuth2Credentials):  # type: ignore[misc]
    """exchangelib's OAuth 2.0 client-credentials login, its tokens from msal (:class:`Tokens`).

    exchangelib would ask ``login.microsoftonline.com`` itself, with a client secret only; msal asks the
    configured authority, verifies it with the configured CA file, signs with a certificate when the
    config has one, and keeps the token until it is about to expire.
    """

    def __init__(self, tokens: Tokens) -> None:
        login = tokens.login
        super().__init__(client_id=login.client_id, client_secret=None, tenant_id=login.tenant_id)
        self.tokens = tokens

    def refresh(self, session: Any) -> None:
        """Take msal's current token (exchangelib calls this when a session's token has expired)."""
        token = self.tokens.access_token()
        value: dict[str, Any] = {"access_token": token.value, "token_type": "Bearer"}
        if token.expires_at is not None:
            value["expires_at"] = token.expires_at  # past it, the session raises TokenExpiredError
        self.access_token = value

    def session_params(self) -> dict[str, Any]:
        """A new session's token, without exchangelib's own refresh through its fixed token URL."""
        with self.lock:
            expires_at = (self.access_token or {}).get("expires_at")
            if self.access_token is None or (expires_at is not None and expires_at <= time.time()):
                self.refresh(None)
            return {"token": self.access_token}


def app_login(config: ExchangeConfig) -> AppLogin:
    """What a token request for EWS needs, from the source's config."""
    assert config.tenant_id and config.client_id  # the config requires both with OAuth
    return AppLogin(
        tenant_id=config.tenant_id,
        client_id=config.client_id,
        client_secret=config.client_secret,
        certificate_file=config.certificate_file,
        authority=config.authority.rstrip("/"),
        scope=config.scope,
        ca_file=config.ca_file,
        timeout=timedelta(seconds=30),
    )


# --- the source -----------------------------------------------------------------------------------


class ExchangeState(ItemsState):
    """One folder's saved state: EWS's sync state and what the folder holds."""

    sync_state: str
    """The SyncState of the last complete SyncFolderItems round."""


_FOLDER_CLASSES: dict[str, Any] = {"inbox": Inbox, "sent": SentItems}


class ExchangeSource(FolderSource[ExchangeState]):
    """Reads each mailbox's Inbox and Sent Items through SyncFolderItems; never changes an item."""

    cursor_version = 1
    state_type = ExchangeState

    def __init__(
        self, name: str, config: ExchangeConfig, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(name, clock=clock)
        self.config = config
        self._accounts: dict[str, Account] = {}
        self._configuration: Configuration | None = None
        self._login: BaseCredentials | None = None
        self._tokens: Tokens | None = None

    # -- public API --------------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Log in and sync every folder's first page of ids; return the problems found."""
        problems: list[str] = []
        for folder in self.folders():
            mailbox, role = self._where(folder)
            try:
                with self._talking(mailbox):
                    changes = self._folder(mailbox, role).sync_items(only_fields=[], max_changes_returned=1)
                    next(iter(changes), None)
            except SourceError as err:
                problems.append(f"folder {folder.role}: {err}")
                if isinstance(err, AuthSourceError):
                    break
        return problems

    def close(self) -> None:
        """Close the connections of every account."""
        accounts, self._accounts = self._accounts, {}
        for account in accounts.values():
            account.protocol.close()
        tokens, self._tokens, self._login = self._tokens, None, None
        if tokens is not None:
            tokens.close()

    # -- the template --------------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        """Inbox and Sent Items of every mailbox: roles ``inbox``/``sent``, ``mailbox/role`` when several."""
        several = len(self.config.mailboxes) > 1
        return [
            Folder(f"{mailbox}/{role}" if several else role, f"{mailbox}/{role}")
            for mailbox in self.config.mailboxes
            for role in ("inbox", "sent")
        ]

    def read_folder(
        self, folder: Folder, state: ExchangeState | None, now: datetime
    ) -> FolderRead[ExchangeState]:
        """Sync the folder's item ids from its saved sync state, then fetch the new and changed items."""
        mailbox, role = self._where(folder)
        resync = False
        with self._talking(mailbox):
            ews_folder = self._folder(mailbox, role)
            try:
                changes = self._changes(ews_folder, state["sync_state"] if state else None)
            except ews_errors.ErrorInvalidSyncStateData:
                self.log.info("folder %s: sync state not accepted; reading the folder again", folder.role)
                state, resync = None, True
                ews_folder = self._folder(mailbox, role)
                changes = self._changes(ews_folder, None)
            fetch, removed, read_flags = changes
            new_sync_state = ews_folder.item_sync_state or ""
            fetched = self._fetch(mailbox, ews_folder, fetch) if fetch else []
        items = dict(state["items"]) if state else {}
        messages = []
        for item in fetched:
            if isinstance(item, Exception) or getattr(item, "id", None) is None:
                self.log.warning("folder %s: item skipped (%s)", folder.role, type(item).__name__)
                continue
            try:
                event = self._event(item, mailbox, folder.role, now)
            except Exception as err:  # one unreadable item must not stop the folder
                self.log.warning(
                    "folder %s: item skipped (%s)", folder.role, type(err).__name__, exc_info=err
                )
                continue
            messages.append(event)
            arrived = _plain(item.datetime_received) or event.date
            items[item.id] = (arrived.isoformat(), "seen" in event.flags)
        for item_id, read in read_flags.items():
            if item_id in items:
                items[item_id] = (items[item_id][0], read)
        for item_id in removed:
            items.pop(item_id, None)
        if state is not None and not fetch and not removed and not read_flags:
            new_state = state  # unchanged: the template keeps the saved JSON as it was
        else:
            unseen, oldest = folder_counts(items)
            new_state = ExchangeState(
                name=folder.name, sync_state=new_sync_state, items=items, unseen=unseen, oldest=oldest
            )
        return items_read(
            new_state, messages, resync=resync, removed=[f"{mailbox}/{item_id}" for item_id in removed]
        )

    # -- EWS -----------------------------------------------------------------------------------------

    def _changes(
        self, ews_folder: Any, sync_state: str | None
    ) -> tuple[list[tuple[str, str | None]], list[str], dict[str, bool]]:
        """Ids to fetch (created, updated, read flag changed), ids removed, and read flags, from a sync."""
        fetch: dict[str, str | None] = {}
        removed: list[str] = []
        read_flags: dict[str, bool] = {}
        for change, item in ews_folder.sync_items(
            sync_state=sync_state, only_fields=[], max_changes_returned=self.config.page_size
        ):
            if change == "delete":
                removed.append(item.id)
                fetch.pop(item.id, None)
            elif change == "read_flag_change":
                item_id, read = item
                read_flags[item_id.id] = bool(read)
            elif getattr(item, "id", None):
                fetch[item.id] = item.changekey
        return list(fetch.items()), removed, read_flags

    def _fetch(self, mailbox: str, ews_folder: Any, ids: Sequence[tuple[str, str | None]]) -> list[Any]:
        """GetItem for ``ids`` with only :data:`FIELDS` (exchangelib batches the requests)."""
        account = self._account(mailbox)
        return list(account.fetch(ids=list(ids), folder=ews_folder, only_fields=list(FIELDS)))

    def _event(self, item: Any, mailbox: str, folder: str, now: datetime) -> Any:
        headers = [(h.name, h.value) for h in (item.headers or ()) if h.name and h.value is not None]
        block = MailItem(
            message_id=item.message_id,
            in_reply_to=item.in_reply_to,
            references=item.references,
            subject=item.subject,
            date=_plain(item.datetime_sent),
            from_=_mailbox(item.author),
            sender=_mailbox(item.sender),
            to=[m for m in map(_mailbox, item.to_recipients or ()) if m],
            cc=[m for m in map(_mailbox, item.cc_recipients or ()) if m],
            reply_to=[m for m in map(_mailbox, item.reply_to or ()) if m],
            internet_headers=headers,
        ).header_block()
        conversation = getattr(item.conversation_id, "id", None)
        return to_event(
            block,
            source=self.name,
            folder=folder,
            external_id=f"{mailbox}/{item.id}",
            internal_date=_plain(item.datetime_received),
            flags=["\\Seen"] if item.is_read else [],
            # Without its header fields (a draft), the conversation id is the only link between messages.
            gmail_thread_id=None if headers else conversation,
            now=now,
        )

    def _folder(self, mailbox: str, role: str) -> Any:
        """The mailbox's distinguished folder, addressed by name: no GetFolder request."""
        account = self._account(mailbox)
        cls = _FOLDER_CLASSES[role]
        return cls(
            root=Root(account=account),
            _distinguished_id=DistinguishedFolderId(
                id=cls.DISTINGUISHED_FOLDER_ID, mailbox=Mailbox(email_address=mailbox)
            ),
        )

    def _account(self, mailbox: str) -> Account:
        account = self._accounts.get(mailbox)
        if account is None:
            credentials = self._credentials()
            access = IMPERSONATION if self.config.access_type == "impersonation" else DELEGATE
            if self.config.autodiscover:
                account = Account(mailbox, credentials=credentials, autodiscover=True, access_type=access)
            else:
                account = Account(
                    mailbox, config=self._config(credentials), autodiscover=False, access_type=access
                )
            self._accounts[mailbox] = account
        return account

    def _credentials(self) -> BaseCredentials:
        """The login: the service account's password, or the app's tokens (one object for every mailbox)."""
        if self._login is None:
            cfg = self.config
            if cfg.login == "oauth":
                self._tokens = Tokens(app_login(cfg))
                self._login = AppCredentials(self._tokens)
            else:
                assert cfg.password is not None and cfg.username  # the config requires both
                try:
                    password = cfg.password.reveal().get_secret_value()
                except SecretError as err:
                    raise AuthSourceError(str(err)) from err
                self._login = Credentials(cfg.username, password)
        return self._login

    def _config(self, credentials: BaseCredentials) -> Configuration:
        if self._configuration is None:
            cfg = self.config
            endpoint = cfg.endpoint
            assert endpoint is not None  # not autodiscover
            if cfg.ca_file is not None:
                with _CA_LOCK:
                    _CA_FILES[urlsplit(endpoint).netloc.lower()] = str(cfg.ca_file)
            version = None
            if cfg.version:
                major, minor = (int(p) for p in cfg.version.split("."))
                version = Version(build=Build(major, minor))
            self._configuration = Configuration(
                service_endpoint=endpoint,
                credentials=credentials,
                auth_type={"ntlm": NTLM, "basic": BASIC, "oauth": OAUTH2}[cfg.login],
                version=version,
                max_connections=4,
            )
        return self._configuration

    @contextmanager
    def _talking(self, mailbox: str) -> Iterator[None]:
        """Translate exchangelib's and requests' exceptions into :class:`SourceError`."""
        try:
            yield
        except SourceError:
            raise
        except ews_errors.ErrorServerBusy as err:
            wait = timedelta(seconds=err.back_off) if err.back_off else None
            raise TransientSourceError(f"{mailbox}: server busy (ErrorServerBusy)", retry_after=wait) from err
        except (ews_errors.UnauthorizedError, ews_errors.ErrorAccessDenied) as err:
            if self.config.username:
                origin = self.config.password.origin if self.config.password else "no password"
                who = f"{self.config.username!r} with the secret from {origin}"
            else:
                who = f"app {self.config.client_id!r}"
            raise AuthSourceError(f"{mailbox}: access refused to {who}: {err}") from err
        except ews_errors.ErrorImpersonateUserDenied as err:
            raise AuthSourceError(f"{mailbox}: impersonation refused: {err}") from err
        except (ews_errors.ErrorNonExistentMailbox, ews_errors.ErrorFolderNotFound) as err:
            raise PermanentSourceError(f"{mailbox}: {type(err).__name__}: {err}") from err
        except (ews_errors.TransportError, ews_errors.RateLimitError, requests.RequestException) as err:
            endpoint = self.config.endpoint
            setting = "server" if self.config.server else "service_endpoint"
            hint = url_hint(err, endpoint, self.config.ca_file, setting) if endpoint else None
            raise TransientSourceError(f"{mailbox}: {hint or f'{type(err).__name__}: {err}'}") from err
        except ews_errors.EWSError as err:
            raise TransientSourceError(f"{mailbox}: {type(err).__name__}: {err}") from err

    def _where(self, folder: Folder) -> tuple[str, str]:
        mailbox, _, role = folder.name.rpartition("/")
        return mailbox, role


def _plain(value: datetime | None) -> datetime | None:
    """exchangelib's EWSDateTime as a plain aware datetime (it refuses other time zones' arithmetic)."""
    return datetime.fromisoformat(value.isoformat()).astimezone(UTC) if value is not None else None


def _mailbox(value: Any) -> tuple[str, str] | None:
    address = getattr(value, "email_address", None)
    return (getattr(value, "name", None) or "", address) if address else None
