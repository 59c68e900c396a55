"""The daemon's round slots: a bounded number of rounds at once, rooms with a change first."""

from __future__ import annotations

import asyncio

import pytest

from roomd.daemon import RoundSlots


async def run_in_order(slots: RoundSlots, plan: list[tuple[str, bool]]) -> list[str]:
    """Hold the only slot, queue ``plan`` (room, urgent) in order, then let them through."""
    order: list[str] = []

    async def round_of(room: str, urgent: bool) -> None:
        async with slots.slot(room, urgent=urgent):
            order.append(room)

    async with slots.slot("first"):
        tasks = [asyncio.create_task(round_of(room, urgent)) for room, urgent in plan]
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return order


async def test_rounds_wait_their_turn_in_order_of_arrival() -> None:
    order = await run_in_order(RoundSlots(1), [("a", False), ("b", False), ("c", False)])
    assert order == ["a", "b", "c"]


async def test_a_room_with_a_change_goes_ahead_of_rooms_due_a_poll() -> None:
    order = await run_in_order(RoundSlots(1), [("a", False), ("b", False), ("hook", True)])
    assert order == ["hook", "a", "b"]


async def test_a_queued_poll_is_hurried_when_its_room_gets_a_change() -> None:
    slots = RoundSlots(1)
    order: list[str] = []

    async def round_of(room: str) -> None:
        async with slots.slot(room):
            order.append(room)

    async with slots.slot("first"):
        tasks = [asyncio.create_task(round_of(room)) for room in ("a", "b", "c")]
        await asyncio.sleep(0)
        slots.hurry("c")
    await asyncio.gather(*tasks)
    assert order == ["c", "a", "b"]


async def test_never_more_rounds_at_once_than_the_capacity_and_a_cancelled_wait_gives_back() -> (
    None
):
    slots = RoundSlots(2)
    running = peak = 0

    async def round_of(room: str) -> None:
        nonlocal running, peak
        async with slots.slot(room, urgent=room.endswith("!")):
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    tasks = [asyncio.create_task(round_of(f"room-{i}{'!' * (i % 3 == 0)}")) for i in range(12)]
    await asyncio.sleep(0)
    tasks[5].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert peak == 2
    assert sum(isinstance(r, asyncio.CancelledError) for r in results) == 1
    async with asyncio.timeout(1):  # both slots are free again
        async with slots.slot("x"), slots.slot("y"):
            pass


@pytest.mark.parametrize("urgent", [False, True])
async def test_a_free_slot_is_taken_at_once(urgent: bool) -> None:
    slots = RoundSlots(1)
    async with asyncio.timeout(1), slots.slot("a", urgent=urgent):
        pass
