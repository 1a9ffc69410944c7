"""The graph source itself: msal tokens, httpx requests, delta reading (config: ``graph``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from monitor.mail.event import to_event
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
from monitor.sources.graph import HEADERS, ID_TYPE, SELECT, GraphConfig
from monitor.sources.hints import url_hint
from monitor.sources.imap import shared_ssl_context
from monitor.sources.mail_item import ItemsState, Mailbox, MailItem, folder_counts, items_read


def app_login(config: GraphConfig) -> AppLogin:
    """What a token request for Graph needs, from the source's config."""
    return AppLogin(
        tenant_id=config.tenant_id,
        client_id=config.client_id,
        client_secret=config.client_secret,
        certificate_file=config.certificate_file,
        authority=config.authority,
        scope=config.scope,
        ca_file=config.ca_file,
        timeout=config.timeout,
    )


# --- the source -----------------------------------------------------------------------------------


class GraphState(ItemsState):
    """One folder's saved state: where Graph's delta stands and what the folder holds."""

    delta_link: str
    """The ``@odata.deltaLink`` of the last complete round."""


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    with suppress(ValueError):
        return timedelta(seconds=max(0, int(value.strip())))
    with suppress(TypeError, ValueError):
        when = parsedate_to_datetime(value)
        return max(timedelta(0), when - datetime.now(when.tzinfo))
    return None


class _Gone(Exception):
    """Graph no longer knows the delta link (410): the folder must be read again from the start."""


HttpFactory = Callable[[GraphConfig], httpx.Client]
"""Builds the HTTP client requests go through (injectable for tests)."""


def http_client(config: GraphConfig) -> httpx.Client:
    """An HTTP/1.1 client verifying with ``ca_file`` (or the system's CAs), never the environment's."""
    verify = shared_ssl_context(config.ca_file)
    return httpx.Client(verify=verify, timeout=config.timeout.total_seconds(), trust_env=False)


class GraphSource(FolderSource[GraphState]):
    """Reads each mailbox's inbox and sent items through ``messages/delta``; never changes a message."""

    cursor_version = 1
    state_type = GraphState

    def __init__(
        self,
        name: str,
        config: GraphConfig,
        *,
        clock: Callable[[], datetime] | None = None,
        http: HttpFactory = http_client,
    ) -> None:
        super().__init__(name, clock=clock)
        self.config = config
        self._tokens = Tokens(app_login(config))
        self._http_factory = http
        self._http: httpx.Client | None = None
        self.requests = 0
        """Requests sent to Graph (tokens not counted): what a benchmark measures."""

    # -- public API --------------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Get a token and look up every folder of every mailbox; return the problems found."""
        problems: list[str] = []
        for folder in self.folders():
            mailbox, role = self._where(folder)
            url = self._folder_url(mailbox, role)
            try:
                self._get(url, {"$select": "id,totalItemCount"})
            except SourceError as err:
                problems.append(f"folder {folder.role}: {err}")
                if isinstance(err, AuthSourceError):
                    break  # the same refusal for every folder
        return problems

    def close(self) -> None:
        """Close the HTTP connections and drop the token application."""
        http, self._http = self._http, None
        if http is not None:
            http.close()
        self._tokens.close()

    # -- the template --------------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        """Inbox and sent items of every mailbox: roles ``inbox``/``sent``, ``mailbox/role`` when several."""
        several = len(self.config.mailboxes) > 1
        out: list[Folder] = []
        for mailbox in self.config.mailboxes:
            for role in ("inbox", "sent"):
                folder_id = self._folder_id(role)
                out.append(Folder(f"{mailbox}/{role}" if several else role, f"{mailbox}/{folder_id}"))
        return out

    def read_folder(self, folder: Folder, state: GraphState | None, now: datetime) -> FolderRead[GraphState]:
        """Follow the folder's delta from its saved link (or from the start) to a new delta link."""
        mailbox, role = self._where(folder)
        resync = False
        if state is not None:
            try:
                return self._round(folder, mailbox, role, state, state["delta_link"], now)
            except _Gone:
                self.log.info(
                    "folder %s: delta link expired (410 Gone); reading the folder again", folder.role
                )
                resync = True
        start = f"{self._folder_url(mailbox, role)}/messages/delta"
        empty = GraphState(name=folder.name, delta_link="", items={}, unseen=0, oldest=None)
        try:
            read = self._round(folder, mailbox, role, empty, start, now, first=True)
        except _Gone as err:
            raise TransientSourceError("Graph answered 410 Gone to a new delta query") from err
        read.resync = resync
        return read

    # -- reading -------------------------------------------------------------------------------------

    def _round(
        self,
        folder: Folder,
        mailbox: str,
        role: str,
        state: GraphState,
        url: str,
        now: datetime,
        *,
        first: bool = False,
    ) -> FolderRead[GraphState]:
        """Every page from ``url`` to the next delta link, applied to ``state``'s items."""
        items = state["items"]
        messages = []
        removed: list[str] = []
        params: dict[str, str] | None = {"$select": self._select()} if first else None
        changed = False
        while True:
            page = self._get(url, params)
            params = None  # next and delta links carry the query themselves
            for entry in page.get("value") or ():
                if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                    continue
                if not changed:
                    items, changed = dict(items), True  # the saved state stays as it was
                item_id = entry["id"]
                if "@removed" in entry:
                    if items.pop(item_id, None) is not None or not first:
                        removed.append(f"{mailbox}/{item_id}")
                    continue
                try:
                    event = self._event(entry, mailbox, folder.role, now)
                except Exception as err:  # one unreadable item must not stop the folder
                    self.log.warning(
                        "folder %s: message skipped (%s)", folder.role, type(err).__name__, exc_info=err
                    )
                    continue
                messages.append(event)
                arrived = _when(entry.get("receivedDateTime")) or event.date
                items[item_id] = (arrived.isoformat(), "seen" in event.flags)
            next_link = page.get("@odata.nextLink")
            if isinstance(next_link, str):
                url = next_link
                continue
            delta = page.get("@odata.deltaLink")
            if not isinstance(delta, str):
                raise TransientSourceError("a delta page has neither a next link nor a delta link")
            break
        if not changed and not first and delta == state["delta_link"]:
            new_state = state  # unchanged: the template keeps the saved JSON as it was
        else:
            unseen, oldest = folder_counts(items)
            new_state = GraphState(
                name=folder.name, delta_link=delta, items=items, unseen=unseen, oldest=oldest
            )
        return items_read(new_state, messages, removed=removed)

    def _event(self, entry: Mapping[str, Any], mailbox: str, folder: str, now: datetime) -> Any:
        headers = [
            (str(h.get("name", "")), str(h.get("value", "")))
            for h in entry.get("internetMessageHeaders") or ()
            if isinstance(h, dict)
        ]
        item = MailItem(
            message_id=_text(entry.get("internetMessageId")),
            subject=_text(entry.get("subject")),
            date=_when(entry.get("sentDateTime")),
            from_=_mailbox(entry.get("from")),
            sender=_mailbox(entry.get("sender")),
            to=_mailboxes(entry.get("toRecipients")),
            cc=_mailboxes(entry.get("ccRecipients")),
            reply_to=_mailboxes(entry.get("replyTo")),
            internet_headers=headers,
        )
        block = item.header_block()
        conversation = _text(entry.get("conversationId"))
        read = entry.get("isRead")
        return to_event(
            block,
            source=self.name,
            folder=folder,
            external_id=f"{mailbox}/{entry['id']}",
            internal_date=_when(entry.get("receivedDateTime")),
            flags=["\\Seen"] if read is True or read == "true" else [],
            # Without its header fields, Graph's conversation id is the only link between the messages.
            gmail_thread_id=None if headers else conversation,
            now=now,
        )

    def _get(self, url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One GET to Graph with a token and the id-type and page-size preferences; errors classified."""
        if not url.startswith(self.config.graph_url + "/"):
            raise PermanentSourceError(f"Graph sent a link outside {self.config.graph_url}; not followed")
        headers = {
            "Authorization": f"Bearer {self._tokens.token()}",
            "Prefer": f"{ID_TYPE}, odata.maxpagesize={self.config.page_size}",
            "Accept": "application/json",
        }
        if self._http is None:
            self._http = self._http_factory(self.config)
        self.requests += 1
        try:
            response = self._http.get(url, params=params, headers=headers)
        except httpx.HTTPError as err:
            hint = url_hint(err, self.config.graph_url, self.config.ca_file, "graph_url")
            raise TransientSourceError(
                f"GET {hint}" if hint else f"GET {self.config.graph_url}: {type(err).__name__}: {err}"
            ) from err
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError as err:
                raise TransientSourceError("Graph answered with a body that is not JSON") from err
            if not isinstance(body, dict):
                raise TransientSourceError("Graph answered with JSON that is not an object")
            return body
        detail = _error(response)
        if status == 410:
            raise _Gone(detail)
        if status in (429, 503, 504) or status >= 500:
            raise TransientSourceError(
                f"Graph answered {status}: {detail}", retry_after=_retry_after(response)
            )
        if status in (401, 403):
            raise AuthSourceError(f"Graph refused the app ({status}): {detail}")
        if status == 404:
            raise PermanentSourceError(f"Graph has no such mailbox or folder (404): {detail}")
        raise PermanentSourceError(f"Graph answered {status}: {detail}")

    # -- names ---------------------------------------------------------------------------------------

    def _select(self) -> str:
        return f"{SELECT},{HEADERS}" if self.config.internet_headers else SELECT

    def _folder_id(self, role: str) -> str:
        return self.config.folders.inbox if role == "inbox" else self.config.folders.sent

    def _folder_url(self, mailbox: str, role: str) -> str:
        folder = quote(self._folder_id(role), safe="")
        return f"{self.config.graph_url}/v1.0/users/{quote(mailbox, safe='@')}/mailFolders/{folder}"

    def _where(self, folder: Folder) -> tuple[str, str]:
        """The mailbox and role (``inbox``/``sent``) of one of :meth:`folders`."""
        mailbox, _, role = folder.role.rpartition("/")
        return (mailbox or self.config.mailboxes[0]), role


def _error(response: httpx.Response) -> str:
    """Graph's error code and the first line of its message (never the request's query)."""
    with suppress(ValueError, AttributeError, TypeError):
        error = response.json()["error"]
        first_line = (str(error.get("message") or "").splitlines() or [""])[0]
        return f"{error.get('code', '')} {first_line}".strip()[:300] or str(response.status_code)
    return response.reason_phrase or str(response.status_code)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    with suppress(ValueError):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def _mailbox(value: Any) -> Mailbox | None:
    address = value.get("emailAddress") if isinstance(value, dict) else None
    if not isinstance(address, dict) or not isinstance(address.get("address"), str):
        return None
    return (str(address.get("name") or ""), address["address"])


def _mailboxes(values: Any) -> list[Mailbox]:
    return [box for box in (_mailbox(v) for v in values or ()) if box is not None]
