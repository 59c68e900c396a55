"""What the sync engine reasons about: one booking as both sides see it, side-independent.

The shells (``inbound``/``outbound``) read Graph and Hybrid, resolve people and titles, and hand
the engine :class:`OutlookItem` and :class:`HybridItem` values; the engine never sees a payload.
Comparison happens on a :class:`Slot`: start, end and title, the fields both sides own
(design.md invariant 3). Attendee lists, bodies and response states are not compared: Exchange
rewrites the room's copy (subject replaced by the organizer's name, body removed) after every
write, and a comparison over those fields would turn every write into an echo.

Occurrences are identified by (series, original start) from the start: :func:`link_id_for`
takes the original start, so series (issue "sync engine, part 2") extend this model without
changing its keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

HybridStatus = Literal["booked", "tentative", "canceled"]
RoomResponse = Literal["accepted", "tentativelyAccepted", "declined"]


def _second(value: datetime) -> datetime:
    """UTC, whole seconds: Graph gives 7 fractional digits and Hybrid milliseconds, and a
    booking is never about sub-second time; equal instants must compare equal."""
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no time zone; the engine works in UTC")
    return value.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class Slot:
    """The content both sides own. ``title`` is None when the side cannot tell it (a room copy
    whose subject Exchange replaced and whose organizer's copy is out of reach)."""

    start: datetime
    end: datetime
    title: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _second(self.start))
        object.__setattr__(self, "end", _second(self.end))
        if self.end <= self.start:
            raise ValueError(
                f"end {self.end.isoformat()} is not after start {self.start.isoformat()}"
            )


def fingerprint(slot: Slot, status: HybridStatus = "booked") -> str:
    """A stable text form of what was last synced, stored in the link and shown by ``explain``."""
    data: dict[str, str] = {
        "start": slot.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": slot.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": status,
    }
    if slot.title is not None:
        data["title"] = slot.title
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_fingerprint(text: str | None) -> tuple[Slot, HybridStatus] | None:
    """The slot and status a fingerprint records; None for a missing or unreadable one."""
    if not text:
        return None
    try:
        data = json.loads(text)
        slot = Slot(
            datetime.fromisoformat(data["start"]),
            datetime.fromisoformat(data["end"]),
            data.get("title"),
        )
        status = data.get("status", "booked")
    except (ValueError, KeyError, TypeError):
        return None
    if status not in ("booked", "tentative", "canceled"):
        return None
    return slot, status


def same_slot(recorded: str | None, seen: Slot) -> bool:
    """Whether ``seen`` holds nothing new against the recorded fingerprint. A title one side
    cannot tell (None) is not a change: never write "unknown" over a real title."""
    old = read_fingerprint(recorded)
    if old is None:
        return False
    slot = old[0]
    if (slot.start, slot.end) != (seen.start, seen.end):
        return False
    return seen.title is None or slot.title is None or seen.title == slot.title


def recorded_status(recorded: str | None) -> HybridStatus | None:
    old = read_fingerprint(recorded)
    return None if old is None else old[1]


class OutlookState(StrEnum):
    """What the room's copy of a meeting says, after the shell checked what it could."""

    LIVE = "live"
    GONE = "gone"  # removed from the room's calendar and confirmed gone (GET: 404)
    CANCELLED = "cancelled"  # still there with isCancelled: true (RemoveCanceledMeetings off)
    LEFT_WINDOW = "left_window"  # @removed, but GET shows it moved outside the window


@dataclass(frozen=True, slots=True)
class OutlookItem:
    """One change read from a room mailbox's calendarView delta, enriched by the shell.

    ``slot.title`` comes from the organizer's copy (same iCalUId) when it could be read: the
    room's copy usually shows the organizer's name instead (docs/graph-behaviour.md 6.2).
    ``member_id``/``member_ids``/``visitors`` are the Hybrid people the shell resolved from the
    organizer and attendee addresses. ``problem`` says why the item cannot be synced (bad data):
    the engine skips it with that reason in the audit.
    """

    room_event_id: str
    state: OutlookState
    ical_uid: str | None = None
    change_key: str | None = None
    slot: Slot | None = None
    organizer: str | None = None
    organizer_event_id: str | None = None
    member_id: str | None = None
    member_ids: tuple[str, ...] = ()
    visitors: tuple[str, ...] = ()
    room_response: str | None = None
    reason: str | None = None  # why it is gone: "deleted in Outlook", "declined by the room"
    room_subject: str | None = None  # the room copy's subject: a title when nothing better
    modified_at: datetime | None = None  # lastModifiedDateTime: when the change happened
    problem: str | None = None


class HybridState(StrEnum):
    LIVE = "live"
    CANCELED = "canceled"  # a person (member or admin) cancelled it
    RELEASED = "released"  # the room policy cancelled it: a no-show or a rejected approval


@dataclass(frozen=True, slots=True)
class HybridItem:
    """One booking read from the Hybrid listing (or named by a webhook), enriched by the shell:
    ``organizer`` is the booking member's email, ``guests`` the other members' emails and the
    visitors' addresses."""

    hybrid_id: str
    state: HybridState
    slot: Slot | None = None
    tentative: bool = False
    cancel_reason: str | None = None
    reference: str | None = None
    source: str | None = None
    organizer: str | None = None
    guests: tuple[str, ...] = ()
    description: str | None = None
    modified_at: datetime | None = None  # Hybrid's modifiedAt: when the change happened
    problem: str | None = None

    @property
    def status(self) -> HybridStatus:
        if self.state is not HybridState.LIVE:
            return "canceled"
        return "tentative" if self.tentative else "booked"


@dataclass(frozen=True, slots=True)
class RoomContext:
    """The room as the engine needs it: its two identities and the rules that apply."""

    mailbox: str
    hybrid_id: str
    name: str
    conflict: Literal["outlook_wins", "hybrid_wins"] = "outlook_wins"
    direction: Literal["both", "outlook_to_hybrid", "hybrid_to_outlook"] = "both"
    service_mailbox: str | None = None
    fallback_member_id: str | None = None
    mass_delete_threshold: float = 0.5
    mass_delete_min: int = 5
    now: datetime | None = None  # the round's time, passed in: the engine has no clock
    zone: str = "UTC"  # the room's IANA zone: Hybrid evaluates recurrence rules in it


def link_id_for(side: Literal["outlook", "hybrid"], key: str, original_start: str = "") -> str:
    """A link's id, from what first made it: ``o:<iCalUId>`` for a meeting booked in Outlook,
    ``h:<booking id>`` for a booking made in Hybrid; occurrences add ``@<original start>``."""
    prefix = "o:" if side == "outlook" else "h:"
    return prefix + key + (f"@{original_start}" if original_start else "")
