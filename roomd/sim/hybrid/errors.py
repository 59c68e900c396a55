"""The simulator's error type and its JSON body.

OfficeRnD answers errors with a JSON object carrying a human-readable ``message``; we add a
stable machine-readable ``code`` (and, for a double booking, the conflicting bookings) so a client
can tell the cases apart without parsing prose. Documented in docs/hybrid-api.md.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error answer: status, stable code, a message naming what is wrong."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, **self.extra}


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def unprocessable(message: str, code: str = "validation_error") -> ApiError:
    return ApiError(422, code, message)


def conflict(message: str, code: str, **extra: Any) -> ApiError:
    return ApiError(409, code, message, **extra)
