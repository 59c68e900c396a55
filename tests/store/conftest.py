"""Fixtures for the state-store tests: a real SQLite file in a temporary directory and a clock
the test moves by hand, so times in assertions are exact."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from roomd.store import Store, open_store

ROOM = "room-4a@contoso.com"
OTHER_ROOM = "room-5b@contoso.com"
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class Clock:
    """A hand-moved UTC clock."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
async def store(db_path: Path, clock: Clock) -> AsyncIterator[Store]:
    opened = await open_store(db_path, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    """Every test closes what it opened: each aiosqlite connection owns a thread."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2
    while True:
        left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not left, f"threads left running: {left}"
