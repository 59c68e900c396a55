"""Typed errors of roomd's Hybrid client, so that callers branch on *kind*, never on strings.

Each error carries the HTTP status and the server's own message (what OfficeRnD's API puts in
its error body), trimmed and scrubbed: a client secret or an access token never appears in an
error message or a ``repr``, even if a misbehaving server were to echo one back.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BookingParseError",
    "Conflict",
    "CredentialsRefused",
    "DoubleBooking",
    "HybridError",
    "NotFound",
    "ValidationError",
]

_MAX_MESSAGE = 500


class HybridError(Exception):
    """A request to the Hybrid API failed; ``status`` is the HTTP status (0: no answer) and
    ``code`` the server's machine-readable error code when it sends one."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        self.status = status
        self.message = message[:_MAX_MESSAGE]
        self.code = code
        super().__init__(f"Hybrid API answered {status}: {self.message}" if status else message)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class Conflict(HybridError):
    """409 for another reason than an overlap: the booking is canceled and cannot change, or the
    occurrence already has an exception (the server's ``code`` says which)."""


class DoubleBooking(Conflict):
    """409: the room is already booked for (part of) that time."""


class ValidationError(HybridError):
    """400/422: the request was refused as invalid (end before start, unknown room or member,
    malformed JSON); the message names what the server found wrong."""


class AuthError(HybridError):
    """401/403 from the API, or a token request the identity endpoint refused (wrong client id or
    secret, missing scope). Retrying does not help; an operator must fix the credentials."""


class CredentialsRefused(AuthError):
    """The token endpoint refused roomd's client id, secret or scope (400/401/403).

    ``message`` stays the endpoint's own words (``roomd doctor`` and ``roomd rooms`` read them);
    ``str()`` is the line an operator sees in ``roomd status`` and ``/readyz``: who refused,
    why, when roomd tries again (``retry_in_s``, see ``roomd.refusals``) and the fix.
    """

    def __init__(
        self, status: int, message: str, code: str | None = None, *, retry_in_s: float
    ) -> None:
        super().__init__(status, message, code)
        self.retry_in_s = retry_in_s

    def __str__(self) -> str:
        if "scope" in self.message.lower():
            fix = (
                "grant the API client the scopes in hybrid.scope in Hybrid, or remove "
                "hybrid.scope from the config, then systemctl reload roomd"
            )
        else:
            fix = (
                "put the API client's current secret in hybrid.client_secret_file and its id "
                "in hybrid.client_id, then systemctl reload roomd"
            )
        return (
            f"Hybrid refused roomd's credentials ({self.status}: {self.message}); not asked "
            f"again for {max(1, round(self.retry_in_s))} s — fix: {fix}"
        )


class NotFound(HybridError):
    """404: no such booking, member or resource (or it is not visible to this client)."""


class BookingParseError(ValueError):
    """A Hybrid payload does not have the shape roomd relies on; the message names the field
    (``start.dateTime``), what was expected and what was found."""


# 409 codes that are not an overlap (documented in docs/hybrid-api.md). A 409 without a code, or
# with any other code, is read as a double booking: that is what OfficeRnD's 409 means.
_NOT_OVERLAP = frozenset({"booking_canceled", "exception_exists", "not_pending", "not_now"})


def error_for_status(status: int, message: str, code: str | None = None) -> HybridError:
    """The typed error for an HTTP status, so callers can ``except DoubleBooking``."""
    if status == 409:
        if code in _NOT_OVERLAP:
            return Conflict(status, message, code)
        return DoubleBooking(status, message, code)
    if status in (400, 422):
        return ValidationError(status, message, code)
    if status in (401, 403):
        return AuthError(status, message, code)
    if status == 404:
        return NotFound(status, message, code)
    return HybridError(status, message, code)
