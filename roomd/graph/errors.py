"""Typed exceptions for Microsoft Graph answers, carrying Graph's own error code.

Graph's error body is ``{"error": {"code", "message", "innerError": {...}}}`` where ``innerError``
may nest; "use the most detailed code you understand" and never branch on ``message``
(concepts/errors.md). Outlook sends PascalCase codes (``SyncStateNotFound``) where the docs write
camelCase (``syncStateNotFound``), so codes are compared case-insensitively.

No exception here ever holds a request's headers: the bearer token cannot reach a message or a repr.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

from roomd.entra import RELOAD, aadsts_code, credential_fix

SYNC_STATE_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
"""Codes meaning "the delta token is gone, synchronise again" (errors.md: ``syncStateNotFound``
"The delta token is expired", ``resyncRequired`` "the app must reset the sync state")."""


class GraphError(Exception):
    """A request to Graph failed; ``code`` is Graph's most detailed error code."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        request_id: str | None = None,
        *,
        codes: tuple[str, ...] = (),
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.codes = codes or ((code,) if code else ())
        self.method = method
        self.path = path
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"{self.method} {self.path} " if self.method else ""
        status = f"{self.status} " if self.status is not None else ""
        rid = f" (request-id {self.request_id})" if self.request_id else ""
        return f"Graph {where}-> {status}{self.code or 'error'}: {self.message}{rid}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )

    def has_code(self, *candidates: str) -> bool:
        """Whether any code in the ``innerError`` chain matches, ignoring case."""
        wanted = {c.lower() for c in candidates}
        return any(c.lower() in wanted for c in self.codes)


class BadRequest(GraphError):
    """400: the request was malformed or refused (e.g. ``ErrorInvalidParameter``)."""


class AuthError(GraphError):
    """No valid token: msal could not get one, or Graph rejected it twice (401)."""


OAUTH_REFUSALS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)
"""RFC 6749 section 5.2 error codes: the identity platform's answer to a credential it will not
take (AADSTS7000215 bad secret, 7000222 expired secret, 700016 no such app, 90002 no such
tenant...). Asking again does not help; a 5xx or no answer is not one of these."""


class CredentialsRefused(AuthError):
    """The identity platform refused roomd's tenant, client id, secret or certificate.

    ``code`` and ``message`` stay msal's ``error`` and ``error_description`` (``roomd doctor``
    reads the AADSTS number in them); ``str()`` is the line an operator sees in ``roomd status``
    and ``/readyz``: the refusal's first line, when roomd asks again (``retry_in_s``, see
    ``roomd.refusals``) and the fix.
    """

    def __init__(self, code: str, message: str, *, client_id: str, retry_in_s: float) -> None:
        self.client_id = client_id
        self.retry_in_s = retry_in_s
        super().__init__(None, code, message)

    def _describe(self) -> str:
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        fix = credential_fix(aadsts_code(first), self.client_id) or _CHECK_CREDENTIALS
        return (
            f"Microsoft Graph refused roomd's credentials ({self.code}: {first}); not asked "
            f"again for {max(1, round(self.retry_in_s))} s — fix: {fix}"
        )


_CHECK_CREDENTIALS = (
    "check graph.tenant_id, graph.client_id and the client secret or certificate against the app "
    "registration (roomd doctor names the exact fix)" + RELOAD
)


class AccessDenied(AuthError):
    """403, e.g. ``ErrorAccessDenied`` from an ApplicationAccessPolicy
    (auth-limit-mailbox-access.md)."""


class NotFound(GraphError):
    """404: the mailbox or item does not exist (``ErrorItemNotFound``, ``ErrorInvalidUser``)."""


class SyncStateExpired(GraphError):
    """The delta or next link is no longer valid: drop it and run a fresh initial round.

    Raised for any 410 Gone and for ``SyncStateNotFound`` / ``resyncRequired`` anywhere in the
    error chain (delta-query-overview.md "Token duration"; errors.md; graph-behaviour.md 1.7).
    """


class PreconditionFailed(GraphError):
    """412: ``If-Match`` named an etag the item no longer has (errors.md): re-read, then decide."""


class FailedDependency(GraphError):
    """424: a ``$batch`` item did not run because an item it ``dependsOn`` failed."""


class Throttled(GraphError):
    """429 (``ApplicationThrottled``, ``TooManyRequests``); ``retry_after`` is in seconds."""


class ServiceUnavailable(GraphError):
    """500/503/504 after retries: Graph or a gateway could not serve the request."""


class GraphConnectionError(GraphError):
    """The request never got an HTTP answer (connection refused, reset, timed out)."""


class GraphProtocolError(GraphError):
    """Graph's answer broke the protocol roomd relies on (a delta page without a link...)."""


_BY_STATUS: dict[int, type[GraphError]] = {
    400: BadRequest,
    401: AuthError,
    403: AccessDenied,
    404: NotFound,
    410: SyncStateExpired,
    412: PreconditionFailed,
    424: FailedDependency,
    429: Throttled,
    500: ServiceUnavailable,
    502: ServiceUnavailable,
    503: ServiceUnavailable,
    504: ServiceUnavailable,
}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds, possibly fractional ("2.128",
    an older throttling.md sample), or an HTTP-date (RFC 9110 10.2.3). ``None`` if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _error_chain(body: Any) -> tuple[str, str, str | None, tuple[str, ...]]:
    """(most detailed code, message, request-id, all codes outermost first) from an error body."""
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), Mapping):
        return "", "", None, ()
    node: Any = body["error"]
    message = str(node.get("message") or "")
    codes: list[str] = []
    request_id: str | None = None
    depth = 0
    while isinstance(node, Mapping) and depth < 16:
        code = node.get("code")
        if isinstance(code, str) and code and not code.isdigit():
            codes.append(code)
        rid = node.get("request-id")
        if isinstance(rid, str) and rid:
            request_id = rid
        node = node.get("innerError") or node.get("innererror")
        depth += 1
    return (codes[-1] if codes else ""), message, request_id, tuple(codes)


def error_from_parts(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    *,
    method: str = "",
    path: str = "",
) -> GraphError:
    """The typed exception for one failed Graph answer (a response or a ``$batch`` item)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body) if body else None
        except ValueError:
            body = None
    code, message, request_id, codes = _error_chain(body)
    request_id = request_id or lowered.get("request-id")
    if not message:
        message = f"HTTP {status}"
    retry_after = parse_retry_after(lowered.get("retry-after"))
    if any(c.lower() in SYNC_STATE_CODES for c in codes):
        cls: type[GraphError] = SyncStateExpired
    else:
        cls = _BY_STATUS.get(status, GraphError)
    return cls(
        status,
        code,
        message,
        request_id,
        codes=codes,
        method=method,
        path=path,
        retry_after=retry_after,
    )
