"""The daemon as systemd and an operator see it: notifications, health, signals, reload."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
from support.daemon import DaemonProcess, NotifySocket, Room, write_config

ROOM_A = Room("64f0a1b2c3d4e5f6a7b8c901", "room-4a@contoso.com")
ROOM_B = Room("64f0a1b2c3d4e5f6a7b8c902", "room-4b@contoso.com")


def start(
    tmp_path: Path,
    daemons: list[DaemonProcess],
    notify: NotifySocket | None = None,
    **config: object,
) -> DaemonProcess:
    cfg = write_config(tmp_path, **config)  # type: ignore[arg-type]
    env = {"NOTIFY_SOCKET": str(notify.path)} if notify else {}
    daemon = DaemonProcess(cfg, env=env).start()
    daemons.append(daemon)
    return daemon


def test_speaks_sd_notify_ready_status_watchdog_and_stopping(
    tmp_path: Path, daemons: list[DaemonProcess], notify: NotifySocket
) -> None:
    cfg = write_config(tmp_path, rooms=[ROOM_A])
    daemon = DaemonProcess(
        cfg, env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
    ).start()
    daemons.append(daemon)
    ready = notify.wait_for("READY", "1")
    assert "1 rooms" in ready["STATUS"]
    notify.wait_for("WATCHDOG", "1", timeout=5)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    stopping = notify.wait_for("STOPPING", "1")
    assert stopping["STATUS"].startswith("stopping")


def test_healthz_answers_and_readyz_is_503_with_detail_until_rooms_have_synced(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    daemon = start(tmp_path, daemons, rooms=[ROOM_A, ROOM_B])
    assert httpx.get(daemon.url("/healthz")).json() == {"status": "ok"}
    # Graph is unreachable here: rounds fail, so the rooms never become ready.
    daemon.wait_log(lambda x: x.get("event") == "room_round" and x.get("outcome") == "error")
    resp = httpx.get(daemon.url("/readyz"))
    assert resp.status_code == 503
    detail = resp.json()
    assert detail["ready"] is False
    assert detail["database"] == "ok"
    assert set(detail["rooms"]) == {ROOM_A.mailbox, ROOM_B.mailbox}
    room = detail["rooms"][ROOM_A.mailbox]
    assert room["state"] == "waiting_for_first_round"
    assert room["last_error"]


def test_failed_rounds_are_logged_one_line_per_room_without_secrets(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    daemon = start(tmp_path, daemons, rooms=[ROOM_A], client_secret="TOPSECRET-graph-42")
    line = daemon.wait_log(lambda x: x.get("event") == "room_round")
    assert line["room"] == ROOM_A.mailbox
    assert line["outcome"] == "error"
    assert {"inbound", "outbound", "conflicts", "delta_pages", "duration_s"} <= line.keys()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert "TOPSECRET" not in "".join(daemon.raw)
    assert "hybrid-s3cret" not in "".join(daemon.raw)


def test_metrics_are_prometheus_text_with_roomd_names(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    daemon = start(tmp_path, daemons, rooms=[ROOM_A])
    daemon.wait_log(lambda x: x.get("event") == "room_round")
    resp = httpx.get(daemon.url("/metrics"))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert f'roomd_rounds_total{{outcome="error",room="{ROOM_A.mailbox}"}}' in text
    assert "roomd_round_duration_seconds_bucket" in text
    assert f'roomd_round_last_duration_seconds{{room="{ROOM_A.mailbox}"}}' in text
    assert "roomd_rooms 1.0" in text


def test_sigint_also_stops_cleanly(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    daemon = start(tmp_path, daemons, rooms=[ROOM_A])
    daemon.wait_log(lambda x: x.get("event") == "started")
    daemon.signal(signal.SIGINT)
    assert daemon.wait_exit() == 0
    assert daemon.events("stopped")


def test_sighup_adds_a_room_without_restart(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    daemon = start(tmp_path, daemons, rooms=[ROOM_A])
    port = daemon.port
    write_config(tmp_path, rooms=[ROOM_A, ROOM_B])
    daemon.signal(signal.SIGHUP)
    daemon.wait_log(lambda x: x.get("event") == "config_reloaded")
    changed = daemon.events("rooms_changed")[-1]
    assert changed["added"] == [ROOM_B.mailbox]
    daemon.wait_log(lambda x: x.get("event") == "room_round" and x.get("room") == ROOM_B.mailbox)
    rooms = httpx.get(f"http://127.0.0.1:{port}/readyz").json()["rooms"]
    assert set(rooms) == {ROOM_A.mailbox, ROOM_B.mailbox}
    assert daemon.proc is not None and daemon.proc.poll() is None


def test_sighup_with_invalid_config_keeps_the_running_one(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    daemon = start(tmp_path, daemons, rooms=[ROOM_A, ROOM_B])
    port = daemon.port
    cfg = tmp_path / "roomd.toml"
    cfg.write_text(cfg.read_text().replace(ROOM_B.mailbox, "room-4b@contoso"))
    daemon.signal(signal.SIGHUP)
    refused = daemon.wait_log(lambda x: x.get("event") == "config_reload_refused")
    assert "rooms[1].mailbox" in refused["problem"]
    assert "not an email address" in refused["problem"]
    time.sleep(0.3)
    rooms = httpx.get(f"http://127.0.0.1:{port}/readyz").json()["rooms"]
    assert set(rooms) == {ROOM_A.mailbox, ROOM_B.mailbox}
    assert daemon.proc is not None and daemon.proc.poll() is None


def test_sighup_removes_a_room(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    daemon = start(tmp_path, daemons, rooms=[ROOM_A, ROOM_B])
    port = daemon.port
    write_config(tmp_path, rooms=[ROOM_A])
    daemon.signal(signal.SIGHUP)
    daemon.wait_log(lambda x: x.get("event") == "config_reloaded")
    assert daemon.events("rooms_changed")[-1]["removed"] == [ROOM_B.mailbox]
    rooms = httpx.get(f"http://127.0.0.1:{port}/readyz").json()["rooms"]
    assert set(rooms) == {ROOM_A.mailbox}


def test_metrics_pass_promtool_lint(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    import os
    import shutil
    import subprocess

    import pytest

    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            raise AssertionError("promtool missing in CI (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    daemon = start(tmp_path, daemons, rooms=[ROOM_A])
    daemon.wait_log(lambda x: x.get("event") == "room_round")
    text = httpx.get(daemon.url("/metrics")).text
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_second_daemon_on_the_same_state_database_is_refused(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    first = start(tmp_path, daemons, rooms=[ROOM_A])
    first.wait_log(lambda x: x.get("event") == "started")
    second = DaemonProcess(tmp_path / "roomd.toml").start()
    daemons.append(second)
    assert second.wait_exit() == 1
    out = "".join(second.raw)
    assert "another roomd is already running" in out
    assert "state.sqlite3" in out
    assert first.proc is not None and first.proc.poll() is None


def test_logs_are_readable_text_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    cfg = write_config(tmp_path, rooms=[ROOM_A])
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "roomd", "run", "-c", str(cfg), "--log-level", "debug"],
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    out = b""
    try:
        deadline = time.monotonic() + 20
        while b"room_round" not in out and time.monotonic() < deadline:
            try:
                out += os.read(leader, 65536)
            except OSError:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        os.close(leader)
    text = out.decode(errors="replace")
    assert "room_round" in text
    first = next(line for line in text.splitlines() if "started" in line)
    assert not first.lstrip().startswith("{"), first  # console format, not JSON
    assert proc.returncode == 0


def test_sigkill_mid_rounds_then_restart_resumes_cleanly(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    import sqlite3

    daemon = start(tmp_path, daemons, rooms=[ROOM_A, ROOM_B])
    daemon.wait_log(lambda x: x.get("event") == "room_round")
    daemon.signal(signal.SIGKILL)
    assert daemon.wait_exit() == -signal.SIGKILL
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    again = DaemonProcess(tmp_path / "roomd.toml").start()
    daemons.append(again)
    again.wait_log(lambda x: x.get("event") == "room_round")  # the lock died with the process
    again.signal(signal.SIGTERM)
    assert again.wait_exit() == 0
