"""The default demo world shared by both simulators: one company, its rooms and its people.

The Graph simulator turns it into a tenant (room mailboxes, a room list, user mailboxes); the Hybrid
simulator into an organization (resources with booking policies, members). Both read the same
table so that the rooms line up, as they would for a real customer whose facilities team mapped
Hybrid rooms to Exchange room mailboxes. Plain data: no behaviour lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DOMAIN = "contoso.com"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
HYBRID_ORG = "contoso"


@dataclass(frozen=True)
class Person:
    display_name: str
    email: str
    has_mailbox: bool = True  # False: a Hybrid member with no Exchange mailbox (a visitor, say)


@dataclass(frozen=True)
class Room:
    hybrid_id: str  # the Hybrid resource id (24 hex digits, like OfficeRnD's ObjectIds)
    email: str  # the Exchange room mailbox
    display_name: str
    time_zone: str  # IANA
    capacity: int
    building: str
    requires_approval: bool = False
    requires_checkin: bool = False
    checkin_window_minutes: int = 15


@dataclass(frozen=True)
class Tenant:
    domain: str = DOMAIN
    tenant_id: str = TENANT_ID
    hybrid_org: str = HYBRID_ORG
    room_list_email: str = f"building-1@{DOMAIN}"
    room_list_name: str = "Building 1"
    rooms: tuple[Room, ...] = field(default_factory=tuple)
    people: tuple[Person, ...] = field(default_factory=tuple)


def default_tenant() -> Tenant:
    """Four rooms (one needs approval, one check-in, one in another time zone) and people."""
    rooms = (
        Room(
            "64f0a1b2c3d4e5f6a7b8c901",
            f"room-4a@{DOMAIN}",
            "Room 4A",
            "Europe/London",
            8,
            "Building 1",
        ),
        Room(
            "64f0a1b2c3d4e5f6a7b8c902",
            f"room-4b@{DOMAIN}",
            "Room 4B",
            "Europe/London",
            4,
            "Building 1",
            requires_approval=True,
        ),
        Room(
            "64f0a1b2c3d4e5f6a7b8c903",
            f"boardroom@{DOMAIN}",
            "Boardroom",
            "Europe/London",
            16,
            "Building 1",
            requires_checkin=True,
        ),
        Room(
            "64f0a1b2c3d4e5f6a7b8c904",
            f"harbour@{DOMAIN}",
            "Harbour",
            "America/New_York",
            6,
            "Building 1",
        ),
    )
    people = (
        Person("Adele Vance", f"adelev@{DOMAIN}"),
        Person("Alex Wilber", f"alexw@{DOMAIN}"),
        Person("Megan Bowen", f"meganb@{DOMAIN}"),
        Person("Lynne Robbins", f"lynner@{DOMAIN}"),
        Person("Nestor Wilke", f"nestorw@{DOMAIN}"),
        Person("Pat Visitor", "pat@fabrikam.com", has_mailbox=False),
    )
    return Tenant(rooms=rooms, people=people)
