"""A writer process killed with SIGKILL at any point leaves a database that opens consistent:
the delta link and the outbox rows planned from the same page are both there or both absent.

This is design.md section 3, invariant 2 ("nothing lost") under the harshest crash a daemon sees:
no exception handler, no rollback, no close; only SQLite's WAL recovery on the next open. The
same writer process also shows `roomd status` reading beside a daemon that holds a round open.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from roomd.store import open_store

from .crash_writer import ROOM, intent_ids, round_of

WRITER = Path(__file__).with_name("crash_writer.py")
LINE_TIMEOUT_S = 30.0
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


class Writer:
    """The writer subprocess and the lines it printed, read by a thread so waits can time out."""

    def __init__(self, db: Path, rows: int, hold: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(db), str(rows), str(hold)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.last_committed = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def wait_for(self, wanted: str) -> None:
        """Block until the writer prints ``wanted``, noting every commit seen on the way."""
        deadline = time.monotonic() + LINE_TIMEOUT_S
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                finished = self.proc.poll() is not None and self.proc.stderr is not None
                stderr = self.proc.stderr.read() if finished and self.proc.stderr else ""
                pytest.fail(f"writer never printed {wanted!r}; stderr: {stderr}")
            if line.startswith("committed "):
                self.last_committed = int(line.split()[1])
            if line == wanted:
                return

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        # Lines printed before the kill may still be queued: count their commits too.
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line.startswith("committed "):
                self.last_committed = int(line.split()[1])
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def writer(db: Path, rows: int, hold: float) -> Iterator[Writer]:
    process = Writer(db, rows, hold)
    try:
        yield process
    finally:
        process.stop()


async def committed_round(db: Path, rows: int) -> int:
    """Open the database as a restarted daemon would, check the invariant, return the round."""
    store = await open_store(db)
    try:
        delta = await store.get_delta(ROOM)
        last = round_of(delta.delta_link) if delta else 0
        planned = {
            item.intent_id for item in await store.due_outbox(ROOM, FAR_FUTURE, limit=100_000)
        }
        expected = {i for n in range(1, last + 1) for i in intent_ids(n, rows)}
        assert planned == expected, (
            f"delta link says round {last}, but the outbox holds "
            f"{len(planned - expected)} writes from later rounds and misses "
            f"{len(expected - planned)} from committed ones"
        )
        statuses = await store.room_statuses()
        assert [s.rounds_total for s in statuses] == ([last] if last else [])
    finally:
        await store.close()
    with closing(sqlite3.connect(db)) as conn, conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    return last


def test_kill_inside_a_round_loses_only_that_round(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    rows = 700  # ~2.8 MB of planned writes: more than SQLite's page cache, so the
    #             uncommitted round spills into the WAL file before the kill.
    with writer(db, rows, hold=60) as proc:
        proc.wait_for("mid 1")  # round 1 is held too; kill it and restart
        proc.kill()
    assert asyncio.run(committed_round(db, rows)) == 0

    with writer(db, rows, hold=0) as proc:
        proc.wait_for("committed 3")
        proc.kill()
    done = asyncio.run(committed_round(db, rows))
    assert done >= proc.last_committed >= 3

    wal = Path(f"{db}-wal")
    assert not wal.exists()  # the clean close above checkpointed and removed it
    with writer(db, rows, hold=60) as proc:
        proc.wait_for(f"mid {done + 1}")
        # Nothing was committed since the writer started: what the WAL holds now is the
        # uncommitted round, which recovery must ignore.
        assert wal.stat().st_size > 1_000_000
        proc.kill()
    assert asyncio.run(committed_round(db, rows)) == done


def test_kill_at_random_moments_never_splits_a_round(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    rng = random.Random()
    seen = 0
    for attempt in range(4):
        with writer(db, rows=20, hold=0) as proc:
            proc.wait_for(f"committed {seen + 2}")
            time.sleep(rng.uniform(0, 0.05))
            proc.kill()
        done = asyncio.run(committed_round(db, rows=20))
        assert done >= proc.last_committed, f"attempt {attempt}: a reported commit was lost"
        seen = done


async def read_status(db: Path) -> tuple[int, int]:
    """What `roomd status` sees: (rounds recorded, outbox depth) for the writer's room."""
    store = await open_store(db, readonly=True)
    try:
        [status] = await store.room_statuses()
        return status.rounds_total, status.outbox_depth
    finally:
        await store.close()


def test_status_reads_beside_a_writer_process_holding_a_round(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    rows = 5
    with writer(db, rows, hold=0) as proc:
        proc.wait_for("committed 2")
        proc.kill()
    # on a loaded machine the kill may land a round or two later: go by what was committed
    done, depth = asyncio.run(read_status(db))
    assert done >= 2 and depth == done * rows
    with writer(db, rows, hold=60) as proc:
        proc.wait_for(f"mid {done + 1}")  # the next round holds the write lock, uncommitted
        started = time.monotonic()
        assert asyncio.run(read_status(db)) == (done, done * rows)
        assert time.monotonic() - started < 2  # did not wait for the writer
