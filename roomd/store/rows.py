"""Typed rows the store reads and writes, and the room key every table is keyed by.

Every row belongs to exactly one room: the room mailbox address, lower-cased
(``room-4a@contoso.com``). Exchange treats SMTP addresses case-insensitively, so lower-casing
makes ``Room-4A@Contoso.com`` from the config and ``room-4a@contoso.com`` from Graph the same key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

OutboxState = Literal["pending", "done", "failed", "dead"]
"""``pending``: waiting to be tried; ``failed``: tried, will be retried at ``next_at``;
``done``: applied remotely; ``dead``: given up, needs an operator. Only ``pending`` and ``failed``
count as outbox depth and are returned by ``due_outbox``."""

LinkState = Literal["active", "canceled"]

OUTBOX_STATES: frozenset[str] = frozenset(get_args(OutboxState))
OPEN_OUTBOX_STATES: frozenset[str] = frozenset({"pending", "failed"})
LINK_STATES: frozenset[str] = frozenset(get_args(LinkState))


def room_key(room: str) -> str:
    """The key a room's rows are stored under: its mailbox address, trimmed and lower-cased.

    Raises ValueError naming the value when it is not a plausible mailbox address, so a typo
    cannot silently start a second, empty state for the same room.
    """
    if not isinstance(room, str):
        raise TypeError(f"room: expected a mailbox address string, got {type(room).__name__}")
    key = room.strip().lower()
    local, at, domain = key.partition("@")
    if not at or not local or not domain or "@" in domain or any(c.isspace() for c in key):
        raise ValueError(f"room: {room!r} is not a mailbox address (expected name@domain)")
    return key


@dataclass(frozen=True, slots=True)
class Link:
    """roomd's record that a Hybrid booking (or one occurrence) and a meeting are the same thing.

    Occurrences are identified by (series, original start): ``original_start`` is the occurrence's
    original start for an occurrence or exception, and ``None`` for a one-off booking or a whole
    series (stored as ``''`` so that SQLite unique indexes, where NULLs are distinct, still hold).
    ``created_at``/``updated_at`` are filled in by the store; values passed in are ignored.
    """

    link_id: str
    hybrid_id: str | None = None
    hybrid_parent_id: str | None = None
    original_start: datetime | None = None
    room_event_id: str | None = None
    organizer_mailbox: str | None = None
    organizer_event_id: str | None = None
    ical_uid: str | None = None
    series_master_id: str | None = None
    hybrid_fingerprint: str | None = None
    outlook_fingerprint: str | None = None
    outlook_change_key: str | None = None
    hybrid_modified_at: datetime | None = None
    state: LinkState = "active"
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One planned remote write. ``intent_id`` is the caller's idempotency key."""

    room: str
    intent_id: str
    op: str
    payload: dict[str, Any] = field(repr=False)
    state: OutboxState
    attempts: int
    next_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One write roomd made (or decided not to make) and why; newest entries are read first."""

    id: int
    at: datetime
    room: str
    booking: str
    side: str
    action: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeltaState:
    """Where one room's calendarView delta query continues, and the window it was started with.

    The window is frozen into the token ("These tokens are state tokens which encode the
    startDateTime and endDateTime parameters", Graph: delta-query-events); a new window means a
    new initial round, so one row per room. ``complete`` is False while a round is still paging
    (``delta_link`` is then the latest ``@odata.nextLink``), True once it holds the
    ``@odata.deltaLink``.
    """

    room: str
    window_start: datetime
    window_end: datetime
    delta_link: str = field(repr=False)
    updated_at: datetime
    complete: bool = True


@dataclass(frozen=True, slots=True)
class HybridCursor:
    """Where the next Hybrid ``modifiedAt[$gte]`` listing for this room starts."""

    room: str
    modified_since: datetime
    updated_at: datetime
    resource_id: str = ""  # the Hybrid resource the cursor was read for ('' before schema 2)


@dataclass(frozen=True, slots=True)
class RoomStatus:
    """What ``roomd status`` and ``/readyz`` show per room."""

    room: str
    last_round_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    rounds_total: int
    outbox_depth: int
    oldest_pending_at: datetime | None
    outbox_dead: int
