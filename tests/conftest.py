"""Suite-wide guard: no test may leave a process behind."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses
        head, _, rest = text.rpartition(")")
        fields = rest.split()
        if len(fields) > 2 and int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(stat.parent.name), head.split("(", 1)[1]))
    return found


@pytest.fixture(autouse=True)
def _no_process_left_behind() -> Iterator[None]:
    before = set(_children(os.getpid()))
    yield
    deadline = time.monotonic() + 5
    while True:
        left = set(_children(os.getpid())) - before
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"processes left running by this test: {sorted(left)}"
