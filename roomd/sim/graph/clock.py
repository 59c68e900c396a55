"""One simulated clock for everything in the Graph simulator that asks "what time is it".

Token lifetimes, the rooms' booking windows, delta-token ages, the 10-minute throttling budget and
the timestamps written on events all read this clock, so a test can move the whole simulated
tenant forward (``advance``) without sleeping, and see every time-based rule react together.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SimClock:
    """Real UTC time plus an adjustable offset (never goes backwards unless told to)."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        """The simulated current time, timezone-aware UTC."""
        if self._frozen is not None:
            return self._frozen
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> datetime:
        """Move simulated time forward (or back, with a negative delta); returns the new now."""
        if self._frozen is not None:
            self._frozen += delta
        else:
            self._offset += delta
        return self.now()

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (aware); time keeps flowing from there."""
        if when.tzinfo is None:
            raise ValueError(f"clock time {when.isoformat()!r} has no UTC offset")
        if self._frozen is not None:
            self._frozen = when.astimezone(UTC)
        else:
            self._offset = when.astimezone(UTC) - datetime.now(UTC)
        return self.now()

    def freeze(self, when: datetime | None = None) -> datetime:
        """Stop time (at ``when`` or at the current simulated time) until ``unfreeze``."""
        self._frozen = (when or self.now()).astimezone(UTC)
        return self._frozen

    def unfreeze(self) -> None:
        """Let time flow again from the frozen instant."""
        if self._frozen is not None:
            self._offset = self._frozen - datetime.now(UTC)
            self._frozen = None
