"""Server timestamps: strictly increasing by default; coarse and repeating on request."""

from __future__ import annotations

from datetime import timedelta

from roomd.sim.hybrid import HybridSimulator

from .conftest import NOW, ROOM_4A, Client


async def test_writes_in_the_same_instant_still_get_increasing_modified_at(
    sim: HybridSimulator, client: Client
) -> None:
    """The clock is frozen, yet every write gets a later ``modifiedAt`` than the one before."""
    stamps = [
        (await client.book(ROOM_4A, NOW + timedelta(days=1, hours=h))).json()["modifiedAt"]
        for h in range(5)
    ]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5


async def test_coarse_timestamps_repeat_and_a_gte_query_sees_all_of_them(
    sim: HybridSimulator, client: Client
) -> None:
    """With ``coarse_timestamps`` writes share a whole-second ``modifiedAt``, as in real systems;
    ``modifiedAt[$gte]`` of that second returns every one of them (the client's overlap)."""
    sim.control.set_faults(coarse_timestamps=1)
    made = [(await client.book(ROOM_4A, NOW + timedelta(days=1, hours=h))).json() for h in range(3)]
    assert len({b["modifiedAt"] for b in made}) == 1
    assert made[0]["modifiedAt"].endswith(".000Z")
    listed = await client.call(
        "GET", "/bookings", params={"modifiedAt[$gte]": made[0]["modifiedAt"]}
    )
    assert {b["_id"] for b in listed.json()["results"]} == {b["_id"] for b in made}
    listed_gt = await client.call(
        "GET", "/bookings", params={"modifiedAt[$gt]": made[0]["modifiedAt"]}
    )
    assert listed_gt.json()["results"] == []


async def test_the_date_header_reads_the_simulated_clock(
    sim: HybridSimulator, client: Client
) -> None:
    """``Date`` and ``modifiedAt`` come from one clock, as on a real server."""
    from email.utils import parsedate_to_datetime

    sim.control.advance_clock(90.5)
    answer = await client.call("GET", "/bookings")
    assert parsedate_to_datetime(answer.headers["Date"]) == NOW + timedelta(seconds=90)


async def test_an_unsorted_listing_keeps_a_changed_booking_in_its_place(
    sim: HybridSimulator, client: Client
) -> None:
    """By default a changed booking moves to the end of the ``modifiedAt`` order; with
    ``unsorted_listing`` the listing is in creation order and it stays where it was."""
    made = [(await client.book(ROOM_4A, NOW + timedelta(days=1, hours=h))).json() for h in range(3)]
    ids = [b["_id"] for b in made]
    await client.call("PATCH", f"/bookings/{ids[0]}", json={"summary": "changed"})

    async def listed() -> list[str]:
        answer = await client.call("GET", "/bookings", params={"resourceId": ROOM_4A})
        return [b["_id"] for b in answer.json()["results"] if b["_id"] in ids]

    assert await listed() == [ids[1], ids[2], ids[0]]
    sim.control.set_faults(unsorted_listing=1)
    assert await listed() == ids
