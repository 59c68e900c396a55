"""A sync-round writer for the crash test, run as its own process and killed with SIGKILL.

Usage: ``python crash_writer.py DB ROWS HOLD``. Each round, in one transaction, plans ``ROWS``
outbox writes, prints ``mid N``, sleeps ``HOLD`` seconds (the test kills it here), then stores
the delta link ending in ``N`` and records the round, exactly as a sync round does (design.md
section 3, invariant 2). After the commit it prints ``committed N``. On start it resumes after
the last committed round, as a restarted daemon re-reads the page after its stored delta link.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from roomd.store import open_store

ROOM = "room-4a@contoso.com"
WINDOW_START = datetime(2026, 11, 25, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(days=180)
PAD = "x" * 4000


def intent_ids(round_no: int, rows: int) -> list[str]:
    return [f"round-{round_no}-{k}" for k in range(rows)]


def delta_link(round_no: int) -> str:
    return f"https://graph.example/v1.0/delta?$deltatoken={round_no}"


def round_of(link: str) -> int:
    return int(link.rsplit("=", 1)[1])


async def run(db: Path, rows: int, hold: float) -> None:
    store = await open_store(db)
    delta = await store.get_delta(ROOM)
    round_no = round_of(delta.delta_link) if delta else 0
    print(f"resumed {round_no}", flush=True)
    while True:
        round_no += 1
        async with store.write(ROOM) as tx:
            for intent in intent_ids(round_no, rows):
                await tx.enqueue(intent, "graph.update", {"round": round_no, "pad": PAD})
            print(f"mid {round_no}", flush=True)
            if hold:
                await asyncio.sleep(hold)
            await tx.save_delta(WINDOW_START, WINDOW_END, delta_link(round_no))
            await tx.record_round(ok=True)
        print(f"committed {round_no}", flush=True)


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
