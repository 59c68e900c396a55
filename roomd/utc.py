"""UTC, the only time inside roomd (design.md invariant 7): "now" and its text form.

Conversions to and from IANA zones happen at the edges (the Graph and Hybrid clients, recurrence
rules); everything that roomd itself compares, stores or shows is an aware UTC ``datetime``.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def iso_z(value: datetime | None) -> str | None:
    """``2026-11-25T09:00:01.123456Z``: the form roomd's JSON (status, /readyz) shows."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def age_seconds(value: datetime | None, at: datetime | None = None) -> float | None:
    """Seconds since ``value`` (None stays None), never negative."""
    if value is None:
        return None
    return max(0.0, ((at or now()) - value).total_seconds())
