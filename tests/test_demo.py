"""`roomd demo` is the README's first promise: it must run to the end and show real results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_syncs_every_room_against_the_simulators_and_exits_0(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "roomd", "demo", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "GET /readyz -> 200" in out.stdout
    rows = {
        line.split()[-5]: line.split()
        for line in out.stdout.splitlines()
        if "@contoso.com" in line and line.rstrip().endswith("ok")
    }
    # booked: two meetings in Room 4A, one in the Boardroom, one in Harbour (Outlook); one
    # booking in Room 4B and one in Harbour (Hybrid). After the sync each side holds them all,
    # except Pat's Harbour booking: Pat has no mailbox and the demo has no service mailbox
    seen = {mailbox: (int(cols[-4]), int(cols[-3])) for mailbox, cols in rows.items()}
    assert seen == {
        "room-4a@contoso.com": (2, 2),
        "room-4b@contoso.com": (1, 1),
        "boardroom@contoso.com": (1, 1),
        "harbour@contoso.com": (1, 2),
    }
    assert "not synced:" in out.stdout and "pat@fabrikam.com" in out.stdout
    # --keep leaves a config that `roomd config check` accepts and a database `status` reads
    cfg = tmp_path / "roomd.toml"
    check = subprocess.run(
        [sys.executable, "-m", "roomd", "config", "check", "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    status = subprocess.run(
        [sys.executable, "-m", "roomd", "status", "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert "room-4a@contoso.com" in status.stdout
