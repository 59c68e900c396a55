"""One retry policy for every Hybrid request: which failures are transient and how long to wait.

Transient: 429 (honouring ``Retry-After``, capped), 500/502/503/504, and connection failures
(refused, reset, timed out). Everything else is an answer, and is returned to be turned into a
typed error. Backoff is stamina's capped, jittered exponential backoff; the policy is applied only
to requests that are safe to repeat (the caller decides), because a create whose answer was lost
may already have happened.
"""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import stamina

from roomd.hybrid.config import RetryPolicy
from roomd.hybrid.errors import HybridError
from roomd.observe import HYBRID_RETRIES, get_logger

__all__ = [
    "TRANSIENT_STATUSES",
    "TransientStatus",
    "attempts",
    "retry_after_seconds",
    "with_retries",
]

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

_log = get_logger(component="hybrid")


class TransientStatus(Exception):
    """An answer worth retrying; carries the response so the last one can be reported."""

    def __init__(self, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP-date (RFC 9110 section 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TransientStatus):
        return "429" if exc.response.status_code == 429 else "5xx"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return "connection"


def attempts(
    policy: RetryPolicy, on: Callable[[Exception], bool | float]
) -> AsyncIterator[stamina.Attempt]:
    """stamina's retry loop, configured from ``policy``: the one place its knobs are read."""
    return stamina.retry_context(
        on=on,
        attempts=policy.attempts,
        timeout=policy.timeout,
        wait_initial=policy.wait_initial,
        wait_max=policy.wait_max,
        wait_jitter=policy.wait_jitter,
    )


async def with_retries(
    policy: RetryPolicy,
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    what: str,
) -> httpx.Response:
    """Call ``send`` until it gives a non-transient answer or the policy runs out.

    Returns the last response (which may still be a 429/5xx after the last attempt) so that the
    caller reports the server's own message; raises ``HybridError(0, ...)`` when the server could
    not be reached at all. ``what`` names the request in logs (method and path, never a query
    string or a header).
    """

    def hook(exc: Exception) -> bool | float:
        if isinstance(exc, TransientStatus):
            if exc.retry_after is not None:
                return min(exc.retry_after, policy.retry_after_max)
            return True
        return isinstance(exc, httpx.TransportError)

    last: BaseException | None = None
    try:
        async for attempt in attempts(policy, hook):
            with attempt:
                if last is not None:
                    reason = _reason(last)
                    HYBRID_RETRIES.labels(reason=reason).inc()
                    _log.info("hybrid_retry", request=what, reason=reason, attempt=attempt.num)
                try:
                    resp = await send()
                except httpx.TransportError as exc:
                    last = exc
                    raise
                if resp.status_code in TRANSIENT_STATUSES:
                    after = retry_after_seconds(resp.headers.get("retry-after"))
                    last = TransientStatus(resp, after)
                    raise last
                return resp
    except TransientStatus as exc:
        return exc.response
    except httpx.TransportError as exc:
        raise HybridError(
            0, f"cannot reach the Hybrid API ({what}): {type(exc).__name__}"
        ) from None
    raise AssertionError("unreachable: stamina ended without an attempt")  # pragma: no cover
