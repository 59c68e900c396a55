"""Users, rooms and room lists: ``/users``, ``/places/microsoft.graph.room``, room lists and the
rooms in a list (contrib api-reference/v1.0/api/user-get.md, place-list.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from roomd.sim.graph.directory import Mailbox
from roomd.sim.graph.wire import JSON, GraphError, GraphRequest, GraphResponse, forbidden

if TYPE_CHECKING:
    from roomd.sim.graph.api import GraphApi

PLACE_ROLES = {"Place.Read.All", "Place.ReadWrite.All"}
USER_ROLES = {"User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All"}


class DirectoryRoutes:
    def __init__(self, api: GraphApi) -> None:
        self.api = api

    def register(self) -> None:
        r = self.api.route
        r("GET", r"/users/(?P<user>[^/]+)", self.get_user)
        r("GET", r"/users", self.list_users)
        r("GET", r"/places/microsoft\.graph\.room", self.list_rooms)
        r("GET", r"/places/microsoft\.graph\.roomlist", self.list_room_lists)
        r("GET", r"/places/(?P<list>[^/]+)/microsoft\.graph\.roomlist/rooms", self.rooms_in_list)

    def _user_json(self, mbx: Mailbox) -> JSON:
        return {
            "businessPhones": [],
            "displayName": mbx.display_name,
            "givenName": None if mbx.is_room else mbx.display_name.split(" ")[0],
            "jobTitle": None,
            "mail": mbx.email,
            "mobilePhone": None,
            "officeLocation": mbx.building,
            "preferredLanguage": None,
            "surname": None if mbx.is_room else mbx.display_name.split(" ")[-1],
            "userPrincipalName": mbx.email,
            "id": mbx.id,
        }

    async def get_user(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """GET /users/{id | userPrincipalName} (user-get.md); needs User.Read.All."""
        if not req.roles & USER_ROLES:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        key = unquote(m.group("user"))
        mbx = self.api.directory.find(key)
        if mbx is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        body = {
            "@odata.context": f"{self.api.base_url}/$metadata#users/$entity",
            **self._user_json(mbx),
        }
        return GraphResponse(200, _select_any(body, req.q("$select")))

    async def list_users(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """GET /users (user-list.md): ``$select``, ``$top`` paging, and ``$count=true`` which,
        like every advanced directory query, needs ``ConsistencyLevel: eventual``
        (concepts/aad-advanced-queries.md; without it 400 "$count is not currently supported.",
        microsoft-graph-docs #13226); the json-batching.md sample shows ``@odata.count``."""
        if not req.roles & USER_ROLES:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        select = req.q("$select")
        items = [_select_any(self._user_json(x), select) for x in self.api.directory.mailboxes]
        ctx = f"{self.api.base_url}/$metadata#users"
        if select:
            ctx += f"({select})"
        body = self.api.page(req, items, ctx, default_top=100)
        if (req.q("$count") or "").lower() == "true":
            if req.headers.get("consistencylevel", "").lower() != "eventual":
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "$count is not currently supported.",
                )
            body = {"@odata.context": ctx, "@odata.count": len(items), **body}
        return GraphResponse(200, body)

    def _room_json(self, mbx: Mailbox) -> JSON:
        room: JSON = {
            "id": mbx.id.upper(),
            "emailAddress": mbx.email,
            "displayName": mbx.display_name,
            "address": None,
            "geoCoordinates": None,
            "phone": "",
            "nickname": mbx.display_name,
            "label": None,
            "capacity": mbx.capacity,
            "building": mbx.building,
            "floorNumber": None,
            "isManaged": True,
            "isWheelChairAccessible": False,
            "bookingType": "standard",
            "tags": [],
            "audioDeviceName": None,
            "videoDeviceName": None,
            "displayDevice": None,
        }
        room.update(mbx.place())
        return room

    async def list_rooms(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """GET /places/microsoft.graph.room (place-list.md); default page size 100."""
        if not req.roles & PLACE_ROLES:
            raise forbidden()
        items = [self._room_json(r) for r in self.api.directory.rooms()]
        ctx = f"{self.api.base_url}/$metadata#places/microsoft.graph.room"
        return GraphResponse(200, self.api.page(req, items, ctx, default_top=100))

    async def list_room_lists(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        if not req.roles & PLACE_ROLES:
            raise forbidden()
        items = []
        for rl in self.api.directory.room_lists:
            # the list's address is its building's: the first of its rooms with one
            places = [mbx.place() for mbx in map(self.api.directory.find, rl.rooms) if mbx]
            address = next((p["address"] for p in places if p), None)
            items.append(
                {
                    "id": rl.id,
                    "displayName": rl.display_name,
                    "address": address,
                    "geocoordinates": None,
                    "phone": None,
                    "emailAddress": rl.email,
                }
            )
        ctx = f"{self.api.base_url}/$metadata#places/microsoft.graph.roomList"
        return GraphResponse(200, self.api.page(req, items, ctx, default_top=100))

    async def rooms_in_list(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """Rooms of a list, addressed by the list's emailAddress, not its id (place-list.md)."""
        if not req.roles & PLACE_ROLES:
            raise forbidden()
        key = unquote(m.group("list")).lower()
        found = next((rl for rl in self.api.directory.room_lists if rl.email.lower() == key), None)
        if found is None:
            raise GraphError(
                404,
                "ErrorItemNotFound",
                f"The room list '{unquote(m.group('list'))}' was not found.",
            )
        items = []
        for email in found.rooms:
            mbx = self.api.directory.find(email)
            if mbx is not None:
                room = self._room_json(mbx)
                room["floorLabel"] = None
                room["displayDeviceName"] = room.pop("displayDevice")
                room.pop("isManaged")
                items.append(room)
        ctx = (
            f"{self.api.base_url}/$metadata#places('{quote(found.email)}')"
            "/microsoft.graph.roomList/rooms"
        )
        return GraphResponse(200, self.api.page(req, items, ctx, default_top=100))


def _select_any(item: JSON, select: str | None) -> JSON:
    if not select:
        return item
    wanted = {s.strip() for s in select.split(",")}
    return {k: v for k, v in item.items() if k in wanted or k.startswith("@odata") or k == "id"}
