"""The operator's commands, end to end: ``roomd sync --full [--dry-run]``, the mass-delete breaker
and ``roomd sync --force``, and ``roomd explain``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support.daemon import DaemonProcess
from support.sync_world import ADELE, ALEX, ROOM, SyncWorld, at, wait_for


def roomd(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roomd", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_full_sync_copies_both_sides_once_and_a_dry_run_writes_nothing(
    world: SyncWorld,
) -> None:
    # bookings made on both sides before roomd ever ran
    meeting = world.book(ADELE, at(9), subject="Made before roomd")
    booking = world.hybrid_book(ALEX, at(13), summary="Also before roomd")
    time.sleep(1)  # let the room's booking assistant answer
    config = world.sims.write_config(world.directory, poll_interval=1)

    plan = roomd("sync", "--full", "--dry-run", "--room", ROOM, config=config)
    assert plan.returncode == 0, plan.stderr
    assert "create" in plan.stdout and "Made before roomd" in plan.stdout
    assert "Also before roomd" in plan.stdout
    assert "nothing was written" in plan.stdout
    assert len(world.bookings()) == 1  # the dry run wrote nothing
    assert world.live_events(ALEX) == []

    done = roomd("sync", "--full", "--room", ROOM, config=config)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: len(world.bookings()) == 2, "the Outlook meeting copied to Hybrid")
    assert {b["summary"] for b in world.live_bookings()} == {
        "Made before roomd",
        booking["summary"],
    }
    assert [e["subject"] for e in world.live_events(ALEX)] == ["Also before roomd"]

    # a second run, and a dry run after it, find nothing to do
    time.sleep(1)
    again = roomd("sync", "--full", "--dry-run", "--room", ROOM, config=config)
    assert "nothing to do" in again.stdout, again.stdout
    roomd("sync", "--full", "--room", ROOM, config=config)
    assert len(world.bookings()) == 2
    assert len(world.live_events(ALEX)) == 1

    story = roomd("explain", meeting["iCalUId"], config=config)
    assert story.returncode == 0, story.stderr
    assert "booked in Outlook" in story.stdout
    assert "'Made before roomd'" in story.stdout
    assert "create" in story.stdout
    assert roomd("explain", "no-such-id", config=config).returncode == 1


def test_a_round_that_would_cancel_most_bookings_is_held_until_forced(
    world: SyncWorld,
) -> None:
    daemon = world.start(sync="mass_delete_min = 3\nmass_delete_threshold = 0.5")
    meetings = [world.book(ADELE, at(8 + i), subject=f"M{i}") for i in range(5)]
    wait_for(lambda: len(world.live_bookings()) == 5, "five Hybrid bookings")
    # stop roomd, delete four of five in Outlook, start it again: one round sees them all
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    for meeting in meetings[:4]:
        world.delete(ADELE, meeting["id"])
    daemon = DaemonProcess(daemon.config).start()
    world.daemon = daemon

    def breaker() -> str | None:
        try:
            detail = httpx.get(daemon.url("/readyz")).json()
        except httpx.HTTPError:
            return None
        return detail["rooms"][ROOM].get("breaker")

    text = wait_for(breaker, "the breaker in /readyz")
    assert "roomd sync --force" in text
    assert httpx.get(daemon.url("/readyz")).status_code == 503
    metrics = httpx.get(daemon.url("/metrics")).text
    assert f'roomd_breaker_trips_total{{room="{ROOM}"}}' in metrics
    tripped = f'roomd_breaker_tripped{{room="{ROOM}"}}'  # what RoomdBreakerTripped alerts on
    wait_for(lambda: f"{tripped} 1.0" in httpx.get(daemon.url("/metrics")).text, tripped)
    time.sleep(2)
    assert len(world.live_bookings()) == 5  # nothing cancelled while held

    forced = roomd("sync", "--force", ROOM, config=daemon.config)
    assert forced.returncode == 0, forced.stderr
    wait_for(lambda: len(world.live_bookings()) == 1, "the four cancellations applied")
    wait_for(lambda: breaker() is None, "the breaker released")
    wait_for(lambda: f"{tripped} 0.0" in httpx.get(daemon.url("/metrics")).text, tripped)
