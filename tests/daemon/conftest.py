from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon import DaemonProcess, NotifySocket


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path)
    yield sock
    sock.close()


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Every daemon a test starts is killed at the end, whatever happened."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop()
