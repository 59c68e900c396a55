"""`roomd sim` writes a config that a real `roomd run` can use as it would a real tenant."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support.daemon import DaemonProcess


def test_roomd_sim_serves_both_simulators_and_writes_a_working_config(tmp_path: Path) -> None:
    cfg = tmp_path / "sim" / "roomd.toml"
    sim = subprocess.Popen(
        [sys.executable, "-m", "roomd", "sim", "--config-out", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    daemon: DaemonProcess | None = None
    try:
        deadline = time.monotonic() + 30
        while not cfg.exists() and time.monotonic() < deadline:
            assert sim.poll() is None, sim.stdout.read() if sim.stdout else ""
            time.sleep(0.1)
        time.sleep(0.2)
        text = cfg.read_text()
        # secrets live in files beside the config, never in it
        assert "client_secret_file" in text and "client_secret =" not in text
        assert "webhook_secret_file" in text
        for name in ("graph-client-secret", "hybrid-client-secret", "hybrid-webhook-secret"):
            assert (cfg.parent / name).exists(), name
            assert os.stat(cfg.parent / name).st_mode & 0o077 == 0, name
        assert (cfg.parent / "ca.pem").exists()
        check = subprocess.run(
            [sys.executable, "-m", "roomd", "config", "check", "-c", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stderr
        cfg.write_text(text.replace("port = 9478", "port = 0"))
        daemon = DaemonProcess(cfg).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if httpx.get(daemon.url("/readyz")).status_code == 200:
                break
            time.sleep(0.2)
        ready = httpx.get(daemon.url("/readyz")).json()
        assert ready["ready"] is True, ready
        assert len(ready["rooms"]) == 4
    finally:
        if daemon is not None:
            daemon.stop()
        sim.send_signal(signal.SIGINT)
        out, _ = sim.communicate(timeout=30)
    assert sim.returncode == 0, out
    assert "Microsoft Graph simulator: https://127.0.0.1:" in out
    assert "Hybrid simulator:" in out
