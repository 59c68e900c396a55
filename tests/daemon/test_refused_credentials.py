"""A revoked or expired secret under a running daemon: a handful of token requests, not one per
room and round; every room says why and what to do; a fix and a reload (or the hold ending)
brings the rooms back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.daemon import DaemonProcess
from support.sims import SimWorld, sim_world

WATCH_S = 6.0  # a refusal, then one attempt after the first 5 s hold


@pytest.fixture
def world() -> Iterator[SimWorld]:
    with sim_world() as w:
        yield w


def wait_ready(daemon: DaemonProcess, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = httpx.get(daemon.url("/readyz"))
        if resp.status_code == 200:
            return dict(resp.json())
        time.sleep(0.1)
    raise AssertionError(f"not ready within {timeout}s: {resp.text}")


def failed_rounds(daemon: DaemonProcess, since: int) -> list[dict[str, Any]]:
    daemon.mark()
    return [
        line
        for line in daemon.lines[since:]
        if line.get("event") == "room_round" and line.get("outcome") == "error"
    ]


def status(config: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "roomd", "status", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    rows = json.loads(out.stdout)
    return list(rows["rooms"] if isinstance(rows, dict) else rows)


def test_a_revoked_hybrid_secret_costs_a_handful_of_token_requests_and_a_reload_fixes_it(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    rooms = [room.email for room in world.tenant.rooms]
    config = world.write_config(tmp_path, poll_interval=1)
    daemon = DaemonProcess(config).start()
    daemons.append(daemon)
    wait_ready(daemon)
    mark = daemon.mark()
    rotated = "rotated-in-hybrid-4f2d"
    world.call(lambda: world.hybrid.control.set_client_secret(rotated))
    sent = world.call(world.hybrid.control.token_requests)
    time.sleep(WATCH_S)

    asked = world.call(world.hybrid.control.token_requests) - sent
    failed = failed_rounds(daemon, mark)
    assert len(failed) >= 2 * len(rooms), failed  # every room kept its 1 s rhythm ...
    assert 1 <= asked <= 3, asked  # ... without asking the token endpoint each time
    reason = failed[-1]["error"]
    assert "Hybrid refused roomd's credentials (401: " in reason and "invalid_client" in reason
    assert "— fix: put the API client's current secret in hybrid.client_secret_file" in reason
    detail = httpx.get(daemon.url("/readyz")).json()
    assert all(
        "Hybrid refused roomd's credentials" in detail["rooms"][room]["last_error"]
        for room in rooms
    ), detail
    assert all("Hybrid refused roomd's credentials" in row["last_error"] for row in status(config))
    metrics = httpx.get(daemon.url("/metrics")).text
    assert 'roomd_hybrid_token_refreshes_total{outcome="held"}' in metrics

    (tmp_path / "hybrid-client-secret").write_text(rotated + "\n")
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    daemon.wait_log(lambda x: x.get("event") == "config_reloaded", since=mark)
    back = set()
    while back != set(rooms):
        line = daemon.wait_log(
            lambda x: x.get("event") == "room_round" and x.get("outcome") == "ok", since=mark
        )
        back.add(line["room"])
        mark = daemon.lines.index(line) + 1
    wait_ready(daemon)
    for text in ("".join(daemon.raw), httpx.get(daemon.url("/metrics")).text):
        assert rotated not in text and world.hybrid.client_secret not in text


def test_an_expired_graph_secret_is_tried_again_when_the_hold_ends(
    tmp_path: Path, world: SimWorld, daemons: list[DaemonProcess]
) -> None:
    config = world.write_config(tmp_path, poll_interval=1)
    daemon = DaemonProcess(config).start()
    daemons.append(daemon)
    wait_ready(daemon)
    mark = daemon.mark()

    def expire() -> int:
        world.graph.control.expire_client_secret()
        world.graph.control.revoke_tokens()  # and the token msal holds stops working
        return world.graph.control.token_requests()

    sent = world.call(expire)
    time.sleep(WATCH_S)
    asked = world.call(world.graph.control.token_requests) - sent
    failed = failed_rounds(daemon, mark)
    assert len(failed) >= 2 * len(world.tenant.rooms), failed
    assert 1 <= asked <= 3, asked
    reason = failed[-1]["error"]
    assert "Microsoft Graph refused roomd's credentials (invalid_client: AADSTS7000222" in reason
    assert "— fix: az ad app credential reset" in reason

    # the secret is extended in Entra ID; no reload: the next attempt after the hold succeeds
    world.call(
        lambda: world.graph.control.set_client_secret_expiry(
            world.graph.control.now() + timedelta(days=365)
        )
    )
    wait_ready(daemon, timeout=30)
