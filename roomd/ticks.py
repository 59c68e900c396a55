"""Grouped ticks: which rooms the daemon polls together, in which slice of the poll interval.

The poll interval is cut into slices of about a second, and every room belongs to one slice,
from its name (the same spread as the per-room timers it replaces: rooms are spread evenly over
the interval). The daemon's ticker wakes at the start of each slice on a fixed schedule and
reads that slice's rooms together, so each room is read once per interval, exactly the interval
apart, and rooms read at the same moment share their requests (20 delta reads per ``$batch``).
"""

from __future__ import annotations

import zlib

SLICE_S = 1.0
"""About how long a slice lasts: short enough that a room is read within a second of its
phase, long enough that a slice of a large tenant holds many rooms to batch together."""

MAX_SLICES = 60
"""At most this many slices per interval: a long interval gets longer slices, not more."""


def slices_for(interval: float) -> int:
    """How many slices a poll interval of ``interval`` seconds is cut into (at least one)."""
    return max(1, min(MAX_SLICES, round(interval / SLICE_S)))


def slice_of(mailbox: str, slices: int) -> int:
    """The slice a room is read in: fixed by its name, spread evenly over the interval."""
    return (zlib.crc32(mailbox.lower().encode()) % 10_000) * slices // 10_000
