"""The daemon's periodic jobs (the outbox gauges every poll interval, pruning every hour) run on
asyncio alone since APScheduler was dropped (~1 MB of RSS in the modules it imported,
bench/README.md section 1): each job runs again and again, one run at a time, keeps running
after a failed run, is replaced (not doubled) when rescheduled, and stops with the daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

from support.daemon import Room, write_config

from roomd.config import load_config
from roomd.daemon import Daemon


async def _unused(*_: object) -> object:
    raise AssertionError("no runner is needed")


async def test_a_job_repeats_one_run_at_a_time_survives_failures_and_stops(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, rooms=[Room("res-1", "room-1@contoso.example")])
    daemon = Daemon(load_config(config), config_path=config, runner_factory=_unused)  # type: ignore[arg-type]
    runs: list[str] = []
    running = 0
    most = 0
    four_runs, two_new_runs = asyncio.Event(), asyncio.Event()

    async def job(tag: str) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        runs.append(tag)
        if len(runs) >= 4:
            four_runs.set()
        if runs.count("new") >= 2:
            two_new_runs.set()
        try:
            await asyncio.sleep(0.03)  # longer than the interval: later runs must not overlap
            if len(runs) == 2:
                raise RuntimeError("one failed run")
        finally:
            running -= 1

    daemon._schedule("job", 0.01, lambda: job("old"))
    await asyncio.wait_for(four_runs.wait(), 10)
    assert most == 1  # the failure of the second run did not stop the job either

    daemon._schedule("job", 0.01, lambda: job("new"))  # a reload's new interval
    seen = len(runs)
    await asyncio.wait_for(two_new_runs.wait(), 10)
    assert "old" not in runs[seen:] and most == 1
    assert list(daemon._jobs) == ["job"]

    daemon._accepting = False  # what shutdown does first, then it cancels the jobs
    for task in daemon._jobs.values():
        task.cancel()
    await asyncio.sleep(0.05)
    assert all(task.done() for task in daemon._jobs.values())
    stopped = len(runs)
    await asyncio.sleep(0.05)
    assert len(runs) == stopped
