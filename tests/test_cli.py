"""roomd's command line as an operator meets it: help, exit codes, config check, status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.daemon import Room, write_config

ROOM = Room("64f0a1b2c3d4e5f6a7b8c901", "room-4a@contoso.com")


def roomd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMD_")}
    return subprocess.run(
        [sys.executable, "-m", "roomd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


def test_help_reads_like_a_man_page() -> None:
    out = roomd("--help")
    assert out.returncode == 0
    for section in ("commands:", "files:", "environment:", "signals:", "exit status:", "see also:"):
        assert section in out.stdout
    for command in ("run", "config check", "status", "demo", "sim"):
        assert command in out.stdout


def test_no_command_is_a_usage_error() -> None:
    out = roomd()
    assert out.returncode == 2
    assert "usage: roomd" in out.stderr


def test_unknown_option_is_a_usage_error() -> None:
    assert roomd("run", "--bogus").returncode == 2


def test_config_check_accepts_a_valid_file(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, rooms=[ROOM])
    out = roomd("config", "check", "-c", str(cfg))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


def test_config_check_lists_every_problem_one_line_each_and_exits_2(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, rooms=[ROOM, Room("abc", "room-4a@contoso.com")])
    text = cfg.read_text().replace(
        'client_secret_file = "graph-secret"', 'client_secret_file = "missing-secret"'
    )
    cfg.write_text(text + '\n[[rooms]]\nhybrid_id = "x"\nmailbox = "not-an-email"\n')
    out = roomd("config", "check", "-c", str(cfg))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert all(line.startswith(f"roomd: config {cfg}: ") for line in lines), lines
    joined = "\n".join(lines)
    assert "graph.client_secret_file" in joined
    assert "rooms[1].mailbox" in joined and "already mapped by rooms[0]" in joined
    assert "rooms[2].mailbox" in joined and "not an email address" in joined
    assert "Traceback" not in out.stderr


def test_config_check_on_a_missing_file_exits_2_without_traceback(tmp_path: Path) -> None:
    out = roomd("config", "check", "-c", str(tmp_path / "nope.toml"))
    assert out.returncode == 2
    assert "nope.toml" in out.stderr
    assert "Traceback" not in out.stderr


def test_run_with_a_bad_config_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "roomd.toml"
    cfg.write_text("[graph\n")
    out = roomd("run", "-c", str(cfg))
    assert out.returncode == 2
    assert "line 1" in out.stderr
    assert "Traceback" not in out.stderr


def test_run_exits_1_when_the_state_database_cannot_be_opened(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, rooms=[ROOM])
    cfg.write_text(cfg.read_text().replace('path = "state.sqlite3"', 'path = "no/such/dir/s.db"'))
    out = roomd("run", "-c", str(cfg))
    assert out.returncode == 1
    assert out.stderr.startswith("roomd: ")
    assert "no/such/dir" in out.stderr
    assert "Traceback" not in out.stderr


def test_status_before_any_round_says_never(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, rooms=[ROOM])
    # the daemon has never run: no database yet
    out = roomd("status", "-c", str(cfg))
    assert out.returncode == 1
    assert "state.sqlite3" in out.stderr
    assert "Traceback" not in out.stderr


def test_status_reads_rounds_recorded_by_the_daemon(tmp_path: Path) -> None:
    from support.daemon import DaemonProcess

    cfg = write_config(tmp_path, rooms=[ROOM])
    daemon = DaemonProcess(cfg).start()
    try:
        daemon.wait_log(lambda x: x.get("event") == "room_round")
        # read-only, beside the running daemon
        out = roomd("status", "-c", str(cfg), "--json")
    finally:
        daemon.stop()
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert row["room"] == ROOM.mailbox
    assert row["last_round_at"] is not None
    assert row["last_success_at"] is None
    assert row["consecutive_failures"] >= 1
    assert row["last_error"]
    table = roomd("status", "-c", str(cfg))
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:2] == ["ROOM", "LAST"]
    assert ROOM.mailbox in table.stdout


def test_config_without_a_subcommand_is_a_usage_error() -> None:
    out = roomd("config")
    assert out.returncode == 2
    assert "usage: roomd config" in out.stderr


def test_sim_and_demo_refuse_bad_paths_and_ports_in_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    for args, expected in (
        (("sim", "--config-out", str(a_file / "roomd.toml")), "is not a directory"),
        (("sim", "--config-out", str(tmp_path)), "is a directory"),
        (("sim", "--graph-port", "99999"), "not a port number"),
        (("sim", "--host", "0.0.0.0"), "loopback only"),
        (("demo", "--keep", str(a_file)), "not a directory"),
    ):
        out = roomd(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert expected in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_sim_on_a_port_in_use_fails_with_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = roomd("sim", "--config-out", str(tmp_path / "r.toml"), "--graph-port", str(port))
    assert out.returncode == 1
    assert out.stderr.startswith("roomd: ")
    assert "Traceback" not in out.stderr
