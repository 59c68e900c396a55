"""Rooms (``resources``) and people (``members``): what roomd reads to map rooms and organizers."""

from __future__ import annotations

from .conftest import Api

ENVELOPE = {"results", "cursorNext", "cursorPrev"}


async def test_resources_list_rooms_with_their_time_zone(api: Api) -> None:
    """``GET resources`` must list rooms in the list envelope, each with ``_id``, ``name`` and an
    IANA ``timezone`` (roomd evaluates a room's recurrences in it)."""
    answer = await api.get("/resources")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) >= ENVELOPE
    ids = {r["_id"] for r in body["results"]}
    assert {api.room_id, api.other_room_id} <= ids
    for room in body["results"]:
        assert room["name"]
        assert "/" in room["timezone"] or room["timezone"] == "UTC"


async def test_one_resource_by_id_and_an_unknown_one(api: Api) -> None:
    """``GET resources/{id}`` returns the room; an unknown id is a 404 with a JSON message."""
    found = await api.get(f"/resources/{api.room_id}")
    assert found.status_code == 200
    assert found.json()["_id"] == api.room_id
    missing = await api.get("/resources/000000000000000000000000")
    assert missing.status_code == 404
    assert "message" in missing.json()


async def test_members_are_found_by_email_whatever_its_case(api: Api) -> None:
    """``GET members?email=`` must find a member by address, case-insensitively (Exchange and
    people write addresses in any case); roomd maps a meeting's organizer this way."""
    member = (await api.get(f"/members/{api.member_id}")).json()
    assert "@" in member["email"]
    shouted = member["email"].upper()
    answer = await api.get("/members", params={"email": shouted})
    assert answer.status_code == 200
    assert [m["_id"] for m in answer.json()["results"]] == [api.member_id]


async def test_unknown_email_finds_no_member(api: Api) -> None:
    """An address nobody has gives an empty list (200), not an error: the organizer is external."""
    answer = await api.get("/members", params={"email": "nobody-here@example.invalid"})
    assert answer.status_code == 200
    assert answer.json()["results"] == []


async def test_unknown_member_id_is_404(api: Api) -> None:
    """``GET members/{id}`` for an id that does not exist is a 404."""
    assert (await api.get("/members/000000000000000000000000")).status_code == 404
