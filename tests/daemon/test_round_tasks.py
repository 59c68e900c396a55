"""The daemon keeps a task only for a room whose round runs or waits: after any number of rounds,
a finished round leaves nothing behind per room (at 10,000 rooms each kept one ~850 B for ever,
bench/README.md, RSS), and a round asked for while one runs still follows it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from support.daemon import Room, write_config

from roomd.config import RoomSettings, load_config
from roomd.daemon import Daemon
from roomd.store import open_store
from roomd.sync import RoundStats

ROOMS = [Room(f"res-{i}", f"room-{i}@contoso.example") for i in range(30)]


class CountingRunner:
    """Counts each room's rounds; a round waits for ``gate`` when one is given."""

    def __init__(self) -> None:
        self.rounds: dict[str, int] = {}
        self.gate: asyncio.Event | None = None

    async def run_round(self, room: RoomSettings, **_: Any) -> RoundStats:
        self.rounds[room.mailbox] = self.rounds.get(room.mailbox, 0) + 1
        if self.gate is not None:
            await self.gate.wait()
        return RoundStats()

    async def aclose(self) -> None:
        return None


async def _unused(*_: Any) -> Any:
    raise AssertionError("the runner is given")


async def test_finished_rounds_leave_no_task_and_a_round_asked_for_meanwhile_still_runs(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, rooms=ROOMS)
    settings = load_config(config)
    daemon = Daemon(settings, config_path=config, runner_factory=_unused)
    daemon.store = await open_store(tmp_path / "state.db")
    runner = CountingRunner()
    daemon._runner = runner  # type: ignore[assignment]
    try:
        for _ in range(5):
            for room in settings.rooms:
                daemon.request_round(room.mailbox)
            await asyncio.gather(*daemon._rounds.values())
            await asyncio.sleep(0)  # the tasks' done callbacks
        assert daemon._rounds == {}
        assert set(runner.rounds.values()) == {5}

        # a round asked for while the room's round runs follows it, then nothing is kept
        runner.gate = asyncio.Event()
        first = settings.rooms[0].mailbox
        daemon.request_round(first)
        await asyncio.sleep(0.05)
        daemon.request_round(first)
        runner.gate.set()
        await asyncio.gather(*daemon._rounds.values())
        await asyncio.sleep(0)
        assert runner.rounds[first] == 7
        assert daemon._rounds == {}
    finally:
        await daemon.store.close()


class OverlapRunner(CountingRunner):
    """Also records the most rounds of one room that ran at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running: dict[str, int] = {}
        self.most = 0

    async def run_round(self, room: RoomSettings, **kwargs: Any) -> RoundStats:
        self.running[room.mailbox] = self.running.get(room.mailbox, 0) + 1
        self.most = max(self.most, self.running[room.mailbox])
        try:
            await asyncio.sleep(0.05)
            return await super().run_round(room, **kwargs)
        finally:
            self.running[room.mailbox] -= 1


async def test_a_room_still_runs_one_round_at_a_time_and_a_free_room_keeps_no_lock(
    tmp_path: Path,
) -> None:
    """Room locks are made when a room gets busy and dropped when it is free again (one per
    room for ever was ~200 B each, bench/README.md, RSS): the lock still lets one round of a
    room run at a time, also when a waiter takes it over from the holder."""
    config = write_config(tmp_path, rooms=ROOMS)
    settings = load_config(config)
    daemon = Daemon(settings, config_path=config, runner_factory=_unused)
    daemon.store = await open_store(tmp_path / "state.db")
    runner = OverlapRunner()
    daemon._runner = runner  # type: ignore[assignment]
    try:
        first = settings.rooms[0]
        # rounds of one room at once (a manual round, a webhook's, a poll's), and one more
        # asked for while the lock passes from the first round to the one that waited
        both = [asyncio.ensure_future(daemon.run_round(first)) for _ in range(2)]
        await asyncio.sleep(0.07)
        await asyncio.gather(*both, daemon.run_round(first))
        assert runner.rounds[first.mailbox] == 3
        assert runner.most == 1
        for room in settings.rooms:
            daemon.request_round(room.mailbox)
        await asyncio.gather(*daemon._rounds.values())
        assert runner.most == 1
        assert daemon._room_locks == {}
    finally:
        await daemon.store.close()
