"""A local HTTPS server (trustme CA) replaying recorded Graph and EWS answers and checking every request.

It plays three parts on one port: an Entra ID authority (OpenID metadata and a client-credentials token
endpoint; each token it issues is new and remembers its scope and expiry), Microsoft Graph, and an EWS
endpoint. Tests load it with answers per request (``graph`` by
path and query, ``ews`` by SOAP operation); a request the client should not have sent (wrong path, a
missing ``$select``, no ``Prefer``, a token for another audience) gets a 400 and is listed in
``mistakes``, which every test checks is empty.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import trustme

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
CLIENT_SECRET = "s3cret-value"
RECORDED_GRAPH = "https://graph.microsoft.com"


@dataclass
class Answer:
    """One reply: status, extra headers and a body (bytes, or JSON-able)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Check = Callable[[Seen], str | None]
"""Returns what is wrong with a request (None: fine)."""


class ReplayServer:
    """The HTTPS server; ``base`` is its URL and ``ca_file`` the CA its certificate chains to."""

    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = directory / "replay-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.client_cert = directory / "app.pem"  # an app's certificate credential (key and certificate)
        app_ca = trustme.CA(key_type=trustme.KeyType.RSA)  # Entra ID takes RSA certificates only
        app_ca.issue_cert(
            "replywatch-app", key_type=trustme.KeyType.RSA
        ).private_key_and_cert_chain_pem.write_to_path(str(self.client_cert))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.replay = self  # type: ignore[attr-defined]
        self.base = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        self.graph: dict[str, list[Answer]] = {}
        """``path?query`` (``$select`` left out) -> answers, given in turn (the last repeats)."""
        self.ews: dict[str, list[Answer]] = {}
        """SOAP operation (``SyncFolderItems``) -> answers, given in turn (the last repeats)."""
        self.seen: list[Seen] = []
        self.mistakes: list[str] = []
        self.tokens_issued = 0
        self._issued: dict[str, dict[str, Any]] = {}
        self.token_lifetime = 3599
        """``expires_in`` of the tokens issued, in seconds."""
        self.graph_checks: list[Check] = []
        self.ews_checks: list[Check] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    # -- what tests use ------------------------------------------------------------------------------

    def token_problem(self, authorization: str | None, scope: str) -> str | None:
        """What is wrong with a request's ``Authorization`` header: not a bearer token this server issued,
        issued for another scope (audience), or expired (None: fine)."""
        token = (authorization or "").removeprefix("Bearer ")
        with self._lock:
            claims = self._issued.get(token)
        if authorization is None or not authorization.startswith("Bearer ") or claims is None:
            return f"not a token this server issued: {(authorization or '')[:40]!r}"
        if claims["aud"] != scope:
            return f"a token for {claims['aud']!r}, not {scope!r}"
        if claims["exp"] < time.time():
            return "an expired token"
        return None

    def token_requests(self) -> list[dict[str, str]]:
        """The forms of the token requests received (client credentials)."""
        return [
            {k: v[0] for k, v in parse_qs(s.body.decode()).items()}
            for s in self.seen
            if s.path.endswith("/oauth2/v2.0/token")
        ]

    def recorded(self, path: Path) -> bytes:
        """A recorded Graph body with the recorded host replaced by this server's."""
        return path.read_bytes().replace(RECORDED_GRAPH.encode(), self.base.encode())

    @staticmethod
    def recorded_ews(path: Path) -> bytes:
        """A recorded EWS answer; the documentation's samples misspell the SOAP namespace as ``https://``
        (servers send ``http://``), which is put right here and nothing else."""
        return path.read_bytes().replace(
            b"https://schemas.xmlsoap.org/soap/envelope/", b"http://schemas.xmlsoap.org/soap/envelope/"
        )

    def ews_requests(self) -> list[Seen]:
        """Requests sent to EWS."""
        return [s for s in self.seen if s.path == "/EWS/Exchange.asmx"]

    def graph_requests(self) -> list[Seen]:
        """Requests sent to Graph (not to the authority)."""
        return [s for s in self.seen if s.path.startswith("/v1.0/")]

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- serving ---------------------------------------------------------------------------------------

    def answer(self, seen: Seen) -> Answer:
        """The reply to one request, after checking it."""
        with self._lock:
            self.seen.append(seen)
        if seen.path.endswith("/v2.0/.well-known/openid-configuration"):
            return self._metadata(seen)
        if seen.path.endswith("/oauth2/v2.0/token"):
            return self._token(seen)
        if seen.path.startswith("/v1.0/"):
            return self._graph(seen)
        if seen.path == "/EWS/Exchange.asmx":
            return self._ews(seen)
        return self._mistake(f"unexpected {seen.method} {seen.path}")

    def _mistake(self, text: str) -> Answer:
        with self._lock:
            self.mistakes.append(text)
        return Answer(400, {"error": {"code": "ReplayMismatch", "message": text}})

    def _metadata(self, seen: Seen) -> Answer:
        tenant = seen.path.split("/")[1]
        if tenant != TENANT:
            return self._mistake(f"metadata asked for tenant {tenant!r}")
        root = f"{self.base}/{tenant}"
        return Answer(
            body={
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "issuer": f"{root}/v2.0",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            }
        )

    def _token(self, seen: Seen) -> Answer:
        form = {k: v[0] for k, v in parse_qs(seen.body.decode()).items()}
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != CLIENT_ID:
            return self._mistake(
                f"token request with {form.get('grant_type')!r} for {form.get('client_id')!r}"
            )
        if "client_assertion" in form:
            if not _assertion_for(form["client_assertion"], f"{self.base}/{TENANT}/oauth2/v2.0/token"):
                return Answer(401, {"error": "invalid_client", "error_description": "bad assertion"})
        elif form.get("client_secret") != CLIENT_SECRET:
            return Answer(
                401,
                {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."},
            )
        with self._lock:
            self.tokens_issued += 1
            claims = {"aud": form.get("scope", ""), "exp": time.time() + self.token_lifetime,
                      "n": self.tokens_issued}  # fmt: skip
            token = "eyJ0eXAi." + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
            self._issued[token] = claims
        return Answer(body={"token_type": "Bearer", "expires_in": self.token_lifetime, "access_token": token})

    def _graph(self, seen: Seen) -> Answer:
        problem = self.token_problem(seen.headers.get("authorization"), f"{self.base}/.default")
        if problem:
            return Answer(401, {"error": {"code": "InvalidAuthenticationToken", "message": problem}})
        prefer = seen.headers.get("prefer", "")
        if 'IdType="ImmutableId"' not in prefer or "odata.maxpagesize=" not in prefer:
            return self._mistake(f"Prefer header {prefer!r}")
        for check in self.graph_checks:
            problem = check(seen)
            if problem:
                return self._mistake(problem)
        query = {k: v for k, v in seen.query.items() if k != "$select"}
        key = seen.path + ("?" + "&".join(f"{k}={v[0]}" for k, v in sorted(query.items())) if query else "")
        return self._next(self.graph, key)

    def _ews(self, seen: Seen) -> Answer:
        text = seen.body.decode("utf-8", "replace")
        for check in self.ews_checks:
            problem = check(seen)
            if problem:
                return self._mistake(problem)
        for operation in self.ews:
            if f":{operation} " in text or f":{operation}>" in text or f"<{operation} " in text:
                return self._next(self.ews, operation)
        return self._mistake(f"unexpected EWS request {text[:300]!r}")

    def _next(self, table: dict[str, list[Answer]], key: str) -> Answer:
        with self._lock:
            answers = table.get(key)
            if not answers:
                self.mistakes.append(f"no answer recorded for {key}")
                return Answer(400, {"error": {"code": "ReplayMismatch", "message": key}})
            return answers.pop(0) if len(answers) > 1 else answers[0]


def _assertion_for(assertion: str, audience: str) -> bool:
    """True when a client assertion (a JWT) is addressed to ``audience`` and names a certificate."""
    try:
        header, claims, _ = (
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) if i < 2 else p
            for i, p in enumerate(assertion.split("."))
        )
    except ValueError:
        return False
    return bool(claims.get("aud") == audience and (header.get("x5t") or header.get("x5t#S256")))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            self.command,
            unquote(parts.path),
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        answer = self.server.replay.answer(seen)  # type: ignore[attr-defined]
        body = answer.body
        if not isinstance(body, bytes):
            body = json.dumps(body).encode() if body is not None else b""
        self.send_response(answer.status)
        is_xml = body.lstrip().startswith(b"<")
        self.send_header("Content-Type", "text/xml; charset=utf-8" if is_xml else "application/json")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _serve
    do_POST = _serve


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A replay server for one test; the test fails if the client sent a request it should not have."""
    with tempfile.TemporaryDirectory() as directory:
        server = ReplayServer(Path(directory))
        try:
            yield server
        finally:
            server.close()
