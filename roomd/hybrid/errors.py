"""Typed errors of roomd's Hybrid client, so that callers branch on *kind*, never on strings.

Each error carries the HTTP status and the server's own message (what OfficeRnD's API puts in
its error body), trimmed and scrubbed: a client secret or an access token never appears in an
error message or a ``repr``, even if a misbehaving server were to echo one back.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BookingParseError",
    "DoubleBooking",
    "HybridError",
    "NotFound",
    "ValidationError",
]

_MAX_MESSAGE = 500


class HybridError(Exception):
    """A request to the Hybrid API failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message[:_MAX_MESSAGE]
        super().__init__(f"Hybrid API answered {status}: {self.message}" if status else message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"


class DoubleBooking(HybridError):
    """409: the room is already booked for (part of) that time."""


class ValidationError(HybridError):
    """400/422: the request was refused as invalid (end before start, unknown room or member,
    malformed JSON); the message names what the server found wrong."""


class AuthError(HybridError):
    """401/403 from the API, or a token request the identity endpoint refused (wrong client id or
    secret, missing scope). Retrying does not help; an operator must fix the credentials."""


class NotFound(HybridError):
    """404: no such booking, member or resource (or it is not visible to this client)."""


class BookingParseError(ValueError):
    """A Hybrid payload does not have the shape roomd relies on; the message names the field
    (``start.dateTime``), what was expected and what was found."""


def error_for_status(status: int, message: str) -> HybridError:
    """The typed error for an HTTP status, so callers can ``except DoubleBooking``."""
    if status == 409:
        return DoubleBooking(status, message)
    if status in (400, 422):
        return ValidationError(status, message)
    if status in (401, 403):
        return AuthError(status, message)
    if status == 404:
        return NotFound(status, message)
    return HybridError(status, message)
