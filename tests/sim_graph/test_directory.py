"""Users, rooms and room lists (issue 3 item 2; place-list.md, user-get.md)."""

from __future__ import annotations

from .conftest import ROOM, World, fixture, same_shape


async def test_rooms_list_matches_the_documented_shape(world: World) -> None:
    """place-list.md: GET /places/microsoft.graph.room (room-list.json)."""
    r = await world.graph.get("/places/microsoft.graph.room")
    body = r.json()
    assert not same_shape(body, fixture("room-list.json"))
    assert {x["emailAddress"] for x in body["value"]} >= {ROOM, "harbour@contoso.com"}


async def test_room_lists_and_rooms_in_a_list(world: World) -> None:
    """place-list.md: room lists; rooms of a list addressed by the list's emailAddress."""
    lists = (await world.graph.get("/places/microsoft.graph.roomlist")).json()
    assert not same_shape(lists, fixture("roomlist-list.json"))
    email = lists["value"][0]["emailAddress"]
    rooms = (await world.graph.get(f"/places/{email}/microsoft.graph.roomlist/rooms")).json()
    assert not same_shape(rooms, fixture("rooms-in-roomlist.json"))
    assert ROOM in {x["emailAddress"] for x in rooms["value"]}
    by_id = await world.graph.get(
        f"/places/{lists['value'][0]['id']}/microsoft.graph.roomlist/rooms"
    )
    assert by_id.status_code == 404  # "must specify the room list by its emailAddress"


async def test_user_by_upn_and_by_id(world: World) -> None:
    """A room mailbox is a user object: /users/{id | userPrincipalName} (graph-behaviour.md 1.1)."""
    by_upn = (await world.graph.get(f"/users/{ROOM}")).json()
    by_id = (await world.graph.get(f"/users/{by_upn['id']}")).json()
    upper = (await world.graph.get(f"/users/{ROOM.upper()}")).json()
    assert by_upn["id"] == by_id["id"] == upper["id"]
    assert by_upn["mail"] == ROOM
    missing = await world.graph.get("/users/ghost@contoso.com")
    assert missing.status_code == 404


async def test_places_need_place_read_all(world: World) -> None:
    client_id, _ = world.sim.identity.register_secret_app("calendar-only", ("Calendars.Read",))
    token = world.sim.control.token(client_id)
    r = await world.graph.get(
        "/places/microsoft.graph.room", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 403
    w = await world.graph.post(
        f"/users/{ROOM}/events", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert w.status_code == 403  # writes need Calendars.ReadWrite
