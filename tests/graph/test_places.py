"""The tenant's rooms and room lists through roomd's Graph client (``roomd rooms`` reads them):
place-list.md's rooms, room lists and the rooms of a list, and the 403 without Place.Read.All."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomd.graph import AccessDenied, GraphClient
from roomd.sim.graph import GraphSimulator

from .conftest import ROOM, config_for


async def test_rooms_come_with_their_capacity_and_building(graph: GraphClient) -> None:
    rooms = {r.email: r for r in await graph.list_rooms()}
    assert set(rooms) == {
        ROOM,
        "room-4b@contoso.com",
        "boardroom@contoso.com",
        "harbour@contoso.com",
    }
    assert (rooms[ROOM].display_name, rooms[ROOM].capacity, rooms[ROOM].building) == (
        "Room 4A",
        8,
        "Building 1",
    )


async def test_a_room_list_names_its_building_and_holds_its_rooms(graph: GraphClient) -> None:
    lists = await graph.list_room_lists()
    assert [(rl.email, rl.display_name) for rl in lists] == [
        ("building-1@contoso.com", "Building 1")
    ]
    members = {r.email for r in await graph.rooms_in_list(lists[0].email)}
    assert ROOM in members and len(members) == 4


async def test_an_unconfigured_room_has_no_capacity_or_building(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    sim.control.add_room("pod-7@contoso.com", "Pod 7")
    pod = next(r for r in await graph.list_rooms() if r.email == "pod-7@contoso.com")
    assert (pod.display_name, pod.capacity, pod.building) == ("Pod 7", None, None)


async def test_without_place_read_all_listing_rooms_is_access_denied(
    sim: GraphSimulator, ca_bundle: Path
) -> None:
    client_id, secret = sim.identity.register_secret_app("calendars-only", ("Calendars.ReadWrite",))
    config = config_for(sim, ca_bundle, client_id=client_id, client_secret=secret)
    async with GraphClient(config) as graph:
        with pytest.raises(AccessDenied) as denied:
            await graph.list_rooms()
    assert denied.value.status == 403 and denied.value.code == "ErrorAccessDenied"


async def test_more_rooms_than_a_page_are_all_listed(
    sim: GraphSimulator, graph: GraphClient
) -> None:
    """Graph pages places 100 at a time (place-list.md); the client follows @odata.nextLink."""
    for n in range(110):
        sim.control.add_room(f"desk-room-{n}@contoso.com", f"Room {n}")
    rooms = await graph.list_rooms()
    assert len(rooms) == 114 and len({r.email for r in rooms}) == 114
