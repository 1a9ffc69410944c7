"""Microsoft Entra ID application tokens (OAuth 2.0 client credentials) from msal, for Graph and EWS.

An app registration logs in with its client secret or its certificate; msal keeps the token and asks the
authority again only when it is about to expire. The authority's host is verified with the configured CA
file whatever the environment says.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from monitor.plugins import SecretError, SecretRef
from monitor.sources.base import AuthSourceError, PermanentSourceError, TransientSourceError
from monitor.sources.hints import url_hint


class _Verifying:
    """msal's HTTP client: a requests session that always verifies with the given CA file.

    requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a session's ``verify``; passed with
    every request, the configured CA file wins.
    """

    def __init__(self, verify: str | bool, timeout: float) -> None:
        self._session = requests.Session()
        self._verify = verify
        self._timeout = timeout

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """GET with the configured verification."""
        return self._session.get(url, verify=self._verify, timeout=self._timeout, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        """POST with the configured verification."""
        return self._session.post(url, verify=self._verify, timeout=self._timeout, **kwargs)

    def close(self) -> None:
        """Close the session's connections."""
        self._session.close()


def certificate_credential(path: Path) -> dict[str, str]:
    """msal's client credential from a PEM file holding a private key and its certificate."""
    try:
        pem = path.read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
    except (OSError, ValueError) as err:
        raise PermanentSourceError(f"certificate_file {str(path)!r} cannot be used: {err}") from err
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise PermanentSourceError(f"certificate_file {str(path)!r}: Entra ID accepts only RSA certificates")
    thumbprint = hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest()  # what Entra ID names it by
    return {"private_key": pem.decode("ascii"), "thumbprint": thumbprint}


@dataclass(frozen=True, slots=True)
class AppLogin:
    """Who the app is and where it signs in: what a token request needs."""

    tenant_id: str
    client_id: str
    client_secret: SecretRef | None
    certificate_file: Path | None
    authority: str
    """The sign-in host, without the tenant (``https://login.microsoftonline.com``)."""
    scope: str
    """The one scope asked for: ``<resource>/.default``, every application permission on the resource."""
    ca_file: Path | None
    timeout: timedelta


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An access token and when it stops being valid (``time.time()`` seconds)."""

    value: str
    expires_at: float | None
    """None when the authority did not say how long the token lasts."""


class Tokens:
    """Application tokens for ``login.scope`` from msal (kept and renewed by msal's own cache)."""

    def __init__(self, login: AppLogin) -> None:
        self.login = login
        self._app: Any = None
        self._http: _Verifying | None = None

    def _application(self) -> Any:
        if self._app is None:
            login = self.login
            credential: Any
            if login.client_secret is not None:
                try:
                    credential = login.client_secret.reveal().get_secret_value()
                except SecretError as err:
                    raise AuthSourceError(str(err)) from err
            else:
                assert login.certificate_file is not None  # configs hold exactly one credential
                credential = certificate_credential(login.certificate_file)
            verify = str(login.ca_file) if login.ca_file else True
            self._http = _Verifying(verify, login.timeout.total_seconds())
            try:
                self._app = msal.ConfidentialClientApplication(
                    login.client_id,
                    client_credential=credential,
                    authority=f"{login.authority}/{login.tenant_id}",
                    http_client=self._http,
                    instance_discovery=False,  # the metadata comes from the authority itself
                )
            except ValueError as err:  # the authority's metadata is missing or wrong
                self.close()
                raise PermanentSourceError(f"authority {login.authority}: {err}") from err
            except requests.RequestException as err:
                self.close()
                hint = url_hint(err, login.authority, login.ca_file, "authority")
                raise TransientSourceError(f"authority {hint or f'{login.authority}: {err}'}") from err
        return self._app

    def access_token(self) -> AccessToken:
        """A valid access token (msal asks the authority only when its cached one is about to expire)."""
        app = self._application()
        asked = time.time()
        try:
            result = app.acquire_token_for_client(scopes=[self.login.scope])
        except requests.RequestException as err:
            hint = url_hint(err, self.login.authority, self.login.ca_file, "authority")
            raise TransientSourceError(f"token from {hint or f'{self.login.authority}: {err}'}") from err
        token = result.get("access_token") if isinstance(result, dict) else None
        if not isinstance(token, str):
            answer = result if isinstance(result, dict) else {}
            error = answer.get("error", "no token")
            text = (str(answer.get("error_description") or "").splitlines() or [""])[0]
            raise AuthSourceError(
                f"{self.login.authority} refused a token for {self.login.scope}: {error} {text}".strip()
            )
        try:
            return AccessToken(token, asked + float(result["expires_in"]))
        except (KeyError, TypeError, ValueError):
            return AccessToken(token, None)  # used until the server refuses it

    def token(self) -> str:
        """A valid access token's value."""
        return self.access_token().value

    def close(self) -> None:
        """Drop the application and its connections."""
        http, self._http, self._app = self._http, None, None
        if http is not None:
            http.close()
