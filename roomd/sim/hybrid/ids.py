"""Identifiers shaped like OfficeRnD's: 24 hexadecimal digits (MongoDB ObjectIds).

An ObjectId is 4 bytes of seconds since the epoch, 5 random bytes and a 3-byte counter; we keep
that layout so ids sort roughly by creation time, like the real ones.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from datetime import UTC, datetime

OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


class ObjectIds:
    """A per-simulator generator of fresh ObjectId-like strings."""

    def __init__(self) -> None:
        self._process = os.urandom(5).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(3), "big"))

    def new(self, at: datetime) -> str:
        seconds = int(at.timestamp()) & 0xFFFFFFFF
        count = next(self._counter) & 0xFFFFFF
        return f"{seconds:08x}{self._process}{count:06x}"

    def new_now(self) -> str:
        """A fresh id stamped with wall-clock time (for records outside the simulated world)."""
        return self.new(datetime.now(UTC))


def stable_id(*parts: str) -> str:
    """A deterministic ObjectId-like id for seeded data (members, offices) so runs line up."""
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:24]


def is_object_id(value: object) -> bool:
    return isinstance(value, str) and OBJECT_ID.match(value) is not None
