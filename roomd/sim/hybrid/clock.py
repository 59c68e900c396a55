"""The simulated clock: wall time plus an offset that tests and the demo can move forward.

Token expiry (one hour), the check-in window and ``createdAt``/``modifiedAt`` all read this clock,
so a test can jump an hour ahead instead of sleeping. It can also be frozen at a fixed instant for
tests that compare timestamps exactly.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """``now()`` is wall time (or a frozen instant) plus everything ``advance()`` added."""

    def __init__(self, frozen_at: datetime | None = None) -> None:
        if frozen_at is not None and frozen_at.tzinfo is None:
            raise ValueError("SimClock: frozen_at must be timezone-aware (UTC)")
        self._frozen_at = frozen_at.astimezone(UTC) if frozen_at else None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        """The simulated current instant, timezone-aware UTC."""
        base = self._frozen_at or datetime.fromtimestamp(time.time(), UTC)
        return base + self._offset

    def advance(self, seconds: float) -> datetime:
        """Move simulated time forward (never backward: timestamps must stay increasing)."""
        if seconds < 0:
            raise ValueError(f"SimClock.advance: seconds must be >= 0, got {seconds}")
        self._offset += timedelta(seconds=seconds)
        return self.now()
