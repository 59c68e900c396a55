"""The daemon against the simulated Microsoft 365: ready when rooms sync, stale when they stop,
and a bounded stop even when a round hangs."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.daemon import DaemonProcess
from support.sims import SimWorld, sim_world


@pytest.fixture
def world() -> Iterator[SimWorld]:
    with sim_world() as w:
        yield w


def wait_ready(daemon: DaemonProcess, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = httpx.get(daemon.url("/readyz"))
        if resp.status_code == 200:
            return resp
        time.sleep(0.1)
    raise AssertionError(f"not ready within {timeout}s: {resp.text}")


def test_ready_once_every_room_has_completed_a_round(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    cfg = world.write_config(tmp_path)
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    detail = wait_ready(daemon).json()
    assert detail["ready"] is True
    assert {room.email for room in world.tenant.rooms} == set(detail["rooms"])
    assert all(room["state"] == "ok" for room in detail["rooms"].values())
    line = daemon.wait_log(lambda x: x.get("event") == "room_round")
    assert line["outcome"] == "ok" and line["delta_pages"] >= 1


def test_a_room_that_stops_syncing_turns_readyz_503_and_names_the_room(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    cfg = world.write_config(tmp_path)
    text = cfg.read_text().replace(
        "poll_interval_seconds = 1", "poll_interval_seconds = 1\nstale_after_seconds = 2"
    )
    cfg.write_text(text)
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    wait_ready(daemon)
    broken = world.tenant.rooms[0].email
    world.call(
        lambda: world.graph.control.inject_fault(
            kind="status",
            status=403,
            code="ErrorAccessDenied",
            message="Access to OData is disabled.",
            mailbox=broken,
            count=None,
        )
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        resp = httpx.get(daemon.url("/readyz"))
        if resp.status_code == 503:
            break
        time.sleep(0.2)
    assert resp.status_code == 503, resp.text
    rooms = resp.json()["rooms"]
    assert rooms[broken]["state"] == "stale"
    assert "ErrorAccessDenied" in (rooms[broken]["last_error"] or "") or "Access" in (
        rooms[broken]["last_error"] or ""
    )
    others = [r for email, r in rooms.items() if email != broken]
    assert all(r["state"] == "ok" for r in others)


def test_sigterm_during_a_hung_round_exits_0_within_the_grace_period(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    cfg = world.write_config(tmp_path)
    grace = 2
    cfg.write_text(
        cfg.read_text().replace(
            "poll_interval_seconds = 1",
            f"poll_interval_seconds = 1\nshutdown_grace_seconds = {grace}",
        )
    )
    # every request hangs far longer than the grace period: rounds cannot finish in time
    world.call(lambda: world.graph.control.inject_fault(kind="slow", delay_s=8, count=None))
    daemon = DaemonProcess(cfg).start()
    daemons.append(daemon)
    daemon.wait_log(lambda x: x.get("event") == "started")
    time.sleep(1.0)
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout=30) == 0
    elapsed = time.monotonic() - started
    assert elapsed < grace + 3, elapsed
    stopping = daemon.events("stopping")
    assert stopping and stopping[0]["inflight"] >= 1
    assert daemon.events("abandoned_rounds")
    assert daemon.events("stopped")
