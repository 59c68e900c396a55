"""The organization's records: resources (rooms), members and bookings, and their JSON form.

Field names and types follow the booking object OfficeRnD's API serves (see
tests/fixtures/hybrid/booking.schema.json, read from the live API). Fields the schema does
not name and that we add are marked "simulator" below and documented in docs/hybrid-api.md:
``originalStart`` (the occurrence an exception child replaces), ``cancelReason``, ``canceledAt``,
``canceledBy``, ``checkedIn``/``checkedInAt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from roomd.sim.hybrid.times import format_instant


class CancelReason(StrEnum):
    """Why a booking was canceled; a client tells a no-show apart from a person cancelling."""

    MEMBER = "member"  # the member, in the Hybrid app or through the API
    ADMIN = "admin"  # an administrator in the Hybrid app
    NO_SHOW = "no_show"  # nobody checked in within the room's check-in window
    REJECTED = "rejected"  # an administrator rejected a booking pending approval


@dataclass(frozen=True)
class Resource:
    id: str
    name: str
    time_zone: str
    capacity: int
    office: str
    requires_approval: bool
    requires_checkin: bool
    checkin_window_minutes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "name": self.name,
            "type": "meeting_room",
            "office": self.office,
            "capacity": self.capacity,
            "timezone": self.time_zone,
            # simulator: the booking policy the Hybrid app applies to this room
            "bookingPolicy": {
                "requiresApproval": self.requires_approval,
                "requiresCheckIn": self.requires_checkin,
                "checkInWindowMinutes": self.checkin_window_minutes,
            },
        }


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    email: str
    office: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        stamp = format_instant(self.created_at)
        return {
            "_id": self.id,
            "name": self.name,
            "email": self.email,
            "office": self.office,
            "status": "active",
            "createdAt": stamp,
            "modifiedAt": stamp,
        }


@dataclass
class Booking:
    id: str
    organization: str
    resource_id: str
    start: datetime
    end: datetime
    time_zone: str
    created_at: datetime
    modified_at: datetime
    created_by: str
    modified_by: str
    summary: str | None = None
    description: str | None = None
    member: str | None = None
    members: list[str] = field(default_factory=list)
    visitors: list[str] = field(default_factory=list)
    rrule: str | None = None
    exdates: list[datetime] = field(default_factory=list)
    parent: str | None = None
    original_start: datetime | None = None
    tentative: bool = False
    canceled: bool = False
    cancel_reason: CancelReason | None = None
    canceled_at: datetime | None = None
    canceled_by: str | None = None
    checked_in_at: datetime | None = None
    checked_in_occurrences: set[datetime] = field(default_factory=set)
    source: str | None = None
    reference: str | None = None

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def is_series(self) -> bool:
        return self.rrule is not None

    def to_json(self) -> dict[str, Any]:
        recurrence = None
        if self.rrule is not None:
            recurrence = {
                "rrule": self.rrule,
                "exdates": [format_instant(d) for d in sorted(self.exdates)],
            }
        return {
            "_id": self.id,
            "organization": self.organization,
            "resourceId": self.resource_id,
            "start": {"dateTime": format_instant(self.start)},
            "end": {"dateTime": format_instant(self.end)},
            "timezone": self.time_zone,
            "summary": self.summary,
            "description": self.description,
            "member": self.member,
            "members": list(self.members),
            "visitors": list(self.visitors),
            "recurrence": recurrence,
            "parent": self.parent,
            "originalStart": format_instant(self.original_start) if self.original_start else None,
            "tentative": self.tentative,
            "canceled": self.canceled,
            "cancelReason": self.cancel_reason.value if self.cancel_reason else None,
            "canceledAt": format_instant(self.canceled_at) if self.canceled_at else None,
            "canceledBy": self.canceled_by,
            "checkedIn": self.checked_in_at is not None,
            "checkedInAt": format_instant(self.checked_in_at) if self.checked_in_at else None,
            "source": self.source,
            "reference": self.reference,
            "createdAt": format_instant(self.created_at),
            "modifiedAt": format_instant(self.modified_at),
            "createdBy": self.created_by,
            "modifiedBy": self.modified_by,
        }
