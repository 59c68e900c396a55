"""The shipped unit must load in systemd and keep its sandbox tight."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "roomd.service"

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None and not os.environ.get("CI"),
    reason="systemd-analyze not installed (CI installs it)",
)


def _roomd_executable() -> str | None:
    """The roomd script installed beside the interpreter running the tests (a venv's bin/, which
    the README's `.venv/bin/python -m pytest` never puts on PATH), else whatever PATH finds."""
    beside = Path(sys.executable).parent / "roomd"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("roomd")


def _installed_unit(tmp_path: Path) -> Path:
    """The unit as an operator installs it: ExecStart pointing at the real roomd executable."""
    roomd = _roomd_executable()
    assert roomd, f"roomd is installed neither beside {sys.executable} nor on PATH"
    unit = tmp_path / "roomd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/roomd", roomd))
    return unit


@needs_systemd_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    unit = _installed_unit(tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "roomd.service" not in proc.stderr, proc.stderr


@needs_systemd_analyze
def test_unit_exposure_is_at_most_1_5(tmp_path: Path) -> None:
    unit = _installed_unit(tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for roomd.service: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout[-2000:] + proc.stderr
    assert float(match.group(1)) <= 1.5


def test_unit_has_the_promised_shape() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "DynamicUser=yes",
        "StateDirectory=roomd",
        "ConfigurationDirectory=roomd",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ):
        assert line in text.splitlines(), line
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
    assert re.search(r"^LoadCredential=graph-client-secret:", text, re.M)
    # Secrets never come through the environment or inline in the unit.
    assert not re.search(r"^Environment=.*(SECRET|secret)", text, re.M)
