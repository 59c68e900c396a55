"""App-only access tokens for Graph from msal (client credentials, secret or certificate).

msal is synchronous (requests-style I/O), so every msal call runs in one dedicated worker thread,
which also serialises them (even when an awaiting task is cancelled mid-call). Tokens are not
cached here: msal 1.23+ answers ``acquire_token_for_client`` from its own cache and refreshes a
token with less than 5 minutes left (msal 1.39 ``application.py``; graph-behaviour.md 3.3).
After a 401 the rejected token is removed with ``remove_tokens_for_client()`` (``force_refresh``
is refused for this flow) and one fresh token is fetched; concurrent 401s for the same token cause
one refresh, not one each. A credential the identity platform refuses (``invalid_client``...) is
not offered again before its hold ends (``roomd.refusals``): msal is not even called, and every
round in between fails at once with the same refusal.

Offline-safe construction, which also makes a private authority host (the local simulator) work:

* ``instance_discovery=False``: msal would otherwise ask login.microsoftonline.com whether an
  unknown authority host is valid. For Microsoft's own hosts msal skips that call anyway.
* ``azure_region=False``: opt out of region auto-detection, which probes the Azure instance
  metadata endpoint (169.254.169.254) and reads ``MSAL_FORCE_REGION``.
* our own ``http_client`` with ``verify=`` the configured CA bundle on the client itself:
  ``requests`` lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override a session's ``verify``
  (psf/requests#3829), which would silently ignore ``ca_bundle`` (graph-behaviour.md 3.3).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import httpx
import msal

from roomd.graph.config import GraphClientConfig
from roomd.graph.errors import OAUTH_REFUSALS, AuthError, CredentialsRefused
from roomd.observe import GRAPH_TOKEN_REFRESHES, get_logger
from roomd.refusals import RefusalGate

FORCED_REFRESH_INTERVAL_S = 30.0
"""At most one token fetched past msal's cache (after a 401) in this long."""


def _log() -> Any:
    """Looked up per call so that logging configured after import (the daemon, tests) applies."""
    return get_logger(component="graph.auth")


def ssl_context_for(config: GraphClientConfig) -> ssl.SSLContext:
    """A TLS context that trusts ``ca_bundle`` if set, else the system trust store."""
    if config.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(config.ca_bundle))
    return ssl.create_default_context()


class _MsalHttpClient:
    """The minimal ``http_client`` msal needs (``msal.oauth2cli.http.HttpClient``), on httpx.

    httpx uses the SSL context it is given and ignores the CA environment variables for it, so
    ``ca_bundle`` always wins.
    """

    def __init__(self, verify: ssl.SSLContext, timeout: httpx.Timeout) -> None:
        self._client = httpx.Client(verify=verify, timeout=timeout)

    @staticmethod
    def _headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
        return {k: str(v) for k, v in (headers or {}).items() if v is not None}

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        sent = self._headers(headers)
        if isinstance(data, Mapping):
            # Form-encode here: msal passes the client assertion as bytes, which httpx would
            # render as "b'...'"; urlencode handles bytes and str alike (as requests does).
            data = urlencode({k: v for k, v in data.items() if v is not None}, doseq=True)
            if not any(k.lower() == "content-type" for k in sent):
                sent["Content-Type"] = "application/x-www-form-urlencoded"
        return self._client.post(url, params=params, content=data, headers=sent)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self._client.get(url, params=params, headers=self._headers(headers))

    def close(self) -> None:
        self._client.close()


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


TOKEN_REUSE_MARGIN_S = 300.0
"""A token in hand is handed out while it has more than this left: msal's own margin (it
refreshes a cached token five minutes before expiry), without a trip to its thread."""


class TokenProvider:
    """Hands out Graph access tokens; one msal ``ConfidentialClientApplication`` per provider."""

    def __init__(self, config: GraphClientConfig) -> None:
        self._config = config
        self._executor: ThreadPoolExecutor | None = None
        self._last_forced = -1e9
        self._app: Any = None
        self._http: _MsalHttpClient | None = None
        # (error, error_description) of the refusal in force
        self._refusals: RefusalGate[tuple[str, str]] = RefusalGate()
        self._held: tuple[str, float] | None = None  # the last token and its monotonic expiry
        # one trip to the identity platform at a time: callers that asked together (rooms read
        # in one group all meet the same revoked token) share its answer or its refusal's hold
        self._getting = asyncio.Lock()
        cert = config.certificate
        self._secrets: tuple[str, ...] = tuple(
            s
            for s in (
                config.client_secret,
                cert.private_key_pem if cert else None,
                cert.passphrase if cert else None,
            )
            if s
        )

    def __repr__(self) -> str:
        config = self._config
        return f"TokenProvider(authority={config.authority!r}, client_id={config.client_id!r})"

    def _credential(self) -> Any:
        cert = self._config.certificate
        if cert is None:
            return self._config.client_secret
        credential: dict[str, Any] = {
            "private_key": cert.private_key_pem,
            "public_certificate": cert.public_certificate_pem,
        }
        if cert.thumbprint:
            credential["thumbprint"] = cert.thumbprint
        if cert.passphrase:
            credential["passphrase"] = cert.passphrase
        return credential

    def _build_app(self) -> Any:
        """Runs in a worker thread: msal fetches the OpenID configuration while constructing."""
        timeout = httpx.Timeout(
            self._config.read_timeout, connect=self._config.connect_timeout, pool=None
        )
        self._http = _MsalHttpClient(ssl_context_for(self._config), timeout)
        return msal.ConfidentialClientApplication(
            self._config.client_id,
            client_credential=self._credential(),
            authority=self._config.authority,
            http_client=self._http,
            instance_discovery=False,
            azure_region=False,
        )

    def _acquire(self, rejected: str | None) -> dict[str, Any]:
        """Runs in a worker thread, under the lock."""
        if self._app is None:
            self._app = self._build_app()
        scopes = [self._config.scope]
        result: dict[str, Any] = self._app.acquire_token_for_client(scopes=scopes)
        if rejected is not None and result.get("access_token") == rejected:
            now = time.monotonic()
            if now - self._last_forced < FORCED_REFRESH_INTERVAL_S:
                # Graph rejected a token this fresh: a new one will not help (consent or
                # tenant problem), and the identity platform throttles token requests too
                return {
                    "error": "token_rejected",
                    "error_description": "Graph rejected a freshly issued token; not fetching "
                    f"another within {FORCED_REFRESH_INTERVAL_S:g} s",
                }
            self._last_forced = now
            self._app.remove_tokens_for_client()
            result = self._app.acquire_token_for_client(scopes=scopes)
        return result

    def _run(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roomd-msal")
        return self._executor

    async def _get(self, rejected: str | None) -> str:
        async with self._getting:
            held = self._held
            fresh = held is not None and held[1] - time.monotonic() > TOKEN_REUSE_MARGIN_S
            if held is not None and fresh and held[0] != rejected:
                return held[0]  # fetched by the caller this one waited for
            return await self._get_now(rejected)

    async def _get_now(self, rejected: str | None) -> str:
        hold = self._refusals.held()
        if hold is not None:
            GRAPH_TOKEN_REFRESHES.labels(outcome="held").inc()
            raise self._refused(*hold.refusal, retry_in_s=hold.retry_in_s)
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._run(), self._acquire, rejected)
        except Exception as exc:  # msal raises ValueError/OSError/httpx errors
            GRAPH_TOKEN_REFRESHES.labels(outcome="error").inc()
            message = _redact(f"{type(exc).__name__}: {exc}", self._secrets)
            _log().warning("graph_token_failed", error=message)
            raise AuthError(
                None, "token_request_failed", f"cannot get a token from msal: {message}"
            ) from None
        token = result.get("access_token")
        if not isinstance(token, str) or not token:
            GRAPH_TOKEN_REFRESHES.labels(outcome="error").inc()
            code = str(result.get("error") or "no_access_token")
            description = _redact(str(result.get("error_description") or ""), self._secrets)
            _log().warning("graph_token_failed", error=code, description=description)
            if code in OAUTH_REFUSALS:
                held = self._refusals.refused((code, description))
                raise self._refused(code, description, retry_in_s=held.retry_in_s)
            raise AuthError(None, code, description or "the token response had no access_token")
        self._refusals.succeeded()
        expires_in = result.get("expires_in")
        self._held = None
        if isinstance(expires_in, int | float) and token != rejected:
            self._held = (token, time.monotonic() + float(expires_in))
        if result.get("token_source") != "cache":
            GRAPH_TOKEN_REFRESHES.labels(outcome="ok").inc()
            _log().info(
                "graph_token_acquired",
                expires_in=result.get("expires_in"),
                after_rejection=rejected is not None,
            )
        return token

    def _refused(self, code: str, description: str, *, retry_in_s: float) -> CredentialsRefused:
        return CredentialsRefused(
            code, description, client_id=self._config.client_id, retry_in_s=retry_in_s
        )

    async def token(self) -> str:
        """A valid access token (msal's cached one while it has more than 5 minutes left).

        The token in hand answers without asking msal: every request asks, and msal's cache sits
        behind a worker thread (its calls block), which cost a tenth of roomd's CPU in an initial
        sync (bench/initial_sync.py, py-spy)."""
        held = self._held
        if held is not None and held[1] - time.monotonic() > TOKEN_REUSE_MARGIN_S:
            return held[0]
        return await self._get(None)

    async def refresh(self, rejected: str) -> str:
        """A token other than ``rejected``, which Graph answered with 401."""
        if self._held is not None and self._held[0] == rejected:
            self._held = None
        return await self._get(rejected)

    async def aclose(self) -> None:
        """Close msal's HTTP connections and stop the worker thread."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, self._close_http)
        executor.shutdown(wait=True)

    def _close_http(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self._app = None
