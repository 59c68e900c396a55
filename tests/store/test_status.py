"""What `roomd status` and /readyz read: per-room round outcome, outbox depth and age, and whether
the database takes writes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import roomd.store.store as store_module
from roomd.store import Store, StoreError

from .conftest import OTHER_ROOM, ROOM, T0, Clock


async def test_round_outcomes_show_streaks_and_the_last_success(store: Store, clock: Clock) -> None:
    async with store.write(ROOM) as tx:
        await tx.record_round(ok=True)
    success_at = clock.now
    for _ in range(2):
        clock.advance(60)
        async with store.write(ROOM) as tx:
            await tx.record_round(ok=False, error="Graph answered 401: token expired")

    [status] = await store.room_statuses()
    assert status.room == ROOM
    assert status.last_success_at == success_at
    assert status.last_round_at == clock.now
    assert status.consecutive_failures == 2
    assert status.rounds_total == 3
    assert status.last_error == "Graph answered 401: token expired"

    clock.advance(60)
    async with store.write(ROOM) as tx:
        await tx.record_round(ok=True)
    [status] = await store.room_statuses()
    assert (status.last_success_at, status.consecutive_failures, status.last_error) == (
        clock.now,
        0,
        None,
    )


async def test_outbox_depth_and_oldest_are_per_room(store: Store, clock: Clock) -> None:
    async with store.write(ROOM) as tx:
        await tx.enqueue("a-1", "graph.create", {})
    clock.advance(10)
    async with store.write(ROOM) as tx:
        await tx.enqueue("a-2", "graph.update", {})
        await tx.mark_outbox("a-1", state="done")
        await tx.enqueue("a-3", "graph.update", {})
    async with store.write(OTHER_ROOM) as tx:
        await tx.record_round(ok=True)

    statuses = {s.room: s for s in await store.room_statuses()}
    assert statuses[ROOM].outbox_depth == 2
    assert statuses[ROOM].oldest_pending_at == T0 + timedelta(seconds=10)
    assert statuses[OTHER_ROOM].outbox_depth == 0
    assert statuses[OTHER_ROOM].oldest_pending_at is None


async def test_audit_answers_why_a_booking_looks_like_this(store: Store, clock: Clock) -> None:
    async with store.write(ROOM) as tx:
        await tx.audit("h-1", "hybrid", "create", "new meeting AAMk-1 in the room's calendar")
        await tx.audit("h-2", "hybrid", "create", "new meeting AAMk-2 in the room's calendar")
    clock.advance(5)
    async with store.write(ROOM) as tx:
        await tx.audit("h-1", "hybrid", "cancel", "meeting deleted in Outlook; kept as canceled")

    trail = await store.audit_for(ROOM, "h-1")
    assert [(e.action, e.at) for e in trail] == [("cancel", clock.now), ("create", T0)]
    assert len(await store.audit_for(ROOM, limit=2)) == 2
    assert await store.audit_for(OTHER_ROOM, "h-1") == []


async def test_check_writable_passes_on_a_healthy_store(store: Store) -> None:
    await store.check_writable()


async def test_check_writable_fails_when_the_writer_is_stuck(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "WRITABLE_CHECK_TIMEOUT_S", 0.05)
    stuck = asyncio.Event()
    release = asyncio.Event()

    async def stuck_round() -> None:
        async with store.write(ROOM):
            stuck.set()
            await release.wait()

    task = asyncio.create_task(stuck_round())
    await stuck.wait()
    try:
        with pytest.raises(StoreError, match="writer has been busy"):
            await store.check_writable()
    finally:
        release.set()
        await task
    await store.check_writable()


async def test_forgetting_a_room_removes_only_that_room(store: Store) -> None:
    for room in (ROOM, OTHER_ROOM):
        async with store.write(room) as tx:
            await tx.enqueue("i-1", "graph.create", {})
            await tx.audit("h-1", "hybrid", "create", "test")
            await tx.save_hybrid_cursor(T0)
    await store.forget_room(ROOM)
    assert [s.room for s in await store.room_statuses()] == [OTHER_ROOM]
    assert await store.outbox_item(ROOM, "i-1") is None
    assert await store.get_hybrid_cursor(ROOM) is None
    assert await store.audit_for(OTHER_ROOM) != []
    cursor = await store.get_hybrid_cursor(OTHER_ROOM)
    assert cursor is not None and cursor.modified_since == T0


async def test_reprs_show_identifiers_not_tokens_or_payloads(store: Store) -> None:
    token = "https://graph.example/delta?$deltatoken=SECRET-LOOKING-STATE"
    async with store.write(ROOM) as tx:
        await tx.save_delta(T0, T0 + timedelta(days=1), token)
        await tx.enqueue("i-1", "graph.create", {"body": "private agenda"})
        text = repr(tx) + repr(store)
    delta = await store.get_delta(ROOM)
    item = await store.outbox_item(ROOM, "i-1")
    text += repr(delta) + repr(item)
    assert "SECRET-LOOKING-STATE" not in text
    assert "private agenda" not in text
    assert ROOM in text and "i-1" in text
