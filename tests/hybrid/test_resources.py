"""Hybrid's resources with what ``roomd rooms`` matches them by: capacity, office and type."""

from __future__ import annotations

from roomd.hybrid import HybridClient
from roomd.hybrid.model import parse_resource

from .conftest import ROOM_4A


async def test_resources_carry_capacity_office_and_type(hybrid: HybridClient) -> None:
    resources = {r.id: r for r in await hybrid.list_resources()}
    room = resources[ROOM_4A]
    assert (room.name, room.capacity, room.kind) == ("Room 4A", 8, "meeting_room")
    assert room.office and len({r.office for r in resources.values()}) == 1  # one building


def test_a_capacity_roomd_cannot_read_is_unknown_not_an_error() -> None:
    for odd in ("eight", True, 8.5, None):
        assert parse_resource({"_id": "r1", "name": "Pod", "capacity": odd}).capacity is None
    assert parse_resource({"_id": "r1", "capacity": 12.0}).capacity == 12
