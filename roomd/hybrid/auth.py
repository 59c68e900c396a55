"""OAuth2 client-credentials tokens for the Hybrid API, cached and refreshed before they expire.

OfficeRnD's API accepts only the client-credentials grant: a form post of ``client_id``,
``client_secret``, ``grant_type=client_credentials`` and ``scope`` to the token URL, answered with
``access_token`` and ``expires_in`` (3600 s) (developer.officernd.com, "Authentication"). The
token is refreshed ``token_refresh_margin_s`` before it expires, and on demand after a 401 (a
server may revoke a token early). A refused secret is not offered again before its hold ends
(``roomd.refusals``): every round in between fails at once with the same refusal. Neither the
secret nor the token ever reaches a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from roomd.hybrid.config import HybridClientConfig
from roomd.hybrid.errors import AuthError, CredentialsRefused, HybridError
from roomd.observe import HYBRID_REQUESTS, HYBRID_TOKEN_REFRESHES
from roomd.refusals import RefusalGate

__all__ = ["TokenSource"]

# Sends one token request; the client wraps it in its retry policy.
Retrying = Callable[[Callable[[], Awaitable[httpx.Response]]], Awaitable[httpx.Response]]


class TokenSource:
    """One cached access token, refreshed under a lock so concurrent requests share one fetch."""

    def __init__(
        self,
        config: HybridClientConfig,
        http: httpx.AsyncClient,
        retrying: Retrying,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._http = http
        self._retrying = retrying
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._lifetime = 3600.0
        self._refusals: RefusalGate[AuthError] = RefusalGate(clock=clock)
        self.granted: frozenset[str] = frozenset()
        """The scopes of the current token: the answer's ``scope``, or those requested when it
        has none (RFC 6749 section 5.1: omitted when identical to the requested scope)."""

    def __repr__(self) -> str:
        state = "valid" if self._valid() else "none"
        return f"TokenSource(client_id={self._config.client_id!r}, token={state})"

    def _valid(self) -> bool:
        # a short-lived token is refreshed at half its life, not on every request
        margin = min(self._config.token_refresh_margin_s, self._lifetime / 2)
        return self._token is not None and self._clock() < self._expires_at - margin

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in a message (used to scrub server answers)."""
        return tuple(s for s in (self._config.client_secret, self._token) if s)

    async def token(self) -> str:
        """A token valid for at least the refresh margin, fetching one if needed."""
        if self._valid():
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._valid():
                await self._fetch()
            assert self._token is not None
            return self._token

    async def invalidate(self, rejected: str) -> None:
        """Drop ``rejected`` (a token the API answered 401 to) unless it was already replaced."""
        async with self._lock:
            if self._token == rejected:
                self._token = None
                self._expires_at = 0.0

    async def _fetch(self) -> None:
        """One token request, counted by outcome: a refused or failing token endpoint is the
        first sign of a rotated or expired client secret. While a refusal holds, no request
        is sent (outcome ``held``) and the refusal is raised again."""
        hold = self._refusals.held()
        if hold is not None:
            HYBRID_TOKEN_REFRESHES.labels(outcome="held").inc()
            raise _refused(hold.refusal, hold.retry_in_s)
        try:
            await self._request_token()
        except AuthError as exc:
            HYBRID_TOKEN_REFRESHES.labels(outcome="error").inc()
            raise _refused(exc, self._refusals.refused(exc).retry_in_s) from None
        except Exception:
            HYBRID_TOKEN_REFRESHES.labels(outcome="error").inc()
            raise
        self._refusals.succeeded()
        HYBRID_TOKEN_REFRESHES.labels(outcome="ok").inc()

    async def _request_token(self) -> None:
        form = {
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret,
            "grant_type": "client_credentials",
            "scope": self._config.scope,
        }

        async def send() -> httpx.Response:
            try:
                resp = await self._http.post(
                    self._config.token_url,
                    data=form,
                    headers={"Accept": "application/json"},
                )
            except httpx.TransportError:
                HYBRID_REQUESTS.labels(status="error").inc()
                raise
            HYBRID_REQUESTS.labels(status=str(resp.status_code)).inc()
            return resp

        started = self._clock()
        resp = await self._retrying(send)
        if resp.status_code != 200:
            message = _token_error(resp)
            for secret in (self._config.client_secret,):
                message = message.replace(secret, "***")
            if resp.status_code in (400, 401, 403):
                raise AuthError(
                    resp.status_code,
                    f"token request for client {self._config.client_id!r} refused: {message}",
                )
            raise HybridError(resp.status_code, f"token request failed: {message}")
        try:
            body: Any = resp.json()
            token = body["access_token"]
            expires_in = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise HybridError(
                resp.status_code, "token endpoint answered without access_token/expires_in"
            ) from None
        if not isinstance(token, str) or not token:
            raise HybridError(resp.status_code, "token endpoint answered an empty access_token")
        if not 0 < expires_in < float("inf"):
            raise HybridError(resp.status_code, f"token endpoint answered expires_in={expires_in}")
        scope = body.get("scope")
        self.granted = frozenset((scope if isinstance(scope, str) else self._config.scope).split())
        self._token = token
        self._lifetime = expires_in
        self._expires_at = started + expires_in


def _refused(exc: AuthError, retry_in_s: float) -> CredentialsRefused:
    return CredentialsRefused(exc.status, exc.message, exc.code, retry_in_s=retry_in_s)


def _token_error(resp: httpx.Response) -> str:
    """RFC 6749 section 5.2 error body (``error``, ``error_description``) or the text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300] or resp.reason_phrase
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "error_description", "message") if body.get(k)]
        if parts:
            return ": ".join(parts)
    return str(body)[:300]
