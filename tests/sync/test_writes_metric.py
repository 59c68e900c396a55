"""Every write roomd attempts is counted in ``roomd_writes_total{room, side, outcome}``: done,
retry (failed, tried again later) or dead (given up, shown by ``roomd status``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from roomd.graph import BadRequest
from roomd.observe import REGISTRY
from roomd.store import Link, open_store
from roomd.sync.model import RoomContext
from roomd.sync.outbox import Executor

ROOM = RoomContext(mailbox="room-4a@contoso.com", hybrid_id="r-4a", name="Room 4A")


def writes(side: str, outcome: str) -> float:
    labels = {"room": ROOM.mailbox, "side": side, "outcome": outcome}
    return REGISTRY.get_sample_value("roomd_writes_total", labels) or 0.0


class Hybrid:
    async def cancel_booking(self, booking_id: str) -> None:
        return None  # already gone: the write is done all the same


class Graph:
    async def cancel_event(self, mailbox: str, event_id: str, comment: str = "") -> str:
        if event_id == "unreachable":
            raise OSError("connection reset by peer")  # transient: tried again later
        raise BadRequest(400, "ErrorInvalidRequest", "refused as malformed")  # never will


async def test_each_write_is_counted_by_side_and_outcome(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.sqlite3")
    try:
        async with store.write(ROOM.mailbox) as tx:
            await tx.upsert_link(Link(link_id="h:b1", hybrid_id="b1"))
            for event_id in ("unreachable", "malformed"):
                link = Link(
                    link_id=f"o:{event_id}",
                    organizer_mailbox="adele@contoso.com",
                    organizer_event_id=event_id,
                )
                await tx.upsert_link(link)
                await tx.enqueue(f"cancel-{event_id}", "graph.cancel", {"link_id": link.link_id})
            await tx.enqueue("cancel-b1", "hybrid.cancel", {"link_id": "h:b1"})
        before = {
            key: writes(*key)
            for key in (("hybrid", "done"), ("outlook", "retry"), ("outlook", "dead"))
        }
        now = datetime.now(UTC)
        hybrid: Any = Hybrid()
        graph: Any = Graph()
        stats = await Executor(store, graph, hybrid, lambda: now).drain(ROOM)
        assert (stats.done, stats.failed, stats.dead) == (1, 1, 1)
        assert writes("hybrid", "done") == before["hybrid", "done"] + 1
        assert writes("outlook", "retry") == before["outlook", "retry"] + 1
        assert writes("outlook", "dead") == before["outlook", "dead"] + 1
    finally:
        await store.close()
