"""How the store writes time: UTC ISO-8601 text, fixed width, ending in ``Z``.

``2026-11-25T09:00:01.000000Z``: always microseconds, always UTC. Fixed width means SQLite's text
comparison is chronological order, so ``next_at <= ?`` and ``ORDER BY`` work without conversions,
and an operator reading the database with the ``sqlite3`` shell sees readable times. Every
timestamp column in every table uses this form; the Python API takes and returns timezone-aware
``datetime`` objects in UTC (design.md section 3, invariant 7: time is UTC inside roomd).
"""

from __future__ import annotations

from datetime import UTC, datetime

_EXAMPLE = "2026-11-25T09:00:01.000000Z"
_WIDTH = len(_EXAMPLE)


def to_db(value: datetime, field: str) -> str:
    """Encode an aware datetime for storage; a naive one is refused, naming ``field``.

    A naive datetime has no defined instant; guessing local time is how sync tools drift by an
    hour at DST changes, so the store does not guess.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{field}: expected a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field}: datetime {value.isoformat()} has no time zone; pass it in UTC")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{field}: datetime {value.isoformat()} is out of range") from None
    # isoformat (unlike strftime's %Y) pads the year to four digits on every platform.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def opt_to_db(value: datetime | None, field: str) -> str | None:
    """Like :func:`to_db`, passing ``None`` through."""
    return None if value is None else to_db(value, field)


def from_db(text: str) -> datetime:
    """Decode a stored timestamp."""
    if len(text) != _WIDTH or not text.endswith("Z"):
        raise ValueError(f"stored timestamp {text!r} is not in the form {_EXAMPLE}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def opt_from_db(text: str | None) -> datetime | None:
    """Like :func:`from_db`, mapping ``None`` and ``''`` to ``None``."""
    return from_db(text) if text else None
