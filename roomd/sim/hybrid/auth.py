"""OAuth2 client-credentials tokens, as OfficeRnD's identity service issues them.

OfficeRnD (developer.officernd.com, "Authentication"): ``POST /oauth/token`` with a form body
(``client_id``, ``client_secret``, ``grant_type=client_credentials``, ``scope``) returns a bearer
token valid for 3600 seconds; scopes are fine-grained (``flex.space.bookings.read``, ...). Errors
use RFC 6749 section 5.2 bodies (``{"error": "invalid_client", ...}``). Client credentials may also
come in an HTTP Basic header (RFC 6749 section 2.3.1). Expiry is measured on the simulated clock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from roomd.sim.hybrid.clock import SimClock
from roomd.sim.hybrid.errors import ApiError

TOKEN_LIFETIME = timedelta(seconds=3600)

SCOPES = frozenset(
    {
        "flex.space.bookings.read",
        "flex.space.bookings.create",
        "flex.space.bookings.update",
        "flex.space.bookings.cancel",
        "flex.space.resources.read",
        "flex.community.members.read",
        "flex.settings.webhooks.create",
        "flex.settings.webhooks.read",
        "flex.settings.webhooks.delete",
    }
)


class OAuthError(Exception):
    """A token-endpoint refusal with an RFC 6749 error body (never echoing the secret)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class Grant:
    client_id: str
    scopes: frozenset[str]
    expires_at: datetime


@dataclass
class TokenIssuer:
    """Holds one client's credentials and the tokens issued to it."""

    clock: SimClock
    client_id: str
    client_secret: str = field(repr=False)
    _tokens: dict[str, Grant] = field(default_factory=dict, repr=False)
    requests: int = 0  # answered or refused: what a client's retry storm would cost

    def issue(self, form: dict[str, str], authorization: str | None) -> dict[str, Any]:
        """Answer a token request, or raise OAuthError."""
        self.requests += 1
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            client_id, client_secret = _basic(authorization)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError(400, "invalid_request", "grant_type is required")
        if grant_type != "client_credentials":
            raise OAuthError(
                400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported"
            )
        if not client_id or not client_secret:
            raise OAuthError(401, "invalid_client", "client_id and client_secret are required")
        if not (
            hmac.compare_digest(client_id.encode(), self.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        ):
            raise OAuthError(401, "invalid_client", "client authentication failed")
        requested = (form.get("scope") or "").split()
        unknown = sorted(set(requested) - SCOPES)
        if unknown:
            raise OAuthError(400, "invalid_scope", f"unknown scope {unknown[0]!r}")
        scopes = frozenset(requested) if requested else SCOPES
        token = secrets.token_urlsafe(32)
        self._tokens[token] = Grant(client_id, scopes, self.clock.now() + TOKEN_LIFETIME)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(TOKEN_LIFETIME.total_seconds()),
            "scope": " ".join(sorted(scopes)),
        }

    def check(self, authorization: str | None, scope: str) -> Grant:
        """The grant behind a ``Bearer`` header; 401 when missing/unknown/expired, 403 on scope."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise _unauthorized("missing bearer token (send Authorization: Bearer <access_token>)")
        grant = self._tokens.get(authorization[7:].strip())
        if grant is None:
            raise _unauthorized("invalid access token")
        if self.clock.now() >= grant.expires_at:
            raise _unauthorized("access token expired")
        if scope not in grant.scopes:
            raise ApiError(403, "insufficient_scope", f"the access token lacks scope {scope}")
        return grant

    def revoke_all(self) -> None:
        """Forget every token (a tenant admin rotating the secret); clients must re-authenticate."""
        self._tokens.clear()


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def _basic(header: str) -> tuple[str | None, str | None]:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (None, None)
