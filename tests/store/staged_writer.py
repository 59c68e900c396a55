"""The outbox drain's results of many rooms at once, for the group-commit kill test; run as its
own process and killed with SIGKILL.

Usage: ``python staged_writer.py DB ROOMS PER_ROOM``. Plans ``PER_ROOM`` Hybrid creates in each
of ``ROOMS`` rooms (planning the same intent again is a no-op), then drains every room at once,
as sixteen concurrent rounds do: each result (the booking's link, its ``done`` mark and its
audit line) through ``Store.write_staged``, so results waiting together share a commit. Prints
``returned ROOM K`` once ``write_staged`` has returned for a result, and ``finished`` at the end.
A result already ``done`` (a restart) is skipped, as the drain skips it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from roomd.store import Link, open_store


def rooms(count: int) -> list[str]:
    return [f"room-{n:02d}@contoso.com" for n in range(count)]


async def run(db: Path, room_count: int, per_room: int) -> None:
    store = await open_store(db)
    for room in rooms(room_count):
        async with store.write(room) as tx:
            for k in range(per_room):
                await tx.enqueue(f"i-{k}", "hybrid.create", {"link_id": f"l-{k}"})
    print("planned", flush=True)

    async def drain(room: str) -> None:
        for k in range(per_room):
            item = await store.outbox_item(room, f"i-{k}")
            if item is not None and item.state == "done":
                continue
            async with store.write_staged(room) as tx:
                await tx.upsert_link(Link(f"l-{k}", hybrid_id=f"h-{room}-{k}"))
                await tx.mark_outbox(f"i-{k}", state="done")
                await tx.audit(f"h-{room}-{k}", "hybrid", "create", "made")
            print(f"returned {room} {k}", flush=True)

    await asyncio.gather(*(drain(room) for room in rooms(room_count)))
    print("finished", flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
