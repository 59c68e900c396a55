"""Reading and writing instants the way OfficeRnD's API does: ISO-8601 in UTC with a ``Z``.

Inputs must carry a zone (``Z`` or an offset): a naive time is ambiguous for a room booked from
another time zone, so it is refused rather than guessed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from roomd.sim.hybrid.errors import ApiError, unprocessable


def format_instant(at: datetime) -> str:
    """``2026-11-25T09:00:00.000Z``: UTC, millisecond precision, as OfficeRnD serves it."""
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_instant(value: object, where: str, *, status: int = 422) -> datetime:
    """Parse an ISO-8601 instant with a zone; the error names ``where`` (the field) and the value.

    ``status`` is 422 for a field of a request body and 400 for a query parameter.
    """

    def fail(message: str) -> ApiError:
        if status == 422:
            return unprocessable(message)
        return ApiError(status, "bad_request", message)

    if not isinstance(value, str):
        raise fail(f"{where}: expected an ISO-8601 date-time string, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise fail(
            f"{where}: {value!r} is not an ISO-8601 date-time (e.g. 2026-11-25T09:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise fail(f"{where}: {value!r} has no time zone; send UTC with a trailing Z")
    return parsed.astimezone(UTC)


def truncate_ms(at: datetime) -> datetime:
    """Drop sub-millisecond digits so stored instants round-trip through the JSON form exactly."""
    return at.replace(microsecond=(at.microsecond // 1000) * 1000)
