"""The outbox hands out due writes in planning order, retries failures when they are due, and its
depth is always the number of planned writes not yet applied."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomd.store import Enqueued, OutboxState, Store, UnknownIntent, open_store

from .conftest import ROOM, Clock


async def test_due_writes_come_back_in_planning_order(store: Store, clock: Clock) -> None:
    async with store.write(ROOM) as tx:
        for n in range(5):
            await tx.enqueue(f"i-{n}", "graph.update", {"n": n})
    later = clock.advance(1)
    async with store.write(ROOM) as tx:
        await tx.enqueue("i-5", "graph.update", {"n": 5})

    due = await store.due_outbox(ROOM, later, limit=4)
    assert [i.intent_id for i in due] == ["i-0", "i-1", "i-2", "i-3"]
    assert [i.payload["n"] for i in await store.due_outbox(ROOM, later)] == [0, 1, 2, 3, 4, 5]


async def test_writes_planned_many_at_once_keep_their_order_and_their_replacements(
    store: Store, clock: Clock
) -> None:
    """``enqueue_many``: planning order kept, a known intent not planned twice, an ``again``
    intent moved to the end of the queue, and one named twice in a list replaced by the
    second."""
    async with store.write(ROOM) as tx:
        await tx.enqueue("i-0", "graph.update", {"n": 0})
        await tx.enqueue("i-1", "graph.create", {"n": 1})
    async with store.write(ROOM) as tx:
        await tx.enqueue_many(
            [
                Enqueued("i-0", "graph.update", {"n": 10}, again=True),
                Enqueued("i-1", "graph.create", {"n": 11}),
                Enqueued("i-2", "graph.create", {"n": 2}),
            ]
        )
    due = await store.due_outbox(ROOM, clock.advance(1))
    assert [(i.intent_id, i.payload["n"]) for i in due] == [("i-1", 1), ("i-0", 10), ("i-2", 2)]

    async with store.write(ROOM) as tx:
        await tx.enqueue_many(
            [
                Enqueued("i-3", "graph.update", {"n": 3}, again=True),
                Enqueued("i-3", "graph.update", {"n": 33}, again=True),
            ]
        )
    due = await store.due_outbox(ROOM, clock.advance(1))
    assert [(i.intent_id, i.payload["n"]) for i in due][-1] == ("i-3", 33)
    assert [i.intent_id for i in due].count("i-3") == 1


async def test_a_failed_write_is_retried_only_when_due(store: Store, clock: Clock) -> None:
    async with store.write(ROOM) as tx:
        await tx.enqueue("i-1", "graph.create", {})
    retry_at = clock.now + timedelta(seconds=30)
    async with store.write(ROOM) as tx:
        await tx.mark_outbox("i-1", state="failed", error="HTTP 503 from Graph", next_at=retry_at)

    assert await store.due_outbox(ROOM, retry_at - timedelta(seconds=1)) == []
    [item] = await store.due_outbox(ROOM, retry_at)
    assert (item.state, item.attempts, item.last_error) == ("failed", 1, "HTTP 503 from Graph")
    [status] = await store.room_statuses()
    assert status.outbox_depth == 1  # a failed write is still owed

    async with store.write(ROOM) as tx:
        await tx.mark_outbox("i-1", state="done")
    done = await store.outbox_item(ROOM, "i-1")
    assert done is not None
    assert (done.state, done.attempts, done.last_error) == ("done", 2, None)
    assert await store.due_outbox(ROOM, retry_at + timedelta(days=1)) == []


async def test_a_dead_write_leaves_the_queue_but_is_counted_for_the_operator(
    store: Store, clock: Clock
) -> None:
    async with store.write(ROOM) as tx:
        await tx.enqueue("i-1", "graph.create", {})
        await tx.mark_outbox("i-1", state="dead", error="organizer mailbox not found")
    [status] = await store.room_statuses()
    assert (status.outbox_depth, status.outbox_dead) == (0, 1)
    assert await store.due_outbox(ROOM, clock.advance(3600)) == []

    # An operator's retry puts it back without counting an attempt.
    async with store.write(ROOM) as tx:
        await tx.mark_outbox("i-1", state="pending")
    [item] = await store.due_outbox(ROOM, clock.now)
    assert (item.state, item.attempts, item.last_error) == (
        "pending",
        1,
        "organizer mailbox not found",
    )


async def test_a_write_planned_for_later_is_not_due_yet(store: Store, clock: Clock) -> None:
    async with store.write(ROOM) as tx:
        await tx.enqueue("i-1", "graph.update", {}, not_before=clock.now + timedelta(minutes=5))
    assert await store.due_outbox(ROOM, clock.now) == []
    assert len(await store.due_outbox(ROOM, clock.now + timedelta(minutes=5))) == 1


async def test_long_error_texts_are_cut(store: Store) -> None:
    async with store.write(ROOM) as tx:
        await tx.enqueue("i-1", "graph.update", {})
        await tx.mark_outbox("i-1", state="failed", error="x" * 5000)
    item = await store.outbox_item(ROOM, "i-1")
    assert item is not None and item.last_error is not None
    assert len(item.last_error) == 1000


async def test_pruning_keeps_what_is_owed_or_needs_a_person(store: Store, clock: Clock) -> None:
    async with store.write(ROOM) as tx:
        for intent, state in (("done", "done"), ("failed", "failed"), ("dead", "dead")):
            await tx.enqueue(intent, "graph.update", {})
            await tx.mark_outbox(intent, state=state)  # type: ignore[arg-type]
        await tx.enqueue("pending", "graph.update", {})
        await tx.audit("h-1", "outlook", "update", "old entry")
    clock.advance(86400)
    async with store.write(ROOM) as tx:
        await tx.audit("h-1", "outlook", "update", "new entry")
        assert await tx.prune_outbox(clock.now) == 1
        assert await tx.prune_audit(clock.now) == 1
        assert await tx.outbox_item("done") is None
    [status] = await store.room_statuses()
    assert (status.outbox_depth, status.outbox_dead) == (2, 1)
    assert [e.reason for e in await store.audit_for(ROOM)] == ["new entry"]


# --- property: depth == distinct intents still owed --------------------------------------------

INTENTS = st.sampled_from([f"i-{n}" for n in range(6)])
STATES: st.SearchStrategy[OutboxState] = st.sampled_from(["pending", "done", "failed", "dead"])


@dataclass(frozen=True)
class Enqueue:
    intent_id: str


@dataclass(frozen=True)
class Mark:
    intent_id: str
    state: OutboxState


class Abort(Exception):
    """The round failed after planning: its transaction must leave no trace."""


OPS = st.one_of(st.builds(Enqueue, INTENTS), st.builds(Mark, INTENTS, STATES))
ROUNDS = st.lists(st.tuples(st.lists(OPS, max_size=6), st.booleans()), max_size=8)


async def apply_rounds(
    store: Store, room: str, rounds: list[tuple[list[Enqueue | Mark], bool]], clock: Clock
) -> dict[str, OutboxState]:
    """Run each round as one transaction against the store and a dict model; return the model."""
    model: dict[str, OutboxState] = {}
    for ops, commit in rounds:
        trial = dict(model)
        try:
            async with store.write(room) as tx:
                for op in ops:
                    if isinstance(op, Enqueue):
                        created = await tx.enqueue(
                            op.intent_id, "graph.update", {"id": op.intent_id}
                        )
                        assert created == (op.intent_id not in trial)
                        trial.setdefault(op.intent_id, "pending")
                    else:
                        if op.intent_id not in trial:
                            with pytest.raises(UnknownIntent):
                                await tx.mark_outbox(op.intent_id, state=op.state)
                            raise Abort
                        await tx.mark_outbox(op.intent_id, state=op.state, next_at=clock.now)
                        trial[op.intent_id] = op.state
                if not commit:
                    raise Abort
        except Abort:
            continue
        model = trial
    return model


def test_outbox_depth_is_the_number_of_distinct_intents_still_owed(tmp_path: Path) -> None:
    clock = Clock()
    rooms = itertools.count()
    with asyncio.Runner() as runner:
        store = runner.run(open_store(tmp_path / "property.db", clock=clock))

        @settings(max_examples=60, deadline=None)
        @given(rounds=ROUNDS)
        def check(rounds: list[tuple[list[Enqueue | Mark], bool]]) -> None:
            room = f"room-{next(rooms)}@contoso.com"
            model = runner.run(apply_rounds(store, room, rounds, clock))
            owed = {i for i, state in model.items() if state in ("pending", "failed")}

            statuses = {s.room: s for s in runner.run(store.room_statuses())}
            depth = statuses[room].outbox_depth if room in statuses else 0
            due = runner.run(store.due_outbox(room, clock.now, limit=100))
            assert depth == len(owed)
            assert {item.intent_id for item in due} == owed

        try:
            check()
        finally:
            runner.run(store.close())
