"""Idle rounds cost one commit per poll interval, not one per room: an idle round's new delta
link and its success wait in memory (this process reads them at once) and are written together
by ``flush_idle``, by the room's next write transaction, or when the store closes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from roomd.store import Link, Store, open_store

from .conftest import OTHER_ROOM, ROOM, T0, Clock

START, END = T0 - timedelta(days=90), T0 + timedelta(days=366)


async def stored_link(db_path: Path, room: str) -> str | None:
    """What another process (``roomd status``) reads: the file, not this store's memory."""
    other = await open_store(db_path, readonly=True)
    try:
        state = await other.get_delta(room)
        return state.delta_link if state is not None else None
    finally:
        await other.close()


async def test_idle_links_and_successes_are_read_at_once_and_written_in_one_commit(
    store: Store, db_path: Path, clock: Clock
) -> None:
    for room in (ROOM, OTHER_ROOM):
        async with store.write(room) as tx:
            await tx.save_delta(START, END, f"https://graph/{room}/delta?token=1")
    writer = store._writer
    assert writer is not None
    changes = writer.total_changes
    clock.advance(60)
    for room in (ROOM, OTHER_ROOM):
        store.defer_delta(room, START, END, f"https://graph/{room}/delta?token=2")
        assert store.defer_success(room, clock())
    assert writer.total_changes == changes  # nothing written yet
    state = await store.get_delta(ROOM)
    assert state is not None and state.delta_link.endswith("token=2")
    assert await stored_link(db_path, ROOM) == f"https://graph/{ROOM}/delta?token=1"
    status = {st.room: st for st in await store.room_statuses()}
    assert status[ROOM].last_success_at == clock()

    assert await store.flush_idle() == 2
    assert await stored_link(db_path, OTHER_ROOM) == f"https://graph/{OTHER_ROOM}/delta?token=2"
    assert await store.flush_idle() == 0  # nothing left to write


async def test_a_success_with_nothing_deferred_is_for_the_caller_to_write(store: Store) -> None:
    assert not store.defer_success(ROOM, T0)


async def test_a_rooms_next_write_stores_its_idle_state_first_and_its_own_wins(
    store: Store, db_path: Path, clock: Clock
) -> None:
    store.defer_delta(ROOM, START, END, "https://graph/delta?token=2")
    store.defer_success(ROOM, clock())
    async with store.write(ROOM) as tx:
        await tx.record_round(ok=False, error="GraphError: 503", at=clock.advance(5))
    status = {st.room: st for st in await store.room_statuses()}[ROOM]
    assert status.last_success_at == T0 and status.last_error == "GraphError: 503"
    assert await stored_link(db_path, ROOM) == "https://graph/delta?token=2"

    store.defer_delta(ROOM, START, END, "https://graph/delta?token=3")
    async with store.write(ROOM) as tx:
        await tx.save_delta(START, END, "https://graph/delta?token=4")
    assert await store.flush_idle() == 0  # the transaction wrote it, and its own link won
    assert await stored_link(db_path, ROOM) == "https://graph/delta?token=4"


async def test_closing_writes_what_idle_rounds_left(db_path: Path, clock: Clock) -> None:
    store = await open_store(db_path, clock=clock)
    async with store.write(ROOM) as tx:
        await tx.save_delta(START, END, "https://graph/delta?token=1")
    store.defer_delta(ROOM, START, END, "https://graph/delta?token=2")
    await store.close()
    assert await stored_link(db_path, ROOM) == "https://graph/delta?token=2"


async def test_an_idle_round_reads_only_the_links_waiting_for_the_rooms_answer(
    store: Store, clock: Clock
) -> None:
    org = "adelev@contoso.com"
    async with store.write(ROOM) as tx:
        await tx.upsert_link(
            Link("answered", room_event_id="AAMk-room", organizer_mailbox=org, ical_uid="u1")
        )
        await tx.upsert_link(Link("from-outlook", room_event_id="AAMk-room-2", ical_uid="u2"))
        await tx.upsert_link(
            Link("old", organizer_event_id="AAMk-org-1", organizer_mailbox=org, ical_uid="u3")
        )
    clock.advance(2 * 86400)
    async with store.write(ROOM) as tx:
        await tx.upsert_link(
            Link("waiting", organizer_event_id="AAMk-org-2", organizer_mailbox=org, ical_uid="u4")
        )
    since = clock() - timedelta(days=1)
    found = await store.links(ROOM, state="active", awaiting_answer_since=since)
    assert [link.link_id for link in found] == ["waiting"]
    assert len(await store.links(ROOM, state="active")) == 4


async def test_a_group_of_rooms_is_read_in_one_go_with_the_rooms_that_have_work(
    store: Store, clock: Clock
) -> None:
    """The daemon's grouped read asks for a slice's rooms at once: delta states (the deferred
    one first), Hybrid cursors, and which rooms have writes due or answers awaited."""
    org = "adelev@contoso.com"
    async with store.write(ROOM) as tx:
        await tx.save_delta(START, END, "https://graph/room/delta?token=1")
        await tx.save_hybrid_cursor(T0, "res-1")
        await tx.enqueue("later", "graph.update", {}, not_before=T0 + timedelta(hours=1))
    async with store.write(OTHER_ROOM) as tx:
        await tx.save_delta(START, END, "https://graph/other/delta?token=1")
        await tx.upsert_link(
            Link("waiting", organizer_event_id="AAMk-org", organizer_mailbox=org, ical_uid="u")
        )
    store.defer_delta(OTHER_ROOM, START, END, "https://graph/other/delta?token=2")
    deltas = await store.delta_states([ROOM, OTHER_ROOM, "new-room@contoso.com"])
    assert {k: d.delta_link[-7:] for k, d in deltas.items()} == {
        ROOM: "token=1",
        OTHER_ROOM: "token=2",
    }
    assert set(await store.hybrid_cursors([ROOM, OTHER_ROOM])) == {ROOM}
    since = clock() - timedelta(days=1)
    assert await store.rooms_with_work([ROOM, OTHER_ROOM], clock(), since) == {OTHER_ROOM}
    clock.advance(2 * 3600)  # the write is due; the answer no longer awaited after a day
    assert await store.rooms_with_work([ROOM], clock(), since) == {ROOM}
    assert await store.rooms_with_work([OTHER_ROOM], clock(), clock()) == set()
