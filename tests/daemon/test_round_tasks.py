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
