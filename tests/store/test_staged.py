"""The outbox drain's results written in one trip to SQLite's thread (``Store.write_staged``):
the same rows as ``write()`` writes, committed before it returns, and the same refusals."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from roomd.store import Link, LinkConflict, Store, UnknownIntent, open_store

from .conftest import ROOM, T0


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every function handed to an aiosqlite connection's thread (each call, each trip)."""
    seen: list[object] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(fn)
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield seen


async def planned(store: Store, *intents: str) -> None:
    async with store.write(ROOM) as tx:
        for intent in intents:
            await tx.enqueue(intent, "hybrid.create", {"link_id": intent})


async def test_a_drains_results_are_one_trip_and_committed_when_it_returns(
    store: Store, trips: list[object]
) -> None:
    await planned(store, "i-1")
    trips.clear()
    async with store.write_staged(ROOM) as tx:
        await tx.upsert_link(Link("l-1", hybrid_id="h-1", ical_uid="uid-1"))
        await tx.mark_outbox("i-1", state="done")
        await tx.audit("h-1", "hybrid", "create", "new in Outlook")
    assert len(trips) == 1

    assert [link.hybrid_id for link in await store.links(ROOM)] == ["h-1"]
    item = await store.outbox_item(ROOM, "i-1")
    assert item is not None and item.state == "done" and item.attempts == 1
    assert [(a.booking, a.action) for a in await store.audit_for(ROOM)] == [("h-1", "create")]


async def test_an_unknown_intent_is_refused_and_nothing_is_written(store: Store) -> None:
    with pytest.raises(UnknownIntent):
        async with store.write_staged(ROOM) as tx:
            await tx.upsert_link(Link("l-1", hybrid_id="h-1"))
            await tx.mark_outbox("never-planned", state="done")
    assert await store.links(ROOM) == []


async def test_a_second_claim_is_refused_and_named_as_write_names_it(store: Store) -> None:
    await planned(store, "i-2")
    async with store.write(ROOM) as tx:
        await tx.upsert_link(Link("l-1", hybrid_id="h-1"))

    expected = re.escape("link l-2 would claim Hybrid booking h-1, already linked by l-1")
    with pytest.raises(LinkConflict, match=expected):
        async with store.write_staged(ROOM) as tx:
            await tx.audit("h-1", "hybrid", "create", "made")
            await tx.upsert_link(Link("l-2", hybrid_id="h-1"))
            await tx.mark_outbox("i-2", state="done")

    assert [link.link_id for link in await store.links(ROOM)] == ["l-1"]
    assert await store.audit_for(ROOM) == []
    item = await store.outbox_item(ROOM, "i-2")
    assert item is not None and item.state == "pending"


async def test_a_block_that_raises_writes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.write_staged(ROOM) as tx:
            await tx.upsert_link(Link("l-1", hybrid_id="h-1"))
            raise RuntimeError("stop")
    assert await store.links(ROOM) == []


async def test_a_rooms_idle_state_is_written_with_it_as_write_does(
    store: Store, db_path: Path
) -> None:
    await planned(store, "i-1")
    store.defer_delta(ROOM, T0, T0 + timedelta(days=30), "https://graph/delta?token=idle")
    async with store.write_staged(ROOM) as tx:
        await tx.mark_outbox("i-1", state="done")
    other = await open_store(db_path, readonly=True)
    try:
        delta = await other.get_delta(ROOM)
    finally:
        await other.close()
    assert delta is not None and delta.delta_link == "https://graph/delta?token=idle"


async def drained(store: Store, room: str, intent: str, *, link: Link | None = None) -> None:
    """One drain result, as the outbox executor writes it."""
    async with store.write_staged(room) as tx:
        await tx.upsert_link(link or Link(f"l-{room}-{intent}", hybrid_id=f"h-{room}-{intent}"))
        await tx.mark_outbox(intent, state="done")
        await tx.audit(f"h-{room}-{intent}", "hybrid", "create", "new in Outlook")


async def plan_rooms(store: Store, rooms: list[str]) -> None:
    for room in rooms:
        async with store.write(room) as tx:
            await tx.enqueue("i-1", "hybrid.create", {"link_id": "l"})


async def test_results_of_rooms_draining_at_once_share_one_commit_and_all_land(
    store: Store, trips: list[object]
) -> None:
    rooms = [f"room-{n}@contoso.com" for n in range(16)]
    await plan_rooms(store, rooms)
    trips.clear()

    await asyncio.gather(*(drained(store, room, "i-1") for room in rooms))

    assert len(trips) < len(rooms), "16 results waiting together must not take 16 commits"
    for room in rooms:
        assert [link.hybrid_id for link in await store.links(room)] == [f"h-{room}-i-1"]
        item = await store.outbox_item(room, "i-1")
        assert item is not None and item.state == "done"
        assert [a.action for a in await store.audit_for(room)] == ["create"]


async def test_one_refused_result_in_a_group_leaves_the_others_committed(store: Store) -> None:
    rooms = [f"room-{n}@contoso.com" for n in range(6)]
    await plan_rooms(store, rooms)
    async with store.write(rooms[3]) as tx:  # room 3's booking is already claimed
        await tx.upsert_link(Link("l-old", hybrid_id="h-taken"))

    results = await asyncio.gather(
        *(
            drained(store, room, "i-1", link=Link("l-new", hybrid_id="h-taken") if n == 3 else None)
            for n, room in enumerate(rooms)
        ),
        return_exceptions=True,
    )

    assert isinstance(results[3], LinkConflict)
    assert [r for n, r in enumerate(results) if n != 3] == [None] * 5
    for n, room in enumerate(rooms):
        item = await store.outbox_item(room, "i-1")
        assert item is not None
        assert item.state == ("pending" if n == 3 else "done"), room
    assert [link.link_id for link in await store.links(rooms[3])] == ["l-old"]
    assert await store.audit_for(rooms[3]) == []


async def test_a_result_cancelled_while_it_waits_for_its_group_is_not_written(
    store: Store,
) -> None:
    rooms = ["room-a@contoso.com", "room-b@contoso.com"]
    await plan_rooms(store, rooms)
    async with store.write(rooms[0]):  # holds the writer: both results queue behind it
        first = asyncio.create_task(drained(store, rooms[0], "i-1"))
        second = asyncio.create_task(drained(store, rooms[1], "i-1"))
        await asyncio.sleep(0.05)
        second.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second

    done = await store.outbox_item(rooms[0], "i-1")
    waiting = await store.outbox_item(rooms[1], "i-1")
    assert done is not None and done.state == "done"
    assert waiting is not None and waiting.state == "pending"
    assert await store.links(rooms[1]) == []


async def test_a_result_sqlite_cannot_bind_fails_alone_and_the_others_land(store: Store) -> None:
    rooms = [f"room-{n}@contoso.com" for n in range(4)]
    await plan_rooms(store, rooms)

    async def result(n: int, room: str) -> None:
        async with store.write_staged(room) as tx:
            await tx.upsert_link(Link(f"l-{n}", hybrid_id=f"h-{n}"))
            await tx.mark_outbox("i-1", state="done")
            # a lone surrogate (stdlib json.loads accepts "\ud800" from a remote answer)
            await tx.audit(f"h-{n}", "hybrid", "refused", "why: \ud800" if n == 2 else "why")

    results = await asyncio.gather(
        *(result(n, room) for n, room in enumerate(rooms)), return_exceptions=True
    )

    assert isinstance(results[2], UnicodeEncodeError)  # what write() raises for it, alone
    assert [r for n, r in enumerate(results) if n != 2] == [None] * 3
    for n, room in enumerate(rooms):
        item = await store.outbox_item(room, "i-1")
        assert item is not None
        assert item.state == ("pending" if n == 2 else "done"), room
