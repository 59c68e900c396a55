"""The simulated tenant's directory: user and room mailboxes, room lists, CalendarProcessing.

Built from ``roomd.sim.tenant.Tenant`` (the demo world shared with the Hybrid simulator). A room
mailbox is a user object too (graph-behaviour.md 1.1), so ``/users/{id|upn}`` resolves both.
CalendarProcessing defaults follow Set-CalendarProcessing (MicrosoftDocs/office-docs-powershell
``exchange/exchange-ps/exchange/Set-CalendarProcessing.md``; graph-behaviour.md 6.1).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from roomd.sim.tenant import Tenant

AUTOMATE_VALUES = ("AutoAccept", "AutoUpdate", "None")

# Place data for the demo rooms, as a facilities team sets it with Set-Place (place-list.md's
# room-list.json sample shows such a configured room; rooms-in-roomlist.json an unconfigured one,
# all null). Keyed by the room's IANA time zone; a room elsewhere stays unconfigured (null).
SITES: dict[str, tuple[dict[str, str], dict[str, float]]] = {
    "Europe/London": (
        {
            "street": "2 Kingdom Street",
            "city": "London",
            "state": "England",
            "postalCode": "W2 6BD",
            "countryOrRegion": "United Kingdom",
        },
        {"latitude": 51.5194, "longitude": -0.1838},
    ),
    "America/New_York": (
        {
            "street": "11 Times Square",
            "city": "New York",
            "state": "NY",
            "postalCode": "10036",
            "countryOrRegion": "USA",
        },
        {"latitude": 40.7566, "longitude": -73.9898},
    ),
}


@dataclass
class CalendarProcessing:
    """The room's Resource Booking Assistant policy; names as in Set-CalendarProcessing."""

    AutomateProcessing: str = "AutoAccept"
    AddOrganizerToSubject: bool = True
    DeleteSubject: bool = True
    DeleteComments: bool = True
    RemovePrivateProperty: bool = True
    AllowConflicts: bool = False
    ConflictPercentageAllowed: int = 0
    MaximumConflictInstances: int = 0
    AllowRecurringMeetings: bool = True
    BookingWindowInDays: int = 180
    EnforceSchedulingHorizon: bool = True
    MaximumDurationInMinutes: int = 1440
    RemoveCanceledMeetings: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        """Apply Set-CalendarProcessing-style changes; unknown names or wrong types are refused."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(
                    f"CalendarProcessing has no setting {name!r} (known: {', '.join(known)})"
                )
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"CalendarProcessing.{name} must be true/false, got {value!r}")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"CalendarProcessing.{name} must be an integer, got {value!r}")
                if name == "BookingWindowInDays" and not 0 <= value <= 1080:
                    raise ValueError(f"CalendarProcessing.{name} must be 0-1080, got {value}")
            elif name == "AutomateProcessing" and value not in AUTOMATE_VALUES:
                raise ValueError(
                    f"CalendarProcessing.AutomateProcessing must be one of {AUTOMATE_VALUES},"
                    f" got {value!r}"
                )
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Mailbox:
    id: str  # the user object id (GUID)
    email: str  # also the userPrincipalName
    display_name: str
    is_room: bool = False
    time_zone: str = "UTC"  # IANA
    capacity: int | None = None
    building: str | None = None
    processing: CalendarProcessing = field(default_factory=CalendarProcessing)

    def address(self) -> dict[str, str]:
        return {"name": self.display_name, "address": self.email}

    def place(self) -> dict[str, Any]:
        """Set-Place data for a room of a known site (``SITES``); {} when unconfigured."""
        site = SITES.get(self.time_zone)
        if not self.is_room or site is None:
            return {}
        label = self.display_name.split()[-1]
        digits = "".join(c for c in label if c.isdigit())
        return {
            "address": dict(site[0]),
            "geoCoordinates": dict(site[1]),
            "label": label,
            "floorNumber": int(digits[:1]) if digits else 0,
            "displayDevice": "Surface Hub",
        }


@dataclass
class RoomList:
    id: str
    email: str
    display_name: str
    rooms: list[str] = field(default_factory=list)  # mailbox emails (lower-case)


def _guid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"roomd-sim-graph:{seed}"))


class Directory:
    """Mailboxes by id and by address (case-insensitive), and the room lists."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self._by_key: dict[str, Mailbox] = {}
        self.mailboxes: list[Mailbox] = []
        self.room_lists: list[RoomList] = []
        room_list = RoomList(
            _guid(tenant.room_list_email).upper(), tenant.room_list_email, tenant.room_list_name
        )
        for room in tenant.rooms:
            processing = CalendarProcessing()
            if room.requires_approval:
                # Rooms needing approval hold requests as tentative for a delegate
                # (AutomateProcessing AutoUpdate, graph-behaviour.md 6.1); roomd approves.
                processing.AutomateProcessing = "AutoUpdate"
            self.add(
                Mailbox(
                    _guid(room.email),
                    room.email,
                    room.display_name,
                    is_room=True,
                    time_zone=room.time_zone,
                    capacity=room.capacity,
                    building=room.building,
                    processing=processing,
                )
            )
            room_list.rooms.append(room.email.lower())
        for person in tenant.people:
            if person.has_mailbox:
                self.add(Mailbox(_guid(person.email), person.email, person.display_name))
        self.room_lists.append(room_list)

    def add(self, mailbox: Mailbox) -> Mailbox:
        if mailbox.email.lower() in self._by_key:
            raise ValueError(f"mailbox {mailbox.email!r} already exists")
        self.mailboxes.append(mailbox)
        self._by_key[mailbox.email.lower()] = mailbox
        self._by_key[mailbox.id.lower()] = mailbox
        return mailbox

    def add_room(
        self, email: str, display_name: str, time_zone: str = "UTC", capacity: int | None = None
    ) -> Mailbox:
        room = self.add(Mailbox(_guid(email), email, display_name, True, time_zone, capacity, None))
        if self.room_lists:
            self.room_lists[0].rooms.append(email.lower())
        return room

    def add_user(self, email: str, display_name: str) -> Mailbox:
        return self.add(Mailbox(_guid(email), email, display_name))

    def find(self, key: str) -> Mailbox | None:
        """By object id or by address/UPN, case-insensitively."""
        return self._by_key.get(key.strip().lower())

    def rooms(self) -> list[Mailbox]:
        return [m for m in self.mailboxes if m.is_room]
