"""The tenant's rooms and room lists, as Graph's places API describes them.

``GET /places/microsoft.graph.room`` lists every room mailbox; ``GET
/places/microsoft.graph.roomlist`` the room lists, and ``/places/{list email}/
microsoft.graph.roomlist/rooms`` the rooms of one list (a list is addressed by its emailAddress,
not its id). All need the application permission ``Place.Read.All`` (contrib
api-reference/v1.0/api/place-list.md; resources/room.md, resources/roomlist.md).

Place data (capacity, building, floor) is whatever the facilities team set with ``Set-Place``;
an unconfigured room has nulls there, so every field but the address is optional. The parsers
are lenient on purpose: a room with an odd field is still listed, with that field unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from roomd.graph.http import GraphHttp

ROOMS_PATH = "/places/microsoft.graph.room"
ROOM_LISTS_PATH = "/places/microsoft.graph.roomlist"


@dataclass(frozen=True)
class GraphRoom:
    """A room mailbox as ``microsoft.graph.room``."""

    email: str
    display_name: str
    capacity: int | None = None
    building: str | None = None
    floor: int | None = None


@dataclass(frozen=True)
class GraphRoomList:
    """A room list (``microsoft.graph.roomList``): usually one per building."""

    email: str
    display_name: str


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value.strip() or None if isinstance(value, str) else None


def _count(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_room(data: Mapping[str, Any]) -> GraphRoom | None:
    """One room, or None when it has no email address (nothing roomd could sync)."""
    email = _text(data, "emailAddress")
    if email is None:
        return None
    return GraphRoom(
        email=email,
        display_name=_text(data, "displayName") or email,
        capacity=_count(data, "capacity"),
        building=_text(data, "building"),
        floor=_count(data, "floorNumber"),
    )


def parse_room_list(data: Mapping[str, Any]) -> GraphRoomList | None:
    email = _text(data, "emailAddress")
    if email is None:
        return None
    return GraphRoomList(email=email, display_name=_text(data, "displayName") or email)


class Places:
    """Read-only calls on ``/places``; pages are followed through ``@odata.nextLink``."""

    def __init__(self, http: GraphHttp) -> None:
        self._http = http

    async def rooms(self) -> list[GraphRoom]:
        items = await self._http.collect(ROOMS_PATH, mailbox=None)
        return [room for room in map(parse_room, items) if room is not None]

    async def room_lists(self) -> list[GraphRoomList]:
        items = await self._http.collect(ROOM_LISTS_PATH, mailbox=None)
        return [rl for rl in map(parse_room_list, items) if rl is not None]

    async def rooms_in_list(self, room_list_email: str) -> list[GraphRoom]:
        path = f"/places/{quote(room_list_email, safe='@')}/microsoft.graph.roomlist/rooms"
        items = await self._http.collect(path, mailbox=None)
        return [room for room in map(parse_room, items) if room is not None]
