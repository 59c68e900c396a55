"""Switchable failures, so clients can be tested against the ways a real service misbehaves.

Each fault is counted ("the next N requests/deliveries") rather than random, so a test states
exactly what happens and cannot flake. API faults answer before authentication, as a gateway in
front of the real service would: 429 with ``Retry-After`` (the client must wait that long), a 5xx,
or a slow answer. Webhook faults act on deliveries: lose one, hold it back, send it twice, swap it
with the next, sign it wrongly, or stamp it with a stale timestamp. ``coarse_timestamps`` makes
``modifiedAt`` repeat within a second, to test a client's change-feed overlap;
``unsorted_listing`` lists bookings in creation order instead of by ``modifiedAt``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class Faults:
    # API (paths under /api/ only; ``api_path_contains`` narrows them to matching paths)
    api_429: int = 0
    retry_after_seconds: int = 1
    api_5xx: int = 0
    api_5xx_status: int = 503
    api_slow: int = 0
    api_slow_seconds: float = 0.0
    api_path_contains: str = ""
    # token endpoint
    token_5xx: int = 0
    # a mode, not a count: while non-zero, createdAt/modifiedAt have whole-second resolution and
    # repeat, as real systems' timestamps do; a client paging "modified since" must then re-read
    # an overlap, or it misses writes that share the second of its cursor
    coarse_timestamps: int = 0
    # a mode: while non-zero, GET bookings pages in creation order, not by modifiedAt (OfficeRnD
    # does not promise an order), so a booking changed during a walk may sit on a page already
    # read and is not listed again in that walk
    unsorted_listing: int = 0
    # webhook deliveries
    webhook_drop: int = 0
    webhook_delay: int = 0
    webhook_delay_seconds: float = 0.0
    webhook_duplicate: int = 0
    webhook_reorder: int = 0
    webhook_bad_signature: int = 0
    webhook_stale_timestamp: int = 0

    def set(self, **changes: Any) -> None:
        """Change some switches; unknown names and wrong types are refused with a clear error."""
        known = {f.name: f.type for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"faults: unknown fault {name!r} (known: {', '.join(known)})")
            current = getattr(self, name)
            if isinstance(current, str):
                ok = isinstance(value, str)
            elif isinstance(current, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            if not ok:
                raise ValueError(
                    f"faults: {name} must be a non-negative {known[name]}, got {value!r}"
                )
            setattr(self, name, float(value) if isinstance(current, float) else value)

    def clear(self) -> None:
        for f in fields(self):
            setattr(self, f.name, type(self).__dataclass_fields__[f.name].default)

    def take(self, name: str) -> bool:
        """Consume one unit of a counted fault; True when it fires for this request/delivery."""
        remaining = getattr(self, name)
        if remaining > 0:
            setattr(self, name, remaining - 1)
            return True
        return False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
