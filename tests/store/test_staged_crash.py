"""The group commit under SIGKILL: sixteen rooms' drain results committed together
(``Store.write_staged``), the writer process killed at random moments and restarted. Each result
is whole or absent (its link, its ``done`` mark and its one audit line), none is written twice,
and every result whose ``write_staged`` had returned before the kill is on disk."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from .staged_writer import rooms

WRITER = Path(__file__).with_name("staged_writer.py")
ROOMS = 16
PER_ROOM = 400
KILLS = 6


def run_writer(db: Path, kill_after_s: float | None) -> set[tuple[str, int]]:
    """One writer process, killed ``kill_after_s`` after it planned (None: left to finish);
    the results it said were written."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), str(ROOMS), str(PER_ROOM)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    returned: set[tuple[str, int]] = set()
    try:
        deadline = None
        for line in proc.stdout:
            words = line.split()
            if words == ["planned"] and kill_after_s is not None:
                deadline = time.monotonic() + kill_after_s
            elif words[:1] == ["returned"]:
                returned.add((words[1], int(words[2])))
            if deadline is not None and time.monotonic() >= deadline:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
        if kill_after_s is None:
            assert proc.returncode == 0, proc.stderr.read()
        # what it printed before the kill and this loop did not read yet
        for line in proc.stdout:
            words = line.split()
            if words[:1] == ["returned"]:
                returned.add((words[1], int(words[2])))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    return returned


def results_on_disk(db: Path) -> set[tuple[str, int]]:
    """The results committed; fails if any is partly there or written twice."""
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        done = {
            (room, int(intent.removeprefix("i-")))
            for room, intent in conn.execute(
                "SELECT room, intent_id FROM outbox WHERE state='done'"
            )
        }
        linked = {
            (room, int(link.removeprefix("l-")))
            for room, link in conn.execute("SELECT room, link_id FROM links")
        }
        audited: dict[tuple[str, int], int] = {}
        for room, booking in conn.execute("SELECT room, booking FROM audit"):
            key = (room, int(booking.rsplit("-", 1)[1]))
            audited[key] = audited.get(key, 0) + 1
    assert linked == done, "a link without its done mark, or the reverse"
    assert set(audited) == done, "an audit line without its result, or the reverse"
    twice = {key: n for key, n in audited.items() if n > 1}
    assert not twice, f"results written more than once: {sorted(twice)[:5]}"
    return done


def test_killed_group_commits_lose_nothing_returned_and_double_nothing(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    rng = random.Random(int(os.environ.get("ROOMD_CRASH_SEED") or 7))
    told: set[tuple[str, int]] = set()
    mid_drain = 0
    for _ in range(KILLS):
        told |= run_writer(db, kill_after_s=rng.uniform(0.05, 0.4))
        on_disk = results_on_disk(db)
        lost = told - on_disk
        assert not lost, f"returned from write_staged, then lost in the kill: {sorted(lost)[:5]}"
        mid_drain += 0 < len(on_disk) < ROOMS * PER_ROOM
    assert mid_drain >= KILLS // 2, "the kills must land while the rooms drain"
    told |= run_writer(db, kill_after_s=None)
    everything = {(room, k) for room in rooms(ROOMS) for k in range(PER_ROOM)}
    assert results_on_disk(db) == everything
    assert told <= everything
