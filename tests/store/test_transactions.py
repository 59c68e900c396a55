"""A write is all or nothing, one room at a time, one writer at a time, and readers never wait."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from datetime import timedelta
from pathlib import Path

import pytest

from roomd.store import Link, Store, StoreError, UnknownIntent, open_store

from .conftest import OTHER_ROOM, ROOM, T0, Clock

WINDOW = (T0, T0 + timedelta(days=180))


class Boom(Exception):
    pass


async def test_delta_link_and_planned_writes_commit_together(store: Store) -> None:
    async with store.write(ROOM) as tx:
        await tx.enqueue("i-1", "hybrid.create", {"subject": "Standup"})
        await tx.enqueue("i-2", "hybrid.cancel", {"id": "h-9"})
        await tx.save_delta(*WINDOW, "https://graph.example/delta?$deltatoken=page-2")

    delta = await store.get_delta(ROOM)
    assert delta is not None
    assert delta.delta_link.endswith("page-2")
    assert (delta.window_start, delta.window_end) == WINDOW
    due = await store.due_outbox(ROOM, T0, limit=10)
    assert [item.intent_id for item in due] == ["i-1", "i-2"]
    assert due[0].payload == {"subject": "Standup"}


async def test_a_round_stores_its_latest_link_after_every_page(store: Store) -> None:
    async with store.write(ROOM) as tx:
        await tx.enqueue("page-1-item", "hybrid.create", {})
        await tx.save_delta(*WINDOW, "https://graph.example/delta?$skiptoken=p2", complete=False)
    paging = await store.get_delta(ROOM)
    assert paging is not None and not paging.complete

    async with store.write(ROOM) as tx:
        await tx.save_delta(*WINDOW, "https://graph.example/delta?$deltatoken=d1")
    done = await store.get_delta(ROOM)
    assert done is not None and done.complete and done.delta_link.endswith("d1")

    async with store.write(ROOM) as tx:
        await tx.clear_delta()  # Graph answered 410 SyncStateNotFound: start over
    assert await store.get_delta(ROOM) is None


async def test_an_exception_in_the_block_leaves_nothing_behind(store: Store) -> None:
    async with store.write(ROOM) as tx:
        await tx.save_delta(*WINDOW, "https://graph.example/delta?$deltatoken=page-1")

    with pytest.raises(Boom):
        async with store.write(ROOM) as tx:
            await tx.enqueue("i-1", "hybrid.create", {})
            await tx.upsert_link(Link("l-1", hybrid_id="h-1"))
            await tx.audit("h-1", "hybrid", "create", "new meeting in Outlook")
            await tx.record_round(ok=True)
            await tx.save_delta(*WINDOW, "https://graph.example/delta?$deltatoken=page-2")
            raise Boom

    delta = await store.get_delta(ROOM)
    assert delta is not None and delta.delta_link.endswith("page-1")
    assert await store.due_outbox(ROOM, T0 + timedelta(days=1)) == []
    assert await store.links(ROOM) == []
    assert await store.audit_for(ROOM) == []
    [status] = await store.room_statuses()
    assert status.rounds_total == 0


async def test_a_cancelled_round_leaves_nothing_behind(store: Store) -> None:
    started = asyncio.Event()

    async def round_that_hangs() -> None:
        async with store.write(ROOM) as tx:
            await tx.enqueue("i-1", "hybrid.create", {})
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(round_that_hangs())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.outbox_item(ROOM, "i-1") is None
    # The writer is free again.
    async with store.write(ROOM) as tx:
        assert await tx.enqueue("i-1", "hybrid.create", {}) is True


async def test_enqueueing_the_same_intent_twice_plans_one_write(store: Store) -> None:
    async with store.write(ROOM) as tx:
        assert await tx.enqueue("i-1", "hybrid.create", {"v": 1}) is True
        assert await tx.enqueue("i-1", "hybrid.create", {"v": 2}) is False
    async with store.write(ROOM) as tx:
        await tx.mark_outbox("i-1", state="done")
    # A replayed delta page after the write was applied still plans nothing.
    async with store.write(ROOM) as tx:
        assert await tx.enqueue("i-1", "hybrid.create", {"v": 3}) is False
    item = await store.outbox_item(ROOM, "i-1")
    assert item is not None
    assert (item.state, item.payload) == ("done", {"v": 1})
    [status] = await store.room_statuses()
    assert status.outbox_depth == 0


async def test_concurrent_writers_never_interleave(store: Store) -> None:
    events: list[str] = []

    async def writer(name: str) -> None:
        async with store.write(ROOM) as tx:
            events.append(f"{name} begin")
            for step in range(3):
                await tx.enqueue(f"{name}-{step}", "hybrid.update", {"step": step})
                await asyncio.sleep(0.005)
            events.append(f"{name} end")

    await asyncio.gather(writer("a"), writer("b"), writer("c"))

    pairs = [events[i : i + 2] for i in range(0, len(events), 2)]
    assert all(p[0].split()[0] == p[1].split()[0] for p in pairs), events
    assert len(await store.due_outbox(ROOM, T0, limit=100)) == 9


async def test_reads_see_committed_state_while_a_round_is_open(store: Store, db_path: Path) -> None:
    async with store.write(ROOM) as tx:
        await tx.enqueue("committed", "hybrid.create", {})

    async with store.write(ROOM) as tx:
        await tx.enqueue("in-flight", "hybrid.create", {})
        # The daemon's own reader and `roomd status` (read-only, a separate open) both answer
        # at once, from the last committed state.
        own = await asyncio.wait_for(store.due_outbox(ROOM, T0), timeout=2)
        status = await asyncio.wait_for(open_store(db_path, readonly=True), timeout=2)
        try:
            seen = await status.due_outbox(ROOM, T0)
            [room] = await status.room_statuses()
        finally:
            await status.close()
        # ...while the writer sees its own uncommitted write.
        assert await tx.outbox_item("in-flight") is not None

    assert [i.intent_id for i in own] == ["committed"]
    assert [i.intent_id for i in seen] == ["committed"]
    assert room.outbox_depth == 1
    assert [i.intent_id for i in await store.due_outbox(ROOM, T0)] == ["committed", "in-flight"]


async def test_a_transaction_cannot_touch_another_rooms_rows(store: Store) -> None:
    async with store.write(OTHER_ROOM) as tx:
        await tx.enqueue("theirs", "hybrid.create", {})

    with pytest.raises(UnknownIntent, match=re.escape("room-4a@contoso.com has no outbox item")):
        async with store.write(ROOM) as tx:
            assert await tx.outbox_item("theirs") is None
            await tx.mark_outbox("theirs", state="done")

    item = await store.outbox_item(OTHER_ROOM, "theirs")
    assert item is not None and item.state == "pending"
    assert await store.outbox_item(ROOM, "theirs") is None


async def test_room_addresses_are_case_insensitive(store: Store) -> None:
    async with store.write("Room-4A@Contoso.COM") as tx:
        assert tx.room == ROOM
        await tx.enqueue("i-1", "hybrid.create", {})
    assert await store.outbox_item(ROOM, "i-1") is not None
    assert [s.room for s in await store.room_statuses()] == [ROOM]


async def test_a_transaction_is_unusable_after_its_block(store: Store) -> None:
    async with store.write(ROOM) as tx:
        pass
    with pytest.raises(StoreError, match="already ended"):
        await tx.enqueue("late", "hybrid.create", {})


async def test_nested_write_in_one_task_fails_instead_of_deadlocking(store: Store) -> None:
    with pytest.raises(StoreError, match="nested"):
        async with store.write(ROOM), store.write(OTHER_ROOM):
            pass
    # The outer transaction rolled back and the writer is free.
    async with store.write(ROOM) as tx:
        await tx.enqueue("after", "hybrid.create", {})


async def test_readonly_store_refuses_writes(store: Store, db_path: Path) -> None:
    readonly = await open_store(db_path, readonly=True)
    try:
        with pytest.raises(StoreError, match="read-only"):
            async with readonly.write(ROOM):
                pass
        with pytest.raises(StoreError, match="read-only"):
            await readonly.check_writable()
    finally:
        await readonly.close()


async def test_bad_input_is_named_in_the_error(store: Store) -> None:
    with pytest.raises(ValueError, match="'room-4a' is not a mailbox address"):
        store.write("room-4a")
    async with store.write(ROOM) as tx:
        with pytest.raises(ValueError, match="enqueue i-1: payload is not JSON"):
            await tx.enqueue("i-1", "hybrid.create", {"at": T0})
        with pytest.raises(ValueError, match=r"window_start: datetime .* has no time zone"):
            await tx.save_delta(T0.replace(tzinfo=None), T0, "https://graph.example/delta")
        with pytest.raises(ValueError, match="must be before window_end"):
            await tx.save_delta(T0, T0, "https://graph.example/delta")
        with pytest.raises(ValueError, match="'sent' is not one of"):
            await tx.mark_outbox("i-1", state="sent")  # type: ignore[arg-type]


async def test_closing_twice_is_harmless_and_use_after_close_is_clear(db_path: Path) -> None:
    opened = await open_store(db_path, clock=Clock())
    await opened.close()
    await opened.close()
    with pytest.raises(StoreError, match="closed"):
        await opened.room_statuses()
    with pytest.raises(StoreError, match="closed"):
        async with opened.write(ROOM):
            pass


async def test_cancelling_rounds_at_any_moment_never_splits_or_wedges_them(store: Store) -> None:
    rng = random.Random()

    async def one_round(n: int) -> None:
        async with store.write(ROOM) as tx:
            for k in range(3):
                await tx.enqueue(f"round-{n}-{k}", "graph.update", {})
            await tx.save_delta(*WINDOW, f"https://graph.example/delta?$deltatoken={n}")

    finished: set[int] = set()
    for n in range(60):
        task = asyncio.create_task(one_round(n))
        for _ in range(rng.randrange(12)):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
            finished.add(n)

    async with store.write(ROOM) as tx:  # the writer is usable: no transaction left open
        await tx.enqueue("after", "graph.update", {})
    planned = {i.intent_id for i in await store.due_outbox(ROOM, T0, limit=1000)} - {"after"}
    rounds = {int(i.split("-")[1]) for i in planned}
    assert planned == {f"round-{n}-{k}" for n in rounds for k in range(3)}
    assert finished <= rounds


async def test_a_write_holds_the_database_write_lock_from_its_start(
    store: Store, db_path: Path
) -> None:
    """The write lock is taken when the block opens (BEGIN IMMEDIATE, then the room's row), so
    a read-then-write round can never fail half-way with SQLITE_BUSY on a lock upgrade."""
    import sqlite3

    other = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        async with store.write(ROOM):
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the transaction ended
        other.execute("ROLLBACK")
    finally:
        other.close()
