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
