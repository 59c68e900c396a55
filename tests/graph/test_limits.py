"""The concurrency limit that keeps roomd at 4 requests per mailbox (throttling.md)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from roomd.graph.http import Slots, mailbox_of, user_path


async def test_slots_never_exceed_capacity_and_serve_in_order() -> None:
    slots = Slots(4)
    running = 0
    peak = 0
    order: list[int] = []

    async def job(i: int, n: int) -> None:
        nonlocal running, peak
        taken = await slots.acquire(n)
        order.append(i)
        running += taken
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= taken
        slots.release(taken)

    await asyncio.gather(*(job(i, 1 + i % 4) for i in range(40)))
    assert peak <= 4 and slots.peak <= 4
    assert slots.in_use == 0
    assert order == sorted(order)  # first come, first served: a big request is not starved


async def test_cancelled_waiter_gives_back_nothing_it_did_not_take() -> None:
    slots = Slots(1)
    await slots.acquire(1)
    waiter = asyncio.create_task(slots.acquire(1))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    slots.release(1)
    assert slots.in_use == 0
    assert await slots.acquire(1) == 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=30))
def test_slots_invariant_for_any_mix(sizes: list[int]) -> None:
    async def main() -> None:
        slots = Slots(4)

        async def job(n: int) -> None:
            taken = await slots.acquire(n)
            assert slots.in_use <= slots.capacity
            await asyncio.sleep(0)
            slots.release(taken)

        await asyncio.gather(*(job(n) for n in sizes))
        assert slots.in_use == 0 and slots.peak <= 4

    asyncio.run(main())


def test_paths_are_encoded_and_mailboxes_recognised() -> None:
    path = user_path("Room-4A@contoso.com", "events", "AAMk/x+y=")
    assert path == "/users/Room-4A@contoso.com/events/AAMk%2Fx%2By="
    assert mailbox_of("https://g/v1.0" + path) == "room-4a@contoso.com"
    assert mailbox_of("/places/microsoft.graph.room") is None


@given(st.text(min_size=1), st.text(min_size=1))
def test_transaction_ids_are_stable_per_key_and_distinct_across_keys(a: str, b: str) -> None:
    import uuid

    from roomd.graph import transaction_id_for

    assert transaction_id_for(a) == transaction_id_for(a)
    assert uuid.UUID(transaction_id_for(a)).version == 5
    assert (transaction_id_for(a) == transaction_id_for(b)) == (a == b)


async def test_a_cancelled_waiter_stays_cancelled_when_a_slot_frees_in_the_same_tick() -> None:
    """Cancellation must reach the caller as CancelledError (asyncio.timeout, shutdown)."""
    import asyncio

    from roomd.graph.http import Slots

    slots = Slots(1)
    await slots.acquire(1)
    waiter = asyncio.ensure_future(slots.acquire(1))
    await asyncio.sleep(0)
    waiter.cancel()
    slots.release(1)
    try:
        await waiter
    except asyncio.CancelledError:
        pass
    else:  # pragma: no cover - the bug this guards against
        raise AssertionError("the cancelled acquire returned a slot")
    assert slots.in_use == 0
    assert await slots.acquire(1) == 1


async def test_a_write_waiting_for_a_slot_goes_ahead_of_reads_that_queued_before_it() -> None:
    slots = Slots(1)
    await slots.acquire(1)  # a read in flight
    order: list[str] = []

    async def wait(name: str, first: bool) -> None:
        taken = await slots.acquire(1, first=first)
        order.append(name)
        slots.release(taken)

    reads = [asyncio.create_task(wait(f"read{i}", False)) for i in range(3)]
    await asyncio.sleep(0)
    write = asyncio.create_task(wait("write", True))
    await asyncio.sleep(0)
    slots.release(1)
    await asyncio.gather(write, *reads)
    assert order == ["write", "read0", "read1", "read2"]


async def test_a_cancelled_write_waiter_lets_the_reads_through() -> None:
    slots = Slots(1)
    await slots.acquire(1)
    write = asyncio.create_task(slots.acquire(1, first=True))
    read = asyncio.create_task(slots.acquire(1))
    await asyncio.sleep(0)
    write.cancel()
    await asyncio.gather(write, return_exceptions=True)
    slots.release(1)
    assert await read == 1 and slots.in_use == 1
